"""Sample quality by recipe: train, keep samples at fixed step counts, score them against the sprites.

    # one run: tinygan, the 'sprites' recipe, seed 0, samples kept at 5,040 and 20,160 steps
    .venv/bin/python benchmarks/quality.py train --recipe sprites --seed 0 --steps 5040 20160
    # the same recipe in PyTorch (torch installed; recipe 'paper' only)
    .venv/bin/python benchmarks/quality.py train --framework torch --recipe paper --seed 0 --steps 5040
    # score every run under --out: the table (mean ± spread over seeds) and the side-by-side grids
    .venv/bin/python benchmarks/quality.py report

What a run does. The demo's model and data (32×32, features 32, batch 32, the sprites of
--data trimmed on white, tinygan's loader) and one recipe; at each step count of --steps
it keeps 1,024 samples of G (z from a fixed seed, BatchNorm on the statistics of batches
of 64, as the sample grids) and as many of an exponential moving average of G's weights
(EMA, β = 0.999: free to score beside the raw weights, since it is never trained) — as
uint8 in ``<out>/<framework>_<recipe>_s<seed>/step_NNNNNN.npz`` with a 64-sample grid
beside it and the run's wall time and losses so far in ``runs.jsonl``.

The PyTorch twin (``--framework torch``) is the same run step for step: the networks of
benchmarks/torch_dcgan.py with tinygan's initial weights copied in, the same data order
and the same z (drawn from the same NumPy rng), torch's Adam. Float32 rounding makes the
two drift apart within a few hundred steps, so it is a second sample from the same
distribution of runs, which is what "within the seed spread" asks.

What the report scores (``report``), each sample set against the training sprites:
  * SWD — ProGAN's sliced Wasserstein distance (×10³; tinygan.swd), levels 32 px and
    16 px and their mean, on 666 samples against one fixed half of the sprites, where the
    other half gives the real-vs-real baseline at the same sample size; and on 1,024
    samples against 1,024 sprites (the sample size of the issue's reference figures).
  * KID ×10³ in the features of a network tinygan trains on the sprites themselves
    (tinygan.featuremetric: why this network and these features, and how they were
    checked against what people see on the reference grids), 666 samples against the
    same half; mean over 50 subsets of 500. Unbiased: two samples of one distribution
    score 0 on average.
  * speckle (tinygan.speckle): the share of a figure's pixels whose colour differs from all
    8 neighbours, in %, and the colours per figure after 8-level quantisation, on all
    1,024 samples; real sprites (half B) give the baseline. The numbers for what a person
    complains of first (speckled, many-coloured interiors); ``speckle`` scores saved grids.
  * with ``train --holdout N`` (N sprites never shown, the same N for every run): the
    memorisation check (tinygan.explore.memorisation's pixel distance) against both parts —
    the share of samples nearer to a training sprite than 99% of the held-out sprites are
    (real vs real: 1% by construction), and nearer to a held-out sprite than 99% of the
    training sprites are; and the mean nearest-neighbour distance over that of real vs real.
  * one line per recipe, step count and sampler (G, EMA, and EMA-bn: the average drawn in
    eval mode with BatchNorm statistics re-estimated by its own forward passes,
    ``tinygan.ema.reestimate_batchnorm``): the mean (min–max) over seeds, the wall time;
    then ``<out>/side_by_side_<step>.png``: real sprites, then each recipe's seed-0 grid.

A run keeps itself in ``<run>/checkpoint.npz`` every --checkpoint-every steps and at its
last step; ``train`` of the same run (same recipe, seed and --set) goes on from there, step
for step as if it had never stopped, so a longer --steps extends a finished run and a
killed one loses only the steps since its last checkpoint (--restart: from step 0).
``--also-ema 0.9995 0.9998`` keeps more moving averages of the same G beside the run's own,
each written as the run ``--set ema=β`` would train (β never enters the training step, so that
run's G is this one's bit for bit): a sweep of the average for the price of one run.

One run at a time per core: ``--threads 1`` (the default) and two runs side by side is
how the 2-core machine gets through the table; wall times are then those of a shared
machine (the per-step cost of each recipe is measured quietly in benchmarks/train_step.py).
"""
import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)                        # tinygan from this checkout, installed or not
import threads as threadctl  # noqa: E402  (stdlib only: safe before numpy)

DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "pokesprite-gen8")
N_EVAL, SAMPLE_BATCH, Z_SEED, EMA_DECAY = 1024, 64, 1234, 0.999
SPLIT_SEED = 26              # which sprites --holdout keeps back: the same ones for every run
BN_BATCHES = 8               # forward passes of 64 that re-estimate the EMA's BatchNorm statistics
SAMPLERS = (("fake", "G"), ("fake_ema", "EMA"), ("fake_ema_bn", "EMA-bn"))
REFERENCE = os.path.join(ROOT, "..", "shared", "quality-reference")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one (framework, recipe, seed) and keep samples at --steps")
    t.add_argument("--framework", choices=("tinygan", "torch"), default="tinygan")
    t.add_argument("--recipe", default="sprites", help="a tinygan recipe: paper, d2l, sprites")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, nargs="+", default=[5040, 20160],
                   help="step counts at which samples are kept; training stops at the largest")
    t.add_argument("--threads", type=int, default=1, help="BLAS threads (two runs side by side on 2 cores)")
    t.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="tinygan only: Config fields on top of the recipe, e.g. real_label=0.9 lr_d=4e-4 "
                        "d_spectral_norm=true d_minibatch_std=true; the run is named recipe+FIELD=VALUE…")
    t.add_argument("--checkpoint-every", type=int, default=2520, metavar="N",
                   help="tinygan only: every N steps keep the whole run (models, Adam, EMA, rng) in "
                        "<run>/checkpoint.npz; a later 'train' of the same run goes on from there, step for "
                        "step as if never stopped (default 2520: 60 epochs, ~2 minutes of one core; 0: never)")
    t.add_argument("--restart", action="store_true",
                   help="ignore the run's checkpoint and train it from step 0")
    t.add_argument("--also-ema", type=float, nargs="+", default=[], metavar="BETA",
                   help="tinygan only: also keep moving averages of G at these β, each kept as the run "
                        "recipe+…+ema=BETA of this seed (its own folder and runs.jsonl line) — the run that "
                        "--set ema=BETA would train, bit for bit, since β never enters the training step: "
                        "a sweep of the average at the cost of one run")
    t.add_argument("--holdout", type=int, default=0, metavar="N",
                   help="train on all sprites but N, the same N for every run (chosen by a fixed seed), so that "
                        "report can tell copies of training sprites; the run is named recipe+…+holdout=N "
                        "(default 0: train on all)")
    c = sub.add_parser("cost", help="time each recipe's training step side by side (one process, interleaved)")
    c.add_argument("--recipes", nargs="+", default=["paper", "sprites"])
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--repeats", type=int, default=7, help="interleaved samples of --steps steps per recipe")
    c.add_argument("--steps", type=int, default=40)
    pic = sub.add_parser("picture", help="real sprites and chosen kept grids side by side in one PNG")
    pic.add_argument("panels", nargs="+", metavar="RUN:STEP[:SAMPLER]",
                     help="e.g. tinygan_paper_s0:5040 (G's samples), tinygan_sprites_s0:20160:ema (the moving "
                          "average's), …:ema_bn (the average with its own BatchNorm statistics)")
    pic.add_argument("--save", required=True, help="the PNG to write")
    sp = sub.add_parser("speckle", help="speckle, colours and the finest level of SWD of saved 8x8 grids and of "
                                        "the real sprites (default: ../shared/quality-reference and the demo's)")
    sp.add_argument("grids", nargs="*", metavar="GRID.png")
    sp.add_argument("--json", help="also write the table here")
    r = sub.add_parser("report", help="score every kept sample set under --out; print the table")
    r.add_argument("--json", help="also write the table here")
    r.add_argument("--also", nargs="+", default=[], metavar="REPORT.json",
                   help="merge in the scored runs of earlier reports (their --json): runs trained in "
                        "another session or on another machine, whose folders are gone; a seed scored "
                        "here replaces the same seed's saved scores")
    for p in (t, c, pic, r, sp):
        p.add_argument("--data", default=DEFAULT_DATA, help="sprite folder or zip (default: ../shared's)")
        p.add_argument("--out", default=os.path.join(ROOT, "runs", "quality"), help="where runs are kept")
    args = ap.parse_args(argv)
    if args.command == "train":
        if any(s <= 0 for s in args.steps):
            ap.error(f"--steps must be positive step counts, got {args.steps}")
        if args.checkpoint_every < 0:
            ap.error(f"--checkpoint-every must be 0 (never) or a positive step count, got {args.checkpoint_every}")
        if "numpy" not in sys.modules:        # a command line: the threads are set before parse_setting
            threadctl.configure(args.threads)  # imports tinygan, and with it numpy (and OpenBLAS)
        try:
            args.overrides = dict(parse_setting(x) for x in args.set)
        except ValueError as e:
            ap.error(f"--set: {e}")
        if not 0 < args.overrides.get("ema", EMA_DECAY) < 1:
            ap.error(f"--set ema={args.overrides['ema']}: every run is scored with the moving average of G too; "
                     f"its β must be in (0, 1)")
        if args.holdout < 0:
            ap.error(f"--holdout must be 0 or a count of sprites, got {args.holdout}")
        own = args.overrides.get("ema", EMA_DECAY)
        if args.also_ema and args.framework != "tinygan":
            ap.error("--also-ema: tinygan runs only")
        for beta in args.also_ema:
            if not 0 < beta < 1 or beta == own or args.also_ema.count(beta) > 1:
                ap.error(f"--also-ema {beta}: each β in (0, 1), once, and not the run's own ({own})")
        held = [f"holdout={args.holdout}"] if args.holdout else []
        args.variant = "+".join([args.recipe, *args.set, *held])
        others = [x for x in args.set if parse_setting(x)[0] != "ema"]
        args.also_variants = {beta: "+".join([args.recipe, *others, f"ema={beta}", *held]) for beta in args.also_ema}
    return args


