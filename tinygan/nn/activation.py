"""Element-wise activations: ReLU, LeakyReLU, Tanh, Sigmoid.

Any input shape; the output has the input's shape. Each backward multiplies the
upstream gradient by the local derivative dy/dx, kept from forward in ``self.local``,
and returns a NEW array (the upstream gradient is never written into).

Layout. Every new array is made with ``like(x)`` — ``xp.empty_like(x)``, which keeps x's
memory layout — and filled with ``out=``. NumPy's ``x * y`` would keep the layout anyway;
CuPy's element-wise kernels return C-contiguous arrays, which would undo the
batch-innermost layout the convolutions hand over (``layout.py``) and cost the next
convolution a transposing copy.

Threads. ``parallel.elementwise(fn, *arrays)`` is ``fn(*arrays)`` split into stretches of
the arrays' memory, one per core (NumPy runs a ufunc on one core; see ``parallel.py``).

Compiled loops. Where Numba is installed (``tinygan.jit``), ReLU's backward and LeakyReLU's
forward, two NumPy passes and a temporary each, are one loop over the numbers: the same
arithmetic, one pass (and LeakyReLU keeps its output instead of its derivative, as ReLU does).
"""
from .. import jit, parallel
from ..backend import get_array_module
from .module import Module, check_cache


def like(x, dtype=None):
    """An uninitialised array of x's shape, dtype (or ``dtype``) and memory layout."""
    return get_array_module(x).empty_like(x, dtype=dtype)


def sigmoid(x):
    """σ(x) = 1/(1 + e^−x), computed without overflow for any x.

    For x ≥ 0: 1/(1 + e^−x); for x < 0: e^x/(1 + e^x). Both use e^−|x| ≤ 1.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


class _Elementwise(Module):
    """y = f(x) element by element; backward is dx = dy · f'(x), f'(x) cached as ``self.local``."""

    def forward(self, x):
        y, self.local = self._f_and_derivative(x)
        self.out_shape = x.shape
        return y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        dx = like(dout)
        parallel.elementwise(get_array_module(dout).multiply, dout, self.local, dx)   # dx = dout · f'(x)
        return dx


class ReLU(_Elementwise):
    """y = max(x, 0);  dy/dx = [x > 0] = [y > 0].

    Unlike the other activations it keeps its OUTPUT ``self.y``, not the derivative: in
    the Generator the next layer (a ConvTranspose2d) keeps that same array for its own
    backward, so the cache costs no memory, and [y > 0] is cheap to rebuild.
    """

    def forward(self, x):
        xp = get_array_module(x)
        self.y = like(x)
        parallel.elementwise(lambda x, y: xp.maximum(x, x.dtype.type(0), out=y), x, self.y)
        self.out_shape = x.shape
        return self.y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        xp = get_array_module(dout)
        dx = like(dout)

        def part(y, dout, dx):
            if y.ndim == 1 and jit.usable(y, dout, dx):
                _gate_loop(y, dout, dx, dout.dtype.type(0))                  # dout · (1 where y > 0 else 0)
            else:
                xp.multiply(dout, xp.greater(y, 0), out=dx)                     # dout · [y > 0]
        parallel.elementwise(part, self.y, dout, dx)
        return dx


class LeakyReLU(_Elementwise):
    """y = x for x > 0, a·x otherwise;  dy/dx = 1 for x > 0, a otherwise."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def _f_and_derivative(self, x):
        xp = get_array_module(x)
        a = x.dtype.type(self.negative_slope)
        if not 0 <= a <= 1:                               # the plain version, for any slope
            local = xp.where(x > 0, x.dtype.type(1), a)
            return x * local, local
        # the same numbers in fast passes (np.where is slower: it branches on every element)
        local, y = like(x), like(x)

        def part(x, local, y):
            xp.maximum(xp.greater(x, 0), a, out=local)    # max([x > 0], a): 1 where x > 0, a elsewhere
            xp.multiply(x, local, out=y)
        parallel.elementwise(part, x, local, y)
        return y, local

    def forward(self, x):
        a = x.dtype.type(self.negative_slope)
        if not (jit.usable(x) and 0 <= a <= 1):
            return super().forward(x)
        # compiled: one pass writing y alone. Backward rebuilds the derivative from y, since
        # with 0 <= a, y > 0 exactly where x > 0 (NaN: neither), so dy/dx needs no array of its own.
        self.y, self.local = like(x), None

        parallel.elementwise(lambda x, y: _leaky_gate(x, x, y, a), x, self.y)    # y = x · (1 or a)
        self.out_shape = x.shape
        return self.y

    def backward(self, dout):
        if getattr(self, "local", None) is not None or getattr(self, "y", None) is None:
            return super().backward(dout)                 # after a NumPy forward (or before any)
        check_cache(self, dout, self.out_shape)
        dx, a = like(dout), self.y.dtype.type(self.negative_slope)
        parallel.elementwise(lambda y, dout, dx: _leaky_gate(y, dout, dx, a), self.y, dout, dx)
        return dx


class Tanh(_Elementwise):
    """y = tanh(x);  dy/dx = 1 − y²."""

    def _f_and_derivative(self, x):
        xp = get_array_module(x)
        y, local = like(x), like(x)

        def part(x, y, local):
            xp.tanh(x, out=y)
            xp.multiply(y, y, out=local)
            xp.subtract(x.dtype.type(1), local, out=local)         # 1 − y², in place
        parallel.elementwise(part, x, y, local)
        return y, local


class Sigmoid(_Elementwise):
    """y = σ(x);  dy/dx = y·(1 − y)."""

    def _f_and_derivative(self, x):
        y = sigmoid(x)
        return y, y * (1 - y)


def _leaky_gate(w, v, out, a):
    """out = v · (1 where w > 0 else a): LeakyReLU's forward (w = v = x) and backward (w = y,
    v = dout) alike; one compiled pass on 1-D arrays, else the NumPy lines."""
    if w.ndim == 1 and jit.usable(w, v, out):
        _gate_loop(w, v, out, a)
    else:                                                 # layouts elementwise could not flatten
        xp = get_array_module(v)
        xp.multiply(v, xp.maximum(xp.greater(w, 0), a), out=out)


@jit.loop
def _gate_loop(w, v, out, a):
    """out = v · (1 where w > 0 else a) for 1-D arrays, one pass: ReLU's backward (a = 0) and
    LeakyReLU's forward and backward. The multiplication by 1, 0 or a is kept (−0.0 and NaN as NumPy's)."""
    one = v.dtype.type(1)
    for i in range(v.size):
        out[i] = v[i] * (one if w[i] > 0 else a)
