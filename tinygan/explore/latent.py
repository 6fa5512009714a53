"""Walking in the latent space (DCGAN paper, section 6.1): interpolate between points z.

Notation: Z the latent size; a, b points of shape (Z,); t ∈ [0, 1] the position between them;
T the number of frames; k the number of points a walk visits.

    lerp(a, b, t)  = (1 − t)·a + t·b                                   the straight line
    slerp(a, b, t) = sin((1 − t)·Ω)/sin Ω · a + sin(t·Ω)/sin Ω · b       the great circle,
                     Ω = arccos(â·b̂), the angle between a and b

Why slerp: z ~ N(0, I) in Z = 100 dimensions lies almost surely near the sphere of radius
√Z, and the midpoint of a straight line between two such points has norm about √(Z/2): it
cuts through a region G never saw in training. Slerp keeps to the sphere — for unit a and b
every slerp(a, b, t) is a unit vector — so each frame is a typical z (White 2016,
"Sampling Generative Networks").
"""
import numpy as np


def lerp(a, b, t):
    """(1 − t)·a + t·b. a, b: (Z,); t: a number or (T,) → (Z,) or (T, Z)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    return (1 - t) * a + t * b


def slerp(a, b, t, eps=1e-7):
    """Spherical interpolation from a (t = 0) to b (t = 1). a, b: (Z,); t: a number or (T,).

    Ω = arccos(â·b̂). When a and b are (anti)parallel, sin Ω ≈ 0 and the formula is 0/0:
    parallel vectors fall back to lerp (the great circle is the line), antiparallel ones
    have no unique great circle and raise.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    so = np.sin(omega)
    if so < eps:
        if cos > 0:
            return lerp(a, b, t)
        raise ValueError("slerp: a and b point in opposite directions; the great circle between them is not unique")
    t = np.asarray(t, dtype=np.float64)[..., None]
    return np.sin((1 - t) * omega) / so * a + np.sin(t * omega) / so * b


INTERPOLATORS = {"lerp": lerp, "slerp": slerp}


def interpolate(a, b, steps, method="slerp"):
    """``steps`` evenly spaced frames from a to b, both ends included: (steps, Z)."""
    if steps < 2:
        raise ValueError(f"interpolate: need at least 2 steps (the two ends), got {steps}")
    if method not in INTERPOLATORS:
        raise ValueError(f"interpolate: method must be one of {', '.join(INTERPOLATORS)}, got {method!r}")
    return INTERPOLATORS[method](a, b, np.linspace(0.0, 1.0, steps))


def walk(points, steps, method="slerp"):
    """A walk through k points: row i goes from points[i] to points[i + 1]. (k, Z) → (k − 1, steps, Z).

    The last frame of row i is the first frame of row i + 1, so the rows read as one path;
    the paper's figure 4 shows such rows (there between 9 random points).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"walk: expected points of shape (k, Z) with k >= 2, got {points.shape}")
    return np.stack([interpolate(points[i], points[i + 1], steps, method) for i in range(len(points) - 1)])


def walk_frames(rows):
    """The rows of ``walk`` as one sequence of frames without the repeated joints: ((k−1)·(steps−1) + 1, Z)."""
    frames = [rows[0]] + [r[1:] for r in rows[1:]]
    return np.concatenate(frames)
