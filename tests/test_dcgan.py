"""The DCGAN: shapes, the composed gradient through D into G, train_step's contract, and learning."""
import numpy as np
import pytest

from tinygan.dcgan import Discriminator, Generator, build, train_step
from tinygan.gradcheck import compare, numerical_gradient
from tinygan.nn import BatchNorm2d, BCEWithLogitsLoss, Conv2d, ConvTranspose2d
from tinygan.optim import Adam


@pytest.mark.parametrize("size, blocks", [(16, 3), (32, 4), (64, 5)])
def test_generator_and_discriminator_shapes(size, blocks):
    G = Generator(latent_dim=10, features=4, image_size=size)
    D = Discriminator(features=4, image_size=size)
    convs = [m for m in G.modules() if isinstance(m, ConvTranspose2d)]
    assert len(convs) == blocks                      # 64×64: the deck's five blocks
    x = G(np.random.default_rng(0).standard_normal((2, 10, 1, 1)).astype(np.float32))
    assert x.shape == (2, 3, size, size) and x.dtype == np.float32
    assert np.abs(x).max() <= 1.0
    assert D(x).shape == (2,)
    assert len([m for m in D.modules() if isinstance(m, Conv2d)]) == blocks


def test_paper_architecture_64():
    G, D = build("paper", latent_dim=100, features=64, image_size=64)
    g = [(m.in_channels, m.out_channels, m.stride, m.padding) for m in G.modules() if isinstance(m, ConvTranspose2d)]
    assert g == [(100, 512, 1, 0), (512, 256, 2, 1), (256, 128, 2, 1), (128, 64, 2, 1), (64, 3, 2, 1)]
    d = [(m.in_channels, m.out_channels, m.stride, m.padding) for m in D.modules() if isinstance(m, Conv2d)]
    assert d == [(3, 64, 2, 1), (64, 128, 2, 1), (128, 256, 2, 1), (256, 512, 2, 1), (512, 1, 1, 0)]
    # no BatchNorm on D's input layer (the paper), BN after every other D conv
    assert type(D.main[1]).__name__ == "LeakyReLU"
    assert sum(isinstance(m, BatchNorm2d) for m in D.modules()) == 3
    assert all(m.bias is None for m in G.modules() + D.modules() if isinstance(m, (Conv2d, ConvTranspose2d)))
    # DCGAN init: conv weights N(0, 0.02), BN γ N(1, 0.02), β 0
    w = np.concatenate([m.weight.data.ravel() for m in G.modules() + D.modules() if isinstance(m, (Conv2d, ConvTranspose2d))])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    gammas = np.concatenate([m.weight.data for m in G.modules() + D.modules() if isinstance(m, BatchNorm2d)])
    assert abs(gammas.mean() - 1) < 5e-3 and 0.01 < gammas.std() < 0.03
    assert all((m.bias.data == 0).all() for m in G.modules() if isinstance(m, BatchNorm2d))


def test_d2l_recipe_differs_as_documented():
    G, D = build("d2l", latent_dim=8, features=4, image_size=16)
    assert isinstance(D.main[1], BatchNorm2d)        # BN on D's first block
    gammas = np.concatenate([m.weight.data for m in D.modules() if isinstance(m, BatchNorm2d)])
    assert abs(gammas.mean()) < 0.05                 # every parameter N(0, 0.02), γ included
    with pytest.raises(ValueError, match="unknown recipe"):
        build("nope")


@pytest.mark.parametrize("size", [0, 8, 24, 48])
def test_bad_image_size_is_a_clear_error(size):
    with pytest.raises(ValueError, match="power of two >= 16"):
        Generator(image_size=size)


def _tiny_pair(seed=0):
    G, D = build("paper", latent_dim=4, features=2, image_size=16, seed=seed)
    return G.double(), D.double()


def test_composed_gradient_of_loss_G_wrt_every_G_parameter():
    """d loss_G / dθ_G through D and the loss, element by element, against finite differences (float64)."""
    G, D = _tiny_pair()
    z = np.random.default_rng(1).standard_normal((3, 4, 1, 1))
    loss, ones = BCEWithLogitsLoss(), np.ones(3)

    def loss_G():
        return float(loss(D(G(z)), ones))

    G.zero_grad()
    D.zero_grad()
    D.requires_grad_(False)
    loss(D(G(z)), ones)
    G.backward(D.backward(loss.backward()))
    assert all((p.grad == 0).all() for p in D.parameters())   # switched off: nothing left behind
    for name, p in G.named_parameters():
        report = compare(name, p.grad.copy(), numerical_gradient(loss_G, p.data), rtol=1e-5, atol=1e-9)
        assert report.ok, report.line()
        assert np.abs(p.grad).max() > 0


