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

The layers use the same two operations in a layout chosen for speed, "batch innermost":
an activation is STORED as (C, H, W, N) — channel, row, column, and the N images of the
batch side by side in memory — and the column matrix as its transpose

    colsᵀ (C·K·K, OH·OW·N):   colsᵀ[(c, ky, kx), (oy, ox, n)] = x_pad[c, oy·s + ky, ox·s + kx, n]

Why: a stride-s window slice of an (N, C, H, W) array jumps s elements at a time along
its only contiguous axis (W), so NumPy copies or adds it a few numbers per inner loop; in
(C, H, W, N) every such slice moves whole runs of N contiguous numbers: col2im for the
DCGAN's largest layer went from 222 ms to 32 ms (batch 64, measured on a busy 2-core
machine), im2col about 2× faster. The transposed column matrix also puts the weight on
the left, Y = W2 · colsᵀ, the textbook (O, C·K·K) · (C·K·K, pixels).

Shape is not layout. The layers still take and return arrays of SHAPE (N, C, H, W); they
return them as a transposed view ``chwn_to_nchw(a)`` of (C, H, W, N) memory (strides do
the rest, as PyTorch's ``channels_last`` memory format keeps NCHW shapes over NHWC
memory). NumPy's element-wise operations and reductions keep that layout, so when the
next convolution asks ``as_chwn(x)`` the answer is free: no transpose is ever copied
between two tinygan layers, only at the edges (an (N, C, H, W) batch of images coming in).
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


# ----- batch-innermost layout: what the layers use --------------------------------------

def nchw_to_chwn(x, p=0, out=None):
    """(N, C, H, W) -> (C, H + 2p, W + 2p, N): zero border of width p, the batch innermost.

    ``out``, if given, is filled (interior copied, border zeroed) and returned; that is how
    the layers avoid a fresh allocation and ``np.pad``'s extra copy.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    if out is None:
        out = xp.empty((C, H + 2 * p, W + 2 * p, N), dtype=x.dtype)
    if p:
        out[:, :p] = 0
        out[:, H + p:] = 0
        out[:, p:H + p, :p] = 0
        out[:, p:H + p, W + p:] = 0
    out[:, p:H + p, p:W + p] = x.transpose(1, 2, 3, 0)
    return out


def as_chwn(x):
    """x (N, C, H, W) as a C-contiguous (C, H, W, N) array.

    Free (a view) when x is stored batch-innermost, as every tinygan layer returns it;
    one transposing copy otherwise.
    """
    return get_array_module(x).ascontiguousarray(x.transpose(1, 2, 3, 0))


def chwn_to_nchw(a):
    """(C, H, W, N) -> the same memory seen as shape (N, C, H, W): a view, no copy."""
    return a.transpose(3, 0, 1, 2)


def im2col_chwn(x_pad, k, s, out=None):
    """(C, Hp, Wp, N) already padded -> colsᵀ (C·K·K, OH·OW·N) with OH = (Hp − K)//s + 1.

    colsᵀ[(c, ky, kx), (oy, ox, n)] = x_pad[c, oy·s + ky, ox·s + kx, n]. The right-hand side,
    for all indices at once, is a strided VIEW of x_pad (no data moves); the one copy into
    ``out`` (or a new array) is the whole cost. Plain version: ``im2col_reference``.
    """
    xp = get_array_module(x_pad)
    C, Hp, Wp, N = x_pad.shape
    OH, OW = (Hp - k) // s + 1, (Wp - k) // s + 1
    sC, sH, sW, sN = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(C, k, k, OH, OW, N), strides=(sC, sH, sW, sH * s, sW * s, sN))
    if out is None:
        out = xp.empty((C * k * k, OH * OW * N), dtype=x_pad.dtype)
    out.reshape(C, k, k, OH, OW, N)[...] = windows
    return out


def col2im_chwn(cols, canvas, k, s):
    """Add colsᵀ (C·K·K, OH·OW·N) back into ``canvas`` (C, Hp, Wp, N), zeroed first; returns it.

    canvas[c, oy·s + ky, ox·s + kx, n] += colsᵀ[(c, ky, kx), (oy, ox, n)], overlaps summed.
    One strided-slice addition per kernel offset (ky, kx), K·K in all, each adding a
    (C, OH, OW, N) block whose rows are N contiguous numbers. ``np.add.at`` would be the
    one-liner, tens of times slower. Plain version: ``col2im_reference``.

    The additions run over a few channels at a time (``_CHANNELS_BYTES`` of canvas), so
    that the part of the canvas they add into stays in cache for all K·K of them — a third
    faster on the DCGAN's largest canvas (64 channels of 34×34×64); the loop over channel
    blocks changes which numbers are added in which order not at all.
    """
    C, Hp, Wp, N = canvas.shape
    OH, OW = (Hp - k) // s + 1, (Wp - k) // s + 1
    cols = cols.reshape(C, k, k, OH, OW, N)
    canvas[...] = 0
    step = max(1, _CHANNELS_BYTES // (Hp * Wp * N * canvas.itemsize))
    for c in range(0, C, step):
        part, cols_part = canvas[c:c + step], cols[c:c + step]
        for ky in range(k):
            for kx in range(k):
                part[:, ky:ky + s * OH:s, kx:kx + s * OW:s] += cols_part[:, ky, kx]
    return canvas


_CHANNELS_BYTES = 2 ** 21        # 2 MiB of canvas per block of channels in col2im_chwn


# ----- the classic (N·OH·OW, C·K·K) layout, as the module docstring defines it ------------

def im2col(x, k, s, p):
    """(N, C, H, W) -> cols (N·OH·OW, C·K·K); row (n, oy, ox) is the window of output pixel (oy, ox).

    The batch-innermost ``im2col_chwn`` and one transpose to this layout; the plain
    version is ``im2col_reference``.
    """
    N, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols_t = im2col_chwn(nchw_to_chwn(x, p), k, s)                       # (C·K·K, OH·OW·N)
    return cols_t.reshape(C * k * k, OH, OW, N).transpose(3, 1, 2, 0).reshape(N * OH * OW, C * k * k)


def col2im(cols, x_shape, k, s, p):
    """cols (N·OH·OW, C·K·K) -> (N, C, H, W), adding each row back into its window.

    ``col2im_chwn`` after one transpose from this layout; the plain version is
    ``col2im_reference``.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols_t = cols.reshape(N, OH, OW, C * k * k).transpose(3, 1, 2, 0)   # (C·K·K, OH, OW, N)
    canvas = xp.empty((C, H + 2 * p, W + 2 * p, N), dtype=cols.dtype)
    canvas = col2im_chwn(xp.ascontiguousarray(cols_t), canvas, k, s)
    return chwn_to_nchw(canvas[:, p:p + H, p:p + W])


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
