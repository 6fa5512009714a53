"""Every hand-written backward against central finite differences, in float64.

``check_module`` perturbs every input and parameter element and compares with what
``backward`` returned / added into ``.grad``, for the scalar L = Σ f(x)·R with a RANDOM
upstream gradient R (an all-ones R hides transposed indices and makes BatchNorm's input
gradient vanish). It raises ``GradcheckError`` naming the worst element.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygan
from conftest import CONV_KSP, DECONV_KSPO
from tinygan import nn, to_numpy
from tinygan.gradcheck import GradcheckError, check_directional, check_module

HYPO = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _checked_names(report):
    return [t.name for t in report.tensors]


def _assert_all_checked(report, module):
    """The report covers the input and every parameter, and every check passed."""
    assert _checked_names(report) == ["input"] + [n for n, _ in module.named_parameters()]
    assert report.ok, str(report)


def _randomise(module, seed=0, scale=0.5):
    """Non-trivial parameter values (BatchNorm's γ = 1, β = 0 would hide mistakes)."""
    rng = np.random.default_rng(seed)
    xp = tinygan.get_array_module(*(p.data for p in module.parameters()))
    for p in module.parameters():
        p.data[...] = xp.asarray(rng.standard_normal(p.shape) * scale + (1.0 if p.data.ndim == 1 else 0.0))
    return module


# ----- convolutions ------------------------------------------------------------------------

@pytest.mark.parametrize("k,s,p", CONV_KSP)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(xp, randn, k, s, p, bias):
    layer = nn.Conv2d(2, 3, k, stride=s, padding=p, bias=bias)
    _assert_all_checked(check_module(layer, randn(xp, 2, 2, 5, 5, seed=1)), layer)


@pytest.mark.parametrize("k,s,p,op", DECONV_KSPO)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d(xp, randn, k, s, p, op, bias):
    layer = nn.ConvTranspose2d(3, 2, k, stride=s, padding=p, bias=bias, output_padding=op)
    _assert_all_checked(check_module(layer, randn(xp, 2, 3, 3, 3, seed=2)), layer)


@HYPO
@given(k=st.integers(1, 3), s=st.integers(1, 3), bias=st.booleans(), data=st.data())
def test_conv2d_hypothesis(xp, randn, k, s, bias, data):
    p = data.draw(st.integers(0, k), label="p")
    H = data.draw(st.integers(max(1, k - 2 * p), 5), label="H")
    W = data.draw(st.integers(max(1, k - 2 * p), 5), label="W")
    C, O = data.draw(st.integers(1, 2), label="C"), data.draw(st.integers(1, 2), label="O")
    N = data.draw(st.integers(1, 2), label="N")
    layer = nn.Conv2d(C, O, k, stride=s, padding=p, bias=bias)
    _assert_all_checked(check_module(layer, randn(xp, N, C, H, W, seed=k * 100 + H * 10 + W)), layer)


@HYPO
@given(k=st.integers(1, 4), s=st.integers(1, 3), bias=st.booleans(), data=st.data())
def test_conv_transpose2d_hypothesis(xp, randn, k, s, bias, data):
    p = data.draw(st.integers(0, k - 1), label="p")
    op = data.draw(st.integers(0, s - 1), label="output_padding")
    h_min = max(1, 1 + -(-(2 * p + 1 - k - op) // s))      # smallest input with a non-empty output
    H = data.draw(st.integers(h_min, h_min + 2), label="H")
    W = data.draw(st.integers(h_min, h_min + 2), label="W")
    C, O = data.draw(st.integers(1, 2), label="C"), data.draw(st.integers(1, 2), label="O")
    N = data.draw(st.integers(1, 2), label="N")
    layer = nn.ConvTranspose2d(C, O, k, stride=s, padding=p, bias=bias, output_padding=op)
    _assert_all_checked(check_module(layer, randn(xp, N, C, H, W, seed=k * 100 + H * 10 + W)), layer)


# ----- BatchNorm -----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (2, 2, 3, 1), (5, 1, 1, 1)])
def test_batchnorm2d_train_mode(xp, randn, shape):
    """The full backward, through the batch mean and variance."""
    bn = _randomise(nn.BatchNorm2d(shape[1]), seed=3)
    x = randn(xp, *shape, seed=4) * 2.0 + 0.5
    report = check_module(bn, x)
    _assert_all_checked(report, bn)
    assert bn.training
    # the input gradient through the batch statistics is not the eval-mode one
    dx_train = report.tensors[0]
    assert abs(dx_train.analytic) > 0


def test_batchnorm2d_train_mode_is_not_the_eval_formula(randn):
    """A backward that ignored μ(x), σ²(x) (dx = γ·inv_std·dy) must fail the check."""
    tinygan.use("numpy", np.float64)

    class NoStatsGrad(nn.BatchNorm2d):
        def backward(self, dout):
            self.mode_at_forward = False          # pretend the batch stats were constants
            return super().backward(dout)

    bn = _randomise(NoStatsGrad(2), seed=5)
    with pytest.raises(GradcheckError, match=r"NoStatsGrad.*input worst element"):
        check_module(bn, randn(np, 3, 2, 2, 2, seed=6))


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (2, 2, 3, 3)])
def test_batchnorm2d_eval_mode(xp, randn, shape):
    bn = _randomise(nn.BatchNorm2d(shape[1], momentum=0.3), seed=7)
    for i in range(4):                                    # non-trivial running statistics
        bn(randn(xp, *shape, seed=20 + i) * (1.5 + i) + (i - 1.0))
    assert int(bn.num_batches_tracked) == 4
    rm, rv = to_numpy(bn.running_mean), to_numpy(bn.running_var)
    assert np.all(np.abs(rm) > 1e-3) and np.all(np.abs(rv - 1) > 1e-2)
    bn.eval()
    report = check_module(bn, randn(xp, *shape, seed=8))
    _assert_all_checked(report, bn)
    # eval mode must not move the running statistics
    np.testing.assert_array_equal(to_numpy(bn.running_mean), rm)
    np.testing.assert_array_equal(to_numpy(bn.running_var), rv)
    assert int(bn.num_batches_tracked) == 4


# ----- activations ---------------------------------------------------------------------------

ACTIVATIONS = [nn.ReLU, lambda: nn.LeakyReLU(0.2), lambda: nn.LeakyReLU(), nn.Tanh, nn.Sigmoid]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["ReLU", "LeakyReLU0.2", "LeakyReLU", "Tanh", "Sigmoid"])
def test_activation(xp, randn, make):
    layer = make()
    x = randn(xp, 2, 3, 4, 3, seed=9) * 2
    assert float(abs(x).min()) > 1e-4                     # no element within ε of ReLU's kink
    _assert_all_checked(check_module(layer, x), layer)