def test_train_step_updates_D_then_G_and_leaves_no_D_grads_from_G_step():
    G, D = build("paper", latent_dim=4, features=4, image_size=16, seed=0)
    opt_G = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    z = rng.standard_normal((4, 4, 1, 1)).astype(np.float32)

    # Reference: the D gradient of loss_D alone, computed by hand from the same start.
    G_ref, D_ref = build("paper", latent_dim=4, features=4, image_size=16, seed=0)
    bce = BCEWithLogitsLoss()
    D_ref.zero_grad()
    bce(D_ref(real), np.ones(4, np.float32))
    D_ref.backward(bce.backward(0.5))
    bce(D_ref(G_ref(z)), np.zeros(4, np.float32))
    D_ref.backward(bce.backward(0.5))

    stats = {}
    loss_D, loss_G = train_step(G, D, opt_G, opt_D, real, z, stats=stats)
    assert np.isfinite(float(loss_D)) and np.isfinite(float(loss_G))
    assert 0 < float(stats["d_real"]) < 1 and 0 < float(stats["d_fake"]) < 1
    # D's .grad holds exactly loss_D's gradient: the G step added nothing to it
    for (name, p), p_ref in zip(D.named_parameters(), D_ref.parameters()):
        np.testing.assert_allclose(p.grad, p_ref.grad, rtol=1e-4, atol=1e-7, err_msg=name)
    # Both networks moved, D's requires_grad is restored
    assert all(p.requires_grad for p in D.parameters())
    assert any(not np.array_equal(a.data, b.data) for a, b in zip(G.parameters(), G_ref.parameters()))


def test_train_step_loss_values_match_definition():
    """loss_D = ½[ℓ(D(x),1) + ℓ(D(G(z)),0)] before D's update; loss_G = ℓ(D'(G(z)),1) after it."""
    G, D = build("paper", latent_dim=4, features=4, image_size=16, seed=3)
    G2, D2 = build("paper", latent_dim=4, features=4, image_size=16, seed=3)
    rng = np.random.default_rng(5)
    real = rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    z = rng.standard_normal((4, 4, 1, 1)).astype(np.float32)
    bce = BCEWithLogitsLoss()
    expected_D = 0.5 * (float(bce(D2(real), np.ones(4, np.float32))) + float(bce(D2(G2(z)), np.zeros(4, np.float32))))
    loss_D, _ = train_step(G, D, Adam(G.parameters()), Adam(D.parameters()), real, z)
    assert float(loss_D) == pytest.approx(expected_D, rel=1e-5)


def test_gan_learns_two_flat_colours():
    """On red and blue squares, G's colours move from grey to the data's within 300 small steps."""
    S = 16
    red = np.full((3, S, S), -1, np.float32)
    red[0] = 1
    blue = np.full((3, S, S), -1, np.float32)
    blue[2] = 1
    data = np.stack([red] * 32 + [blue] * 32)
    rng = np.random.default_rng(0)
    G, D = build("paper", latent_dim=8, features=8, image_size=S, seed=0)
    opt_G, opt_D = Adam(G.parameters(), 5e-3, (0.5, 0.999)), Adam(D.parameters(), 5e-3, (0.5, 0.999))
    z0 = rng.standard_normal((64, 8, 1, 1)).astype(np.float32)

    def colours():
        return G(z0).mean(axis=(2, 3))              # (64, 3): each sample's mean colour

    before = colours()
    for _ in range(300):
        idx = rng.choice(64, 16, replace=False)
        z = rng.standard_normal((16, 8, 1, 1)).astype(np.float32)
        train_step(G, D, opt_G, opt_D, data[idx], z)
    after = colours()
    # green is -1 in every training image: G must learn to switch it off
    assert abs(before[:, 1].mean()) < 0.2
    assert after[:, 1].mean() < -0.6, after.mean(axis=0)
    # red and blue each come on in some samples and off in others (two modes, not one grey)
    assert after[:, 0].std() > 0.4 and after[:, 2].std() > 0.4, after.std(axis=0)
    assert np.corrcoef(after[:, 0], after[:, 2])[0, 1] < -0.5
