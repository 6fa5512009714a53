"""The DCGAN training run: data → (G, D, Adam×2) → epochs of ``train_step`` → pictures, logs, checkpoints.

``run(Config(...))`` is what ``examples/pokemon.py`` calls. It writes into ``config.out``:

    config.json              the run's settings
    real.png                 a grid of real training images (what G must learn to draw)
    samples_epoch_NNN.png    G(fixed_noise) after every epoch: one fixed noise batch, so
                             pictures of different epochs are comparable
    losses.png               loss_D and loss_G over steps
    log.jsonl                one JSON line per epoch: epoch, loss_D, loss_G, D(x), D(G(z)),
                             examples/sec, seconds (rewritten whole from the checkpoint's
                             records, so a resumed run never repeats or loses a line);
                             with swd_every = N, every Nth epoch also "swd" (``epoch_swd``)
    checkpoint.npz           everything needed to continue exactly (see ``checkpoint.py``),
                             written atomically after every epoch and on Ctrl-C / SIGTERM

Reproducibility: one NumPy ``Generator`` (seeded by ``config.seed``) draws the data order
and every z on the host, and its state is saved in the checkpoint, so on NumPy
"2 epochs" and "1 epoch, resume, 1 epoch" give bit-identical weights.

On a GPU (``--backend cupy``) everything a step touches stays on the device: the models,
both Adam states, the dataset (uploaded once when it fits, else each batch as it is
drawn: ``place_dataset``), and the step's losses. The host waits for the GPU only to log:
the four numbers of every step (loss_D, loss_G, D(x), D(G(z))) are kept as device scalars
and copied over together every ``SYNC_SECONDS`` and at the end of an epoch, when they are
also checked for NaN/Inf — so a divergence is still reported at the step where it began.
On NumPy that window is a single step: the behaviour is the plain per-step loop.
"""
import copy
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from . import backend, checkpoint
from .dcgan import RECIPES, build, train_step
from .images import save_grid, save_loss_plot
from .io import atomic_write, check_writable
from .nn import BCEWithLogitsLoss
from .optim import Adam
from .progress import Progress, format_bytes, format_seconds

# Defaults that make sense per backend: d2l's full job on a GPU, a ~10-minute job on 2 CPU cores.
BACKEND_DEFAULTS = {
    "cupy": dict(image_size=64, features=64, batch_size=256, epochs=20),
    # 32×32, half the width and batch 32: ~5,000 small steps in 10 minutes teach G more
    # than ~700 steps of the full-width net would (both measured on 2 cores).
    "numpy": dict(image_size=32, features=32, batch_size=32, epochs=120),
}
# How often the losses come to the host (seconds): every step on NumPy, where that is free;
# on a GPU each copy waits for the device to finish, so the steps in between run unsynchronised.
SYNC_SECONDS = {"numpy": 0.0, "cupy": 0.5}
# Flags that define the model and the data: fixed for the life of a run (and its resumes).
RUN_DEFINING = ("recipe", "latent_dim", "features", "image_size", "data", "limit", "resize",
                "background", "trim", "seed", "batch_size", "lr", "beta1", "beta2", "upsample")


