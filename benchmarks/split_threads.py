"""tinygan's step with its element-wise work on one thread against split over threads.

    .venv/bin/python benchmarks/split_threads.py --threads 2 --repeats 9
    .venv/bin/python benchmarks/split_threads.py --image-size 32 --features 32 --batch-size 32

One process, one network, the two settings of ``tinygan.parallel`` interleaved (one
thread, then ``--threads``, then one thread, ...), so that load from elsewhere hits both
alike. OpenBLAS runs its matrix products on ``--threads`` threads in both: only where
NumPy's element-wise passes, copies and reductions run differs. The headline is the median
over pairs of (time on one thread) / (time split), with the spread of the pairs; the
losses of both settings are printed too (they must be identical: the split changes no number).
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))      # tinygan from this checkout, installed or not
import threads as threadctl  # noqa: E402  (stdlib-only module: safe before numpy)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="OpenBLAS threads, and tinygan's when split")
    ap.add_argument("--repeats", type=int, default=9, help="timed pairs")
    ap.add_argument("--steps", type=int, default=0, help="steps per timed sample (0: about half a second)")
    args = ap.parse_args(argv)
    threadctl.configure(args.threads)

    import numpy as np
    from tinygan import parallel
    from tinygan.dcgan import build, train_step
    from tinygan.optim import Adam

    def setup():
        G, D = build("paper", features=args.features, image_size=args.image_size, seed=0)
        opts = [Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D)]
        return G, D, opts[0], opts[1]
    rng = np.random.default_rng(0)
    n, s = args.batch_size, args.image_size
    real = rng.uniform(-1, 1, (n, 3, s, s)).astype(np.float32)
    z = rng.standard_normal((n, 100, 1, 1)).astype(np.float32)

    nets = {1: setup(), args.threads: setup()}           # one network per setting, same weights
    first = {}
    for k, (G, D, oG, oD) in nets.items():
        parallel.set_threads(k)
        first[k] = [float(v) for v in train_step(G, D, oG, oD, real, z)]
        train_step(G, D, oG, oD, real, z)
    t = time.perf_counter()
    train_step(*nets[1], real, z)
    steps = args.steps or max(1, round(0.5 / (time.perf_counter() - t)))

    times = {k: [] for k in nets}
    for _ in range(args.repeats):
        for k, net in nets.items():
            parallel.set_threads(k)
            time.sleep(0.25)
            t = time.perf_counter()
            for _ in range(steps):
                train_step(*net, real, z)
            times[k].append((time.perf_counter() - t) / steps)
    ratios = [a / b for a, b in zip(times[1], times[args.threads])]
    print(f"DCGAN {s}x{s}, features {args.features}, batch {n}; OpenBLAS {args.threads} threads in both; "
          f"{steps} step(s) per sample, {args.repeats} pairs")
    print(f"element-wise on 1 thread:         {statistics.median(times[1]) * 1e3:8.1f} ms/step")
    print(f"element-wise on {args.threads} threads:        "
          f"{statistics.median(times[args.threads]) * 1e3:8.1f} ms/step")
    print(f"speed-up (1 thread / split): median {statistics.median(ratios):.3f} "
          f"(pairs {min(ratios):.3f}–{max(ratios):.3f})")
    print(f"first step's losses: {first[1]} (1 thread) vs {first[args.threads]} (split): "
          f"{'identical' if first[1] == first[args.threads] else 'DIFFERENT'}")
    print(threadctl.machine_line())


if __name__ == "__main__":
    main()
