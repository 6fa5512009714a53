"""A strict stand-in for CuPy: tinygan's GPU path run on a CPU, refused where CuPy would refuse it.

    import strict_cupy
    with strict_cupy.installed() as cp:        # ``import cupy`` gives the stand-in inside the block
        tinygan.use("cupy")
        with cp.watch() as seen:
            train_step(...)
        assert seen.syncs == []                # every device→host copy, with where it happened

Its arrays (``cupy.ndarray``) hold a NumPy array but are NOT NumPy arrays (no subclass: a
subclass would pass every ``isinstance(x, np.ndarray)`` and every implicit conversion), so
what CuPy 14 refuses, this refuses, with CuPy's messages:

* ``np.asarray(x)``, and whatever converts implicitly (``np.array(x)``, a NumPy ``out=``):
  TypeError "Implicit conversion to a NumPy array is not allowed. ...";
* a NumPy array as an operand of a CuPy function or operator (``x + host``,
  ``cupy.where(c, host, x)``, ``host * x``): TypeError "Unsupported type <class
  'numpy.ndarray'>". NumPy scalars and Python numbers are accepted, as by CuPy; the few
  places where CuPy uploads a host array — ``cupy.asarray``/``array``, ``x[...] = host``,
  ``x[host_index]``, ``take``'s indices — upload here too, and are counted;
* ``np.func(x)`` runs CuPy's function of the same name (``__array_function__``,
  ``__array_ufunc__``), or raises NumPy's TypeError "no implementation found" where CuPy
  has none;
* an argument or keyword that CuPy's function does not take (``tests/cupy_api.py``: the
  names and parameters of CuPy 14.2.0's functions, read from the real library; the
  ndarray's methods below are written with the signatures of CuPy's ``core.pyx``);
* whatever it cannot do on a CPU (RawKernel, CUDA graphs): NotImplementedError, saying so.

Where CuPy differs from NumPy it behaves as CuPy: reductions and scalar indexing return 0-d
device arrays (never a host scalar), element-wise results are C-contiguous whatever their
inputs' layout, boolean-mask indexing needs the host (it is counted as a sync).

What it counts (``transfers``, or a ``watch()`` around a block): every device→host copy —
a *sync*, the host waiting for the GPU: ``get``, ``item``, ``float()``, ``bool()``,
``repr``, ``synchronize``, boolean masks, ``nonzero``... — and every host→device copy (an
*upload*, with its bytes); each with where it happened (``file:line``, outside the
stand-in and NumPy) and the functions on the stack. What it cannot show: speed, kernel
launches (``benchmarks/launch_budget.py`` counts those), the GPU's rounding, TF32.
"""
import contextlib
import functools
import inspect
import os
import sys
import time
import types
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cupy_api  # noqa: E402

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")
_HERE = os.path.abspath(__file__)
_ROOT = os.path.dirname(os.path.dirname(_HERE))
_NUMPY = os.path.dirname(np.__file__)
_SKIP_FILES = (_HERE, os.path.join(os.path.dirname(_HERE), "cupy_api.py"))
VERSION = cupy_api.VERSION + "+strict-stand-in"


# ----- what crossed between host and device ---------------------------------------------------

@dataclass
class Transfer:
    kind: str        # 'get', 'item', 'float', 'bool', 'repr', 'synchronize', 'mask', 'upload', ...
    where: str       # file:line of the code that asked for it (outside the stand-in and NumPy)
    nbytes: int
    stack: tuple     # 'file:line function' of the calling frames, innermost first

    def __str__(self):
        return f"{self.kind} at {self.where} ({' <- '.join(self.stack[1:4])})"


