"""Module and Sequential: walking the tree, training switches, gradient accumulation,
requires_grad_, state_dict round trips, and moving between dtypes."""
import numpy as np
import pytest

import tinygan
from tinygan import nn, to_numpy


def _model():
    return nn.Sequential(nn.Conv2d(2, 3, 3, 1, 1), nn.BatchNorm2d(3), nn.LeakyReLU(0.2),
                         nn.ConvTranspose2d(3, 2, 4, 2, 1, bias=False), nn.Tanh())


def _nested():
    return nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)), nn.ReLU(),
                         nn.Sequential(nn.ConvTranspose2d(2, 1, 3)))


class Holder(nn.Module):
    """A hand-written module with a named child, like dcgan's Generator(main=Sequential)."""

    def __init__(self):
        self.main = _model()
        self.head = nn.Conv2d(2, 1, 1)

    def forward(self, x):
        return self.head(self.main(x))

    def backward(self, dout):
        return self.main.backward(self.head.backward(dout))


# ----- names and order ----------------------------------------------------------------------

def test_named_parameters_order_and_names():
    m = _model()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight"]
    params = m.parameters()
    assert [p for _, p in m.named_parameters()] == params
    assert params[0] is m[0].weight and params[1] is m[0].bias and params[4] is m[3].weight
    assert [p.shape for p in params] == [(3, 2, 3, 3), (3,), (3,), (3,), (3, 2, 4, 4)]


def test_nested_names_and_buffers():
    m = _nested()
    assert [n for n, _ in m.named_parameters()] == ["0.0.weight", "0.1.weight", "0.1.bias", "2.0.weight", "2.0.bias"]
    assert [n for n, _ in m.named_buffers()] == ["0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked"]
    assert [n for n, _ in Holder().named_parameters()][:2] == ["main.0.weight", "main.0.bias"]
    assert [n for n, _ in Holder().named_parameters()][-2:] == ["head.weight", "head.bias"]
    assert [n for n, _ in m.named_modules()] == ["", "0", "0.0", "0.1", "1", "2", "2.0"]


def test_sequential_container():
    m = _model()
    assert len(m) == 5
    assert isinstance(m[1], nn.BatchNorm2d) and isinstance(m[-1], nn.Tanh)
    assert [type(l).__name__ for l in m] == ["Conv2d", "BatchNorm2d", "LeakyReLU", "ConvTranspose2d", "Tanh"]
    assert "ConvTranspose2d(3, 2, kernel_size=4, stride=2, padding=1, bias=False)" in repr(m)


def test_base_module_forward_and_backward_are_abstract():
    with pytest.raises(NotImplementedError):
        nn.Module()(np.zeros(1))
    with pytest.raises(NotImplementedError):
        nn.Module().backward(np.zeros(1))


# ----- gradients --------------------------------------------------------------------------------

def _forward_backward(m, x, R):
    m(x)
    return m.backward(R)


def test_zero_grad(randn):
    m = _model().double()
    x = randn(np, 2, 2, 4, 4, seed=1)
    _forward_backward(m, x, randn(np, 2, 2, 8, 8, seed=2))
    assert all(np.abs(p.grad).max() > 0 for p in m.parameters())
    m.zero_grad()
    assert all(np.abs(p.grad).max() == 0 for p in m.parameters())


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(2, 3, 3, 2, 1), (2, 2, 5, 5)),
    (lambda: nn.ConvTranspose2d(2, 3, 4, 2, 1, output_padding=1), (2, 2, 3, 3)),
    (lambda: nn.BatchNorm2d(2), (3, 2, 2, 2)),
    (_model, (2, 2, 4, 4)),
])
def test_backward_adds_into_grad(xp, randn, make, shape):
    """Two backwards through the same forward give twice the gradient (as PyTorch accumulates)."""
    m = make()
    x = randn(xp, *shape, seed=3)
    R = randn(xp, *m(x).shape, seed=4)
    dx1 = m.backward(R)
    once = [to_numpy(p.grad).copy() for p in m.parameters()]
    dx2 = m.backward(R)
    np.testing.assert_allclose(to_numpy(dx2), to_numpy(dx1), rtol=1e-12)
    for p, g in zip(m.parameters(), once):
        assert np.abs(g).max() > 0
        np.testing.assert_allclose(to_numpy(p.grad), 2 * g, rtol=1e-12, atol=1e-15)


