"""Optimizers: Adam and SGD (with momentum), as PyTorch defines them.

Each takes a list of ``Parameter``s and updates ``p.data`` in place from ``p.grad``.
State (moments, step count) is kept per parameter, in the parameter's array module,
and can be saved and restored with ``state_dict`` / ``load_state_dict``.

Adam updates a whole model in one sweep: at construction ``flatten`` moves every
parameter's data and gradient into one contiguous buffer each (the Parameters keep their
shapes, as views of it), and the moments are one buffer each too. Then each line of
Adam's update is one pass over all the model's numbers instead of one per tensor — the
idea of PyTorch's ``foreach``/``fused`` Adam. Element by element the arithmetic is the
same as the per-tensor loop (the plain version, still used when the parameters differ in
dtype or backend), so the results are bit for bit the same.
"""
import numpy as np

from . import jit, parallel
from .backend import get_array_module, to_numpy
from .nn.workspace import Workspace


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


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = lr

    def flat_in_use(self):
        """Whether the parameters live in one flat buffer (``flatten``); only Adam does that."""
        return False

    def zero_grad(self):
        if self.flat_in_use():
            self.flat[1].fill(0)                                       # every gradient at once
            return
        for p in self.params:
            p.grad[...] = 0

    def state_dict(self):
        """Host (NumPy) copies of every state array plus the scalar settings."""
        state = {"lr": self.lr, **{k: getattr(self, k) for k in self._scalars}}
        for name in self._slots:
            for i, a in enumerate(getattr(self, name)):
                state[f"{name}.{i}"] = to_numpy(a).copy()
        return state

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s output; checks every key and shape before changing anything."""
        name = type(self).__name__
        expected = [f"{slot}.{i}" for slot in self._slots for i in range(len(self.params))]
        missing = [k for k in ["lr", *self._scalars, *expected] if k not in state]
        unexpected = [k for k in state if "." in k and k not in expected]
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                raise ValueError(f"{name}.load_state_dict: {what} keys {keys[:5]}"
                                 f"{' …' if len(keys) > 5 else ''}; the state is from another model")
        for slot in self._slots:
            for i, a in enumerate(getattr(self, slot)):
                src = state[f"{slot}.{i}"]
                if tuple(src.shape) != tuple(a.shape):
                    raise ValueError(f"{name}.load_state_dict: {slot}.{i} has shape "
                                     f"{tuple(src.shape)}, parameter has {tuple(a.shape)}")
        for slot in self._slots:
            for i, a in enumerate(getattr(self, slot)):
                a[...] = get_array_module(a).asarray(state[f"{slot}.{i}"], dtype=a.dtype)
        self.lr = float(state["lr"])
        for k in self._scalars:
            setattr(self, k, type(getattr(self, k))(state[k]))


class SGD(Optimizer):
    """p ← p − lr·b,  b ← momentum·b + g (b = g on the first step; PyTorch's form)."""

    _slots = ("momentum_buffer",)
    _scalars = ("momentum", "step_count")

    def __init__(self, params, lr=0.01, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.step_count = 0
        self.momentum_buffer = [get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def step(self):
        for p, buf in zip(self.params, self.momentum_buffer):
            if self.momentum:
                if self.step_count == 0:
                    buf[...] = p.grad
                else:
                    buf *= self.momentum
                    buf += p.grad
                p.data -= self.lr * buf
            else:
                p.data -= self.lr * p.grad
        self.step_count += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``:

        m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1ᵗ)              v̂ = v / (1 − β2ᵗ)
        p ← p − lr · m̂ / (√v̂ + eps)
    """

    _slots = ("exp_avg", "exp_avg_sq")
    _scalars = ("beta1", "beta2", "eps", "step_count")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = eps
        self.step_count = 0
        self.workspace = Workspace()         # the two temporaries of an update, reused
        self.flat = flatten(self.params)     # (data, grad) of the whole model, or None
        if self.flat is None:
            self.exp_avg = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
            self.exp_avg_sq = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        else:
            xp = get_array_module(self.flat[0])
            self.flat_moments = xp.zeros_like(self.flat[0]), xp.zeros_like(self.flat[0])
            self.exp_avg, self.exp_avg_sq = (views(m, self.params) for m in self.flat_moments)
        self._bound = [(p.data, p.grad) for p in self.params]

    def flat_in_use(self):
        """True while every parameter's .data and .grad are still the views ``flatten`` made
        (an assignment such as ``p.data = ...`` afterwards falls back to the per-tensor loop)."""
        return self.flat is not None and all(p.data is d and p.grad is g
                                             for p, (d, g) in zip(self.params, self._bound))

    def step(self):
        self.step_count += 1
        if self.flat_in_use():
            xp, n = get_array_module(self.flat[0]), self.flat[0].size   # the whole model at once: on NumPy
            size, buffers = 4 * n, (*self.flat, *self.flat_moments)
            if jit.usable(*buffers) and _python_numbers(self.lr, self.eps):     # one compiled pass instead
                scalars = self._scalars_as(self.flat[0].dtype)
                parallel.run(lambda lo, hi: _adam_loop(*(a[lo:hi] for a in buffers), *scalars), n, size, xp,
                             pieces=parallel.PIECES)
                return
            threaded = parallel.parts_for(n, size, xp) > 1             # in cache-sized chunks, and the
            step = n if xp is not np else _CHUNK_THREADED if threaded else _CHUNK   # chunks split over threads

            def update_range(lo, hi):
                for i in range(lo, hi, step):
                    j = min(i + step, hi)
                    self._update(*(a[i:j] for a in buffers), scratch=lo)
            parallel.run(update_range, n, size, xp)
        else:                                                          # per tensor (the plain version)
            for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
                self._update(p.data, p.grad, m, v)

    def _scalars_as(self, dtype):
        """β1, 1 − β1, β2, 1 − β2, √bias2, eps, lr/bias1 rounded to ``dtype``, as NumPy rounds a
        Python float that meets an array of that dtype (so ``_adam_loop`` computes what ``_update`` does)."""
        t, b1, b2 = self.step_count, self.beta1, self.beta2
        bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
        return tuple(dtype.type(c) for c in (b1, 1 - b1, b2, 1 - b2, bias2 ** 0.5, self.eps, self.lr / bias1))

    def _update(self, p, g, m, v, scratch=0):
        """One Adam update of parameter array ``p`` from gradient ``g``, moments ``m`` and ``v``.

        ``scratch`` names the temporaries to use: threads updating parts at once need their own.
        """
        xp = get_array_module(p)
        t, b1, b2 = self.step_count, self.beta1, self.beta2
        bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
        # Plain version, operation for operation (tmp and tmp2 are scratch arrays, so an
        # update allocates nothing; the arithmetic and its order are exactly these lines):
        #   m ← m·β1 + (1 − β1)·g
        #   v ← v·β2 + (1 − β2)·(g·g)
        #   p ← p − (lr/bias1)·m / (√v / √bias2 + eps)
        tmp = self.workspace.get(("tmp", scratch), p.shape, p.dtype, xp)
        tmp2 = self.workspace.get(("tmp2", scratch), p.shape, p.dtype, xp)
        m *= b1
        m += xp.multiply(g, 1 - b1, out=tmp)
        v *= b2
        xp.multiply(g, g, out=tmp)
        v += xp.multiply(tmp, 1 - b2, out=tmp)
        denom = xp.sqrt(v, out=tmp)
        xp.divide(denom, bias2 ** 0.5, out=denom)
        denom += self.eps                                              # √v/√bias2 + eps
        xp.multiply(m, self.lr / bias1, out=tmp2)
        p -= xp.divide(tmp2, denom, out=tmp2)


def _python_numbers(*values):
    """Whether these are Python numbers, which NumPy rounds to an array's dtype before using them
    (a NumPy float64 is not rounded: the NumPy lines would then compute in float64)."""
    return all(type(v) in (int, float) for v in values)


@jit.loop
def _adam_loop(p, g, m, v, b1, c1, b2, c2, sqrt_bias2, eps, lr_bias1):
    """``Adam._update`` of 1-D arrays in one pass (the caller hands each thread its slices), the same operations:

        m ← m·β1 + g·(1 − β1);  v ← v·β2 + (g·g)·(1 − β2);  p ← p − (m·lr/bias1) / (√v/√bias2 + eps)

    each product and sum rounded to the arrays' dtype in that order (the scalars arrive
    rounded to it: ``Adam._scalars_as``), so the bits are ``_update``'s (tests/test_jit.py).
    A loop from 0 (no index that might be negative) is one the compiler turns into vector
    instructions, 8 numbers at a time.
    """
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i], v[i] = mi, vi
        p[i] = p[i] - (mi * lr_bias1) / (np.sqrt(vi) / sqrt_bias2 + eps)