def parse_setting(text):
    """'real_label=0.9' → ('real_label', 0.9), typed as the Config field is."""
    from dataclasses import fields

    from tinygan.train import Config
    name, eq, value = text.partition("=")
    types = {f.name: f.type for f in fields(Config)}
    if not eq or name not in types:
        raise ValueError(f"{text!r} is not FIELD=VALUE with a tinygan.train.Config field")
    kind = {"bool": bool, "float": float, "int": int, "str": str}.get(str(types[name]).replace("<class '", "")
                                                                      .rstrip("'>"), str)
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"{name} takes true or false, got {value!r}")
        return name, value.lower() == "true"
    return name, kind(value)


# ----- training ---------------------------------------------------------------------------------

def demo_config(data, recipe, seed, out, overrides=None):
    """The demo's run of ``recipe`` (32×32, features 32, batch 32), with ``overrides`` on it."""
    from tinygan.train import Config
    return Config(backend="numpy", data=data, out=out, recipe=recipe, seed=seed, image_size=32,
                  features=32, batch_size=32, progress=False, **(overrides or {})).resolved()


def load_sprites(data):
    """tinygan's loader as the demo runs it (32×32, trimmed, on white), quietly: a LoadResult."""
    from tinygan.data import load_images
    return load_images(data, image_size=32, background=(255, 255, 255), trim=True, verbose=False)


def split(n, holdout):
    """(train, heldout): the sorted indices of n sprites (in the loader's file order) with ``holdout``
    of them kept back, chosen by a permutation of SPLIT_SEED: the same split for every run."""
    import numpy as np
    if not 0 <= holdout < n:
        raise SystemExit(f"quality.py: --holdout {holdout} leaves nothing to train on ({n} sprites)")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(order[holdout:]), np.sort(order[:holdout])


def training_data(data, holdout, out):
    """What a run trains on: ``data`` itself, or with a hold-out a folder of symbolic links to the
    training part of its sprites, made once under <out>/data (no sprite is copied)."""
    import shutil
    if not holdout:
        return data
    if not os.path.isdir(data):
        raise SystemExit(f"quality.py: --holdout needs --data to be a folder of images, not {data}")
    files = load_sprites(data).files
    train, _ = split(len(files), holdout)
    folder = os.path.join(out, "data", f"{os.path.basename(os.path.normpath(data))}_holdout{holdout}_seed{SPLIT_SEED}")
    if os.path.isdir(folder):
        return folder
    tmp = f"{folder}.{os.getpid()}.tmp"
    for i in train:
        link = os.path.join(tmp, files[i])
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.abspath(os.path.join(data, files[i])), link)
    try:
        os.rename(tmp, folder)
    except OSError:                                  # another run made it first: the same links
        shutil.rmtree(tmp)
    return folder


def eval_noise(latent_dim, dtype):
    import numpy as np
    return np.random.default_rng(Z_SEED).standard_normal((N_EVAL, latent_dim, 1, 1)).astype(dtype)


