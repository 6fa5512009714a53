"""MinibatchStd: the forward against its loop version and hand-made batches, the backward by
finite differences and against a PyTorch autograd version written here, and its errors."""
import re

import numpy as np
import pytest

import tinygan
from tinygan import to_numpy
from tinygan.gradcheck import check_module
from tinygan.nn import Conv2d, LeakyReLU, MinibatchStd, Sequential
from tinygan.nn.minibatch_std import minibatch_std_reference

# (group_size, batch): groups of 2 and 4, the whole batch, a group larger than the batch
# (becomes the batch), groups of 1 (std = √ε everywhere).
GROUPS = [(2, 4), (4, 8), (None, 3), (4, 2), (1, 3)]


@pytest.mark.parametrize("group_size,N", GROUPS)
def test_forward_matches_the_loop(xp, randn, group_size, N):
    x = randn(xp, N, 3, 4, 5, seed=N)
    y = MinibatchStd(group_size)(x)
    assert y.shape == (N, 4, 4, 5)
    np.testing.assert_allclose(to_numpy(y), minibatch_std_reference(to_numpy(x), group_size), rtol=1e-12)


def test_forward_by_hand():
    """Groups are strided: with N = 4, G = 2, images 0 and 2 form group 0, images 1 and 3 group 1."""
    x = np.zeros((4, 2, 1, 3))
    x[0], x[2] = 1.0, 3.0                 # group 0: each value ±1 from its mean → std 1 (+ε)
    x[1] = x[3] = 5.0                     # group 1: identical images → std √ε
    y = MinibatchStd(2)(x)
    np.testing.assert_allclose(y[:, :2], x, rtol=0)
    np.testing.assert_allclose(y[[0, 2], 2], np.sqrt(1 + 1e-8), rtol=1e-15)
    np.testing.assert_allclose(y[[1, 3], 2], 1e-4, rtol=1e-12)


def test_float32_and_layout(randn):
    x = randn(np, 4, 3, 4, 4, dtype=np.float32)
    y = MinibatchStd(2)(x)
    assert y.dtype == np.float32
    assert y.transpose(1, 2, 3, 0).flags.c_contiguous                       # stored batch-innermost


@pytest.mark.parametrize("group_size,N", GROUPS)
def test_gradcheck(xp, randn, group_size, N):
    report = check_module(MinibatchStd(group_size), randn(xp, N, 2, 3, 2, seed=10 + N))
    assert [t.name for t in report.tensors] == ["input"] and report.ok, str(report)


def test_gradcheck_before_a_conv_with_one_more_channel(xp, randn):
    """Where a Discriminator puts it: before the last conv, whose in_channels grow by 1."""
    model = Sequential(LeakyReLU(0.2), MinibatchStd(2), Conv2d(4, 1, 3, 1, 0))
    report = check_module(model, randn(xp, 4, 3, 3, 3, seed=4))
    assert report.ok, str(report)


def test_backward_leaves_dout_alone(randn):
    layer = MinibatchStd(2)
    layer(randn(np, 4, 2, 3, 3))
    dout = randn(np, 4, 3, 3, 3, seed=1)
    kept = dout.copy()
    layer.backward(dout)
    assert np.array_equal(dout, kept)


def _torch_minibatch_std(torch, x, group_size, eps=1e-8):
    """The layer in PyTorch autograd, written from the paper's recipe (strided groups)."""
    N, C, H, W = x.shape
    G = N if group_size is None else min(group_size, N)
    y = x.reshape(G, N // G, C, H, W)
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + eps).sqrt()                              # (M, C, H, W)
    y = y.mean(dim=(1, 2, 3)).reshape(1, -1, 1, 1, 1)                       # (1, M, 1, 1, 1)
    y = y.repeat(G, 1, 1, H, W).reshape(N, 1, H, W)
    return torch.cat([x, y], dim=1)


@pytest.mark.parametrize("group_size,N", GROUPS)
def test_matches_torch_autograd(xp, randn, group_size, N):
    torch = pytest.importorskip("torch")
    x = randn(xp, N, 3, 4, 4, seed=20 + N)
    R = randn(xp, N, 4, 4, 4, seed=30 + N)
    layer = MinibatchStd(group_size)
    y = layer(x)
    dx = layer.backward(R)
    xt = torch.tensor(to_numpy(x), requires_grad=True)
    yt = _torch_minibatch_std(torch, xt, group_size)
    yt.backward(torch.tensor(to_numpy(R)))
    np.testing.assert_allclose(to_numpy(y), yt.detach().numpy(), rtol=1e-10, err_msg="forward")
    np.testing.assert_allclose(to_numpy(dx), xt.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg="input gradient")


def test_the_std_channel_pushes_identical_images_apart(randn):
    """Only the extra channel's gradient moves x: it points each image away from its group's mean."""
    tinygan.use("numpy", np.float64)
    x = randn(np, 4, 2, 3, 3)
    layer = MinibatchStd(4)
    layer(x)
    dout = np.zeros((4, 3, 3, 3))
    dout[:, 2] = 1.0                                                        # L = Σ of the std channel
    dx = layer.backward(dout)
    np.testing.assert_allclose((dx * (x - x.mean(axis=0))).sum(axis=(1, 2, 3)) > 0, True)


# ----- errors -----------------------------------------------------------------------------------

def test_errors():
    layer = MinibatchStd(4)
    with pytest.raises(ValueError, match=r"^MinibatchStd: batch of 6 \(input shape \(6, 3, 4, 4\)\) is not divisible "
                                         r"by group_size=4: use a batch size that is a multiple of 4, or "
                                         r"MinibatchStd\(group_size=None\) to make the whole batch one group$"):
        layer(np.zeros((6, 3, 4, 4)))
    for shape in [(3, 4, 4), (2, 3, 4, 4, 1)]:
        with pytest.raises(ValueError, match=rf"^MinibatchStd: expected input of shape \(N, C, H, W\), "
                                             rf"got shape {re.escape(str(shape))}$"):
            layer(np.zeros(shape))
    with pytest.raises(ValueError, match=r"^MinibatchStd: expected input of shape \(N, C, H, W\), got a list$"):
        layer([[1.0]])
    with pytest.raises(ValueError, match=r"^MinibatchStd: group_size must be an integer >= 1 or None"):
        MinibatchStd(0)
    with pytest.raises(RuntimeError, match=r"^MinibatchStd.backward called before forward"):
        MinibatchStd().backward(np.zeros((4, 4, 2, 2)))
    layer(np.zeros((4, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"^MinibatchStd.backward: expected dout of shape \(4, 4, 2, 2\)"):
        layer.backward(np.zeros((4, 3, 2, 2)))
