"""Latent walks (lerp, slerp) and vector arithmetic on z: the numbers they compute."""
import numpy as np
import pytest

from tinygan.explore.arithmetic import concept_mean, neighbours, pixel_arithmetic, z_arithmetic
from tinygan.explore.latent import interpolate, lerp, slerp, walk, walk_frames


def unit(v):
    return v / np.linalg.norm(v)


def test_lerp_endpoints_and_midpoint():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100), rng.standard_normal(100)
    np.testing.assert_allclose(lerp(a, b, 0.0), a)
    np.testing.assert_allclose(lerp(a, b, 1.0), b)
    np.testing.assert_allclose(lerp(a, b, 0.5), (a + b) / 2)
    np.testing.assert_allclose(lerp(a, b, [0.25, 0.75]), [0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b])


def test_slerp_endpoints_unit_norm_and_constant_angular_speed():
    rng = np.random.default_rng(1)
    a, b = unit(rng.standard_normal(100)), unit(rng.standard_normal(100))
    t = np.linspace(0, 1, 11)
    path = slerp(a, b, t)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-12)      # stays on the sphere
    omega = np.arccos(a @ b)
    np.testing.assert_allclose(np.arccos(np.clip(path @ a, -1, 1)), t * omega, atol=1e-7)
    # the path stays in the plane of a and b
    q, _ = np.linalg.qr(np.stack([a, b], 1))
    np.testing.assert_allclose(path @ q @ q.T, path, atol=1e-12)
    # lerp's midpoint, by contrast, is shorter
    assert np.linalg.norm(lerp(a, b, 0.5)) < 0.99 * np.linalg.norm(slerp(a, b, 0.5))


def test_slerp_keeps_gaussian_z_at_a_typical_norm():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(100), rng.standard_normal(100)
    mid_lerp, mid_slerp = lerp(a, b, 0.5), slerp(a, b, 0.5)
    assert np.linalg.norm(mid_lerp) < 0.8 * min(np.linalg.norm(a), np.linalg.norm(b))
    assert np.linalg.norm(mid_slerp) > 0.95 * min(np.linalg.norm(a), np.linalg.norm(b))


def test_slerp_degenerate_directions():
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(slerp(a, 2 * a, 0.5), 1.5 * a)         # parallel: the line
    with pytest.raises(ValueError, match="opposite"):
        slerp(a, -a, 0.5)


def test_interpolate_and_walk_shapes_and_joints():
    rng = np.random.default_rng(3)
    points = rng.standard_normal((4, 8))
    rows = walk(points, 5, "slerp")
    assert rows.shape == (3, 5, 8)
    for i in range(3):
        np.testing.assert_allclose(rows[i, 0], points[i], atol=1e-12)
        np.testing.assert_allclose(rows[i, -1], points[i + 1], atol=1e-12)
    frames = walk_frames(rows)
    assert frames.shape == (3 * 4 + 1, 8)
    np.testing.assert_allclose(interpolate(points[0], points[1], 3, "lerp")[1], (points[0] + points[1]) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        interpolate(points[0], points[1], 1)
    with pytest.raises(ValueError, match="method"):
        interpolate(points[0], points[1], 3, "cubic")


def test_arithmetic_on_z_is_mean_of_three_then_a_minus_b_plus_c():
    z = np.random.default_rng(4).standard_normal((20, 6))
    a, b, c = [1, 2, 3], [4, 5, 6], [17, 18, 19]
    y, (ma, mb, mc) = z_arithmetic(z, a, b, c)
    np.testing.assert_allclose(ma, (z[1] + z[2] + z[3]) / 3)
    np.testing.assert_allclose(mc, (z[17] + z[18] + z[19]) / 3)
    np.testing.assert_allclose(y, (z[1] + z[2] + z[3] - z[4] - z[5] - z[6] + z[17] + z[18] + z[19]) / 3)
    np.testing.assert_allclose(concept_mean(z, [7]), z[7])
    with pytest.raises(ValueError, match="out of range"):
        concept_mean(z, [3, 20])


def test_neighbours_are_uniform_within_a_quarter():
    y = np.random.default_rng(5).standard_normal(100)
    ys = neighbours(y, 8, 0.25, rng=0)
    assert ys.shape == (9, 100)
    np.testing.assert_array_equal(ys[0], y)
    d = ys[1:] - y
    assert np.abs(d).max() <= 0.25 and np.abs(d).max() > 0.2          # fills the box, stays inside
    assert abs(d.mean()) < 0.02 and np.all(np.abs(d).max(axis=1) > 0)
    big = neighbours(y, 2000, 0.25, rng=1)[1:] - y                     # U(−¼, ¼): variance 1/48
    assert abs(big.var() - 0.25 ** 2 / 3) < 1e-3


def test_pixel_arithmetic():
    x = np.random.default_rng(6).uniform(-1, 1, (9, 3, 4, 4))
    out = pixel_arithmetic(x, [0, 1, 2], [3, 4, 5], [6, 7, 8])
    expected = np.clip(x[:3].mean(0) - x[3:6].mean(0) + x[6:].mean(0), -1, 1)
    np.testing.assert_allclose(out, expected)
    assert out.shape == (3, 4, 4) and out.min() >= -1 and out.max() <= 1
