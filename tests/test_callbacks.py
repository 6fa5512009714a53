"""callbacks: Throttled keeps the per-epoch chores a small share of a run; the pictures and SWD
come from the run's sampler (the moving average of G when it keeps one)."""
from types import SimpleNamespace

import pytest

from tinygan import callbacks
from tinygan.callbacks import Callback, Throttled


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter that only the chores move, so the test does not depend on the machine's speed."""
    now = {"t": 0.0}
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: now["t"])
    return now


class Slow(Callback):
    """A chore that takes ``cost`` seconds of the fake clock and remembers the epochs it ran after."""

    def __init__(self, cost, clock):
        self.cost, self.clock, self.epochs = cost, clock, []

    def on_epoch_end(self, run, record):
        self.clock["t"] += self.cost
        self.epochs.append(record["epoch"])


def epochs_run(clock, cost, epoch_seconds, share, epochs=10, start=0):
    chore = Slow(cost, clock)
    run = SimpleNamespace(state=SimpleNamespace(epoch=start, seconds=0.0), cfg=SimpleNamespace(epochs=epochs))
    throttled = Throttled(chore, share)
    throttled.on_start(run)
    for e in range(start + 1, epochs + 1):
        run.state.seconds += epoch_seconds          # the epoch's training time
        throttled.on_epoch_end(run, {"epoch": e})
    return chore.epochs


def test_a_cheap_chore_runs_every_epoch(clock):
    assert epochs_run(clock, cost=0.001, epoch_seconds=1.0, share=0.01) == list(range(1, 11))


def test_an_expensive_chore_runs_every_few_epochs_and_always_first_and_last(clock):
    # costs 0.02 s, allowed 5% of the training since it last ran: after 4 epochs of 0.11 s (0.022), not 3 (0.0165)
    assert epochs_run(clock, cost=0.02, epoch_seconds=0.11, share=0.05) == [1, 5, 9, 10]


def test_a_resumed_run_draws_its_first_epoch(clock):
    assert epochs_run(clock, cost=0.02, epoch_seconds=0.01, share=0.01, start=6) == [7, 10]


def test_grids_and_swd_come_from_the_runs_sampler(tmp_path, monkeypatch):
    """SampleGrids and SWD draw with ``run.sampler`` (e.g. the EMA of G), never with G itself."""
    import numpy as np
    from tinygan.dcgan import Generator
    from tinygan.ema import EMA
    G = Generator(8, 4, 16)
    ema = EMA(G, 0.5)
    for p in G.parameters():                        # the two generators now draw different pictures
        p.data += 0.5
    noise = np.random.default_rng(0).standard_normal((4, 8, 1, 1)).astype(np.float32)
    run = SimpleNamespace(G=G, sampler=ema.model, fixed_noise=noise, dtype=np.float32, images_host=np.zeros((6, 3, 16, 16)),
                          cfg=SimpleNamespace(out=str(tmp_path), seed=0, latent_dim=8))
    seen = []
    monkeypatch.setattr(callbacks, "save_grid", lambda images, path, scale: seen.append(np.array(images)))
    callbacks.SampleGrids().on_epoch_end(run, {"epoch": 1})
    monkeypatch.setattr(callbacks, "swd", lambda real, fake: seen.append(np.array(fake)) or SimpleNamespace(mean=0.0))
    callbacks.SWD(every=1, n=4).on_epoch_end(run, {"epoch": 1})
    z_swd = np.random.default_rng(4).standard_normal((4, 8, 1, 1)).astype(np.float32)    # SWD's own noise (seed + 4)
    for got, z in zip(seen, (noise, z_swd)):
        with callbacks.sampling(ema.model, bn="batch"):
            np.testing.assert_array_equal(got, ema.model(z))
        with callbacks.sampling(G, bn="batch"):
            assert not np.allclose(got, G(z))
