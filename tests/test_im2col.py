"""im2col/col2im index arithmetic and the output-size formulas.

The explicit formula under test: output pixel (oy, ox) at kernel offset (ky, kx) reads
input pixel (oy·s − p + ky, ox·s − p + kx), and zero where that falls in the padding.
"""
import itertools
import math

import numpy as np
import pytest

from conftest import conv_cases
from tinygan import to_numpy
from tinygan.nn import col2im, conv_out_size, deconv_out_size, im2col
from tinygan.nn.im2col import col2im_reference, im2col_reference

# (k, s, p) cases: stride 1..3, padding 0..2, kernel 1..4, including stride > kernel
# (pixels no window reads) and padding >= kernel (windows entirely in the padding).
KSP = [(1, 1, 0), (2, 1, 0), (3, 1, 1), (2, 2, 0), (3, 2, 1), (4, 2, 1), (4, 2, 2),
       (3, 3, 0), (1, 2, 1), (2, 3, 1), (3, 1, 2), (1, 1, 1)]
SHAPES = [(2, 3, 5, 5), (1, 2, 6, 4), (2, 1, 4, 7)]


CASES = conv_cases(KSP, SHAPES)


# ----- output sizes against PyTorch's documented formulas ---------------------------------
# torch.nn.Conv2d:          H_out = floor((H_in + 2·padding − dilation·(kernel_size − 1) − 1) / stride + 1)
# torch.nn.ConvTranspose2d: H_out = (H_in − 1)·stride − 2·padding + dilation·(kernel_size − 1)
#                                   + output_padding + 1
# with dilation = 1 (tinygan has none).

def torch_conv_out(h, k, s, p, dilation=1):
    return math.floor((h + 2 * p - dilation * (k - 1) - 1) / s + 1)


def torch_deconv_out(h, k, s, p, op=0, dilation=1):
    return (h - 1) * s - 2 * p + dilation * (k - 1) + op + 1


def test_conv_out_size_matches_pytorch_formula():
    n = 0
    for h, k, s, p in itertools.product(range(1, 12), range(1, 6), range(1, 4), range(0, 3)):
        if h + 2 * p < k:
            continue                                   # PyTorch rejects these
        assert conv_out_size(h, k, s, p) == torch_conv_out(h, k, s, p), (h, k, s, p)
        n += 1
    assert n > 300


def test_deconv_out_size_matches_pytorch_formula():
    for h, k, s, p in itertools.product(range(1, 10), range(1, 6), range(1, 4), range(0, 3)):
        for op in range(s):                            # PyTorch requires output_padding < stride
            assert deconv_out_size(h, k, s, p, op) == torch_deconv_out(h, k, s, p, op), (h, k, s, p, op)
    assert deconv_out_size(4, 4, 2, 1) == 8            # DCGAN's doubling layer
    assert deconv_out_size(1, 4, 1, 0) == 4            # DCGAN's 1×1 -> 4×4 projection


@pytest.mark.parametrize("h,k,s,p", [(h, k, s, p) for h in range(1, 9) for k in range(1, 5)
                                     for s in range(1, 4) for p in range(0, 2) if (h + 2 * p - k) % s == 0
                                     and h + 2 * p >= k])
def test_deconv_inverts_conv_when_division_is_exact(h, k, s, p):
    assert deconv_out_size(conv_out_size(h, k, s, p), k, s, p) == h


# ----- the index formula, written out in the test --------------------------------------

def test_im2col_hand_worked_example():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    # 2×2 windows, stride 1, no padding: four windows, row-major
    expected = np.array([[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]], dtype=float)
    np.testing.assert_array_equal(im2col(x, 2, 1, 0), expected)
    # 2×2 windows, stride 2, padding 1: windows at padded corners (0,0),(0,2),(2,0),(2,2)
    expected = np.array([[0, 0, 0, 0], [0, 0, 1, 2], [0, 3, 0, 6], [4, 5, 7, 8]], dtype=float)
    np.testing.assert_array_equal(im2col(x, 2, 2, 1), expected)


@pytest.mark.parametrize("k,s,p,shape", CASES)
def test_im2col_index_formula(xp, k, s, p, shape):
    N, C, H, W = shape
    # every element distinct, so a wrong index cannot match by accident
    x_host = np.arange(1, N * C * H * W + 1, dtype=np.float64).reshape(shape)
    cols = to_numpy(im2col(xp.asarray(x_host), k, s, p))
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    assert cols.shape == (N * OH * OW, C * k * k)
    for n, oy, ox in itertools.product(range(N), range(OH), range(OW)):
        row = (n * OH + oy) * OW + ox
        for c, ky, kx in itertools.product(range(C), range(k), range(k)):
            col = (c * k + ky) * k + kx
            y, x = oy * s - p + ky, ox * s - p + kx
            want = x_host[n, c, y, x] if (0 <= y < H and 0 <= x < W) else 0.0
            assert cols[row, col] == want, (n, oy, ox, c, ky, kx)


@pytest.mark.parametrize("k,s,p,shape", CASES)
def test_im2col_fast_equals_reference(xp, randn, k, s, p, shape):
    x = randn(xp, *shape, seed=1)
    np.testing.assert_array_equal(to_numpy(im2col(x, k, s, p)), im2col_reference(to_numpy(x), k, s, p))