class Transfers:
    """Syncs (device→host) and uploads (host→device) seen while this collector was active."""

    def __init__(self):
        self.syncs, self.uploads = [], []

    def by_where(self, kind="syncs"):
        """{file:line: how many} of the syncs (or 'uploads')."""
        out = {}
        for t in getattr(self, kind):
            out[t.where] = out.get(t.where, 0) + 1
        return out

    def report(self):
        lines = [f"{len(self.syncs)} syncs, {len(self.uploads)} uploads "
                 f"({sum(t.nbytes for t in self.uploads):,} bytes)"]
        for kind in ("syncs", "uploads"):
            lines += [f"  {kind[:-1]} x{n} at {w}" for w, n in sorted(self.by_where(kind).items())]
        return "\n".join(lines)


transfers = Transfers()            # everything since the stand-in was installed
_active = [transfers]


@contextlib.contextmanager
def watch():
    """A fresh ``Transfers`` that records what happens inside the block (``transfers`` too)."""
    t = Transfers()
    _active.append(t)
    try:
        yield t
    finally:
        _active.remove(t)


def _frames():
    """The calling frames outside the stand-in and NumPy, innermost first, as 'file:line function'."""
    f, out = sys._getframe(2), []
    while f is not None and len(out) < 12:
        name = f.f_code.co_filename
        if name not in _SKIP_FILES and not name.startswith(_NUMPY):
            rel = os.path.relpath(name, _ROOT) if name.startswith(_ROOT) else os.path.basename(name)
            out.append(f"{rel}:{f.f_lineno} {_qualname(f)}")
        f = f.f_back
    return tuple(out)


def _qualname(frame):
    """'Class.method' or 'function' of a frame (co_qualname from Python 3.11; before, from ``self``)."""
    code = frame.f_code
    if hasattr(code, "co_qualname"):
        return code.co_qualname
    owner = frame.f_locals.get("self")
    return f"{type(owner).__name__}.{code.co_name}" if owner is not None else code.co_name


def _record(kind, nbytes=0, upload=False):
    stack = _frames()
    t = Transfer(kind, stack[0].split(" ")[0] if stack else "?", int(nbytes), stack)
    for c in _active:
        (c.uploads if upload else c.syncs).append(t)


def _sync(kind, nbytes=0):
    _record(kind, nbytes)


def _upload(kind, nbytes):
    _record(kind, nbytes, upload=True)


# ----- the array ---------------------------------------------------------------------------

def _new(a):
    """Our array around the NumPy array (or NumPy scalar: CuPy keeps it on the device, 0-d) ``a``."""
    o = object.__new__(ndarray)
    o._a = a if isinstance(a, np.ndarray) else np.asarray(a)
    return o


def _wrap(r):
    if isinstance(r, (np.ndarray, np.generic)):
        return _new(r)
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _refuse(x):
    raise TypeError(f"Unsupported type {type(x)}")


def _dev(x):
    """An operand for the device: ours → its NumPy array; a NumPy array refused; lists looked into."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        _refuse(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_dev(v) for v in x)
    return x


def _host_to_device(x, kind="upload", dtype=None):
    """``x`` (ours, a NumPy array, a list, a scalar) as a NumPy array on the "device": ours as is,
    anything else uploaded (and counted)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (list, tuple)) and any(isinstance(v, ndarray) for v in _flat(x)):
        if any(isinstance(v, np.ndarray) for v in _flat(x)):
            _refuse(next(v for v in _flat(x) if isinstance(v, np.ndarray)))
        return np.array(_dev(x), dtype=dtype)          # device arrays in a list: joined on the device
    a = np.array(x, dtype=dtype)
    _upload(kind, a.nbytes)
    return a


def _flat(x):
    for v in x:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _signature(params):
    """An inspect.Signature from cupy_api's "a axis= * out=" form (defaults stand in as None)."""
    P, out, kind = inspect.Parameter, [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for p in (params or "").split():
        if p == "*":
            kind = P.KEYWORD_ONLY
        elif p.startswith("**"):
            out.append(P(p[2:], P.VAR_KEYWORD))
        elif p.startswith("*"):
            out.append(P(p[1:], P.VAR_POSITIONAL))
            kind = P.KEYWORD_ONLY
        else:
            out.append(P(p.rstrip("="), kind, default=None if p.endswith("=") else P.empty))
    return inspect.Signature(out)


class _Flags:
    def __init__(self, a):
        self.c_contiguous, self.f_contiguous = a.flags.c_contiguous, a.flags.f_contiguous
        self.owndata = a.base is None

    def __getitem__(self, name):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]


