"""Misuse gives a ValueError/RuntimeError that names the layer, the shape it got and what it expected."""
import re
import sys
import types

import numpy as np
import pytest

from tinygan import nn


def _x(*shape, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


LAYERS_WITH_CHANNELS = [
    ("Conv2d", lambda: nn.Conv2d(3, 4, 3, 1, 1)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 4, 4, 2, 1)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3)),
]
IDS = [name for name, _ in LAYERS_WITH_CHANNELS]


@pytest.mark.parametrize("name,make", LAYERS_WITH_CHANNELS, ids=IDS)
@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 3, 8, 8, 1), (8,), (2, 2), (2, 2, 2), (2, 2, 2, 2, 2)])
def test_wrong_rank(name, make, shape):
    with pytest.raises(ValueError, match=rf"^{name}: expected input of shape \(N, 3, H, W\), "
                                         rf"got shape {re.escape(str(shape))}$"):
        make()(_x(*shape))


@pytest.mark.parametrize("name,make", LAYERS_WITH_CHANNELS, ids=IDS)
def test_not_an_array(name, make):
    with pytest.raises(ValueError, match=rf"^{name}: expected input of shape \(N, 3, H, W\), got a list$"):
        make()([[1.0, 2.0]])


@pytest.mark.parametrize("name,make", LAYERS_WITH_CHANNELS, ids=IDS)
@pytest.mark.parametrize("channels", [1, 2, 4, 5, 6])
def test_wrong_channel_count(name, make, channels):
    with pytest.raises(ValueError, match=rf"^{name}: expected 3 input channels \(N, 3, H, W\), "
                                         rf"got shape \(2, {channels}, 8, 8\)$"):
        make()(_x(2, channels, 8, 8))


@pytest.mark.parametrize("name,make", LAYERS_WITH_CHANNELS, ids=IDS)
def test_dtype_mismatch(name, make):
    with pytest.raises(ValueError, match=rf"^{name}: input dtype float64 \(shape \(2, 3, 4, 4\)\) differs "
                                         r"from the weight dtype float32"):
        make()(_x(2, 3, 4, 4, dtype=np.float64))


def test_dtype_mismatch_after_to_double():
    layer = nn.Conv2d(3, 4, 3).double()
    with pytest.raises(ValueError, match=r"input dtype float32 .* weight dtype float64.*module.to\(dtype=...\)"):
        layer(_x(1, 3, 5, 5))


def test_conv2d_input_smaller_than_kernel():
    with pytest.raises(ValueError, match=r"^Conv2d: input of shape \(2, 3, 2, 5\) is smaller than the kernel "
                                         r"\(k=4, padding=0\): need H, W >= 4$"):
        nn.Conv2d(3, 4, 4)(_x(2, 3, 2, 5))
    with pytest.raises(ValueError, match=r"Conv2d: input of shape \(1, 3, 1, 1\) .*need H, W >= 2"):
        nn.Conv2d(3, 4, 4, padding=1)(_x(1, 3, 1, 1))
    nn.Conv2d(3, 4, 4, padding=1)(_x(1, 3, 2, 2))          # the stated minimum works


def test_conv_transpose2d_empty_output():
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: input of shape \(2, 3, 1, 1\) gives an empty output "
                                         r"\(-1x-1\) with k=1, s=2, padding=1: need H, W >= 2$"):
        nn.ConvTranspose2d(3, 4, 1, stride=2, padding=1)(_x(2, 3, 1, 1))
    assert nn.ConvTranspose2d(3, 4, 1, stride=2, padding=1)(_x(2, 3, 2, 2)).shape == (2, 4, 1, 1)  # the minimum
    with pytest.raises(ValueError, match=r"ConvTranspose2d: input of shape \(1, 3, 2, 1\) gives an empty output "
                                         r"\(1x0\) with k=2, s=1, padding=1: need H, W >= 2$"):
        nn.ConvTranspose2d(3, 4, 2, stride=1, padding=1)(_x(1, 3, 2, 1))


def test_batchnorm_single_value_per_channel_in_train_mode():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"^BatchNorm2d: expected more than 1 value per channel in train mode, "
                                         r"got input of shape \(1, 3, 1, 1\)"):
        bn(_x(1, 3, 1, 1))
    assert int(bn.num_batches_tracked) == 0                 # the failed call moved nothing
    bn.eval()(_x(1, 3, 1, 1))                               # fine in eval mode


