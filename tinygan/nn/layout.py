"""The batch-innermost layout the layers compute in, and im2col/col2im written for it.

Notation as in ``im2col.py``: N batch, C channels, H, W size, K kernel, s stride, p padding,
OH, OW output size. ``im2col.py`` has the textbook versions of these operations on
(N, C, H, W) arrays; read it first. This module is the same arithmetic in another layout.

An activation is STORED as (C, H, W, N) — channel, row, column, and the N images of the
batch side by side in memory — and the column matrix as the transpose of the textbook one

    colsᵀ (C·K·K, OH·OW·N):   colsᵀ[(c, ky, kx), (oy, ox, n)] = x_pad[c, oy·s + ky, ox·s + kx, n]

Why: a stride-s window slice of an (N, C, H, W) array jumps s elements at a time along its
only contiguous axis (W), so NumPy copies or adds it a few numbers per inner loop; in
(C, H, W, N) every such slice moves whole runs of N contiguous numbers (benchmarks/RESULTS.md
has what that bought). The transposed column matrix also puts the weight on the left,
Y = W2 · colsᵀ, the textbook (O, C·K·K) · (C·K·K, pixels).

Shape is not layout. The layers still take and return arrays of SHAPE (N, C, H, W); they
return them as a transposed view ``chwn_to_nchw(a)`` of (C, H, W, N) memory (strides do
the rest, as PyTorch's ``channels_last`` memory format keeps NCHW shapes over NHWC
memory). NumPy's element-wise operations and reductions keep that layout, so when the
next convolution asks ``as_chwn(x)`` the answer is free: no transpose is ever copied
between two tinygan layers, only at the edges (an (N, C, H, W) batch of images coming in).
"""
import numpy as np

from .. import jit, parallel
from ..backend import get_array_module


def nchw_to_chwn(x, p=0, out=None):
    """(N, C, H, W) -> (C, H + 2p, W + 2p, N): zero border of width p, the batch innermost.

    ``out``, if given, is filled (interior copied, border zeroed) and returned; that is how
    the layers avoid a fresh allocation and ``np.pad``'s extra copy. On NumPy only the four
    border strips are zeroed (less memory traffic); on a GPU the whole array, one launch
    instead of four.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    if out is None:
        out = xp.empty((C, H + 2 * p, W + 2 * p, N), dtype=x.dtype)
    x_chwn = x.transpose(1, 2, 3, 0)                     # a view: free if x is stored batch-innermost

    def fill(lo, hi):                                     # channels lo..hi-1 (parallel.run splits C)
        o = out[lo:hi]
        if p and xp is not np:
            o.fill(0)
        elif p:
            o[:, :p] = 0
            o[:, H + p:] = 0
            o[:, p:H + p, :p] = 0
            o[:, p:H + p, W + p:] = 0
        o[:, p:H + p, p:W + p] = x_chwn[lo:hi]
    parallel.run(fill, C, out.size, xp)
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
    ``out`` (or a new array) is the whole cost. Plain version: ``im2col.im2col``.
    """
    xp = get_array_module(x_pad)
    C, Hp, Wp, N = x_pad.shape
    OH, OW = (Hp - k) // s + 1, (Wp - k) // s + 1
    sC, sH, sW, sN = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(C, k, k, OH, OW, N), strides=(sC, sH, sW, sH * s, sW * s, sN))
    if out is None:
        out = xp.empty((C * k * k, OH * OW * N), dtype=x_pad.dtype)
    dst = out.reshape(C, k, k, OH, OW, N)

    def copy(lo, hi):                                     # channels lo..hi-1 (parallel.run splits C)
        dst[lo:hi] = windows[lo:hi]
    parallel.run(copy, C, out.size, xp)
    return out


