"""Differentiable augmentation (DiffAugment, Zhao et al. 2020): D never sees an image unaugmented.

Why. With ~1,300 sprites, D memorises the training set: after a few thousand steps it tells
every real sprite from every fake one, its gradient stops teaching G, and the samples turn
to noise. DiffAugment shows D only randomly changed images — real ones AND fake ones, in
D's step and in G's — so memorising a sprite stops paying off. Because G is trained
through the augmentation, every augmentation must be differentiable: G receives
dL/dx = Tᵀ(dL/dT(x)), which is what the backward passes below compute.

Notation: N batch, C channels (3), H×W the image; one random number per image (r_n).
Images are in [-1, 1]; the output is not clipped (the original does not clip either).

    colour       brightness   y = x + b_n,                 b_n ~ U[-½, ½)
                 saturation   y = s_n·x + (1 − s_n)·mean_c(x),          s_n ~ U[0, 2)
                 contrast     y = k_n·x + (1 − k_n)·mean_chw(x),        k_n ~ U[½, 3/2)
    translation  y[n,c,i,j] = x[n,c,i+t_n,j+u_n], 0 where that falls outside;
                 t_n, u_n integers in [−S, S], S = round(H/8)
    cutout       y = x·m_n, m_n zero on one square of side round(H/2) at a random centre
                 (clipped by the image edge), one elsewhere

Backward, each the transpose of its (linear) map:
    brightness   dx = dy
    saturation   dx = s_n·dy + (1 − s_n)·mean_c(dy)        (mean over channels, broadcast back)
    contrast     dx = k_n·dy + (1 − k_n)·mean_chw(dy)
    translation  dx = dy shifted by (−t_n, −u_n), zero fill: the inverse shift
    cutout       dx = dy·m_n

The random numbers are drawn on the host from the ``rng`` the augmentation is given (the
training run passes its own, so a checkpoint's rng state covers them too) and copied to
the device: a few numbers per image.

Applied with a probability (``DiffAugment(p=…)``, StyleGAN2-ADA's way; p = 1, the default,
is the original): each map above is applied to image n only where a fresh r_n ~ U[0, 1)
is below p, and is the identity elsewhere (b_n = 0, s_n = k_n = 1, t_n = u_n = 0, m_n = 1),
so every backward above holds unchanged. ADA adjusts p while training (``dcgan.AdaptiveAugment``).

Horizontal flip (``RandomFlip``, for the real images only: a small set doubled):
    y[n,c,i,j] = x[n,c,i,W−1−j] where f_n = 1, else x;   dx = the same flip of dy (a flip is its own
    inverse and its own transpose)
"""
import numpy as np

from ..backend import get_array_module
from .module import Module, check_cache

POLICIES = ("color", "translation", "cutout")


class Brightness(Module):
    """y = x + b_n;  dx = dy.   b (N,) per-image offsets."""

    def __init__(self, b):
        self.b = b

    def forward(self, x):
        return x + _per_image(self.b, x)

    def backward(self, dout):
        return dout.copy()


class Saturation(Module):
    """y = s_n·x + (1 − s_n)·mean_c(x);  dx = s_n·dy + (1 − s_n)·mean_c(dy).   s (N,)."""

    def __init__(self, s):
        self.s = s

    def forward(self, x):
        return _blend_with_mean(x, _per_image(self.s, x), axis=1)

    def backward(self, dout):
        return _blend_with_mean(dout, _per_image(self.s, dout), axis=1)     # the map is symmetric


class Contrast(Module):
    """y = k_n·x + (1 − k_n)·mean_chw(x);  dx = k_n·dy + (1 − k_n)·mean_chw(dy).   k (N,)."""

    def __init__(self, k):
        self.k = k

    def forward(self, x):
        return _blend_with_mean(x, _per_image(self.k, x), axis=(1, 2, 3))

    def backward(self, dout):
        return _blend_with_mean(dout, _per_image(self.k, dout), axis=(1, 2, 3))


def _blend_with_mean(x, f, axis):
    """f·x + (1 − f)·mean(x over ``axis``): a symmetric linear map of x, so it is its own transpose.

    (Each output mixes x with a mean that every input of the group enters with weight 1/n;
    the matrix is f·I + (1 − f)·J/n, J all ones, which equals its transpose.)
    """
    return f * x + (1 - f) * x.mean(axis=axis, keepdims=True)