@dataclass
class Config:
    backend: str = "numpy"
    data: str = None                 # folder or .zip; None: d2l's Pokémon zip, downloaded once
    out: str = "runs/pokemon"
    epochs: int = None               # None: BACKEND_DEFAULTS
    batch_size: int = None
    image_size: int = None
    latent_dim: int = 100
    features: int = None             # None: BACKEND_DEFAULTS (64 on a GPU, as d2l)
    recipe: str = "paper"            # 'paper' (the DCGAN deck's) or 'd2l'
    lr: float = None                 # None: the recipe's (2e-4 paper, 5e-3 d2l)
    beta1: float = None
    beta2: float = 0.999
    limit: int = None                # first N images only
    resize: str = "pad"
    background: str = "white"
    trim: bool = True                # crop transparent borders (sprites in big frames)
    seed: int = 0
    progress: bool = True
    n_samples: int = 64              # images in each sample grid
    upsample: str = "transpose"      # G's ×2 steps: 'transpose' (the paper's) or 'nearest' + Conv2d
    swd_every: int = 0               # every N epochs log the sliced Wasserstein distance; 0: never

    def resolved(self):
        """A copy with every None default filled in from the backend and the recipe."""
        c = copy.copy(self)
        for k, v in BACKEND_DEFAULTS[c.backend].items():
            if getattr(c, k) is None:
                setattr(c, k, v)
        r = RECIPES[c.recipe]
        c.lr = r["lr"] if c.lr is None else c.lr
        c.beta1 = r["beta1"] if c.beta1 is None else c.beta1
        return c


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf."""


@dataclass
class RunState:
    """Where the run is: restored from a checkpoint on resume."""
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


@contextmanager
def preserved_buffers(module):
    """Run a forward in train mode (batch statistics) without touching BatchNorm's running stats."""
    saved = [(m, name, getattr(m, name).copy()) for m in module.modules() for name in m._buffers]
    try:
        yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)


def sample(G, z, bn="batch"):
    """G(z) without changing G: BatchNorm uses the batch's statistics ('batch', as during
    training and in the epoch grids) or the running averages ('running', G.eval())."""
    was_training = G.training
    with preserved_buffers(G):
        G.train(bn == "batch")
        images = G(z)
    G.train(was_training)
    return images


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


def parse_color(text):
    """'white', 'black', '#rrggbb' or 'r,g,b' → (r, g, b); ValueError naming the text otherwise."""
    from PIL import ImageColor
    try:
        if "," in text:
            rgb = tuple(int(c) for c in text.split(","))
            if len(rgb) == 3 and all(0 <= c <= 255 for c in rgb):
                return rgb
            raise ValueError
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise ValueError(f"background colour {text!r} not understood: use a name (white), "
                         "#rrggbb or r,g,b") from None


def _log(msg):
    print(msg, flush=True)


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


def estimate_step_seconds(G, D, opt_G, opt_D, loss_fn, images, cfg, xp):
    """Time one training step on throwaway copies of the models (the run itself is untouched)."""
    G2, D2, oG2, oD2 = copy.deepcopy((G, D, opt_G, opt_D))
    n = min(cfg.batch_size, len(images))
    real = batch_of(images, np.arange(n), xp)
    z = xp.asarray(np.random.default_rng(12345).standard_normal((n, cfg.latent_dim, 1, 1)), dtype=real.dtype)
    # float() copies loss_D to the host, so on a GPU it waits until the step has really run
    float(train_step(G2, D2, oG2, oD2, real, z, loss_fn)[0])     # warm-up (allocations, caches, kernels)
    t = time.perf_counter()
    float(train_step(G2, D2, oG2, oD2, real, z, loss_fn)[0])
    return (time.perf_counter() - t) * cfg.batch_size / n


