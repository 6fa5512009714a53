"""tinygan.parallel: work split over threads gives the numbers of the plain call, bit for bit."""
import threading

import numpy as np
import pytest

from tinygan import parallel
from tinygan.dcgan import build, train_step
from tinygan.nn.layout import chwn_to_nchw
from tinygan.optim import Adam


@pytest.fixture
def threads():
    """Set parallel's thread count (and split even tiny arrays) for one test; restore after."""
    saved_threads, saved_min = parallel.threads(), parallel.MIN_SIZE

    def set_to(n, min_size=1):
        parallel.set_threads(n)
        parallel.MIN_SIZE = min_size
    yield set_to
    parallel.set_threads(saved_threads)
    parallel.MIN_SIZE = saved_min


@pytest.mark.parametrize("n, parts", [(10, 3), (7, 7), (3, 8), (1, 1), (1000, 2)])
def test_ranges_cover_every_item_once_in_order(n, parts):
    r = parallel.ranges(n, parts)
    assert [i for lo, hi in r for i in range(lo, hi)] == list(range(n))
    sizes = [hi - lo for lo, hi in r]
    assert len(r) == min(n, parts) and max(sizes) - min(sizes) <= 1


def test_run_returns_each_ranges_result_and_uses_other_threads(threads):
    threads(3)
    seen = []

    def fn(lo, hi):
        seen.append(threading.current_thread().name)
        return lo, hi
    assert parallel.run(fn, 9, size=10 ** 9) == [(0, 3), (3, 6), (6, 9)]
    assert seen.count(threading.current_thread().name) == 1            # the caller took one range
    assert sum(name.startswith("tinygan") for name in seen) == 2        # the pool the other two


def test_run_below_min_size_or_one_thread_is_the_plain_call(threads):
    threads(4, min_size=100)
    assert parallel.run(lambda lo, hi: (lo, hi), 8, size=99) == [(0, 8)]
    threads(1)
    assert parallel.run(lambda lo, hi: (lo, hi), 8, size=10 ** 9) == [(0, 8)]


def test_run_reraises_a_worker_error_after_every_range_finished(threads):
    threads(2)
    done = []

    def fn(lo, hi):
        if lo > 0:
            raise ValueError(f"range {lo}-{hi} failed")
        done.append(lo)
    with pytest.raises(ValueError, match="range 5-10 failed"):
        parallel.run(fn, 10, size=10 ** 9)
    assert done == [0]


def test_run_in_pieces_returns_every_range_in_order_whoever_took_it(threads):
    threads(3)
    assert parallel.run(lambda lo, hi: (lo, hi), 12, size=10 ** 9, pieces=2) == \
        [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12)]


def test_run_in_pieces_lets_the_caller_take_the_share_of_a_thread_that_starts_late(threads):
    """The pool's threads are kept busy until the caller has done every piece: the call still
    finishes, all pieces done by the caller (with pieces=1 it would wait for that thread)."""
    threads(2)
    release, who = threading.Event(), []
    pool = parallel._pool(1)
    for _ in range(parallel._state["pool_threads"]):       # every pool thread busy
        pool.submit(release.wait)

    def fn(lo, hi):
        who.append(threading.current_thread().name)
        if hi == 8:
            release.set()                                  # the last piece: let the pool go
        return lo
    assert parallel.run(fn, 8, size=10 ** 9, pieces=4) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert who == [threading.current_thread().name] * 8


def test_set_threads_rejects_nonsense():
    with pytest.raises(ValueError, match="set_threads: need an integer >= 1, got 0"):
        parallel.set_threads(0)


def test_threads_come_from_tinygan_threads_else_one(monkeypatch):
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)   # OpenBLAS's default spin
    monkeypatch.setenv("TINYGAN_THREADS", "3")
    assert parallel._threads_from_environment() == 3
    for value in ("", "0", "many"):
        monkeypatch.setenv("TINYGAN_THREADS", value)
        assert parallel._threads_from_environment() == 1
    monkeypatch.delenv("TINYGAN_THREADS")
    assert parallel._threads_from_environment() == 1


