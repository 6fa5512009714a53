"""im2col and col2im: turning a convolution into one matrix product, and back.

Notation used throughout tinygan.nn:
    N batch, C channels, H, W input height and width,
    K kernel size (square), s stride, p zero padding,
    OH, OW output height and width.

A convolution output pixel (n, o, oy, ox) reads the K×K window of the padded input whose
top-left corner is (oy·s, ox·s). In unpadded coordinates the input row it reads at
kernel row ky is

    y = oy·s − p + ky          (and likewise x = ox·s − p + kx)

``im2col`` copies every window into one row of a matrix ``cols`` of shape
(N·OH·OW, C·K·K); a convolution is then ``cols @ weight.reshape(O, C·K·K).T``.
``col2im`` is its adjoint: it adds every row of such a matrix back into the window it
came from, so pixels shared by overlapping windows ACCUMULATE. It is both the input
gradient of a convolution and the forward pass of a transposed convolution.

This module is the textbook: the two operations on (N, C, H, W) arrays, one slice per
kernel offset, and below them the same index arithmetic as plain loops (``*_reference``,
which the tests compare against). The layers run the same operations in a faster memory
layout: ``layout.py``.
"""
import numpy as np

from ..backend import get_array_module


def conv_out_size(size, k, s, p):
    """Output length of a convolution: floor((size + 2p − k) / s) + 1 (as PyTorch's Conv2d)."""
    return (size + 2 * p - k) // s + 1


def deconv_out_size(size, k, s, p, output_padding=0):
    """Output length of a transposed convolution: (size − 1)·s − 2p + k + output_padding.

    The inverse of ``conv_out_size`` where the convolution's division is exact.
    """
    return (size - 1) * s - 2 * p + k + output_padding


def im2col(x, k, s, p):
    """(N, C, H, W) -> cols (N·OH·OW, C·K·K); row (n, oy, ox) is the window of output pixel (oy, ox).

    For each kernel offset (ky, kx), the inputs that offset reads for every output pixel
    at once are one strided slice of the padded input, x_pad[:, :, ky::s, kx::s] (OH×OW of
    it): K·K slices fill the whole matrix.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = xp.empty((N, C, k, k, OH, OW), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, ky, kx] = x_pad[:, :, ky:ky + s * OH:s, kx:kx + s * OW:s]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, C * k * k)


def col2im(cols, x_shape, k, s, p):
    """cols (N·OH·OW, C·K·K) -> (N, C, H, W), adding each row back into its window.

    The adjoint of ``im2col``: the same K·K slices, each ADDED into (overlapping windows
    sum), then the padding cut away.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = cols.reshape(N, OH, OW, C, k, k).transpose(0, 3, 4, 5, 1, 2)     # (N, C, K, K, OH, OW)
    x_pad = xp.zeros((N, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    for ky in range(k):
        for kx in range(k):
            x_pad[:, :, ky:ky + s * OH:s, kx:kx + s * OW:s] += cols[:, :, ky, kx]
    return x_pad[:, :, p:p + H, p:p + W]


# ----- the slow twins: the index arithmetic written out, for reading and for tests -----

def im2col_reference(x, k, s, p):
    """Loop version of ``im2col``: cols[(n, oy, ox), (c, ky, kx)] = x[n, c, oy·s−p+ky, ox·s−p+kx] (0 outside)."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = np.zeros((N, OH, OW, C, k, k), dtype=x.dtype)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    for ky in range(k):
                        for kx in range(k):
                            y, xx = oy * s - p + ky, ox * s - p + kx
                            if 0 <= y < H and 0 <= xx < W:
                                cols[n, oy, ox, c, ky, kx] = x[n, c, y, xx]
    return cols.reshape(N * OH * OW, C * k * k)


def col2im_reference(cols, x_shape, k, s, p):
    """Loop version of ``col2im``: x[n, c, oy·s−p+ky, ox·s−p+kx] += cols[(n, oy, ox), (c, ky, kx)]."""
    N, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = np.asarray(cols).reshape(N, OH, OW, C, k, k)
    x = np.zeros(x_shape, dtype=cols.dtype)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    for ky in range(k):
                        for kx in range(k):
                            y, xx = oy * s - p + ky, ox * s - p + kx
                            if 0 <= y < H and 0 <= xx < W:
                                x[n, c, y, xx] += cols[n, oy, ox, c, ky, kx]
    return x
