"""Conv2d and ConvTranspose2d: one matrix product each, and each other's gradient.

Notation (as in ``im2col.py``): N batch, C input channels, O output channels, K kernel,
s stride, p padding; (H, W) input size, (OH, OW) output size.

Inside these layers an activation is a matrix with one row per channel and one column
per pixel of every image, X (C, H·W·N) — the batch-innermost layout of ``layout.py`` —
and colsᵀ(x) = ``im2col_chwn`` of the padded input is (C·K·K, OH·OW·N). With W2 the
weight reshaped to a matrix, two helpers do all the work:

    convolve(x, W2)              Y = W2 · colsᵀ(x)         a convolution
    convolve_transpose(X, W2)    y = col2im(W2ᵀ · X)       its adjoint, a transposed convolution

and each layer's backward is the other one:

    Conv2d            forward   Y   = convolve(x, W2)                   W2: (O, C·K·K)
                      backward  dW2 = dY · colsᵀ(x)ᵀ,   dx = convolve_transpose(dY, W2)
    ConvTranspose2d   forward   y   = convolve_transpose(X, W2)         W2: (C, O·K·K)
                      backward  dW2 = X · colsᵀ(dy)ᵀ,   dX = convolve(dy, W2)

So a transposed convolution's forward pass is exactly a convolution's input gradient, and
its backward is a convolution; that is why ConvTranspose2d stores its weight (in, out, K, K),
as PyTorch does. Every product is on contiguous operands (a transposed operand costs
nothing: BLAS reads it in place).

``needs_input_grad = False`` (see ``Module``) skips dx — the second product and col2im
for Conv2d, the second product for ConvTranspose2d — and backward returns None: for a
network's first layer, whose input (images, noise) needs no gradient.

Layout. Inputs and outputs have shape (N, C, H, W); outputs and input gradients are
returned stored batch-innermost (``chwn_to_nchw`` views), which is what makes ``as_chwn``
free for the next layer — see ``layout.py``.

Memory. The cache is ``self.x_shape`` and the input itself — ``self.x`` for Conv2d,
``self.X`` (seen as a matrix) for ConvTranspose2d — as PyTorch's autograd saves it: do not
write into an input before its backward. Conv2d rebuilds colsᵀ(x) in backward for its
weight gradient rather than keeping it: at stride 2 and K = 4 the column matrix is four
times the input, and the input is kept alive anyway (it is the previous layer's output).
The temporaries — padded input, column matrix, col2im canvas — come from
``self.workspace``, shared by the layers of one model (``workspace.py``).
"""
import math

import numpy as np

from .. import backend, jit
from .im2col import conv_out_size, deconv_out_size
from .layout import (as_chwn, chwn_to_nchw, col2im_chwn, col2im_gather, col2im_phases, im2col_chwn,
                     im2col_unpadded, nchw_to_chwn, phase_shape)
from .module import Module, Parameter, check_cache, check_input
from .workspace import Workspace


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


def _init_uniform(shape, fan_in):
    """PyTorch's default conv init: U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5)."""
    xp, dtype = backend.xp(), backend.default_dtype()
    bound = 1.0 / math.sqrt(fan_in)
    return xp.asarray(np.random.uniform(-bound, bound, size=shape).astype(dtype))


def _add_matmul_nt(grad, a, b):
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
    """Whether ``_add_matmul_nt`` computes its (m, n) product as (b · aᵀ)ᵀ: b taller, product small."""
    return n > m and m * n <= _SMALL_PRODUCT


_SMALL_PRODUCT = 2 ** 18         # elements (1 MiB of float32): a transposed addition of this stays in cache


