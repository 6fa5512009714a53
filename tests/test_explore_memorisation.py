"""Nearest neighbours in pixel space and the memorisation report."""
import numpy as np
import pytest

from tinygan.explore.memorisation import (memorisation_report, nearest_neighbours, nearest_neighbours_reference,
                                          pairwise_distances)


def test_pairwise_distances_are_rms_differences():
    rng = np.random.default_rng(0)
    q, p = rng.uniform(-1, 1, (4, 3, 5, 5)), rng.uniform(-1, 1, (6, 3, 5, 5))
    d = pairwise_distances(q, p)
    assert d.shape == (4, 6)
    np.testing.assert_allclose(d[2, 5], np.sqrt(((q[2] - p[5]) ** 2).mean()), rtol=1e-10)
    np.testing.assert_allclose(pairwise_distances(q, q).diagonal(), 0, atol=1e-7)
    assert pairwise_distances(-np.ones((1, 3, 2, 2)), np.ones((1, 3, 2, 2)))[0, 0] == pytest.approx(2.0)


@pytest.mark.parametrize("k, chunk", [(1, 256), (3, 256), (3, 7)])
def test_nearest_neighbours_match_brute_force(k, chunk):
    rng = np.random.default_rng(1)
    queries, pool = rng.uniform(-1, 1, (20, 3, 4, 4)), rng.uniform(-1, 1, (50, 3, 4, 4))
    idx, dist = nearest_neighbours(queries, pool, k, chunk=chunk)
    ref_idx, ref_dist = nearest_neighbours_reference(queries, pool, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-9)
    assert np.all(np.diff(dist, axis=1) >= 0)                          # closest first


def test_a_copy_is_found_at_distance_zero_and_exclude_skips_it():
    rng = np.random.default_rng(2)
    pool = rng.uniform(-1, 1, (30, 3, 4, 4))
    idx, dist = nearest_neighbours(pool[[4, 17]], pool, 2)
    assert idx[:, 0].tolist() == [4, 17] and np.allclose(dist[:, 0], 0, atol=1e-7)
    idx2, dist2 = nearest_neighbours(pool[[4, 17]], pool, 1, exclude=[4, 17])
    assert idx2[:, 0].tolist() == idx[:, 1].tolist()                   # the next one instead
    np.testing.assert_allclose(dist2[:, 0], dist[:, 1])


def test_report_flags_copies_and_not_fresh_samples():
    rng = np.random.default_rng(3)
    train, heldout = rng.uniform(-1, 1, (60, 3, 4, 4)), rng.uniform(-1, 1, (20, 3, 4, 4))
    copies = train[:10] + 0.01 * rng.standard_normal((10, 3, 4, 4))
    r = memorisation_report(copies, train, heldout, k=3)
    assert r["baseline"] == "held-out" and r["n_real"] == 20
    np.testing.assert_array_equal(r["indices"][:, 0], np.arange(10))
    assert r["ratio"] < 0.05
    ref = nearest_neighbours_reference(heldout, train, 1)[1][:, 0].mean()
    assert r["mean_real_nn"] == pytest.approx(ref)
    fresh = memorisation_report(rng.uniform(-1, 1, (10, 3, 4, 4)), train, heldout)
    assert 0.8 < fresh["ratio"] < 1.25                                 # same distribution as the held-out set
    loo = memorisation_report(copies, train, None)
    assert loo["baseline"] == "leave-one-out" and loo["n_real"] == 10 and loo["mean_real_nn"] > 0.3
