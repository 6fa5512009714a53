"""Exercise 2 of 10: col2im, adding every row back into its window.

Read first: docs/tour.md stop 3; tinygan/nn/im2col.py.
Check:  python -m tinygan.exercises check col2im
Train:  python -m tinygan.exercises train col2im    (yours in every transposed convolution
        and every convolution's input gradient of a DCGAN)

Notation as in exercise 1: cols (N·OH·OW, C·K·K), rows ordered (n, oy, ox), columns (c, ky, kx).

col2im is the adjoint of im2col: ⟨im2col(x), R⟩ = ⟨x, col2im(R)⟩ for every x and R. Every
number of row (n, oy, ox), column (c, ky, kx) goes back to the input pixel it came from,
and pixels shared by overlapping windows ADD UP:

    x_pad[n, c, oy·s + ky, ox·s + kx] += cols[(n·OH + oy)·OW + ox, (c·K + ky)·K + kx]

then the padding is cut away: x = x_pad[:, :, p:p + H, p:p + W].

Hints
- Reshape cols to (N, OH, OW, C, K, K) and move the axes to (N, C, K, K, OH, OW); then for
  each offset (ky, kx), ADD cols[:, :, ky, kx] into x_pad[:, :, ky:ky + s·OH:s, kx:kx + s·OW:s].
- With '=' instead of '+=' every window overwrites the ones before it: check says so.

The solution is the library's own code: tinygan/nn/im2col.py, ``col2im``.
"""
import numpy as np

from tinygan.nn import conv_out_size


def col2im(cols, x_shape, k, s, p):
    """cols (N·OH·OW, C·K·K) -> x (N, C, H, W) = x_shape, each row added back into its window."""
    N, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    raise NotImplementedError("col2im: add each row of cols into x_pad, then cut the padding away")
