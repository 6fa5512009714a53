"""tinygan.jit: each compiled loop gives the bits of the NumPy version it stands beside.

The loops are checked twice: compiled by Numba (what the layers run; skipped, saying so,
where Numba is not installed) and as the plain Python function ``.py`` on tiny arrays (the
index arithmetic itself, with or without Numba). Equal means equal bits here — compared as
integers, so that even a −0.0 where the NumPy version has +0.0 would fail.
"""
import importlib.util

import numpy as np
import pytest

from tinygan import jit, parallel
from tinygan.dcgan import build, train_step
from tinygan.nn import layout
from tinygan.optim import Adam

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="Numba is not installed (pip install -e '.[fast]')")


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
        a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def numpy_then_loops(monkeypatch, run, *args, as_python=()):
    """(run(*args) with the NumPy versions, run(*args) with the loops); ``as_python``: (module,
    name) pairs of loops to run as their plain Python functions instead of compiled."""
    monkeypatch.setitem(jit._state, "enabled", False)
    plain = run(*args)
    monkeypatch.setitem(jit._state, "enabled", True)
    for module, name in as_python:
        monkeypatch.setattr(module, name, getattr(module, name).py)
    return plain, run(*args)


def all_same_bits(pair):
    plain, compiled = pair
    return len(plain) == len(compiled) and all(same_bits(a, b) for a, b in zip(plain, compiled))


@pytest.fixture
def split(monkeypatch):
    """split(n): parallel.run cuts even tiny calls n ways for this test."""
    def set_to(n):
        monkeypatch.setattr(parallel, "MIN_SIZE", 0)
        monkeypatch.setitem(parallel._state, "threads", n)
    return set_to


# (k, s, crop): stride below, at and above the kernel; crops up to beyond the kernel
GATHER_KSP = [(1, 1, 0), (3, 1, 1), (2, 2, 0), (4, 2, 1), (4, 2, 2), (3, 2, 1), (5, 2, 2), (3, 3, 0),
              (4, 3, 1), (2, 3, 1), (1, 2, 0), (4, 1, 0)]
GATHER_GRIDS = [((3, 4), (0, 0)), ((2, 5), (1, 0)), ((1, 1), (0, 1))]   # windows, canvas rows/cols past them
GATHER_CASES = [(k, s, crop, windows, extra) for k, s, crop in GATHER_KSP for windows, extra in GATHER_GRIDS
                if max(extra) < s                                        # else the canvas holds more windows
                if min((windows[0] - 1) * s + k + extra[0], (windows[1] - 1) * s + k + extra[1]) > 2 * crop]


def _gather_case(k, s, crop, windows, extra, dtype=np.float64, C=5, N=3):
    (OH, OW), (ey, ex) = windows, extra
    Hp, Wp = (OH - 1) * s + k + ey, (OW - 1) * s + k + ex
    rng = np.random.default_rng(3)
    cols = rng.standard_normal((C * k * k, OH * OW * N)).astype(dtype)
    cols[:, ::7] = -0.0                                   # signed zeros: 0 + (−0) is +0, a copy keeps −0
    expected = layout.col2im_chwn(cols, np.full((C, Hp, Wp, N), np.nan, dtype), k, s, crop=crop,
                                  out=np.empty((C, Hp - 2 * crop, Wp - 2 * crop, N), dtype))
    return cols, expected


