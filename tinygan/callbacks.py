"""The chores a training run does after every epoch, one small class each.

The loop in ``train.run`` is the algorithm; everything else hangs on it as a callback:

    class Callback:
        on_start(run)               once, before the first step (after a resume too)
        on_epoch_end(run, record)   after every epoch, in the order the run was given them

``run`` is the ``train.Run`` (its cfg, G, D, optimizers, ``state`` with the per-step
history, ``save_checkpoint()``); ``record`` is the epoch's log line — epoch, loss_D,
loss_G, D(x), D(G(z)), examples_per_sec, seconds — already appended to
``run.state.records``, so a callback that adds to it (``SWD``) must come before the ones
that save it (``Checkpoint``, ``LogFile``). ``standard(cfg)`` is the documented set.

On short epochs the chores would cost a real share of the run (a loss plot takes about as
long as a few training steps), so the pictures and the checkpoint are ``Throttled``: each
runs after the first and the last epoch, and in between whenever its own last cost is at
most a small share of the training time since it last ran. On long epochs that is every
epoch; on short ones every few.
"""
import json
import os
import sys
import time

import numpy as np

from . import backend
from .images import pyplot, save_grid, save_loss_plot, save_progress_gif
from .io import atomic_write
from .nn import sampling
from .swd import swd


class Callback:
    """Does nothing; subclasses override what they need."""

    def on_start(self, run):
        pass

    def on_epoch_end(self, run, record):
        pass

    def __repr__(self):
        return type(self).__name__


class Throttled(Callback):
    """``callback``, run after an epoch only while it is cheap: at most ``share`` of the
    training time since it last ran — and always after the run's first and last epochs."""

    def __init__(self, callback, share):
        self.callback, self.share = callback, share

    def on_start(self, run):
        self.callback.on_start(run)
        self.first_epoch = run.state.epoch + 1          # the first this process trains (resumes too)
        self.cost, self.last_ran = 0.0, run.state.seconds

    def on_epoch_end(self, run, record):
        trained = run.state.seconds - self.last_ran
        if record["epoch"] in (self.first_epoch, run.cfg.epochs) or self.cost <= self.share * trained:
            t = time.perf_counter()
            self.callback.on_epoch_end(run, record)
            self.cost, self.last_ran = time.perf_counter() - t, run.state.seconds

    def __repr__(self):
        return f"Throttled({self.callback!r}, share={self.share})"


class SWD(Callback):
    """Every ``every`` epochs, ProGAN's sliced Wasserstein distance (×10³, averaged over levels)
    between up to ``n`` training images and as many samples of the run's generator, logged as record['swd'].

    The same random subset of the training images and the same noise every epoch; the
    generator of the epoch grids (``run.sampler``: G, or the moving average of its weights
    when the run keeps one), with BatchNorm on batch statistics as there.
    """

    def __init__(self, every, n=256):
        self.every, self.n = every, n

    def on_epoch_end(self, run, record):
        if record["epoch"] % self.every:
            return
        images, seed = run.images_host, run.cfg.seed
        k = min(self.n, len(images))
        real = images[np.sort(np.random.default_rng(seed + 3).permutation(len(images))[:k])]
        z = np.random.default_rng(seed + 4).standard_normal((k, run.cfg.latent_dim, 1, 1))
        with sampling(run.sampler, bn="batch"):
            fake = run.sampler(backend.asarray(z, dtype=run.dtype, like=run.fixed_noise))
        record["swd"] = swd(real, fake).mean
        print(f"epoch {record['epoch']}: SWD x1e3 {record['swd']:.1f} (generated vs real, averaged over levels)",
              flush=True)


