"""How many array operations (GPU kernel launches) one train_step makes on the CuPy branch — on a CPU.

    .venv/bin/python benchmarks/launch_budget.py --batch-size 256

On a GPU every array operation is at least one kernel launch, and at batch 256 the DCGAN
step is short enough (tens of ms) that launches and temporaries matter. This script runs
one ``tinygan.dcgan.train_step`` with a stand-in for CuPy: a module named ``cupy`` whose
arrays are NumPy arrays of a subclass that counts

  * launches: every ufunc call (element-wise, reductions, matmul), every copy into an
    array (``a[...] = b``, ``copy``, ``astype``, ``ascontiguousarray``), every array
    function (``where``, ``concatenate``, …) and every array filled on creation (``zeros``,
    ``ones``, ``full``); ``einsum`` as CuPy runs it (its operands copied, then a batched
    GEMM: ``_count_einsum``); views (reshape, transpose, slicing, ``as_strided``) and
    ``empty`` launch nothing;
  * temporaries: the bytes of every array an operation allocates (any output not given
    with ``out=``), and how many of those are copies that only change the memory layout
    (``transposing``: a contiguous copy of a non-contiguous array);
  * bytes moved: what the operations read and write if each reads every operand once and
    writes its output once (a product's operands too, whatever cuBLAS re-reads): a lower
    bound of the step's memory traffic, the figure docs/gpu.md's estimate divides by the
    GPU's bandwidth;

and that returns every element-wise result C-contiguous, whatever the layout of its
inputs, as CuPy's element-wise kernels do (NumPy keeps the inputs' layout). So a layer
that relies on NumPy's layout-keeping shows up here as transposing copies.

tinygan sees these arrays as CuPy's (``backend.get_array_module`` goes by the type's
module name), so the code that runs is the non-NumPy branch of every ``xp is np`` choice.
What it cannot show: the cost of each launch, cuBLAS's algorithms, memory-pool reuse.
"""
import argparse
import contextlib
import sys
import types
from collections import Counter

import numpy as np

# NumPy functions that return views or metadata: no kernel on a GPU either.
_VIEWS = {"reshape", "transpose", "moveaxis", "swapaxes", "squeeze", "expand_dims", "broadcast_to",
          "shape", "ndim", "size", "result_type", "may_share_memory", "shares_memory"}
# Creation functions: (launches, allocates)
_CREATE = {"empty": 0, "empty_like": 0, "zeros": 1, "zeros_like": 1, "ones": 1, "ones_like": 1,
           "full": 1, "full_like": 1, "arange": 1}


class Counts:
    """What the stand-in saw: launches by kind and by owner (layer type, optimizer), bytes
    allocated, transposing copies."""

    def __init__(self):
        self.launches = Counter()
        self.by_owner = Counter()
        self.bytes = 0
        self.moved = 0
        self.transposing = 0
        self.enabled = True

    def launch(self, kind, n=1):
        if self.enabled:
            self.launches[kind] += n

    def allocate(self, nbytes):
        if self.enabled:
            self.bytes += int(nbytes)

    def move(self, *arrays):
        """Count each array's bytes as read or written once."""
        if self.enabled:
            self.moved += sum(int(a.nbytes) for a in arrays if isinstance(a, (np.ndarray, np.generic)))

    @property
    def total(self):
        return sum(self.launches.values())


COUNTS = Counts()


class ndarray(np.ndarray):
    """A NumPy array that CuPy's name is on; every operation on it is counted in ``COUNTS``."""

    __module__ = "cupy"

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        COUNTS.launch(f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__)
        args = [_plain(a) for a in inputs]
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        COUNTS.move(*args, *(kwargs["out"] if out is not None else _tuple(result)))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap_new(result, contiguous=True)

    def __array_function__(self, func, types_, args, kwargs):
        name = func.__name__
        if name == "einsum":
            _count_einsum(args)
        elif name not in _VIEWS:
            COUNTS.launch(name)
        result = func(*_plain_tree(args), **_plain_tree(kwargs))
        if name in _VIEWS:
            return _wrap_view(result)
        if name != "einsum":
            COUNTS.move(*_arrays(args), *_arrays(kwargs.values()), *_tuple(result))
        return _wrap_new(result, contiguous=False)

    def __setitem__(self, key, value):
        COUNTS.launch("setitem")
        target = np.ndarray.__getitem__(_plain(self), key)
        COUNTS.move(target, target if isinstance(value, np.ndarray) else None)
        np.ndarray.__setitem__(_plain(self), key, _plain(value))

    def fill(self, value):
        COUNTS.launch("fill")
        COUNTS.move(self)
        np.ndarray.fill(_plain(self), value)

    def copy(self, order="C"):
        COUNTS.launch("copy")
        COUNTS.move(self, self)
        out = np.ndarray.copy(_plain(self), order=order)
        _note_layout_copy(self, out)
        return _wrap_new(out, contiguous=False)

    def astype(self, dtype, copy=True, **kw):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        COUNTS.launch("astype")
        out = np.ndarray.astype(_plain(self), dtype, **kw)
        COUNTS.move(self, out)
        return _wrap_new(out, contiguous=False)

    def get(self):
        """To the host, as CuPy's ``get`` (a transfer, not counted as a kernel)."""
        return np.array(_plain(self))

    def item(self):
        return _plain(self).item()