@needs_numba
@pytest.mark.parametrize("k, s, crop, windows, extra", GATHER_CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_col2im_gather_equals_the_scatter_bit_for_bit(split, k, s, crop, windows, extra, threads):
    split(threads)
    cols, expected = _gather_case(k, s, crop, windows, extra)
    got = layout.col2im_gather(cols, np.full_like(expected, np.nan), k, s, crop=crop)
    assert same_bits(got, expected)


@pytest.mark.parametrize("k, s, crop", [(4, 2, 1), (3, 3, 0), (2, 3, 1), (3, 2, 2)])
def test_col2im_gathers_loop_as_plain_python_is_the_same_arithmetic(k, s, crop):
    cols, expected = _gather_case(k, s, crop, (2, 3), (1, 0), C=2, N=2)
    C, Hout, Wout, N = expected.shape
    got = np.full_like(expected, np.nan)
    layout._gather_channels.py(cols.reshape(C, k, k, 2, 3, N), got, k, s, crop, 0, C)
    assert same_bits(got, expected)


@needs_numba
def test_col2im_gather_float32_at_a_dcgan_shape():
    cols, expected = _gather_case(4, 2, 1, (8, 8), (0, 0), dtype=np.float32, C=16, N=8)
    assert same_bits(layout.col2im_gather(cols, np.empty_like(expected), 4, 2, crop=1), expected)


# ----- the switch -----------------------------------------------------------------------

def test_tinygan_jit_0_switches_the_loops_off(monkeypatch):
    monkeypatch.setitem(jit._state, "enabled", None)
    monkeypatch.setenv("TINYGAN_JIT", "0")
    assert jit.enabled() is False
    monkeypatch.setitem(jit._state, "enabled", None)
    monkeypatch.delenv("TINYGAN_JIT")
    assert jit.enabled() is HAVE_NUMBA


def test_asking_for_the_loops_without_numba_says_what_to_install(monkeypatch):
    monkeypatch.setattr(jit.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setitem(jit._state, "enabled", None)
    assert jit.enabled() is False
    with pytest.raises(RuntimeError, match="pip install"):
        jit.set_enabled(True)


# ----- a whole training step -------------------------------------------------------------

def _two_steps(dtype):
    G, D = build("paper", latent_dim=8, features=4, image_size=16, seed=0)
    if dtype == np.float64:
        G, D = G.double(), D.double()
    opt_G, opt_D = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)), Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (6, 3, 16, 16)).astype(dtype)
    losses = []
    for _ in range(2):
        z = rng.standard_normal((6, 8, 1, 1)).astype(dtype)
        losses += [float(v) for v in train_step(G, D, opt_G, opt_D, real, z)]
    return losses, [p.data.copy() for p in G.parameters() + D.parameters()] + \
        [b.copy() for m in (G, D) for _, b in m.named_buffers()]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_training_step_with_the_loops_is_bit_identical_to_numpy(monkeypatch, split, dtype):
    split(2)
    (plain_losses, plain), (losses, compiled) = numpy_then_loops(monkeypatch, _two_steps, dtype)
    assert plain_losses == losses and all_same_bits((plain, compiled))


# ----- im2col straight from the unpadded input -------------------------------------------

IM2COL_CASES = [(k, s, p, (H, W)) for k, s, p in [(1, 1, 0), (3, 1, 1), (4, 2, 1), (4, 2, 2), (3, 3, 0),
                                                   (2, 3, 1), (4, 1, 3), (5, 2, 6)]
                for H, W in [(5, 5), (6, 4), (1, 7)] if min(H, W) + 2 * p >= k]


def _im2col_case(k, s, p, hw, dtype=np.float64, C=3, N=2):
    x = np.random.default_rng(5).standard_normal((C, *hw, N)).astype(dtype)
    x[:, :, ::3] = -0.0
    pad = layout.nchw_to_chwn(layout.chwn_to_nchw(x), p)
    return x, layout.im2col_chwn(pad, k, s)


