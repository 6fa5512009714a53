"""The training step's matrix products alone: how fast tinygan's step could be if nothing but
its products took time — this design's ceiling on this machine — beside the whole step and
PyTorch's, in one process.

    .venv/bin/python benchmarks/products.py --batch-size 64 --threads 2 --repeats 7
    .venv/bin/python benchmarks/products.py --image-size 32 --features 32 --batch-size 32

How it measures:
  * one tinygan training step (the paper's recipe, numpy backend, its default fast mode) runs
    with the three functions of ``tinygan/nn/conv_fast.py`` that multiply matrices wrapped, so
    every product the step computes is written down: its operands' shapes and orientation;
  * each distinct product is then timed alone (median of --repeats, after one untimed run) on
    fresh operands of the same shapes and memory order (and into a buffer where the step writes
    into one), as the step computes it and the other way round (Cᵀ = Bᵀ·Aᵀ: the same numbers, BLAS
    asked the other way round); a product the step computes several times counts that many times;
  * the step itself and PyTorch's twin (benchmarks/torch_dcgan.py) are timed interleaved, as
    ``train_step.py`` does.

The sum of the products' times is the step's floor with these products: the "ceiling" ratio,
PyTorch's step time over that sum, is the most tinygan / PyTorch can reach on this machine
without faster products (their sum with the better orientation of each gives a second
figure). The products' multiply-adds are checked to equal ``train_step.step_flops``: none is
missed or counted twice.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))
import threads as threadctl  # noqa: E402  (stdlib-only: safe before numpy)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for numpy and torch")
    ap.add_argument("--repeats", type=int, default=7, help="timings of each product, and step pairs")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch's step out")
    return ap.parse_args(argv)


class Product:
    """One product C = A·B of the step: A (m, k), B (k, n), each C-ordered or a transposed view
    (``a_t``/``b_t``: the operand is the transpose of a C-ordered array), where it came from, and
    whether the step writes C into a buffer it has (``out``) or a new array."""

    def __init__(self, where, m, k, n, a_t=False, b_t=False, out=False):
        self.where, self.m, self.k, self.n, self.a_t, self.b_t, self.out = where, m, k, n, a_t, b_t, out

    @classmethod
    def of(cls, where, A, B, out=False):
        """The product A·B as the step computes it, orientation read off the operands themselves."""
        transposed = lambda a: not a.flags.c_contiguous and a.flags.f_contiguous     # noqa: E731
        return cls(where, A.shape[0], A.shape[1], B.shape[1], transposed(A), transposed(B), out)

    @property
    def key(self):
        return self.m, self.k, self.n, self.a_t, self.b_t, self.out

    @property
    def flops(self):
        return 2 * self.m * self.k * self.n

    def operands(self, np, rng):
        """Fresh float32 A and B of this product's shapes and memory order."""
        def make(rows, cols, transposed):
            a = rng.standard_normal((cols, rows) if transposed else (rows, cols), dtype=np.float32)
            return a.T if transposed else a
        return make(self.m, self.k, self.a_t), make(self.k, self.n, self.b_t)

    def label(self):
        """A · B as stored: ``(k×m)ᵀ`` for an A kept as the transpose of a k×m array."""
        a = f"({self.k}×{self.m})ᵀ" if self.a_t else f"({self.m}×{self.k})"
        b = f"({self.n}×{self.k})ᵀ" if self.b_t else f"({self.k}×{self.n})"
        return f"{a} · {b}"


def record(step):
    """Run ``step()`` once with conv_fast's products written down: [Product] in the order computed."""
    from tinygan.nn import conv_fast
    seen = []
    originals = conv_fast.convolve, conv_fast.convolve_transpose, conv_fast.add_matmul_nt

    def convolve(x, W2, k, s, p, workspace):
        Y, cols = originals[0](x, W2, k, s, p, workspace)               # Y = W2 · colsᵀ
        seen.append(Product.of("convolve", W2, cols))
        return Y, cols

    def convolve_transpose(X, W2, k, s, p, out_size, workspace):
        C, H, W, N = X.shape                                            # cols = W2ᵀ · X, into the workspace
        seen.append(Product.of("convolve_transpose", W2.T, X.reshape(C, H * W * N), out=True))
        return originals[1](X, W2, k, s, p, out_size, workspace)

    def add_matmul_nt(grad, a, b):
        m, n = a.shape[0], b.shape[0]
        if conv_fast._reversed_order_pays(m, n):                        # (b · aᵀ)ᵀ
            seen.append(Product.of("weight gradient", b, a.T))
        else:                                                           # a · bᵀ
            seen.append(Product.of("weight gradient", a, b.T))
        return originals[2](grad, a, b)

    conv_fast.convolve, conv_fast.convolve_transpose, conv_fast.add_matmul_nt = \
        convolve, convolve_transpose, add_matmul_nt
    try:
        step()
    finally:
        conv_fast.convolve, conv_fast.convolve_transpose, conv_fast.add_matmul_nt = originals
    return seen


