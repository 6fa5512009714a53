"""The strict CuPy stand-in (tests/strict_cupy.py) refuses what CuPy refuses and counts what crosses.

If the stand-in let something through that CuPy refuses, tests/test_gpu_path.py would pass
on a CPU and fail on the first GPU; these tests pin each refusal to CuPy 14's behaviour
(read from CuPy's cupy/_core/core.pyx and _kernel.pyx) and each count to its line.
"""
import inspect
import sys

import numpy as np
import pytest

import cupy_api
import strict_cupy
from tinygan import backend

HERE = "tests/test_strict_cupy.py"


@pytest.fixture
def cp():
    with strict_cupy.installed() as mod:
        yield mod


def line_of(marker):
    """The line number in this file of the line containing ``marker`` (a comment)."""
    lines = inspect.getsource(sys.modules[__name__]).splitlines()
    return next(i + 1 for i, text in enumerate(lines) if marker in text and "line_of" not in text)


def test_its_arrays_are_cupys_and_not_numpys(cp):
    x = cp.asarray(np.arange(6.0).reshape(2, 3))
    assert not isinstance(x, np.ndarray) and type(x).__module__ == "cupy" and cp.ndarray is type(x)
    assert backend.get_array_module(x) is cp                      # tinygan sees CuPy
    with pytest.raises(ValueError, match="mixed"):
        backend.get_array_module(x, np.zeros(3))


@pytest.mark.parametrize("convert", [np.asarray, np.array, np.ascontiguousarray])
def test_implicit_conversion_to_numpy_is_refused(cp, convert):
    x = cp.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed. Please use "
                                        "`.get[(][)]` to construct a NumPy array explicitly."):
        convert(x)


@pytest.mark.parametrize("mix", [
    lambda cp, x, h: x + h, lambda cp, x, h: h * x, lambda cp, x, h: cp.add(x, h),
    lambda cp, x, h: np.maximum(h, x), lambda cp, x, h: cp.where(x > 0, h, x),
    lambda cp, x, h: cp.concatenate([x, h]), lambda cp, x, h: cp.add(x, x, out=h),
    lambda cp, x, h: x.__iadd__(h), lambda cp, x, h: cp.copyto(x, h)])
def test_numpy_operands_are_refused(cp, mix):
    x, host = cp.ones(3), np.ones(3)
    with pytest.raises(TypeError, match=r"Unsupported type <class 'numpy.ndarray'>|must be cupy.ndarray|"
                                        r"non-scalar numpy.ndarray"):
        mix(cp, x, host)


def test_numbers_and_numpy_scalars_are_operands(cp):
    x = cp.ones(3, dtype=np.float32)
    y = (x * 2 + np.float32(0.5) - 1.0 ** 2) / 3                  # Python numbers are weak (NEP 50)
    assert type(y) is cp.ndarray and y.dtype == np.float32
    assert np.allclose(y.get(), 0.5)
    assert (x * np.float64(2)).dtype == np.float64                # a NumPy float64 is not


def test_numpy_functions_dispatch_only_to_cupys(cp):
    x = cp.asarray(np.arange(4.0))
    m = np.mean(x)                                                # CuPy has mean: it runs, on the device
    assert type(m) is cp.ndarray and m.shape == () and float(m) == 1.5
    for missing in (lambda: np.insert(x, 0, 1.0), lambda: np.nanquantile(x, 0.5)):
        with pytest.raises(TypeError, match="no implementation found"):
            missing()                                             # CuPy has no insert / nanquantile
    with pytest.raises(TypeError, match="no implementation found|operand type"):
        np.spacing(x)                                             # a NumPy ufunc CuPy lacks
    with pytest.raises(AttributeError, match="module 'cupy' has no attribute 'insert'"):
        cp.insert


def test_only_cupys_keywords_are_taken(cp):
    x = cp.ones((2, 3))
    with pytest.raises(TypeError, match="where"):
        x.sum(where=x > 0)                                        # NumPy's, not CuPy's
    with pytest.raises(TypeError, match="Wrong arguments"):
        cp.add(x, x, order="C")
    with pytest.raises(TypeError, match="casting is not supported"):
        x.astype(np.float32, casting="unsafe")
    with pytest.raises(TypeError):
        cp.sum(x, axis=0, initial=0.0)
    assert cp.asarray(np.ones(2), blocking=False).shape == (2,)   # CuPy's own keyword: taken


