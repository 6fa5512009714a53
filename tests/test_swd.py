"""ProGAN's sliced Wasserstein distance: the pyramid, the 1-D distance, and what it can and cannot see."""
import numpy as np
import pytest

from tinygan.swd import (blur, laplacian_pyramid, num_levels, pyramid_down, pyramid_up, reconstruct,
                                 sliced_wasserstein, swd)


def blobs(n, size=32, seed=0):
    """n images of a few coloured discs on a light background, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.full((n, 3, size, size), 0.8)
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.25)
            mask = (np.hypot(yy - cy, xx - cx) < r).astype(float)             # sharp edges, as sprites
            colour = rng.uniform(-1, 0.6, 3)
            out[i] = out[i] * (1 - mask) + colour[:, None, None] * mask
    return out.astype(np.float32)


def test_levels_and_pyramid_shapes():
    assert [num_levels(s) for s in (16, 32, 64, 128)] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="smaller"):
        num_levels(8)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    assert pyramid_down(x).shape == (2, 3, 16, 16) and pyramid_up(pyramid_down(x)).shape == x.shape
    assert [p.shape[2] for p in laplacian_pyramid(x, 2)] == [32, 16]


def test_pyramid_reconstructs_exactly_and_blur_keeps_constants():
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))
    pyr = laplacian_pyramid(x, 3)
    np.testing.assert_allclose(reconstruct(pyr), x, atol=1e-12)
    np.testing.assert_allclose(blur(np.full((1, 1, 8, 8), 0.3)), 0.3)
    np.testing.assert_allclose(pyramid_up(np.full((1, 1, 8, 8), 0.3)), 0.3)  # ×4 restores the level
    # a constant image has no detail: every level but the last is zero
    pyr = laplacian_pyramid(np.full((1, 3, 32, 32), 0.5), 2)
    np.testing.assert_allclose(pyr[0], 0, atol=1e-12)


def test_one_dimensional_case_is_the_wasserstein_distance():
    a = np.random.default_rng(2).standard_normal((500, 1))
    # one dimension: every direction is ±1, and W1 between a and a + c is |c|
    assert sliced_wasserstein(a, a + 0.5, dir_repeats=2, dirs_per_repeat=3) == pytest.approx(0.5)
    assert sliced_wasserstein(a, a[::-1].copy()) == pytest.approx(0.0, abs=1e-12)   # order does not matter


def test_identical_zero_symmetric_and_ordered():
    real = blobs(32, seed=0)
    kw = dict(patches_per_image=32, dir_repeats=2, dirs_per_repeat=64)
    same = swd(real, real, **kw)
    assert same.mean == 0.0 and same.levels == [0.0, 0.0] and same.resolutions == [32, 16]
    noisy = np.clip(real + 0.01 * np.random.default_rng(1).standard_normal(real.shape), -1, 1).astype(np.float32)
    hue = real[:, [1, 2, 0]]                                           # colours rotated R→G→B→R
    shifted = np.clip(real + np.array([0.4, 0.0, -0.4], np.float32)[:, None, None], -1, 1)
    d_noisy, d_hue, d_shifted = swd(real, noisy, **kw), swd(real, hue, **kw), swd(real, shifted, **kw)
    assert d_noisy.mean > 0
    assert d_hue.mean > 3 * d_noisy.mean
    assert d_shifted.mean > 1.5 * d_noisy.mean                         # only the clipping survives normalisation
    assert swd(hue, real, **kw).mean == pytest.approx(d_hue.mean, rel=1e-6)    # symmetric
    assert swd(noisy, real, **kw).levels == pytest.approx(d_noisy.levels, rel=1e-6)


def test_blind_to_per_channel_affine_colour_changes():
    """Per-channel normalisation (ProGAN's) removes x·a + b per channel: documented, so tested."""
    real = blobs(16, seed=3)
    tinted = real * np.array([0.6, 0.8, 1.0], np.float32)[:, None, None] + np.array([0.2, -0.1, 0.0], np.float32)[:, None, None]
    assert swd(real, tinted, patches_per_image=16, dir_repeats=1).mean < 1e-2


def test_rejects_sets_of_different_shapes():
    with pytest.raises(ValueError, match="one shape"):
        swd(blobs(4), blobs(5))
