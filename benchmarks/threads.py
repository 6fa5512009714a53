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


def configure(n):
    """Ask every BLAS and OpenMP runtime for ``n`` threads (call before importing numpy/torch)."""
    for name in _ENV:
        os.environ[name] = str(n)


def _openblas():
    """numpy's bundled OpenBLAS as a ctypes library, or None."""
    import numpy as np
    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
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
