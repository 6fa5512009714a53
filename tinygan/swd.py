"""Sliced Wasserstein distance (SWD) between two image sets, as ProGAN measures it (Karras et al. 2018).

A quality metric that needs no downloaded network (FID needs Inception): compare the
distributions of small patches of the two sets, at several scales.

Notation: N images per set, (C, H, W) = (3, S, S); a descriptor is one P×P patch (P = 7)
of one pyramid level, C·P·P = 147 numbers; L levels; R·Q random directions.

1. Laplacian pyramid, from S down to 16 px. With blur = the 5×5 binomial filter
   [1 4 6 4 1]ᵀ[1 4 6 4 1]/256 (mirrored edges),
       down(x) = blur(x)[::2, ::2]
       up(x)   = 4·blur(x with a zero inserted after every pixel)
       g_0 = x,  g_{l+1} = down(g_l),  level l = g_l − up(g_{l+1}),  last level = g_{L−1}
   Each level keeps the detail of one octave; up() of the coarser levels added back gives x.
2. Descriptors: from every image, 128 random P×P patches of each level.
3. Per-channel normalisation, separately for each set: subtract each channel's mean and
   divide by its standard deviation (over all patches and pixels of that set and level).
4. Sliced Wasserstein: project both sets' descriptors on Q random unit directions d;
   along one direction the Wasserstein-1 distance of two equal-size samples is the mean
   |difference| of their SORTED projections; average over the directions and R repeats:
       SWD = mean_d mean_i |sort(A·d)_i − sort(B·d)_i|
5. Report each level ×10³ (ProGAN's tables use these units) and their average.

What it cannot see, by step 3: a set whose colours are all shifted or scaled by the same
per-channel constant (x·a + b per channel) has the same normalised descriptors, so SWD ≈ 0.
A hue change that is not per-channel affine (channels swapped) and wrong textures do show.

Both sets use the same patch positions and the same directions (common random numbers), so
swd(A, A) = 0 exactly and swd(A, B) = swd(B, A). Computed with NumPy on the host, in float32.
"""
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy

BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0     # outer(BINOMIAL, BINOMIAL) = ProGAN's 5×5 filter


def blur(x):
    """The separable 5×5 binomial blur of (N, C, H, W), edges mirrored (d c b | a b c d | c b a)."""
    taps = BINOMIAL.astype(x.dtype)
    p = np.pad(x, ((0, 0), (0, 0), (2, 2), (0, 0)), mode="reflect")
    x = sum(w * p[:, :, k:k + x.shape[2], :] for k, w in enumerate(taps))
    p = np.pad(x, ((0, 0), (0, 0), (0, 0), (2, 2)), mode="reflect")
    return sum(w * p[:, :, :, k:k + x.shape[3]] for k, w in enumerate(taps))


def pyramid_down(x):
    """(N, C, H, W) → (N, C, H/2, W/2): blur, keep every second pixel."""
    return blur(x)[:, :, ::2, ::2]


def pyramid_up(x):
    """(N, C, H, W) → (N, C, 2H, 2W): put zeros between the pixels, blur, ×4 (the zeros took ¾ of the mass)."""
    N, C, H, W = x.shape
    z = np.zeros((N, C, 2 * H, 2 * W), dtype=x.dtype)
    z[:, :, ::2, ::2] = x
    return 4.0 * blur(z)


def num_levels(size, min_resolution=16):
    """How many pyramid levels from ``size`` down to ``min_resolution`` (32 → 2: 32 and 16)."""
    levels, res = 0, size
    while res >= min_resolution:
        levels, res = levels + 1, res // 2
    if levels == 0:
        raise ValueError(f"swd: images of {size}x{size} are smaller than the {min_resolution}-px coarsest level")
    return levels