def run(cfg, resume=None):
    """Train. Returns a summary dict (final losses, examples/sec, seconds, output paths)."""
    from . import data as data_mod

    cfg = cfg.resolved()
    backend.use(cfg.backend)
    xp, dtype = backend.xp(), backend.default_dtype()
    check_writable(cfg.out)

    # ---- data ---------------------------------------------------------------------------
    loaded = data_mod.load_images(cfg.data or None, image_size=cfg.image_size, resize=cfg.resize,
                                  background=parse_color(cfg.background), limit=cfg.limit,
                                  trim=cfg.trim)
    images_host = loaded.images
    n = len(images_host)
    if cfg.batch_size > n:
        _log(f"warning: --batch-size {cfg.batch_size} is larger than the dataset ({n} images); using {n}")
        cfg.batch_size = n
    images, _ = place_dataset(images_host, xp, dtype)       # on a GPU: uploaded once if it fits
    n_batches = -(-n // cfg.batch_size)

    # ---- model, optimizers, loss ---------------------------------------------------------
    G, D = build(cfg.recipe, cfg.latent_dim, cfg.features, cfg.image_size, seed=cfg.seed, upsample=cfg.upsample)
    G.to(cfg.backend, dtype)
    D.to(cfg.backend, dtype)
    opt_G = Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_D = Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    loss_fn = BCEWithLogitsLoss(reduction=RECIPES[cfg.recipe]["reduction"])
    rng = np.random.default_rng(cfg.seed)
    fixed_noise = np.random.default_rng(cfg.seed + 1).standard_normal(
        (cfg.n_samples, cfg.latent_dim, 1, 1)).astype(dtype)
    state = RunState()

    ckpt_path = os.path.join(cfg.out, "checkpoint.npz")
    if resume:
        saved = checkpoint.load(resume)
        checkpoint.restore(saved, G, D, opt_G, opt_D, path=resume)
        m = saved["meta"]
        rng.bit_generator.state = m["rng_state"]
        fixed_noise = saved["extra"]["fixed_noise"].astype(dtype)
        state = RunState(epoch=m["epoch"], batch=m["batch"], step=m["step"], perm=saved["extra"].get("perm"),
                         loss_D=list(saved["extra"]["loss_D"]), loss_G=list(saved["extra"]["loss_G"]),
                         d_real=list(saved["extra"]["d_real"]), d_fake=list(saved["extra"]["d_fake"]),
                         seconds=m["seconds"], warned_d_wins=m.get("warned_d_wins", False),
                         records=m.get("records", []))
        _log(f"resumed {resume}: epoch {state.epoch + 1}, batch {state.batch}, step {state.step}")
    fixed_noise_dev = xp.asarray(fixed_noise)

    with atomic_write(os.path.join(cfg.out, "config.json"), "w") as f:
        json.dump({**asdict(cfg), "images": n, "skipped": len(loaded.skipped)}, f, indent=2)
    shown = np.random.default_rng(cfg.seed + 2).permutation(n)[:cfg.n_samples]   # a fair sample, not the first files
    save_grid(images_host[np.sort(shown)], os.path.join(cfg.out, "real.png"), scale=2)

    if state.epoch >= cfg.epochs:
        _log(f"nothing to do: the checkpoint already finished {state.epoch} of {cfg.epochs} epochs "
             f"(pass a larger --epochs to continue)")
    else:
        per_step = estimate_step_seconds(G, D, opt_G, opt_D, loss_fn, images, cfg, xp)
        left = (cfg.epochs - state.epoch) * n_batches - state.batch
        _log(f"{cfg.backend}: {n} images {cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}, "
             f"{n_batches} steps/epoch, epochs {state.epoch + 1}..{cfg.epochs}; "
             f"about {cfg.batch_size / per_step:.0f} examples/sec, ETA {format_seconds(left * per_step)}")

    def save_checkpoint():
        meta = {"config": asdict(cfg), "epoch": state.epoch, "batch": state.batch, "step": state.step,
                "rng_state": rng.bit_generator.state, "seconds": state.seconds,
                "warned_d_wins": state.warned_d_wins, "records": state.records,
                "arch": {"latent_dim": cfg.latent_dim, "features": cfg.features,
                         "image_size": cfg.image_size, "recipe": cfg.recipe, "upsample": cfg.upsample}}
        extra = {"fixed_noise": fixed_noise, "loss_D": np.array(state.loss_D), "loss_G": np.array(state.loss_G),
                 "d_real": np.array(state.d_real), "d_fake": np.array(state.d_fake)}
        if state.perm is not None:
            extra["perm"] = state.perm
        checkpoint.save(ckpt_path, G, D, opt_G, opt_D, meta=meta, extra=extra)

    def record_steps(pending, first_step):
        """Copy the pending steps' numbers to the host (one wait for the GPU), check them, keep them.

        ``pending``: [(z, (loss_D, loss_G, D(x), D(G(z))))] of steps first_step, first_step + 1, ….
        Returns the last step's four numbers; raises TrainingDiverged at the first non-finite one.
        """
        rows = _scalars_to_host([v for _, four in pending for v in four], xp).reshape(len(pending), 4)
        for j, values in enumerate(rows.tolist()):
            if not all(np.isfinite(values)):
                step = first_step + j
                bad = os.path.join(cfg.out, f"diverged_step_{step}.png")
                save_grid(sample(G, pending[j][0]), bad)
                later = (f" (drawn by G as it was {len(pending) - 1 - j} steps later, when the losses were "
                         f"checked)" if j < len(pending) - 1 else "")
                raise TrainingDiverged(
                    f"training diverged at step {step} (epoch {state.epoch + 1}): "
                    f"loss_D {values[0]}, loss_G {values[1]}; the last good checkpoint {ckpt_path} is kept, "
                    f"this batch's samples are in {bad}{later}. Try a lower --lr.")
            for lst, v in zip((state.loss_D, state.loss_G, state.d_real, state.d_fake), values):
                lst.append(v)
        return rows[-1].tolist()

    with _StopSignal() as stop:
        while state.epoch < cfg.epochs:
            if state.batch == 0 or state.perm is None:
                state.perm = rng.permutation(n)
            first_step_of_epoch = len(state.loss_D) - state.batch
            bar = Progress(n_batches, desc=f"epoch {state.epoch + 1}/{cfg.epochs}", unit="batches",
                           enabled=cfg.progress)
            bar.n = state.batch
            t_epoch = last_sync = time.perf_counter()
            examples = 0
            pending = []                 # steps whose four numbers are still device scalars
            while state.batch < n_batches:
                idx = state.perm[state.batch * cfg.batch_size:(state.batch + 1) * cfg.batch_size]
                real = batch_of(images, idx, xp)
                z = xp.asarray(rng.standard_normal((len(idx), cfg.latent_dim, 1, 1)).astype(dtype))
                stats = {}
                loss_D, loss_G = train_step(G, D, opt_G, opt_D, real, z, loss_fn, stats)
                pending.append((z, (loss_D, loss_G, stats["d_real"], stats["d_fake"])))
                state.batch += 1
                state.step += 1
                examples += len(idx)
                if (time.perf_counter() - last_sync >= SYNC_SECONDS[cfg.backend]
                        or state.batch == n_batches or stop.received):
                    values = record_steps(pending, state.step - len(pending) + 1)
                    pending = []
                    last_sync = time.perf_counter()
                    rate = examples / (last_sync - t_epoch)
                    bar.update(state.batch - bar.n, postfix=f"loss_D {values[0]:.3f} loss_G {values[1]:.3f} "
                                                            f"D(x) {values[2]:.2f} D(G(z)) {values[3]:.2f} {rate:.1f} ex/s")
                if stop.received:
                    break
            seconds = time.perf_counter() - t_epoch
            state.seconds += seconds
            bar.close()
            if stop.received:
                save_checkpoint()
                raise KeyboardInterrupt(
                    f"{stop.received}: stopped after step {state.step} (epoch {state.epoch + 1}, batch "
                    f"{state.batch}/{n_batches}); checkpoint written to {ckpt_path}. Continue with:\n"
                    f"  python examples/pokemon.py --resume {ckpt_path} --epochs {cfg.epochs}")

            ep = slice(first_step_of_epoch, len(state.loss_D))
            record = {"epoch": state.epoch + 1, "loss_D": float(np.mean(state.loss_D[ep])),
                      "loss_G": float(np.mean(state.loss_G[ep])), "D(x)": float(np.mean(state.d_real[ep])),
                      "D(G(z))": float(np.mean(state.d_fake[ep])), "examples_per_sec": examples / seconds,
                      "seconds": seconds}
            if cfg.swd_every and record["epoch"] % cfg.swd_every == 0:
                record["swd"] = epoch_swd(G, images_host, cfg)
                _log(f"epoch {record['epoch']}: SWD x1e3 {record['swd']:.1f} (generated vs real, averaged over levels)")
            _warn_if_d_wins(state, ep, record)
            state.records.append(record)
            state.epoch += 1
            state.batch = 0
            state.perm = None
            try:
                save_checkpoint()
                with atomic_write(os.path.join(cfg.out, "log.jsonl"), "w") as f:
                    f.writelines(json.dumps(r) + "\n" for r in state.records)
                save_grid(sample(G, fixed_noise_dev),
                          os.path.join(cfg.out, f"samples_epoch_{record['epoch']:03d}.png"), scale=2)
                save_loss_plot(state.loss_D, state.loss_G, os.path.join(cfg.out, "losses.png"), n_batches)
            except OSError as e:
                raise OSError(f"could not write to {cfg.out} after epoch {record['epoch']} ({e}); "
                              f"the last checkpoint that was written whole is {ckpt_path}. Free some space "
                              f"or pass another --out, then --resume") from None
            if not cfg.progress:
                _log(f"epoch {record['epoch']}: loss_D {record['loss_D']:.3f}, loss_G {record['loss_G']:.3f}, "
                     f"D(x) {record['D(x)']:.2f}, D(G(z)) {record['D(G(z))']:.2f}, "
                     f"{record['examples_per_sec']:.1f} examples/sec")

    summary = {"loss_D": state.loss_D[-1] if state.loss_D else float("nan"),
               "loss_G": state.loss_G[-1] if state.loss_G else float("nan"),
               "seconds": state.seconds, "steps": state.step, "out": cfg.out, "checkpoint": ckpt_path,
               "examples_per_sec": _examples_per_sec(state, n, cfg.batch_size, n_batches)}
    _log(f"loss_D {summary['loss_D']:.3f}, loss_G {summary['loss_G']:.3f}, "
         f"{summary['examples_per_sec']:.1f} examples/sec")
    _log(f"trained {state.epoch} epochs ({state.step} steps) in {format_seconds(state.seconds)}; "
         f"pictures, log and checkpoint in {cfg.out}")
    return summary


def epoch_swd(G, images_host, cfg, n=256):
    """ProGAN's sliced Wasserstein distance (×10³, averaged over levels) between a fixed random
    subset of up to ``n`` training images and as many samples of G from fixed noise (BatchNorm on
    batch statistics, as in the epoch grids). Same subset and noise every epoch; NumPy, a few seconds."""
    from .explore.swd import swd
    k = min(n, len(images_host))
    real = images_host[np.sort(np.random.default_rng(cfg.seed + 3).permutation(len(images_host))[:k])]
    z = np.random.default_rng(cfg.seed + 4).standard_normal((k, cfg.latent_dim, 1, 1))
    params = G.parameters()
    fake = sample(G, backend.asarray(z, dtype=params[0].data.dtype, like=params[0].data))
    return swd(real, fake).mean


def _scalars_to_host(scalars, xp):
    """0-d arrays → a float64 NumPy vector; on a GPU one stack and one copy (one wait), not one per scalar."""
    if xp is np:
        return np.array([float(v) for v in scalars])
    return xp.stack(scalars).astype(xp.float64).get()


def _examples_per_sec(state, n, batch_size, n_batches):
    """Examples seen per second of training over the whole run (d2l's trace figure)."""
    full, rest = divmod(state.step, n_batches)
    seen = full * n + min(rest * batch_size, n)
    return seen / state.seconds if state.seconds else float("nan")


def _warn_if_d_wins(state, ep, record, threshold=0.05):
    """Warn once when D rejects every fake for a whole epoch while loss_G climbs: G has stopped learning."""
    if state.warned_d_wins:
        return
    d_fake = np.asarray(state.d_fake[ep])
    loss_g = np.asarray(state.loss_G[ep])
    half = max(len(loss_g) // 2, 1)
    if len(d_fake) and d_fake.max() < threshold and loss_g[half:].mean() >= loss_g[:half].mean():
        state.warned_d_wins = True
        print(f"warning: D wins outright in epoch {record['epoch']}: D(G(z)) stayed below {threshold} "
              f"(mean {record['D(G(z))']:.3f}) while loss_G rose to {loss_g[-1]:.2f}. G gets almost no "
              "gradient and may not recover; try a lower --lr, the paper's recipe (--recipe paper), "
              "or restart with another --seed.", file=sys.stderr, flush=True)
