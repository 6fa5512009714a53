"""Shared fixtures for tinygan's tests.

* ``xp``: runs a test once per backend — 'numpy' always, 'cupy' only where
  ``tinygan.backend.cupy_available()`` (else skipped: "CuPy/GPU not available"). The
  CuPy case carries ``pytest.mark.gpu``, so ``pytest -m "not gpu"`` leaves it out.
  The fixture switches tinygan to that backend in float64 and returns its array module.
* ``randn``: ``randn(xp, *shape, dtype=np.float64, seed=0)``, a standard-normal array on
  the backend ``xp``, drawn on the host so NumPy and CuPy see the same numbers.
* An autouse fixture seeds NumPy's global generator (layers draw their initial weights
  from it) and puts tinygan back on numpy/float32 after every test, whatever the test
  switched to, so no test leaks its backend or dtype into the next.
"""
import numpy as np
import pytest

import tinygan
from tinygan import backend

_CUPY_OK = backend.cupy_available()
CUPY_SKIP_REASON = "CuPy/GPU not available"

BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cupy", id="cupy",
                 marks=[pytest.mark.gpu, pytest.mark.skipif(not _CUPY_OK, reason=CUPY_SKIP_REASON)]),
]


@pytest.fixture(autouse=True)
def _reset_tinygan_backend():
    np.random.seed(12345)
    yield
    tinygan.use("numpy", np.float32)


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module of the backend under test; tinygan is switched to it in float64."""
    tinygan.use(request.param, np.float64)
    return backend.xp()


@pytest.fixture
def cupy():
    """The real cupy module, or a clean skip where there is no CuPy or no GPU."""
    if not _CUPY_OK:
        pytest.skip(CUPY_SKIP_REASON)
    import cupy
    return cupy


def _randn(xp, *shape, dtype=np.float64, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return xp.asarray(a)


@pytest.fixture
def randn():
    return _randn


# ----- the training run --------------------------------------------------------------------

def make_sprites(folder, n=12, size=(48, 40)):
    """n made-up RGBA sprites in ``folder``: a flat-coloured box in a transparent frame."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.zeros((h, w, 4), np.uint8)
        a[h // 6:h - h // 6, w // 5:w - w // 5, :3] = rng.integers(0, 255, 3)
        a[h // 6:h - h // 6, w // 5:w - w // 5, 3] = 255
        Image.fromarray(a, "RGBA").save(folder / f"s{i:02d}.png")
    return folder


@pytest.fixture
def sprites(tmp_path):
    """Twelve made-up RGBA sprites (48×40)."""
    return make_sprites(tmp_path / "sprites")


# The train_step calls of train.run's ETA that on_train_step counts before the first real one: none
# (it times its throwaway steps through tinygan.dcgan.train_step, whose number depends on the clock).
TIMING_STEPS = 0


def on_train_step(monkeypatch, call, action):
    """Make tinygan.train's n-th ``train_step`` call (counting the timing steps) run ``action(result)``
    on its (loss_D, loss_G) and return what that gives: a NaN, a signal, …"""
    from tinygan import train as train_mod
    real_step, calls = train_mod.train_step, {"n": 0}

    def wrapped(*args, **kw):
        calls["n"] += 1
        result = real_step(*args, **kw)
        return action(result) if calls["n"] == call else result

    monkeypatch.setattr(train_mod, "train_step", wrapped)
    return real_step


# The (k, s, p) of every per-layer convolution test (loops, finite differences, PyTorch), and
# the (k, s, p, output_padding) of the transposed ones: 1×1, same-size, DCGAN k4 s2 p1,
# strides larger than the kernel, padding larger than half the kernel, output_padding.
CONV_KSP = [(1, 1, 0), (3, 1, 1), (3, 2, 1), (4, 2, 1), (2, 3, 0), (3, 1, 2), (4, 1, 0), (2, 3, 2)]
DECONV_KSPO = [(1, 1, 0, 0), (3, 1, 1, 0), (4, 2, 1, 0), (4, 2, 1, 1), (3, 2, 1, 1), (3, 3, 0, 2), (2, 1, 1, 0),
               (4, 1, 0, 0), (5, 2, 2, 1)]


def conv_cases(ksp, shapes):
    """pytest params (k, s, p, shape) for every (k, s, p) × (N, C, H, W) whose convolution output is not empty."""
    import itertools

    from tinygan.nn.im2col import conv_out_size
    return [pytest.param(k, s, p, shape, id=f"k{k}s{s}p{p}-{'x'.join(map(str, shape))}")
            for (k, s, p), shape in itertools.product(ksp, shapes)
            if conv_out_size(shape[2], k, s, p) >= 1 and conv_out_size(shape[3], k, s, p) >= 1]
