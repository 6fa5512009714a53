"""Reference mode: the textbook code in each layer file runs, and the speed paths equal it.

``tinygan.reference.use(True)`` (or TINYGAN_REFERENCE=1) makes every layer, the loss and
Adam run their plain lines — im2col.py's functions, BatchNorm's backward formula by
formula, Adam's four-line update. The default speed paths (``*_fast.py``) must give:

* the same bits where the arithmetic is the same: the activations (the same products in
  the same order, threaded or compiled);
* the same numbers to a stated tolerance where the order of the additions differs: the
  convolutions (cols · W2ᵀ against W2 · colsᵀ, and col2im's sums), BatchNorm (an einsum
  and a rearranged dx against the formulas), Adam (PyTorch's (lr/bias1)·m/(√v/√bias2 + eps)
  against the textbook's lr·m̂/(√v̂ + eps)): RTOL below, a few float64 roundings.

Both paths are proven against finite differences and PyTorch by the gradient-check and
oracle suites, which ``make test`` runs in both modes.
"""
import numpy as np
import pytest

import tinygan
from conftest import CONV_KSP, DECONV_KSPO
from tinygan import nn, reference
from tinygan.dcgan import build, train_step
from tinygan.nn import activation_fast, batchnorm_fast, conv_fast
from tinygan.optim import Adam

RTOL = {np.float64: 1e-12, np.float32: 2e-5}     # relative to the largest value of each compared array


def close(fast, ref, dtype, what):
    fast, ref = np.asarray(fast), np.asarray(ref)
    assert fast.shape == ref.shape, f"{what}: shape {fast.shape} (fast) vs {ref.shape} (reference)"
    assert fast.dtype == ref.dtype, f"{what}: dtype {fast.dtype} (fast) vs {ref.dtype} (reference)"
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = np.abs(fast - ref)
    i = np.unravel_index(int(err.argmax()), err.shape)
    assert err[i] <= RTOL[dtype] * scale, (f"{what}: fast {fast[i]!r} vs reference {ref[i]!r} at {i} "
                                           f"(tolerance {RTOL[dtype]} × {scale:.3g})")


def same_bits(fast, ref, what):
    fast, ref = np.ascontiguousarray(fast).reshape(-1), np.ascontiguousarray(ref).reshape(-1)
    assert fast.dtype == ref.dtype and fast.shape == ref.shape, what
    diff = fast.view(np.uint8) != ref.view(np.uint8)
    assert not diff.any(), f"{what}: fast and reference differ in {int(diff.sum())} bytes"


def both_ways(make_layer, x, dout, training=True):
    """Run a fresh layer (same seed: same weights) forward and backward in each mode.

    Returns {mode: (y, dx, {name: grad})}, mode in ("fast", "reference")."""
    out = {}
    for mode in ("fast", "reference"):
        np.random.seed(7)
        layer = make_layer()
        layer.train(training)
        with reference.mode(mode == "reference"):
            y = layer(x.copy())
            dx = layer.backward(dout.copy())
        assert layer.fast == (mode == "fast"), "the layer did not take the path of its mode"
        grads = {name: p.grad.copy() for name, p in layer.named_parameters()}
        buffers = {name: b.copy() for name, b in layer.named_buffers()}
        out[mode] = (np.asarray(y), None if dx is None else np.asarray(dx), {**grads, **buffers})
    return out


def check_pair(out, dtype, bitwise=False):
    (y, dx, rest), (y_ref, dx_ref, rest_ref) = out["fast"], out["reference"]
    compare = (lambda a, b, what: same_bits(a, b, what)) if bitwise else (lambda a, b, what: close(a, b, dtype, what))
    compare(y, y_ref, "output")
    if dx_ref is not None:
        compare(dx, dx_ref, "input gradient")
    for name in rest_ref:
        compare(rest[name], rest_ref[name], name)


