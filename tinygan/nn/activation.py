"""Element-wise activations: ReLU, LeakyReLU, Tanh, Sigmoid.

Any input shape; the output has the input's shape. Each backward multiplies the
upstream gradient by the local derivative dy/dx, kept from forward (``self.local``, or
for ReLU rebuilt from its output), and returns a NEW array (the upstream gradient is
never written into).

The code below is these lines, and runs in reference mode (``tinygan.reference``;
``TINYGAN_REFERENCE=1``). By default each pass is instead one call into
``activation_fast.py``: the same arithmetic, threaded, in the input's memory layout, with
a compiled loop where Numba is installed (tests/test_reference_mode.py checks the bits equal).
"""
from .. import reference
from ..backend import get_array_module
from . import activation_fast
from .module import Module, check_cache


def sigmoid(x):
    """σ(x) = 1/(1 + e^−x), computed without overflow for any x.

    For x ≥ 0: 1/(1 + e^−x); for x < 0: e^x/(1 + e^x). Both use e^−|x| ≤ 1.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


class _Elementwise(Module):
    """y = f(x) element by element; backward is dx = dy · f'(x), f'(x) cached as ``self.local``.

    A subclass writes ``_f_and_derivative`` (the plain lines) and, where it has one,
    ``_fast`` (the same numbers through ``activation_fast``)."""

    def forward(self, x):
        self.out_shape, self.fast = x.shape, not reference.on()
        y, self.local = self._fast(x) if self.fast else self._f_and_derivative(x)
        return y

    def _fast(self, x):
        return self._f_and_derivative(x)

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        if self.fast:
            return activation_fast.times(dout, self.local)               # the same product, threaded
        return dout * self.local                                         # dx = dy · f'(x)


class ReLU(Module):
    """y = max(x, 0);  dy/dx = [x > 0] = [y > 0].

    Unlike the other activations it keeps its OUTPUT ``self.y``, not the derivative: in
    the Generator the next layer (a ConvTranspose2d) keeps that same array for its own
    backward, so the cache costs no memory, and [y > 0] is cheap to rebuild.
    """

    def forward(self, x):
        self.out_shape, self.fast = x.shape, not reference.on()
        if self.fast:
            self.y = activation_fast.relu(x)
        else:
            self.y = get_array_module(x).maximum(x, x.dtype.type(0))     # y = max(x, 0)
        return self.y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        if self.fast:
            return activation_fast.relu_backward(self.y, dout)
        return dout * (self.y > 0)                                       # dx = dy · [y > 0]


class LeakyReLU(_Elementwise):
    """y = x for x > 0, a·x otherwise;  dy/dx = 1 for x > 0, a otherwise."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def _f_and_derivative(self, x):
        xp = get_array_module(x)
        local = xp.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))   # dy/dx: 1 or a
        return x * local, local                                          # y = x · dy/dx

    def _fast(self, x):
        self.y, local = activation_fast.leaky_relu(x, self.negative_slope)   # local None: y kept instead
        return self.y, local

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        if self.fast:
            return activation_fast.leaky_relu_backward(dout, self.y, self.local, self.negative_slope)
        return dout * self.local                                         # dx = dy · (1 or a)


class Tanh(_Elementwise):
    """y = tanh(x);  dy/dx = 1 − y²."""

    def _f_and_derivative(self, x):
        y = get_array_module(x).tanh(x)
        return y, 1 - y * y

    def _fast(self, x):
        return activation_fast.tanh(x)


class Sigmoid(_Elementwise):
    """y = σ(x);  dy/dx = y·(1 − y)."""

    def _f_and_derivative(self, x):
        y = sigmoid(x)
        return y, y * (1 - y)
