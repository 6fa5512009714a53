"""Vector arithmetic on z (DCGAN paper, section 6.3): "smiling woman − neutral woman + neutral man".

Notation: Z the latent size; z (M, Z) a numbered set of latent points (the exemplars are
picked from the grid G(z) by index); A, B, C three concepts, each given by 3 indices.

    ā = mean(z[iA]),  b̄ = mean(z[iB]),  c̄ = mean(z[iC])          (3 exemplars per concept)
    y = ā − b̄ + c̄                                              the arithmetic
    y_j = y + u_j,  u_j ~ U(−0.25, 0.25)^Z,  j = 1…8             neighbours, "to show the
                                                                 result is stable"
The paper found single exemplars unstable and averages of three consistent. It also shows
the same sum done on pixels, x̄_A − x̄_B + x̄_C with x̄ the mean image of each concept,
which gives a ghostly overlay rather than a new object: the structure lives in z.
"""
import numpy as np


def concept_mean(z, indices):
    """Mean of z[indices] over the exemplars. z: (M, Z) → (Z,)."""
    indices = np.asarray(indices, dtype=int)
    if indices.ndim != 1 or len(indices) == 0:
        raise ValueError(f"concept_mean: expected a non-empty list of indices, got {indices.tolist()}")
    if indices.min() < 0 or indices.max() >= len(z):
        raise ValueError(f"concept_mean: index out of range 0..{len(z) - 1}: {indices.tolist()}")
    return np.asarray(z, dtype=np.float64)[indices].mean(axis=0)


def z_arithmetic(z, a, b, c):
    """y = mean(z[a]) − mean(z[b]) + mean(z[c]). Returns (y, (ā, b̄, c̄)), each (Z,)."""
    means = tuple(concept_mean(z, idx) for idx in (a, b, c))
    return means[0] - means[1] + means[2], means


def neighbours(y, n=8, scale=0.25, rng=None):
    """y and n noisy copies y + U(−scale, scale)^Z: (n + 1, Z), row 0 is y itself."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    y = np.asarray(y, dtype=np.float64)
    return np.concatenate([y[None], y + rng.uniform(-scale, scale, size=(n, y.shape[-1]))])


def pixel_arithmetic(images, a, b, c):
    """The same sum on pixels: mean(x[a]) − mean(x[b]) + mean(x[c]), clipped to [-1, 1]. (M, 3, H, W) → (3, H, W)."""
    x = np.asarray(images, dtype=np.float64)
    return np.clip(x[list(a)].mean(0) - x[list(b)].mean(0) + x[list(c)].mean(0), -1.0, 1.0)
