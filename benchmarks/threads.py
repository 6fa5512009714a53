"""Thread counts for the benchmarks: NumPy's BLAS (OpenBLAS) and PyTorch's intra-op pool.

``configure(n)`` must run BEFORE numpy is imported: OpenBLAS reads OPENBLAS_NUM_THREADS
(and OMP_NUM_THREADS) once, when it loads. ``blas_threads()`` then asks the loaded
OpenBLAS how many threads it really uses (via ctypes; None where it cannot tell), so
the benchmark prints what was in effect rather than what was asked for.
"""
import ctypes
import glob
import os

_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


SHORT_SPIN = "22"     # = tinygan.parallel.SHORT_SPIN (tests/test_parallel.py checks); not imported: that loads numpy


def configure(n):
    """Ask every BLAS and OpenMP runtime for ``n`` threads (call before importing numpy/torch).

    Also OPENBLAS_THREAD_TIMEOUT=22 unless it is set: OpenBLAS's idle threads sleep after
    ~1.5 ms instead of spinning ~0.1 s, which lets tinygan split its element-wise work over
    the cores (tinygan/parallel.py), as ``examples/pokemon.py`` does.
    """
    for name in _ENV:
        os.environ[name] = str(n)
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", SHORT_SPIN)


def _numpy_dirs():
    """numpy's package folder and the numpy.libs folder of its bundled libraries (wheels on Linux)."""
    import numpy as np
    root = os.path.dirname(np.__file__)
    return root, os.path.join(os.path.dirname(root), "numpy.libs")


def _openblas():
    """numpy's bundled OpenBLAS as a ctypes library, or None."""
    for path in glob.glob(os.path.join(_numpy_dirs()[1], "*openblas*.so*")):
        try:
            return ctypes.CDLL(path)
        except OSError:
            pass
    return None


def blas_threads():
    """The thread count numpy's OpenBLAS reports, or None if it cannot be asked."""
    lib = _openblas()
    for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                 "openblas_get_num_threads"):
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            fn.restype = ctypes.c_int
            return fn()
    return None


def set_blas_threads(n):
    """Change numpy's OpenBLAS thread count at run time (for thread experiments); True if it worked."""
    lib = _openblas()
    for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                 "openblas_set_num_threads"):
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            fn.argtypes = [ctypes.c_int]
            fn(int(n))
            return True
    return False


def machine():
    """Where a figure comes from, as a dict: CPU model and vector extensions, cores, kernel,
    and numpy's BLAS (library, the kernel it chose for this CPU, version, threads)."""
    import platform
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "kernel": f"{platform.system()} {platform.release()}", "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
        info["cpu"] = model
        info["extensions"] = [x for x in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if x in flags]
    except (OSError, StopIteration):
        pass
    try:
        from threadpoolctl import threadpool_info
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        # numpy's own first: torch, once loaded, may bring SciPy (torch._dynamo imports it), whose OpenBLAS
        # is another build ("libscipy_openblas-…" in scipy.libs beside numpy.libs' "libscipy_openblas64_-…")
        numpy_dirs = tuple(d + os.sep for d in _numpy_dirs())
        blas.sort(key=lambda p: not p.get("filepath", "").startswith(numpy_dirs))
        if blas:
            b = blas[0]
            info["blas"] = {"library": b.get("internal_api"), "kernel": b.get("architecture"),
                            "version": b.get("version"), "threads": b.get("num_threads")}
    except ImportError:
        info["blas"] = {"library": "unknown (pip install threadpoolctl to name it)", "threads": blas_threads()}
    info["loops"] = _compiled_loops()
    from tinygan import blas                          # (numpy is loaded by now, as for _compiled_loops)
    forced = blas.forced_kernel()
    if forced:
        info["forced_kernel"] = forced
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_THREAD_TIMEOUT", "TINYGAN_THREADS", "TINYGAN_JIT"):
        if os.environ.get(name):
            info.setdefault("env", {})[name] = os.environ[name]
    return info


def _compiled_loops():
    """tinygan's compiled loops as a few words: 'Numba 0.68.1', or why they are off (``jit.why_off``)."""
    import importlib.metadata

    from tinygan import jit                           # imports numpy: only once a benchmark has loaded it
    why = jit.why_off()
    return f"Numba {importlib.metadata.version('numba')}" if why is None else f"off ({why})"


def yardstick(torch=None, n=2048, repeats=5):
    """This machine's speed right now, as one float32 GEMM (n×n by n×n) in GFLOP/s, best of
    ``repeats``: NumPy's (OpenBLAS), and PyTorch's when ``torch`` (the module) is given.

    Machines of one kind differ, and one machine's speed swings from minute to minute; a
    step's GFLOP/s beside this figure (the share of the machine's own product speed it
    reaches) compares across machines where examples/sec do not.
    """
    import time

    import numpy as np

    def best(mm, a, b):
        mm(a, b)                                                    # warm-up: threads, pages
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            mm(a, b)
            times.append(time.perf_counter() - t)
        return 2 * n ** 3 / min(times) / 1e9

    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in (0, 1))
    out = {"n": n, "numpy_gflops": best(np.matmul, a, b)}
    if torch is not None:
        out["torch_gflops"] = best(torch.mm, torch.from_numpy(a), torch.from_numpy(b))
    return out


def yardstick_line(y, step_gflops=None):
    """``yardstick()`` as one line; ``step_gflops``: {'tinygan': …, 'torch': …} to set beside it."""
    pt = f", PyTorch {y['torch_gflops']:.0f}" if "torch_gflops" in y else ""
    line = f"yardstick: float32 GEMM {y['n']}x{y['n']} now: NumPy {y['numpy_gflops']:.0f} GFLOP/s{pt}"
    if step_gflops:
        shares = [f"tinygan's step {step_gflops['tinygan'] / y['numpy_gflops']:.2f} of NumPy's"]
        if "torch" in step_gflops and "torch_gflops" in y:
            shares.append(f"PyTorch's {step_gflops['torch'] / y['torch_gflops']:.2f} of PyTorch's")
        line += "; " + ", ".join(shares)
    return line


def machine_line(info=None):
    """``machine()`` as the one line a benchmark prints under its table."""
    m = info or machine()
    b = m.get("blas", {})
    ext = ", ".join(m.get("extensions", [])) or "no AVX2"
    env = "".join(f", {k}={v}" for k, v in m.get("env", {}).items())
    return (f"machine: {m['cpu']} ({ext}), {m['cores']} cores, {m['kernel']}, Python {m['python']}; BLAS "
            f"{b.get('library')} {b.get('version', '')} kernel {b.get('kernel', '?')}, {b.get('threads')} threads; "
            f"compiled loops {m.get('loops', '?')}{env}"
            + (f" (forces OpenBLAS's {m['forced_kernel']} kernel on this AVX-512 CPU: see README, Speed)"
               if m.get("forced_kernel") else ""))