class Translate(Module):
    """y[n,c,i,j] = x[n,c,i+t_n,j+u_n] (0 outside);  dx = dy translated by (−t_n, −u_n).

    t, u (N,) integer shifts with |t|, |u| ≤ ``pad``. The loop over single pixels is
    ``translate_reference``; ``shift`` moves whole images.
    """

    def __init__(self, t, u, pad):
        self.t, self.u, self.pad = t, u, pad

    def forward(self, x):
        self.out_shape = x.shape
        return shift(x, self.t, self.u, self.pad)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        return shift(dout, -self.t, -self.u, self.pad)


def shift(x, t, u, pad):
    """out[n,c,i,j] = x[n,c,i+t_n,j+u_n], zero where i+t_n or j+u_n falls outside the image.

    NumPy: one slice copy per image (the rectangle that stays inside moves; memcpy speed).
    CuPy: that loop would be N kernel launches, so ``shift_gather`` does it in one.
    """
    xp = get_array_module(x)
    if xp is not np:
        return shift_gather(x, t, u, pad)
    N, C, H, W = x.shape
    out = np.zeros_like(x)
    for n in range(N):
        a, b = int(t[n]), int(u[n])
        out[n, :, max(0, -a):H - max(0, a), max(0, -b):W - max(0, b)] = \
            x[n, :, max(0, a):H - max(0, -a), max(0, b):W - max(0, -b)]
    return out


def shift_gather(x, t, u, pad):
    """``shift`` as one gather: pad x with ``pad`` zeros on each side, then read every output
    pixel from its flat position in the padded array (t, u on the device, |t|, |u| ≤ pad)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    padded = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))               # (N, C, Hp, Wp)
    start = xp.arange(N) * (C * Hp * Wp) + (t + pad) * Wp + (u + pad)            # where image n's (0, 0) is read
    where = (start.reshape(N, 1, 1, 1) + (xp.arange(C) * (Hp * Wp)).reshape(1, C, 1, 1)
             + (xp.arange(H) * Wp).reshape(1, 1, H, 1) + xp.arange(W).reshape(1, 1, 1, W))
    return padded.ravel().take(where)


def translate_reference(x, t, u):
    """Loop version of ``shift``: one image and one output pixel at a time."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    y = np.zeros_like(x)
    for n in range(N):
        for i in range(H):
            for j in range(W):
                a, b = i + int(t[n]), j + int(u[n])
                if 0 <= a < H and 0 <= b < W:
                    y[n, :, i, j] = x[n, :, a, b]
    return y