def test_elementwise_splits_same_layout_arrays_and_not_mixed_ones(threads):
    threads(2)
    x = chwn_to_nchw(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5, 2))   # batch-innermost
    y = np.empty_like(x)                                     # same layout
    calls = []

    def square(a, out):
        calls.append(a.ndim)
        np.multiply(a, a, out=out)
    parallel.elementwise(square, x, y)
    assert calls == [1] * 2 * parallel.PIECES and np.array_equal(y, x * x)   # 1-D stretches of memory
    calls.clear()
    z = np.empty(x.shape, dtype=np.float32)                  # C-contiguous: another layout
    parallel.elementwise(square, x, z)
    assert calls == [4] and np.array_equal(z, x * x)          # one plain call


def _two_steps(seed=3):
    G, D = build("paper", latent_dim=8, features=8, image_size=16, seed=seed)
    opt_G = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(2):
        real = rng.uniform(-1, 1, (6, 3, 16, 16)).astype(np.float32)
        z = rng.standard_normal((6, 8, 1, 1)).astype(np.float32)
        losses += [float(v) for v in train_step(G, D, opt_G, opt_D, real, z)]
    return losses, [p.data.copy() for p in G.parameters() + D.parameters()], \
        [b.copy() for m in (G, D) for _, b in m.named_buffers()]


@pytest.mark.parametrize("n", [2, 3])
def test_a_training_step_on_threads_is_bit_identical_to_one_thread(threads, n):
    threads(1)
    plain = _two_steps()
    threads(n)                       # every BN, activation, im2col/col2im and Adam call split n ways
    split = _two_steps()
    assert plain[0] == split[0]
    for a, b in zip(plain[1] + plain[2], split[1] + split[2]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("env, expected", [
    ({}, 1),                                                          # OpenBLAS spins ~0.1 s: plain version
    ({"OPENBLAS_THREAD_TIMEOUT": "28"}, 1),                           # its default, written out
    ({"OPENBLAS_THREAD_TIMEOUT": "0"}, 1),                            # OpenBLAS ignores 0: still spins
    ({"OPENBLAS_THREAD_TIMEOUT": "22"}, "cores"),                     # short spin: one per core
    ({"OPENBLAS_THREAD_TIMEOUT": "22", "OPENBLAS_NUM_THREADS": "1"}, 1),   # never more than BLAS got
    ({"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_NUM_THREADS": "1"}, 1),
    ({"TINYGAN_THREADS": "3", "OPENBLAS_THREAD_TIMEOUT": "28"}, 3),  # asked for by name
    ({"TINYGAN_THREADS": "x", "OPENBLAS_THREAD_TIMEOUT": "22", "OPENBLAS_NUM_THREADS": "1"}, 1),
])
def test_default_thread_count_follows_openblas_spin_and_thread_settings(monkeypatch, env, expected):
    import os
    for name in ("TINYGAN_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(parallel._state, "threads", None)            # read the environment afresh
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert parallel.threads() == (cores if expected == "cores" else expected)


def test_the_entry_points_ask_openblas_for_the_spin_parallel_expects():
    """examples/pokemon.py (run as a script) and benchmarks/threads.py set OPENBLAS_THREAD_TIMEOUT before NumPy
    loads (they cannot import parallel first): their literal must be SHORT_SPIN."""
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[1]
    demo = (root / "examples" / "pokemon.py").read_text()
    assert re.search(r'setdefault\("OPENBLAS_THREAD_TIMEOUT", "(\d+)"\)', demo).group(1) == str(parallel.SHORT_SPIN)
    bench = (root / "benchmarks" / "threads.py").read_text()
    assert re.search(r'SHORT_SPIN = "(\d+)"', bench).group(1) == str(parallel.SHORT_SPIN)
    assert not re.search(r"^(import|from) (numpy|tinygan)", demo, re.M)     # nothing loads NumPy at import
    assert demo.index('setdefault("OPENBLAS_THREAD_TIMEOUT"') > demo.index('if __name__ == "__main__":')
