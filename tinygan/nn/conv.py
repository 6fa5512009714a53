"""Conv2d and ConvTranspose2d: im2col and one matrix product each, and each other's gradient.

Notation (as in ``im2col.py``): N batch, C input channels, O output channels, K kernel,
s stride, p padding; (H, W) input size, (OH, OW) output size.

A convolution is one product once every window is a row: with cols = im2col(x)
(N·OH·OW, C·K·K) and the weight as a matrix W2 (O, C·K·K),

    Conv2d            forward   Y  = cols · W2ᵀ + b                     (N·OH·OW, O)
                      backward  dW2 = dYᵀ · cols,   db = Σ dY,   dx = col2im(dY · W2)

col2im is im2col's adjoint (overlapping windows add up), so a convolution's input gradient
scatters every output gradient back over its window. A transposed convolution is exactly
that input gradient used as a forward pass, and its backward is a convolution:

    ConvTranspose2d   forward   y  = col2im(X · W2) + b                 X (N·H·W, C), W2 (C, O·K·K)
                      backward  dW2 = Xᵀ · im2col(dy),   db = Σ dy,   dX = im2col(dy) · W2ᵀ

which is why ConvTranspose2d stores its weight (in, out, K, K), as PyTorch does.

The code below is this textbook, line for line, and runs in reference mode
(``tinygan.reference``; ``TINYGAN_REFERENCE=1``). By default each pass is instead one call
into ``conv_fast.py``: the same products in the batch-innermost layout of ``layout.py``,
with compiled loops and threads (tests/test_reference_mode.py checks the two equal).

``needs_input_grad = False`` (see ``Module``) skips dx — for a network's first layer, whose
input (images, noise) needs no gradient — and backward returns None.

Memory. Reference mode caches the column matrix ``self.cols``; the fast path keeps the
input instead (``self.x``, ``self.X``) and rebuilds the columns in backward.
"""
import math

import numpy as np

from .. import backend, reference
from . import conv_fast
from .im2col import col2im, conv_out_size, deconv_out_size, im2col
from .module import Module, Parameter, check_cache, check_input
from .workspace import Workspace


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
        self.workspace = Workspace()                 # scratch; Module.share_workspace() shares one

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation, as PyTorch), weight (O, C, K, K), bias (O,).

    forward:  (N, C, H, W) -> (N, O, OH, OW),  OH = floor((H + 2p − K)/s) + 1
              Y = cols · W2ᵀ + b,  cols = im2col(x) (N·OH·OW, C·K·K),  W2 (O, C·K·K)
    backward: with dY the upstream gradient as an (N·OH·OW, O) matrix,
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
        O, k, s, p = self.out_channels, self.kernel_size, self.stride, self.padding
        OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        if OH < 1 or OW < 1:
            raise ValueError(f"Conv2d: input of shape {tuple(x.shape)} is smaller than the kernel "
                             f"(k={k}, padding={p}): need H, W >= {k - 2 * p}")
        self.x_shape, self.out_shape = x.shape, (N, O, OH, OW)
        b = None if self.bias is None else self.bias.data
        self.fast = not reference.on()
        if self.fast:                                                    # the speed path: one call
            self.x, self.cols = x, None
            return conv_fast.conv2d_forward(x, self.weight.data, b, k, s, p, (OH, OW), self.workspace)
        self.x, self.cols = None, im2col(x, k, s, p)                     # (N·OH·OW, C·K·K)
        Y = self.cols @ self.weight.data.reshape(O, -1).T                # (N·OH·OW, O)
        if b is not None:
            Y += b
        return Y.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)             # (N, O, OH, OW)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        if self.fast:
            return conv_fast.conv2d_backward(dout, self.x, self.weight, self.bias, self.kernel_size,
                                             self.stride, self.padding, self.workspace, self.needs_input_grad)
        O = self.out_channels
        dY = dout.transpose(0, 2, 3, 1).reshape(-1, O)                   # (N·OH·OW, O)
        W2 = self.weight.data.reshape(O, -1)                             # (O, C·K·K)
        if self.weight.requires_grad:
            self.weight.grad += (dY.T @ self.cols).reshape(self.weight.shape)   # dW = dYᵀ · cols
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dY.sum(axis=0)                             # db = Σ dY
        if not self.needs_input_grad:
            return None
        return col2im(dY @ W2, self.x_shape, self.kernel_size, self.stride, self.padding)   # dx


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution, weight (C, O, K, K) as PyTorch, bias (O,).

    forward:  (N, C, H, W) -> (N, O, OH, OW),  OH = (H − 1)·s − 2p + K + output_padding
              every input pixel scatters C→O weighted K×K patches; overlaps add:
              y = col2im(X · W2) + b,  X the input as an (N·H·W, C) matrix,  W2 (C, O·K·K)
    backward: with cols = im2col(dout) (N·H·W, O·K·K), the windows of the padded dout,
        dX = cols · W2ᵀ               a strided convolution of dout with the same weight
        dW = Xᵀ · cols                (C, O·K·K)
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
        self.x_shape, self.out_shape = x.shape, (N, self.out_channels, OH, OW)
        b = None if self.bias is None else self.bias.data
        self.fast = not reference.on()
        if self.fast:                                                    # the speed path: one call
            y, self.X = conv_fast.conv_transpose2d_forward(x, self.weight.data, b, k, s, p, (OH, OW),
                                                           self.workspace)
            return y
        self.X = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)           # (N·H·W, C)
        cols = self.X @ self.weight.data.reshape(C, -1)                  # (N·H·W, O·K·K)
        y = col2im(cols, (N, self.out_channels, OH, OW), k, s, p)        # (N, O, OH, OW)
        if b is not None:
            y += b.reshape(-1, 1, 1)
        return y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        k, s, p = self.kernel_size, self.stride, self.padding
        if self.fast:
            return conv_fast.conv_transpose2d_backward(dout, self.X, self.weight, self.bias, k, s, p,
                                                       self.workspace, self.needs_input_grad)
        N, C, H, W = self.x_shape
        W2 = self.weight.data.reshape(C, -1)                             # (C, O·K·K)
        cols = im2col(dout, k, s, p)                                     # (N·H·W, O·K·K)
        if self.weight.requires_grad:
            self.weight.grad += (self.X.T @ cols).reshape(self.weight.shape)    # dW = Xᵀ · cols
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dout.sum(axis=(0, 2, 3))                   # db = Σ dout
        if not self.needs_input_grad:
            return None
        return (cols @ W2.T).reshape(N, H, W, C).transpose(0, 3, 1, 2)   # dX, (N, C, H, W)
