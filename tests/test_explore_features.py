"""D as a feature extractor (max-pooled block activations) and the linear probe on its features."""
import sys

import numpy as np
import pytest

from tinygan.dcgan import build
from tinygan.explore.features import (SKLEARN_MISSING, LinearProbe, extract_features, layer_activations,
                                      load_digits_images, max_pool_to, probe_accuracy)


def test_max_pool_to_takes_the_max_of_each_block():
    a = np.random.default_rng(0).standard_normal((2, 3, 8, 12))
    out = max_pool_to(a, 4)
    assert out.shape == (2, 3, 4, 4)
    for i in range(4):
        for j in range(4):
            np.testing.assert_array_equal(out[:, :, i, j], a[:, :, 2 * i:2 * i + 2, 3 * j:3 * j + 3].max(axis=(2, 3)))
    np.testing.assert_array_equal(max_pool_to(out, 4), out)
    with pytest.raises(ValueError, match="multiple"):
        max_pool_to(a[:, :, :6], 4)


def test_features_are_every_block_pooled_and_concatenated():
    _, D = build("paper", latent_dim=4, features=4, image_size=32, seed=0)
    x = np.random.default_rng(1).uniform(-1, 1, (5, 3, 32, 32)).astype(np.float32)
    f = extract_features(D, x, batch_size=2)                          # batches must not matter (eval mode)
    assert f.shape == (5, 16 * (4 + 8 + 16)) and f.dtype == np.float32
    assert D.training                                                 # put back as it was
    D.eval()
    acts = layer_activations(D, x)
    assert [a.shape[1:] for a in acts] == [(4, 16, 16), (8, 8, 8), (16, 4, 4)]
    manual = np.concatenate([max_pool_to(a, 4).reshape(5, -1) for a in acts], axis=1)
    np.testing.assert_allclose(f, manual, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(extract_features(D, x[3:4]), f[3:4], rtol=1e-5, atol=1e-7)   # one image alone: the same


def test_probe_separates_linearly_separable_features():
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((3, 20)) * 3
    y = rng.integers(0, 3, 300)
    X = (centres[y] + rng.standard_normal((300, 20))).astype(np.float32)
    probe = LinearProbe(20, 3)
    losses = probe.fit(X[:200], y[:200], epochs=20, lr=1e-2)
    assert losses[-1] < 0.3 * losses[0]
    assert probe.accuracy(X[200:], y[200:]) > 0.95
    logits = probe.logits(X[:4])                                      # W·f + b, a 1×1 convolution
    w, b = probe.layer.weight.data.reshape(3, 20), probe.layer.bias.data
    np.testing.assert_allclose(logits, X[:4] @ w.T + b, rtol=1e-5, atol=1e-6)


def stripes(n, size=16, seed=0):
    """Horizontal (label 0) or vertical (label 1) stripes: random width 2–4 px, random phase, a random
    colour and its ±0.5 lighter/darker shade. The phase makes them linearly inseparable in pixels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    out = np.empty((n, 3, size, size), np.float32)
    coords = np.arange(size)
    for i, lab in enumerate(labels):
        period, phase = rng.integers(2, 5), rng.integers(0, 8)
        wave = ((coords + phase) // period) % 2
        pattern = wave[:, None] * np.ones(size) if lab == 0 else np.ones(size)[:, None] * wave[None, :]
        base = rng.uniform(-1, 1, 3)[:, None, None]
        out[i] = np.clip(base - 0.5 + pattern, -1, 1)
    return out, labels


def test_random_discriminator_features_separate_stripe_orientations():
    """Without scikit-learn: a random-init D's pooled features, a linear probe, two classes."""
    x, y = stripes(240, seed=3)
    _, D = build("paper", latent_dim=4, features=8, image_size=16, seed=0)
    f = extract_features(D, x)
    acc = probe_accuracy(f[:160], y[:160], f[160:], y[160:], n_classes=2, epochs=30, lr=3e-3)
    assert acc >= 0.9
    pixels = x.reshape(len(x), -1)                                    # the same probe on raw pixels: chance
    assert probe_accuracy(pixels[:160], y[:160], pixels[160:], y[160:], n_classes=2, epochs=30) < 0.7


def test_digits_need_scikit_learn_with_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)                 # as if not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[explore\]'"):
        load_digits_images(32)
    assert "scikit-learn" in SKLEARN_MISSING


def test_digits_images():
    pytest.importorskip("sklearn", reason="scikit-learn (the 'explore' extra) provides the digits set")
    x, y = load_digits_images(32)
    assert x.shape == (1797, 3, 32, 32) and x.dtype == np.float32 and y.shape == (1797,)
    assert x.min() >= -1 and x.max() <= 1 and set(np.unique(y)) == set(range(10))
    assert np.array_equal(x[:, 0], x[:, 2])                           # grey
    assert (x[:, 0, 0, 0] > 0.9).mean() > 0.9                         # white background, dark strokes