def train_tinygan(args, folder, also=None):
    """Yield (step, seconds, G, G_ema, losses, sample) at each kept step count; tinygan's own training
    step. Goes on from ``folder``'s checkpoint when there is one (unless --restart). ``also``: a dict
    this fills with {β: EMA} for --also-ema, updated after every step as the run's own average is."""
    from tinygan.nn import sampling
    from tinygan.train import Run
    from tinygan.checkpoint import CheckpointError
    from tinygan.ema import EMA
    # every recipe keeps the moving average of G here (β = EMA_DECAY, whatever the recipe says),
    # so that each is scored with both samplers
    cfg = demo_config(args.train_data, args.recipe, args.seed, folder, {"ema": EMA_DECAY, **args.overrides})
    path = os.path.join(folder, "checkpoint.npz")
    going_on = os.path.exists(path) and not args.restart
    try:
        r = Run(cfg, resume=path if going_on else None)      # r.step moves r.ema on; a resume restores it
    except CheckpointError as e:
        raise SystemExit(f"quality.py: {e}; remove it or pass --restart")
    saved = resumable(path, r.cfg) if going_on else None
    # the run's length in epochs is what anneals instance noise to 0 (Run.noise_sigma): make it
    # this run's, max(--steps), not the demo's default 120 epochs
    r.cfg.epochs = -(-max(args.steps) // r.n_batches)
    history, seconds = [], 0.0
    if saved:
        history, seconds = [list(row) for row in saved["extra"]["recent_losses"]], r.state.seconds
    also = {} if also is None else also
    for beta in args.also_ema:                           # the same ramp as the run's own average
        also[beta] = EMA(r.G, beta, r.cfg.ema_rampup)
        if saved:                                         # else the run starts at step 0, as the average does
            also[beta].model.load_state_dict(averages_saved(saved, beta, path))

    def sample(G, z):
        with sampling(G, bn="batch"):                         # BatchNorm on batch statistics; G left as it was
            return G(z)

    def update_also():                                    # after r.step, before _loop counts the step:
        for average in also.values():                     # the step count Run.step gave its own average
            average.update(r.state.step)

    def save(seconds):
        r.state.seconds = seconds
        save_run(path, r, history, also)
    yield from _loop(r, lambda real, z: r.step(real, z), update_also, r.G, r.ema.model, sample, args.steps,
                     history, seconds, save if args.checkpoint_every else None, args.checkpoint_every)


def averages_saved(saved, beta, path):
    """The state_dict of the --also-ema average β that ``save_run`` put in the checkpoint ``saved``;
    an exit with one line when the run was kept without it (its average would start mid-run)."""
    prefix = f"also_ema={beta}/"
    state = {k[len(prefix):]: v for k, v in saved["extra"].items() if k.startswith(prefix)}
    if not state:
        raise SystemExit(f"quality.py: {path} holds no moving average at β {beta} (the run was trained without "
                         f"--also-ema {beta}); train it with --restart, or without --also-ema {beta}")
    return state


def resumable(path, cfg):
    """The ``checkpoint.load``-ed run at ``path`` if it was trained with the settings ``cfg`` (a
    Run's, as it adjusted them); else exit with one line saying what differs and what to do."""
    from dataclasses import asdict

    from tinygan import checkpoint
    from tinygan.train import RUN_DEFINING, Config
    try:
        saved = checkpoint.load(path)
    except checkpoint.CheckpointError as e:
        raise SystemExit(f"quality.py: {e}; remove it or pass --restart")
    was, now = saved["meta"].get("config", {}), asdict(cfg)
    was = {k: was.get(k, getattr(Config, k, None)) for k in RUN_DEFINING}    # a field newer than the file: its default
    differ = [f"{k} {was[k]!r} -> {now[k]!r}" for k in RUN_DEFINING if k != "data" and was[k] != now[k]]
    if any(k.startswith("ema/") for k in saved["extra"]) and not saved["G_ema"]:
        raise SystemExit(f"quality.py: {path} was written by a quality.py older than 3ae5f51 (its EMA under "
                         f"extra/ema/); go on with that version, or pass --restart")
    if differ or "recent_losses" not in saved["extra"] or not saved["G_ema"]:
        raise SystemExit(f"quality.py: {path} is not a checkpoint of this run ({', '.join(differ) or 'no EMA'}); "
                         f"remove it or pass --restart")
    print(f"{os.path.basename(os.path.dirname(path))}: going on from step {saved['meta']['step']} ({path})",
          file=sys.stderr, flush=True)
    return saved


def save_run(path, r, history, also=None):
    """Everything ``train_tinygan`` needs to go on: the Run's checkpoint (with its EMA of G) plus
    the losses of the last 500 steps (the figure runs.jsonl reports) and the --also-ema averages
    ({β: EMA}), in one atomic file."""
    import numpy as np
    extra = {"recent_losses": np.array(history[-500:], dtype=np.float64).reshape(-1, 2)}
    for beta, average in (also or {}).items():
        extra.update({f"also_ema={beta}/{k}": v for k, v in average.model.state_dict().items()})
    r.save_checkpoint(path, extra=extra)


def train_torch(args, folder):
    """The same run in PyTorch: tinygan's initial weights, data order and z; torch's step and Adam."""
    import copy

    import torch
    from torch_dcgan import Discriminator, Generator, from_tinygan, torch_train_step
    from tinygan.train import Run
    if args.recipe != "paper" or args.overrides:
        raise SystemExit(f"quality.py: --framework torch runs the 'paper' recipe only, without --set; not {args.variant!r}")
    torch.manual_seed(args.seed)
    r = Run(demo_config(args.train_data, args.recipe, args.seed, folder))
    G = from_tinygan(r.G, Generator(100, 32, 32))
    D = from_tinygan(r.D, Discriminator(32, 32))
    opt = lambda m: torch.optim.Adam(m.parameters(), lr=r.cfg.lr, betas=(r.cfg.beta1, r.cfg.beta2))  # noqa
    opt_G, opt_D = opt(G), opt(D)
    G_ema = copy.deepcopy(G)

    def step(real, z):
        return torch_train_step(G, D, opt_G, opt_D, torch.from_numpy(real), torch.from_numpy(z))

    @torch.no_grad()
    def ema_update():
        for a, p in zip(G_ema.parameters(), G.parameters()):
            a.mul_(EMA_DECAY).add_(p, alpha=1 - EMA_DECAY)
        for a, b in zip(G_ema.buffers(), G.buffers()):
            a.copy_(b)

    @torch.no_grad()
    def sample(model, z):
        model.train()                                         # BatchNorm on batch statistics
        return model(torch.from_numpy(z)).numpy()
    yield from _loop(r, step, ema_update, G, G_ema, sample, args.steps, [], 0.0)


def _loop(r, step, ema_update, G, G_ema, sample, keep, history, seconds, save=None, every=0):
    """Train with ``step`` over r's batches until max(keep) steps; yield at each step count in keep.

    ``history``: the losses so far (of a run that goes on, its last 500); ``seconds``: its
    training time so far. ``save(seconds)``, if given, is called every ``every`` steps and at the last."""
    import numpy as np
    s, last = r.state, max(keep)
    t0 = time.perf_counter() - seconds
    while s.step < last:
        for real, z in r.batches():
            losses = step(real, z)
            ema_update()
            history.append([float(v) for v in losses])
            del history[:-500]
            s.batch += 1
            s.step += 1
            if s.step in keep:
                yield s.step, time.perf_counter() - t0, G, G_ema, np.mean(history, axis=0), sample
            if save is not None and (s.step % every == 0 or s.step == last):   # the last: a later run may go on
                save(time.perf_counter() - t0)
            if s.step >= last:
                return
        s.epoch, s.batch, s.perm = s.epoch + 1, 0, None


def samples_of(G, sample, z):
    """1,024 samples as uint8 (N, H, W, 3), drawn in batches of 64 (BatchNorm on batch statistics)."""
    import numpy as np
    from tinygan.images import to_uint8
    return np.concatenate([to_uint8(sample(G, z[i:i + SAMPLE_BATCH])) for i in range(0, len(z), SAMPLE_BATCH)])


def ema_bn_samples(G_ema, z):
    """1,024 samples of a copy of the moving average with its own BatchNorm statistics
    (``reestimate_batchnorm``: BN_BATCHES forward passes of 64 fresh z), drawn in eval mode."""
    import copy

    import numpy as np
    from tinygan.ema import reestimate_batchnorm
    from tinygan.images import to_uint8
    from tinygan.nn import sampling
    model = copy.deepcopy(G_ema)                          # the run's EMA keeps its buffers
    rng = np.random.default_rng(Z_SEED + 1)
    reestimate_batchnorm(model, [rng.standard_normal((SAMPLE_BATCH,) + z.shape[1:]).astype(z.dtype)
                                 for _ in range(BN_BATCHES)])
    with sampling(model, bn="running"):
        return np.concatenate([to_uint8(model(z[i:i + SAMPLE_BATCH])) for i in range(0, len(z), SAMPLE_BATCH)])


def train(args):
    import numpy as np
    name = f"{args.framework}_{args.variant}_s{args.seed}"
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    args.train_data = training_data(args.data, args.holdout, args.out)
    z = eval_noise(100, np.float32)
    also = {}
    runner = (lambda a, f: train_tinygan(a, f, also)) if args.framework == "tinygan" else train_torch
    for step, seconds, G, G_ema, losses, sample in runner(args, folder):
        fake = samples_of(G, sample, z)
        keep(args, args.variant, step, seconds, losses, fake, G_ema, sample, z)
        for beta, average in also.items():            # the same G, another average: the run ema=β trains
            keep(args, args.also_variants[beta], step, seconds, losses, fake, average.model, sample, z)


def keep(args, variant, step, seconds, losses, fake, G_ema, sample, z):
    """Write one run's samples at ``step`` (G's ``fake``, the average's, and for tinygan the average's
    with its own BatchNorm statistics) as <out>/<framework>_<variant>_s<seed>/step_N.npz with its
    grids, and its line in <out>/runs.jsonl."""
    import numpy as np
    from tinygan.images import from_uint8, save_grid
    from tinygan.io import atomic_write
    name = f"{args.framework}_{variant}_s{args.seed}"
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    kept = {"fake": fake, "fake_ema": samples_of(G_ema, sample, z)}
    if args.framework == "tinygan":
        kept["fake_ema_bn"] = ema_bn_samples(G_ema, z)
    path = os.path.join(folder, f"step_{step:06d}.npz")
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **kept)
    for key, suffix in (("fake", ""), ("fake_ema", "_ema"), ("fake_ema_bn", "_ema_bn")):
        if key in kept:
            save_grid(from_uint8(kept[key][:64]), os.path.join(folder, f"step_{step:06d}{suffix}.png"), scale=2)
    line = {"run": name, "framework": args.framework, "recipe": variant, "seed": args.seed,
            "step": step, "seconds": round(seconds, 1), "loss_D": float(losses[0]),
            "loss_G": float(losses[1]), "samples": os.path.relpath(path, args.out), "holdout": args.holdout}
    with open(os.path.join(args.out, "runs.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


def interleaved_times(runs, batches, repeats, steps):
    """{name: [seconds per step, one per round]} of the Runs ``runs`` ({name: Run}) stepping on their
    ``batches`` ({name: (real, z)}), ``steps`` steps each a round, after one warm-up step each. The
    order turns by one every round, so that no recipe is always the one timed first (the first of a
    round read 7–13% dearer than the same step timed later in it)."""
    names = list(runs)
    for n in names:
        runs[n].step(*batches[n])                                  # warm-up
    times = {n: [] for n in names}
    for i in range(repeats):
        for n in names[i % len(names):] + names[:i % len(names)]:
            t = time.perf_counter()
            for _ in range(steps):
                runs[n].step(*batches[n])
            times[n].append((time.perf_counter() - t) / steps)
    return times


def cost(args):
    """Median over interleaved samples of each recipe's seconds per step, and its ratio to the first's."""
    import statistics

    from tinygan.train import Run
    runs = {recipe: Run(demo_config(args.data, recipe, 0, os.path.join(args.out, "cost"))) for recipe in args.recipes}
    times = interleaved_times(runs, {n: next(r.batches()) for n, r in runs.items()}, args.repeats, args.steps)
    print(threadctl.machine_line())
    first = args.recipes[0]
    for recipe in args.recipes:
        ratios = [a / b for a, b in zip(times[recipe], times[first])]
        print(f"{recipe:8} {1e3 * statistics.median(times[recipe]):7.2f} ms/step  "
              f"{statistics.median(ratios):.3f} x {first}'s (pairs {min(ratios):.3f}–{max(ratios):.3f})")


# ----- scoring ----------------------------------------------------------------------------------

def real_sets(data):
    """(real_1024, half_a, half_b): 1,024 training sprites, and two fixed disjoint halves of the set."""
    import numpy as np
    from tinygan.data import load_images
    images = load_images(data, image_size=32, background=(255, 255, 255), trim=True, verbose=False).images
    order = np.random.default_rng(7).permutation(len(images))
    half = len(images) // 2
    return images[np.sort(order[:N_EVAL])], images[order[:half]], images[order[half:2 * half]]


def swd_scores(fake, reals):
    """{'swd', 'swd32', 'swd16', 'swd_1024'}: SWD ×10³ of 666 samples against half A of the sprites
    (the size at which half B gives the real-vs-real baseline) and of 1,024 samples against
    1,024 sprites (the sample size of the issue's reference figures)."""
    from tinygan.swd import swd
    real, half_a, _ = reals
    half = swd(fake[:len(half_a)], half_a)
    return {"swd": half.mean, "swd32": half.levels[0], "swd16": half.levels[-1],
            "swd_1024": swd(fake[:len(real)], real).mean}


def feature_metric(reals):
    """(net, features of half A): the feature network of tinygan.featuremetric, trained on the sprites."""
    import numpy as np
    from tinygan.featuremetric import cached_feature_net, features
    _, half_a, half_b = reals
    net = cached_feature_net(np.concatenate([half_a, half_b]), seed=0)
    return net, features(net, half_a)


def kid_scores(fake, metric):
    """{'kid', 'kid_std', 'precision', 'recall'} of 666 samples against half A, in the feature net's
    space: KID ×10³ (mean, spread over 50 subsets of 500), precision and recall (k = 3)."""
    from tinygan.featuremetric import features, kid, precision_recall
    net, real_features = metric
    fake_features = features(net, fake[:len(real_features)])
    k, std = kid(fake_features, real_features, subsets=50, subset_size=500)
    p, r = precision_recall(real_features, fake_features, k=3)
    return {"kid": 1e3 * k, "kid_std": 1e3 * std, "precision": p, "recall": r}


def speckle_of(fake):
    """{'speckle', 'speckle_se', 'colours'} of uint8 samples (N, H, W, 3): tinygan.speckle's numbers."""
    from tinygan.speckle import speckle_scores
    return speckle_scores(fake)


def memorisation_scores(fake, parts):
    """Near-copies of uint8 samples (N, H, W, 3) among the training and the held-out sprites.

    ``parts`` = (train, heldout) images (·, 3, 32, 32) in [-1, 1]. With d the RMS pixel distance
    to the nearest sprite of a part (tinygan.explore.memorisation): 'copies_train' is the % of
    samples nearer to a training sprite than 99% of the held-out sprites are (real vs real: 1%),
    'copies_heldout' the same against the held-out sprites, with as many training sprites as
    the baseline; 'nn_train', 'nn_heldout' the samples' mean d over real vs real's (≪ 1: copying).
    """
    import numpy as np
    from tinygan.explore.memorisation import nearest_neighbours
    from tinygan.images import from_uint8
    train, held = parts
    x = from_uint8(fake)
    pick = np.sort(np.random.default_rng(SPLIT_SEED).choice(len(train), min(len(held), len(train)), replace=False))
    out = {}
    for name, pool, baseline in (("train", train, held), ("heldout", held, train[pick])):
        d = nearest_neighbours(x, pool, 1)[1][:, 0]
        real = nearest_neighbours(baseline, pool, 1)[1][:, 0]
        out[f"copies_{name}"] = 100.0 * float((d < np.percentile(real, 1)).mean())
        out[f"nn_{name}"] = float(d.mean() / real.mean())
    return out


def cached_scores(path, sampler, reals, metric, parts=None):
    """Every score of one kept sample set, remembered in a .json beside its .npz (scoring is slow);
    None when the file holds no such sampler (runs kept before it existed). ``parts``: the
    (train, heldout) sprites of a run trained with --holdout (memorisation_scores)."""
    import numpy as np
    from tinygan.images import from_uint8
    from tinygan.io import atomic_write
    cache = path[:-4] + ".scores.json"
    scores = json.load(open(cache)) if os.path.exists(cache) else {}
    stamp = [os.path.getsize(path), os.path.getmtime(path)]
    if scores.setdefault("samples", stamp) != stamp:   # scores of an earlier file of that name (a cache
        scores = {"samples": stamp}                    # written before stamps were kept is taken as it is)
    with np.load(path) as kept:
        if sampler not in kept.files:
            return None
        raw = kept[sampler]
    mine = scores.setdefault(sampler, {})
    todo = [("swd", lambda: swd_scores(from_uint8(raw), reals)), ("recall", lambda: kid_scores(from_uint8(raw), metric)),
            ("speckle", lambda: speckle_of(raw))] + ([("copies_train", lambda: memorisation_scores(raw, parts))]
                                                     if parts is not None else [])
    if any(key not in mine for key, _ in todo):
        for key, score in todo:
            mine.update(score() if key not in mine else {})
        with atomic_write(cache, "w") as f:
            json.dump(scores, f)
    return mine


def spread(values, digits=2):
    """'mean (min–max)' of one score over seeds."""
    import numpy as np
    v = np.asarray(values)
    return f"{v.mean():6.{digits}f} ({v.min():5.{digits}f}–{v.max():5.{digits}f})"


def latest_per_sample_set(lines):
    """runs.jsonl's lines, one per sample file: a run trained again to a step it kept before
    overwrote that file, so only its last line describes it."""
    latest = {}
    for line in lines:
        latest.pop(line["samples"], None)
        latest[line["samples"]] = line
    return list(latest.values())


def merged_rows(paths):
    """{(framework, recipe, steps, sampler): [run, …]} from saved reports (``report --json``), in
    order; a later file's run of a seed replaces an earlier one's. A run is a function of its
    code, seed and BLAS kernel (the two AVX-512 kinds run the same bits; the Zen 3 kind's
    Haswell kernel other ones, QUALITY.md), so runs scored elsewhere join this one's as more
    seeds of the recipe; KID's feature net differs slightly between kernels, SWD does not."""
    rows = {}
    for path in paths:
        try:
            with open(path) as f:
                saved = json.load(f)["rows"]
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"quality.py report --also: {path} is not a saved report ({type(e).__name__}: {e})")
        for row in saved:
            key = (row["framework"], row["recipe"], row["steps"], row["sampler"])
            seeds = {x["seed"] for x in row["runs"]}
            rows[key] = [x for x in rows.get(key, []) if x["seed"] not in seeds] + row["runs"]
    return rows


def baselines(reals, metric):
    """Real vs real: half B against half A, every score the table has (a dict)."""
    from tinygan.featuremetric import features, kid, precision_recall
    from tinygan.images import to_uint8
    from tinygan.swd import swd
    half_b = features(metric[0], reals[2])
    p, r = precision_recall(metric[1], half_b, k=3)
    return {"swd": swd(reals[2], reals[1]).mean, "kid": 1e3 * kid(half_b, metric[1], subsets=50, subset_size=500)[0],
            "precision": p, "recall": r, **speckle_of(to_uint8(reals[2]))}


def holdout_parts(data, holdout, cache={}):
    """(train, heldout) images of the sprites for a run trained with --holdout ``holdout`` (kept per process)."""
    if (data, holdout) not in cache:
        images = load_sprites(data).images
        train, held = split(len(images), holdout)
        cache[data, holdout] = (images[train], images[held])
    return cache[data, holdout]


def row_text(key, rs):
    """One line of the table: a (framework, recipe, steps, sampler) over its seeds."""
    import numpy as np
    mean = lambda k: np.mean([x.get(k, np.nan) for x in rs])              # noqa: E731
    copies = f"{mean('copies_train'):5.1f} /{mean('copies_heldout'):5.1f}" if "copies_train" in rs[0] else " " * 12
    return (f"{key[0]:9} {key[1]:7} {key[2]:>6} {key[3]:>6} {len(rs):>5}  {spread([x['swd'] for x in rs])} "
            f"{spread([x['kid'] for x in rs])}  {spread([x['precision'] for x in rs], 2)}  "
            f"{spread([x['recall'] for x in rs], 2)}  {spread([x.get('speckle', np.nan) for x in rs], 1)}  "
            f"{mean('colours'):7.1f}  {mean('swd_1024'):9.2f}  {mean('seconds') / 60:7.1f}  {copies}  "
            + ", ".join(f"s{x['seed']} {x['swd']:.1f}/{x['kid']:.1f}" for x in rs))


def report(args):
    """Score every kept sample set; print one line per (framework, recipe, steps, sampler)."""
    lines = latest_per_sample_set(json.loads(x) for x in open(os.path.join(args.out, "runs.jsonl")))
    reals = real_sets(args.data)
    metric = feature_metric(reals)
    base = baselines(reals, metric)
    rows = merged_rows(args.also)
    for line in lines:
        parts = holdout_parts(args.data, line["holdout"]) if line.get("holdout") else None
        for sampler, name in SAMPLERS:
            key = (line["framework"], line["recipe"], line["step"], name)
            scores = cached_scores(os.path.join(args.out, line["samples"]), sampler, reals, metric, parts)
            if scores is None:
                continue
            here = {**scores, **{k: line[k] for k in ("seed", "seconds", "loss_D")}}
            rows[key] = [x for x in rows.get(key, []) if x["seed"] != line["seed"]] + [here]
    print(threadctl.machine_line())
    print(f"real vs real (two halves of the sprites, {len(reals[1])} each): SWD {base['swd']:.2f}, "
          f"KID x1e3 {base['kid']:.2f}, precision {base['precision']:.2f}, recall {base['recall']:.2f}, "
          f"speckle {base['speckle']:.1f}% (±{base['speckle_se']:.1f}), colours {base['colours']:.1f}; copies 1.0% "
          f"of each part by construction (--holdout runs)")
    print(f"{'framework':9} {'recipe':7} {'steps':>6} {'G':>6} seeds  {'SWD, 666 (min-max)':>21} "
          f"{'KID x1e3 (min-max)':>21}  {'precision':>17}  {'recall':>17}  {'speckle % (min-max)':>19}  "
          f"{'colours':>7}  {'SWD 1,024':>9}  {'minutes':>7}  {'copies tr/ho':>12}  per seed: SWD / KID")
    table = []
    for key in sorted(rows):
        rs = sorted(rows[key], key=lambda x: x["seed"])
        print(row_text(key, rs))
        table.append({"framework": key[0], "recipe": key[1], "steps": key[2], "sampler": key[3], "runs": rs})
    side_by_side(args, lines, reals)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": threadctl.machine(), "real_vs_real": base, "rows": table}, f, indent=1)
    return table


def in_a_row(panels):
    """Grids (H, W_i, 3) of one height side by side, 8 white pixels apart."""
    import numpy as np
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)


