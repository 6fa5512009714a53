"""BatchNorm2d's speed path: channels split over threads, and compiled loops for the element-wise tails.

``batchnorm.py`` opens with the textbook forward and backward, formula by formula; by
default each pass is instead one call into this file — the same arithmetic, arranged for
speed (tests/test_reference_mode.py checks the two):

* Every full-size array is made with ``like(x)`` and filled with ``out=``, so it keeps the
  input's memory layout on CuPy too (see ``activation.py``). The sums of products, Σ(x − μ)²
  and Σ dy·x̂, are a product and a reduction (``_sum_of_products``), the same on NumPy and
  CuPy, with the product written into the output's memory before the output is: no
  temporary. Not ``einsum``: CuPy runs "nchw,nchw->c" as a batched matrix product, copying
  both operands first, and under ``CUPY_TF32=1`` in TF32 — BatchNorm's statistics would then
  lose precision that PyTorch's TF32 flags never take from BatchNorm.
* Every step of forward and backward is per channel, so on NumPy the channels are split
  over threads (``parallel.run``): each thread normalises its channels from start to end.
* Where Numba is installed (``tinygan.jit``) and the arrays are stored batch-innermost (as
  tinygan's layers hand them over), the element-wise tail of each pass — forward
  x̂ ← x̂·inv_std, y = x̂·γ + β; backward dx = scale·dy − k·dγ·x̂ − k·dβ — is one loop over
  each channel's numbers instead of three NumPy passes; the sums stay NumPy's (the same
  order of additions, so the same bits).

Notation: N batch, C channels, H, W size; M = N·H·W values per channel.
"""
from .. import backend, jit, parallel
from .activation_fast import like


def forward(x, gamma, beta, eps, stats=None):
    """x (N, C, H, W) -> (y, x̂, μ, σ², inv_std): batch statistics, or ``stats`` = (μ, σ²)
    (eval mode: the running statistics) when given. y and x̂ keep x's layout."""
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    M = N * H * W
    x_hat, y = like(x), like(x)

    def normalise(lo, hi):                             # channels lo..hi-1: every step is per channel
        xs, xh, c = x[:, lo:hi], x_hat[:, lo:hi], (1, hi - lo, 1, 1)
        mean = xs.mean(axis=(0, 2, 3)) if stats is None else stats[0][lo:hi]
        xp.subtract(xs, mean.reshape(c), out=xh)                         # x − μ, normalised in place below
        if stats is None:
            var = _sum_of_products(xh, xh, y[:, lo:hi]) / M             # Σ(x − μ)²/M; y is written below
        else:
            var = stats[1][lo:hi]
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        per_channel = (inv_std, gamma[lo:hi], beta[lo:hi])
        rows = _channel_rows(xh, y[:, lo:hi], per_channel=per_channel)
        if rows is not None:                                             # the three lines below, compiled
            _scale_shift_loop(*rows, *per_channel)
            return mean, var, inv_std
        xh *= inv_std.reshape(c)                                         # x̂ = (x − μ)·inv_std
        ys = xp.multiply(xh, gamma[lo:hi].reshape(c), out=y[:, lo:hi])
        ys += beta[lo:hi].reshape(c)                                     # y = γ·x̂ + β
        return mean, var, inv_std
    # the channels split over threads (parallel.py); (C,) statistics joined back
    mean, var, inv_std = parallel.joined(parallel.run(normalise, C, x.size, xp, pieces=parallel.PIECES), xp)
    return y, x_hat, mean, var, inv_std


def backward(dout, x_hat, gamma, inv_std, batch_statistics):
    """-> (dx, dγ, dβ); with ``batch_statistics`` (train mode) the gradient through μ and σ²."""
    N, C, H, W = dout.shape
    M = N * H * W
    xp = backend.get_array_module(dout)
    dx = like(dout)

    def per_channel(lo, hi):                           # channels lo..hi-1
        dy, xh, c = dout[:, lo:hi], x_hat[:, lo:hi], (1, hi - lo, 1, 1)
        dbeta = dy.sum(axis=(0, 2, 3))
        dgamma = _sum_of_products(dy, xh, dx[:, lo:hi])                  # Σ dy·x̂; dx is written below
        scale = gamma[lo:hi] * inv_std[lo:hi]                            # γ·inv_std
        if batch_statistics:
            k = scale / M
            k_dgamma, k_dbeta = k * dgamma, k * dbeta
            rows = _channel_rows(dy, xh, dx[:, lo:hi], per_channel=(scale, k_dgamma, k_dbeta))
            if rows is not None:                                         # the three lines below, compiled
                _batchnorm_dx_loop(*rows, scale, k_dgamma, k_dbeta)
                return dbeta, dgamma
        dxs = xp.multiply(dy, scale.reshape(c), out=dx[:, lo:hi])       # scale·dy
        if batch_statistics:
            # dx = scale·dy − (scale/M)·(dβ + x̂·dγ): two more passes over the channels' values
            dxs -= xp.multiply(xh, k_dgamma.reshape(c), out=like(dxs))
            dxs -= k_dbeta.reshape(c)
        return dbeta, dgamma
    # the channels split over threads (parallel.py); (C,) sums joined back
    dbeta, dgamma = parallel.joined(parallel.run(per_channel, C, dout.size, xp, pieces=parallel.PIECES), xp)
    return dx, dgamma, dbeta


def _sum_of_products(a, b, scratch):
    """Σ a·b per channel over (N, H, W): the product into ``scratch`` (memory the caller fills
    afterwards), then one reduction — plain FP32 arithmetic on every backend."""
    xp = backend.get_array_module(a)
    return xp.multiply(a, b, out=scratch).sum(axis=(0, 2, 3))


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
