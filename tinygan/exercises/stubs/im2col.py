"""Exercise 1 of 10: im2col, every window of the input as one row.

Read first: docs/tour.md stop 1; tinygan/nn/im2col.py (its docstring, not yet its code).
Check:  python -m tinygan.exercises check im2col
Train:  python -m tinygan.exercises train im2col    (yours inside every convolution of a DCGAN)

Notation: N batch, C channels, H, W input size, K kernel, s stride, p zero padding,
OH, OW output size, OH = floor((H + 2p − K)/s) + 1  (``conv_out_size``).

Output pixel (oy, ox) reads the K×K window of the padded input whose top-left corner is
(oy·s, ox·s). Row (n, oy, ox) of ``cols`` is that window, its C·K·K numbers in the order
(c, ky, kx), the order of ``weight.reshape(O, C·K·K)``:

    cols[(n·OH + oy)·OW + ox, (c·K + ky)·K + kx] = x_pad[n, c, oy·s + ky, ox·s + kx]

Hints
- np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) pads H and W only.
- For one kernel offset (ky, kx), what every output pixel reads is one strided slice,
  x_pad[:, :, ky:ky + s·OH:s, kx:kx + s·OW:s] of shape (N, C, OH, OW): fill an array
  (N, C, K, K, OH, OW) one offset at a time, then move the axes to (N, OH, OW, C, K, K)
  and reshape. Six nested loops over n, oy, ox, c, ky, kx are slower, and right too.

The solution is the library's own code: tinygan/nn/im2col.py, ``im2col``
(python -m tinygan.exercises solution im2col).
"""
import numpy as np

from tinygan.nn import conv_out_size


def im2col(x, k, s, p):
    """x (N, C, H, W) -> cols (N·OH·OW, C·K·K); row (n, oy, ox) is the window of output pixel (oy, ox)."""
    N, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    raise NotImplementedError("im2col: fill cols (N·OH·OW, C·K·K) from x_pad")
