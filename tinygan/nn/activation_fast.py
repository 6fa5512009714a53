"""The activations' speed path: threads, layout-keeping outputs, and one compiled loop.

``activation.py`` opens with the plain element-wise lines; by default each pass is instead
one call into this file — the same arithmetic, element for element, so the same bits
(tests/test_reference_mode.py):

* Layout. Every new array is made with ``like(x)`` — ``xp.empty_like(x)``, which keeps x's
  memory layout — and filled with ``out=``. NumPy's ``x * y`` would keep the layout anyway;
  CuPy's element-wise kernels return C-contiguous arrays, which would undo the
  batch-innermost layout the convolutions hand over (``layout.py``) and cost the next
  convolution a transposing copy.
* Threads. ``parallel.elementwise(fn, *arrays)`` is ``fn(*arrays)`` split into stretches of
  the arrays' memory, one per core (NumPy runs a ufunc on one core; see ``parallel.py``).
* Compiled loops. Where Numba is installed (``tinygan.jit``), ReLU's backward and LeakyReLU's
  forward and backward, two NumPy passes and a temporary each, are one loop over the
  numbers: the same arithmetic, one pass (and LeakyReLU keeps its output instead of its
  derivative, as ReLU does: with a >= 0, y > 0 exactly where x > 0).
"""
from .. import jit, parallel
from ..backend import get_array_module


def like(x, dtype=None):
    """An uninitialised array of x's shape, dtype (or ``dtype``) and memory layout."""
    return get_array_module(x).empty_like(x, dtype=dtype)


def times(dout, local):
    """dout · local, a new array in dout's layout: the backward of every cached-derivative activation."""
    dx = like(dout)
    parallel.elementwise(get_array_module(dout).multiply, dout, local, dx)
    return dx


def relu(x):
    """max(x, 0) in x's layout."""
    xp, y = get_array_module(x), like(x)
    parallel.elementwise(lambda x, y: xp.maximum(x, x.dtype.type(0), out=y), x, y)
    return y


def relu_backward(y, dout):
    """dout · [y > 0]."""
    xp, dx = get_array_module(dout), like(dout)

    def part(y, dout, dx):
        if y.ndim == 1 and jit.usable(y, dout, dx):
            _gate_loop(y, dout, dx, dout.dtype.type(0))                  # dout · (1 where y > 0 else 0)
        else:
            xp.multiply(dout, xp.greater(y, 0), out=dx)                     # dout · [y > 0]
    parallel.elementwise(part, y, dout, dx)
    return dx


def leaky_relu(x, slope):
    """(y, local): y = x·(1 where x > 0 else a), local its derivative — or None where the
    compiled loop ran, which keeps y alone (backward rebuilds the derivative from y)."""
    xp, a = get_array_module(x), x.dtype.type(slope)
    if not 0 <= a <= 1:                                   # the plain lines, for any slope
        local = xp.where(x > 0, x.dtype.type(1), a)
        return x * local, local
    y = like(x)
    if jit.usable(x):                                     # one pass writing y alone
        parallel.elementwise(lambda x, y: _leaky_gate(x, x, y, a), x, y)
        return y, None
    local = like(x)                                       # the same numbers in fast passes

    def part(x, local, y):                                # (np.where is slower: it branches on every element)
        xp.maximum(xp.greater(x, 0), a, out=local)        # max([x > 0], a): 1 where x > 0, a elsewhere
        xp.multiply(x, local, out=y)
    parallel.elementwise(part, x, local, y)
    return y, local


def leaky_relu_backward(dout, y, local, slope):
    """dout · local, or with local None (compiled forward) dout · (1 where y > 0 else a)."""
    if local is not None:
        return times(dout, local)
    dx, a = like(dout), y.dtype.type(slope)
    parallel.elementwise(lambda y, dout, dx: _leaky_gate(y, dout, dx, a), y, dout, dx)
    return dx


def tanh(x):
    """(y, 1 − y²) in x's layout."""
    xp = get_array_module(x)
    y, local = like(x), like(x)

    def part(x, y, local):
        xp.tanh(x, out=y)
        xp.multiply(y, y, out=local)
        xp.subtract(x.dtype.type(1), local, out=local)         # 1 − y², in place
    parallel.elementwise(part, x, y, local)
    return y, local


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