def time_products(products, repeats):
    """[(as computed, the other way round)] seconds per product: the median of ``repeats`` after one
    untimed run, each distinct product (shapes, order, output) timed once, one way then the other;
    a product the step writes into a buffer of its own is timed writing into one too."""
    import numpy as np
    rng = np.random.default_rng(0)

    def median_time(fn):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    timed = {}
    for prod in products:
        if prod.key not in timed:
            A, B = prod.operands(np, rng)
            if prod.out:
                C, Ct = np.empty((prod.m, prod.n), np.float32), np.empty((prod.n, prod.m), np.float32)
                timed[prod.key] = (median_time(lambda: np.matmul(A, B, out=C)),
                                   median_time(lambda: np.matmul(B.T, A.T, out=Ct)))
            else:
                timed[prod.key] = (median_time(lambda: A @ B), median_time(lambda: (B.T @ A.T).T))
    return [timed[p.key] for p in products]


def main(argv=None):
    args = parse_args(argv)
    threadctl.configure(args.threads)
    import importlib.util

    import train_step as bench
    from tinygan.dcgan import train_step
    G, D, opt_G, opt_D, real, z = bench.tinygan_setup(args, "numpy")
    train_step(G, D, opt_G, opt_D, real, z)                            # warm-up: scratch, compiled loops
    products = record(lambda: train_step(G, D, opt_G, opt_D, real, z))
    flops = bench.step_flops(G, D, args.batch_size, args.image_size)
    counted = sum(p.flops for p in products)
    if counted != flops:
        raise SystemExit(f"products.py: the recorded products count {counted} FLOP, the step {flops}: "
                         f"conv_fast computes a product this script does not wrap")

    have_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    run_tg = bench.make_tinygan_runner(G, D, opt_G, opt_D, real, z, "numpy")
    run_pt = None
    if have_torch:
        import torch
        torch.set_num_threads(args.threads)
        run_pt = bench.make_torch_runner(G, D, real, z, args, "cpu")
        run_pt(1)
    pairs = []
    for _ in range(args.repeats):
        time.sleep(0.25)
        t_tg = run_tg(1)[0]
        time.sleep(0.25)
        pairs.append((t_tg, run_pt(1)[0] if run_pt else None))
    times = time_products(products, args.repeats)

    step = statistics.median(p[0] for p in pairs)
    alone = sum(t for t, _ in times)
    best = sum(min(t) for t in times)
    print(f"DCGAN {args.image_size}x{args.image_size}, features {args.features}, batch {args.batch_size}, "
          f"{args.threads} thread(s): the {len(products)} products of one training step, each distinct one "
          f"timed alone (median of {args.repeats})\n")
    print("| where | A · B | times per step | ms as computed | GFLOP/s | ms other way round | GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rows = {}
    for prod, t in zip(products, times):
        key = (prod.where, prod.label())
        rows[key] = (prod, t, rows.get(key, (None, None, 0))[2] + 1)
    for (where, label), (prod, (t, t_other), count) in rows.items():
        print(f"| {where} | {label} | {count} | {1e3 * t:.2f} | {prod.flops / t / 1e9:.0f} "
              f"| {1e3 * t_other:.2f} | {prod.flops / t_other / 1e9:.0f} |")
    print(f"\nproducts alone: {1e3 * alone:.0f} ms ({flops / alone / 1e9:.0f} GFLOP/s); each the better way "
          f"round: {1e3 * best:.0f} ms")
    print(f"tinygan's step: {1e3 * step:.0f} ms (median of {args.repeats}): products {alone / step:.2f} of it, "
          f"everything else {1e3 * (step - alone):.0f} ms")
    if run_pt:
        pt = statistics.median(p[1] for p in pairs)
        ratios = [b / a for a, b in pairs]
        print(f"PyTorch's step: {1e3 * pt:.0f} ms; tinygan / PyTorch now {statistics.median(ratios):.2f} "
              f"(pairs {min(ratios):.2f}–{max(ratios):.2f})")
        print(f"ceiling with these products: tinygan / PyTorch ≤ {pt / alone:.2f} (as computed), "
              f"≤ {pt / best:.2f} (each the better way round)")
    print(threadctl.machine_line())
    print(threadctl.yardstick_line(threadctl.yardstick(torch if run_pt else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
