"""The DCGAN training run: the paper's loop, with the per-epoch chores hung on it.

    for each epoch:
        for each batch x of real images, with a batch z of noise:
            train_step(G, D, opt_G, opt_D, x, z)          # D once, then G once (dcgan.py)
        for each callback: on_epoch_end(run, record)      # pictures, logs, checkpoint (callbacks.py)

A run's length is ``epochs`` whole epochs, or ``steps`` steps: then the epochs follow from the
data set's size, and the last one ends part-way when the steps run out (``Run.end_epoch``).

``run(Config(...))`` is what ``examples/pokemon.py`` calls. What a run writes into
``config.out`` is decided by its callbacks (``callbacks.standard``: real.png,
samples_epoch_NNN.png, progress.gif, losses.png, log.jsonl, checkpoint.npz); the run itself
writes config.json, and holds a lock on the folder while it trains (``runlock.py``).

Reproducibility: one NumPy ``Generator`` (seeded by ``config.seed``) draws the data order
and every z on the host; it is part of ``RunState``, which a checkpoint saves and restores,
so on NumPy "2 epochs" and "1 epoch, resume, 1 epoch" give bit-identical weights.

On a GPU (``--backend cupy``) everything a step touches stays on the device: the models,
both Adam states, the dataset (uploaded once when it fits: ``place_dataset``), and the
step's losses. The host waits for the GPU only to log: the four numbers of every step
(loss_D, loss_G, D(x), D(G(z))) are kept as device scalars and copied over together every
``SYNC_SECONDS`` and at the end of an epoch, when they are also checked for NaN/Inf — so a
divergence is still reported at the step where it began (``EpochLog``). On NumPy that
window is a single step: the plain per-step loop.
"""
import copy
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import backend, blas, checkpoint, dcgan, jit, memory
from .callbacks import Throttled, standard
from .data import load_images, parse_color
from .dcgan import RECIPES, augmentation, train_step
from .ema import EMA
from .images import save_grid
from .io import atomic_write, check_writable
from .nn import InstanceNoise, Sequential, sampling
from .optim import Adam
from .progress import Progress, format_bytes, format_seconds
from .runlock import RunLock

# Defaults that make sense per backend: d2l's full job on a GPU, a job of a few minutes on 2 CPU cores.
BACKEND_DEFAULTS = {
    "cupy": dict(image_size=64, features=64, batch_size=256, epochs=20),
    # 32×32, half the width and batch 32: many small steps teach G more on 2 cores than
    # fewer steps of the full-width net would.
    "numpy": dict(image_size=32, features=32, batch_size=32, epochs=120),
}
# How often the losses come to the host (seconds): every step on NumPy, where that is free;
# on a GPU each copy waits for the device to finish, so the steps in between run unsynchronised.
SYNC_SECONDS = {"numpy": 0.0, "cupy": 0.5}
# Flags that define the model and the data: fixed for the life of a run (and its resumes).
RUN_DEFINING = ("recipe", "latent_dim", "features", "image_size", "data", "limit", "resize",
                "background", "trim", "seed", "batch_size", "lr", "beta1", "beta2", "upsample", "lr_d", "real_label",
                "d_spectral_norm", "d_minibatch_std", "instance_noise", "flip", "augment_policy", "augment_p",
                "ada_target", "ada_kimg", "lecam", "topk_gamma", "topk_min", "loss", "ema_rampup", "bcr")


