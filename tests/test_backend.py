"""tinygan.backend: choosing numpy/cupy and the default dtype, and moving arrays.

CuPy's absence is simulated by putting ``None`` in ``sys.modules['cupy']`` (then
``import cupy`` raises ImportError), and "CuPy without a GPU" by a stand-in module whose
device query fails, so these paths are tested on every machine, GPU or not.
"""
import sys
import types

import numpy as np
import pytest

import tinygan
from tinygan import backend, nn


def _fake_cupy(device_error=None, devices=1):
    """A stand-in 'cupy' module: getDeviceCount raises ``device_error`` or returns ``devices``."""
    fake = types.ModuleType("cupy")

    def get_device_count():
        if device_error is not None:
            raise device_error
        return devices

    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    fake.zeros = np.zeros
    return fake


class _FakeCupyArray:
    """Looks like a CuPy array to tinygan (its type lives in module 'cupy'); .get() copies to host."""
    __module__ = "cupy"

    def __init__(self, data):
        self.data = np.asarray(data)
        self.shape, self.dtype = self.data.shape, self.data.dtype

    def get(self):
        return self.data.copy()


def test_default_is_numpy_float32():
    assert backend.backend_name() == "numpy"
    assert backend.xp() is np
    assert backend.default_dtype() == np.float32
    conv, bn = nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)
    for a in [conv.weight.data, conv.bias.data, conv.weight.grad, bn.weight.data, bn.running_mean, bn.running_var]:
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
    assert bn.num_batches_tracked.dtype == np.int64


def test_use_numpy_with_dtype_switches_new_layers():
    tinygan.use("numpy", np.float64)
    assert backend.default_dtype() == np.float64
    assert nn.ConvTranspose2d(2, 3, 4).weight.data.dtype == np.float64
    assert nn.BatchNorm2d(2).running_var.dtype == np.float64
    backend.set_default_dtype(np.float32)
    assert backend.default_dtype() == np.float32 and backend.backend_name() == "numpy"
    # use() without a dtype keeps the current one
    tinygan.use("numpy", "float64")
    tinygan.use("numpy")
    assert backend.default_dtype() == np.float64


def test_use_rejects_non_float_dtype_and_changes_nothing():
    tinygan.use("numpy", np.float64)
    with pytest.raises(ValueError, match="default dtype must be a float type, got int32"):
        tinygan.use("numpy", np.int32)
    assert backend.default_dtype() == np.float64 and backend.backend_name() == "numpy"


def test_use_bogus_raises_value_error_and_changes_nothing():
    tinygan.use("numpy", np.float64)
    with pytest.raises(ValueError, match=r"unknown backend 'bogus': choose one of numpy, cupy"):
        tinygan.use("bogus")
    assert backend.backend_name() == "numpy" and backend.xp() is np
    assert backend.default_dtype() == np.float64


def test_use_cupy_without_cupy_raises_and_leaves_backend_unchanged(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)        # `import cupy` -> ImportError
    tinygan.use("numpy", np.float64)
    with pytest.raises(RuntimeError, match=r"backend 'cupy' needs CuPy, which is not installed.*--backend numpy"):
        tinygan.use("cupy", np.float32)
    assert backend.backend_name() == "numpy" and backend.xp() is np
    assert backend.default_dtype() == np.float64            # the dtype did not half-switch either
    assert backend.cupy_available() is False
    with pytest.raises(RuntimeError, match="needs CuPy"):
        backend.array_module("cupy")


def test_use_cupy_without_gpu_raises_and_leaves_backend_unchanged(monkeypatch):
    class CUDARuntimeError(Exception):
        pass

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device")))
    with pytest.raises(RuntimeError, match=r"CuPy is installed but no usable GPU was found "
                                           r"\(CUDARuntimeError: cudaErrorNoDevice"):
        tinygan.use("cupy")
    assert backend.backend_name() == "numpy" and backend.xp() is np and backend.default_dtype() == np.float32
    assert backend.cupy_available() is False