def picture(args):
    """``real`` and each RUN:STEP[:SAMPLER] panel's first 64 samples, 8 px apart, saved at 2×."""
    import numpy as np
    from tinygan.images import make_grid, save_png
    real = real_sets(args.data)[1]
    panels = [make_grid(np.resize(real, (64,) + real.shape[1:]))]            # 64, the set repeated if smaller
    panels += [make_grid(kept_samples(args.out, spec)[:64]) for spec in args.panels]
    save_png(in_a_row(panels), args.save, 2)
    print(f"{args.save}: real, {', '.join(args.panels)}")


def kept_samples(out, spec):
    """The kept samples of 'RUN:STEP[:ema|:ema_bn]' under ``out`` as (N, 3, 32, 32) in [-1, 1] (G's by default)."""
    import numpy as np
    from tinygan.images import from_uint8
    run, step, *which = spec.split(":")
    key = {"": "fake", "g": "fake", "ema": "fake_ema", "ema_bn": "fake_ema_bn"}.get(which[0] if which else "")
    path = os.path.join(out, run, f"step_{int(step):06d}.npz")
    if not os.path.exists(path) or key is None:
        raise SystemExit(f"quality.py picture: no {spec} ({path}; train {run} to {step} steps first; "
                         f"a sampler is g, ema or ema_bn)")
    with np.load(path) as kept:
        if key not in kept.files:
            raise SystemExit(f"quality.py picture: {path} holds no {key} (kept before that sampler existed)")
        return from_uint8(kept[key])