class ndarray:
    """cupy.ndarray on a CPU: a NumPy array inside, CuPy's interface and refusals outside."""

    __slots__ = ("_a", "__weakref__")
    __module__ = "cupy"
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the strict CuPy stand-in has no device memory pointers")
        self._a = np.empty(shape, dtype=dtype, order=order)

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    T = property(lambda self: _new(self._a.T))
    mT = property(lambda self: _new(np.swapaxes(self._a, -1, -2)))
    base = property(lambda self: None if self._a.base is None else _new(self._a.base))
    real = property(lambda self: _new(self._a.real))
    imag = property(lambda self: _new(self._a.imag))

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    # --- NumPy's protocols: CuPy's refusal, and CuPy's dispatch
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """As CuPy's: CuPy's ufunc of that name (which refuses NumPy arrays), else NotImplemented."""
        mine = _MODULE_UFUNCS.get(ufunc.__name__)
        if mine is None or method not in ("__call__", "outer", "at", "reduce", "accumulate", "reduceat"):
            return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
        for x in inputs + ((kwargs["out"],) if "out" in kwargs else ()):
            if not isinstance(x, (ndarray, np.ndarray, bool, int, float, complex, np.generic)):
                return NotImplemented
        return (mine if method == "__call__" else getattr(mine, method))(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        """As CuPy's: the function of the same name and module in cupy, else NotImplemented."""
        try:
            target = functools.reduce(getattr, func.__module__.split(".")[1:], _installed_module())
            mine = getattr(target, func.__name__)
        except AttributeError:
            return NotImplemented
        if mine is func or not all(issubclass(t, (ndarray, np.ndarray)) for t in types_):
            return NotImplemented
        return mine(*args, **kwargs)

    # --- to the host: each is a sync
    def get(self, stream=None, order="C", out=None, blocking=True):
        _sync("get", self.nbytes)
        a = np.array(self._a, order=order)
        if out is not None:
            out[...] = a
            return out
        return a

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        _sync("item", self.itemsize)
        return self._a.item()

    def tolist(self):
        _sync("tolist", self.nbytes)
        return self._a.tolist()

    def tobytes(self, order="C"):
        _sync("tobytes", self.nbytes)
        return self._a.tobytes(order)

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __bool__(self):
        if self.size == 0:
            return False
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        return bool(self._scalar("bool"))

    def _scalar(self, kind):
        if self.size != 1:
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        _sync(kind, self.itemsize)
        return self._a.reshape(()).item() if self._a.ndim else self._a.item()

    def __repr__(self):
        _sync("repr", self.nbytes)
        return repr(self._a)

    def __str__(self):
        _sync("str", self.nbytes)
        return str(self._a)

    def __format__(self, spec):
        _sync("format", self.nbytes)
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __reduce__(self):
        return array, (self.get(),)

    # --- from the host
    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError("Shape/dtype mismatch in ndarray.set")
        _upload("set", arr.nbytes)
        self._a[...] = arr

    # --- containers
    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key):
        return _new(self._a[_index(key)])

    def __setitem__(self, key, value):
        if isinstance(value, ndarray):
            value = value._a
        elif not isinstance(value, (bool, int, float, complex, np.generic)) and value is not None:
            value = _host_to_device(value, "setitem")
        self._a[_index(key)] = value

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # --- new arrays, views
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if casting is not None:
            raise TypeError("casting is not supported yet")
        if subok is not None:
            raise TypeError("subok is not supported yet")
        if not copy and np.dtype(dtype) == self.dtype and order in ("K", None):
            return self
        return _new(self._a.astype(dtype, order=order or "K"))

    def copy(self, order="C"):
        return _new(self._a.copy(order=order))

    def view(self, dtype=None, array_class=None):
        return _new(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        if isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        self._a.fill(_dev(value))

    def reshape(self, *shape, order="C", copy=None):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _new(self._a.reshape(shape, order=order))

    def transpose(self, *axes):
        return _new(self._a.transpose(*axes))

    def nonzero(self):
        _sync("nonzero")
        return _wrap(self._a.nonzero())

    def compress(self, condition, axis=None, out=None):
        _sync("compress")
        return _call(np.compress, (_dev(condition), self), {"axis": axis, "out": out})

    def dot(self, b, out=None):
        return _call(np.dot, (self, b), {"out": out})

    def __matmul__(self, other):
        return _MODULE_UFUNCS["matmul"](self, other)

    def __rmatmul__(self, other):
        return _MODULE_UFUNCS["matmul"](other, self)

    def __imatmul__(self, other):
        return _MODULE_UFUNCS["matmul"](self, other, out=self)


_BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
           "floordiv": "floor_divide", "mod": "remainder", "pow": "power", "and": "bitwise_and",
           "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "left_shift", "rshift": "right_shift"}
_COMPARE = {"lt": "less", "le": "less_equal", "eq": "equal", "ne": "not_equal", "gt": "greater",
            "ge": "greater_equal"}
_UNARY = {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}


def _operators(op, name):
    """x op y, y op x, x op= y through CuPy's ufunc ``name`` (which refuses NumPy arrays)."""
    def forward(self, other, *modulo):
        if getattr(other, "__array_ufunc__", 0) is None:
            return NotImplemented
        if op in ("eq", "ne") and not isinstance(other, (ndarray, np.ndarray, bool, int, float, complex,
                                                         np.generic)):
            return NotImplemented                          # x == None, x == "a": Python's answer
        return _MODULE_UFUNCS[name](self, other)

    def reflected(self, other, *modulo):
        return _MODULE_UFUNCS[name](other, self)

    def inplace(self, other):
        return _MODULE_UFUNCS[name](self, other, out=self)
    return forward, reflected, inplace


for _op, _name in {**_BINARY, **_COMPARE}.items():
    _f, _r, _i = _operators(_op, _name)
    setattr(ndarray, f"__{_op}__", _f)
    if _op in _BINARY:
        setattr(ndarray, f"__r{_op}__", _r)
        setattr(ndarray, f"__i{_op}__", _i)
for _op, _name in _UNARY.items():
    setattr(ndarray, f"__{_op}__", lambda self, _name=_name: _MODULE_UFUNCS[_name](self))


def _index(key):
    """An index for the NumPy array inside: ours unwrapped, host index arrays uploaded, boolean masks
    (whose result size only the host can know) counted as syncs."""
    keys = key if isinstance(key, tuple) else (key,)
    out = []
    for k in keys:
        if isinstance(k, ndarray):
            if k.dtype == np.bool_:
                _sync("mask")
            k = k._a
        elif isinstance(k, (np.ndarray, list)):
            k = _host_to_device(k, "index")
            if k.dtype == np.bool_:
                _sync("mask")
        out.append(k)
    return tuple(out) if isinstance(key, tuple) else out[0]


# Methods that are NumPy's under the same name, with CuPy's parameters (core.pyx).
_METHODS = {
    "max": "axis= out= keepdims=", "min": "axis= out= keepdims=", "argmax": "axis= out= dtype= keepdims=",
    "argmin": "axis= out= dtype= keepdims=", "clip": "min= max= out=", "round": "decimals= out=",
    "trace": "offset= axis1= axis2= dtype= out=", "sum": "axis= dtype= out= keepdims=",
    "cumsum": "axis= dtype= out=", "mean": "axis= dtype= out= keepdims=",
    "var": "axis= dtype= out= ddof= keepdims=", "std": "axis= dtype= out= ddof= keepdims=",
    "prod": "axis= dtype= out= keepdims=", "cumprod": "axis= dtype= out=", "all": "axis= out= keepdims=",
    "any": "axis= out= keepdims=", "take": "indices axis= out=", "repeat": "repeats axis=",
    "diagonal": "offset= axis1= axis2=", "squeeze": "axis=", "swapaxes": "axis1 axis2", "ravel": "order=",
    "flatten": "order=", "argsort": "axis= kind=", "sort": "axis= kind=", "conj": "", "conjugate": "",
    "searchsorted": "v side= sorter=", "put": "indices values mode=", "choose": "choices out= mode=",
    "partition": "kth axis=", "argpartition": "kth axis=",
}
_CUPY_ONLY_KEYWORDS = {"argmax": ("dtype",), "argmin": ("dtype",)}


def _method(name, params):
    sig = _signature("self " + params)
    cupy_only = _CUPY_ONLY_KEYWORDS.get(name, ())

    def method(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        given = {k: v for k, v in list(bound.arguments.items())[1:] if k not in cupy_only}
        if name in ("take", "put"):                              # CuPy uploads host indices
            given["indices"] = _new(_host_to_device(given["indices"], "index"))
        out = given.get("out")
        result = getattr(self._a, name)(**{k: _dev(v) for k, v in given.items()})
        return out if out is not None else _wrap(result)
    method.__name__ = name
    return method


for _name, _params in _METHODS.items():
    setattr(ndarray, _name, _method(_name, _params))


# ----- functions and ufuncs ----------------------------------------------------------------

def _call(np_func, args, kwargs):
    """np_func on the device operands (NumPy arrays refused), ours back; ``out=`` given back as is."""
    kwargs = {k: v for k, v in kwargs.items() if not (k == "out" and v is None)}
    out = kwargs.get("out")
    if out is not None and not isinstance(out, ndarray):
        raise TypeError("Output arguments type must be cupy.ndarray")
    result = np_func(*_dev(tuple(args)), **{k: _dev(v) for k, v in kwargs.items()})
    return out if out is not None else _wrap(result)


class ufunc:
    """cupy.ufunc: NumPy's ufunc of the same name on the arrays inside; CuPy's keywords only
    (out, dtype, casting); NumPy arrays refused; results C-contiguous."""

    def __init__(self, np_ufunc, nin, nout):
        self._np, self.nin, self.nout, self.nargs = np_ufunc, nin, nout, nin + nout
        self.__name__ = self.name = np_ufunc.__name__

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind", **kwargs):
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        if not self.nin <= len(args) <= self.nargs:
            raise TypeError(f"Wrong number of arguments for '{self.name}'. It must be either {self.nin} or "
                            f"{self.nargs} (with outputs), but given {len(args)}.")
        args, out = args[:self.nin], out if out is not None else (args[self.nin:] or None)
        outs = out if isinstance(out, tuple) else (out,) if out is not None else ()
        for o in outs:
            if not isinstance(o, ndarray):
                raise TypeError("Output arguments type must be cupy.ndarray")
        kw = {"casting": casting, **({"dtype": dtype} if dtype is not None else {})}
        if outs:
            kw["out"] = tuple(o._a for o in outs)
        result = self._np(*(_operand(a) for a in args), **kw)
        if outs:
            return outs[0] if len(outs) == 1 else outs
        if isinstance(result, tuple):
            return tuple(_c_order(r) for r in result)
        return _c_order(result)


def _c_order(r):
    """A new result as CuPy's kernels write it: C order, whatever the inputs' layout (NumPy keeps theirs)."""
    r = np.asarray(r)
    return _new(r if r.flags.c_contiguous else r.copy(order="C"))

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return _call(self._np.reduce, (array,), {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims})

    def accumulate(self, array, axis=0, dtype=None, out=None):
        return _call(self._np.accumulate, (array,), {"axis": axis, "dtype": dtype, "out": out})

    def outer(self, A, B, **kwargs):
        return _call(self._np.outer, (A, B), kwargs)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError("a must be cupy.ndarray")
        idx = _index(indices)
        self._np.at(a._a, idx, *(() if b is None else (_operand(b),)))


def _operand(x):
    """An input of a ufunc: CuPy's CScalar rules — ours, a Python number, a NumPy scalar; not a NumPy array."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return x
    _refuse(x)


# Functions that take host data and upload it (counted); those whose result's size depends on
# the data, so that CuPy asks the device first (a sync); those whose NumPy twin returns a host
# bool where CuPy returns a 0-d device array.
_UPLOADING = ("asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray")
_SYNCING = ("nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract")
_DEVICE_BOOL = ("allclose", "array_equal", "array_equiv")


def _function(name, np_func, params):
    sig = _signature(params) if params is not None else None
    try:
        np_params = set(inspect.signature(np_func).parameters)
    except (TypeError, ValueError):
        np_params = None

    def f(*args, **kwargs):
        if sig is not None:
            sig.bind(*args, **kwargs)                          # CuPy's parameters, or TypeError
        if np_params is not None:                              # CuPy-only keywords (blocking=, ...)
            kwargs = {k: v for k, v in kwargs.items() if k in np_params or "kwargs" in np_params}
        if name in _UPLOADING:
            return _asarray(np_func, args, kwargs)
        if name in _SYNCING or (name == "where" and len(args) + len(kwargs) == 1):
            _sync(name)
        if name == "copyto" and isinstance(args[1] if len(args) > 1 else kwargs.get("src"), np.ndarray):
            raise TypeError("non-scalar numpy.ndarray cannot be used for copyto")
        result = _call(np_func, args, kwargs)
        return _new(np.asarray(result)) if name in _DEVICE_BOOL else result
    f.__name__ = f.__qualname__ = name
    return f


def _asarray(np_func, args, kwargs):
    a, rest = args[0] if args else kwargs.pop("a", kwargs.pop("obj", None)), args[1:]
    if isinstance(a, ndarray):
        r = np_func(a._a, *rest, **kwargs)
        return a if r is a._a else _new(r)
    dtype = kwargs.pop("dtype", rest[0] if rest else None)
    return _new(np_func(_host_to_device(a, "upload", dtype), **{k: v for k, v in kwargs.items()
                                                                  if k not in ("copy", "subok", "like")}))


def _fill_functions(mod, table, np_mod):
    for name, params in table.items():
        np_func = getattr(np_mod, name, None)
        if callable(np_func) and not isinstance(np_func, (np.ufunc, type)):
            setattr(mod, name, _function(name, np_func, params))


# ----- the CUDA runtime, as far as tinygan asks it -------------------------------------------

class CUDARuntimeError(RuntimeError):
    pass


class _Runtime:
    CUDARuntimeError = CUDARuntimeError
    free_bytes, total_bytes = 70 * 2**30, 80 * 2**30          # a pretend H100

    def getDeviceCount(self):
        return 1

    def getDevice(self):
        return 0

    def memGetInfo(self):
        return self.free_bytes, self.total_bytes

    def getDeviceProperties(self, device):
        return {"name": b"strict CuPy stand-in (a CPU)", "major": 9, "minor": 0,
                "totalGlobalMem": self.total_bytes, "multiProcessorCount": 132}

    def runtimeGetVersion(self):
        return 12080

    def driverGetVersion(self):
        return 12080

    def deviceSynchronize(self):
        _sync("synchronize")


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        _sync("synchronize")

    @property
    def done(self):
        return True


def get_elapsed_time(start, end):
    return (end.t - start.t) * 1e3


class _Context:
    """What a CuPy Stream and Device share: a context manager that waits (a sync) when asked."""

    def synchronize(self):
        _sync("synchronize")

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Stream(_Context):
    null = None

    def __init__(self, null=False, non_blocking=False, ptds=False):
        pass

    def begin_capture(self, *args, **kwargs):
        raise NotImplementedError("the strict CuPy stand-in cannot capture CUDA graphs")


class Device(_Context):
    def __init__(self, device=None):
        self.id = 0
        self.compute_capability = "90"


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def n_free_blocks(self):
        return 0

    def set_limit(self, size=None, fraction=None):
        pass

    def get_limit(self):
        return 0


def _not_on_a_cpu(what):
    def refuse(*args, **kwargs):
        raise NotImplementedError(f"the strict CuPy stand-in runs no CUDA code ({what})")
    return refuse


# ----- random numbers, drawn "on the device" (no upload) -------------------------------------

class RandomState:
    """cupy.random.RandomState: NumPy's legacy generator inside; its results are device arrays
    (no upload). The parameters are CuPy's (tests/cupy_api.py)."""

    def __init__(self, seed=None, method=None):
        self.seed(seed)

    def seed(self, seed=None):
        if seed is not None:
            if np.asarray(seed).dtype.kind not in "biu":
                raise TypeError("Seed must be an integer.")
            if not 0 <= int(seed) < 2**64:
                raise ValueError("Seed must be an integer between 0 and 2**64 - 1")
        self._rs = np.random.RandomState(np.random.MT19937(None if seed is None else int(seed)))

    def standard_normal(self, size=None, dtype=float):
        return _new(np.asarray(self._rs.standard_normal(size)).astype(dtype))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return _new(np.asarray(self._rs.normal(_dev(loc), _dev(scale), size)).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return _new(np.asarray(self._rs.uniform(_dev(low), _dev(high), size)).astype(dtype))

    def random_sample(self, size=None, dtype=float):
        return _new(np.asarray(self._rs.random_sample(size)).astype(dtype))

    def rand(self, *size, **kwarg):
        dtype = kwarg.pop("dtype", float)
        if kwarg:
            raise TypeError(f"rand() got unexpected keyword arguments {', '.join(kwarg)}")
        return self.random_sample(size, dtype)

    def randn(self, *size, **kwarg):
        dtype = kwarg.pop("dtype", float)
        if kwarg:
            raise TypeError(f"randn() got unexpected keyword arguments {', '.join(kwarg)}")
        return self.standard_normal(size, dtype)

    def randint(self, low, high=None, size=None, dtype=int):
        return _new(np.asarray(self._rs.randint(low, high, size)).astype(dtype))

    def permutation(self, a):
        return _new(self._rs.permutation(_dev(a)))


_RANDOM_METHODS = ("standard_normal", "normal", "uniform", "random_sample", "rand", "randn", "randint",
                   "permutation")


def _random_module():
    mod = types.ModuleType("cupy.random")
    state = RandomState(0)
    mod.RandomState = RandomState
    mod.seed = state.seed
    mod.get_random_state = lambda: state
    for name in _RANDOM_METHODS:
        if name in cupy_api.FUNCTIONS["random"]:
            setattr(mod, name, getattr(state, name))
    mod.random = state.random_sample
    return mod


# ----- the module ----------------------------------------------------------------------------

_MODULE_UFUNCS = {}
_CURRENT = {}


def _installed_module():
    return _CURRENT["module"]


def _submodule(name, table, np_mod):
    mod = types.ModuleType(f"cupy.{name}")
    _fill_functions(mod, table, np_mod)
    return mod


def make_module():
    """A fresh module that looks to tinygan as cupy does."""
    mod = types.ModuleType("cupy")
    mod.__version__ = VERSION
    mod.ndarray, mod.ufunc = ndarray, ufunc
    _fill_functions(mod, cupy_api.FUNCTIONS[""], np)
    for name, (nin, nout) in cupy_api.UFUNCS.items():
        np_func = getattr(np, name, None)
        if isinstance(np_func, np.ufunc):
            _MODULE_UFUNCS[name] = ufunc(np_func, nin, nout)
            setattr(mod, name, _MODULE_UFUNCS[name])
        elif callable(np_func):                                # a ufunc in CuPy, a function in NumPy (fix, sinc)
            setattr(mod, name, _function(name, np_func, None))
    _MODULE_UFUNCS["matmul"] = ufunc(np.matmul, 2, 1)         # a generalised ufunc in CuPy
    mod.matmul = _MODULE_UFUNCS["matmul"]
    for name in ("bool_", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                 "uint16", "uint32", "uint64", "complex64", "complex128", "dtype", "newaxis", "inf", "nan",
                 "pi", "e", "finfo", "iinfo", "generic", "number", "integer", "floating", "inexact",
                 "signedinteger", "unsignedinteger", "s_", "index_exp", "intp", "half", "single", "double"):
        setattr(mod, name, getattr(np, name))
    mod.bool = np.bool_
    mod.linalg = _submodule("linalg", cupy_api.FUNCTIONS["linalg"], np.linalg)
    mod.fft = _submodule("fft", cupy_api.FUNCTIONS["fft"], np.fft)
    stride_tricks = _submodule("lib.stride_tricks", cupy_api.FUNCTIONS["lib.stride_tricks"], np.lib.stride_tricks)
    mod.lib = types.SimpleNamespace(stride_tricks=stride_tricks)
    mod.random = _random_module()
    mod.asnumpy = asnumpy
    mod.get_array_module = lambda *args: mod if any(isinstance(a, ndarray) for a in args) else np
    pool = _MemoryPool()
    mod.get_default_memory_pool = lambda: pool
    mod.get_default_pinned_memory_pool = lambda: pool
    mod.cuda = types.SimpleNamespace(
        runtime=_Runtime(), Event=Event, Stream=Stream, Device=Device, get_elapsed_time=get_elapsed_time,
        get_current_stream=lambda device=None: Stream(), is_available=lambda: True,
        memory=types.SimpleNamespace(OutOfMemoryError=MemoryError))
    mod.cuda.runtime.CUDARuntimeError = CUDARuntimeError
    for name in ("RawKernel", "RawModule", "ElementwiseKernel", "ReductionKernel", "fuse"):
        setattr(mod, name, _not_on_a_cpu(name))
    mod.watch, mod.transfers = watch, transfers
    mod.__getattr__ = _missing
    return mod


def _missing(name):
    raise AttributeError(f"module 'cupy' has no attribute {name!r} (strict stand-in for CuPy {cupy_api.VERSION}: "
                         f"CuPy has none, or the stand-in does not offer it)")


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream, order, out, blocking)
    return np.asarray(a, order=order)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    return _CURRENT["module"].array(obj, dtype, copy, order, subok, ndmin, blocking=blocking)


def install():
    """Make ``import cupy`` give a fresh stand-in from now on, in this process; returns it."""
    mod = make_module()
    _CURRENT["module"] = mod
    sys.modules["cupy"] = mod
    return mod


def shim(folder):
    """A folder to put first on a child process's PYTHONPATH: its ``import cupy`` installs the stand-in."""
    package = os.path.join(folder, "cupy")
    os.makedirs(package, exist_ok=True)
    with open(os.path.join(package, "__init__.py"), "w") as f:
        f.write(f"import sys\nsys.path.insert(0, {os.path.dirname(_HERE)!r})\n"
                "import strict_cupy\nstrict_cupy.install()\n")
    return str(folder)


@contextlib.contextmanager
def installed():
    """``sys.modules['cupy']`` is a fresh stand-in inside the block; the counts start from zero.

    Yields the module. Afterwards the real ``cupy`` (if any was imported) is back, and tinygan's
    backend, if it was left on the stand-in, is back on NumPy.
    """
    old = sys.modules.get("cupy")
    transfers.__init__()
    mod = install()
    try:
        yield mod
    finally:
        if old is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = old
        from tinygan import backend
        if backend.xp() is mod:
            backend.use("numpy")