def test_it_behaves_as_cupy_where_numpy_differs(cp):
    x = cp.asarray(np.arange(24.0).reshape(2, 3, 4))
    assert type(x.sum()) is cp.ndarray and x.sum().shape == ()    # a 0-d device array, not a host scalar
    assert type(x[0, 0, 0]) is cp.ndarray                         # so is an element
    t = x.transpose(2, 0, 1)
    assert (t + 1).flags.c_contiguous                              # CuPy's kernels write C order...
    assert not (np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1) + 1).flags.c_contiguous   # NumPy's keep it
    assert cp.empty_like(t).strides == t.strides                  # ...empty_like keeps the layout (order='K')
    assert x.astype(np.float32).dtype == np.float32 and x.astype(np.float64, copy=False) is x


def test_syncs_are_counted_with_where_they_happened(cp):
    x = cp.asarray(np.arange(4.0))
    with cp.watch() as seen:
        x.get()                                                   # sync: get
        float(x[1])                                               # sync: float
        x.sum().item()                                            # sync: item
        bool(x[2] > 1)                                            # sync: bool
        x[x > 1]                                                  # sync: mask
        repr(x)                                                   # sync: repr
        cp.cuda.Device().synchronize()                            # sync: synchronize
        y = x * 2 + x.sum()                                       # no sync: all on the device
    kinds = [t.kind for t in seen.syncs]
    assert kinds == ["get", "float", "item", "bool", "mask", "repr", "synchronize"]
    assert [t.where for t in seen.syncs] == [f"{HERE}:{line_of(f'# sync: {k}')}" for k in kinds]
    assert seen.uploads == [] and type(y) is cp.ndarray
    assert seen.syncs[0].stack[0].endswith("test_syncs_are_counted_with_where_they_happened")


def test_uploads_are_counted_with_their_bytes(cp):
    x = cp.zeros(8, dtype=np.float32)
    with cp.watch() as seen:
        cp.asarray(np.ones(4, np.float32))                        # upload: asarray
        x[np.arange(2)] = 1                                       # upload: index
        x[:4] = np.ones(4, np.float32)                            # upload: setitem
        cp.asarray(x)                                             # no upload: already there
    assert [(t.kind, t.nbytes) for t in seen.uploads] == [("upload", 16), ("index", 16), ("setitem", 16)]
    assert seen.uploads[0].where == f"{HERE}:{line_of('# upload: asarray')}"
    assert seen.syncs == [] and strict_cupy.transfers.uploads[-3:] == seen.uploads


def test_what_a_cpu_cannot_do_says_so(cp):
    with pytest.raises(NotImplementedError, match="runs no CUDA code"):
        cp.RawKernel("", "k")
    with pytest.raises(NotImplementedError, match="CUDA graphs"):
        cp.cuda.Stream(non_blocking=True).begin_capture()


def test_installed_puts_the_real_module_back_and_tinygan_on_numpy():
    before = sys.modules.get("cupy")
    with strict_cupy.installed() as mod:
        import tinygan
        tinygan.use("cupy")
        assert sys.modules["cupy"] is mod and backend.xp() is mod
    assert sys.modules.get("cupy") is before and backend.xp() is np


def test_the_api_table_is_the_installed_cupys():
    """Where the real CuPy imports (no GPU needed), tests/cupy_api.py must be what it has."""
    real = pytest.importorskip("cupy", reason="CuPy is not installed: the table is checked where it is")
    version, ufuncs, functions = cupy_api._tables()
    assert real.__version__ == version
    if version != cupy_api.VERSION:
        pytest.skip(f"tests/cupy_api.py is CuPy {cupy_api.VERSION}'s; this is {version}")
    assert ufuncs == cupy_api.UFUNCS and functions == cupy_api.FUNCTIONS