def _rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("k, s, p", CONV_KSP)
@pytest.mark.parametrize("needs_input_grad", [True, False])
def test_conv2d_fast_equals_reference(dtype, k, s, p, needs_input_grad):
    tinygan.use("numpy", dtype)
    N, C, O, H = 3, 2, 4, 7
    OH = (H + 2 * p - k) // s + 1

    def make():
        layer = nn.Conv2d(C, O, k, stride=s, padding=p)
        layer.needs_input_grad = needs_input_grad
        return layer
    out = both_ways(make, _rand((N, C, H, H), dtype, 1), _rand((N, O, OH, OH), dtype, 2))
    assert (out["reference"][1] is None) == (not needs_input_grad)
    check_pair(out, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("k, s, p, op", DECONV_KSPO)
def test_conv_transpose2d_fast_equals_reference(dtype, k, s, p, op):
    tinygan.use("numpy", dtype)
    N, C, O, H = 3, 4, 2, 5
    OH = (H - 1) * s - 2 * p + k + op
    out = both_ways(lambda: nn.ConvTranspose2d(C, O, k, stride=s, padding=p, output_padding=op),
                    _rand((N, C, H, H), dtype, 1), _rand((N, O, OH, OH), dtype, 2))
    check_pair(out, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_fast_equals_reference(dtype, training):
    tinygan.use("numpy", dtype)

    def make():
        bn = nn.BatchNorm2d(5)
        bn.weight.data[...] = _rand((5,), dtype, 3)
        bn.bias.data[...] = _rand((5,), dtype, 4)
        bn.running_mean[...], bn.running_var[...] = _rand((5,), dtype, 5), np.abs(_rand((5,), dtype, 6)) + 0.5
        return bn
    x = _rand((4, 5, 3, 6), dtype, 1) * dtype(3) + dtype(1)
    check_pair(both_ways(make, x, _rand(x.shape, dtype, 2), training), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("make", [nn.ReLU, lambda: nn.LeakyReLU(0.2), lambda: nn.LeakyReLU(1.5), nn.Tanh, nn.Sigmoid],
                         ids=["relu", "leaky0.2", "leaky1.5", "tanh", "sigmoid"])
def test_activations_fast_and_reference_give_the_same_bits(dtype, make):
    tinygan.use("numpy", dtype)
    x = _rand((4, 3, 5, 6), dtype, 1)
    x[0, 0, 0, :3] = 0                                       # the kink, both sides of it
    check_pair(both_ways(make, x, _rand(x.shape, dtype, 2)), dtype, bitwise=True)


def test_layers_in_the_fast_layout_too():
    """The speed path hands its activations over stored batch-innermost; the reference
    path must accept such input (and the fast path the reference path's) with the same result."""
    x = _rand((4, 3, 8, 8), np.float64, 1)
    tinygan.use("numpy", np.float64)
    np.random.seed(3)
    conv = nn.Conv2d(3, 5, 4, stride=2, padding=1)
    chwn = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)   # x's values, batch innermost
    with reference.mode():
        y_ref = conv(x)
    y_fast = conv(chwn)
    close(y_fast, y_ref, np.float64, "conv of a batch-innermost input")
    with reference.mode():
        close(nn.BatchNorm2d(5)(y_fast), nn.BatchNorm2d(5)(np.ascontiguousarray(y_ref)), np.float64, "BatchNorm")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per-tensor"])
def test_adam_fast_equals_reference_over_steps(dtype, flat):
    tinygan.use("numpy", dtype)
    results = {}
    for mode in ("fast", "reference"):
        params = [nn.Parameter(_rand(shape, dtype, i)) for i, shape in enumerate([(4, 3), (5,), (2, 2, 3)])]
        opt = Adam(params, lr=1e-2, betas=(0.5, 0.999))
        if not flat:
            params[0].data = params[0].data.copy()            # no longer the flat buffer's view
        assert opt.flat_in_use() == flat
        with reference.mode(mode == "reference"):
            for step in range(5):
                for i, p in enumerate(params):
                    p.grad[...] = _rand(p.data.shape, dtype, 100 * step + i)
                opt.step()
        results[mode] = [p.data.copy() for p in params] + [m.copy() for m in opt.exp_avg + opt.exp_avg_sq]
    for i, (a, b) in enumerate(zip(results["fast"], results["reference"])):
        close(a, b, dtype, f"Adam array {i} after 5 steps")


def test_bce_with_logits_has_one_path():
    """The loss has no speed path: both modes run the same lines, the same bits."""
    x, y = _rand((16,), np.float32, 1) * np.float32(30), (np.arange(16) % 2).astype(np.float32)
    got = {}
    for mode in (False, True):
        with reference.mode(mode):
            loss = nn.BCEWithLogitsLoss()
            got[mode] = (np.asarray(loss(x, y)), loss.backward())
    same_bits(got[False][0], got[True][0], "loss")
    same_bits(got[False][1], got[True][1], "gradient")


def _speed_paths_forbidden(monkeypatch):
    """Make every function of the speed modules raise, so that a run that passes used none."""
    def forbidden(name):
        def f(*args, **kwargs):
            raise AssertionError(f"reference mode called the speed path {name}")
        return f
    for module in (conv_fast, batchnorm_fast, activation_fast):
        for name in dir(module):
            if callable(getattr(module, name)) and not name.startswith("__") and name not in ("np", "like"):
                monkeypatch.setattr(module, name, forbidden(f"{module.__name__}.{name}"))
    import tinygan.optim_fast as optim_fast
    monkeypatch.setattr(optim_fast, "adam_step", forbidden("optim_fast.adam_step"))


@pytest.mark.parametrize("recipe", ["paper", "sprites"])
def test_a_whole_training_step_in_reference_mode_uses_no_speed_path_and_matches(monkeypatch, recipe):
    """Two DCGAN steps: in reference mode none of the speed modules runs, and the losses
    and every weight agree with the default (fast) mode's."""
    tinygan.use("numpy", np.float64)
    rng = np.random.default_rng(0)
    batches = [(rng.uniform(-1, 1, (4, 3, 16, 16)), rng.standard_normal((4, 8, 1, 1))) for _ in range(2)]
    runs = {}
    for mode in ("fast", "reference"):
        G, D = build(recipe, latent_dim=8, features=4, image_size=16, seed=0)
        opt_G = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_D = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        with monkeypatch.context() as m, reference.mode(mode == "reference"):
            if mode == "reference":
                _speed_paths_forbidden(m)
            losses = [train_step(G, D, opt_G, opt_D, real, z) for real, z in batches]
        runs[mode] = ([float(v) for pair in losses for v in pair],
                      [p.data.copy() for p in G.parameters() + D.parameters()])
    np.testing.assert_allclose(runs["fast"][0], runs["reference"][0], rtol=1e-10)
    for i, (a, b) in enumerate(zip(runs["fast"][1], runs["reference"][1])):
        close(a, b, np.float64, f"parameter {i} after two steps")


def test_the_switch(monkeypatch):
    """TINYGAN_REFERENCE sets the mode at import; use() and mode() change it."""
    import importlib
    before = reference.on()
    monkeypatch.setattr(reference, "_state", dict(reference._state))   # a reload makes a new dict: put it back
    monkeypatch.setenv("TINYGAN_REFERENCE", "1")
    assert importlib.reload(reference).on()
    monkeypatch.setenv("TINYGAN_REFERENCE", "0")
    assert not importlib.reload(reference).on()
    monkeypatch.delenv("TINYGAN_REFERENCE")
    assert not importlib.reload(reference).on()
    reference.use(True)
    assert reference.on()
    with reference.mode(False):
        assert not reference.on()
    assert reference.on()
    reference.use(False)
    assert not reference.on()
    reference.use(before)
