"""Conv2d and ConvTranspose2d forward passes against plain loops written here, and the
adjoint identity that ties them together.

    conv:   y[n, o, oy, ox] = b[o] + Σ_{c,ky,kx} w[o, c, ky, kx] · x[n, c, oy·s − p + ky, ox·s − p + kx]
    convT:  y[n, o, iy·s − p + ky, ix·s − p + kx] += w[c, o, ky, kx] · x[n, c, iy, ix]   (then + b[o])

These loops do not use tinygan.nn.im2col (nor its *_reference twins).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygan
from conftest import CONV_KSP, DECONV_KSPO
from tinygan import nn, to_numpy

HYPO = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def conv_loops(x, w, b, s, p):
    N, C, H, W = x.shape
    O, _, K, _ = w.shape
    OH, OW = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            for oy in range(OH):
                for ox in range(OW):
                    acc = 0.0 if b is None else b[o]
                    for c in range(C):
                        for ky in range(K):
                            for kx in range(K):
                                iy, ix = oy * s - p + ky, ox * s - p + kx
                                if 0 <= iy < H and 0 <= ix < W:
                                    acc += w[o, c, ky, kx] * x[n, c, iy, ix]
                    y[n, o, oy, ox] = acc
    return y


def conv_transpose_loops(x, w, b, s, p, op=0):
    N, C, H, W = x.shape
    _, O, K, _ = w.shape
    OH, OW = (H - 1) * s - 2 * p + K + op, (W - 1) * s - 2 * p + K + op
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for c in range(C):
            for iy in range(H):
                for ix in range(W):
                    for o in range(O):
                        for ky in range(K):
                            for kx in range(K):
                                oy, ox = iy * s - p + ky, ix * s - p + kx
                                if 0 <= oy < OH and 0 <= ox < OW:
                                    y[n, o, oy, ox] += w[c, o, ky, kx] * x[n, c, iy, ix]
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def _host(a):
    return None if a is None else to_numpy(a)


def _run_conv(xp, randn, N, C, O, H, W, k, s, p, bias):
    layer = nn.Conv2d(C, O, k, stride=s, padding=p, bias=bias)
    x = randn(xp, N, C, H, W, seed=7)
    y = layer(x)
    want = conv_loops(to_numpy(x), _host(layer.weight.data), _host(layer.bias.data if bias else None), s, p)
    assert y.shape == want.shape
    np.testing.assert_allclose(to_numpy(y), want, rtol=1e-10, atol=1e-12)


def _run_deconv(xp, randn, N, C, O, H, W, k, s, p, op, bias):
    layer = nn.ConvTranspose2d(C, O, k, stride=s, padding=p, bias=bias, output_padding=op)
    x = randn(xp, N, C, H, W, seed=8)
    y = layer(x)
    want = conv_transpose_loops(to_numpy(x), _host(layer.weight.data), _host(layer.bias.data if bias else None), s, p, op)
    assert y.shape == want.shape
    np.testing.assert_allclose(to_numpy(y), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k,s,p", CONV_KSP)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_forward_matches_loops(xp, randn, k, s, p, bias):
    _run_conv(xp, randn, 2, 3, 2, 6, 5, k, s, p, bias)


@pytest.mark.parametrize("k,s,p,op", DECONV_KSPO)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d_forward_matches_loops(xp, randn, k, s, p, op, bias):
    _run_deconv(xp, randn, 2, 3, 2, 3, 4, k, s, p, op, bias)


def test_dcgan_shapes():
    x = np.zeros((2, 8, 1, 1), dtype=np.float32)
    assert nn.ConvTranspose2d(8, 4, 4, 1, 0, bias=False)(x).shape == (2, 4, 4, 4)
    assert nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False)(np.zeros((2, 4, 4, 4), np.float32)).shape == (2, 3, 8, 8)
    assert nn.Conv2d(3, 4, 4, 2, 1, bias=False)(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 4, 4, 4)
    assert nn.Conv2d(4, 1, 4, 1, 0, bias=False)(np.zeros((2, 4, 4, 4), np.float32)).shape == (2, 1, 1, 1)


@st.composite
def conv_settings(draw):
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k))                         # padding may reach the kernel size
    H = draw(st.integers(max(1, k - 2 * p), 6))
    W = draw(st.integers(max(1, k - 2 * p), 6))
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 3)), O=draw(st.integers(1, 3)),
                H=H, W=W, k=k, s=s, p=p)


@st.composite
def deconv_settings(draw):
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k - 1))
    op = draw(st.integers(0, s - 1))
    # smallest input with a non-empty output: (H − 1)·s − 2p + k + op >= 1
    h_min = max(1, 1 + -(-(2 * p + 1 - k - op) // s))
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 3)), O=draw(st.integers(1, 3)),
                H=draw(st.integers(h_min, h_min + 3)), W=draw(st.integers(h_min, h_min + 3)),
                k=k, s=s, p=p, op=op)


@HYPO
@given(cfg=conv_settings(), bias=st.booleans())
def test_conv2d_forward_matches_loops_hypothesis(xp, randn, cfg, bias):
    _run_conv(xp, randn, bias=bias, **cfg)


@HYPO
@given(cfg=deconv_settings(), bias=st.booleans())
def test_conv_transpose2d_forward_matches_loops_hypothesis(xp, randn, cfg, bias):
    _run_deconv(xp, randn, bias=bias, **cfg)


def _adjoint_pair(C, O, k, s, p, H, W):
    """Conv2d(C→O) and ConvTranspose2d(O→C) sharing ONE weight array (O, C, K, K), no bias."""
    conv = nn.Conv2d(C, O, k, stride=s, padding=p, bias=False)
    OH = (H + 2 * p - k) // s + 1
    OW = (W + 2 * p - k) // s + 1
    # output_padding makes convT's output exactly (H, W) when the conv's division is not exact
    op_h, op_w = (H + 2 * p - k) % s, (W + 2 * p - k) % s
    deconv = nn.ConvTranspose2d(O, C, k, stride=s, padding=p, bias=False, output_padding=op_h)
    deconv.weight.data = conv.weight.data                 # the same array, not a copy
    return conv, deconv, (OH, OW), (op_h, op_w)


def _check_adjoint(xp, randn, N, C, O, H, k, s, p):
    conv, deconv, (OH, OW), _ = _adjoint_pair(C, O, k, s, p, H, H)
    x = randn(xp, N, C, H, H, seed=11)
    y = randn(xp, N, O, OH, OW, seed=12)
    cx, ty = conv(x), deconv(y)
    assert ty.shape == x.shape and cx.shape == y.shape
    lhs, rhs = float((cx * y).sum()), float((x * ty).sum())
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("k,s,p,H", [(3, 1, 1, 5), (4, 2, 1, 8), (4, 2, 1, 7), (3, 2, 0, 6), (1, 1, 0, 3),
                                     (4, 1, 0, 4), (3, 3, 1, 7), (2, 2, 1, 5)])
def test_adjoint_identity(xp, randn, k, s, p, H):
    """<conv(x), y> = <x, convT(y)> with the same weight: convT is conv's transpose."""
    _check_adjoint(xp, randn, 2, 3, 2, H, k, s, p)


