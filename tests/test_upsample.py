"""Upsample (nearest, ×s): forward values, its backward by finite differences and against PyTorch,
and the generator that upsamples with it (Generator(upsample='nearest'))."""
import numpy as np
import pytest

from tinygan.dcgan import Generator, build
from tinygan.gradcheck import check_directional, check_module
from tinygan.nn import BatchNorm2d, Conv2d, ConvTranspose2d, Sequential, Upsample
from tinygan.nn.upsample import upsample_nearest_reference


def test_forward_copies_each_pixel_into_an_s_by_s_block():
    x = np.arange(2 * 3 * 2 * 3, dtype=np.float64).reshape(2, 3, 2, 3)
    y = Upsample(2)(x)
    assert y.shape == (2, 3, 4, 6)
    assert np.array_equal(y[0, 0], [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]])
    for s in (1, 2, 3):
        assert np.array_equal(Upsample(s)(x), upsample_nearest_reference(x, s))


def test_backward_sums_each_block(randn):
    x = randn(np, 2, 3, 4, 5)
    layer = Upsample(3)
    layer(x)
    dy = randn(np, 2, 3, 12, 15, seed=1)
    dx = layer.backward(dy)
    expected = np.zeros_like(x)
    for h in range(4):
        for w in range(5):
            expected[:, :, h, w] = dy[:, :, 3 * h:3 * h + 3, 3 * w:3 * w + 3].sum(axis=(2, 3))
    np.testing.assert_allclose(dx, expected, rtol=1e-12)
    assert dy.shape == (2, 3, 12, 15)                       # the upstream gradient is left alone


@pytest.mark.parametrize("s", [2, 3])
def test_gradcheck(xp, randn, s):
    check_module(Upsample(s), randn(xp, 2, 2, 3, 3))


def test_gradcheck_resize_convolution(randn):
    block = Sequential(Upsample(2), Conv2d(2, 3, 3, 1, 1, bias=False)).double()
    check_module(block, randn(np, 2, 2, 3, 3))


def test_matches_pytorch_forward_and_backward(randn):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for this check")
    x = randn(np, 2, 3, 4, 5)
    dy = randn(np, 2, 3, 8, 10, seed=1)
    layer = Upsample(2)
    y = layer(x)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.Upsample(scale_factor=2, mode="nearest")(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12)


def test_rejects_other_modes_and_scales():
    with pytest.raises(ValueError, match="nearest"):
        Upsample(2, mode="bilinear")
    with pytest.raises(ValueError, match="positive integer"):
        Upsample(1.5)
    with pytest.raises(RuntimeError, match="before forward"):
        Upsample(2).backward(np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("size", [16, 32, 64])
def test_nearest_generator_shapes_and_layers(size):
    G = Generator(latent_dim=10, features=4, image_size=size, upsample="nearest")
    blocks = int(np.log2(size // 4))
    assert sum(isinstance(m, Upsample) for m in G.modules()) == blocks
    assert sum(isinstance(m, Conv2d) for m in G.modules()) == blocks
    assert sum(isinstance(m, ConvTranspose2d) for m in G.modules()) == 1        # only the 1×1 → 4×4 layer
    assert all(m.kernel_size == 3 and m.stride == 1 and m.padding == 1 for m in G.modules() if isinstance(m, Conv2d))
    x = G(np.random.default_rng(0).standard_normal((2, 10, 1, 1)).astype(np.float32))
    assert x.shape == (2, 3, size, size) and np.abs(x).max() <= 1
    # the same resolutions after every block as the transposed-convolution G
    shapes = [m.out_shape for m in G.modules() if isinstance(m, BatchNorm2d)]
    G_t = Generator(latent_dim=10, features=4, image_size=size)
    G_t(np.zeros((2, 10, 1, 1), np.float32))
    assert shapes == [m.out_shape for m in G_t.modules() if isinstance(m, BatchNorm2d)]


def test_default_generator_is_unchanged():
    """Checkpoints of the default G must keep loading: same parameter names and shapes as before the option."""
    G, _ = build("paper", latent_dim=100, features=64, image_size=32)
    assert [(k, tuple(v.shape)) for k, v in G.state_dict().items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))] == [
        ("main.0.weight", (100, 256, 4, 4)), ("main.1.weight", (256,)), ("main.1.bias", (256,)),
        ("main.3.weight", (256, 128, 4, 4)), ("main.4.weight", (128,)), ("main.4.bias", (128,)),
        ("main.6.weight", (128, 64, 4, 4)), ("main.7.weight", (64,)), ("main.7.bias", (64,)),
        ("main.9.weight", (64, 3, 4, 4))]
    with pytest.raises(ValueError, match="upsample must be one of"):
        Generator(upsample="bilinear")


def test_nearest_generator_composed_gradient():
    G, _ = build("paper", latent_dim=4, features=2, image_size=16, upsample="nearest")
    G.double()
    z = np.random.default_rng(0).standard_normal((3, 4, 1, 1))
    R = np.random.default_rng(1).standard_normal((3, 3, 16, 16))
    G.zero_grad()
    G(z)
    G.backward(R)
    params = G.parameters()
    check_directional(lambda: float((G(z) * R).sum()), [p.data for p in params], [p.grad.copy() for p in params])
