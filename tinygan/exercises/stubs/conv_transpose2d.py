"""Exercise 4 of 10: ConvTranspose2d, forward and backward.

Read first: docs/tour.md stop 3; tinygan/nn/conv.py (its docstring).
Check:  python -m tinygan.exercises check conv_transpose2d
Train:  python -m tinygan.exercises train conv_transpose2d    (yours as every layer of G that upsamples)

Notation: N batch, C input channels, O output channels, K kernel, s stride, p padding,
(H, W) input size, (OH, OW) output size, OH = (H − 1)·s − 2p + K (``deconv_out_size``).
weight (C, O, K, K), as PyTorch stores it; bias (O,) or None.

A transposed convolution is a convolution's input gradient used as a forward pass, and its
backward is a convolution. With X the input as an (N·H·W, C) matrix, rows ordered (n, y, x),
and W2 = weight.reshape(C, O·K·K):

    forward    y = col2im(X · W2) + b              col2im to the OUTPUT's shape (N, O, OH, OW)
    backward   cols = im2col(dout)                 (N·H·W, O·K·K): the windows of dout
               dW = Xᵀ · cols                      (C, O·K·K), reshaped to (C, O, K, K)
               db = Σ dout over (n, y, x)          (O,)
               dX = cols · W2ᵀ                     (N·H·W, C), back to (N, C, H, W)

backward ADDS dW and db into .grad (only where requires_grad) and returns dX, a new array.

Hints
- x.transpose(0, 2, 3, 1).reshape(N·H·W, C) gives X; keep it (self.X) for backward.
- im2col(dout, K, s, p) has N·H·W rows: the output size of that convolution is the input's.

The solution is the library's own code: tinygan/nn/conv.py, ConvTranspose2d.forward and .backward.
"""
import numpy as np

from tinygan import nn
from tinygan.nn import col2im, deconv_out_size, im2col


class ConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True), as tinygan's."""

    def forward(self, x):
        """x (N, C, H, W) -> (N, O, OH, OW)."""
        N, C, H, W = x.shape
        k, s, p, op = self.kernel_size, self.stride, self.padding, self.output_padding
        OH, OW = deconv_out_size(H, k, s, p, op), deconv_out_size(W, k, s, p, op)
        self.x_shape = x.shape
        raise NotImplementedError("ConvTranspose2d.forward: self.X, then col2im(X · W2) + b")

    def backward(self, dout):
        """dout (N, O, OH, OW) -> dX (N, C, H, W); adds dW and db into .grad."""
        N, C, H, W = self.x_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        W2 = self.weight.data.reshape(C, -1)                 # (C, O·K·K)
        raise NotImplementedError("ConvTranspose2d.backward: cols = im2col(dout, ...), then dW, db and dX")
