"""Looking inside D: filter images, and saliency against finite differences."""
import numpy as np

from tinygan.dcgan import build
from tinygan.explore.inspect import filter_images, first_conv, saliency, saliency_map
from tinygan.gradcheck import compare, numerical_gradient


def tiny_D():
    _, D = build("paper", latent_dim=4, features=2, image_size=16, seed=0)
    D.double()
    D.train()
    for m in D.modules():                                             # non-trivial running statistics
        if hasattr(m, "running_mean"):
            m.running_mean[...] = np.random.default_rng(1).standard_normal(m.running_mean.shape) * 0.1
            m.running_var[...] = np.random.default_rng(2).uniform(0.5, 2, m.running_var.shape)
    return D


def test_saliency_is_the_gradient_of_each_logit():
    D = tiny_D()
    x = np.random.default_rng(3).uniform(-1, 1, (2, 3, 16, 16))
    grad, logits = saliency(D, x)
    assert grad.shape == x.shape and logits.shape == (2,)
    D.eval()
    xc = x.copy()
    numeric = numerical_gradient(lambda: float(D(xc).sum()), xc)      # Σ_n D(x_n): each logit sees its own image
    report = compare("saliency", grad, numeric, rtol=1e-5, atol=1e-8)
    assert report.ok, report.line()
    # one image at a time gives the same gradient (eval mode: no mixing through BatchNorm)
    g1, _ = saliency(D, x[1:2])
    np.testing.assert_allclose(g1[0], grad[1], rtol=1e-10)


def test_batch_saliency_is_the_gradient_of_the_summed_logits_in_train_mode():
    D = tiny_D()
    x = np.random.default_rng(5).uniform(-1, 1, (3, 3, 16, 16))
    running = [m.running_mean.copy() for m in D.modules() if hasattr(m, "running_mean")]
    grad, logits = saliency(D, x, bn="batch")
    after = [m.running_mean for m in D.modules() if hasattr(m, "running_mean")]
    assert all(np.array_equal(a, b) for a, b in zip(running, after))   # running statistics untouched
    xc = x[:, :, :6, :6].copy()                                        # a few pixels are enough here
    full = x.copy()

    def total():
        full[:, :, :6, :6] = xc
        D.train()
        return float(D(full).sum())
    numeric = numerical_gradient(total, xc)
    report = compare("batch saliency", grad[:, :, :6, :6], numeric, rtol=1e-5, atol=1e-8)
    assert report.ok, report.line()
    D.eval()
    assert not np.allclose(logits, D(x))                               # batch and running statistics differ


def test_saliency_leaves_D_as_it_was():
    D = tiny_D()
    D.train()
    D.zero_grad()
    state = {k: v.copy() for k, v in D.state_dict().items()}
    saliency(D, np.zeros((2, 3, 16, 16)))
    assert D.training
    assert all(p.requires_grad for p in D.parameters())
    assert all(not p.grad.any() for p in D.parameters())
    assert all(np.array_equal(state[k], v) for k, v in D.state_dict().items())


def test_saliency_map_range():
    g = np.random.default_rng(4).standard_normal((2, 3, 5, 5))
    s = saliency_map(g)
    assert s.shape == (2, 5, 5)
    np.testing.assert_allclose(s.reshape(2, -1).max(axis=1), 1.0)
    np.testing.assert_allclose(s[0] * np.abs(g[0]).max(), np.abs(g[0]).max(axis=0))
    assert saliency_map(np.zeros((1, 3, 2, 2))).max() == 0


def test_filter_images():
    _, D = build("paper", latent_dim=4, features=8, image_size=16, seed=0)
    f = filter_images(D)
    w = first_conv(D).weight.data
    assert f.shape == (8, 3, 4, 4) == w.shape
    np.testing.assert_allclose(np.abs(f).reshape(8, -1).max(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(f * np.abs(w).reshape(8, -1).max(axis=1)[:, None, None, None], w, rtol=1e-5)
