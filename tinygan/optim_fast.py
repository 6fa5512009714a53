"""Adam's speed path: the whole model's numbers in one buffer, updated in cache-sized chunks,
over threads, or in one compiled pass.

``optim.py`` opens with Adam's four-line update, tensor by tensor, as the paper writes it; by
default ``Adam.step`` is instead one call into ``adam_step`` here.

At construction ``flatten`` moves every parameter's data and gradient into one contiguous
buffer each (the Parameters keep their shapes, as views of it), and the moments are one
buffer each too. Then each line of Adam's update is one pass over all the model's numbers
instead of one per tensor — the idea of PyTorch's ``foreach``/``fused`` Adam. The update is
written as PyTorch computes it, p ← p − (lr/bias1)·m / (√v/√bias2 + eps), which rounds
differently from the textbook's m̂/(√v̂ + eps) in the last bits (tests/test_reference_mode.py
states the tolerance); the flat, chunked, threaded and compiled versions of it are the
same arithmetic element by element, so the same bits.
"""
import numpy as np

from . import jit, parallel
from .backend import get_array_module


# Adam's update on NumPy runs over the flat buffers in chunks of this many numbers, so that
# its eleven passes over a chunk (and the two scratch arrays) stay in the CPU's cache; on a
# GPU the whole buffer is one launch per pass. Split over threads, the chunks are larger:
# each of the eleven calls a chunk costs needs Python's global lock to start, and two
# threads asking for it every few microseconds wait on each other (Adam of G, 3.6 M
# numbers, Intel Xeon: one thread 9.1 ms at 2^16; two threads 8.4 ms at 2^16, 5.7 at 2^18).
_CHUNK = 2 ** 16
_CHUNK_THREADED = 2 ** 18


def flatten(params):
    """Put the data and the gradients of ``params`` into one contiguous buffer each.

    Every ``p.data`` and ``p.grad`` becomes a view of its slice (same shape, same values).
    Returns (data, grad), both (Σ sizes,), or None when the parameters do not share one
    backend and one dtype.
    """
    try:
        xp = get_array_module(*(a for p in params for a in (p.data, p.grad)))
    except ValueError:
        return None
    if len({a.dtype for p in params for a in (p.data, p.grad)}) != 1:
        return None
    n = sum(p.data.size for p in params)
    data, grad = xp.empty(n, params[0].data.dtype), xp.empty(n, params[0].data.dtype)
    for p, d, g in zip(params, views(data, params), views(grad, params)):
        d[...], g[...] = p.data, p.grad
        p.data, p.grad = d, g
    return data, grad


def views(flat, params):
    """``flat`` (Σ sizes,) cut into one view per parameter, in the parameters' shapes."""
    out, start = [], 0
    for p in params:
        out.append(flat[start:start + p.data.size].reshape(p.data.shape))
        start += p.data.size
    return out


def adam_step(opt):
    """One step of ``opt`` (an ``optim.Adam`` whose step count is already advanced): the whole
    model at once over its flat buffers where it has them, else tensor by tensor."""
    if not opt.flat_in_use():
        for p, m, v in zip(opt.params, opt.exp_avg, opt.exp_avg_sq):
            update(opt, p.data, p.grad, m, v)
        return
    xp, n = get_array_module(opt.flat[0]), opt.flat[0].size             # the whole model at once: on NumPy
    size, buffers = 4 * n, (*opt.flat, *opt.flat_moments)
    if jit.usable(*buffers) and _python_numbers(opt.lr, opt.eps):      # one compiled pass instead
        scalars = _scalars_as(opt, opt.flat[0].dtype)
        parallel.run(lambda lo, hi: _adam_loop(*(a[lo:hi] for a in buffers), *scalars), n, size, xp,
                     pieces=parallel.PIECES)
        return
    threaded = parallel.parts_for(n, size, xp) > 1                      # in cache-sized chunks, and the
    step = n if xp is not np else _CHUNK_THREADED if threaded else _CHUNK   # chunks split over threads

    def update_range(lo, hi):
        for i in range(lo, hi, step):
            j = min(i + step, hi)
            update(opt, *(a[i:j] for a in buffers), scratch=lo)
    parallel.run(update_range, n, size, xp)


def _scalars_as(opt, dtype):
    """β1, 1 − β1, β2, 1 − β2, √bias2, eps, lr/bias1 rounded to ``dtype``, as NumPy rounds a
    Python float that meets an array of that dtype (so ``_adam_loop`` computes what ``update`` does)."""
    t, b1, b2 = opt.step_count, opt.beta1, opt.beta2
    bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
    return tuple(dtype.type(c) for c in (b1, 1 - b1, b2, 1 - b2, bias2 ** 0.5, opt.eps, opt.lr / bias1))

def update(opt, p, g, m, v, scratch=0):
    """One Adam update (of ``opt``, an ``optim.Adam``) of parameter array ``p`` from gradient ``g``, moments ``m`` and ``v``.

    ``scratch`` names the temporaries to use: threads updating parts at once need their own.
    """
    xp = get_array_module(p)
    t, b1, b2 = opt.step_count, opt.beta1, opt.beta2
    bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
    # Plain version, operation for operation (tmp and tmp2 are scratch arrays, so an
    # update allocates nothing; the arithmetic and its order are exactly these lines):
    #   m ← m·β1 + (1 − β1)·g
    #   v ← v·β2 + (1 − β2)·(g·g)
    #   p ← p − (lr/bias1)·m / (√v / √bias2 + eps)
    tmp = opt.workspace.get(("tmp", scratch), p.shape, p.dtype, xp)
    tmp2 = opt.workspace.get(("tmp2", scratch), p.shape, p.dtype, xp)
    m *= b1
    m += xp.multiply(g, 1 - b1, out=tmp)
    v *= b2
    xp.multiply(g, g, out=tmp)
    v += xp.multiply(tmp, 1 - b2, out=tmp)
    denom = xp.sqrt(v, out=tmp)
    xp.divide(denom, bias2 ** 0.5, out=denom)
    denom += opt.eps                                              # √v/√bias2 + eps
    xp.multiply(m, opt.lr / bias1, out=tmp2)
    p -= xp.divide(tmp2, denom, out=tmp2)



def _python_numbers(*values):
    """Whether these are Python numbers, which NumPy rounds to an array's dtype before using them
    (a NumPy float64 is not rounded: the NumPy lines would then compute in float64)."""
    return all(type(v) in (int, float) for v in values)


@jit.loop
def _adam_loop(p, g, m, v, b1, c1, b2, c2, sqrt_bias2, eps, lr_bias1):
    """``update`` of 1-D arrays in one pass (the caller hands each thread its slices), the same operations:

        m ← m·β1 + g·(1 − β1);  v ← v·β2 + (g·g)·(1 − β2);  p ← p − (m·lr/bias1) / (√v/√bias2 + eps)

    each product and sum rounded to the arrays' dtype in that order (the scalars arrive
    rounded to it: ``_scalars_as``), so the bits are ``update``'s (tests/test_jit.py).
    A loop from 0 (no index that might be negative) is one the compiler turns into vector
    instructions, 8 numbers at a time.
    """
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i], v[i] = mi, vi
        p[i] = p[i] - (mi * lr_bias1) / (np.sqrt(vi) / sqrt_bias2 + eps)
