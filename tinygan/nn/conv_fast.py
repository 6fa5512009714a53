"""The convolutions' speed path: the batch-innermost layout, compiled loops and threads.

``conv.py`` opens with the textbook versions — im2col, one product, col2im, on (N, C, H, W)
arrays — and in its default (fast) mode hands the same work to the four functions at the
bottom of this file, one call each. They do the same arithmetic, laid out for speed:

    convolve(x, W2)              Y = W2 · colsᵀ(x)         a convolution
    convolve_transpose(X, W2)    y = col2im(W2ᵀ · X)       its adjoint, a transposed convolution

and each layer's backward is the other one:

    Conv2d            forward   Y   = convolve(x, W2)                   W2: (O, C·K·K)
                      backward  dW2 = dY · colsᵀ(x)ᵀ,   dx = convolve_transpose(dY, W2)
    ConvTranspose2d   forward   y   = convolve_transpose(X, W2)         W2: (C, O·K·K)
                      backward  dW2 = X · colsᵀ(dy)ᵀ,   dX = convolve(dy, W2)

Here an activation is a matrix with one row per channel and one column per pixel of every
image, X (C, H·W·N) — the batch-innermost layout of ``layout.py`` — and colsᵀ(x) =
``im2col_chwn`` of the padded input is (C·K·K, OH·OW·N), the transpose of ``im2col``'s
matrix. Every product is on contiguous operands (a transposed operand costs nothing: BLAS
reads it in place). Outputs and input gradients are returned stored batch-innermost
(``chwn_to_nchw`` views), which is what makes ``as_chwn`` free for the next layer.

Memory. Conv2d keeps its input (as PyTorch's autograd does) and rebuilds colsᵀ(x) in
backward for its weight gradient rather than keeping it: at stride 2 and K = 4 the column
matrix is four times the input, and the input is kept alive anyway (it is the previous
layer's output). The temporaries — padded input, column matrix, col2im canvas — come from
the layer's ``workspace``, shared by the layers of one model (``workspace.py``).

tests/test_reference_mode.py checks every function here against ``conv.py``'s plain code.
"""
import numpy as np

from .. import backend, jit
from .im2col import conv_out_size
from .layout import (as_chwn, chwn_to_nchw, col2im_chwn, col2im_gather, col2im_phases, im2col_chwn,
                     im2col_unpadded, nchw_to_chwn, phase_shape)


def columns(x, k, s, p, workspace):
    """colsᵀ(x) (C·K·K, OH·OW·N): every K×K window of x (N, C, H, W), padded by p, as a column,
    written into the workspace's "columns" buffer.
    """
    N, C, H, W = x.shape
    xp, dt = backend.get_array_module(x), x.dtype
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    out = workspace.get("columns", (C * k * k, OH * OW * N), dt, xp)
    x_chwn = x.transpose(1, 2, 3, 0)                 # a view; contiguous for a tinygan activation
    if jit.usable(x_chwn, out) and x_chwn.flags.c_contiguous:
        return im2col_unpadded(x_chwn, k, s, p, out)     # one compiled pass, padding and all
    x_pad = nchw_to_chwn(x, p, out=workspace.get("padded", (C, H + 2 * p, W + 2 * p, N), dt, xp))
    return im2col_chwn(x_pad, k, s, out=out)


def convolve(x, W2, k, s, p, workspace):
    """A convolution as one matrix product: (Y, colsᵀ) with Y = W2 · colsᵀ(x).

    x (N, C, H, W); W2 (O, C·K·K) -> Y (O, OH·OW·N), a new array, and colsᵀ (C·K·K, OH·OW·N),
    scratch of the workspace (valid until the next layer sharing it runs).
    """
    cols = columns(x, k, s, p, workspace)
    return W2 @ cols, cols


def convolve_transpose(X, W2, k, s, p, out_size, workspace):
    """The adjoint of ``convolve``: y = col2im(W2ᵀ · X), every input pixel scattering a K×K patch.

    X (C, H, W, N); W2 (C, O·K·K); out_size (OH, OW) -> y (O, OH, OW, N), a new array.
    """
    C, H, W, N = X.shape
    (OH, OW), O = out_size, W2.shape[1] // (k * k)
    xp, dt = backend.get_array_module(X), X.dtype
    cols = xp.matmul(W2.T, X.reshape(C, H * W * N),
                     out=workspace.get("columns", (O * k * k, H * W * N), dt, xp))   # (O·K·K, H·W·N)
    y = xp.empty((O, OH, OW, N), dtype=dt)
    Hp, Wp = OH + 2 * p, OW + 2 * p
    if jit.usable(cols, y):                         # one compiled pass, each pixel gathering its sums
        return col2im_gather(cols, y, k, s, crop=p)
    if xp is np and k >= s >= 2:                     # the same sums, by phase (layout.col2im_phases)
        phases = workspace.get("canvas", phase_shape(O, Hp, Wp, N, s, y.itemsize), dt, xp)
        return col2im_phases(cols, phases, k, s, out=y, crop=p)
    canvas = workspace.get("canvas", (O, Hp, Wp, N), dt, xp)
    return col2im_chwn(cols, canvas, k, s, crop=p, out=y)                  # padding cut away


