"""Screen issue 26's candidates against the sprites recipe: one seed each at the demo's wall time,
then the finalists and their combination on three seeds. One command does both:

    .venv/bin/python benchmarks/screen.py                       # everything, at the demo's 20,160 steps
    .venv/bin/python benchmarks/screen.py --stage screen        # stop after the one-seed screen
    .venv/bin/python benchmarks/screen.py --stage finalists --finalists lecam0.1 flip   # chosen by eye

What it runs. Every candidate is the sprites recipe with a few Config fields set
(``CANDIDATES``; ``quality.py train --set``), trained with 332 of the 1,332 sprites held out
(``--holdout``), by ``benchmarks/quality.py train`` in ``--jobs`` processes of one BLAS thread
each. "At the demo's wall time": each candidate's step is first timed against the plain
recipe's (interleaved, as ``quality.py cost``); one that costs more than ``COST_TOLERANCE``
more gets proportionally fewer steps, so that all train for about the baseline's time (a
cheaper one keeps the baseline's steps). Each run keeps samples at half and all of its steps.

Then ``quality.py report`` scores everything (SWD, KID, precision/recall, speckle, colours, the
memorisation check against the training and the held-out sprites) and this script writes into
``--out``:
  * ``screen.md``, ``finalists.md``: one table row per candidate (and seed spread for the
    finalists), for G, the moving average (EMA) and the average with its own BatchNorm
    statistics (EMA-bn), ready to paste into benchmarks/QUALITY.md;
  * ``screen_<candidate>.png``: real sprites | the baseline's EMA | the candidate's EMA | its
    EMA-bn, the same fixed noise — decide on these first, as QUALITY.md does;
  * ``screen_all.png``: every candidate's EMA (16 samples, the same noise) on one labelled sheet;
  * ``finalists_s<seed>.png``: real | baseline | each finalist | the combination, per seed.

Finalists: named with ``--finalists`` (after looking at the screen's pictures), or else the
``--n-finalists`` candidates with the lowest EMA speckle among those whose EMA KID and SWD are
no worse than ``QUALITY_SLACK`` × the baseline's — plus the combination of their settings.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)
import quality  # noqa: E402
import threads as threadctl  # noqa: E402

# name → Config fields on the sprites recipe (issue 26's list; each is a tinygan option with its tests)
CANDIDATES = {
    "baseline": [],
    "flip": ["flip=true"],                                   # the reals mirrored at random: a set twice as large
    "p0.5": ["augment_p=0.5"],                               # each DiffAugment map on half the images
    "p0.25": ["augment_p=0.25"],                             # lightweight-gan's probability
    "nocutout": ["augment_policy=color,translation"],        # cutout's holes are reported leaking into samples
    "translation": ["augment_policy=translation"],           # no colour maps either (brightness, saturation,
                                                             # contrast of every image): fewer colours per figure?
    "ada": ["ada_target=0.6"],                               # StyleGAN2-ADA's adaptive p
    "lecam0.01": ["lecam=0.01"],                             # LeCam's weight differs by orders of magnitude
    "lecam0.1": ["lecam=0.1"],                               # between their scripts: a sweep
    "lecam1": ["lecam=1.0"],
    "topk": ["topk_gamma=0.99"],                             # Sinha et al.: k from the batch to half of it
    "hinge": ["loss=hinge"],
    "sn_hinge": ["d_spectral_norm=true", "loss=hinge"],      # the DiffAugment paper's small-model baseline
    "ema_ramp": ["ema_rampup=0.05"],                         # ADA's ramp of the average's half-life
    "ema0.9995": ["ema=0.9995"],                             # twice the average's half-life (1,386 steps): the
                                                             # average is less speckled than G (measured), is a longer one less?
    "bcr5": ["bcr=5"],                                       # bCR (Zhao et al. 2020) as their λ_real = λ_fake = 10:
                                                             # D's loss here is ½(ℓ_real + ℓ_fake), theirs the sum
}
COST_TOLERANCE = 0.03        # a step up to 3% dearer than the baseline's keeps the baseline's steps
QUALITY_SLACK = 1.10         # an automatic finalist's EMA KID and SWD may be up to 10% worse than the baseline's
SAMPLERS = tuple(name for _, name in quality.SAMPLERS)     # G, EMA, EMA-bn: the report's names


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=("all", "screen", "finalists"), default="all")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES),
                    help="which to screen (the baseline always runs)")
    ap.add_argument("--finalists", nargs="+", choices=list(CANDIDATES), help="chosen by eye; default: by the numbers")
    ap.add_argument("--n-finalists", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20160, help="the baseline's steps (the demo's)")
    ap.add_argument("--seed", type=int, default=0, help="the screen's seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the finalists' seeds")
    ap.add_argument("--holdout", type=int, default=332, help="sprites never shown (quality.py --holdout)")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side, one BLAS thread each")
    ap.add_argument("--cost-repeats", type=int, default=5, help="interleaved timings of each step (0: equal steps)")
    ap.add_argument("--cost-steps", type=int, default=20, help="steps per timing")
    ap.add_argument("--data", default=quality.DEFAULT_DATA)
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "screen"))
    args = ap.parse_args(argv)
    args.candidates = ["baseline"] + [c for c in args.candidates if c != "baseline"]
    return args


def variant(name, holdout):
    """The run's name in quality.py's tables: sprites+FIELD=VALUE…+holdout=N."""
    return "+".join(["sprites", *CANDIDATES[name], *([f"holdout={holdout}"] if holdout else [])])


def step_costs(args, names):
    """{name: seconds per step / the baseline's}, the median of interleaved rounds (quality.interleaved_times)."""
    import statistics

    from tinygan.train import Run
    if not args.cost_repeats:
        return {n: 1.0 for n in names}
    data = quality.training_data(args.data, args.holdout, args.out)
    runs = {n: Run(quality.demo_config(data, "sprites", 0, os.path.join(args.out, "cost"),
                                       dict(quality.parse_setting(x) for x in CANDIDATES[n]))) for n in names}
    times = quality.interleaved_times(runs, {n: next(r.batches()) for n, r in runs.items()},
                                      args.cost_repeats, args.cost_steps)
    return {n: statistics.median(a / b for a, b in zip(times[n], times["baseline"])) for n in names}


def steps_for(cost, steps):
    """A candidate's steps in the baseline's wall time: the same, unless its step costs more than the tolerance."""
    return steps if cost <= 1 + COST_TOLERANCE else max(1, round(steps / cost))


def finished(args, name, seed, steps):
    """Whether the run (name, seed) already kept its samples at ``steps`` in --out."""
    folder = os.path.join(args.out, f"tinygan_{variant(name, args.holdout)}_s{seed}")
    return os.path.exists(os.path.join(folder, f"step_{steps:06d}.npz"))


def train_all(args, runs):
    """Run ``quality.py train`` for each (name, seed, steps), ``--jobs`` at a time; stop at the first failure.
    A run that already kept its samples at its last step is not run again (a screen goes on from where
    it stopped, and a candidate added later trains alone)."""
    done = [r for r in runs if finished(args, *r)]
    for name, seed, steps in done:
        print(f"already trained: {name} seed {seed}, {steps} steps", flush=True)
    pending, active = [r for r in runs if r not in done], []
    os.makedirs(args.out, exist_ok=True)
    while pending or active:
        while pending and len(active) < args.jobs:
            name, seed, steps = pending.pop(0)
            keep = sorted({max(1, steps // 2), steps})
            cmd = [sys.executable, os.path.join(HERE, "quality.py"), "train", "--recipe", "sprites",
                   "--seed", str(seed), "--threads", "1", "--holdout", str(args.holdout), "--data", args.data, "--out", args.out,
                   "--steps", *map(str, keep), *(["--set", *CANDIDATES[name]] if CANDIDATES[name] else [])]
            log = open(os.path.join(args.out, f"{name}_s{seed}.log"), "a")
            active.append((name, seed, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
            print(f"started {name} seed {seed}: {steps} steps", flush=True)
        time.sleep(0.2)
        for job in [a for a in active if a[2].poll() is not None]:
            active.remove(job)
            job[3].close()
            if job[2].returncode:
                for other in active:
                    other[2].terminate()
                raise SystemExit(f"screen.py: {job[0]} seed {job[1]} failed; see {args.out}/{job[0]}_s{job[1]}.log")
            print(f"finished {job[0]} seed {job[1]}", flush=True)


def score(args):
    """quality.py report over --out: {(variant, steps, sampler): [runs]} (and report.json written)."""
    table = quality.report(quality.parse_args(["report", "--data", args.data, "--out", args.out,
                                               "--json", os.path.join(args.out, "report.json")]))
    return {(row["recipe"], row["steps"], row["sampler"]): row["runs"] for row in table}


def cell(runs, key, digits=1):
    """'mean (min–max)' of one score over runs, or the value for one run."""
    values = [r.get(key, float("nan")) for r in runs]
    mean = sum(values) / len(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else \
        f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def markdown(rows, title, path):
    """The table of ``rows`` [(name, steps, cost, {sampler: runs})] as markdown, written to ``path`` and returned."""
    head = ("| candidate | settings | steps | step cost | sampler | seeds | SWD | KID ×10³ | speckle % | colours "
            "| recall | copies train / held-out % |")
    lines = [f"### {title}", "", head, "|" + "---|" * 12]
    for name, steps, cost, by_sampler in rows:
        for sampler in SAMPLERS:
            runs = by_sampler.get(sampler)
            if not runs:
                continue
            lines.append(f"| {name} | {' '.join(CANDIDATES[name]) or '(sprites)'} | {steps} | {cost:.3f} | {sampler} "
                         f"| {len(runs)} | {cell(runs, 'swd', 2)} | {cell(runs, 'kid')} | {cell(runs, 'speckle')} "
                         f"| {cell(runs, 'colours')} | {cell(runs, 'recall', 2)} "
                         f"| {cell(runs, 'copies_train')} / {cell(runs, 'copies_heldout')} |")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(f"{threadctl.machine_line()}\n\n{text}")
    return text


def pictures(args, panels, path):
    """real | each 'name:seed:steps:sampler' panel side by side, saved to ``path`` (quality.py picture)."""
    specs = [f"tinygan_{variant(n, args.holdout)}_s{seed}:{steps}:{sampler}" for n, seed, steps, sampler in panels]
    quality.picture(quality.parse_args(["picture", *specs, "--save", path, "--data", args.data, "--out", args.out]))


def overview(args, panels, path, per_panel=16, columns=4):
    """One labelled sheet: the real sprites and each (label, name, seed, steps, sampler) panel's first
    ``per_panel`` samples as a small grid, ``columns`` panels to a row, saved at 2× — every candidate
    on one page, to look at before any number."""
    import numpy as np
    from PIL import Image, ImageDraw

    from tinygan.images import make_grid, save_png
    side = int(round(per_panel ** 0.5))
    real = quality.real_sets(args.data)[1]
    grids = [("real sprites", make_grid(np.resize(real, (per_panel,) + real.shape[1:]), side))]
    for label, name, seed, steps, sampler in panels:
        spec = f"tinygan_{variant(name, args.holdout)}_s{seed}:{steps}:{sampler}"
        grids.append((label, make_grid(quality.kept_samples(args.out, spec)[:per_panel], side)))
    h, w = grids[0][1].shape[:2]
    caption = 12
    rows = -(-len(grids) // columns)
    sheet = Image.new("RGB", (columns * (w + 8), rows * (h + caption + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, grid) in enumerate(grids):
        r, c = divmod(i, columns)
        x, y = c * (w + 8), r * (h + caption + 8)
        draw.text((x + 2, y), label, fill=(0, 0, 0))
        sheet.paste(Image.fromarray(grid), (x, y + caption))
    save_png(np.asarray(sheet), path, 2)
    return path


def pick_finalists(args, rows):
    """The --n-finalists candidates of lowest EMA speckle whose EMA KID and SWD are within QUALITY_SLACK of
    the baseline's; if none is, the lowest speckle whatever their KID and SWD (and a line says so)."""
    ema = {name: by_sampler["EMA"][0] for name, _, _, by_sampler in rows if by_sampler.get("EMA")}
    base = ema.pop("baseline")
    fine = [n for n, x in ema.items() if x["kid"] <= base["kid"] + (QUALITY_SLACK - 1) * abs(base["kid"])
            and x["swd"] <= QUALITY_SLACK * base["swd"]]
    if not fine:
        print(f"screen.py: no candidate within {QUALITY_SLACK}x the baseline's KID and SWD; the finalists are "
              f"those of lowest speckle alone", flush=True)
    return sorted(fine or ema, key=lambda n: ema[n]["speckle"])[:args.n_finalists]


def known_plan(args):
    """What an earlier screen in --out decided: {"costs": {name: ratio}, "steps": {name: steps},
    "settings": {"steps": …, "holdout": …}}; an exit with one line where it was planned with other
    --steps or --holdout (its runs would not be comparable with new ones)."""
    saved = os.path.join(args.out, "screen_plan.json")
    settings = {"steps": args.steps, "holdout": args.holdout}
    if not os.path.exists(saved):
        return {"costs": {}, "steps": {}, "settings": settings}
    plan = json.load(open(saved))
    old = plan.setdefault("settings", settings)           # a plan from before settings were kept: as now
    for key, value in settings.items():
        if old.get(key) != value:
            raise SystemExit(f"screen.py: {saved} was planned with --{key} {old.get(key)}, not {value}: "
                             f"pass --{key} {old.get(key)} to go on with it, or another --out")
    return plan


def save_plan(args, plan):
    from tinygan.io import atomic_write              # here: tinygan loads numpy, after main sets the threads
    with atomic_write(os.path.join(args.out, "screen_plan.json"), "w") as f:
        json.dump(plan, f, indent=1)


def screen(args):
    """Stage 1: every candidate, one seed, the baseline's wall time; the table and the pictures.

    Costs and steps an earlier screen in --out decided are kept (``screen_plan.json``): only
    candidates new to it are timed, against the baseline, and the plan grows by them."""
    known = known_plan(args)
    new = [n for n in args.candidates if n not in known["costs"]]
    costs = {**(step_costs(args, ["baseline"] + [n for n in new if n != "baseline"]) if new else {}), **known["costs"]}
    plan = {**known["steps"], **{n: steps_for(costs[n], args.steps) for n in new}}
    save_plan(args, {"costs": costs, "steps": plan, "settings": known["settings"]})
    train_all(args, [(n, args.seed, plan[n]) for n in args.candidates])
    scores = score(args)
    rows = [(n, plan[n], costs[n], {s: [r for r in scores.get((variant(n, args.holdout), plan[n], s), [])
                                        if r["seed"] == args.seed] for s in SAMPLERS}) for n in args.candidates]
    print(markdown(rows, f"Screen: one seed ({args.seed}), the baseline's {args.steps} steps' wall time",
                   os.path.join(args.out, "screen.md")))
    for n in args.candidates[1:]:
        pictures(args, [("baseline", args.seed, plan["baseline"], "ema"), (n, args.seed, plan[n], "ema"),
                        (n, args.seed, plan[n], "ema_bn")], os.path.join(args.out, f"screen_{n}.png"))
    overview(args, [(f"{n}, {plan[n]} steps", n, args.seed, plan[n], "ema") for n in args.candidates],
             os.path.join(args.out, "screen_all.png"))
    return rows


def finalists(args, rows=None):
    """Stage 2: the baseline, the finalists and their combination on --seeds; the table and the pictures.

    Steps: the screen's plan (``screen_plan.json``) for the runs it already has, so seed ``--seed``
    goes on from them; the combination's step is timed now against the baseline's, once: its cost
    and steps join the plan, so a rerun trains (or skips) the same runs."""
    names = args.finalists or pick_finalists(args, rows)
    combined = "+".join(names)
    if len(names) > 1:
        CANDIDATES[combined] = [x for n in names for x in CANDIDATES[n]]
    chosen = ["baseline", *names, *([combined] if len(names) > 1 else [])]
    known = known_plan(args)
    costs = {**step_costs(args, ["baseline"] + [n for n in chosen if n not in known["costs"]]), **known["costs"]}
    plan = {n: known["steps"].get(n, steps_for(costs[n], args.steps)) for n in chosen}
    save_plan(args, {"costs": costs, "steps": {**known["steps"], **plan}, "settings": known["settings"]})
    train_all(args, [(n, seed, plan[n]) for seed in args.seeds for n in chosen])
    scores = score(args)
    table = [(n, plan[n], costs[n], {s: [r for r in scores.get((variant(n, args.holdout), plan[n], s), [])
                                         if r["seed"] in args.seeds] for s in SAMPLERS}) for n in chosen]
    print(markdown(table, f"Finalists: seeds {', '.join(map(str, args.seeds))}",
                   os.path.join(args.out, "finalists.md")))
    for seed in args.seeds:
        pictures(args, [(n, seed, plan[n], "ema") for n in chosen], os.path.join(args.out, f"finalists_s{seed}.png"))
    return table


def main(argv=None):
    args = parse_args(argv)
    threadctl.configure(1)
    os.makedirs(args.out, exist_ok=True)
    rows = None
    if args.stage == "finalists" and not args.finalists:
        raise SystemExit("screen.py --stage finalists: name them with --finalists (after the screen's pictures)")
    if args.stage in ("all", "screen"):
        rows = screen(args)
    if args.stage in ("all", "finalists"):
        finalists(args, rows)


if __name__ == "__main__":
    main()