class _ConvBase(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, weight_shape, fan_in):
        if min(in_channels, out_channels, kernel_size, stride) < 1 or padding < 0:
            raise ValueError(f"{type(self).__name__}: channels, kernel_size and stride must be >= 1 and "
                             f"padding >= 0, got in={in_channels}, out={out_channels}, "
                             f"k={kernel_size}, s={stride}, p={padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = Parameter(_init_uniform(weight_shape, fan_in))
        self.bias = Parameter(_init_uniform((out_channels,), fan_in)) if bias else None
        self.workspace = Workspace()                 # scratch; Module.share_workspace() shares one

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation, as PyTorch), weight (O, C, K, K), bias (O,).

    forward:  (N, C, H, W) -> (N, O, OH, OW),  OH = floor((H + 2p − K)/s) + 1
              Y = W2 · colsᵀ + b  as an (O, OH·OW·N) matrix, then back to (N, O, OH, OW)
    backward: with dY the upstream gradient as an (O, OH·OW·N) matrix,
        dW = dY · (colsᵀ)ᵀ                 (O, C·K·K)  summed over every window
        db = Σ_{oy,ox,n} dY                (O,)
        dx = col2im(W2ᵀ · dY)              overlapping windows add up
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias,
                         (out_channels, in_channels, kernel_size, kernel_size),
                         in_channels * kernel_size * kernel_size)

    def forward(self, x):
        check_input(self, x, self.in_channels)
        N, C, H, W = x.shape
        O, k, s, p = self.out_channels, self.kernel_size, self.stride, self.padding
        OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        if OH < 1 or OW < 1:
            raise ValueError(f"Conv2d: input of shape {tuple(x.shape)} is smaller than the kernel "
                             f"(k={k}, padding={p}): need H, W >= {k - 2 * p}")
        self.x, self.x_shape = x, x.shape
        Y, _ = convolve(x, self.weight.data.reshape(O, -1), k, s, p, self.workspace)
        if self.bias is not None:
            Y += self.bias.data.reshape(O, 1)
        self.out_shape = (N, O, OH, OW)
        return chwn_to_nchw(Y.reshape(O, OH, OW, N))                     # no copy: a view

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, O, OH, OW = dout.shape
        dY = as_chwn(dout)                                               # (O, OH, OW, N), free for a tinygan gradient
        dY2 = dY.reshape(O, OH * OW * N)
        if self.weight.requires_grad:                                    # colsᵀ(x) again, into scratch
            cols = columns(self.x, self.kernel_size, self.stride, self.padding, self.workspace)
            _add_matmul_nt(self.weight.grad, dY2, cols)                    # dW += dY · (colsᵀ)ᵀ
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dY2.sum(axis=1)
        if not self.needs_input_grad:
            return None
        _, C, H, W = self.x_shape
        W2 = self.weight.data.reshape(O, -1)                             # (O, C·K·K)
        dx = convolve_transpose(dY, W2, self.kernel_size, self.stride, self.padding, (H, W), self.workspace)
        return chwn_to_nchw(dx)                                          # the input gradient is a transposed conv


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution, weight (C, O, K, K) as PyTorch, bias (O,).

    forward:  (N, C, H, W) -> (N, O, OH, OW),  OH = (H − 1)·s − 2p + K + output_padding
              every input pixel scatters C→O weighted K×K patches; overlaps add:
              y = col2im(W2ᵀ · X) + b, with X the input as a (C, H·W·N) matrix
    backward: with colsᵀ(dout) (O·K·K, H·W·N), the windows of the padded dout,
        dX = W2 · colsᵀ(dout)         a strided convolution of dout with the same weight
        dW = X · colsᵀ(dout)ᵀ         (C, O·K·K)
        db = Σ_{n,y,x} dout           (O,)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 output_padding=0):
        if not 0 <= output_padding < max(stride, 1):
            raise ValueError(f"ConvTranspose2d: output_padding must be in [0, stride), got "
                             f"{output_padding} with stride {stride}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias,
                         (in_channels, out_channels, kernel_size, kernel_size),
                         out_channels * kernel_size * kernel_size)
        self.output_padding = output_padding

    def forward(self, x):
        check_input(self, x, self.in_channels)
        N, C, H, W = x.shape
        k, s, p, op = self.kernel_size, self.stride, self.padding, self.output_padding
        OH, OW = deconv_out_size(H, k, s, p, op), deconv_out_size(W, k, s, p, op)
        if OH < 1 or OW < 1:
            # smallest H with (H − 1)·s − 2p + K + output_padding >= 1
            need = max(1, 1 - (-(2 * p + 1 - k - op) // s))
            raise ValueError(f"ConvTranspose2d: input of shape {tuple(x.shape)} gives an empty output "
                             f"({OH}x{OW}) with k={k}, s={s}, padding={p}: need H, W >= {need}")
        self.x_shape = x.shape
        self.X = as_chwn(x)                                              # (C, H, W, N); a view of x
        W2 = self.weight.data.reshape(C, -1)                             # (C, O·K·K)
        y = convolve_transpose(self.X, W2, k, s, p, (OH, OW), self.workspace)
        if self.bias is not None:
            y += self.bias.data.reshape(-1, 1, 1, 1)
        self.out_shape = (N, self.out_channels, OH, OW)
        return chwn_to_nchw(y)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        k, s, p = self.kernel_size, self.stride, self.padding
        _, C, H, W = self.x_shape
        N = dout.shape[0]
        W2 = self.weight.data.reshape(C, -1)                             # (C, O·K·K)
        if self.needs_input_grad:
            dX, dcols = convolve(dout, W2, k, s, p, self.workspace)     # the input gradient is a convolution
        else:
            dX, dcols = None, columns(dout, k, s, p, self.workspace)    # colsᵀ(dout) (O·K·K, H·W·N)
        X2 = self.X.reshape(C, H * W * N)
        if self.weight.requires_grad:
            _add_matmul_nt(self.weight.grad, X2, dcols)                     # dW += X · colsᵀ(dout)ᵀ
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dout.sum(axis=(0, 2, 3))
        return None if dX is None else chwn_to_nchw(dX.reshape(C, H, W, N))
