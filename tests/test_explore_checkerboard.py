"""The overlap pattern of stride-2 transposed convolutions, and constant inputs through G's ×2 steps."""
import numpy as np
import pytest

from tinygan.explore.checkerboard import (constant_response, overlap_count, overlap_count_reference, phase_spread,
                                          resize_conv_layer, transpose_layer)


@pytest.mark.parametrize("k, s, p, n", [(3, 2, 1, 5), (4, 2, 1, 6), (5, 2, 1, 6), (4, 2, 0, 4), (3, 3, 0, 4)])
def test_overlap_count_matches_the_index_formula(k, s, p, n):
    np.testing.assert_array_equal(overlap_count(k, s, p, n), overlap_count_reference(k, s, p, n))


def test_k4_s2_is_even_inside_and_thinner_at_the_border():
    c = overlap_count(4, 2, 1, 8)
    assert c.shape == (16, 16)
    assert (c[1:-1, 1:-1] == 4).all()                                 # K/s = 2 per axis, 2·2
    assert (c[0, 1:-1] == 2).all() and (c[1:-1, -1] == 2).all()
    assert c[0, 0] == c[-1, -1] == 1
    assert c.sum() == 8 * 8 * 4 * 4 - (4 * 16 * 2 - 4)                # every input pixel gives 16; some fall off


def test_k3_and_k5_s2_are_2x2_periodic_inside():
    c3 = overlap_count(3, 2, 1, 8)[1:-1, 1:-1]                        # output 15×15; rows 1.. start odd
    assert sorted(set(c3.ravel().tolist())) == [1, 2, 4]
    np.testing.assert_array_equal(c3[:2, :2], [[4, 2], [2, 1]])
    np.testing.assert_array_equal(c3, np.tile(c3[:2, :2], (7, 7))[:13, :13])
    c5 = overlap_count(5, 2, 1, 8)[3:-3, 3:-3]
    assert sorted(set(c5.ravel().tolist())) == [4, 6, 9]
    np.testing.assert_array_equal(c5, np.tile(c5[:2, :2], (6, 6))[:c5.shape[0], :c5.shape[1]])


def test_constant_input_k4_s2_gives_a_2x2_pattern_resize_conv_a_flat_interior():
    t = constant_response(transpose_layer(seed=0), in_size=8)[1:-1, 1:-1]
    np.testing.assert_allclose(t[2:, :], t[:-2, :], atol=1e-5)       # period 2 down …
    np.testing.assert_allclose(t[:, 2:], t[:, :-2], atol=1e-5)       # … and across
    assert np.ptp(t[:2, :2]) > 0.1                                    # but not constant: the four phases differ
    r = constant_response(resize_conv_layer(seed=0), in_size=8)[1:-1, 1:-1]
    np.testing.assert_allclose(r, r[0, 0], atol=1e-5)
    assert phase_spread(r) < 1e-5 and phase_spread(constant_response(transpose_layer(seed=0), in_size=8)) > 0.1


def test_phase_spread_of_a_known_pattern():
    board = np.tile([[1.0, 3.0], [3.0, 1.0]], (6, 6))                # phase means 1, 3, 3, 1; mean |x| 2
    assert phase_spread(board) == 1.0
    assert phase_spread(np.full((12, 12), -2.0)) == 0.0
