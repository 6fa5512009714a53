"""MinibatchStd: one extra feature map saying how varied the batch is (Karras et al. 2018, ProGAN).

Notation: N batch, C channels, H, W size; G the group size, M = N/G the number of groups;
ε = 1e-8.

Why. D judges every image on its own, so it cannot see that a batch from G is sixty-four
copies of nearly one image (mode collapse): each copy may look real. This layer hands D,
as a constant extra channel, how much the images of a group differ from each other —
the standard deviation of every feature over the group, averaged over features and
pixels. A collapsed batch shows about 0 there and a real one does not, so D can tell them
apart and G is pushed to vary its samples. Placed before D's last convolution, whose
in_channels then grow by 1.

Groups are strided, as in the original code: x is viewed as (G, M, C, H, W), so image
n = g·M + m is member g of group m (image n is in group n mod M). G = group_size, or N
when group_size is None or larger than the batch (as the original does); N must be a
multiple of G.

forward, for each group m:
    μ_m = (1/G) Σ_g x[g, m]                              (C, H, W)
    s_m = √( (1/G) Σ_g (x[g, m] − μ_m)² + ε )            biased variance, then the root
    f_m = (1/(C·H·W)) Σ_{c,h,w} s_m                      one number per group
    y   = [x, f_{n mod M} at every pixel]                (N, C + 1, H, W)

backward. dy = [dy_x, dy_f]: the first C channels pass straight through. Every member
and pixel of group m carried f_m, so df_m = Σ_g Σ_{h,w} dy_f[g, m, h, w]; and
    ∂f_m/∂s_m = 1/(C·H·W),   ∂s/∂var = 1/(2s),   ∂var/∂x[g] = (2/G)(x[g] − μ)
(μ's own term drops out: Σ_g (x[g] − μ) = 0), so
    dx[g, m] = dy_x[g, m] + df_m/(C·H·W) · (x[g, m] − μ_m) / (G·s_m)

Cache: ``self.scaled`` = (x − μ)/(G·s) as (G, M, C, H, W). The layer has no parameters
and behaves the same in train and eval mode. The loop version is
``minibatch_std_reference``.
"""
import numpy as np

from ..backend import get_array_module
from .layout import chwn_to_nchw
from .module import Module, check_cache


class MinibatchStd(Module):
    """(N, C, H, W) → (N, C + 1, H, W): x, and the group's mean standard deviation as channel C.

    The output is stored batch-innermost, as every tinygan layer returns it (``layout.py``).
    """

    eps = 1e-8

    def __init__(self, group_size=4):
        if group_size is not None and (int(group_size) != group_size or group_size < 1):
            raise ValueError(f"MinibatchStd: group_size must be an integer >= 1 or None (the whole batch), "
                             f"got {group_size}")
        self.group_size = None if group_size is None else int(group_size)

    def extra_repr(self):
        return f"group_size={self.group_size}"

    def group(self, N, shape):
        """G for a batch of N: group_size, or N when that is None or larger; N must be a multiple of it."""
        G = N if self.group_size is None else min(self.group_size, N)
        if N % G:
            raise ValueError(f"MinibatchStd: batch of {N} (input shape {shape}) is not divisible by "
                             f"group_size={G}: use a batch size that is a multiple of {G}, or "
                             "MinibatchStd(group_size=None) to make the whole batch one group")
        return G

    def forward(self, x):
        if getattr(x, "ndim", None) != 4:
            raise ValueError(f"MinibatchStd: expected input of shape (N, C, H, W), got "
                             f"{'shape ' + str(tuple(x.shape)) if hasattr(x, 'shape') else 'a ' + type(x).__name__}")
        xp = get_array_module(x)
        N, C, H, W = x.shape
        G = self.group(N, tuple(x.shape))
        M = N // G
        xg = x.reshape(G, M, C, H, W)
        dev = xg - xg.mean(axis=0)                                   # x − μ
        s = xp.sqrt((dev * dev).mean(axis=0) + x.dtype.type(self.eps))   # (M, C, H, W)
        f = s.mean(axis=(1, 2, 3))                                   # (M,)
        self.scaled = dev / (G * s)                                  # (x − μ)/(G·s), for backward
        y = chwn_to_nchw(xp.empty((C + 1, H, W, N), dtype=x.dtype))  # (N, C + 1, H, W) view
        y[:, :C] = x
        y[:, C] = xp.tile(f, G).reshape(N, 1, 1)                     # image g·M + m gets f_m
        self.out_shape = (N, C + 1, H, W)
        return y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, C1, H, W = dout.shape
        C = C1 - 1
        G, M = self.scaled.shape[:2]
        df = dout[:, C].sum(axis=(1, 2)).reshape(G, M).sum(axis=0)   # (M,): Σ over members and pixels
        term = (df / (C * H * W)).reshape(1, M, 1, 1, 1) * self.scaled
        return dout[:, :C] + term.reshape(N, C, H, W)


def minibatch_std_reference(x, group_size=4, eps=1e-8):
    """Loop version of the forward in float64: one group at a time, its members listed by index."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    G = N if group_size is None else min(group_size, N)
    M = N // G
    y = np.zeros((N, C + 1, H, W))
    y[:, :C] = x
    for m in range(M):
        members = [g * M + m for g in range(G)]
        group = x[members]                                          # (G, C, H, W)
        s = np.sqrt(((group - group.mean(axis=0)) ** 2).mean(axis=0) + eps)
        for n in members:
            y[n, C] = s.mean()
    return y