def laplacian_pyramid(x, levels):
    """[level 0 (finest, H×W), …, level L−1 (the blurred H/2^(L−1) image)] as in the module docstring."""
    pyramid = [np.asarray(x)]
    for _ in range(1, levels):
        pyramid.append(pyramid_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyramid_up(pyramid[-1])
    return pyramid


def reconstruct(pyramid):
    """The inverse of ``laplacian_pyramid``: g_{L−1}, then g_l = level l + up(g_{l+1})."""
    x = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        x = level + pyramid_up(x)
    return x


def patch_positions(n_images, size, patches_per_image, patch_size, rng):
    """Top-left corners (ys, xs), each (N, patches_per_image), uniform over the valid positions."""
    high = size - patch_size + 1
    return (rng.integers(0, high, size=(n_images, patches_per_image)),
            rng.integers(0, high, size=(n_images, patches_per_image)))


def descriptors(level, ys, xs, patch_size=7):
    """Cut the P×P patches at (ys, xs) out of one level: (N, C, S, S) → (N·patches, C, P, P)."""
    windows = np.lib.stride_tricks.sliding_window_view(level, (patch_size, patch_size), axis=(2, 3))
    patches = windows[np.arange(len(level))[:, None], :, ys, xs]     # (N, patches, C, P, P)
    return patches.reshape(-1, *patches.shape[2:])


def normalise(desc):
    """Per channel: subtract the mean, divide by the standard deviation; flatten to (n, C·P·P)."""
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    desc = desc / np.maximum(desc.std(axis=(0, 2, 3), keepdims=True), 1e-8)
    return desc.reshape(len(desc), -1)


def sliced_wasserstein(a, b, dir_repeats=4, dirs_per_repeat=128, rng=None):
    """Mean over R·Q random unit directions of the 1-D Wasserstein-1 distance of the projections.

    a, b: (n, D) descriptors, the same n. Along a direction d the optimal matching of two
    equal-size samples pairs them in sorted order, so W1 = mean_i |sort(a·d)_i − sort(b·d)_i|.
    """
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein: need two descriptor sets of one shape, got {a.shape} and {b.shape}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    results = []
    for _ in range(dir_repeats):
        dirs = rng.standard_normal((a.shape[1], dirs_per_repeat)).astype(a.dtype)
        dirs /= np.sqrt((dirs * dirs).sum(axis=0, keepdims=True))
        pa = np.sort((a @ dirs).T, axis=1)                          # (Q, n), each row sorted
        pb = np.sort((b @ dirs).T, axis=1)
        results.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(results))


@dataclass
class SWDResult:
    resolutions: list         # e.g. [32, 16]
    levels: list              # SWD ×10³ per level, finest first
    mean: float               # their average ×10³

    def __str__(self):
        parts = ", ".join(f"{r}px {v:.1f}" for r, v in zip(self.resolutions, self.levels))
        return f"SWD x1e3: {parts}; average {self.mean:.1f}"


def swd(a, b, patches_per_image=128, patch_size=7, dir_repeats=4, dirs_per_repeat=128,
        min_resolution=16, seed=0):
    """ProGAN's sliced Wasserstein distance between two image sets of the same shape (N, 3, S, S).

    Returns an ``SWDResult`` (×10³, per level and averaged). ``seed`` fixes the patch
    positions and directions, which both sets share: swd(a, a) = 0 and swd(a, b) = swd(b, a).
    Cost: N·patches_per_image descriptors per set and level; N = 256 at 32 px takes a few
    seconds on two cores.
    """
    a = to_numpy(a).astype(np.float32)
    b = to_numpy(b).astype(np.float32)
    if a.shape != b.shape or a.ndim != 4 or a.shape[2] != a.shape[3]:
        raise ValueError(f"swd: need two sets of square images of one shape (N, C, S, S), got {a.shape} and {b.shape}")
    L = num_levels(a.shape[2], min_resolution)
    pa, pb = laplacian_pyramid(a, L), laplacian_pyramid(b, L)
    rng = np.random.default_rng(seed)
    resolutions, values = [], []
    for la, lb in zip(pa, pb):
        ys, xs = patch_positions(len(la), la.shape[2], patches_per_image, patch_size, rng)
        da = normalise(descriptors(la, ys, xs, patch_size))
        db = normalise(descriptors(lb, ys, xs, patch_size))
        values.append(1e3 * sliced_wasserstein(da, db, dir_repeats, dirs_per_repeat, rng))
        resolutions.append(la.shape[2])
    return SWDResult(resolutions, values, float(np.mean(values)))