@HYPO
@given(k=st.integers(1, 4), s=st.integers(1, 3), data=st.data())
def test_adjoint_identity_hypothesis(xp, randn, k, s, data):
    p = data.draw(st.integers(0, k - 1), label="p")
    H = data.draw(st.integers(max(1, k - 2 * p), 7), label="H")
    C, O = data.draw(st.integers(1, 3), label="C"), data.draw(st.integers(1, 3), label="O")
    _check_adjoint(xp, randn, 1, C, O, H, k, s, p)


def test_adjoint_identity_fails_for_a_wrong_pairing(randn):
    """Sanity check of the check itself: a kernel flip breaks the identity."""
    tinygan.use("numpy", np.float64)
    conv, deconv, (OH, OW), _ = _adjoint_pair(2, 3, 3, 1, 1, 5, 5)
    deconv.weight.data = conv.weight.data[:, :, ::-1, ::-1].copy()
    x, y = randn(np, 1, 2, 5, 5, seed=1), randn(np, 1, 3, OH, OW, seed=2)
    assert float((conv(x) * y).sum()) != pytest.approx(float((x * deconv(y)).sum()), rel=1e-6)


@pytest.mark.parametrize("m, n, reversed_order", [(4, 48, True), (48, 4, False), (16, 2 ** 15, False),
                                                  (2 ** 15, 16, False), (600, 600, False),
                                                  (256, 1024, True), (256, 1028, False)])
@pytest.mark.parametrize("layout", ["matrix", "weight", "non-contiguous"])
def test_weight_gradient_product_adds_a_times_b_transposed_in_either_order(m, n, reversed_order, layout):
    """conv_fast.add_matmul_nt picks (b·aᵀ)ᵀ only for a taller b and a product of at most
    _SMALL_PRODUCT elements; either way, and whatever the gradient's shape and memory
    (a non-contiguous one cannot be added into through a reshaped view), grad gains a·bᵀ."""
    from tinygan.nn.conv_fast import _SMALL_PRODUCT, _reversed_order_pays, add_matmul_nt as _add_matmul_nt
    assert _reversed_order_pays(m, n) == reversed_order
    assert 256 * 1024 == _SMALL_PRODUCT                           # (256, 1024): just inside the bound
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, 5)), rng.standard_normal((n, 5))
    before = rng.standard_normal((m, n))
    if layout == "matrix":
        grad = before.copy()
    elif layout == "weight":
        grad = before.copy().reshape(m, -1, 1, 1) if n % 4 else before.copy().reshape(m, n // 4, 2, 2)
    else:
        grad = np.asfortranarray(before)                          # same values, column-major memory
    _add_matmul_nt(grad, a, b)
    np.testing.assert_allclose(grad.reshape(m, n), before + a @ b.T, rtol=1e-12, atol=1e-12)
    _add_matmul_nt(grad, a, b)                                     # accumulates, never overwrites
    np.testing.assert_allclose(grad.reshape(m, n), before + 2 * (a @ b.T), rtol=1e-12, atol=1e-12)