def test_backward_accumulates_two_different_batches(randn):
    """The GAN pattern: D on a real batch, D on a fake batch, one step — grads are the sum."""
    tinygan.use("numpy", np.float64)
    D = nn.Sequential(nn.Conv2d(2, 3, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(3, 1, 3))
    a, b = randn(np, 2, 2, 6, 6, seed=5), randn(np, 2, 2, 6, 6, seed=6)
    Ra, Rb = randn(np, 2, 1, 1, 1, seed=7), randn(np, 2, 1, 1, 1, seed=8)
    _forward_backward(D, a, Ra)
    ga = [p.grad.copy() for p in D.parameters()]
    D.zero_grad()
    _forward_backward(D, b, Rb)
    gb = [p.grad.copy() for p in D.parameters()]
    D.zero_grad()
    _forward_backward(D, a, Ra)
    _forward_backward(D, b, Rb)
    for p, g1, g2 in zip(D.parameters(), ga, gb):
        np.testing.assert_allclose(p.grad, g1 + g2, rtol=1e-12, atol=1e-15)


def test_requires_grad_false_skips_param_grads_but_returns_input_grad(xp, randn):
    m = _model()
    x = randn(xp, 2, 2, 4, 4, seed=9)
    R = randn(xp, 2, 2, 8, 8, seed=10)
    dx_ref = to_numpy(_forward_backward(m, x, R))
    m.zero_grad()
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    dx = to_numpy(_forward_backward(m, x, R))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12)
    assert np.abs(dx).max() > 0
    for name, p in m.named_parameters():
        assert np.abs(to_numpy(p.grad)).max() == 0, name
    m.requires_grad_(True)
    _forward_backward(m, x, R)
    assert all(np.abs(to_numpy(p.grad)).max() > 0 for p in m.parameters())


def test_requires_grad_false_on_one_submodule(randn):
    """Freezing D while G trains: the frozen layer's grads stay 0, the others fill."""
    tinygan.use("numpy", np.float64)
    m = _model()
    m[3].requires_grad_(False)
    _forward_backward(m, randn(np, 2, 2, 4, 4, seed=11), randn(np, 2, 2, 8, 8, seed=12))
    assert np.abs(m[3].weight.grad).max() == 0
    assert np.abs(m[0].weight.grad).max() > 0 and np.abs(m[1].weight.grad).max() > 0


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(2, 3, 3, 2, 1), (2, 2, 5, 5)),
    (lambda: nn.ConvTranspose2d(2, 3, 4, 2, 1), (2, 2, 3, 3)),
    (lambda: nn.BatchNorm2d(2), (3, 2, 2, 2)),
    (nn.ReLU, (2, 3, 4)), (lambda: nn.LeakyReLU(0.2), (2, 3, 4)), (nn.Tanh, (2, 3)), (nn.Sigmoid, (2, 3)),
])
def test_backward_never_writes_into_dout_or_x(xp, randn, make, shape):
    m = make()
    x = randn(xp, *shape, seed=13)
    x_copy = x.copy()
    y = m(x)
    R = randn(xp, *y.shape, seed=14)
    R_copy = R.copy()
    dx = m.backward(R)
    np.testing.assert_array_equal(to_numpy(R), to_numpy(R_copy))
    np.testing.assert_array_equal(to_numpy(x), to_numpy(x_copy))
    assert dx is not R and dx.shape == x.shape


# ----- training switches --------------------------------------------------------------------

def test_train_eval_propagate_to_every_submodule():
    m = Holder()
    assert all(sub.training for sub in m.modules())
    assert m.eval() is m
    assert all(not sub.training for sub in m.modules())
    assert len(m.modules()) == 8
    m.train()
    assert all(sub.training for sub in m.modules())
    m.train(False)
    assert not m.main[1].training


def test_eval_mode_uses_running_statistics(randn):
    tinygan.use("numpy", np.float64)
    bn = nn.BatchNorm2d(2)
    x = randn(np, 4, 2, 3, 3, seed=15) * 3 + 2
    y_train = bn(x)
    np.testing.assert_allclose(y_train.mean(axis=(0, 2, 3)), 0, atol=1e-12)   # batch-normalised
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    bn.eval()
    y_eval = bn(x)
    np.testing.assert_allclose(y_eval, (x - rm.reshape(1, 2, 1, 1)) / np.sqrt(rv.reshape(1, 2, 1, 1) + bn.eps),
                               rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, rm)              # eval leaves them alone