def test_use_cupy_with_zero_devices_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(devices=0))
    with pytest.raises(RuntimeError, match="CuPy sees no GPU"):
        tinygan.use("cupy")
    assert backend.backend_name() == "numpy"


@pytest.mark.skipif(backend.cupy_available(), reason="this machine has CuPy and a GPU")
def test_use_cupy_on_this_machine_raises_runtime_error():
    with pytest.raises(RuntimeError, match="backend 'cupy'"):
        tinygan.use("cupy")
    assert backend.backend_name() == "numpy" and backend.xp() is np


@pytest.mark.gpu
def test_use_cupy_switches_everything(cupy):
    tinygan.use("cupy")
    assert backend.backend_name() == "cupy" and backend.xp() is cupy
    conv = nn.Conv2d(1, 2, 3)
    assert isinstance(conv.weight.data, cupy.ndarray) and conv.weight.data.dtype == np.float32
    assert isinstance(conv.weight.grad, cupy.ndarray)
    assert backend.get_array_module(conv.weight.data) is cupy
    host = tinygan.to_numpy(conv.weight.data)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, conv.weight.data.get())


def test_to_numpy():
    a = np.arange(6.0).reshape(2, 3)
    assert tinygan.to_numpy(a) is a                      # already host: no copy
    b = tinygan.to_numpy([[1, 2], [3, 4]])
    assert isinstance(b, np.ndarray) and b.tolist() == [[1, 2], [3, 4]]
    fake = _FakeCupyArray([1.5, 2.5])                    # a device array is copied with .get()
    host = tinygan.to_numpy(fake)
    assert isinstance(host, np.ndarray) and host.tolist() == [1.5, 2.5]


@pytest.mark.gpu
def test_to_numpy_from_cupy(cupy):
    d = cupy.arange(5, dtype=cupy.float32)
    h = tinygan.to_numpy(d)
    assert isinstance(h, np.ndarray) and h.dtype == np.float32 and h.tolist() == [0, 1, 2, 3, 4]


def test_get_array_module(monkeypatch):
    assert tinygan.get_array_module(np.zeros(2)) is np
    assert tinygan.get_array_module(np.zeros(2), None, np.ones(3)) is np
    assert tinygan.get_array_module() is np                # nothing given: numpy
    fake_module = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake_module)
    dev = _FakeCupyArray([1.0])
    assert tinygan.get_array_module(dev) is fake_module
    assert tinygan.get_array_module(dev, dev) is fake_module
    with pytest.raises(ValueError, match="arrays from numpy and cupy were mixed"):
        tinygan.get_array_module(np.zeros(1), dev)


@pytest.mark.gpu
def test_get_array_module_mixed_real(cupy):
    assert tinygan.get_array_module(cupy.zeros(2)) is cupy
    with pytest.raises(ValueError, match="mixed"):
        tinygan.get_array_module(np.zeros(2), cupy.zeros(2))


def test_asarray_uses_default_dtype_or_like():
    a = backend.asarray([1, 2, 3])
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    assert backend.asarray([1, 2], dtype=np.float64).dtype == np.float64
    assert backend.asarray([1, 2], dtype=np.dtype("float64")).dtype == np.float64
    tinygan.use("numpy", np.float64)
    assert backend.asarray([1]).dtype == np.float64
    assert backend.asarray([1], like=np.zeros(1)).dtype == np.float64


# These two run in file order: the first switches the dtype, the second sees it undone by
# conftest's autouse fixture.
def test_backend_state_is_reset_between_tests_part1():
    tinygan.use("numpy", np.float64)
    assert backend.default_dtype() == np.float64 and nn.Conv2d(1, 1, 1).weight.data.dtype == np.float64


def test_backend_state_is_reset_between_tests_part2():
    assert backend.backend_name() == "numpy" and backend.default_dtype() == np.float32
    assert nn.Conv2d(1, 1, 1).weight.data.dtype == np.float32