def _count_einsum(args):
    """What CuPy launches for ``einsum`` of n arrays (cupy/linalg/_einsum.py, no cuTENSOR): each
    operand copied into the batched layout of its product (``_flatten_transpose``: a copy unless it
    already is), then one batched GEMM per pair — under CUPY_TF32=1 a TF32 one. Counted as n
    copies (with their bytes) and n − 1 matmuls: an upper bound, never the 1 launch einsum looks like."""
    operands = [a for a in args[1:] if isinstance(a, np.ndarray)]
    COUNTS.launch("einsum: operand copies", len(operands))
    COUNTS.launch("einsum: batched matmul", max(1, len(operands) - 1))
    for a in operands:
        COUNTS.allocate(a.nbytes)
        COUNTS.move(a, a, a)                       # copied (read, write), then read by the GEMM


def _arrays(tree):
    """The arrays in a (nested) list or tuple of arguments."""
    for x in tree:
        if isinstance(x, np.ndarray):
            yield x
        elif isinstance(x, (list, tuple)):
            yield from _arrays(x)


def _tuple(r):
    return r if isinstance(r, tuple) else (r,)


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, ndarray) else a


def _plain_tree(x):
    if isinstance(x, (list, tuple)):
        return type(x)(_plain_tree(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain_tree(v) for k, v in x.items()}
    return _plain(x)


def _wrap_view(r):
    return r.view(ndarray) if isinstance(r, np.ndarray) else r


def _wrap_new(r, contiguous):
    """A result array, allocated by the operation: counted, made CuPy-like, wrapped."""
    if isinstance(r, tuple):
        return tuple(_wrap_new(v, contiguous) for v in r)
    if isinstance(r, np.generic):
        r = np.asarray(r)                         # CuPy keeps a full reduction on the device, 0-d
    if not isinstance(r, np.ndarray):
        return r
    if contiguous and not r.flags.c_contiguous:
        r = np.ascontiguousarray(r)               # CuPy's element-wise kernels write C order
    COUNTS.allocate(r.nbytes)
    return r.view(ndarray)


def _note_layout_copy(src, out):
    """Count a copy that reorders axes (not one that only crops or pads): the strides of the
    source, over its axes longer than 1, are not in decreasing order."""
    strides = [abs(st) for st, n in zip(src.strides, src.shape) if n > 1]
    if strides != sorted(strides, reverse=True):
        COUNTS.transposing += 1


def _function(name):
    f = getattr(np, name)
    if isinstance(f, np.ufunc) or not callable(f):
        return f

    def wrapped(*args, **kwargs):
        if name in _CREATE:
            r = f(*_plain_tree(args), **_plain_tree(kwargs))
            COUNTS.launch(name, _CREATE[name])
            if _CREATE[name]:
                COUNTS.move(r)
            return _wrap_new(r, contiguous=False)
        if name in ("asarray", "array", "ascontiguousarray"):
            a = args[0]
            if isinstance(a, ndarray):                 # already on the "device"
                r = f(_plain(a), *args[1:], **kwargs)
                if r is _plain(a) or np.shares_memory(r, _plain(a)):
                    return _wrap_view(r)
                COUNTS.launch(name)
                COUNTS.move(r, r)
                _note_layout_copy(a, r)
                return _wrap_new(r, contiguous=False)
            COUNTS.launch("upload")                    # from the host
            return _wrap_new(f(*_plain_tree(args), **_plain_tree(kwargs)), contiguous=False)
        return f(*args, **kwargs)                     # dispatches to ndarray.__array_function__
    wrapped.__name__ = name
    return wrapped


def _as_strided(x, shape=None, strides=None):
    return _wrap_view(np.lib.stride_tricks.as_strided(_plain(x), shape=shape, strides=strides))


def make_module():
    """A module that looks enough like cupy for tinygan's train_step."""
    mod = types.ModuleType("cupy")
    mod.ndarray = ndarray
    mod.__getattr__ = _function
    mod.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))
    mod.asnumpy = lambda a: np.array(_plain(a))
    for name in ("float16", "float32", "float64", "int32", "int64", "uint8", "bool_", "dtype", "newaxis",
                 "inf", "nan", "pi", "e"):
        setattr(mod, name, getattr(np, name))
    return mod


