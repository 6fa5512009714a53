"""The one place that knows about NumPy and CuPy.

tinygan's layers are written once against the NumPy API. They never import cupy;
they ask this module for the array module ``xp`` of their input (``get_array_module``)
or, when they create arrays from nothing (parameters, noise), for the module chosen
with ``use``. CuPy implements the NumPy API on the GPU, so the same code runs on both.

    >>> import tinygan
    >>> tinygan.use("numpy")          # default
    >>> tinygan.use("cupy")           # raises a clear error without CuPy or a GPU

The default floating dtype is float32 (training); gradient checks use float64.
"""
import numpy as np

_BACKENDS = ("numpy", "cupy")
_state = {"name": "numpy", "xp": np, "dtype": np.dtype(np.float32)}


def _import_cupy():
    """Import CuPy and prove a GPU answers, or raise RuntimeError saying which is missing."""
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(
            "backend 'cupy' needs CuPy, which is not installed: "
            "pip install -e '.[cuda]' (CUDA 12.x; '.[cuda13]' for 13.x: nvidia-smi says which), "
            f"or use --backend numpy ({e})"
        ) from None
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        cupy.zeros(1).sum().item()          # a real round trip: driver, context, kernel
    except Exception as e:  # CUDARuntimeError, driver missing, ...
        raise RuntimeError(
            f"backend 'cupy': CuPy is installed but no usable GPU was found ({type(e).__name__}: {e}); "
            "check nvidia-smi and the CUDA driver, and that CuPy came with its CUDA libraries "
            "(pip install -e '.[cuda]' installs cupy-cuda12x[ctk]; docs/gpu.md), or use --backend numpy"
        ) from None
    if n < 1:
        raise RuntimeError("backend 'cupy': CuPy sees no GPU; use --backend numpy")
    return cupy


def cupy_available():
    """True when CuPy imports and a GPU runs a kernel."""
    try:
        _import_cupy()
        return True
    except RuntimeError:
        return False


def array_module(name):
    """The module for a backend name: numpy, or cupy (checked, as ``use`` checks it)."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(_BACKENDS)}")
    return np if name == "numpy" else _import_cupy()


def use(name, dtype=None):
    """Choose the array module for new arrays ('numpy' or 'cupy') and optionally the dtype.

    Either everything switches or nothing does: CuPy is checked before any state changes.
    """
    xp = array_module(name)
    new_dtype = np.dtype(dtype) if dtype is not None else _state["dtype"]
    if new_dtype.kind != "f":
        raise ValueError(f"default dtype must be a float type, got {new_dtype}")
    _state.update(name=name, xp=xp, dtype=new_dtype)


def backend_name():
    return _state["name"]


def xp():
    """The array module chosen with ``use`` (numpy by default)."""
    return _state["xp"]


def default_dtype():
    return _state["dtype"]


def set_default_dtype(dtype):
    use(_state["name"], dtype)


def get_array_module(*arrays):
    """numpy or cupy, whichever the arrays belong to; a ValueError if they mix."""
    modules = {_module_of(a) for a in arrays if a is not None}
    if len(modules) > 1:
        raise ValueError("arrays from numpy and cupy were mixed: move them to one backend first "
                         "(tinygan.backend.to_numpy / module.to('cupy'))")
    return modules.pop() if modules else np


def _module_of(a):
    # Decide by the type's module name so that numpy-only machines never import cupy.
    return np if type(a).__module__.split(".")[0] != "cupy" else _import_cupy_quiet()


def _import_cupy_quiet():
    import cupy
    return cupy


def to_numpy(a):
    """A NumPy array of ``a`` (copies from the GPU when ``a`` is a CuPy array)."""
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return np.asarray(a)


def asarray(a, dtype=None, like=None):
    """``a`` as an array of the chosen backend (or of ``like``'s), in ``dtype`` or the default."""
    module = get_array_module(like) if like is not None else _state["xp"]
    if module is np:
        a = to_numpy(a)
    return module.asarray(a, dtype=dtype or _state["dtype"])
