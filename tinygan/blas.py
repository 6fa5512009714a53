"""Whether the environment forces OpenBLAS onto a kernel older than this CPU supports.

OpenBLAS picks the matrix-product kernel for the CPU it runs on; ``OPENBLAS_CORETYPE``
overrides that choice. Some machines set it (with ``OPENBLAS_L2_SIZE``) because older
OpenBLAS builds computed wrong results on their CPU; a current NumPy's OpenBLAS does not,
and the older kernel can halve its products' speed (benchmarks/RESULTS.md, "AMD EPYC Zen 5").
tinygan never changes either variable — the choice is the user's — but says when one costs
speed, with the product rate it measured:

    >>> forced_kernel({"OPENBLAS_CORETYPE": "Haswell"}, {"avx2", "avx512f"})
    'Haswell'
    >>> forced_kernel({}, {"avx2", "avx512f"}) is None
    True
"""
import os
import time

# OpenBLAS's x86 kernels that use AVX-512 (a CPU with avx512f can run them); any other named
# kernel on such a CPU leaves AVX-512 unused. Names as OPENBLAS_CORETYPE takes them, any case.
AVX512_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (Linux), or an empty set."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def forced_kernel(environ=None, flags=None):
    """The kernel ``OPENBLAS_CORETYPE`` names where it is older than the CPU supports (an
    AVX-512 CPU, a kernel without AVX-512), else None."""
    environ = os.environ if environ is None else environ
    flags = cpu_flags() if flags is None else flags
    name = environ.get("OPENBLAS_CORETYPE", "").strip()
    if name and "avx512f" in flags and name.lower() not in AVX512_KERNELS:
        return name
    return None


def gemm_gflops(n=1024, repeats=3):
    """NumPy's float32 product of two n×n matrices, in GFLOP/s (best of ``repeats`` after one warm-up)."""
    import numpy as np
    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in (0, 1))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def forced_kernel_line(environ=None, flags=None, measure=gemm_gflops):
    """One line saying what a forced older kernel costs, or None when none is forced."""
    environ = os.environ if environ is None else environ
    name = forced_kernel(environ, flags)
    if name is None:
        return None
    l2 = f" and OPENBLAS_L2_SIZE={environ['OPENBLAS_L2_SIZE']}" if environ.get("OPENBLAS_L2_SIZE") else ""
    return (f"note: OPENBLAS_CORETYPE={name}{l2} in the environment makes OpenBLAS use its {name} kernel on this "
            f"AVX-512 CPU (float32 product now {measure():.0f} GFLOP/s); a current NumPy computes right without "
            f"it and may be up to twice as fast: unsetting it is your choice (README, Speed)")