@dataclass
class Config:
    backend: str = "numpy"
    data: str = None                 # folder or .zip; None: d2l's Pokémon zip, downloaded once
    out: str = "runs/pokemon"
    epochs: int = None               # None: BACKEND_DEFAULTS
    steps: int = None                # optimizer steps in all; given, it wins: the epochs follow from it
                                     # and the last one stops part-way when it does not divide
    batch_size: int = None
    image_size: int = None
    latent_dim: int = 100
    features: int = None             # None: BACKEND_DEFAULTS (64 on a GPU, as d2l)
    recipe: str = "paper"            # 'paper' (the DCGAN deck's), 'd2l' or 'sprites' (+ DiffAugment)
    lr: float = None                 # None: the recipe's (2e-4 paper, 5e-3 d2l)
    beta1: float = None
    beta2: float = 0.999
    lr_d: float = None               # D's learning rate; None: lr (a different one: two time scales, TTUR)
    real_label: float = 1.0          # D's target for real images (0.9: one-sided label smoothing)
    limit: int = None                # first N images only
    resize: str = "pad"
    background: str = "white"
    trim: bool = True                # crop transparent borders (sprites in big frames)
    seed: int = 0
    progress: bool = True
    n_samples: int = 64              # images in each sample grid
    upsample: str = "transpose"      # G's ×2 steps: 'transpose' (the paper's) or 'nearest' + Conv2d
    d_spectral_norm: bool = False    # D's convolutions spectrally normalised (and no BatchNorm in D)
    d_minibatch_std: bool = False    # a minibatch-standard-deviation channel before D's last convolution
    instance_noise: float = 0.0      # σ of Gaussian noise on all D sees, annealed linearly to 0 by the last step
    swd_every: int = 0               # every N epochs log the sliced Wasserstein distance; 0: never
    tf32: bool = False               # cupy: float32 matmuls on TF32 tensor cores (CUPY_TF32=1); numpy: no effect
    ema: float = None                # β of the moving average of G's weights that draws the pictures; 0: none,
                                     # G draws them itself; None: the recipe's (sprites 0.999, paper and d2l 0)
    # issue 26's candidates (dcgan.train_step), all off by default: benchmarks/screen.py screens them
    flip: bool = False               # the real images mirrored left-right at random (p ½)
    augment_policy: str = None       # DiffAugment's maps, e.g. 'color,translation'; None: the recipe's
    augment_p: float = 1.0           # each DiffAugment map applied to an image with this probability
    ada_target: float = 0.0          # > 0: ADA's adaptive p from sign(D(x)) toward this (0.6); p starts at 0
    ada_kimg: float = 100.0          # ADA's speed: thousands of images for p to move by 1
    lecam: float = 0.0               # weight of LeCam's regulariser of D's outputs; 0: none
    topk_gamma: float = 0.0          # > 0: G learns from the top k fakes, k = batch·γ^epoch down to topk_min·batch
    topk_min: float = 0.5
    loss: str = "bce"                # 'bce' (the paper's) or 'hinge' (D's hinge, G's −D(G(z)))
    ema_rampup: float = 0.0          # > 0: the average's half-life ramps up as ADA's (0.05)
    bcr: float = 0.0                 # weight of bCR's consistency of D under two augmentations (5: the paper's
                                     # 10, as D's loss here is the mean of its halves; nn.Consistency); 0: none

    def resolved(self):
        """A copy with every None default filled in from the backend and the recipe."""
        c = copy.copy(self)
        for k, v in BACKEND_DEFAULTS[c.backend].items():
            if getattr(c, k) is None:
                setattr(c, k, v)
        r = RECIPES[c.recipe]
        c.lr = r["lr"] if c.lr is None else c.lr
        c.beta1 = r["beta1"] if c.beta1 is None else c.beta1
        c.lr_d = c.lr if c.lr_d is None else c.lr_d
        c.ema = r.get("ema", 0.0) if c.ema is None else c.ema
        return c

    def arch(self):
        """What rebuilds the models (``checkpoint.models_from_arch``)."""
        return {"latent_dim": self.latent_dim, "features": self.features, "image_size": self.image_size,
                "recipe": self.recipe, "upsample": self.upsample, "d_spectral_norm": self.d_spectral_norm,
                "d_minibatch_std": self.d_minibatch_std}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf."""


# The per-step history and the counters, as a checkpoint stores them.
_HISTORY = ("loss_D", "loss_G", "d_real", "d_fake")
_RECORD_NAMES = ("loss_D", "loss_G", "D(x)", "D(G(z))")      # their epoch means in log.jsonl
_COUNTERS = ("epoch", "batch", "step", "seconds", "warned_d_wins", "records")


@dataclass
class RunState:
    """Where the run is: with the models and optimizers, all a checkpoint holds."""
    rng: np.random.Generator         # draws the data order and every z
    fixed_noise: np.ndarray          # the z of every sample grid, on the host
    epoch: int = 0                   # the epoch in progress (0-based)
    batch: int = 0                   # next batch of that epoch
    step: int = 0                    # optimizer steps done in all
    perm: np.ndarray = None          # this epoch's data order
    loss_D: list = field(default_factory=list)     # per step, for the plot
    loss_G: list = field(default_factory=list)
    d_real: list = field(default_factory=list)
    d_fake: list = field(default_factory=list)
    seconds: float = 0.0             # training time so far
    records: list = field(default_factory=list)    # the per-epoch log lines
    warned_d_wins: bool = False

    @classmethod
    def new(cls, cfg, dtype):
        noise = np.random.default_rng(cfg.seed + 1).standard_normal((cfg.n_samples, cfg.latent_dim, 1, 1))
        return cls(rng=np.random.default_rng(cfg.seed), fixed_noise=noise.astype(dtype))

    def to_checkpoint(self):
        """(meta, extra): the JSON part and the arrays of ``checkpoint.save``."""
        meta = {k: getattr(self, k) for k in _COUNTERS}
        meta["rng_state"] = self.rng.bit_generator.state
        extra = {"fixed_noise": self.fixed_noise, **{k: np.array(getattr(self, k)) for k in _HISTORY}}
        if self.perm is not None:
            extra["perm"] = self.perm
        return meta, extra

    @classmethod
    def from_checkpoint(cls, saved, dtype):
        """The state ``to_checkpoint`` saved, from a ``checkpoint.load``-ed file."""
        meta, extra = saved["meta"], saved["extra"]
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng_state"]
        return cls(rng=rng, fixed_noise=extra["fixed_noise"].astype(dtype), perm=extra.get("perm"),
                   **{k: list(extra[k]) for k in _HISTORY},
                   **{k: meta[k] for k in _COUNTERS if k in meta})


class Run:
    """One training run's things: its config, data, models, optimizers, state and output paths."""

    def __init__(self, cfg, resume=None):
        self.cfg = cfg
        if cfg.tf32 and cfg.backend == "cupy":
            os.environ["CUPY_TF32"] = "1"          # read by CuPy when backend.use imports it
        backend.use(cfg.backend)
        self.xp, self.dtype = backend.xp(), backend.default_dtype()
        check_memory(cfg, steps=cfg.steps or 0)          # the models; load_images checks the data set
        loaded = load_images(cfg.data or None, image_size=cfg.image_size, resize=cfg.resize,
                             background=parse_color(cfg.background), limit=cfg.limit, trim=cfg.trim)
        self.images_host, self.skipped = loaded.images, len(loaded.skipped)
        self.n = len(self.images_host)
        if cfg.batch_size > self.n:
            _log(f"warning: --batch-size {cfg.batch_size} is larger than the dataset ({self.n} images); "
                 f"using {self.n}")
            cfg.batch_size = self.n
        self.n_batches = -(-self.n // cfg.batch_size)
        if cfg.steps:                                   # the length in steps: epochs follow, the last maybe cut
            cfg.epochs = -(-cfg.steps // self.n_batches)
        check_memory(cfg, cfg.batch_size, self.total_steps)     # and now a step's activations too
        self.images, _ = place_dataset(self.images_host, self.xp, self.dtype)

        self.G, self.D = checkpoint.models_from_arch(cfg.arch(), seed=cfg.seed)
        self.G.to(cfg.backend, self.dtype)
        self.D.to(cfg.backend, self.dtype)
        self.opt_G = Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.opt_D = Adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.loss_fn = dcgan.make_loss(cfg.loss, RECIPES[cfg.recipe]["reduction"])
        self.checkpoint_path = os.path.join(cfg.out, "checkpoint.npz")
        self.state = RunState.new(cfg, self.dtype)
        if resume:
            saved = checkpoint.load(resume)
            checkpoint.restore(saved, self.G, self.D, self.opt_G, self.opt_D, path=resume)
            self.state = RunState.from_checkpoint(saved, self.dtype)
            _log(f"resumed {resume}: epoch {self.state.epoch + 1}, batch {self.state.batch}, "
                 f"step {self.state.step}")
        # the moving average of G's weights (cfg.ema = β), updated after every step; it draws the pictures
        self.ema = EMA(self.G, cfg.ema, cfg.ema_rampup) if cfg.ema else None
        if resume and self.ema is not None:
            if saved["G_ema"]:
                self.ema.model.load_state_dict(saved["G_ema"])
            else:
                _log(f"{resume} holds no moving average of G: it starts from G's weights at step {self.state.step}")
        elif resume and saved["G_ema"]:
            _log(f"--ema 0: the moving average of G in {resume} is dropped; the pictures and the next "
                 f"checkpoint are G's own")
        self.fixed_noise = self.xp.asarray(self.state.fixed_noise)      # on the device
        # the recipe's augmentation (and instance noise) draw from the run's rng, so a checkpoint covers them too
        self.augment = augmentation(cfg.recipe, self.state.rng, cfg.instance_noise, cfg.augment_p, cfg.augment_policy)
        chain = list(self.augment) if isinstance(self.augment, Sequential) else [self.augment]
        self.noise = next((m for m in chain if isinstance(m, InstanceNoise)), None)
        # issue 26's options with a state (flip, ADA, LeCam); a checkpoint keeps ADA's p and LeCam's averages
        self.candidates = dcgan.candidates(self.augment, self.state.rng, cfg.flip, cfg.ada_target, cfg.ada_kimg,
                                           cfg.lecam, cfg.bcr)
        for name, option in self.candidates.items():
            if resume and f"{name}_state" in saved["extra"]:
                option.load_state(saved["extra"][f"{name}_state"])

    @property
    def total_steps(self):
        """The steps the whole run takes: ``cfg.steps``, else ``cfg.epochs`` whole epochs."""
        return self.cfg.steps or self.cfg.epochs * self.n_batches

    def noise_sigma(self):
        """Instance noise's σ for the coming step: σ₀·(1 − step/steps), 0 from the run's last step on."""
        return self.cfg.instance_noise * max(0.0, 1.0 - self.state.step / self.total_steps)

    @property
    def sampler(self):
        """The generator the pictures come from: the moving average of G when the run keeps one, else G."""
        return self.ema.model if self.ema is not None else self.G

    def step(self, real, z, stats=None):
        """One training step with this run's models, optimizers, loss and recipe options
        (and the moving average of G moved on, when the run keeps one)."""
        if self.noise is not None:
            self.noise.sigma = self.noise_sigma()
        losses = train_step(self.G, self.D, self.opt_G, self.opt_D, real, z, self.loss_fn, stats,
                            augment=self.augment, real_label=self.cfg.real_label, topk=self.topk(len(z)),
                            **self.candidates)
        if self.ema is not None:
            self.ema.update(self.state.step)
        return losses

    def topk(self, n):
        """G's k of a batch of n this epoch (``--topk-gamma``), or None: all of them."""
        c = self.cfg
        return dcgan.topk_schedule(n, self.state.epoch, c.topk_gamma, c.topk_min) if c.topk_gamma else None

    def batches(self):
        """(real, z) for each remaining batch of this epoch, drawn in the order of ``state.perm``.

        The loop's ``EpochLog.step`` counts each step done (``state.batch``), which moves this on;
        the run's last step (``total_steps``) ends the epoch early.
        """
        s, B = self.state, self.cfg.batch_size
        if s.batch == 0 or s.perm is None:
            s.perm = s.rng.permutation(self.n)
        while s.batch < self.n_batches and s.step < self.total_steps:
            idx = s.perm[s.batch * B:(s.batch + 1) * B]
            z = s.rng.standard_normal((len(idx), self.cfg.latent_dim, 1, 1)).astype(self.dtype)
            yield batch_of(self.images, idx, self.xp), self.xp.asarray(z)

    def save_checkpoint(self, path=None, extra=None):
        """The whole run, atomically, to ``path`` (default ``checkpoint_path``); ``extra``: more
        arrays for the caller (they come back in ``checkpoint.load(path)["extra"]``)."""
        meta, arrays = self.state.to_checkpoint()
        meta.update(config=asdict(self.cfg), arch=self.cfg.arch())
        checkpoint.save(path or self.checkpoint_path, self.G, self.D, self.opt_G, self.opt_D, meta=meta,
                        extra={**arrays, **{f"{k}_state": np.array(v.state()) for k, v in self.candidates.items()
                                            if hasattr(v, "state")}, **(extra or {})},
                        G_ema=self.ema.model if self.ema is not None else None)

    def end_epoch(self, log):
        """Close the epoch: its log record (also kept in ``state.records``), the counters moved on.

        An epoch the run's last step cut short (``--steps``) gets its record, but the counters
        stay in it (``state.batch``, its data order ``perm``): a resume with more steps finishes
        that same epoch, as the uninterrupted run would, and replaces the record.
        """
        s = self.state
        ep = slice(log.first_step, len(s.loss_D))
        means = {name: float(np.mean(getattr(s, key)[ep])) for name, key in zip(_RECORD_NAMES, _HISTORY)}
        record = {"epoch": s.epoch + 1, **means, "examples_per_sec": log.examples / log.seconds,
                  "seconds": log.seconds}
        if s.records and s.records[-1]["epoch"] == record["epoch"]:     # the cut epoch, now further on
            s.records[-1] = record
        else:
            s.records.append(record)
        if s.batch == self.n_batches:
            s.epoch, s.batch, s.perm = s.epoch + 1, 0, None
        return record

    def interrupt(self, signame):
        """Checkpoint what is done, then stop with a message that says how to continue."""
        self.save_checkpoint()
        s = self.state
        raise KeyboardInterrupt(
            f"{signame}: stopped after step {s.step} (epoch {s.epoch + 1}, batch {s.batch}/{self.n_batches}); "
            f"checkpoint written to {self.checkpoint_path}. Continue with:\n"
            f"  python examples/pokemon.py --resume {self.checkpoint_path} {self.length_flag()}")

    def length_flag(self):
        """The flag that gives this run's length: '--steps N', or '--epochs N' for a run sized in epochs."""
        return f"--steps {self.cfg.steps}" if self.cfg.steps else f"--epochs {self.cfg.epochs}"

    def done(self):
        """The steps done, in epochs too: '600 steps (14 epochs and 12 of the 42 steps of the 15th epoch)'."""
        s = self.state
        whole = f"{s.epoch} epoch{'s' * (s.epoch != 1)}"
        part = f"{s.batch} of the {self.n_batches} steps of the {_ordinal(s.epoch + 1)} epoch"
        return f"{s.step} step{'s' * (s.step != 1)} ({part if not s.epoch else f'{whole} and {part}' if s.batch else whole})"

    def summary(self):
        s = self.state
        full, rest = divmod(s.step, self.n_batches)                    # examples seen, d2l's figure
        seen = full * self.n + min(rest * self.cfg.batch_size, self.n)
        return {"loss_D": s.loss_D[-1] if s.loss_D else float("nan"),
                "loss_G": s.loss_G[-1] if s.loss_G else float("nan"),
                "seconds": s.seconds, "steps": s.step, "out": self.cfg.out, "checkpoint": self.checkpoint_path,
                "examples_per_sec": seen / s.seconds if s.seconds else float("nan")}


def run(cfg, resume=None, callbacks=None):
    """Train. Returns a summary dict (final losses, examples/sec, seconds, output paths).

    ``callbacks``: the chores after every epoch, in order (``tinygan/callbacks.py``);
    None means ``callbacks.standard(cfg)``, every file a run is documented to write.
    """
    cfg = cfg.resolved()
    callbacks = standard(cfg) if callbacks is None else callbacks
    check_writable(cfg.out)
    with RunLock(cfg.out, log=_log):                  # one run per output folder
        r = Run(cfg, resume)
        with atomic_write(os.path.join(cfg.out, "config.json"), "w") as f:
            json.dump({**asdict(cfg), "images": r.n, "skipped": r.skipped}, f, indent=2)
        for cb in callbacks:
            cb.on_start(r)
        announce(r, callbacks)
        with _StopSignal() as stop:
            while r.state.step < r.total_steps:
                log = EpochLog(r, stop)
                for real, z in r.batches():
                    stats = {}
                    loss_D, loss_G = r.step(real, z, stats)
                    log.step(z, (loss_D, loss_G, stats["d_real"], stats["d_fake"]))
                    if stop.received:
                        break
                log.close()
                if stop.received:
                    r.interrupt(stop.received)
                record = r.end_epoch(log)
                try:
                    for cb in callbacks:
                        cb.on_epoch_end(r, record)
                except OSError as e:
                    raise OSError(f"could not write to {cfg.out} after epoch {record['epoch']} ({e}); the last "
                                  f"checkpoint that was written whole is {r.checkpoint_path}. Free some space "
                                  f"or pass another --out, then --resume") from None
    summary = r.summary()
    _log(f"loss_D {summary['loss_D']:.3f}, loss_G {summary['loss_G']:.3f}, "
         f"{summary['examples_per_sec']:.1f} examples/sec")
    _log(f"trained {r.done()} in {format_seconds(r.state.seconds)}; pictures, log and checkpoint in {cfg.out}")
    return summary


class EpochLog:
    """One epoch's progress: its bar, its examples and seconds, and the steps' four numbers.

    ``step`` keeps a finished step's numbers as device scalars (``pending``) and brings them
    to the host together — one wait for the GPU — every ``SYNC_SECONDS``, at the epoch's last
    step and when a stop was asked for; there each is checked for NaN/Inf.
    """

    def __init__(self, run, stop):
        self.run, self.stop = run, stop
        s, cfg = run.state, run.cfg
        self.first_step = len(s.loss_D) - s.batch          # where this epoch's history begins
        self.last = min(run.n_batches, s.batch + run.total_steps - s.step)     # the batch it ends after
        self.bar = Progress(self.last, desc=f"epoch {s.epoch + 1}/{cfg.epochs}", unit="batches",
                            enabled=cfg.progress)
        self.bar.n = s.batch
        self.pending = []                                  # [(z, (loss_D, loss_G, D(x), D(G(z))))]
        self.examples = 0
        self.t0 = self.last_sync = time.perf_counter()
        self.seconds = 0.0

    def step(self, z, four):
        """Count one finished step (this moves ``Run.batches`` on) and keep its four numbers."""
        s, r = self.run.state, self.run
        self.pending.append((z, four))
        s.batch += 1
        s.step += 1
        self.examples += len(z)
        if (time.perf_counter() - self.last_sync >= SYNC_SECONDS[r.cfg.backend]
                or s.batch == self.last or self.stop.received):
            values = self.sync()
            self.last_sync = time.perf_counter()
            rate = self.examples / (self.last_sync - self.t0)
            self.bar.update(s.batch - self.bar.n, postfix=f"loss_D {values[0]:.3f} loss_G {values[1]:.3f} "
                                                          f"D(x) {values[2]:.2f} D(G(z)) {values[3]:.2f} "
                                                          f"{rate:.1f} ex/s")

    def sync(self):
        """Copy the pending steps' numbers to the host, check them, keep them; the last step's four.

        Raises TrainingDiverged at the first non-finite one, with a grid of that batch's samples.
        """
        r, s = self.run, self.run.state
        first = s.step - len(self.pending) + 1
        rows = _scalars_to_host([v for _, four in self.pending for v in four], r.xp).reshape(-1, 4)
        for j, values in enumerate(rows.tolist()):
            if not all(np.isfinite(values)):
                bad = os.path.join(r.cfg.out, f"diverged_step_{first + j}.png")
                with sampling(r.G, bn="batch"):
                    save_grid(r.G(self.pending[j][0]), bad)
                later = (f" (drawn by G as it was {len(self.pending) - 1 - j} steps later, when the losses "
                         f"were checked)" if j < len(self.pending) - 1 else "")
                raise TrainingDiverged(
                    f"training diverged at step {first + j} (epoch {s.epoch + 1}): loss_D {values[0]}, "
                    f"loss_G {values[1]}; the last good checkpoint {r.checkpoint_path} is kept, this batch's "
                    f"samples are in {bad}{later}. Try a lower --lr.")
            for name, v in zip(_HISTORY, values):
                getattr(s, name).append(v)
        self.pending = []
        return rows[-1].tolist()

    def close(self):
        self.seconds = time.perf_counter() - self.t0
        self.run.state.seconds += self.seconds
        self.bar.close()


def announce(r, callbacks=()):
    """Print what the run will do and about how long it will take: its steps at the speed of
    ``estimate_step_seconds``, plus the share of the training time its throttled chores may take."""
    cfg, s = r.cfg, r.state
    if s.step >= r.total_steps:
        _log(f"nothing to do: the checkpoint has done {r.done()}, and the run is {r.total_steps} steps long "
             f"(pass a larger --steps or --epochs to continue)")
        return
    forced = blas.forced_kernel_line() if cfg.backend == "numpy" else None
    if forced:                                          # the environment's choice; said, never changed
        _log(forced)
    per_step, timed = estimate_step_seconds(r)
    left = r.total_steps - s.step
    chores = sum(cb.share for cb in callbacks if isinstance(cb, Throttled))
    why = jit.why_off()
    loops = "" if cfg.backend != "numpy" else " (compiled loops)" if why is None else \
        " (NumPy only: pip install numba for the compiled loops)" if not jit.numba_installed() else f" ({why})"
    cut = r.total_steps % r.n_batches
    last = f", the last one cut after {cut} of its steps" if cut else ""
    _log(f"{cfg.backend}{loops}: {r.n} images {cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}, "
         f"{r.n_batches} steps/epoch, steps {s.step + 1}..{r.total_steps} (epochs {s.epoch + 1}..{cfg.epochs}{last}); "
         f"about {cfg.batch_size / per_step:.0f} examples/sec, ETA {format_seconds(left * per_step * (1 + chores))} "
         f"({timed} steps timed)")


# The ETA's timed steps: for ESTIMATE_SECONDS, or ESTIMATE_SHARE of the run if that is less, and
# at least ESTIMATE_MIN_STEPS. One timed step was too few: on 2 cores the same step's time swings
# from one moment to the next (when the other core is busy, the split work waits for it), and one
# step is a sample of a single moment.
ESTIMATE_SECONDS, ESTIMATE_SHARE, ESTIMATE_MIN_STEPS = 3.0, 0.02, 3


def estimate_step_seconds(r):
    """(seconds per step, steps timed): the run's steps timed on throwaway copies of everything
    they change (models, optimizers, augmentation, moving average), so the run is untouched.

    Each timed step is what the loop does: draw a batch and z, ``train_step`` with the run's
    options, move the moving average on, bring the loss to the host. One step before them is
    not timed (it loads the compiled loops and allocates the scratch buffers).
    """
    G, D, opt_G, opt_D, augment, ema = copy.deepcopy((r.G, r.D, r.opt_G, r.opt_D, r.augment, r.ema))
    rng, B = np.random.default_rng(12345), min(r.cfg.batch_size, r.n)
    options = dict(augment=augment, real_label=r.cfg.real_label, topk=r.topk(B),      # as Run.step
                   **copy.deepcopy(r.candidates))

    def one_step():
        real = batch_of(r.images, rng.permutation(r.n)[:B], r.xp)
        z = r.xp.asarray(rng.standard_normal((B, r.cfg.latent_dim, 1, 1)), dtype=real.dtype)
        # dcgan's train_step, not this module's name for it: tests count the run's own calls of that
        loss_D, _ = dcgan.train_step(G, D, opt_G, opt_D, real, z, r.loss_fn, {}, **options)
        if ema is not None:
            ema.update(r.state.step)
        float(loss_D)                   # on a GPU: wait until the step has really run

    one_step()                                                                        # warm-up
    t0 = time.perf_counter()
    one_step()
    budget = min(ESTIMATE_SECONDS, ESTIMATE_SHARE * (r.total_steps - r.state.step) * (time.perf_counter() - t0))
    n = 1
    while n < ESTIMATE_MIN_STEPS or time.perf_counter() - t0 < budget:
        one_step()
        n += 1
    return (time.perf_counter() - t0) / n * r.cfg.batch_size / B, n


# What to lower when each part of a run's memory is the largest (memory.training_bytes)
_MEMORY_PARTS = {"models": ("the models with their gradients, Adam's moments and G's moving average",
                            "--features, --image-size or --latent-dim"),
                 "activations": ("a step's activations", "--batch-size, --image-size or --features"),
                 "history": ("the per-step history", "--steps or --epochs")}


def check_memory(cfg, batch=0, steps=0):
    """Refuse (``memory.NotEnoughMemory``, one line) a run whose models, activations for a batch of
    ``batch`` and history of ``steps`` steps would not fit in the memory left: the host's, or on a
    GPU the device's. Called before any of them is allocated."""
    c = cfg.resolved()
    parts = memory.training_bytes(batch, c.image_size, c.features, c.latent_dim, steps)
    xp, have = backend.xp(), None
    if xp is not np:                # on a GPU the models and activations are the device's; the history the host's
        memory.require(parts.pop("history"), f"the history of {steps} steps", f"lower {_MEMORY_PARTS['history'][1]}")
        have = xp.cuda.runtime.memGetInfo()[0]
    largest = max(parts, key=parts.get)
    shown = "; ".join(f"{_MEMORY_PARTS[k][0]}: {format_bytes(v)}" for k, v in parts.items() if v)
    memory.require(sum(parts.values()), f"training {c.image_size}x{c.image_size} images with features {c.features}, "
                   f"latent size {c.latent_dim}" + (f", batches of {batch}" if batch else "") + f" ({shown})",
                   f"lower {_MEMORY_PARTS[largest][1]}", have)


def place_dataset(images_host, xp, dtype, fraction=0.5):
    """The training images where the steps read them: (images, on_device).

    NumPy: the host array. CuPy: uploaded once when it takes less than ``fraction`` of the
    GPU's free memory (the rest is for activations, scratch and cuBLAS); otherwise it stays
    on the host and ``batch_of`` uploads each batch as it is drawn.
    """
    if xp is np:
        return np.asarray(images_host, dtype=dtype), False
    nbytes = images_host.size * np.dtype(dtype).itemsize
    free, _ = xp.cuda.runtime.memGetInfo()
    if nbytes < fraction * free:
        _log(f"dataset: {format_bytes(nbytes)} uploaded to the GPU once ({format_bytes(free)} were free)")
        return xp.asarray(images_host, dtype=dtype), True
    _log(f"dataset: {format_bytes(nbytes)} kept in host memory, each batch uploaded "
         f"(more than {fraction:.0%} of the GPU's {format_bytes(free)} free)")
    return np.asarray(images_host, dtype=dtype), False


def batch_of(images, idx, xp):
    """images[idx] on the backend ``xp``: a gather on the device, or on the host and one upload."""
    if xp is np:
        return images[idx]
    if backend.get_array_module(images) is xp:
        return images[xp.asarray(idx)]
    return xp.asarray(images[idx])


def _scalars_to_host(scalars, xp):
    """0-d arrays → a float64 NumPy vector; on a GPU one stack and one copy (one wait), not one per scalar."""
    if xp is np:
        return np.array([float(v) for v in scalars])
    return xp.stack(scalars).astype(xp.float64).get()


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a step is never cut in half."""

    def __init__(self):
        self.received = None

    def __enter__(self):
        self.old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.received is not None:                # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)


def _ordinal(n):
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _log(msg):
    print(msg, flush=True)

