"""Speckle: numbers for what a person sees first in the samples — stray pixels, too many colours.

Real sprites are drawn with a few flat colour regions and one-pixel outlines; the samples
of a small-data GAN have speckled, many-coloured interiors (issue 26). SWD and KID
(``swd.py``, ``featuremetric.py``) see patch statistics and features; these two numbers
count the complaint itself, on the same uint8 pixels a grid shows.

Notation: N images (N, H, W, 3) uint8 on a white background; a pixel's colour u ∈ 0..255³;
d(u, v) = max over the three channels of |u_c − v_c| (the largest channel difference).

    figure        the pixels whose colour is not near the white background:
                  d(u, white) > ``background_tolerance`` (24 of 255)
    isolated      a figure pixel whose colour differs by more than ``tolerance`` (32 of 255)
                  from every one of its 8 neighbours (those inside the image): a pixel that
                  belongs to no region and to no line
    speckle       the share of a figure's pixels that are isolated, in %, averaged over
                  the images
    colours       the number of distinct colours among a figure's pixels after quantising
                  each channel to ``levels`` (8) levels (u_c·8 // 256), averaged over the images

A flat region scores 0 speckle (each pixel equals its neighbours); so does a one-pixel outline
(each of its pixels has two outline neighbours of its colour); salt-and-pepper noise scores
nearly 100. With 8 neighbours a checkerboard dither scores 0 too (its diagonal neighbours
match): 4 neighbours would count it, but then the real sprites, shrunk to 32 px with Lanczos,
score ~31% against the demo's ~33% and the two barely separate (benchmarks/QUALITY.md, the
speckle section, has the table that chose 8 neighbours, these tolerances and these levels).

``isolated_share_reference`` is the plain loop over pixels and neighbours; ``isolated_share``
does the same with one shifted copy of the image per neighbour.
"""
import numpy as np

NEIGHBOURS_4 = ((-1, 0), (0, -1), (0, 1), (1, 0))
NEIGHBOURS_8 = NEIGHBOURS_4 + ((-1, -1), (-1, 1), (1, -1), (1, 1))
ABSENT = 10 ** 6            # the "difference" to a neighbour outside the image: larger than any colour's


def _pixels(images):
    u = np.asarray(images)
    if u.dtype != np.uint8 or u.ndim != 4 or u.shape[-1] != 3:
        raise ValueError(f"speckle: expected uint8 images (N, H, W, 3), got {u.dtype} {u.shape}")
    return u


def figure_mask(images, background_tolerance=24):
    """(N, H, W) bool: the pixels whose colour differs from white by more than the tolerance in some channel."""
    return (255 - _pixels(images).astype(np.int32)).max(axis=-1) > background_tolerance


def neighbour_differences(images, connectivity=8):
    """(N, H, W, K) int: d(pixel, neighbour) for each of its K = 4 or 8 neighbours; ``ABSENT`` outside the image."""
    if connectivity not in (4, 8):
        raise ValueError(f"speckle: connectivity must be 4 or 8, got {connectivity}")
    u = _pixels(images).astype(np.int32)
    N, H, W, _ = u.shape
    padded = np.pad(u, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-ABSENT)
    offsets = NEIGHBOURS_8 if connectivity == 8 else NEIGHBOURS_4
    return np.stack([np.abs(u - padded[:, 1 + dy:1 + dy + H, 1 + dx:1 + dx + W]).max(axis=-1)
                     for dy, dx in offsets], axis=-1)


def isolated_share(images, tolerance=32, connectivity=8, background_tolerance=24):
    """(N,) float: per image, the share of its figure's pixels that differ by more than ``tolerance``
    from all their neighbours (0 for an image with no figure)."""
    figure = figure_mask(images, background_tolerance)
    isolated = (neighbour_differences(images, connectivity) > tolerance).all(axis=-1) & figure
    return isolated.sum(axis=(1, 2)) / np.maximum(figure.sum(axis=(1, 2)), 1)


def isolated_share_reference(images, tolerance=32, connectivity=8, background_tolerance=24):
    """``isolated_share`` one pixel and one neighbour at a time: the slow twin the tests compare with."""
    u = _pixels(images).astype(np.int64)
    N, H, W, _ = u.shape
    offsets = NEIGHBOURS_8 if connectivity == 8 else NEIGHBOURS_4
    out = np.zeros(N)
    for n in range(N):
        figure = isolated = 0
        for i in range(H):
            for j in range(W):
                if (255 - u[n, i, j]).max() <= background_tolerance:
                    continue                                    # background
                figure += 1
                inside = [(i + dy, j + dx) for dy, dx in offsets if 0 <= i + dy < H and 0 <= j + dx < W]
                if all(np.abs(u[n, i, j] - u[n, a, b]).max() > tolerance for a, b in inside):
                    isolated += 1
        out[n] = isolated / max(figure, 1)
    return out


def colour_count(images, levels=8, background_tolerance=24):
    """(N,) int: per image, the distinct colours of its figure after quantising each channel to ``levels``."""
    figure = figure_mask(images, background_tolerance)
    q = _pixels(images).astype(np.int32) * levels // 256
    code = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
    return np.array([len(np.unique(code[n][figure[n]])) for n in range(len(code))])


def speckle_scores(images):
    """{'speckle': mean isolated share in %, 'speckle_se': its standard error over the images,
    'colours': mean colours per figure}: the two numbers ``benchmarks/quality.py`` reports."""
    share = isolated_share(images)
    return {"speckle": 100.0 * float(share.mean()),
            "speckle_se": 100.0 * float(share.std() / np.sqrt(max(len(share), 1))),
            "colours": float(colour_count(images).mean())}


def grid_tiles(grid, tile=32, padding=2, nrow=8):
    """The (nrow², tile, tile, 3) uint8 images of a square grid PNG as ``images.make_grid`` draws
    it (``padding`` white pixels around each tile) and ``save_png`` enlarges it (any whole scale)."""
    g = np.asarray(grid)
    scale, rest = divmod(g.shape[1], nrow * (tile + padding) + padding)
    if rest or scale < 1 or g.shape[0] != g.shape[1]:
        raise ValueError(f"grid_tiles: a {g.shape[1]}x{g.shape[0]} picture is not a {nrow}x{nrow} grid of "
                         f"{tile}-px tiles with {padding}-px gaps at a whole scale")
    out = []
    for r in range(nrow):
        for c in range(nrow):
            y, x = scale * (padding + r * (tile + padding)), scale * (padding + c * (tile + padding))
            out.append(g[y:y + scale * tile:scale, x:x + scale * tile:scale, :3])
    return np.stack(out).astype(np.uint8)
