"""One array operation split over the CPU's cores.

NumPy runs every ufunc, copy and reduction on ONE core, however many the machine has;
only its matrix products (BLAS) use them all. But NumPy lets go of Python's global lock
while it loops over the numbers, so Python threads that work on disjoint parts of the
same array really do run at once. That is all this module does:

    parallel.run(fn, n, size)      fn(lo, hi) for consecutive ranges [lo, hi) covering [0, n)

The calling thread does the first range itself while the others run on a small pool,
and ``run`` returns when all are done (re-raising the first error), with the list of
what ``fn`` returned, range by range. The caller chooses what a range means — channels
of an activation, elements of a flat buffer — and makes sure the ranges write to
disjoint memory. Nothing about the numbers changes: each element is computed by exactly
the same operations as in the plain call ``fn(0, n)``, only by another thread (tests/test_parallel.py checks a whole training step bit for bit).

When it is NOT worth it: waking a pool thread costs tens of microseconds, more than a
small operation takes. ``size`` is the number of array elements the call touches; below
``MIN_SIZE`` (or with one thread, or on a GPU, where an operation is one kernel launch
whatever its size) ``run`` is just ``fn(0, n)``.

What stands in the way: after each matrix product OpenBLAS's own threads spin for a
while (2^28 clock cycles by default, about 0.1 s), waiting for the next one, so a tinygan
thread started just then shares its core with one of them, and on a 2-core machine that
eats the gain. OPENBLAS_THREAD_TIMEOUT=n, read once when NumPy loads, sends them to sleep
after 2^n cycles instead. With n = ``SHORT_SPIN`` (22: about 1.5 ms) the split pays
(benchmarks/RESULTS.md, "Intel Xeon (AVX-512) again": the paper's step 1.12× faster, the demo's
unchanged); with a smaller n every product starts slower, waking them.

How many threads: ``set_threads(n)``, else the environment's TINYGAN_THREADS, else — when
OPENBLAS_THREAD_TIMEOUT is at most ``SHORT_SPIN`` — one per core this process may use (no
more than OPENBLAS_NUM_THREADS, or OMP_NUM_THREADS, if set), else ONE, the plain version.
``examples/pokemon.py`` and the benchmarks set OPENBLAS_THREAD_TIMEOUT (unless it is set
already) before they import NumPy. OpenBLAS reads it only then: a program that sets it
after importing NumPy gets the split with OpenBLAS still spinning (slower, same numbers).
"""
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_SIZE = 2 ** 21          # elements (8 MiB of float32): below this one thread is as fast (RESULTS.md)
PIECES = 4                  # ranges per thread for the calls that let any thread take any range
SHORT_SPIN = 22             # OPENBLAS_THREAD_TIMEOUT at or below which the split is on by default

_state = {"threads": None, "pool": None, "pool_threads": 0}
_lock = threading.Lock()


def _threads_from_environment():
    value = os.environ.get("TINYGAN_THREADS", "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip()
    if not (timeout.isdigit() and 1 <= int(timeout) <= SHORT_SPIN):    # OpenBLAS ignores 0
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "")).strip()
    return min(cores, int(blas)) if blas.isdigit() and int(blas) >= 1 else cores     # no more than BLAS was given


def threads():
    """The number of threads ``run`` splits work over (>= 1)."""
    if _state["threads"] is None:
        _state["threads"] = _threads_from_environment()
    return _state["threads"]


def set_threads(n):
    """Use ``n`` threads from now on (1: everything on the calling thread, the plain version)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"parallel.set_threads: need an integer >= 1, got {n!r}")
    _state["threads"] = n


def ranges(n, parts):
    """[0, n) cut into ``parts`` consecutive (lo, hi) ranges as equal as integers allow."""
    parts = max(1, min(parts, n))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def _pool(workers):
    with _lock:
        if _state["pool_threads"] < workers:
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=False)
            _state["pool"] = ThreadPoolExecutor(workers, thread_name_prefix="tinygan")
            _state["pool_threads"] = workers
        return _state["pool"]


def parts_for(n, size, xp=np):
    """How many ranges ``run`` would cut ``n`` items into for a call touching ``size`` elements."""
    if xp is not np or size < MIN_SIZE:
        return 1
    return max(1, min(threads(), n))


def run(fn, n, size, xp=np, pieces=1):
    """Call ``fn(lo, hi)`` over consecutive ranges covering [0, n), on up to ``threads()`` threads.

    ``size``: the elements the whole call touches (decides whether splitting pays);
    ``xp``: the array module (anything but NumPy runs ``fn(0, n)``, one call);
    ``pieces``: ranges per thread. With 1, each thread has its range (``ranges(n, threads)``,
    as col2im_phases's scratch expects). With more, the ranges are claimed in turn by whichever
    thread is free, so a thread that starts late — its core busy with OpenBLAS's spinning
    threads just after a product — delays the call by a piece, not by its whole share.
    """
    parts = parts_for(n, size, xp)
    if parts == 1:
        return [fn(0, n)]
    todo = ranges(n, parts * pieces)
    if pieces == 1:
        first, *rest = todo
        futures = [_pool(len(rest)).submit(fn, lo, hi) for lo, hi in rest]
        work = lambda: [fn(*first)]                   # noqa: E731
    else:
        results, claims = [None] * len(todo), itertools.count()    # next() of a count is atomic

        def work():
            while True:
                i = next(claims)
                if i >= len(todo):
                    return results
                results[i] = fn(*todo[i])
        futures = [_pool(parts - 1).submit(work) for _ in range(parts - 1)]
    try:
        mine = work()
    finally:
        errors = [f.exception() for f in futures]     # wait for every range, even after an error
    for e in errors:
        if e is not None:
            raise e
    return mine if pieces > 1 else mine + [f.result() for f in futures]


def joined(results, xp=np):
    """``run``'s per-range results, each a tuple of 1-D arrays, joined back range by range.

    [(a0, b0), (a1, b1)] -> (concatenate([a0, a1]), concatenate([b0, b1])); with one range
    the arrays themselves (no copy).
    """
    return tuple(xp.concatenate(col) if len(col) > 1 else col[0] for col in zip(*results))


def _flat_views(arrays):
    """1-D views of ``arrays`` in memory order, or None if they are not all dense with one layout."""
    first = arrays[0]
    if any(a.shape != first.shape or a.strides != first.strides for a in arrays):
        return None
    flats = [np.ravel(a, order="K") for a in arrays]
    return None if any(f.base is None and f is not a for f, a in zip(flats, arrays)) else flats


def elementwise(fn, *arrays):
    """``fn(*arrays)`` for an element-wise ``fn``, split into parts of the arrays' memory.

    The arrays (inputs and ``out=`` outputs alike) must have one shape; when they also have
    one memory layout and are dense — every array a layer makes with ``like(x)`` — ``fn``
    gets their 1-D views, each thread the same stretch of memory of every array,
    ``fn(a[lo:hi], b[lo:hi], ...)``. Otherwise (mixed layouts, a GPU array) it is one call
    ``fn(*arrays)`` on the arrays themselves (so ``fn`` may check ``a.ndim == 1``).
    """
    xp = type(arrays[0]).__module__.split(".")[0]       # by module, not isinstance: a CuPy stand-in
    flats = _flat_views(arrays) if xp == "numpy" else None  # (benchmarks/launch_budget.py) subclasses ndarray
    if flats is None:
        fn(*arrays)
        return
    run(lambda lo, hi: fn(*(f[lo:hi] for f in flats)), flats[0].size, flats[0].size, pieces=PIECES)