ALL_LAYERS = LAYERS_WITH_CHANNELS + [("ReLU", nn.ReLU), ("LeakyReLU", lambda: nn.LeakyReLU(0.2)),
                                     ("Tanh", nn.Tanh), ("Sigmoid", nn.Sigmoid)]


@pytest.mark.parametrize("name,make", ALL_LAYERS, ids=[n for n, _ in ALL_LAYERS])
def test_backward_before_forward(name, make):
    with pytest.raises(RuntimeError, match=rf"^{name}.backward called before forward: run forward\(x\) first$"):
        make().backward(_x(2, 3, 4, 4))


def test_sequential_backward_before_forward_names_the_last_layer():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh())
    with pytest.raises(RuntimeError, match=r"Tanh.backward called before forward"):
        m.backward(_x(1, 4, 2, 2))


@pytest.mark.parametrize("name,make", ALL_LAYERS, ids=[n for n, _ in ALL_LAYERS])
def test_dout_of_the_wrong_shape(name, make):
    layer = make()
    y = layer(_x(2, 3, 4, 4))
    bad = _x(2, 3, 4, 5)
    with pytest.raises(ValueError, match=rf"^{name}.backward: expected dout of shape {re.escape(str(y.shape))} "
                                         r"\(the forward output\), got \(2, 3, 4, 5\)$"):
        layer.backward(bad)


def test_dout_shape_is_the_last_forwards():
    conv = nn.Conv2d(3, 2, 3, 1, 1)
    conv(_x(4, 3, 6, 6))
    conv(_x(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 2, 5, 5\)"):
        conv.backward(_x(4, 2, 6, 6))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"Conv2d: channels, kernel_size and stride must be >= 1 .* got in=3, out=4, k=0"):
        nn.Conv2d(3, 4, 0)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: .*padding >= 0, got .*p=-1"):
        nn.ConvTranspose2d(3, 4, 3, padding=-1)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_padding must be in \[0, stride\), got 2 with stride 2"):
        nn.ConvTranspose2d(3, 4, 4, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be >= 1, got 0"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="BCEWithLogitsLoss: reduction must be 'mean' or 'sum', got 'none'"):
        nn.BCEWithLogitsLoss("none")


def test_loss_errors():
    loss = nn.BCEWithLogitsLoss()
    with pytest.raises(RuntimeError, match="BCEWithLogitsLoss.backward called before forward"):
        loss.backward()
    with pytest.raises(ValueError, match=r"BCEWithLogitsLoss: logits of shape \(4, 1\) and target of shape \(4,\) "
                                         "must have the same shape"):
        loss(_x(4, 1), np.ones(4, np.float32))
    loss(_x(4), np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"BCEWithLogitsLoss.backward: expected a scalar dout \(the loss is a "
                                         r"scalar\), got shape \(4,\)"):
        loss.backward(np.ones(4, np.float32))
    assert loss.backward(np.float32(2.0)).shape == (4,)


# ----- numpy and cupy mixed ------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("name,make", LAYERS_WITH_CHANNELS, ids=IDS)
def test_mixed_numpy_and_cupy(cupy, name, make):
    layer = make()                                          # numpy weights
    with pytest.raises(ValueError, match=rf"^{name}: input of shape \(2, 3, 4, 4\) is a cupy array but the "
                                         r"layer's weights are numpy"):
        layer(cupy.asarray(_x(2, 3, 4, 4)))
    layer.to("cupy")
    with pytest.raises(ValueError, match=rf"^{name}: input of shape \(2, 3, 4, 4\) is a numpy array but the "
                                         r"layer's weights are cupy"):
        layer(_x(2, 3, 4, 4))


class _FakeCupyArray:
    """What tinygan sees of a CuPy array: its type's module is 'cupy'."""
    __module__ = "cupy"

    def __init__(self, a):
        self.shape, self.dtype = a.shape, a.dtype


def test_mixed_message_without_a_gpu(monkeypatch):
    """The same message path, with a stand-in cupy module (runs on every machine)."""
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    with pytest.raises(ValueError, match=r"^Conv2d: input of shape \(2, 3, 4, 4\) is a cupy array but the "
                                         r"layer's weights are numpy: move one of them"):
        nn.Conv2d(3, 4, 3)(_FakeCupyArray(_x(2, 3, 4, 4)))


def test_gradcheck_input_errors():
    from tinygan.gradcheck import numerical_gradient
    with pytest.raises(ValueError, match="numerical_gradient needs a C-contiguous array, got shape"):
        numerical_gradient(lambda: 0.0, np.zeros((3, 4)).T)