def test_activation_on_extreme_inputs(xp):
    """Sigmoid/Tanh saturate without NaN; the checks still pass at large |x|."""
    x = xp.asarray(np.array([[-30.0, -8.0, -1e-2, 1e-2, 8.0, 30.0]]))
    for layer in [nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.2), nn.ReLU()]:
        _assert_all_checked(check_module(layer, x), layer)


# ----- the loss --------------------------------------------------------------------------------

class LossOf(nn.Module):
    """BCEWithLogitsLoss with a fixed target, as a one-input module for check_module."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x):
        xp = tinygan.get_array_module(x)
        return xp.asarray(self.loss(x, self.target)).reshape(())

    def backward(self, dout):
        return self.loss.backward(dout)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("target_kind", ["binary", "soft"])
def test_bce_with_logits(xp, randn, reduction, target_kind):
    x = randn(xp, 4, 1, 2, 3, seed=10) * 3
    rng = np.random.default_rng(11)
    t = rng.integers(0, 2, size=x.shape) if target_kind == "binary" else rng.uniform(size=x.shape)
    loss = LossOf(nn.BCEWithLogitsLoss(reduction), xp.asarray(t.astype(np.float64)))
    report = check_module(loss, x)          # the scalar upstream gradient is random too
    assert _checked_names(report) == ["input"] and report.ok, str(report)


# ----- Sequential ------------------------------------------------------------------------------

def _small_stack():
    return nn.Sequential(nn.Conv2d(2, 3, 3, 2, 1, bias=False), nn.BatchNorm2d(3), nn.LeakyReLU(0.2),
                         nn.ConvTranspose2d(3, 2, 4, 2, 1), nn.Tanh())


def test_sequential_elementwise(xp, randn):
    model = _randomise(_small_stack(), seed=12)
    report = check_module(model, randn(xp, 2, 2, 4, 4, seed=13))
    _assert_all_checked(report, model)
    assert _checked_names(report) == ["input", "0.weight", "1.weight", "1.bias", "3.weight", "3.bias"]


def test_sequential_eval_mode(xp, randn):
    model = _randomise(_small_stack(), seed=14)
    for i in range(3):
        model(randn(xp, 2, 2, 4, 4, seed=30 + i) + i)
    model.eval()
    _assert_all_checked(check_module(model, randn(xp, 2, 2, 4, 4, seed=15)), model)


def test_sequential_directional(xp, randn):
    """A DCGAN-like G→D chain, checked along one random direction through x and every θ."""
    model = _randomise(nn.Sequential(
        nn.ConvTranspose2d(4, 6, 4, 1, 0, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.ConvTranspose2d(6, 3, 4, 2, 1, bias=False), nn.Tanh(),
        nn.Conv2d(3, 6, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        nn.Conv2d(6, 1, 4, 1, 0, bias=False)), seed=16, scale=0.3)
    x = randn(xp, 3, 4, 1, 1, seed=17)
    y = model(x)
    assert y.shape == (3, 1, 1, 1)
    R = randn(xp, *y.shape, seed=18)
    model.zero_grad()
    dx = model.backward(R)
    params = model.parameters()

    def loss():
        return float((model(x) * R).sum())

    for seed in range(3):
        report = check_directional(loss, [x] + [p.data for p in params], [dx] + [p.grad for p in params],
                                   seed=seed, rtol=1e-6)
        assert report.ok


# ----- the checker itself can fail --------------------------------------------------------------

def test_gradcheck_catches_a_broken_activation(randn):
    tinygan.use("numpy", np.float64)

    class BadTanh(nn.Tanh):
        def backward(self, dout):
            return dout * (1 - self.local)                 # a sign slip: should be self.local

    with pytest.raises(GradcheckError, match=r"BadTanh: input worst element \(\d+, \d+\)"):
        check_module(BadTanh(), randn(np, 2, 3, seed=19))


def test_gradcheck_catches_a_transposed_weight_gradient(randn):
    tinygan.use("numpy", np.float64)

    class BadConv(nn.Conv2d):
        def backward(self, dout):
            dx = super().backward(dout)
            self.weight.grad[...] = self.weight.grad[:, :, ::-1, :]     # ky flipped
            return dx

    report = check_module(BadConv(2, 2, 3, padding=1), randn(np, 1, 2, 4, 4, seed=20), raise_on_fail=False)
    oks = {t.name: t.ok for t in report.tensors}
    assert oks == {"input": True, "weight": False, "bias": True}


def test_gradcheck_catches_a_bias_that_overwrites_instead_of_adding(randn):
    """check_module zeroes grads once, so an assigning backward still passes; the
    accumulation test (test_module.py) catches that. Here: a missing bias gradient."""
    tinygan.use("numpy", np.float64)

    class NoBiasGrad(nn.ConvTranspose2d):
        def backward(self, dout):
            dx = super().backward(dout)
            self.bias.grad[...] = 0
            return dx

    with pytest.raises(GradcheckError, match="bias"):
        check_module(NoBiasGrad(2, 2, 3, 2, 1), randn(np, 1, 2, 3, 3, seed=21))


def test_gradcheck_uses_a_random_upstream_gradient(randn):
    """With an all-ones upstream gradient BatchNorm's true input gradient is exactly 0, so a
    backward returning zeros would pass; with a random one it must fail."""
    tinygan.use("numpy", np.float64)

    class ZeroInputGrad(nn.BatchNorm2d):
        def backward(self, dout):
            super().backward(dout)
            return np.zeros_like(dout)

    with pytest.raises(GradcheckError, match=r"ZeroInputGrad: input worst element"):
        check_module(ZeroInputGrad(2), randn(np, 3, 2, 2, 2, seed=22))


def test_check_module_refuses_float32(randn):
    with pytest.raises(ValueError, match="finite differences need float64"):
        check_module(nn.ReLU(), randn(np, 2, 2, dtype=np.float32))