@needs_numba
@pytest.mark.parametrize("k, s, p, hw", IM2COL_CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_im2col_unpadded_equals_pad_then_copy(split, k, s, p, hw, threads):
    split(threads)
    x, expected = _im2col_case(k, s, p, hw)
    got = layout.im2col_unpadded(x, k, s, p, np.full_like(expected, np.nan))
    assert same_bits(got, expected)


@pytest.mark.parametrize("k, s, p, hw", IM2COL_CASES[::5])
def test_im2col_unpaddeds_loop_as_plain_python_is_the_same_arithmetic(k, s, p, hw):
    x, expected = _im2col_case(k, s, p, hw)
    C, H, W, N = x.shape
    got = np.full_like(expected, np.nan)
    layout._windows_of_channels.py(x, got.reshape(C, k, k, -1, (W + 2 * p - k) // s + 1, N), s, p, 0, C)
    assert same_bits(got, expected)


# ----- Adam's update -----------------------------------------------------------------------

def _adam_steps(dtype, steps=3):
    from tinygan.nn import Parameter
    rng = np.random.default_rng(11)
    params = [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in [(7, 5), (3,), (2, 4, 3, 3)]]
    opt = Adam(params, lr=2e-3, betas=(0.5, 0.999))
    assert opt.flat_in_use()
    for _ in range(steps):
        for p in params:
            p.grad[...] = rng.standard_normal(p.grad.shape).astype(dtype) * 1e-2
            p.grad.flat[::5] = 0                          # zero gradients: v stays where it was
        opt.step()
    return [p.data.copy() for p in params] + [m.copy() for m in opt.flat_moments]


# ----- BatchNorm and the activations -------------------------------------------------------

def _batch_innermost(shape, dtype, seed):
    """An (N, C, H, W) array stored (C, H, W, N), as tinygan's layers hand activations over."""
    N, C, H, W = shape
    a = np.random.default_rng(seed).standard_normal((C, H, W, N)).astype(dtype)
    a.reshape(-1)[::13] = -0.0
    return layout.chwn_to_nchw(a)


def _batchnorm_pass(dtype, training):
    from tinygan.nn import BatchNorm2d
    bn = BatchNorm2d(6)
    bn.weight.data[...] = np.linspace(0.5, 1.5, 6)
    bn.bias.data[...] = np.linspace(-0.2, 0.3, 6)
    bn = bn.double() if dtype == np.float64 else bn
    bn.train(training)
    x, dy = _batch_innermost((4, 6, 3, 5), dtype, 1), _batch_innermost((4, 6, 3, 5), dtype, 2)
    y = bn(x)
    dx = bn.backward(dy)
    return [y, bn.x_hat, dx, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var]


def _activation_passes(dtype):
    from tinygan.nn import LeakyReLU, ReLU
    x, dy = _batch_innermost((3, 4, 5, 2), dtype, 3), _batch_innermost((3, 4, 5, 2), dtype, 4)
    x.transpose(1, 2, 3, 0).reshape(-1)[::17] = np.nan                # NaN and −0.0 pass as NumPy passes them
    leaky, relu = LeakyReLU(0.2), ReLU()
    y = leaky(x)
    relu(x)
    return [y, leaky.backward(dy), relu.backward(dy)]


# ----- each subject: compiled, and as plain Python --------------------------------------------

SUBJECTS = {    # name: (run(dtype) -> arrays to compare, the loops it calls as (module, name))
    "adam": (_adam_steps, [("tinygan.optim_fast", "_adam_loop")]),
    "batchnorm, train": (lambda dtype: _batchnorm_pass(dtype, True),
                         [("tinygan.nn.batchnorm_fast", "_scale_shift_loop"), ("tinygan.nn.batchnorm_fast", "_batchnorm_dx_loop")]),
    "batchnorm, eval": (lambda dtype: _batchnorm_pass(dtype, False), [("tinygan.nn.batchnorm_fast", "_scale_shift_loop")]),
    "activations": (_activation_passes, [("tinygan.nn.activation_fast", name) for name in
                                         ("_gate_loop",)]),
}


@needs_numba
@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_each_compiled_loop_gives_the_bits_of_its_numpy_lines(monkeypatch, split, subject, dtype, threads):
    split(threads)
    run, loops = SUBJECTS[subject]
    calls = count_calls(monkeypatch, loops)
    assert all_same_bits(numpy_then_loops(monkeypatch, run, dtype))
    assert all(calls.values()), f"loops never called, so nothing was compared: {calls}"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_each_loop_as_plain_python_is_the_same_arithmetic(monkeypatch, subject):
    import importlib
    run, loops = SUBJECTS[subject]
    as_python = [(importlib.import_module(module), name) for module, name in loops]
    pair = numpy_then_loops(monkeypatch, run, np.float32, as_python=as_python)
    calls = count_calls(monkeypatch, loops)                  # now the plain functions: run them once more
    run(np.float32)
    assert all_same_bits(pair) and all(calls.values()), f"loops never called: {calls}"


def count_calls(monkeypatch, loops):
    """Wrap each (module, name) loop so that its calls are counted: {name: calls}."""
    import importlib
    calls = {}
    for module, name in loops:
        mod = importlib.import_module(module)
        inner, calls[name] = getattr(mod, name), 0

        def counted(*args, _inner=inner, _name=name):
            calls[_name] += 1
            return _inner(*args)
        monkeypatch.setattr(mod, name, counted)
    return calls


@needs_numba
def test_leaky_relu_with_mixed_layouts_takes_numpys_lines_with_the_same_numbers(monkeypatch):
    """An upstream gradient in another layout than the output: no 1-D views, so the compiled
    path's NumPy fallback runs; the numbers are still those of the NumPy layer."""
    from tinygan.nn import LeakyReLU
    x = _batch_innermost((3, 4, 5, 2), np.float32, 5)
    dy = np.ascontiguousarray(_batch_innermost((3, 4, 5, 2), np.float32, 6))     # (N, C, H, W) memory
    out = {}
    for on in (False, True):
        monkeypatch.setitem(jit._state, "enabled", on)
        layer = LeakyReLU(0.2)
        out[on] = [layer(x), layer.backward(dy)]
    assert layer.local is None                                   # the compiled forward ran
    assert all(same_bits(a, b) for a, b in zip(out[False], out[True]))


@needs_numba
def test_a_loop_still_compiles_where_numba_cannot_cache(monkeypatch):
    """No writable folder for Numba's cache (a read-only install): compiled anyway, uncached."""
    import numba
    real_njit, asked = numba.njit, []

    def njit(**options):
        asked.append(options.get("cache", False))
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(**options)
    monkeypatch.setattr(numba, "njit", njit)

    def twice(a, out):
        for i in range(a.size):
            out[i] = 2 * a[i]
    loop, out = jit.loop(twice), np.zeros(3)
    loop(np.arange(3.0), out)
    assert asked == [True, False] and out.tolist() == [0.0, 2.0, 4.0]


# ----- where the loops must step aside ---------------------------------------------------------

def _float16_d_step():
    D = build("paper", latent_dim=8, features=4, image_size=16, seed=0)[1].to(dtype=np.float16)
    x = _batch_innermost((4, 3, 16, 16), np.float16, 10)
    logits = D(x)
    dx = D.backward(np.ones_like(logits))
    return [logits, dx] + [p.grad.copy() for p in D.parameters()]


@needs_numba
def test_float16_models_take_the_numpy_lines_with_the_loops_on(monkeypatch):
    """Numba has no float16: every layer must leave such arrays to NumPy (same numbers). (Adam in
    float16 is no use either way: eps = 1e-8 rounds to 0.)"""
    assert all_same_bits(numpy_then_loops(monkeypatch, _float16_d_step))


@needs_numba
def test_adam_with_a_numpy_scalar_lr_takes_the_numpy_lines(monkeypatch):
    """np.float64(lr) is not rounded to float32 by NumPy (NEP 50), so the loop's float32 scalars
    would give other bits: Adam uses its NumPy lines then."""
    from tinygan.nn import Parameter

    def steps(dtype):
        rng = np.random.default_rng(12)
        params = [Parameter((rng.standard_normal((64, 49)) * 0.02).astype(np.float32))]
        opt = Adam(params, lr=np.float64(2e-4), betas=(0.5, 0.999))
        for _ in range(20):
            params[0].grad[...] = rng.standard_normal((64, 49)).astype(np.float32) * 1e-2
            opt.step()
        return [params[0].data.copy()]
    assert all_same_bits(numpy_then_loops(monkeypatch, steps, None))


@needs_numba
def test_batchnorm_with_a_gradient_of_another_dtype_takes_the_numpy_lines(monkeypatch):
    from tinygan.nn import BatchNorm2d

    def run(_):
        bn = BatchNorm2d(6).double()
        bn(_batch_innermost((4, 6, 3, 5), np.float64, 1))
        return [bn.backward(_batch_innermost((4, 6, 3, 5), np.float32, 2))]
    assert all_same_bits(numpy_then_loops(monkeypatch, run, None))


def test_a_numba_that_does_not_import_means_numpy_and_a_warning(monkeypatch):
    import sys
    monkeypatch.setattr(jit, "numba_installed", lambda: True)
    monkeypatch.setitem(sys.modules, "numba", None)          # `import numba` now raises ImportError
    monkeypatch.setitem(jit._state, "enabled", None)
    monkeypatch.delenv("TINYGAN_JIT", raising=False)
    with pytest.warns(RuntimeWarning, match="does not import"):
        assert jit.enabled() is False
    assert "does not import" in jit.why_off()
    with pytest.raises(RuntimeError, match="does not import"):
        jit.set_enabled(True)


def test_why_off_names_the_reason(monkeypatch):
    monkeypatch.setitem(jit._state, "enabled", None)
    monkeypatch.setenv("TINYGAN_JIT", "0")
    assert jit.why_off() == "TINYGAN_JIT=0"
    monkeypatch.delenv("TINYGAN_JIT")
    monkeypatch.setitem(jit._state, "enabled", False)
    assert jit.why_off() == ("switched off by jit.set_enabled(False)" if HAVE_NUMBA else "Numba is not installed")
    if HAVE_NUMBA:
        monkeypatch.setitem(jit._state, "enabled", True)
        assert jit.why_off() is None
