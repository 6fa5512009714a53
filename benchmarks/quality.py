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
    16 px and their mean, on 1,024 samples against 1,024 sprites; and at 666 against one
    fixed half of the sprites, where the other half gives the real-vs-real baseline at
    the same sample size.
  * one line per recipe, step count and sampler (G, EMA): the mean ± spread (min–max)
    over seeds; then ``<out>/side_by_side_<step>.png``: real sprites, then each recipe's
    seed-0 grid, in one picture.

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
    r = sub.add_parser("report", help="score every kept sample set under --out; print the table")
    r.add_argument("--json", help="also write the table here")
    for p in (t, r):
        p.add_argument("--data", default=DEFAULT_DATA, help="sprite folder or zip (default: ../shared's)")
        p.add_argument("--out", default=os.path.join(ROOT, "runs", "quality"), help="where runs are kept")
    args = ap.parse_args(argv)
    if args.command == "train" and any(s <= 0 for s in args.steps):
        ap.error(f"--steps must be positive step counts, got {args.steps}")
    return args


# ----- training ---------------------------------------------------------------------------------

def demo_config(data, recipe, seed, out):
    from tinygan.train import Config
    return Config(backend="numpy", data=data, out=out, recipe=recipe, seed=seed, image_size=32,
                  features=32, batch_size=32, progress=False).resolved()


def eval_noise(latent_dim, dtype):
    import numpy as np
    return np.random.default_rng(Z_SEED).standard_normal((N_EVAL, latent_dim, 1, 1)).astype(dtype)


def train_tinygan(args, folder):
    """Yield (step, G, G_ema, losses) at each kept step count; tinygan's own training step."""
    from tinygan.ema import EMA
    from tinygan.train import Run
    r = Run(demo_config(args.data, args.recipe, args.seed, folder))
    ema = EMA(r.G, EMA_DECAY)
    sample = lambda G, z: G(z)                                 # noqa: E731
    yield from _loop(r, lambda real, z: r.step(real, z), ema.update, r.G, ema.model, sample, args.steps)


def train_torch(args, folder):
    """The same run in PyTorch: tinygan's initial weights, data order and z; torch's step and Adam."""
    import copy

    import torch
    from torch_dcgan import Discriminator, Generator, from_tinygan, torch_train_step
    from tinygan.train import Run
    if args.recipe != "paper":
        raise SystemExit(f"quality.py: --framework torch runs the 'paper' recipe only, not {args.recipe!r}")
    torch.manual_seed(args.seed)
    r = Run(demo_config(args.data, args.recipe, args.seed, folder))
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
    yield from _loop(r, step, ema_update, G, G_ema, sample, args.steps)


def _loop(r, step, ema_update, G, G_ema, sample, keep):
    """Train with ``step`` over r's batches until max(keep) steps; yield at each step count in keep."""
    import numpy as np
    s, last = r.state, max(keep)
    history = []
    while s.step < last:
        for real, z in r.batches():
            losses = step(real, z)
            ema_update()
            history.append([float(v) for v in losses])
            s.batch += 1
            s.step += 1
            if s.step in keep:
                yield s.step, G, G_ema, np.mean(history[-500:], axis=0), sample
            if s.step >= last:
                return
        s.epoch, s.batch, s.perm = s.epoch + 1, 0, None


def samples_of(G, sample, z):
    """1,024 samples as uint8 (N, H, W, 3), drawn in batches of 64 (BatchNorm on batch statistics)."""
    import numpy as np
    from tinygan.images import to_uint8
    from tinygan.nn import sampling
    parts = []
    for i in range(0, len(z), SAMPLE_BATCH):
        if hasattr(G, "main") and hasattr(G, "backward"):        # a tinygan model
            with sampling(G, bn="batch"):
                parts.append(to_uint8(sample(G, z[i:i + SAMPLE_BATCH])))
        else:
            parts.append(to_uint8(sample(G, z[i:i + SAMPLE_BATCH])))
    return np.concatenate(parts)


