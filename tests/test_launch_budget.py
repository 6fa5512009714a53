"""The GPU path's launch budget, checked on a CPU (benchmarks/launch_budget.py, docs/gpu.md).

A stand-in for CuPy counts every array operation of one train_step on the non-NumPy
branch — each is at least one kernel launch on a GPU — and returns element-wise results
C-contiguous as CuPy does, so a layer whose layout only NumPy would keep shows up as a
transposing copy.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import launch_budget as lb  # noqa: E402

from tinygan import backend  # noqa: E402

BUDGET = 1100                 # array operations in one batch-256 step (docs/gpu.md: 1,067), einsum counted as CuPy runs it


@pytest.fixture(scope="module")
def step_256():
    counts, G, D = lb.count_train_step(batch_size=256, image_size=64, features=64)
    return counts.total, counts.bytes, counts.transposing, dict(counts.launches), counts.moved


def test_the_stand_in_counts_what_a_gpu_would_launch():
    with lb.counting_cupy() as cp:
        lb.COUNTS.__init__()
        a = cp.asarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4))     # upload: 1
        assert backend.get_array_module(a) is cp                             # tinygan sees "cupy"
        b = a.transpose(2, 0, 1).reshape(4, 6)                               # views: 0
        c = a * 2                                                            # 1
        a[...] = 0                                                           # 1
        d = cp.empty_like(a)                                                 # 0
        cp.add(a, 1, out=d)                                                  # 1
        s = d.sum()                                                          # 1
        t = a.transpose(2, 0, 1) + 1                                         # 1, comes back C-contiguous
        u = cp.ascontiguousarray(a.transpose(2, 0, 1))                       # 1, a transposing copy
        assert lb.COUNTS.total == 6 + 1 and lb.COUNTS.launches["upload"] == 1
        assert t.flags.c_contiguous                                          # as CuPy's kernels write
        assert not (np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1) + 1).flags.c_contiguous   # NumPy keeps it
        assert lb.COUNTS.transposing == 1 and u.shape == (4, 2, 3)
        assert lb.COUNTS.bytes == 5 * a.nbytes + s.nbytes                    # a, c, d, t, u and the sum
        # read and written: c (a, c), a[...] (a), add (a, d), sum (d, s), t (a, t), u (a, u)
        assert lb.COUNTS.moved == 10 * a.nbytes + s.nbytes
        assert float(s) == 24.0 and b.shape == (4, 6) and float(c.get().sum()) == 2 * 276


def test_a_batch_256_step_fits_the_launch_budget(step_256):
    total, _, _, launches, _ = step_256
    assert total <= BUDGET, f"{total} array operations > {BUDGET}: " + ", ".join(
        f"{k} {n}" for k, n in sorted(launches.items(), key=lambda kv: -kv[1])[:8])


def test_no_transposing_copy_between_layers(step_256):
    """Only the two edges copy to the batch-innermost layout: z into G and the real images into D."""
    _, _, transposing, _, _ = step_256
    assert transposing == 2


def test_the_launch_count_does_not_grow_with_the_batch(step_256):
    """No loop on the GPU branch depends on the data's size (NumPy's col2im works in cache-sized
    blocks of channels; a GPU's adds the whole canvas at once)."""
    small, _, _ = lb.count_train_step(batch_size=8, image_size=64, features=8)
    assert small.total == step_256[0]


def test_temporaries_per_step(step_256):
    """Bytes of arrays a batch-256 step allocates (the memory pool reuses them; this bounds the
    traffic): within the figure docs/gpu.md gives."""
    _, nbytes, _, _, _ = step_256
    assert 3.0 * 2**30 < nbytes < 3.8 * 2**30


def test_bytes_moved_per_step(step_256):
    """What the step's operations read and write, each operand once: the memory traffic docs/gpu.md's
    estimate divides by the GPU's bandwidth (36.4 GB at batch 256)."""
    moved = step_256[4]
    assert 33e9 < moved < 40e9, f"{moved / 1e9:.1f} GB moved: update docs/gpu.md's estimate"


def test_the_stand_in_counts_einsum_as_cupy_runs_it():
    """CuPy's einsum of two arrays copies both into a batched layout and runs a batched GEMM
    (cupy/linalg/_einsum.py): three launches and two operand-sized temporaries, not one."""
    with lb.counting_cupy() as cp:
        a = cp.asarray(np.ones((4, 3, 2, 5), np.float32))
        lb.COUNTS.__init__()
        s = cp.einsum("nchw,nchw->c", a, a)
        assert lb.COUNTS.total == 3 and lb.COUNTS.launches["einsum: batched matmul"] == 1
        assert lb.COUNTS.bytes == 2 * a.nbytes + s.nbytes
        assert float(s.get()[0]) == 40.0


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_statistics_are_plain_reductions_on_the_gpu(training):
    """BatchNorm's σ² and dγ on the CuPy branch are a product and a sum, as on NumPy: no einsum
    and no matrix product, whose batched GEMM CUPY_TF32=1 would run in TF32 (PyTorch's TF32
    flags never touch BatchNorm), with two operand copies CuPy's einsum makes first."""
    from tinygan import nn
    with lb.counting_cupy() as cp:
        bn = nn.BatchNorm2d(6)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(bn, name, cp.asarray(getattr(bn, name)))
        for p in bn.parameters():
            p.data, p.grad = cp.asarray(p.data), cp.asarray(p.grad)
        bn.train(training)
        x = cp.asarray(np.random.default_rng(0).standard_normal((8, 6, 5, 5)).astype(np.float32))
        lb.COUNTS.__init__()
        bn.backward(bn(x) * 1)
        products = {k: n for k, n in lb.COUNTS.launches.items()
                    if k.startswith("einsum") or k in ("matmul", "dot", "tensordot", "vdot", "inner")}
        assert products == {}, f"BatchNorm2d ({'train' if training else 'eval'}) on the GPU branch: {products}"
        assert lb.COUNTS.launches["multiply"] > 0 and lb.COUNTS.launches["add.reduce"] > 0