class Cutout(Module):
    """y = x·m;  dx = dy·m.   m (N, 1, H, W) of zeros and ones (``cutout_mask``)."""

    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def cutout_mask(cy, cx, size, H, W, xp):
    """(N, 1, H, W): 0 on rows [cy_n − size//2, cy_n − size//2 + size) × the same for columns, else 1."""
    N = len(cy)
    top, left = (cy - size // 2).reshape(N, 1, 1, 1), (cx - size // 2).reshape(N, 1, 1, 1)
    i, j = xp.arange(H).reshape(1, 1, H, 1), xp.arange(W).reshape(1, 1, 1, W)
    inside = (i >= top) & (i < top + size) & (j >= left) & (j < left + size)
    return 1 - inside


class HorizontalFlip(Module):
    """y = x mirrored left-right in the images where ``flip`` (N,) is true;  dx = dy mirrored the same way."""

    def __init__(self, flip):
        self.flip = flip

    def forward(self, x):
        return mirror(x, self.flip)

    def backward(self, dout):
        return mirror(dout, self.flip)                      # a flip is its own transpose


def mirror(x, flip):
    """x (N, C, H, W) with the images where ``flip`` (N,) is true reversed along W (a new array)."""
    return get_array_module(x).where(flip.reshape(len(flip), 1, 1, 1), x[..., ::-1], x)


class RandomFlip(Module):
    """Each image mirrored left-right with probability ``p`` (fresh draws from ``rng`` each call)."""

    def __init__(self, p=0.5, rng=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomFlip: p must be in [0, 1], got {p}")
        self.p, self.rng = p, rng if rng is not None else np.random.default_rng(0)
        self.op = None

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        xp = get_array_module(x)
        self.op = HorizontalFlip(xp.asarray(self.rng.random(len(x)) < self.p))
        return self.op(x)

    def backward(self, dout):
        return self.op.backward(dout)


class DiffAugment(Module):
    """The augmentations of ``policy`` ('color,translation,cutout'), fresh random numbers each call.

    ``forward(x)`` draws this call's numbers, keeps the chain of fixed maps it built in
    ``self.ops`` and applies them in order; ``backward(dy)`` applies their transposes in the
    reverse order. A training step augments each batch separately (the real one, the fake
    one for D, the fake one again for G), and only G's needs a backward. ``replay=True``
    makes forward reuse the last numbers (for gradient checks). ``p`` < 1: each map is applied to
    each image with probability p (module docstring); ``p`` may be changed between calls.
    """

    def __init__(self, policy="color,translation,cutout", rng=None, translation=0.125, cutout=0.5, p=1.0):
        self.policy = [p for p in policy.split(",") if p] if isinstance(policy, str) else list(policy)
        unknown = [p for p in self.policy if p not in POLICIES]
        if unknown:
            raise ValueError(f"DiffAugment: unknown policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.translation, self.cutout = translation, cutout
        self.p = p
        self.ops, self.replay = None, False

    def extra_repr(self):
        p = f", p={self.p}" if self.p != 1 else ""
        return f"policy={','.join(self.policy)!r}, translation={self.translation}, cutout={self.cutout}{p}"

    def draw(self, shape, xp, dtype):
        """The chain of fixed maps for one batch of ``shape`` (N, C, H, W)."""
        if self.p < 1:
            return self.draw_with_probability(shape, xp, dtype)
        N, _, H, W = shape
        r, ops = self.rng, []
        host = lambda a: xp.asarray(a.astype(dtype) if a.dtype.kind == "f" else a)    # noqa: E731
        if "color" in self.policy:
            ops += [Brightness(host(r.random(N) - 0.5)), Saturation(host(r.random(N) * 2)),
                    Contrast(host(r.random(N) + 0.5))]
        if "translation" in self.policy:
            S = int(H * self.translation + 0.5)
            ops.append(Translate(host(r.integers(-S, S + 1, N)), host(r.integers(-S, S + 1, N)), S))
        if "cutout" in self.policy:
            size = int(H * self.cutout + 0.5)
            cy, cx = r.integers(0, H + 1 - size % 2, N), r.integers(0, W + 1 - size % 2, N)
            ops.append(Cutout(cutout_mask(host(cy), host(cx), size, H, W, xp).astype(dtype)))
        return ops

    def draw_with_probability(self, shape, xp, dtype):
        """``draw``'s maps, each made the identity for the images whose fresh U[0, 1) draw is ≥ p.

        The maps' numbers are drawn as in ``draw`` (one op at a time), then one 'apply?' draw
        per map and image; an image left out gets the map's identity numbers.
        """
        N, _, H, W = shape
        r, ops = self.rng, []
        host = lambda a: xp.asarray(a.astype(dtype) if a.dtype.kind == "f" else a)    # noqa: E731
        on = lambda: r.random(N) < self.p                                              # noqa: E731
        if "color" in self.policy:
            b, s, k = r.random(N) - 0.5, r.random(N) * 2, r.random(N) + 0.5
            ops += [Brightness(host(np.where(on(), b, 0.0))), Saturation(host(np.where(on(), s, 1.0))),
                    Contrast(host(np.where(on(), k, 1.0)))]
        if "translation" in self.policy:
            S = int(H * self.translation + 0.5)
            t, u = r.integers(-S, S + 1, N), r.integers(-S, S + 1, N)
            keep = on()
            ops.append(Translate(host(t * keep), host(u * keep), S))
        if "cutout" in self.policy:
            size = int(H * self.cutout + 0.5)
            cy, cx = r.integers(0, H + 1 - size % 2, N), r.integers(0, W + 1 - size % 2, N)
            hole = 1 - cutout_mask(host(cy), host(cx), size, H, W, xp)                # 1 inside the square
            ops.append(Cutout((1 - hole * host(on().astype(np.int64)).reshape(N, 1, 1, 1)).astype(dtype)))
        return ops

    def forward(self, x):
        if getattr(x, "ndim", None) != 4:
            raise ValueError(f"DiffAugment: expected images of shape (N, C, H, W), got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        if not (self.replay and self.ops is not None):
            self.ops = self.draw(x.shape, get_array_module(x), x.dtype)
        self.out_shape = x.shape
        for op in self.ops:
            x = op(x)
        return x

    def backward(self, dout):
        check_cache(self, dout, getattr(self, "out_shape", None))
        for op in reversed(self.ops):
            dout = op.backward(dout)
        return dout


def _per_image(v, x):
    """(N,) → (N, 1, 1, 1), to scale or shift each image of x by its own number."""
    return v.reshape(len(v), 1, 1, 1).astype(x.dtype, copy=False)
