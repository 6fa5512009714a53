"""callbacks.Throttled: the per-epoch chores stay a small share of a run."""
import time
from types import SimpleNamespace

from tinygan.callbacks import Callback, Throttled


class Slow(Callback):
    """A chore that takes ``cost`` seconds and remembers the epochs it ran after."""

    def __init__(self, cost):
        self.cost, self.epochs = cost, []

    def on_epoch_end(self, run, record):
        time.sleep(self.cost)
        self.epochs.append(record["epoch"])


def epochs_run(cost, epoch_seconds, share, epochs=10, start=0):
    chore = Slow(cost)
    run = SimpleNamespace(state=SimpleNamespace(epoch=start, seconds=0.0), cfg=SimpleNamespace(epochs=epochs))
    throttled = Throttled(chore, share)
    throttled.on_start(run)
    for e in range(start + 1, epochs + 1):
        run.state.seconds += epoch_seconds          # the epoch's training time
        throttled.on_epoch_end(run, {"epoch": e})
    return chore.epochs


def test_a_cheap_chore_runs_every_epoch():
    assert epochs_run(cost=0.0, epoch_seconds=1.0, share=0.01) == list(range(1, 11))


def test_an_expensive_chore_runs_every_few_epochs_and_always_first_and_last():
    # costs ~0.02 s, allowed 5% of the training since it last ran: once per 0.4 s, epochs of 0.1 s
    ran = epochs_run(cost=0.02, epoch_seconds=0.1, share=0.05)
    assert ran[0] == 1 and ran[-1] == 10
    assert 3 <= len(ran) <= 5, ran
    gaps = [b - a for a, b in zip(ran, ran[1:-1])]
    assert all(g >= 4 for g in gaps), ran


def test_a_resumed_run_draws_its_first_epoch():
    assert epochs_run(cost=0.02, epoch_seconds=0.01, share=0.01, start=6)[:1] == [7]