@pytest.mark.parametrize("k,s,p,shape", CASES)
def test_col2im_fast_equals_reference(xp, randn, k, s, p, shape):
    N, C, H, W = shape
    rows = N * conv_out_size(H, k, s, p) * conv_out_size(W, k, s, p)
    cols = randn(xp, rows, C * k * k, seed=2)
    fast = to_numpy(col2im(cols, shape, k, s, p))
    assert fast.shape == shape
    np.testing.assert_allclose(fast, col2im_reference(to_numpy(cols), shape, k, s, p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p,shape", CASES)
def test_col2im_is_the_adjoint_of_im2col(xp, randn, k, s, p, shape):
    """<im2col(x), c> = <x, col2im(c)>: col2im is exactly im2col's transpose."""
    N, C, H, W = shape
    x = randn(xp, *shape, seed=3)
    c = randn(xp, N * conv_out_size(H, k, s, p) * conv_out_size(W, k, s, p), C * k * k, seed=4)
    lhs = float((im2col(x, k, s, p) * c).sum())
    rhs = float((x * col2im(c, shape, k, s, p)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_col2im_accumulates_overlaps():
    # 2×2 windows, stride 1 over 3×3: the centre is in 4 windows, edges in 2, corners in 1
    counts = col2im(np.ones((4, 4)), (1, 1, 3, 3), 2, 1, 0)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # stride 2, k 1: only every other pixel is read; the rest get nothing
    counts = col2im(np.ones((4, 1)), (1, 1, 4, 4), 1, 2, 0)
    np.testing.assert_array_equal(counts[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])


def test_im2col_of_non_contiguous_input(randn):
    x = randn(np, 2, 5, 3, 4, seed=5).transpose(0, 2, 1, 3)     # (2, 3, 5, 4), not C-contiguous
    assert not x.flags.c_contiguous
    for k, s, p in [(3, 1, 0), (2, 2, 0), (3, 2, 1)]:
        np.testing.assert_array_equal(im2col(x, k, s, p), im2col_reference(x, k, s, p))


def test_im2col_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    assert im2col(x, 3, 2, 1).dtype == np.float32
    assert col2im(im2col(x, 3, 2, 1), x.shape, 3, 2, 1).dtype == np.float32


# ----- col2im by phase (layout.col2im_phases) against the canvas version, bit for bit ------

PHASE_CASES = [(k, s, crop, windows, extra)
               for k, s, crop in [(2, 2, 0), (3, 2, 1), (4, 2, 1), (4, 2, 2), (5, 2, 2), (3, 3, 0), (4, 3, 1)]
               for windows, extra in [((3, 4), (0, 0)), ((2, 5), (1, 0)), ((1, 1), (0, 1)), ((2, 3), (2, 2))]
               if extra[0] < s and extra[1] < s
               if min((windows[0] - 1) * s + k + extra[0], (windows[1] - 1) * s + k + extra[1]) > 2 * crop]


@pytest.mark.parametrize("k, s, crop, windows, extra", PHASE_CASES)
@pytest.mark.parametrize("threads, channel_bytes", [(1, 2 ** 21), (1, 64), (2, 64), (1, "two"), (2, "two")])
def test_col2im_by_phase_equals_the_canvas_version_bit_for_bit(monkeypatch, k, s, crop, windows, extra,
                                                               threads, channel_bytes):
    """Same sums in the same order: equal arrays, not merely close. ``extra`` rows/columns
    of canvas no window reaches (a transposed convolution's output_padding); a tiny
    ``_CHANNELS_BYTES`` forces one channel per block, "two" two channels per block (5
    channels: a last block of one), and two threads split the channels."""
    from tinygan import parallel
    from tinygan.nn import layout
    (OH, OW), (ey, ex), C, N = windows, extra, 5, 3
    Hp, Wp = (OH - 1) * s + k + ey, (OW - 1) * s + k + ex
    if channel_bytes == "two":
        channel_bytes = 2 * s * s * (-(-Hp // s)) * (-(-Wp // s)) * N * 8
    monkeypatch.setattr(layout, "_CHANNELS_BYTES", channel_bytes)
    monkeypatch.setattr(parallel, "MIN_SIZE", 0)
    monkeypatch.setitem(parallel._state, "threads", threads)
    cols = np.random.default_rng(7).standard_normal((C * k * k, OH * OW * N))
    canvas = np.full((C, Hp, Wp, N), np.nan)                     # garbage in: both must overwrite it
    expected = layout.col2im_chwn(cols, canvas, k, s, crop=crop,
                                  out=np.empty((C, Hp - 2 * crop, Wp - 2 * crop, N)))
    phases = np.full(layout.phase_shape(C, Hp, Wp, N, s, 8), np.nan)
    block = -(-C // threads) if channel_bytes > 2 ** 20 else 1 if channel_bytes == 64 else 2
    assert phases.shape[2] == block * threads                     # channels per block, a block per thread
    got = layout.col2im_phases(cols, phases, k, s, out=np.full_like(expected, np.nan), crop=crop)
    np.testing.assert_array_equal(got, expected)
    assert not np.isnan(got).any()


def test_col2im_by_phase_refuses_what_it_cannot_do():
    """k < s leaves phases no offset copies into (col2im_chwn handles it); scratch sized for
    fewer threads than the call splits over would be overrun."""
    from tinygan import parallel
    from tinygan.nn import layout
    cols, out = np.zeros((5 * 2 * 2, 3 * 3 * 1)), np.empty((5, 7, 7, 1))
    with pytest.raises(ValueError, match="kernel >= stride"):
        layout.col2im_phases(cols, np.empty(layout.phase_shape(5, 7, 7, 1, 3, 8)), 2, 3, out=out)
    with pytest.raises(ValueError, match="phase_shape"):
        layout.col2im_phases(np.zeros((5 * 16, 3 * 3 * 1)), np.empty((2, 2, 1, 4, 4, 1)), 4, 2,
                             out=np.empty((5, 6, 6, 1)), crop=1)
