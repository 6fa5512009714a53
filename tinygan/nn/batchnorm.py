"""BatchNorm2d: per-channel normalisation over the batch and both spatial axes.

Notation: N batch, C channels, H, W size; M = N·H·W values per channel.

Train mode (batch statistics, reduced over axes (0, 2, 3)):
    μ = mean(x),  σ² = mean((x − μ)²)  (biased),  x̂ = (x − μ)/√(σ² + eps),  y = γ·x̂ + β
    running_mean ← (1 − momentum)·running_mean + momentum·μ
    running_var  ← (1 − momentum)·running_var  + momentum·σ²·M/(M − 1)   (unbiased, as PyTorch)
Eval mode: the same with μ, σ² replaced by the running statistics (constants).

Cache: ``self.x_hat`` (N, C, H, W) and ``self.inv_std`` (C,).

The code below is these formulas, line for line, and runs in reference mode
(``tinygan.reference``; ``TINYGAN_REFERENCE=1``). By default each pass is instead one call
into ``batchnorm_fast.py``: the same arithmetic with the channels split over threads and the
element-wise tails compiled (tests/test_reference_mode.py checks the two).
"""
import numpy as np

from .. import backend, reference
from . import batchnorm_fast
from .module import Module, Parameter, check_cache, check_input


class BatchNorm2d(Module):
    """Batch normalisation for (N, C, H, W) input; weight γ (C,), bias β (C,), running stats (C,).

    backward, train mode — the gradient also flows through μ and σ², which depend on
    every x in the channel. With dx̂ = γ·dy and sums over the M values of a channel:
        dβ = Σ dy,   dγ = Σ dy·x̂
        dx = (inv_std / M) · (M·dx̂ − Σ dx̂ − x̂·Σ(dx̂·x̂))
           = γ·inv_std/M · (M·dy − dβ − x̂·dγ)
    backward, eval mode — μ and σ² are constants, so dx = γ·inv_std·dy.
    """

    _buffers = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        if num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be >= 1, got {num_features}")
        xp, dtype = backend.xp(), backend.default_dtype()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(xp.ones(num_features, dtype=dtype))
        self.bias = Parameter(xp.zeros(num_features, dtype=dtype))
        self.running_mean = xp.zeros(num_features, dtype=dtype)
        self.running_var = xp.ones(num_features, dtype=dtype)
        self.num_batches_tracked = xp.zeros((), dtype=np.int64)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        check_input(self, x, self.num_features)
        xp = backend.get_array_module(x)
        N, C, H, W = x.shape
        M, c = N * H * W, (1, C, 1, 1)                                   # c: a (C,) vector as (1, C, 1, 1)
        if self.training and M < 2:
            raise ValueError(f"BatchNorm2d: expected more than 1 value per channel in train mode, "
                             f"got input of shape {tuple(x.shape)}; use a batch of 2 or more or eval()")
        self.mode_at_forward, self.out_shape = self.training, x.shape
        gamma, beta = self.weight.data, self.bias.data
        self.fast = not reference.on()
        if self.fast:                                                    # the speed path: one call
            stats = None if self.training else (self.running_mean, self.running_var)
            y, self.x_hat, mean, var, self.inv_std = batchnorm_fast.forward(x, gamma, beta, self.eps, stats)
        else:
            if self.training:
                mean = x.mean(axis=(0, 2, 3))                            # μ (C,)
                var = ((x - mean.reshape(c)) ** 2).mean(axis=(0, 2, 3))  # σ² (C,), biased
            else:
                mean, var = self.running_mean, self.running_var
            self.inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)
            self.x_hat = (x - mean.reshape(c)) * self.inv_std.reshape(c)   # x̂ = (x − μ)/√(σ² + eps)
            y = gamma.reshape(c) * self.x_hat + beta.reshape(c)          # y = γ·x̂ + β
        if self.training:
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * M / (M - 1)) * var
            self.num_batches_tracked += 1
        return y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, C, H, W = dout.shape
        M, c, axes = N * H * W, (1, C, 1, 1), (0, 2, 3)
        if self.fast:                                                    # the speed path: one call
            dx, dgamma, dbeta = batchnorm_fast.backward(dout, self.x_hat, self.weight.data, self.inv_std,
                                                        self.mode_at_forward)
        else:
            x_hat, inv_std = self.x_hat, self.inv_std.reshape(c)
            dbeta = dout.sum(axis=axes)                                  # dβ = Σ dy
            dgamma = (dout * x_hat).sum(axis=axes)                       # dγ = Σ dy·x̂
            dx_hat = dout * self.weight.data.reshape(c)                  # dx̂ = γ·dy
            if self.mode_at_forward:                                     # through μ and σ² too
                dx = (inv_std / M) * (M * dx_hat - dx_hat.sum(axis=axes).reshape(c)
                                      - x_hat * (dx_hat * x_hat).sum(axis=axes).reshape(c))
            else:                                                        # μ, σ² constants
                dx = inv_std * dx_hat
        if self.weight.requires_grad:
            self.weight.grad += dgamma
        if self.bias.requires_grad:
            self.bias.grad += dbeta
        return dx
