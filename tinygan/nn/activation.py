"""Element-wise activations: ReLU, LeakyReLU, Tanh, Sigmoid.

Any input shape; the output has the input's shape. Each backward multiplies the
upstream gradient by the local derivative dy/dx, kept from forward in ``self.local``,
and returns a NEW array (the upstream gradient is never written into).

Layout. Every new array is made with ``like(x)`` — ``xp.empty_like(x)``, which keeps x's
memory layout — and filled with ``out=``. NumPy's ``x * y`` would keep the layout anyway;
CuPy's element-wise kernels return C-contiguous arrays, which would undo the
batch-innermost layout the convolutions hand over (``layout.py``) and cost the next
convolution a transposing copy.
"""
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
        return get_array_module(dout).multiply(dout, self.local, out=like(dout))     # dout · f'(x)


class ReLU(_Elementwise):
    """y = max(x, 0);  dy/dx = [x > 0] = [y > 0].

    Unlike the other activations it keeps its OUTPUT ``self.y``, not the derivative: in
    the Generator the next layer (a ConvTranspose2d) keeps that same array for its own
    backward, so the cache costs no memory, and [y > 0] is cheap to rebuild.
    """

    def forward(self, x):
        self.y = get_array_module(x).maximum(x, x.dtype.type(0), out=like(x))
        self.out_shape = x.shape
        return self.y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        xp = get_array_module(dout)
        positive = xp.greater(self.y, 0, out=like(self.y, dtype=bool))         # [y > 0]
        return xp.multiply(dout, positive, out=like(dout))                     # dout · [y > 0], a new array


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
        else:                                             # the same numbers in two fast passes
            local = xp.sign(x, out=like(x))               # −1, 0 or 1 (np.where is slower)
            xp.maximum(local, a, out=local)               # 1 where x > 0, a elsewhere
        return xp.multiply(x, local, out=like(x)), local


class Tanh(_Elementwise):
    """y = tanh(x);  dy/dx = 1 − y²."""

    def _f_and_derivative(self, x):
        xp = get_array_module(x)
        y = xp.tanh(x, out=like(x))
        local = xp.multiply(y, y, out=like(y))
        return y, xp.subtract(x.dtype.type(1), local, out=local)   # 1 − y², in place


class Sigmoid(_Elementwise):
    """y = σ(x);  dy/dx = y·(1 − y)."""

    def _f_and_derivative(self, x):
        y = sigmoid(x)
        return y, y * (1 - y)