def speckle_table(args):
    """Speckle, colours and SWD's finest level (32 px; 64 images against 64 real sprites, mean ± sd over
    5 draws of those) of saved 8×8 grids, and of the real sprites themselves (64 at random for SWD):
    one line each."""
    import glob

    import numpy as np
    from PIL import Image

    from tinygan.images import from_uint8, to_uint8
    from tinygan.speckle import grid_tiles
    from tinygan.swd import swd
    grids = args.grids or sorted(glob.glob(os.path.join(REFERENCE, "*.png"))) + [
        os.path.join(ROOT, "docs", "img", name) for name in ("demo_real.png", "demo_samples.png")]
    real = to_uint8(load_sprites(args.data).images)
    sets = [(f"real sprites, all {len(real)}", real)]
    sets += [(os.path.relpath(g, ROOT), grid_tiles(np.asarray(Image.open(g).convert("RGB")))) for g in grids]
    rng, rows = np.random.default_rng(0), []
    print(f"{'images':58} {'n':>5} {'speckle %':>9} {'± se':>5} {'colours':>7} {'SWD 32px (64)':>13} {'sd':>4}")
    for name, u in sets:
        n = min(64, len(u), len(real))
        own = u[np.sort(rng.choice(len(u), n, replace=False))]           # a grid's 64, or 64 of the real set
        finest = [swd(from_uint8(own), from_uint8(real[rng.choice(len(real), n, replace=False)])).levels[0]
                  for _ in range(5)]
        rows.append({"images": name, "n": len(u), **speckle_of(u), "swd32": float(np.mean(finest)),
                     "swd32_sd": float(np.std(finest))})
        r = rows[-1]
        print(f"{name:58} {r['n']:>5} {r['speckle']:9.1f} {r['speckle_se']:5.1f} {r['colours']:7.1f} "
              f"{r['swd32']:13.2f} {r['swd32_sd']:4.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": threadctl.machine(), "rows": rows}, f, indent=1)
    return rows


