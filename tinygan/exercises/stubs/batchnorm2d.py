"""Exercise 5 of 10: BatchNorm2d's backward, through the batch statistics.

Read first: docs/tour.md stops 4 and 5; tinygan/nn/batchnorm.py (its docstring).
Check:  python -m tinygan.exercises check batchnorm2d
Train:  python -m tinygan.exercises train batchnorm2d    (yours as every BatchNorm2d of G and D)

Notation: N batch, C channels, H, W size; M = N·H·W values per channel; sums Σ run over
those M values, axes (0, 2, 3), one per channel. weight γ (C,), bias β (C,).

forward (given: tinygan's, in reference mode) computes, in train mode,

    μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ)/√(σ² + eps),  y = γ·x̂ + β

and keeps self.x_hat (N, C, H, W), self.inv_std = 1/√(σ² + eps) (C,) and
self.mode_at_forward (True in train mode). μ and σ² depend on every x of the channel, so
the input gradient has two terms more than γ·dy·inv_std. With dx̂ = γ·dy:

    dβ = Σ dy,   dγ = Σ dy·x̂
    dx = inv_std/M · (M·dx̂ − Σ dx̂ − x̂·Σ(dx̂·x̂))

In eval mode μ and σ² are constants (the running statistics) and dx = inv_std·dx̂ (given).

backward ADDS dγ and dβ into self.weight.grad and self.bias.grad and returns dx, a new array.

Hints
- A (C,) vector v broadcasts against (N, C, H, W) as v.reshape(1, C, 1, 1).
- x.sum(axis=(0, 2, 3)) is the per-channel Σ; .reshape(1, C, 1, 1) it before broadcasting.
- With an upstream gradient of ones the right dx is zero (tour stop 4): a quick sanity test.

The solution is the library's own code: tinygan/nn/batchnorm.py, BatchNorm2d.backward.
"""
import numpy as np

from tinygan import nn


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d(num_features, eps=1e-5, momentum=0.1), as tinygan's; forward is tinygan's."""

    def backward(self, dout):
        """dout (N, C, H, W) -> dx (N, C, H, W); adds dγ and dβ into .grad."""
        N, C, H, W = dout.shape
        M, c, axes = N * H * W, (1, C, 1, 1), (0, 2, 3)
        x_hat, inv_std = self.x_hat, self.inv_std.reshape(c)
        dx_hat = dout * self.weight.data.reshape(c)                      # dx̂ = γ·dy
        if not self.mode_at_forward:                                     # eval mode: μ, σ² constants
            dx = inv_std * dx_hat
        else:
            raise NotImplementedError("BatchNorm2d.backward: dx in train mode, through μ and σ²")
        raise NotImplementedError("BatchNorm2d.backward: add dγ and dβ into .grad, then return dx")
