"""Exercise 3 of 10: Conv2d, forward and backward.

Read first: docs/tour.md stops 2 and 3; tinygan/nn/conv.py (its docstring).
Check:  python -m tinygan.exercises check conv2d
Train:  python -m tinygan.exercises train conv2d    (yours as every convolution of D)

Notation: N batch, C input channels, O output channels, K kernel, s stride, p padding,
(H, W) input size, (OH, OW) output size. weight (O, C, K, K), bias (O,) or None.

With cols = im2col(x) (N·OH·OW, C·K·K) and the weight as a matrix W2 = weight.reshape(O, C·K·K):

    forward    Y = cols · W2ᵀ + b                  (N·OH·OW, O), then reshaped to (N, OH, OW, O)
                                                    and transposed to (N, O, OH, OW)
    backward   dY = dout as an (N·OH·OW, O) matrix, rows ordered (n, oy, ox) as cols' rows
               dW = dYᵀ · cols                     (O, C·K·K), reshaped to (O, C, K, K)
               db = Σ dY over its rows              (O,)
               dx = col2im(dY · W2)                (N, C, H, W): overlapping windows add up

backward ADDS dW and db into self.weight.grad and self.bias.grad (D runs backward twice, real
batch then fake, before one optimizer step) and returns dx, a new array. Where a parameter's
requires_grad is False (D's layers during G's step) it adds nothing to that parameter.

Hints
- forward keeps what backward needs: self.cols (the columns) and the input's shape.
- dout.transpose(0, 2, 3, 1).reshape(-1, O) orders dout's rows (n, oy, ox), like cols'.
- im2col and col2im here are the library's; yours from exercises 1 and 2 would do as well.

The solution is the library's own code: tinygan/nn/conv.py, Conv2d.forward and .backward
(the lines reference mode runs, after the `if self.fast:` branch).
"""
import numpy as np

from tinygan import nn
from tinygan.nn import col2im, conv_out_size, im2col


class Conv2d(nn.Conv2d):
    """Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True), as tinygan's."""

    def forward(self, x):
        """x (N, C, H, W) -> (N, O, OH, OW)."""
        N, C, H, W = x.shape
        O, k, s, p = self.out_channels, self.kernel_size, self.stride, self.padding
        OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        self.x_shape = x.shape
        raise NotImplementedError("Conv2d.forward: self.cols = im2col(...), then one matrix product")

    def backward(self, dout):
        """dout (N, O, OH, OW) -> dx (N, C, H, W); adds dW and db into .grad."""
        O = self.out_channels
        W2 = self.weight.data.reshape(O, -1)                 # (O, C·K·K)
        raise NotImplementedError("Conv2d.backward: dY, then dW, db (added into .grad) and dx = col2im(dY · W2)")
