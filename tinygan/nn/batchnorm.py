"""BatchNorm2d: per-channel normalisation over the batch and both spatial axes.

Notation: N batch, C channels, H, W size; M = N·H·W values per channel.

Train mode (batch statistics, reduced over axes (0, 2, 3)):
    μ = mean(x),  σ² = mean((x − μ)²)  (biased),  x̂ = (x − μ)/√(σ² + eps),  y = γ·x̂ + β
    running_mean ← (1 − momentum)·running_mean + momentum·μ
    running_var  ← (1 − momentum)·running_var  + momentum·σ²·M/(M − 1)   (unbiased, as PyTorch)
Eval mode: the same with μ, σ² replaced by the running statistics (constants).

Cache: ``self.x_hat`` (N, C, H, W) and ``self.inv_std`` (C,).

Every full-size array is made with ``like(x)`` and filled with ``out=``, so it keeps the
input's memory layout on CuPy too (see ``activation.py``). Every step of forward and
backward is per channel, so on NumPy the channels are split over threads
(``parallel.run``): each thread normalises its channels from start to end.

Compiled loops. Where Numba is installed (``tinygan.jit``) and the arrays are stored
batch-innermost (as tinygan's layers hand them over), the element-wise tail of each pass
— forward x̂ ← x̂·inv_std, y = x̂·γ + β; backward dx = scale·dy − k·dγ·x̂ − k·dβ — is one
loop over each channel's numbers instead of three NumPy passes; the sums stay NumPy's
(the same order of additions, so the same bits).
"""
import numpy as np

from .. import backend, jit, parallel
from .activation import like
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
        M = N * H * W
        if self.training and M < 2:
            raise ValueError(f"BatchNorm2d: expected more than 1 value per channel in train mode, "
                             f"got input of shape {tuple(x.shape)}; use a batch of 2 or more or eval()")
        self.mode_at_forward = self.training
        self.x_hat, y = like(x), like(x)
        gamma, beta = self.weight.data, self.bias.data

        def normalise(lo, hi):                             # channels lo..hi-1: every step is per channel
            xs, x_hat, c = x[:, lo:hi], self.x_hat[:, lo:hi], (1, hi - lo, 1, 1)
            mean = xs.mean(axis=(0, 2, 3)) if self.training else self.running_mean[lo:hi]
            xp.subtract(xs, mean.reshape(c), out=x_hat)                      # x − μ, normalised in place below
            if self.training:
                var = xp.einsum("nchw,nchw->c", x_hat, x_hat) / M           # Σ(x − μ)²/M, no (x − μ)² temporary
            else:
                var = self.running_var[lo:hi]
            inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)
            per_channel = (inv_std, gamma[lo:hi], beta[lo:hi])
            rows = _channel_rows(x_hat, y[:, lo:hi], per_channel=per_channel)
            if rows is not None:                                             # the three lines below, compiled
                _scale_shift_loop(*rows, *per_channel)
                return mean, var, inv_std
            x_hat *= inv_std.reshape(c)                                      # x̂ = (x − μ)·inv_std
            ys = xp.multiply(x_hat, gamma[lo:hi].reshape(c), out=y[:, lo:hi])
            ys += beta[lo:hi].reshape(c)                                     # y = γ·x̂ + β
            return mean, var, inv_std
        # the channels split over threads (parallel.py); (C,) statistics joined back
        mean, var, self.inv_std = parallel.joined(parallel.run(normalise, C, x.size, xp, pieces=parallel.PIECES), xp)

        if self.training:
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * M / (M - 1)) * var
            self.num_batches_tracked += 1
        self.out_shape = x.shape
        return y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, C, H, W = dout.shape
        M = N * H * W
        xp = backend.get_array_module(dout)
        dx = like(dout)

        def per_channel(lo, hi):                           # channels lo..hi-1
            dy, x_hat, c = dout[:, lo:hi], self.x_hat[:, lo:hi], (1, hi - lo, 1, 1)
            dbeta = dy.sum(axis=(0, 2, 3))
            dgamma = xp.einsum("nchw,nchw->c", dy, x_hat)                   # Σ dy·x̂, no dy·x̂ temporary
            scale = self.weight.data[lo:hi] * self.inv_std[lo:hi]           # γ·inv_std
            if self.mode_at_forward:
                k = scale / M
                k_dgamma, k_dbeta = k * dgamma, k * dbeta
                rows = _channel_rows(dy, x_hat, dx[:, lo:hi], per_channel=(scale, k_dgamma, k_dbeta))
                if rows is not None:                                         # the three lines below, compiled
                    _batchnorm_dx_loop(*rows, scale, k_dgamma, k_dbeta)
                    return dbeta, dgamma
            dxs = xp.multiply(dy, scale.reshape(c), out=dx[:, lo:hi])       # scale·dy
            if self.mode_at_forward:
                # dx = scale·dy − (scale/M)·(dβ + x̂·dγ): two more passes over the channels' values
                dxs -= xp.multiply(x_hat, k_dgamma.reshape(c), out=like(dxs))
                dxs -= k_dbeta.reshape(c)
            return dbeta, dgamma
        # the channels split over threads (parallel.py); (C,) sums joined back
        dbeta, dgamma = parallel.joined(parallel.run(per_channel, C, dout.size, xp, pieces=parallel.PIECES), xp)
        if self.weight.requires_grad:
            self.weight.grad += dgamma
        if self.bias.requires_grad:
            self.bias.grad += dbeta
        return dx


def _channel_rows(*arrays, per_channel=()):
    """(N, c, H, W) views stored batch-innermost as (c, H·W·N) matrices (views), or None.

    None — the NumPy lines are used — without Numba, on a GPU, for any other layout, or where
    the arrays and the ``per_channel`` numbers are not all of one dtype (``jit.usable``).
    """
    if not jit.usable(*arrays, *per_channel):
        return None
    rows = [a.transpose(1, 2, 3, 0) for a in arrays]
    if not all(r.flags.c_contiguous for r in rows):
        return None
    return [r.reshape(r.shape[0], -1) for r in rows]


@jit.loop
def _scale_shift_loop(x_hat, y, inv_std, gamma, beta):
    """x̂ ← x̂·inv_std;  y = x̂·γ + β, per channel row c of (c, M) matrices: forward's three passes in one."""
    for c in range(x_hat.shape[0]):
        s, g, b = inv_std[c], gamma[c], beta[c]
        xr, yr = x_hat[c], y[c]
        for j in range(xr.size):
            v = xr[j] * s
            xr[j] = v
            yr[j] = v * g + b


@jit.loop
def _batchnorm_dx_loop(dy, x_hat, dx, scale, k_dgamma, k_dbeta):
    """dx = scale·dy − x̂·(k·dγ) − k·dβ per channel row (k = scale/M): train-mode backward in one pass."""
    for c in range(dy.shape[0]):
        s, kg, kb = scale[c], k_dgamma[c], k_dbeta[c]
        dyr, xr, dxr = dy[c], x_hat[c], dx[c]
        for j in range(dyr.size):
            dxr[j] = (dyr[j] * s - xr[j] * kg) - kb