def train(args):
    import numpy as np
    from tinygan.images import from_uint8, save_grid
    from tinygan.io import atomic_write
    name = f"{args.framework}_{args.recipe}_s{args.seed}"
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    z = eval_noise(100, np.float32)
    runner = train_tinygan if args.framework == "tinygan" else train_torch
    t0 = time.perf_counter()
    for step, G, G_ema, losses, sample in runner(args, folder):
        seconds = time.perf_counter() - t0
        fake, fake_ema = samples_of(G, sample, z), samples_of(G_ema, sample, z)
        path = os.path.join(folder, f"step_{step:06d}.npz")
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, fake=fake, fake_ema=fake_ema)
        save_grid(from_uint8(fake[:64]), os.path.join(folder, f"step_{step:06d}.png"), scale=2)
        save_grid(from_uint8(fake_ema[:64]), os.path.join(folder, f"step_{step:06d}_ema.png"), scale=2)
        line = {"run": name, "framework": args.framework, "recipe": args.recipe, "seed": args.seed,
                "step": step, "seconds": round(seconds, 1), "loss_D": float(losses[0]),
                "loss_G": float(losses[1]), "samples": os.path.relpath(path, args.out)}
        with open(os.path.join(args.out, "runs.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)


# ----- scoring ----------------------------------------------------------------------------------

def real_sets(data):
    """(all_1024, half_a, half_b): 1,024 training sprites, and two fixed disjoint halves of the set."""
    import numpy as np
    from tinygan.data import load_images
    images = load_images(data, image_size=32, background=(255, 255, 255), trim=True, verbose=False).images
    order = np.random.default_rng(7).permutation(len(images))
    half = len(images) // 2
    return images[np.sort(order[:N_EVAL])], images[order[:half]], images[order[half:2 * half]]


def score(fake_uint8, reals, full=True):
    """{'swd', 'swd32', 'swd16'}: SWD of 666 samples (uint8 NHWC) against half A of the sprites,
    the size at which half B gives the real-vs-real baseline; with ``full`` also 'swd_1024',
    1,024 samples against 1,024 sprites (the sample size of the issue's reference figures)."""
    from tinygan.images import from_uint8
    from tinygan.swd import swd
    real, half_a, _ = reals
    fake = from_uint8(fake_uint8)
    half = swd(fake[:len(half_a)], half_a)
    out = {"swd": half.mean, "swd32": half.levels[0], "swd16": half.levels[-1]}
    if full:
        out["swd_1024"] = swd(fake[:len(real)], real).mean
    return out


def cached_score(path, sampler, reals):
    """``score`` of one kept sample set, remembered in a .json beside its .npz (scoring is slow)."""
    import numpy as np
    from tinygan.io import atomic_write
    cache = path[:-4] + ".scores.json"
    scores = json.load(open(cache)) if os.path.exists(cache) else {}
    if sampler not in scores:
        scores[sampler] = score(np.load(path)[sampler], reals, full=sampler == "fake")
        with atomic_write(cache, "w") as f:
            json.dump(scores, f)
    return scores[sampler]


def report(args):
    import numpy as np
    lines = [json.loads(x) for x in open(os.path.join(args.out, "runs.jsonl"))]
    reals = real_sets(args.data)
    from tinygan.swd import swd
    baseline = swd(reals[2], reals[1]).mean
    rows = {}
    for line in lines:
        for sampler in ("fake", "fake_ema"):
            key = (line["framework"], line["recipe"], line["step"], "G" if sampler == "fake" else "EMA")
            scores = cached_score(os.path.join(args.out, line["samples"]), sampler, reals)
            rows.setdefault(key, []).append({**scores, "seed": line["seed"], "seconds": line["seconds"]})
    print(f"real vs real (two halves of the sprites, {len(reals[1])} each): SWD {baseline:.2f}")
    print(f"{'framework':9} {'recipe':8} {'steps':>6} {'G':>3}  seeds  {'SWD, 666 (min-max)':>22}  "
          f"{'32px':>6} {'16px':>6}  {'SWD, 1,024':>10}  per-seed SWD (666)")
    table = []
    for key in sorted(rows):
        rs = rows[key]
        v = np.array([x["swd"] for x in rs])
        full = [x["swd_1024"] for x in rs if "swd_1024" in x]
        print(f"{key[0]:9} {key[1]:8} {key[2]:>6} {key[3]:>3}  {len(rs):>5}  "
              f"{v.mean():6.2f} ({v.min():5.2f}–{v.max():5.2f})  "
              f"{np.mean([x['swd32'] for x in rs]):6.2f} {np.mean([x['swd16'] for x in rs]):6.2f}  "
              f"{np.mean(full) if full else float('nan'):10.2f}  "
              + " / ".join(f"s{x['seed']} {x['swd']:.2f}" for x in sorted(rs, key=lambda x: x["seed"])))
        table.append({"framework": key[0], "recipe": key[1], "steps": key[2], "sampler": key[3], "runs": rs})
    side_by_side(args, lines, reals)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"real_vs_real": baseline, "rows": table}, f, indent=1)


def side_by_side(args, lines, reals):
    """One picture per step count: 64 real sprites, then each (framework, recipe)'s seed-0 grid."""
    import numpy as np
    from tinygan.images import make_grid, save_png
    from tinygan.images import from_uint8
    real = make_grid(reals[0][:64])
    for step in sorted({x["step"] for x in lines}):
        panels, names = [real], ["real"]
        for x in sorted(lines, key=lambda x: (x["framework"], x["recipe"])):
            if x["step"] == step and x["seed"] == 0:
                kept = np.load(os.path.join(args.out, x["samples"]))
                panels.append(make_grid(from_uint8(kept["fake"][:64])))
                names.append(f"{x['framework']} {x['recipe']}")
        gap = np.full((real.shape[0], 8, 3), 255, np.uint8)
        picture = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
        path = os.path.join(args.out, f"side_by_side_{step:06d}.png")
        save_png(picture, path, 2)
        print(f"{path}: {', '.join(names)}")


def main(argv=None):
    args = parse_args(argv)
    if args.command == "train":
        threadctl.configure(args.threads)
        train(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