class DWinsWarning(Callback):
    """Warn once when D rejects every fake for a whole epoch while loss_G climbs: G has stopped learning."""

    def __init__(self, threshold=0.05):
        self.threshold = threshold

    def on_epoch_end(self, run, record):
        s = run.state
        if s.warned_d_wins:
            return
        n = run.n_batches                                   # the epoch's steps are the last ones
        d_fake, loss_g = np.asarray(s.d_fake[-n:]), np.asarray(s.loss_G[-n:])
        half = max(len(loss_g) // 2, 1)
        if len(d_fake) and d_fake.max() < self.threshold and loss_g[half:].mean() >= loss_g[:half].mean():
            s.warned_d_wins = True
            print(f"warning: D wins outright in epoch {record['epoch']}: D(G(z)) stayed below {self.threshold} "
                  f"(mean {record['D(G(z))']:.3f}) while loss_G rose to {loss_g[-1]:.2f}. G gets almost no "
                  "gradient and may not recover; try a lower --lr, the paper's recipe (--recipe paper), "
                  "or restart with another --seed.", file=sys.stderr, flush=True)


class Checkpoint(Callback):
    """checkpoint.npz: everything needed to continue exactly, written atomically every epoch."""

    def on_epoch_end(self, run, record):
        run.save_checkpoint()


class LogFile(Callback):
    """log.jsonl: one JSON line per epoch, rewritten whole from the run's records (a resumed
    run never repeats or loses a line)."""

    def on_epoch_end(self, run, record):
        with atomic_write(os.path.join(run.cfg.out, "log.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in run.state.records)


class SampleGrids(Callback):
    """real.png once (a fair sample of the training images), then samples_epoch_NNN.png after
    every epoch: the run's generator on fixed noise, the same noise every time, so epochs
    compare. The generator is ``run.sampler``: the moving average of G's weights when the run
    keeps one (``--ema``; the sprites recipe does), else G itself."""

    def __init__(self, scale=2):
        self.scale = scale

    def on_start(self, run):
        k = run.cfg.n_samples
        shown = np.random.default_rng(run.cfg.seed + 2).permutation(run.n)[:k]   # not the first files
        save_grid(run.images_host[np.sort(shown)], os.path.join(run.cfg.out, "real.png"), scale=self.scale)

    def on_epoch_end(self, run, record):
        with sampling(run.sampler, bn="batch"):
            images = run.sampler(run.fixed_noise)
        save_grid(images, os.path.join(run.cfg.out, f"samples_epoch_{record['epoch']:03d}.png"), scale=self.scale)


class ProgressGif(Callback):
    """progress.gif: every epoch's sample grid as one animation (after ``SampleGrids``)."""

    def on_epoch_end(self, run, record):
        save_progress_gif(run.cfg.out)


class LossPlot(Callback):
    """losses.png: loss_D and loss_G per step."""

    def on_start(self, run):
        # matplotlib's import and first figure (most of a second) here, once, so that Throttled
        # weighs the plot by what each later one costs (~0.25 s), not by the first
        plt = pyplot()
        fig = plt.figure(figsize=(1, 1))
        fig.text(0.5, 0.5, "0")
        fig.canvas.draw()                                   # loads the fonts
        plt.close(fig)

    def on_epoch_end(self, run, record):
        s = run.state
        save_loss_plot(s.loss_D, s.loss_G, os.path.join(run.cfg.out, "losses.png"), run.n_batches)


class EpochLine(Callback):
    """One printed line per epoch (for --no-progress, where there is no bar)."""

    def on_epoch_end(self, run, record):
        print(f"epoch {record['epoch']}: loss_D {record['loss_D']:.3f}, loss_G {record['loss_G']:.3f}, "
              f"D(x) {record['D(x)']:.2f}, D(G(z)) {record['D(G(z))']:.2f}, "
              f"{record['examples_per_sec']:.1f} examples/sec", flush=True)


def standard(cfg):
    """The chores of a documented run, in order: metrics first, then what saves them.

    Each throttled chore may take its share of the training time, 1% in all: on epochs of
    26 steps at the demo's size (1.7 s each) that was a checkpoint every 4–5 epochs, a
    sample grid every 17–20 and a loss plot after about 100 s of training (4 in 120 epochs,
    the first and last included), and a whole run at 0.966–0.968 of its
    steps' speed (benchmarks/run_overhead.py, 120 epochs, 2026-12-03). The shares were 2%
    in all until then: the compiled loops had made the steps faster, and the same chores
    had become a larger share of them.
    """
    return [*([SWD(cfg.swd_every)] if cfg.swd_every else []), DWinsWarning(),
            Throttled(Checkpoint(), 0.004), LogFile(),
            Throttled(SampleGrids(), 0.0025), Throttled(ProgressGif(), 0.001), Throttled(LossPlot(), 0.0025),
            *([] if cfg.progress else [EpochLine()])]
