"""Conv2d and ConvTranspose2d, each one matrix product plus im2col or col2im.

Notation (as in ``im2col.py``): N batch, C input channels, O output channels, K kernel,
s stride, p padding; (H, W) input size, (OH, OW) output size.

Inside these layers an activation is a matrix with one row per channel and one column
per pixel of every image, X (C, H·W·N) — the batch-innermost layout of ``im2col.py`` —
and colsᵀ(x) = ``im2col_chwn`` of the padded input is (C·K·K, OH·OW·N). The two layers
mirror each other. With W2 the weight reshaped to a matrix:

    Conv2d            forward   Y   = W2 · colsᵀ(x)                     W2: (O, C·K·K)
                      backward  dW2 = dY · colsᵀ(x)ᵀ,   dx = col2im(W2ᵀ · dY)
    ConvTranspose2d   forward   y   = col2im(W2ᵀ · X)                   W2: (C, O·K·K)
                      backward  dW2 = X · colsᵀ(dy)ᵀ,   dX = W2 · colsᵀ(dy)

one matrix product for each result, on contiguous operands (a transposed operand costs
nothing: BLAS reads it in place). A transposed convolution's forward pass is exactly a
convolution's input gradient, and its backward is a convolution: that is the whole
trick, and why the weight of ConvTranspose2d is stored (in, out, K, K) as PyTorch does.

``needs_input_grad = False`` (see ``Module``) skips dx — the second product and col2im
for Conv2d, the second product for ConvTranspose2d — and backward returns None: for a
network's first layer, whose input (images, noise) needs no gradient.

Layout. Inputs and outputs have shape (N, C, H, W); outputs and input gradients are
returned stored batch-innermost (``chwn_to_nchw`` views), which is what makes ``as_chwn``
free for the next layer — see ``im2col.py``.

Memory. The cache is ``self.x_shape`` and, for Conv2d, ``self.cols``, overwritten in place
by the next forward of the same shape; for ConvTranspose2d, ``self.x_t``, the input itself
seen as a matrix (as PyTorch's autograd saves it: do not write into an input before its
backward). The temporaries — padded input, column matrix, col2im canvas — come from
``workspace.scratch``, reused from call to call.
"""
import math

import numpy as np

from .. import backend
from .im2col import (as_chwn, chwn_to_nchw, col2im_chwn, conv_out_size, deconv_out_size, im2col_chwn,
                     nchw_to_chwn)
from .module import Module, Parameter, check_cache, check_input
from .workspace import scratch


def _reuse(old, shape, dtype, xp):
    """``old`` reshaped to ``shape`` if it can hold it (same size, dtype, backend), else a new empty array.

    A layer's cache is dead once the next forward starts, so that forward may write its own
    cache into the same memory — the plain version is always ``xp.empty(shape, dtype)``.
    """
    if (old is not None and old.size == math.prod(shape) and old.dtype == dtype and old.flags.c_contiguous
            and backend.get_array_module(old) is xp):
        return old.reshape(shape)
    return xp.empty(shape, dtype)


def _init_uniform(shape, fan_in):
    """PyTorch's default conv init: U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5)."""
    xp, dtype = backend.xp(), backend.default_dtype()
    bound = 1.0 / math.sqrt(fan_in)
    return xp.asarray(np.random.uniform(-bound, bound, size=shape).astype(dtype))


