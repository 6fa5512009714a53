"""Conv2d and ConvTranspose2d, each one matrix product plus im2col or col2im.

Notation (as in ``im2col.py``): N batch, C input channels, O output channels, K kernel,
s stride, p padding; (H, W) input size, (OH, OW) output size.

The two layers mirror each other. With W2 = weight reshaped to a matrix:

    Conv2d            forward   y  = im2col(x) @ W2ᵀ                     W2: (O, C·K·K)
                      backward  dx = col2im(dy2 @ W2),  dW2 = dy2ᵀ @ im2col(x)
    ConvTranspose2d   forward   y  = col2im(x2 @ W2)                      W2: (C, O·K·K)
                      backward  dx2 = im2col(dy) @ W2ᵀ, dW2 = x2ᵀ @ im2col(dy)

where dy2 / x2 are (N, ·, h, w) arrays laid out as (N·h·w, channels) matrices. A
transposed convolution's forward pass is exactly a convolution's input gradient, and
its backward is a convolution: that is the whole trick, and why the weight of
ConvTranspose2d is stored (in, out, K, K) as PyTorch stores it.

Cache: ``self.cols`` (Conv2d: im2col of the input) or ``self.x2`` and ``self.x_shape``
(ConvTranspose2d: the input as a matrix).
"""
import math

import numpy as np

from .. import backend
from .im2col import col2im, conv_out_size, deconv_out_size, im2col
from .module import Module, Parameter, check_cache, check_input


def _nchw_to_rows(a):
    """(N, C, H, W) -> (N·H·W, C): one row per pixel, channels along the row."""
    N, C, H, W = a.shape
    return a.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def _rows_to_nchw(rows, N, H, W):
    """(N·H·W, C) -> (N, C, H, W), contiguous."""
    xp = backend.get_array_module(rows)
    return xp.ascontiguousarray(rows.reshape(N, H, W, -1).transpose(0, 3, 1, 2))


def _init_uniform(shape, fan_in):
    """PyTorch's default conv init: U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5)."""
    xp, dtype = backend.xp(), backend.default_dtype()
    bound = 1.0 / math.sqrt(fan_in)
    return xp.asarray(np.random.uniform(-bound, bound, size=shape).astype(dtype))


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
    backward: with dY the upstream gradient as a (N·OH·OW, O) matrix,
        dW = dYᵀ · cols                    (O, C·K·K)  summed over every window
        db = Σ_{n,oy,ox} dY                (O,)
        dx = col2im(dY · W2)               overlapping windows add up
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias,
                         (out_channels, in_channels, kernel_size, kernel_size),
                         in_channels * kernel_size * kernel_size)

    def forward(self, x):
        check_input(self, x, self.in_channels)
        N, C, H, W = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        if OH < 1 or OW < 1:
            raise ValueError(f"Conv2d: input of shape {tuple(x.shape)} is smaller than the kernel "
                             f"(k={k}, padding={p}): need H, W >= {k - 2 * p}")
        self.x_shape = x.shape
        self.cols = im2col(x, k, s, p)                                   # (N·OH·OW, C·K·K)
        W2 = self.weight.data.reshape(self.out_channels, -1)             # (O, C·K·K)
        out = self.cols @ W2.T                                           # (N·OH·OW, O)
        if self.bias is not None:
            out += self.bias.data
        self.out_shape = (N, self.out_channels, OH, OW)
        return _rows_to_nchw(out, N, OH, OW)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        dY = _nchw_to_rows(dout)                                         # (N·OH·OW, O)
        if self.weight.requires_grad:
            self.weight.grad += (dY.T @ self.cols).reshape(self.weight.shape)
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dY.sum(axis=0)
        W2 = self.weight.data.reshape(self.out_channels, -1)
        dcols = dY @ W2                                                  # (N·OH·OW, C·K·K)
        return col2im(dcols, self.x_shape, self.kernel_size, self.stride, self.padding)


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution, weight (C, O, K, K) as PyTorch, bias (O,).

    forward:  (N, C, H, W) -> (N, O, OH, OW),  OH = (H − 1)·s − 2p + K + output_padding
              every input pixel scatters C→O weighted K×K patches; overlaps add (col2im).
    backward: with X the input as a (N·H·W, C) matrix and D = im2col(dout) (N·H·W, O·K·K),
        dX = D · W2ᵀ          a strided convolution of dout with the same weight
        dW = Xᵀ · D           (C, O·K·K)
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
        self.x_shape = x.shape
        self.x2 = _nchw_to_rows(x)                                       # (N·H·W, C)
        W2 = self.weight.data.reshape(self.in_channels, -1)              # (C, O·K·K)
        cols = self.x2 @ W2                                              # (N·H·W, O·K·K)
        out = col2im(cols, (N, self.out_channels, OH, OW), k, s, p)
        if self.bias is not None:
            out += self.bias.data.reshape(1, -1, 1, 1)
        self.out_shape = out.shape
        return out

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        D = im2col(dout, self.kernel_size, self.stride, self.padding)    # (N·H·W, O·K·K)
        if self.weight.requires_grad:
            self.weight.grad += (self.x2.T @ D).reshape(self.weight.shape)
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dout.sum(axis=(0, 2, 3))
        W2 = self.weight.data.reshape(self.in_channels, -1)
        N, _, H, W = self.x_shape
        return _rows_to_nchw(D @ W2.T, N, H, W)