@contextlib.contextmanager
def counting_cupy():
    """Install the stand-in as ``cupy`` (sys.modules) for the block; yields the module."""
    mod, old = make_module(), sys.modules.get("cupy")
    sys.modules["cupy"] = mod
    try:
        yield mod
    finally:
        if old is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = old


def _attribute(obj, method, owner):
    """Wrap ``obj.method`` so that the launches it makes are added to ``COUNTS.by_owner[owner]``."""
    inner = getattr(obj, method)

    def wrapped(*args, **kwargs):
        before = COUNTS.total
        try:
            return inner(*args, **kwargs)
        finally:
            if COUNTS.enabled:
                COUNTS.by_owner[owner] += COUNTS.total - before
    setattr(obj, method, wrapped)


def _attribute_all(G, D, opt_G, opt_D, loss_fn):
    for net in (G, D):
        for m in net.modules():
            if not list(m.named_children()):                  # leaf layers
                for method in ("forward", "backward"):
                    _attribute(m, method, f"{type(m).__name__}.{method}")
    for opt in (opt_G, opt_D):
        _attribute(opt, "step", "Adam.step")
        _attribute(opt, "zero_grad", "Adam.zero_grad")
    _attribute(loss_fn, "forward", "BCEWithLogitsLoss")
    _attribute(loss_fn, "backward", "BCEWithLogitsLoss")


def count_train_step(batch_size=256, image_size=64, features=64, latent=100, recipe="paper", warmup=1):
    """One train_step on the stand-in after ``warmup`` uncounted ones: (Counts, G, D)."""
    from tinygan.dcgan import RECIPES, build, train_step
    from tinygan.nn import BCEWithLogitsLoss
    from tinygan.optim import Adam

    with counting_cupy() as cp:
        COUNTS.__init__()
        COUNTS.enabled = False
        G, D = build(recipe, latent, features, image_size, seed=0)
        for m in (G, D):
            for p in m.parameters():
                p.data, p.grad = cp.asarray(p.data), cp.asarray(p.grad)
            for mod in m.modules():
                for name in mod._buffers:
                    setattr(mod, name, cp.asarray(getattr(mod, name)))
        r = RECIPES[recipe]
        opt_G = Adam(G.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
        opt_D = Adam(D.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
        loss_fn = BCEWithLogitsLoss(reduction=r["reduction"])
        rng = np.random.default_rng(0)
        real = cp.asarray(rng.uniform(-1, 1, (batch_size, 3, image_size, image_size)).astype(np.float32))
        z = cp.asarray(rng.standard_normal((batch_size, latent, 1, 1)).astype(np.float32))
        for _ in range(warmup):
            train_step(G, D, opt_G, opt_D, real, z, loss_fn)
        _attribute_all(G, D, opt_G, opt_D, loss_fn)
        COUNTS.enabled = True
        stats = {}
        train_step(G, D, opt_G, opt_D, real, z, loss_fn, stats)
        COUNTS.enabled = False
    return COUNTS, G, D


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--top", type=int, default=12, help="show the N most frequent operations")
    args = ap.parse_args(argv)
    counts, _, _ = count_train_step(args.batch_size, args.image_size, args.features)
    print(f"one train_step, batch {args.batch_size}, {args.image_size}x{args.image_size}, features "
          f"{args.features}, on the CuPy branch (stand-in):")
    print(f"  array operations (kernel launches): {counts.total}")
    print(f"  bytes of temporaries allocated:     {counts.bytes / 2**20:,.1f} MiB")
    print(f"  bytes moved (each operand once):    {counts.moved / 1e9:,.1f} GB")
    print(f"  transposing (layout-only) copies:   {counts.transposing}")
    print("  by operation:")
    for kind, n in counts.launches.most_common(args.top):
        print(f"    {kind:<28} {n}")
    print("  by layer (all calls in the step) and optimizer:")
    rest = counts.total - sum(counts.by_owner.values())
    for owner, n in [*counts.by_owner.most_common(), ("train_step itself (labels, stats)", rest)]:
        print(f"    {owner:<34} {n}")


if __name__ == "__main__":
    main()
