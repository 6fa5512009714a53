"""A whole training run's steps per second against the bare train_step's, and where the rest goes.

    .venv/bin/python benchmarks/run_overhead.py --limit 832 --epochs 8

Trains the demo's configuration (32×32, features 32, batch 32, ``--recipe``: the demo's
'sprites' by default) with
``tinygan.train.run`` and the callbacks ``examples/pokemon.py`` uses, timing each callback,
then times bare ``train_step`` calls on the same network, batch size and recipe options
(the recipe's DiffAugment too) in the same process. ``--limit 832`` makes epochs of 26
steps, where the per-epoch chores weigh most.
The ratio is (steps / the run's wall time, start-up included) / (bare steps per second), the
bare rate counted the same way as the run's: steps over the time they took together (the
median step's rate is printed beside it; one slow step weighs in a run, and so it does here).
On a shared machine the speed can swing by 20% from one minute to the next, so the run is
also held against its own ``train_step`` calls, timed as they ran: (steps / wall time) /
(steps / the time inside train_step) is the share of the run that was training steps, with
both sides measured in the same minutes.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import threads as threadctl  # noqa: E402


def timed(cb, seconds, calls):
    """Wrap a callback so that the time of each of its calls is added to ``seconds[name]``, and
    each time it really ran counted in ``calls[name]`` (a Throttled callback's inner one)."""
    name = repr(cb)
    for method in ("on_start", "on_epoch_end"):
        inner = getattr(cb, method)

        def wrapped(*args, _inner=inner, _method=method):
            t = time.perf_counter()
            try:
                return _inner(*args)
            finally:
                seconds[f"{name}.{_method}"] += time.perf_counter() - t
        setattr(cb, method, wrapped)
        worker = getattr(cb, "callback", cb)                 # Throttled(...) runs .callback or skips it
        inner_of_worker = getattr(worker, method)

        def counted(*args, _inner=inner_of_worker, _key=f"{name}.{method}"):
            calls[_key] += 1
            return _inner(*args)
        setattr(worker, method, counted)
    return cb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "pokesprite-gen8"))
    ap.add_argument("--limit", type=int, default=832, help="images (832 = 26 steps of 32)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipe", default="sprites", help="paper, d2l or sprites (the demo's, default)")
    ap.add_argument("--bare-steps", type=int, default=260,
                    help="bare train_step calls timed afterwards (260: ~20 s at the demo's size, "
                         "long enough that the machine's swings average out)")
    args = ap.parse_args(argv)
    threadctl.configure(args.threads)

    import numpy as np
    import pokemon
    from tinygan import dcgan
    from tinygan.train import Config, run

    seconds, calls = defaultdict(float), defaultdict(int)
    in_run = []                                       # each train_step's seconds during the run
    real_step = dcgan.train_step

    import tinygan.train as train_mod

    def timed_step(*a, **k):
        t = time.perf_counter()
        try:
            return real_step(*a, **k)
        finally:
            in_run.append(time.perf_counter() - t)
    train_mod.train_step = timed_step
    with tempfile.TemporaryDirectory() as out:
        cfg = Config(data=args.data, limit=args.limit, epochs=args.epochs, out=out, progress=False,
                     recipe=args.recipe)
        chores = [timed(cb, seconds, calls) for cb in pokemon.chores(cfg)]
        t = time.perf_counter()
        summary = run(cfg, callbacks=chores)
        wall = time.perf_counter() - t
    train_mod.train_step = real_step
    run_steps = summary["steps"]
    if run_steps == 0:
        sys.exit("run_overhead: the run trained no steps (pass --epochs 1 or more)")
    loop_steps = in_run[len(in_run) - run_steps:]     # the run's own (the ETA's go through dcgan.train_step)

    # the bare step: same network size, same batch, after warm-up
    cfgr = cfg.resolved()
    G, D = dcgan.build(cfgr.recipe, cfgr.latent_dim, cfgr.features, cfgr.image_size, seed=0)
    from tinygan.optim import Adam
    oG = Adam(G.parameters(), lr=cfgr.lr, betas=(cfgr.beta1, cfgr.beta2))
    oD = Adam(D.parameters(), lr=cfgr.lr, betas=(cfgr.beta1, cfgr.beta2))
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (cfgr.batch_size, 3, cfgr.image_size, cfgr.image_size)).astype(np.float32)
    options = dict(augment=dcgan.augmentation(cfgr.recipe, rng), real_label=cfgr.real_label)    # as Run.step
    times = []
    for i in range(args.bare_steps + 4):
        z = rng.standard_normal((cfgr.batch_size, cfgr.latent_dim, 1, 1)).astype(np.float32)
        t = time.perf_counter()
        real_step(G, D, oG, oD, real, z, **options)
        if i >= 4:
            times.append(time.perf_counter() - t)
    bare, bare_median = len(times) / sum(times), 1 / statistics.median(times)
    own = len(loop_steps) / sum(loop_steps)
    whole = run_steps / wall
    print(f"\nrecipe {cfgr.recipe}; run: {run_steps} steps ({args.epochs} epochs of {run_steps // args.epochs}) in {wall:.1f} s wall "
          f"(training loop {summary['seconds']:.1f} s), {whole:.2f} steps/s")
    print(f"bare train_step afterwards: {bare:.2f} steps/s ({len(times)} steps in {sum(times):.2f} s; "
          f"the median step's rate {bare_median:.2f})")
    print(f"the run's own train_step calls: {own:.2f} steps/s ({len(loop_steps)} steps in {sum(loop_steps):.1f} s)")
    print(f"whole run / bare step afterwards: {whole / bare:.3f}")
    print(f"whole run / its own steps:        {whole / own:.3f}  (the same minutes: immune to the machine's swings)")
    print("time in the callbacks (s, all epochs; how many times each ran):")
    for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<52} {v:6.2f}  {calls[k]}×")
    other = wall - summary["seconds"] - sum(seconds.values())
    print(f"  {'start-up and the rest':<52} {other:6.2f}  (data, model, the ETA's two timed steps)")


if __name__ == "__main__":
    main()