# ----- state_dict ------------------------------------------------------------------------------

def test_state_dict_keys_and_round_trip(xp, randn):
    a, b = _model(), _model()
    for i in range(2):
        a(randn(xp, 3, 2, 4, 4, seed=16 + i) + 1)                    # running stats move
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "3.weight"]
    assert int(sd["1.num_batches_tracked"]) == 2
    x = randn(xp, 2, 2, 4, 4, seed=18)
    a.eval(), b.eval()
    assert not np.allclose(to_numpy(a(x)), to_numpy(b(x)))
    b.load_state_dict(sd)
    np.testing.assert_array_equal(to_numpy(a(x)), to_numpy(b(x)))
    assert int(b[1].num_batches_tracked) == 2
    # the values were copied in, not aliased
    a[0].weight.data += 1
    assert not np.allclose(to_numpy(a[0].weight.data), to_numpy(b[0].weight.data))
    # and from host copies (a checkpoint file)
    c = _model().eval()
    c.load_state_dict({k: to_numpy(v).copy() for k, v in b.state_dict().items()})
    np.testing.assert_array_equal(to_numpy(c(x)), to_numpy(b(x)))


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    m = _model()
    sd = {k: np.array(v, copy=True) for k, v in m.state_dict().items()}
    before = {k: np.array(v, copy=True) for k, v in sd.items()}
    del sd["1.running_var"]
    del sd["0.bias"]
    sd["2.weight"] = np.zeros(3)
    sd["3.weight"] = np.zeros((2, 3, 4, 4))                            # transposed shape
    sd["0.weight"] = sd["0.weight"] + 5                                 # a good key with a new value
    with pytest.raises(ValueError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    assert msg.startswith("Sequential.load_state_dict")
    assert "missing keys: 0.bias, 1.running_var" in msg
    assert "unexpected keys: 2.weight" in msg
    assert "shape mismatch: 3.weight: checkpoint (2, 3, 4, 4) vs model (3, 2, 4, 4)" in msg
    for k, v in m.state_dict().items():                                 # nothing was copied
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_load_state_dict_non_strict():
    m, src = _model(), _model()
    sd = src.state_dict()
    del sd["1.running_mean"]
    sd["extra"] = np.zeros(1)
    m.load_state_dict(sd, strict=False)
    np.testing.assert_array_equal(m[0].weight.data, src[0].weight.data)
    with pytest.raises(ValueError, match="shape mismatch: 0.bias"):
        m.load_state_dict({"0.bias": np.zeros(7)}, strict=False)


# ----- dtype and backend moves -----------------------------------------------------------------

def test_to_float64_and_back(randn):
    m = _model()
    x32 = randn(np, 2, 2, 4, 4, seed=19, dtype=np.float32)
    m(x32)                                                              # running stats change
    m.to(dtype=np.float64)
    for name, p in m.named_parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64, name
    assert m[1].running_mean.dtype == np.float64 and m[1].running_var.dtype == np.float64
    assert m[1].num_batches_tracked.dtype == np.int64 and int(m[1].num_batches_tracked) == 1
    y = m(x32.astype(np.float64))
    assert y.dtype == np.float64
    assert m.backward(np.ones_like(y)).dtype == np.float64
    assert m.float() is m
    assert all(p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in m.parameters())
    assert m[1].running_var.dtype == np.float32
    assert m.double()[0].weight.data.dtype == np.float64


def test_to_keeps_values(randn):
    m = _model()
    before = {k: np.array(v, copy=True) for k, v in m.state_dict().items()}
    m.to(dtype=np.float64)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k].astype(v.dtype), err_msg=k)
    m.to("numpy")
    assert isinstance(m[0].weight.data, np.ndarray)


@pytest.mark.gpu
def test_to_cupy_and_back(cupy, randn):
    m = _model()
    x = randn(np, 2, 2, 4, 4, seed=20, dtype=np.float32)
    m.eval()
    y_host = m(x)
    m.to("cupy")
    assert all(isinstance(p.data, cupy.ndarray) and isinstance(p.grad, cupy.ndarray) for p in m.parameters())
    assert isinstance(m[1].running_mean, cupy.ndarray)
    np.testing.assert_allclose(to_numpy(m(cupy.asarray(x))), y_host, rtol=1e-5, atol=1e-6)
    m.to("numpy")
    assert isinstance(m[0].weight.data, np.ndarray)