def add_matmul_nt(grad, a, b):
    """grad += a · bᵀ for a (m, P), b (n, P): a weight gradient, summed over P = every pixel.

    ``grad`` holds m·n numbers in any shape (a weight's: (O, C, K, K) or (C, O, K, K)).
    Plain version: ``grad += (a @ b.T).reshape(grad.shape)``. The same product can be
    computed as (b · aᵀ)ᵀ, and OpenBLAS runs these long-P products faster with the taller
    matrix on the left — but the result is then stored transposed, and adding an (m, n)
    matrix read column by column into ``grad`` leaves the cache behind once it is large
    (512 × 4096: 16 ms for the addition against 13 for the product). So the reversed order
    only for a taller b and a product of at most ``_SMALL_PRODUCT`` elements
    (benchmarks/RESULTS.md, "Intel Xeon (AVX-512) again").
    """
    m, n = a.shape[0], b.shape[0]
    product = (b @ a.T).T if _reversed_order_pays(m, n) else a @ b.T
    if grad.flags.c_contiguous:                      # as every Parameter's is: add into a view of it
        grad2 = grad.reshape(m, n)
        backend.get_array_module(grad).add(grad2, product, out=grad2)
    else:                                            # a reshape would copy: the plain version
        grad += product.reshape(grad.shape)


def _reversed_order_pays(m, n):
    """Whether ``add_matmul_nt`` computes its (m, n) product as (b · aᵀ)ᵀ: b taller, product small."""
    return n > m and m * n <= _SMALL_PRODUCT


_SMALL_PRODUCT = 2 ** 18         # elements (1 MiB of float32): a transposed addition of this stays in cache


# ----- the layers' passes, one call each from conv.py -----

def conv2d_forward(x, weight, bias, k, s, p, out_size, workspace):
    """Conv2d's forward: x (N, C, H, W) -> y (N, O, OH, OW), stored batch-innermost (a view);
    out_size (OH, OW)."""
    N, O = x.shape[0], weight.shape[0]
    Y, _ = convolve(x, weight.reshape(O, -1), k, s, p, workspace)       # (O, OH·OW·N)
    if bias is not None:
        Y += bias.reshape(O, 1)
    return chwn_to_nchw(Y.reshape(O, *out_size, N))


def conv2d_backward(dout, x, weight, bias, k, s, p, workspace, needs_input_grad):
    """Conv2d's backward from the kept input x: adds into ``weight.grad``/``bias.grad``
    (Parameters) and returns dx (N, C, H, W) stored batch-innermost, or None."""
    N, O, OH, OW = dout.shape
    dY = as_chwn(dout)                                               # (O, OH, OW, N), free for a tinygan gradient
    dY2 = dY.reshape(O, OH * OW * N)
    if weight.requires_grad:                                         # colsᵀ(x) again, into scratch
        add_matmul_nt(weight.grad, dY2, columns(x, k, s, p, workspace))   # dW += dY · (colsᵀ)ᵀ
    if bias is not None and bias.requires_grad:
        bias.grad += dY2.sum(axis=1)
    if not needs_input_grad:
        return None
    H, W = x.shape[2], x.shape[3]
    dx = convolve_transpose(dY, weight.data.reshape(O, -1), k, s, p, (H, W), workspace)
    return chwn_to_nchw(dx)                                          # the input gradient is a transposed conv


def conv_transpose2d_forward(x, weight, bias, k, s, p, out_size, workspace):
    """ConvTranspose2d's forward: x (N, C, H, W) -> (y (N, O, OH, OW) batch-innermost, X),
    X = x as a (C, H, W, N) array (a view for a tinygan activation), which backward needs."""
    C = x.shape[1]
    X = as_chwn(x)
    y = convolve_transpose(X, weight.reshape(C, -1), k, s, p, out_size, workspace)
    if bias is not None:
        y += bias.reshape(-1, 1, 1, 1)
    return chwn_to_nchw(y), X


def conv_transpose2d_backward(dout, X, weight, bias, k, s, p, workspace, needs_input_grad):
    """ConvTranspose2d's backward from the kept X (C, H, W, N): adds into ``weight.grad``/``bias.grad``
    and returns dx (N, C, H, W) stored batch-innermost, or None."""
    C, H, W, N = X.shape
    W2 = weight.data.reshape(C, -1)                                  # (C, O·K·K)
    if needs_input_grad:
        dX, dcols = convolve(dout, W2, k, s, p, workspace)           # the input gradient is a convolution
    else:
        dX, dcols = None, columns(dout, k, s, p, workspace)          # colsᵀ(dout) (O·K·K, H·W·N)
    if weight.requires_grad:
        add_matmul_nt(weight.grad, X.reshape(C, H * W * N), dcols)   # dW += X · colsᵀ(dout)ᵀ
    if bias is not None and bias.requires_grad:
        bias.grad += dout.sum(axis=(0, 2, 3))
    return None if dX is None else chwn_to_nchw(dX.reshape(C, H, W, N))
