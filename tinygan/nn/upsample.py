"""Upsample: nearest-neighbour enlargement by an integer factor, and its backward.

Notation: N batch, C channels, (H, W) input size, s the scale factor, (s·H, s·W) output size.

    forward   y[n, c, i, j] = x[n, c, ⌊i/s⌋, ⌊j/s⌋]           every pixel becomes an s×s block
    backward  dx[n, c, h, w] = Σ_{a, b < s} dy[n, c, s·h + a, s·w + b]
                                                             each input pixel was copied to s·s
                                                             outputs, so their gradients add

Followed by a stride-1 Conv2d this is the "resize-convolution" that Odena, Dumoulin & Olah
(2016, "Deconvolution and Checkerboard Artifacts") recommend instead of a stride-2
transposed convolution: every output pixel is computed by the same kernel taps, so no
2×2-periodic pattern is built into the layer. It has no parameters.
"""
from ..backend import get_array_module
from .module import Module, check_cache


class Upsample(Module):
    """(N, C, H, W) → (N, C, s·H, s·W) by repeating each pixel s×s times (PyTorch's ``nn.Upsample``).

    Fast path: view the output as (N, C, H, s, W, s); forward broadcasts x into it, backward
    sums the two s-axes. The plain loop is ``upsample_nearest_reference``.
    """

    def __init__(self, scale_factor=2, mode="nearest"):
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is implemented, got {mode!r}")
        if int(scale_factor) != scale_factor or scale_factor < 1:
            raise ValueError(f"Upsample: scale_factor must be a positive integer, got {scale_factor}")
        self.scale_factor, self.mode = int(scale_factor), mode

    def extra_repr(self):
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"

    def forward(self, x):
        if getattr(x, "ndim", None) != 4:
            raise ValueError(f"Upsample: expected input of shape (N, C, H, W), got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        xp = get_array_module(x)
        N, C, H, W = x.shape
        s = self.scale_factor
        y = xp.broadcast_to(x.reshape(N, C, H, 1, W, 1), (N, C, H, s, W, s))
        self.out_shape = (N, C, H * s, W * s)
        return xp.ascontiguousarray(y).reshape(self.out_shape)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, C, sH, sW = dout.shape
        s = self.scale_factor
        return dout.reshape(N, C, sH // s, s, sW // s, s).sum(axis=(3, 5))


def upsample_nearest_reference(x, s):
    """Loop version of the forward: y[n, c, i, j] = x[n, c, i // s, j // s]."""
    import numpy as np
    x = np.asarray(x)
    N, C, H, W = x.shape
    y = np.zeros((N, C, H * s, W * s), dtype=x.dtype)
    for i in range(H * s):
        for j in range(W * s):
            y[:, :, i, j] = x[:, :, i // s, j // s]
    return y
