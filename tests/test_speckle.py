"""tinygan.speckle on constructed images: flat regions 0, salt-and-pepper high, monotone in noise."""
import glob
import os

import numpy as np
import pytest

from tinygan import speckle

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "quality-reference")


def flat_figure(n=4, size=16, colour=(200, 40, 40), outline=(20, 20, 20)):
    """n white images with a flat-coloured box framed by a one-pixel dark outline."""
    u = np.full((n, size, size, 3), 255, np.uint8)
    u[:, 3:13, 3:13] = outline
    u[:, 4:12, 4:12] = colour
    return u


def salt_and_pepper(density, n=4, seed=0):
    """``flat_figure`` with a share ``density`` of its body's pixels turned cyan or yellow."""
    rng = np.random.default_rng(seed)
    u = flat_figure(n)
    body = u[:, 4:12, 4:12]
    hit = rng.random(body.shape[:3]) < density
    body[hit] = np.where(rng.random((hit.sum(), 1)) < 0.5, (0, 220, 250), (250, 220, 0))
    return u


def test_flat_regions_and_outlines_score_no_speckle():
    u = flat_figure()
    assert (speckle.isolated_share(u) == 0).all()
    assert (speckle.colour_count(u) == 2).all()                   # the body and its outline
    assert (speckle.isolated_share(np.full((2, 8, 8, 3), 255, np.uint8)) == 0).all()   # no figure at all


def test_one_stray_pixel_is_counted_once():
    u = flat_figure(n=1)
    u[0, 7, 7] = (30, 200, 30)                                     # a green dot in the red body
    assert speckle.isolated_share(u)[0] == pytest.approx(1 / 100)   # 1 of the 10×10 figure pixels
    assert speckle.colour_count(u)[0] == 3


def test_salt_and_pepper_scores_high():
    """Every pixel a random colour: nearly all isolated. Dots on a flat body: about the share of dots."""
    noise = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    assert speckle.isolated_share(noise).min() > 0.9
    densities = (0.0, 0.05, 0.1, 0.2)
    dots = [speckle.isolated_share(salt_and_pepper(d)).mean() for d in densities]
    assert dots[0] == 0 and dots[1] < dots[2] < dots[3], dots
    for d, share in zip(densities[1:], dots[1:]):       # the body is 64 of a figure's 100 pixels
        assert 0.25 * 0.64 * d < share <= 0.64 * d, (d, share)   # dots side by side are not isolated


@pytest.mark.parametrize("connectivity", [4, 8])
def test_speckle_grows_with_the_noise(connectivity):
    """The same noise field at growing strength on a flat figure: speckle never falls, and goes from 0 to most pixels."""
    base = flat_figure(n=3).astype(np.float64)
    noise = np.random.default_rng(1).standard_normal(base.shape)
    shares = [speckle.isolated_share(np.clip(base + s * noise, 0, 255).round().astype(np.uint8),
                                     connectivity=connectivity).mean() for s in (0, 5, 10, 20, 40, 80)]
    assert shares[0] == 0 and shares[-1] > 0.5, shares
    assert all(b >= a for a, b in zip(shares, shares[1:])), shares


def test_the_fast_count_is_the_pixel_loop():
    rng = np.random.default_rng(2)
    u = flat_figure(n=3)
    u[:, ::3, ::2] = rng.integers(0, 256, (3, 6, 8, 3))             # stray pixels, on the edge too
    for connectivity in (4, 8):
        np.testing.assert_array_equal(speckle.isolated_share(u, connectivity=connectivity),
                                      speckle.isolated_share_reference(u, connectivity=connectivity))


def test_a_checkerboard_is_speckle_to_4_neighbours_and_not_to_8():
    """The documented blind spot: diagonal neighbours of a dither share its colour."""
    u = np.full((1, 8, 8, 3), 255, np.uint8)
    u[0, (np.add.outer(np.arange(8), np.arange(8)) % 2) == 0] = (200, 0, 0)
    u[0, (np.add.outer(np.arange(8), np.arange(8)) % 2) == 1] = (0, 0, 200)
    assert speckle.isolated_share(u, connectivity=4)[0] == 1.0
    assert speckle.isolated_share(u, connectivity=8)[0] == 0.0


def test_grid_tiles_reads_back_make_grid_at_scale_2(tmp_path):
    from PIL import Image

    from tinygan.images import from_uint8, make_grid, save_png
    u = np.random.default_rng(3).integers(0, 256, (64, 32, 32, 3)).astype(np.uint8)
    save_png(make_grid(from_uint8(u)), str(tmp_path / "g.png"), 2)
    np.testing.assert_array_equal(speckle.grid_tiles(np.asarray(Image.open(tmp_path / "g.png"))), u)
    with pytest.raises(ValueError, match="not a 8x8 grid"):
        speckle.grid_tiles(np.zeros((100, 100, 3), np.uint8))


@pytest.mark.data
@pytest.mark.skipif(not glob.glob(os.path.join(REFERENCE, "*.png")), reason="../shared/quality-reference absent")
def test_the_reference_grids_in_the_order_a_person_gives():
    """quality-reference/README.md: real; the two 20,000-step DiffAugment grids; the three 5,040-step
    grids; the paper recipe at 20,000 (colour noise). Speckle and colours keep those tiers apart."""
    from PIL import Image
    tiers = [["real_sprites"], ["tinygan_sprites_20160", "pytorch_diffaugment_20000"],
             ["pytorch_paper_5040", "tinygan_demo_5040", "pytorch_diffaugment_5040"], ["pytorch_paper_20000"]]
    scores = {name: speckle.speckle_scores(speckle.grid_tiles(np.asarray(Image.open(
        os.path.join(REFERENCE, name + ".png")).convert("RGB")))) for tier in tiers for name in tier}
    for key in ("speckle", "colours"):
        for better, worse in zip(tiers, tiers[1:]):
            assert max(scores[n][key] for n in better) < min(scores[n][key] for n in worse), (key, scores)
