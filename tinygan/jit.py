"""Plain Python loops, compiled to machine code by Numba where it is installed.

Some work is one loop in any compiled language and several passes in NumPy, each through
all of memory: col2im's gather (every output pixel sums its few contributors), or a
padding fused into im2col. NumPy has no way to say "for each pixel, do this"; Numba does:
it compiles a Python function of loops over arrays to machine code, the first time the
function is called with a given set of argument types.

    @jit.loop                      # in the module that holds the NumPy version
    def _gather(cols, out, lo, hi):
        for c in range(lo, hi): ...          # plain Python: loops, indexing, arithmetic

    if jit.usable(cols, out):                # Numba on, NumPy arrays of one float dtype
        _gather(cols, out, 0, C)             # compiled (the first call compiles: ~1 s)
    else:
        ...                                  # the NumPy version, always kept beside it

Without Numba a loop still runs, as Python (slowly: the layers then use their NumPy
versions, and the tests call ``.py``, the plain function, on tiny arrays to check its index
arithmetic against them).
Compiled loops let go of Python's global lock (``nogil``), so ``parallel.run`` can split
them over the cores like any NumPy call, and they never reorder floating-point
arithmetic (no ``fastmath``): each loop does the same operations in the same order as
the NumPy version beside it, so the two give the same bits (the tests check).

Numba is optional (``pip install -e '.[fast]'``; ``make demo`` installs it). Set
TINYGAN_JIT=0 to use the NumPy versions with Numba installed, or call ``set_enabled``.
Compiled code is cached on disk (Numba's ``cache=True``), so only the first run on a
machine pays for the compiling.
"""
import importlib.util
import os
import threading
import warnings

import numpy as np

_state = {"enabled": None}
_compiling = threading.Lock()


def numba_installed():
    """Whether Numba is installed (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _numba_imports():
    """None if Numba imports, else why not (e.g. a Numba older than this NumPy refuses to load)."""
    if not numba_installed():
        return "Numba is not installed"
    try:
        import numba  # noqa: F401
    except Exception as e:                    # ImportError, or whatever a broken install raises
        return f"Numba is installed but does not import ({type(e).__name__}: {e})"
    return None


def _from_environment():
    if os.environ.get("TINYGAN_JIT", "").strip() == "0" or not numba_installed():
        return False
    why = _numba_imports()
    if why is not None:
        warnings.warn(f"tinygan: {why}; using the NumPy versions of the compiled loops "
                      f"(pip install -U numba, or set TINYGAN_JIT=0 to silence this)", RuntimeWarning, stacklevel=3)
    return why is None


def enabled():
    """Whether layers use their compiled loops (Numba importable and not switched off)."""
    if _state["enabled"] is None:
        _state["enabled"] = _from_environment()
    return _state["enabled"]


def set_enabled(on):
    """Use the compiled loops (True, needs Numba) or the NumPy versions (False) from now on."""
    why = _numba_imports() if on else None
    if why is not None:
        raise RuntimeError(f"jit.set_enabled(True): {why}; pip install -U numba "
                           f"(or pip install -e '.[fast]' in a tinygan checkout)")
    _state["enabled"] = bool(on)


def why_off():
    """None while the compiled loops are on, else why they are off, in a few words."""
    if enabled():
        return None
    if os.environ.get("TINYGAN_JIT", "").strip() == "0":
        return "TINYGAN_JIT=0"
    return _numba_imports() or "switched off by jit.set_enabled(False)"


def usable(*arrays):
    """Whether a compiled loop may take these arrays: the loops are on, and the arrays are NumPy
    arrays of ONE dtype, float32 or float64 (Numba has no float16; a loop over mixed dtypes
    would round once where the NumPy lines round after every pass)."""
    if not enabled():
        return False
    first = arrays[0]
    return all(type(a) is np.ndarray and a.dtype == first.dtype for a in arrays) and \
        first.dtype in _LOOP_DTYPES


_LOOP_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _Loop:
    """A function compiled by Numba on its first call (Numba is imported only then)."""

    def __init__(self, fn):
        self.py = fn                       # the plain Python function, always callable
        self._compiled = None
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__

    def __call__(self, *args):
        if self._compiled is None:
            with _compiling:                   # one dispatcher, however many threads arrive first (Numba
                                               # then compiles under its own lock, on the first call)
                if self._compiled is None:
                    self._compiled = _compile(self.py) if numba_installed() else self.py
        return self._compiled(*args)


def _compile(fn):
    """Numba's machine code for ``fn``: no Python objects, NumPy's error model (a division by zero
    gives inf, as NumPy's does, and costs no test in the loop), cached on disk where it can be."""
    import numba
    options = dict(nogil=True, error_model="numpy")
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:                     # no writable cache folder: compile in every process
        return numba.njit(**options)(fn)


def loop(fn):
    """Decorator: ``fn`` compiled by Numba on its first call (plain Python without Numba)."""
    return _Loop(fn)
