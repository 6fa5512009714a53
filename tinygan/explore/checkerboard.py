"""Checkerboard artifacts of transposed convolutions (Odena, Dumoulin & Olah 2016).

Notation: K kernel, s stride, p padding; a 1-D input of length n, output length
(n − 1)·s − 2p + K. A transposed convolution scatters every input pixel i into the K output
pixels o = i·s − p + k, k = 0…K−1 (the index arithmetic of ``nn.im2col``).

Overlap. How many input pixels reach output pixel o is the number of k with
(o + p − k) divisible by s and 0 ≤ (o + p − k)/s < n. Away from the edges that is
⌈K/s⌉ or ⌊K/s⌋ depending on o mod s:

    K = 3, s = 2:  1, 2, 1, 2, …  per axis  →  a 2×2 pattern 1 2 / 2 4 in 2-D: uneven
    K = 4, s = 2:  2, 2, 2, 2, …            →  4 everywhere inside: even (K divisible by s),
                                               only the border rows and columns get less (2, corners 1)
    K = 5, s = 2:  3, 2, 3, 2, …            →  9 6 / 6 4

So DCGAN's k4 s2 has no uneven overlap. It still draws checkerboards: even and odd output
pixels are made by DIFFERENT kernel taps (o + p − k even: k ∈ {1, 3} for even o, {0, 2}
for odd o when p = 1), four separate 2×2 sub-kernels in 2-D. Fed a constant input, a
learned or random k4 s2 layer gives a 2×2-periodic output unless the four sub-kernels happen
to sum alike. Upsample(2) + Conv2d(k3 s1 p1) computes every output pixel with the same 3×3
taps over a nearest-upsampled (locally constant) input: constant in, constant out inside.
"""
import numpy as np

from .. import backend
from ..nn import Conv2d, ConvTranspose2d, Sequential, Upsample


def overlap_count(kernel_size=4, stride=2, padding=1, in_size=8):
    """How many input pixels a ConvTranspose2d(k, s, p) adds into each output pixel: (OH, OW) integers.

    Computed with the layer itself: all-ones 1×1-channel weight, all-ones input.
    """
    layer = ConvTranspose2d(1, 1, kernel_size, stride, padding, bias=False)
    layer.weight.data[...] = 1
    return np.rint(constant_response(layer, in_size)).astype(np.int64)


def overlap_count_reference(kernel_size, stride, padding, in_size):
    """Loop version: count[o_y, o_x] = #{(i, k) : o = i·s − p + k} per axis, multiplied (the 2-D count is a product)."""
    out = (in_size - 1) * stride - 2 * padding + kernel_size
    per_axis = np.zeros(out, dtype=np.int64)
    for i in range(in_size):
        for k in range(kernel_size):
            o = i * stride - padding + k
            if 0 <= o < out:
                per_axis[o] += 1
    return np.outer(per_axis, per_axis)


def constant_response(layer, in_size=8, channels=1, value=1.0):
    """The first output channel of ``layer`` fed a constant (1, channels, in_size, in_size) input: (OH, OW),
    a NumPy array whichever backend the layer is on."""
    w = next(iter(layer.parameters())).data
    x = backend.get_array_module(w).full((1, channels, in_size, in_size), value, dtype=w.dtype)
    return backend.to_numpy(layer(x)[0, 0])


def transpose_layer(channels=1, seed=0):
    """A ConvTranspose2d(k4 s2 p1) with N(0, 1) weights: DCGAN's ×2 step."""
    layer = ConvTranspose2d(channels, 1, 4, 2, 1, bias=False)
    layer.weight.data[...] = np.random.default_rng(seed).standard_normal(layer.weight.shape)
    return layer


def resize_conv_layer(channels=1, seed=0):
    """Upsample(2) + Conv2d(k3 s1 p1) with N(0, 1) weights: the ×2 step of ``Generator(upsample='nearest')``."""
    conv = Conv2d(channels, 1, 3, 1, 1, bias=False)
    conv.weight.data[...] = np.random.default_rng(seed).standard_normal(conv.weight.shape)
    return Sequential(Upsample(2), conv)


def phase_spread(response, border=2):
    """How 2×2-periodic an (OH, OW) response is: (max − min of the four phase means) / mean |value|.

    The interior (``border`` pixels in from each edge) is split into its four phases
    (even/odd row × even/odd column); a flat response gives 0, a checkerboard a large value.
    """
    inner = np.asarray(response, dtype=np.float64)[border:-border, border:-border]
    phases = [inner[i::2, j::2].mean() for i in range(2) for j in range(2)]
    scale = np.abs(inner).mean()
    return float(np.ptp(phases) / scale) if scale > 0 else 0.0