def side_by_side(args, lines, reals):
    """One picture per step count: 64 real sprites, then each (framework, recipe)'s seed-0 grid.

    Every grid is G's (not the EMA's) first 64 samples of the fixed evaluation noise."""
    import numpy as np
    from tinygan.images import from_uint8, make_grid, save_png
    real = make_grid(np.resize(reals[1], (64,) + reals[1].shape[1:]))    # 64 sprites in random order (half A)
    for step in sorted({x["step"] for x in lines}):
        panels, names = [real], ["real"]
        for x in sorted(lines, key=lambda x: (x["framework"], x["recipe"])):
            if x["step"] == step and x["seed"] == 0:
                kept = np.load(os.path.join(args.out, x["samples"]))
                panels.append(make_grid(from_uint8(kept["fake"][:64])))
                names.append(f"{x['framework']} {x['recipe']}")
        path = os.path.join(args.out, f"side_by_side_{step:06d}.png")
        save_png(in_a_row(panels), path, 2)
        print(f"{path}: {', '.join(names)}")


def main(argv=None):
    args = parse_args(argv)
    if args.command in ("train", "cost"):
        threadctl.configure(args.threads)
        (train if args.command == "train" else cost)(args)
    elif args.command == "picture":
        picture(args)
    elif args.command == "speckle":
        speckle_table(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
