#!/usr/bin/env python
"""Compile CuPy's kernels for what a GPU session times, before it times anything.

    python scripts/gpu_warm.py            # then the run, the benchmarks and the profile find them compiled

CuPy compiles an element-wise or reduction kernel (with NVRTC) the first time it meets it
for a dtype and memory layout, and caches the result on disk (``~/.cupy/kernel_cache``,
or ``CUPY_CACHE_DIR``). On a fresh machine a DCGAN step meets some hundred of them: tens
of seconds of compiling that would otherwise land in the first timed steps, or in a test
stage's time limit. This script runs once, untimed, every kind of step the session runs:

  float32   the paper's 64×64 step at batch 256 (the run, the benchmarks, the profile), the
            sprites recipe with every option (DiffAugment, instance noise, minibatch std,
            nearest upsampling; spectral norm), the moving average and the run's sample grid;
  float64   the small steps tests/test_gpu.py compares against NumPy.

It prints what each part took and how many kernels the cache gained. ``--tiny`` runs the
same at toy sizes (the CPU tests run it through a stand-in for CuPy).
"""
import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def cache_files():
    """How many compiled kernels CuPy's on-disk cache holds."""
    folder = os.environ.get("CUPY_CACHE_DIR", os.path.expanduser("~/.cupy/kernel_cache"))
    return len(glob.glob(os.path.join(folder, "**", "*.cubin"), recursive=True))


def steps(cupy, dtype, recipe, batch, image_size, features, latent, n=2, **options):
    """``n`` training steps of ``recipe`` (with ``options``) on the device, then its sample grid."""
    import tinygan
    from tinygan import nn
    from tinygan.dcgan import RECIPES, augmentation, build, train_step
    from tinygan.ema import EMA
    from tinygan.optim import Adam
    tinygan.use("cupy", dtype)
    noise = options.pop("instance_noise", 0.0)
    G, D = build(recipe, latent, features, image_size, seed=0, **options)
    G.to("cupy", dtype), D.to("cupy", dtype)
    r = RECIPES[recipe]
    opt_G, opt_D = Adam(G.parameters(), r["lr"], (r["beta1"], 0.999)), Adam(D.parameters(), r["lr"], (r["beta1"], 0.999))
    rng = np.random.default_rng(0)
    augment, ema = augmentation(recipe, rng, noise), EMA(G, 0.999)
    real = cupy.asarray(rng.uniform(-1, 1, (batch, 3, image_size, image_size)).astype(dtype))
    z = cupy.asarray(rng.standard_normal((batch, latent, 1, 1)).astype(dtype))
    for _ in range(n):
        train_step(G, D, opt_G, opt_D, real, z, nn.BCEWithLogitsLoss(r["reduction"]), {}, augment=augment)
        ema.update()
    with nn.sampling(ema.model, bn="batch"):
        tinygan.backend.to_numpy(ema.model(z[:64]))
    cupy.cuda.Device().synchronize()


def parts(tiny):
    """(what, dtype, recipe, options) of every warm-up, at the session's sizes or toy ones."""
    big = dict(batch=4, image_size=16, features=4, latent=8) if tiny else \
        dict(batch=256, image_size=64, features=64, latent=100)
    small = dict(batch=4, image_size=16, features=4, latent=8) if tiny else \
        dict(batch=8, image_size=32, features=8, latent=16)
    return [("the paper's step", np.float32, "paper", big),
            ("sprites + every option", np.float32, "sprites",
             dict(small, instance_noise=0.1, d_minibatch_std=True, upsample="nearest")),
            ("spectral norm", np.float32, "paper", dict(small, d_spectral_norm=True)),
            ("the tests' float64", np.float64, "paper", small),
            ("the tests' float64", np.float64, "d2l", small),
            ("the tests' float64, nearest upsampling", np.float64, "paper", dict(small, upsample="nearest")),
            ("the tests' float64, every option", np.float64, "sprites",
             dict(small, instance_noise=0.1, d_minibatch_std=True)),
            ("the tests' float64, spectral norm", np.float64, "paper", dict(small, d_spectral_norm=True))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="toy sizes (for testing the script itself)")
    args = ap.parse_args(argv)
    import tinygan
    try:
        cupy = tinygan.backend.array_module("cupy")
    except RuntimeError as e:
        print(f"gpu_warm.py: needs CuPy and a GPU: {e}", file=sys.stderr)
        return 2
    before, start = cache_files(), time.perf_counter()
    for what, dtype, recipe, options in parts(args.tiny):
        t = time.perf_counter()
        steps(cupy, dtype, recipe, **options)
        print(f"warm: {what} ({recipe}, {np.dtype(dtype).name}): {time.perf_counter() - t:.1f} s", flush=True)
    print(f"=== warm: {time.perf_counter() - start:.1f} s; CuPy's kernel cache {before} -> {cache_files()} "
          f"compiled kernels", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