def col2im_chwn(cols, canvas, k, s, crop=0, out=None):
    """Add colsᵀ (C·K·K, OH·OW·N) back into ``canvas`` (C, Hp, Wp, N), zeroed first; returns it.

    canvas[c, oy·s + ky, ox·s + kx, n] += colsᵀ[(c, ky, kx), (oy, ox, n)], overlaps summed.
    One strided-slice addition per kernel offset (ky, kx), K·K in all, each adding a
    (C, OH, OW, N) block whose rows are N contiguous numbers (``np.add.at`` would be the
    one-liner, and far slower). Plain version: ``im2col.col2im`` / ``col2im_reference``.

    With ``out`` (C, Hp − 2·crop, Wp − 2·crop, N): the canvas without its border of width
    ``crop`` (a transposed convolution's padding) is copied into ``out``, which is returned.

    The strategy differs by backend, never the numbers (each canvas element receives the
    same additions in the same order):
      * NumPy: a few channels at a time (``_CHANNELS_BYTES`` of canvas), so that the part of
        the canvas they add into stays in the CPU's cache for all K·K additions and the
        crop; and the channels split over threads (``parallel.run``: no two threads touch
        the same channel);
      * a GPU: the whole canvas at once, since every addition is a kernel launch: K·K + 2
        launches per call.
    ``xp.add(view, block, out=view)`` rather than ``view += block``: Python runs the latter
    as an addition and then a ``__setitem__`` of the view onto itself, a second pass.
    """
    xp = get_array_module(canvas)
    C, Hp, Wp, N = canvas.shape
    OH, OW = (Hp - k) // s + 1, (Wp - k) // s + 1
    cols = cols.reshape(C, k, k, OH, OW, N)
    step = max(1, _CHANNELS_BYTES // (Hp * Wp * N * canvas.itemsize)) if xp is np else C

    def add_channels(lo, hi):                             # channels lo..hi-1, ``step`` at a time
        for c in range(lo, hi, step):
            part, cols_part = canvas[c:min(c + step, hi)], cols[c:min(c + step, hi)]
            # The first s×s offsets tile rows [0, s·OH) × columns [0, s·OW) (k >= s): they are
            # copied, not added (0 + v = v: the same sums), so on NumPy only the strips beyond
            # need zeros; a GPU zeroes the whole canvas in one launch instead of two.
            if k < s or xp is not np:
                part.fill(0)
            else:
                part[:, s * OH:] = 0
                part[:, :s * OH, s * OW:] = 0
            for ky in range(k):
                for kx in range(k):
                    window = part[:, ky:ky + s * OH:s, kx:kx + s * OW:s]      # (c, OH, OW, N), a view
                    if ky < s and kx < s:
                        xp.copyto(window, cols_part[:, ky, kx])
                    else:
                        xp.add(window, cols_part[:, ky, kx], out=window)
            if out is not None:
                out[c:min(c + step, hi)] = part[:, crop:Hp - crop, crop:Wp - crop]
    parallel.run(add_channels, C, cols.size, xp)
    return canvas if out is None else out


def phase_shape(C, Hp, Wp, N, s, itemsize):
    """Shape of the scratch ``col2im_phases`` needs for a (C, Hp, Wp, N) canvas: (s, s, Cb, ⌈Hp/s⌉, ⌈Wp/s⌉, N).

    Cb: one block of channels (``_phase_block``) for every thread the call is split over
    (``_phase_threads``), side by side.
    """
    Hq, Wq, parts = -(-Hp // s), -(-Wp // s), _phase_threads(C, Hp, Wp, N)
    return (s, s, _phase_block(C, parts, Hq, Wq, N, s, itemsize) * parts, Hq, Wq, N)


def _phase_block(C, parts, Hq, Wq, N, s, itemsize):
    """Channels ``col2im_phases`` does at a time: their s·s phases fit in ``_CHANNELS_BYTES``
    (and no more than one thread's share of the C channels)."""
    return min(-(-C // parts), max(1, _CHANNELS_BYTES // (s * s * Hq * Wq * N * itemsize)))


def _phase_threads(C, Hp, Wp, N):
    """Threads ``col2im_phases`` splits C channels over: ``parallel.run``'s choice for its size."""
    return parallel.parts_for(C, C * Hp * Wp * N)


def col2im_phases(cols, phases, k, s, out, crop=0):
    """``col2im_chwn`` with the canvas stored by PHASE: the same sums, with far longer runs.

    colsᵀ (C·K·K, OH·OW·N), OH × OW the grid of windows -> out (C, Hout, Wout, N), the canvas
    (C, Hp, Wp, N), Hp = Hout + 2·crop, without its border; ``phases``: scratch of
    ``phase_shape(C, Hp, Wp, N, s, itemsize)``. Needs s >= 2 and K >= s; NumPy only.

    Why: in ``col2im_chwn`` the window of kernel offset (ky, kx), canvas[:, ky::s, kx::s, :],
    jumps s pixels at a time, so each addition moves runs of only N numbers, and NumPy's
    per-run overhead dominates when N is small. Split the canvas by phase instead — canvas
    row R = s·i + py lives in phase py at row i (likewise columns) —

        phase[py, px][c, i, j, n] = canvas[c, s·i + py, s·j + px, n]

    and offset (ky, kx), which adds window (oy, ox) into canvas row s·oy + ky, adds into ONE
    phase, (ky mod s, kx mod s), at rows oy + ky // s: a plain rectangle of that phase, whose
    rows are OW·N contiguous numbers. In one dimension, s = 2, K = 4:

        plain:     canvas[ky::2][:OH] += cols[ky]                   for ky = 0, 1, 2, 3
        by phase:  phase[ky % 2][ky // 2 : ky // 2 + OH] += cols[ky]
                   (canvas rows 0, 2, 4, ... are phase 0; rows 1, 3, 5, ... phase 1)

    The s·s phases are written back into ``out`` (cropped) at the end, one strided copy each.
    Each canvas element receives the same additions in the same order as in ``col2im_chwn``
    (the offset with ky, kx < s first, copied; then the others): the same bits
    (tests/test_im2col.py).
    """
    if not k >= s >= 2:
        raise ValueError(f"col2im_phases: needs stride >= 2 and kernel >= stride, got k={k}, s={s} "
                         f"(use col2im_chwn)")
    C, Hout, Wout, N = out.shape
    Hp, Wp = Hout + 2 * crop, Wout + 2 * crop
    OH, OW = (Hp - k) // s + 1, (Wp - k) // s + 1                  # the grid of windows, as in col2im_chwn
    cols = cols.reshape(C, k, k, OH, OW, N)
    slots = parallel.ranges(C, _phase_threads(C, Hp, Wp, N))     # as phase_shape sized the scratch
    block = _phase_block(C, len(slots), phases.shape[3], phases.shape[4], N, s, out.itemsize)
    if phases.shape[2] < block * len(slots):
        raise ValueError(f"col2im_phases: scratch {phases.shape} holds {phases.shape[2]} channels, needs "
                         f"{block * len(slots)}: size it with phase_shape{(C, Hp, Wp, N, s, out.itemsize)}")

    def block_of_channels(c, e, ph):                      # channels c..e-1 through phases ph
        for py in range(s):
            for px in range(s):                           # offset (py, px) covers [0, OH) × [0, OW)
                ph[py, px, :, OH:] = 0                    # of its phase; zero what lies beyond
                ph[py, px, :, :OH, OW:] = 0
        for ky in range(k):
            for kx in range(k):
                qy, qx = ky // s, kx // s
                window = ph[ky % s, kx % s, :, qy:qy + OH, qx:qx + OW]       # (e − c, OH, OW, N)
                if qy == 0 and qx == 0:
                    np.copyto(window, cols[c:e, ky, kx])
                else:
                    np.add(window, cols[c:e, ky, kx], out=window)
        for py in range(s):                               # out row r is canvas row r + crop:
            r0 = (py - crop) % s                          # phase py holds out rows r0, r0 + s, ...
            rows = slice((r0 + crop) // s, (r0 + crop) // s + len(range(r0, Hout, s)))
            for px in range(s):
                c0 = (px - crop) % s
                columns = slice((c0 + crop) // s, (c0 + crop) // s + len(range(c0, Wout, s)))
                out[c:e, r0::s, c0::s] = ph[py, px, :, rows, columns]

    def thread_range(lo, hi):                             # one thread's channels, its own slot of phases
        slot = slots.index((lo, hi)) * block
        for c in range(lo, hi, block):
            e = min(c + block, hi)
            block_of_channels(c, e, phases[:, :, slot:slot + e - c])
    parallel.run(thread_range, C, C * Hp * Wp * N)               # the size _phase_threads splits by
    return out


_CHANNELS_BYTES = 2 ** 21        # 2 MiB of canvas (or of its phases) per block of channels in col2im_chwn/_phases


def col2im_gather(cols, out, k, s, crop=0):
    """``col2im_chwn`` that GATHERS, as one compiled loop: the same sums, one pass over ``out``.

    colsᵀ (C·K·K, OH·OW·N) -> out (C, Hout, Wout, N), the canvas (C, Hp, Wp, N) without its
    border of width ``crop``; any K and s. Needs Numba (``tinygan.jit``); NumPy arrays only.

    The array versions scatter: for every kernel offset they add a block of colsᵀ into the
    whole canvas, K·K passes over it. Here each output pixel instead sums its own
    contributors, found by inverting the window arithmetic: in canvas coordinates
    (yp = y + crop), window row oy covers yp at kernel row ky = yp − oy·s, so with 0 ≤ ky < K

        oy from ⌈(yp − K + 1)/s⌉ = max(0, yp − K + s) // s   to   min(OH − 1, yp // s)

    (the same for columns). The contributors are added in the order the scatter adds them,
    by increasing ky, kx — decreasing oy, ox — the first one copied where the scatter copies
    it (offsets ky, kx < s: pixels inside the s·OH × s·OW tiling) and everything added to
    zero elsewhere (so even a −0.0 comes out as the scatter's): the same
    bits as ``col2im_chwn`` and ``col2im_phases`` (tests/test_im2col.py). Chainer's
    ``col2im_gpu`` gathers the same way; ``tinygan/cuda/kernels.py`` has this loop for a GPU.
    """
    C, Hout, Wout, N = out.shape
    OH, OW = (Hout + 2 * crop - k) // s + 1, (Wout + 2 * crop - k) // s + 1
    cols = cols.reshape(C, k, k, OH, OW, N)
    parallel.run(lambda lo, hi: _gather_channels(cols, out, k, s, crop, lo, hi), C, cols.size, pieces=parallel.PIECES)
    return out


@jit.loop
def _gather_channels(cols, out, k, s, crop, lo, hi):
    """``col2im_gather`` for channels lo..hi-1: cols (C, K, K, OH, OW, N), out (C, Hout, Wout, N)."""
    _, _, _, OH, OW, N = cols.shape
    _, Hout, Wout, _ = out.shape
    for c in range(lo, hi):
        for y in range(Hout):
            yp = y + crop
            oy_first, oy_last = max(0, yp - k + s) // s, min(OH - 1, yp // s)
            for x in range(Wout):
                xp = x + crop
                ox_first, ox_last = max(0, xp - k + s) // s, min(OW - 1, xp // s)
                pixel = out[c, y, x]                                # (N,)
                copy_first = (yp < s * OH and xp < s * OW                # where the scatter copies:
                              and oy_first <= oy_last and ox_first <= ox_last)   # offsets ky, kx < s
                if not copy_first:
                    for n in range(N):                              # loops over n, not pixel[:] = …:
                        pixel[n] = 0                                # Numba compiles a slice
                for oy in range(oy_last, oy_first - 1, -1):         # assignment to a slower loop
                    for ox in range(ox_last, ox_first - 1, -1):     # (ky = yp − oy·s increasing)
                        src = cols[c, yp - oy * s, xp - ox * s, oy, ox]
                        if copy_first:
                            for n in range(N):
                                pixel[n] = src[n]
                            copy_first = False
                        else:
                            for n in range(N):
                                pixel[n] += src[n]


def im2col_unpadded(x, k, s, p, out):
    """colsᵀ (C·K·K, OH·OW·N) straight from the UNPADDED x (C, H, W, N), as one compiled loop.

    The array version (``nchw_to_chwn`` with padding, then ``im2col_chwn``) first copies x
    into a zero-bordered canvas and then copies every window out of it: two passes, the
    second in runs of N numbers. Here every column entry is written once, from

        colsᵀ[(c, ky, kx), (oy, ox, n)] = x[c, oy·s + ky − p, ox·s + kx − p, n],  or 0 in the padding.

    Plain copies: the same numbers as the array version. Needs Numba (``tinygan.jit``) and a
    C-contiguous x (a tinygan activation seen through ``as_chwn``'s view).
    """
    C, H, W, N = x.shape
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    dst = out.reshape(C, k, k, OH, OW, N)
    parallel.run(lambda lo, hi: _windows_of_channels(x, dst, s, p, lo, hi), C, out.size, pieces=parallel.PIECES)
    return out


@jit.loop
def _windows_of_channels(x, dst, s, p, lo, hi):
    """``im2col_unpadded`` for channels lo..hi-1: x (C, H, W, N), dst (C, K, K, OH, OW, N)."""
    _, H, W, N = x.shape
    _, k, _, OH, OW, _ = dst.shape
    for c in range(lo, hi):
        for ky in range(k):
            for kx in range(k):
                for oy in range(OH):
                    iy = oy * s + ky - p
                    for ox in range(OW):
                        ix = ox * s + kx - p
                        column = dst[c, ky, kx, oy, ox]             # (N,)
                        if 0 <= iy < H and 0 <= ix < W:
                            src = x[c, iy, ix]
                            for n in range(N):
                                column[n] = src[n]
                        else:
                            for n in range(N):
                                column[n] = 0