def _matmul_nt(a, b):
    """a · bᵀ for a (m, P) and b (n, P): a weight gradient, summed over P = every pixel of the batch.

    Computed as (b · aᵀ)ᵀ — the same numbers — when b has more rows: OpenBLAS ran these
    long-P products 1.2–3× faster with the taller matrix on the left at every DCGAN layer
    (2 threads), and up to 100× slower the other way round for the 48-row one.
    """
    return a @ b.T if a.shape[0] >= b.shape[0] else (b @ a.T).T


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
        xp, dt = backend.get_array_module(x), x.dtype
        self.x_shape = x.shape
        x_pad = nchw_to_chwn(x, p, out=scratch("padded", (C, H + 2 * p, W + 2 * p, N), dt, xp))
        cols = _reuse(getattr(self, "cols", None), (C * k * k, OH * OW * N), dt, xp)
        self.cols = im2col_chwn(x_pad, k, s, out=cols)                   # (C·K·K, OH·OW·N)
        W2 = self.weight.data.reshape(O, -1)                             # (O, C·K·K)
        Y = W2 @ self.cols                                               # (O, OH·OW·N)
        if self.bias is not None:
            Y += self.bias.data.reshape(O, 1)
        self.out_shape = (N, O, OH, OW)
        return chwn_to_nchw(Y.reshape(O, OH, OW, N))                     # no copy: a view

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, O, OH, OW = dout.shape
        xp, dt = backend.get_array_module(dout), dout.dtype
        dY = as_chwn(dout).reshape(O, OH * OW * N)                      # free for a tinygan gradient
        if self.weight.requires_grad:
            self.weight.grad += _matmul_nt(dY, self.cols).reshape(self.weight.shape)   # dY · (colsᵀ)ᵀ
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dY.sum(axis=1)
        if not self.needs_input_grad:
            return None
        _, C, H, W = self.x_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        W2 = self.weight.data.reshape(O, -1)
        dcols = xp.matmul(W2.T, dY, out=scratch("columns", (C * k * k, OH * OW * N), dt, xp))
        canvas = col2im_chwn(dcols, scratch("canvas", (C, H + 2 * p, W + 2 * p, N), dt, xp), k, s)
        return chwn_to_nchw(canvas[:, p:p + H, p:p + W].copy())         # the padding cut away


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution, weight (C, O, K, K) as PyTorch, bias (O,).

    forward:  (N, C, H, W) -> (N, O, OH, OW),  OH = (H − 1)·s − 2p + K + output_padding
              every input pixel scatters C→O weighted K×K patches; overlaps add:
              y = col2im(W2ᵀ · X) + b, with X the input as a (C, H·W·N) matrix
    backward: with D = colsᵀ(dout) (O·K·K, H·W·N), the windows of the padded dout,
        dX = W2 · D           a strided convolution of dout with the same weight
        dW = X · Dᵀ           (C, O·K·K)
        db = Σ_{n,y,x} dout   (O,)
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
        xp, dt, O = backend.get_array_module(x), x.dtype, self.out_channels
        self.x_shape = x.shape
        self.x_t = as_chwn(x).reshape(C, H * W * N)                    # X (C, H·W·N); a view of x
        W2 = self.weight.data.reshape(C, -1)                             # (C, O·K·K)
        cols = xp.matmul(W2.T, self.x_t, out=scratch("columns", (O * k * k, H * W * N), dt, xp))
        canvas = col2im_chwn(cols, scratch("canvas", (O, OH + 2 * p, OW + 2 * p, N), dt, xp), k, s)
        y = canvas[:, p:p + OH, p:p + OW].copy()                         # (O, OH, OW, N), padding cut away
        if self.bias is not None:
            y += self.bias.data.reshape(-1, 1, 1, 1)
        self.out_shape = (N, O, OH, OW)
        return chwn_to_nchw(y)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, O, OH, OW = dout.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        _, C, H, W = self.x_shape
        xp, dt = backend.get_array_module(dout), dout.dtype
        dout_pad = nchw_to_chwn(dout, p, out=scratch("padded", (O, OH + 2 * p, OW + 2 * p, N), dt, xp))
        D = im2col_chwn(dout_pad, k, s, out=scratch("columns", (O * k * k, H * W * N), dt, xp))
        if self.weight.requires_grad:
            self.weight.grad += _matmul_nt(self.x_t, D).reshape(self.weight.shape)     # X · Dᵀ
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dout.sum(axis=(0, 2, 3))
        if not self.needs_input_grad:
            return None
        W2 = self.weight.data.reshape(C, -1)
        dX = W2 @ D                                                      # (C, H·W·N)
        return chwn_to_nchw(dX.reshape(C, H, W, N))
