"""The GPU path: CuPy against NumPy from the same weights and inputs, the CUDA kernels against
their NumPy twins, checkpoints across backends, and examples/pokemon.py --backend cupy.

Every test here is marked ``gpu`` and skips where CuPy or a GPU is missing, so CI (no GPU)
stays green. On a machine with an NVIDIA GPU and CuPy:

    pytest -m gpu -q                      # or: bash scripts/gpu_session.sh (docs/gpu.md)

Tolerances. float64: the device result y_dev and NumPy's y agree to 1e-10 relative to
the array's scale, max|y_dev − y| ≤ 1e-10 · max|y| (the two differ only in the order of
their sums: cuBLAS's against OpenBLAS's). float32: no fixed number; the float64 NumPy
result y64 is the reference, and the device's float32 error may be at most 4× NumPy's own
float32 error (plus 32 float32 ulps of the scale, for arrays where NumPy happens to be
exact): max|y_dev32 − y64| ≤ 4·max|y_np32 − y64| + 32·eps32·max|y64|.

Without a GPU, two dry runs of this file's own logic catch mistakes in these tests before a
GPU session spends its time on them (they prove nothing about a GPU; the tests that need
CuPy's CUDA kernels or graphs skip):

    TINYGAN_GPU_TEST_BACKEND=strict pytest -m gpu tests/test_gpu.py   # make test runs this one
    TINYGAN_GPU_TEST_BACKEND=numpy pytest -m gpu tests/test_gpu.py

``strict`` runs the device side on tests/strict_cupy.py, the stand-in for CuPy that refuses
what CuPy refuses (a NumPy operand, an implicit conversion, a function or keyword CuPy
lacks); ``numpy`` makes the "device" NumPy itself. Run them on this file alone.
"""
import copy
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygan
from tinygan import backend, checkpoint, nn
from tinygan import train as train_mod
from tinygan.backend import to_numpy
from tinygan.dcgan import build, train_step
from tinygan.cuda import kernels as ck
from tinygan.nn.im2col import conv_out_size, deconv_out_size
from tinygan.optim import Adam

from conftest import TIMING_STEPS, on_train_step

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pokemon.py"

DEVICE = os.environ.get("TINYGAN_GPU_TEST_BACKEND", "cupy")
DRY_RUN = DEVICE == "numpy"
STRICT = DEVICE == "strict"                    # the device is tests/strict_cupy.py, installed as cupy
if STRICT:
    DEVICE = "cupy"
REASON = "CuPy/GPU not available: run `pytest -m gpu` on a machine with an NVIDIA GPU"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not (DRY_RUN or STRICT) and not backend.cupy_available(),
                                                  reason=REASON)]
needs_cupy = pytest.mark.skipif(DRY_RUN or STRICT, reason="dry run without a GPU: this test needs CuPy's CUDA "
                                                          "kernels or graphs")


@pytest.fixture(scope="module", autouse=True)
def _strict_device():
    """With TINYGAN_GPU_TEST_BACKEND=strict, ``import cupy`` gives the strict stand-in in this module."""
    if not STRICT:
        yield
        return
    import strict_cupy
    with strict_cupy.installed():
        yield

EPS32 = float(np.finfo(np.float32).eps)


# ----- comparing ----------------------------------------------------------------------

def assert_close64(dev, host, what):
    dev, host = to_numpy(dev), np.asarray(to_numpy(host))
    assert dev.shape == host.shape, f"{what}: shape {dev.shape} on the device vs {host.shape}"
    assert dev.dtype == host.dtype == np.float64, f"{what}: dtypes {dev.dtype} vs {host.dtype}"
    scale = max(float(np.abs(host).max(initial=0.0)), 1e-300)
    err = np.abs(dev - host)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert err.max(initial=0.0) <= 1e-10 * scale, (
        f"{what}: max |device − numpy| = {err.max():.3e} > 1e-10 × {scale:.3e} at {worst} "
        f"(device {dev[worst]!r}, numpy {host[worst]!r})")


def assert_f32_within_reference(dev32, np32, ref64, what):
    dev32, np32, ref64 = to_numpy(dev32), np.asarray(to_numpy(np32)), np.asarray(to_numpy(ref64))
    assert dev32.dtype == np32.dtype == np.float32, f"{what}: dtypes {dev32.dtype}, {np32.dtype}"
    scale = float(np.abs(ref64).max(initial=0.0))
    err_np = float(np.abs(np32.astype(np.float64) - ref64).max(initial=0.0))
    err = np.abs(dev32.astype(np.float64) - ref64)
    bound = 4 * err_np + 32 * EPS32 * scale
    assert err.max(initial=0.0) <= bound, (
        f"{what}: device float32 error {err.max():.3e} exceeds 4 × NumPy's float32 error ({err_np:.3e}) "
        f"+ 32 ulps of {scale:.3e}; worst at {np.unravel_index(np.argmax(err), err.shape)}")


def on(backend_name, module, dtype):
    """A copy of ``module`` (built on NumPy float64) moved to ``backend_name`` in ``dtype``."""
    return copy.deepcopy(module).to(backend_name, dtype)


def host_randn(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ----- every layer, forward and backward ------------------------------------------------

def _bn_eval():
    bn = nn.BatchNorm2d(5)
    bn.running_mean[...] = host_randn(5, 7) * 0.3
    bn.running_var[...] = np.abs(host_randn(5, 8)) + 0.5
    bn.weight.data[...] = host_randn(5, 9) * 0.5 + 1
    return bn.eval()


def _bn_train():
    bn = nn.BatchNorm2d(5)
    bn.weight.data[...] = host_randn(5, 9) * 0.5 + 1
    bn.bias.data[...] = host_randn(5, 10) * 0.2
    return bn


def _first_layer_conv():
    conv = nn.Conv2d(3, 4, 4, 2, 1, bias=False)
    conv.needs_input_grad = False
    return conv


# name: (make the layer on NumPy float64, input shape)
LAYERS = {
    "conv_k4s2p1 (D's blocks)": (lambda: nn.Conv2d(3, 6, 4, 2, 1, bias=False), (4, 3, 16, 16)),
    "conv_k4s1p0 (D's logit)": (lambda: nn.Conv2d(6, 1, 4, 1, 0, bias=False), (4, 6, 4, 4)),
    "conv_k3s1p1_bias": (lambda: nn.Conv2d(4, 5, 3, 1, 1, bias=True), (3, 4, 8, 8)),
    "conv_k3s2p0_odd": (lambda: nn.Conv2d(2, 3, 3, 2, 0, bias=True), (2, 2, 9, 7)),
    "conv_k2s3p4_p_ge_k": (lambda: nn.Conv2d(2, 3, 2, 3, 4, bias=True), (2, 2, 5, 6)),
    "conv_first_layer_no_dx": (_first_layer_conv, (4, 3, 16, 16)),
    "convT_k4s1p0 (G's first)": (lambda: nn.ConvTranspose2d(8, 6, 4, 1, 0, bias=False), (4, 8, 1, 1)),
    "convT_k4s2p1 (G's blocks)": (lambda: nn.ConvTranspose2d(6, 3, 4, 2, 1, bias=False), (4, 6, 8, 8)),
    "convT_k3s2p1_outpad1": (lambda: nn.ConvTranspose2d(3, 4, 3, 2, 1, bias=True, output_padding=1), (2, 3, 5, 4)),
    "convT_k5s3p2": (lambda: nn.ConvTranspose2d(2, 3, 5, 3, 2, bias=True), (2, 2, 4, 3)),
    "batchnorm_train": (_bn_train, (4, 5, 6, 6)),
    "batchnorm_eval": (_bn_eval, (4, 5, 6, 6)),
    "relu": (nn.ReLU, (4, 5, 6, 6)),
    "leaky_relu_0.2": (lambda: nn.LeakyReLU(0.2), (4, 5, 6, 6)),
    "tanh": (nn.Tanh, (4, 5, 6, 6)),
    "sigmoid": (nn.Sigmoid, (4, 5, 6, 6)),
}
if hasattr(nn, "Upsample"):
    LAYERS["upsample_2"] = (lambda: nn.Upsample(2), (2, 3, 4, 5))


def forward_backward(layer, x64, dout64, xp, dtype):
    """Output, input gradient (None if skipped), every parameter gradient and buffer, as host arrays."""
    x = xp.asarray(x64.astype(dtype))
    y = layer(x)
    dx = layer.backward(xp.asarray(dout64.astype(dtype)))
    out = {"y": y, "dx": dx}
    out.update({f"grad {name}": p.grad for name, p in layer.named_parameters()})
    out.update({f"buffer {name}": b for name, b in layer.named_buffers() if b.dtype.kind == "f"})
    return {k: None if v is None else to_numpy(v) for k, v in out.items()}


def _layer_case(name):
    make, shape = LAYERS[name]
    np.random.seed(0)
    tinygan.use("numpy", np.float64)
    layer = make()
    y_shape = copy.deepcopy(layer)(np.zeros(shape)).shape        # to draw an upstream gradient of its shape
    return layer, host_randn(shape, 1) * 1.5, host_randn(y_shape, 2)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_float64_device_equals_numpy(name):
    layer, x, dout = _layer_case(name)
    want = forward_backward(on("numpy", layer, np.float64), x, dout, np, np.float64)
    got = forward_backward(on(DEVICE, layer, np.float64), x, dout, backend.array_module(DEVICE), np.float64)
    assert got.keys() == want.keys()
    for k in want:
        if want[k] is None:
            assert got[k] is None, f"{name} {k}: None on NumPy, an array on the device"
        else:
            assert_close64(got[k], want[k], f"{name} {k}")


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_float32_device_within_the_float64_reference(name):
    layer, x, dout = _layer_case(name)
    ref = forward_backward(on("numpy", layer, np.float64), x, dout, np, np.float64)
    np32 = forward_backward(on("numpy", layer, np.float32), x, dout, np, np.float32)
    dev32 = forward_backward(on(DEVICE, layer, np.float32), x, dout, backend.array_module(DEVICE), np.float32)
    for k in ref:
        if ref[k] is not None:
            assert_f32_within_reference(dev32[k], np32[k], ref[k], f"{name} {k}")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_device_equals_numpy(reduction, dtype):
    logits = host_randn(64, 3) * 4
    logits[:2] = [1e4, -1e4]                                     # saturated: still finite
    target = (host_randn(64, 4) > 0).astype(np.float64)
    results = {}
    for name, dt in (("numpy", np.float64), ("numpy", dtype), (DEVICE, dtype)):
        xp = backend.array_module(name)
        loss_fn = nn.BCEWithLogitsLoss(reduction)
        loss = loss_fn(xp.asarray(logits.astype(dt)), xp.asarray(target.astype(dt)))
        results[(name, np.dtype(dt).name)] = (to_numpy(loss).reshape(1), to_numpy(loss_fn.backward(0.5)))
    ref, np_dt, dev = results[("numpy", "float64")], results[("numpy", np.dtype(dtype).name)], results[(DEVICE, np.dtype(dtype).name)]
    for i, what in enumerate(("loss", "dlogits")):
        if dtype == np.float64:
            assert_close64(dev[i], ref[i], f"BCE {reduction} {what}")
        else:
            assert_f32_within_reference(dev[i], np_dt[i], ref[i], f"BCE {reduction} {what}")


# ----- a whole training step -------------------------------------------------------------

# (recipe, build options): the recipes and every option that changes a training step. The
# sprites recipe's DiffAugment draws on the host from its own rng, the same on both sides.
BUILD_CASES = {
    "paper": ("paper", {}),
    "d2l": ("d2l", {}),
    "paper/nearest": ("paper", {"upsample": "nearest"}),
    "sprites (DiffAugment)": ("sprites", {}),
    "paper/spectral norm": ("paper", {"d_spectral_norm": True}),
    "paper/minibatch std": ("paper", {"d_minibatch_std": True}),
}


def _gan(recipe, options=None, image_size=32, features=8, latent=16):
    tinygan.use("numpy", np.float64)
    G, D = build(recipe, latent, features, image_size, seed=3, **(options or {}))
    return G, D


def run_steps(G, D, recipe, backend_name, dtype, n_steps=2, batch=8, image_size=32, latent=16):
    """``n_steps`` train_steps from copies of G, D on ``backend_name``, the moving average of G
    (β 0.9) moved on after each; every number that matters, on the host."""
    from tinygan.dcgan import RECIPES, augmentation
    from tinygan.ema import EMA
    tinygan.use(backend_name, dtype)
    xp = backend.array_module(backend_name)
    G, D = on(backend_name, G, dtype), on(backend_name, D, dtype)
    r = RECIPES[recipe]
    opt_G = Adam(G.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
    opt_D = Adam(D.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
    loss_fn = nn.BCEWithLogitsLoss(r["reduction"])
    augment, ema = augmentation(recipe, np.random.default_rng(7)), EMA(G, 0.9)
    out = {}
    for t in range(n_steps):
        real = np.tanh(host_randn((batch, 3, image_size, image_size), 10 + t))
        z = host_randn((batch, latent, 1, 1), 20 + t)
        stats = {}
        loss_D, loss_G = train_step(G, D, opt_G, opt_D, xp.asarray(real.astype(dtype)), xp.asarray(z.astype(dtype)),
                                    loss_fn, stats, augment=augment)
        ema.update()
        for k, v in (("loss_D", loss_D), ("loss_G", loss_G), ("D(x)", stats["d_real"]), ("D(G(z))", stats["d_fake"])):
            out[f"step {t + 1} {k}"] = np.asarray(to_numpy(v), dtype=dtype).reshape(1)
    for who, model in (("G", G), ("D", D), ("G's moving average", ema.model)):
        out.update({f"{who} {k}": to_numpy(v) for k, v in model.state_dict().items() if v.dtype.kind == "f"})
    for who, opt in (("opt_G", opt_G), ("opt_D", opt_D)):
        assert opt.step_count == n_steps
        for slot in opt._slots:
            out.update({f"{who} {slot}.{i}": to_numpy(a) for i, a in enumerate(getattr(opt, slot))})
    return out


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_train_step_float64_device_equals_numpy(case):
    """Two steps (D, G, both Adams, the moving average) from the same weights, batches, z and
    augmentations: losses, D(x), D(G(z)), every parameter, BatchNorm's running statistics,
    spectral norm's vectors and both Adam states agree."""
    recipe, options = BUILD_CASES[case]
    G, D = _gan(recipe, options)
    want = run_steps(G, D, recipe, "numpy", np.float64)
    got = run_steps(G, D, recipe, DEVICE, np.float64)
    assert got.keys() == want.keys()
    for k in want:
        assert_close64(got[k], want[k], f"{case}: {k}")


@pytest.mark.parametrize("case", ["paper", "sprites (DiffAugment)"])
def test_train_step_float32_device_within_the_float64_reference(case):
    recipe, options = BUILD_CASES[case]
    G, D = _gan(recipe, options)
    ref = run_steps(G, D, recipe, "numpy", np.float64, n_steps=1)
    np32 = run_steps(G, D, recipe, "numpy", np.float32, n_steps=1)
    dev32 = run_steps(G, D, recipe, DEVICE, np.float32, n_steps=1)
    for k in ref:
        assert_f32_within_reference(dev32[k], np32[k], ref[k], f"{case}: {k}")


def test_instance_noise_is_drawn_on_the_device():
    """ε on the device, standard normal, fresh every call, decided by the layer's rng; a step with
    it (after the sprites recipe's DiffAugment) gives finite losses."""
    from tinygan.dcgan import augmentation
    tinygan.use(DEVICE, np.float32)
    xp = backend.array_module(DEVICE)
    x = xp.zeros((64, 3, 32, 32), dtype=np.float32)
    a, b = nn.InstanceNoise(1.0, rng=np.random.default_rng(5)), nn.InstanceNoise(1.0, rng=np.random.default_rng(5))
    first, again = to_numpy(a(x)), to_numpy(a(x))
    assert type(a.eps).__module__.split(".")[0] == DEVICE.split(".")[0]
    assert abs(first.mean()) < 0.01 and abs(first.std() - 1) < 0.01 and not np.array_equal(first, again)
    assert np.array_equal(to_numpy(b(x)), first)
    G, D = _gan("sprites")
    G, D = on(DEVICE, G, np.float32), on(DEVICE, D, np.float32)
    opt_G, opt_D = Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999))
    real = xp.asarray(np.tanh(host_randn((8, 3, 32, 32), 1)).astype(np.float32))
    z = xp.asarray(host_randn((8, 16, 1, 1), 2).astype(np.float32))
    losses = train_step(G, D, opt_G, opt_D, real, z, nn.BCEWithLogitsLoss(), {},
                        augment=augmentation("sprites", np.random.default_rng(0), 0.1))
    assert all(np.isfinite(float(v)) for v in losses)


@needs_cupy
def test_a_train_step_never_waits_for_the_host():
    """Capture one whole train_step into a CUDA graph: capture fails on any host synchronisation
    inside it (a float(), .get(), .item(), a device-to-host copy), so success proves there is none."""
    import cupy
    G, D = _gan("paper")
    tinygan.use("cupy", np.float32)
    G, D = on("cupy", G, np.float32), on("cupy", D, np.float32)
    opt_G, opt_D = Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999))
    real = cupy.asarray(np.tanh(host_randn((8, 3, 32, 32), 1)).astype(np.float32))
    z = cupy.asarray(host_randn((8, 16, 1, 1), 2).astype(np.float32))
    loss_fn = nn.BCEWithLogitsLoss()
    # The weights, Adam's state, real and z were written on the default stream, and a
    # non_blocking stream does not wait for it: without this the warm-up (and the capture)
    # could read them before their copies and kernels have finished.
    cupy.cuda.Device().synchronize()
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        for _ in range(2):                     # warm-up on this stream: its memory pool, compiled kernels
            train_step(G, D, opt_G, opt_D, real, z, loss_fn)
        stream.synchronize()
        stream.begin_capture()
        try:
            loss_D, loss_G = train_step(G, D, opt_G, opt_D, real, z, loss_fn)
        except Exception as e:
            stream.end_capture()
            pytest.fail(f"a train_step could not be captured into a CUDA graph: {type(e).__name__}: {e}. "
                        "'operation not permitted when stream is capturing' is a host synchronisation inside "
                        "the step (find the float()/.get()/.item()); other errors may be limits of CuPy's or "
                        "cuBLAS's graph capture rather than a sync (docs/gpu.md)")
        graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
    assert np.isfinite(float(loss_D)) and np.isfinite(float(loss_G))


# ----- the kernels against their NumPy twins, on the device ------------------------------

# (N, C, H, W) of the image col2im writes, k, s, p: the DCGAN's layers at batch 64 and awkward ones
COL2IM_CASES = [((64, 3, 64, 64), 4, 2, 1), ((64, 64, 32, 32), 4, 2, 1), ((64, 512, 4, 4), 4, 1, 0),
                ((3, 2, 9, 7), 3, 2, 0), ((2, 3, 5, 6), 2, 3, 4), ((2, 2, 8, 8), 5, 1, 6), ((1, 1, 1, 1), 1, 1, 0)]


@needs_cupy
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,k,s,p", COL2IM_CASES)
def test_col2im_gather_kernel_equals_its_twin(shape, k, s, p, dtype):
    import cupy
    N, C, H, W = shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols_t = host_randn((C * k * k, OH * OW * N), 5).astype(dtype)
    d_cols = cupy.asarray(cols_t)
    for layout, out_shape in (("chwn", (C, H, W, N)), ("nchw", shape)):
        got = ck.col2im_gather(d_cols, out_shape, k, s, p, layout=layout)
        np.testing.assert_array_equal(cupy.asnumpy(got),
                                      ck.col2im_gather_t_reference(cols_t, out_shape, k, s, p, layout=layout))
        again = ck.col2im_gather(d_cols, out_shape, k, s, p, layout=layout)
        assert bool((again == got).all()), f"the gather ({layout}) is not deterministic"
    # the canvas form (the drop-in for layout.col2im_chwn): padded, every element written
    canvas = cupy.full((C, H + 2 * p, W + 2 * p, N), np.nan, dtype=dtype)
    ck.col2im_canvas_gather(d_cols, canvas, k, s)
    np.testing.assert_array_equal(cupy.asnumpy(canvas), ck.col2im_canvas_gather_reference(cols_t, canvas.shape, k, s))


@needs_cupy
@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (4, 1, 0, 0), (3, 2, 1, 1), (5, 3, 2, 2)])
def test_col2im_gather_kernel_is_the_transposed_convolution(k, s, p, op):
    """The fused kernel on ConvTranspose2d's canvas equals the layer's array-code forward."""
    import cupy
    tinygan.use("cupy", np.float64)
    layer = nn.ConvTranspose2d(3, 4, k, s, p, bias=False, output_padding=op)
    x = cupy.asarray(host_randn((5, 3, 4, 6), 6))
    want = layer(x)
    N, C, H, W = x.shape
    OH, OW = deconv_out_size(H, k, s, p, op), deconv_out_size(W, k, s, p, op)
    cols_t = layer.weight.data.reshape(C, -1).T @ cupy.ascontiguousarray(x.transpose(1, 2, 3, 0)).reshape(C, -1)
    got = ck.col2im_gather(cupy.ascontiguousarray(cols_t), (4, OH, OW, N), k, s, p, layout="chwn")
    assert_close64(got.transpose(3, 0, 1, 2), want, "ConvTranspose2d forward by the gather kernel")


@needs_cupy
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_kernel_equals_its_twin_and_optim_adam(dtype):
    import cupy
    rtol = 1e-12 if dtype == np.float64 else 2e-7
    lr, b1, b2, eps = 2e-4, 0.5, 0.999, 1e-8
    p = host_randn((64, 3, 4, 4), 1).astype(dtype) * 0.02
    m, v = np.zeros_like(p), np.zeros_like(p)
    dp, dm, dv = (cupy.asarray(a) for a in (p, m, v))
    for t in range(1, 6):
        g = host_randn(p.shape, 10 + t).astype(dtype) * 10.0 ** -(t % 3)
        ck.adam_update(dp, cupy.asarray(g), dm, dv, t, lr, b1, b2, eps)
        ck.adam_update_reference(p, g, m, v, t, lr, b1, b2, eps)
        for got, want, what in ((dp, p, "p"), (dm, m, "m"), (dv, v, "v")):
            np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=rtol, atol=0, err_msg=f"step {t}: {what}")


@needs_cupy
@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_act_kernel_equals_its_twin(dtype, slope):
    import cupy
    rtol = 1e-12 if dtype == np.float64 else 2e-7
    x = host_randn((8, 5, 6, 7), 1).astype(dtype)
    per_channel = [host_randn(5, s).astype(dtype) for s in (2, 3, 4, 5)]
    per_channel[1] = np.abs(per_channel[1]) + dtype(0.5)
    want = ck.batchnorm_act_reference(x, *per_channel, slope)
    d_x = cupy.asarray(x)
    for stored, d in (("NCHW", d_x), ("batch-innermost", cupy.ascontiguousarray(d_x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2))):
        got = ck.batchnorm_act(d, *(cupy.asarray(a) for a in per_channel), slope)
        for g, w, what in zip(got, want, ("x_hat", "y", "local")):
            assert g.strides == d.strides, f"{stored} {what}: not stored as x is"
            np.testing.assert_allclose(cupy.asnumpy(g), w, rtol=rtol, atol=rtol, err_msg=f"{stored} {what}")


# ----- checkpoints across backends ----------------------------------------------------------

def test_checkpoint_from_the_device_continues_on_numpy_and_back(tmp_path):
    """Train one step on the device, save; load on NumPy; one more step on each from the same batch: equal."""
    G0, D0 = _gan("paper")
    from tinygan.dcgan import RECIPES
    r = RECIPES["paper"]

    def make(backend_name):
        tinygan.use(backend_name, np.float64)
        G, D = on(backend_name, G0, np.float64), on(backend_name, D0, np.float64)
        return (G, D, Adam(G.parameters(), r["lr"], (r["beta1"], 0.999)),
                Adam(D.parameters(), r["lr"], (r["beta1"], 0.999)), backend.array_module(backend_name))

    def step(models, seed):
        G, D, oG, oD, xp = models
        real = xp.asarray(np.tanh(host_randn((8, 3, 32, 32), seed)))
        z = xp.asarray(host_randn((8, 16, 1, 1), seed + 1))
        return train_step(G, D, oG, oD, real, z, nn.BCEWithLogitsLoss())

    dev = make(DEVICE)
    step(dev, 1)
    checkpoint.save(tmp_path / "device.npz", *dev[:4], meta={"step": 1})
    with np.load(tmp_path / "device.npz") as ck_file:
        assert all(ck_file[k].dtype.kind in "fiU" for k in ck_file.files)      # host arrays only
    cpu = make("numpy")
    checkpoint.restore(checkpoint.load(tmp_path / "device.npz"), *cpu[:4])
    losses_dev, losses_cpu = step(dev, 2), step(cpu, 2)
    for a, b, what in zip(losses_dev, losses_cpu, ("loss_D", "loss_G")):
        assert_close64(np.reshape(to_numpy(a), 1), np.reshape(to_numpy(b), 1), f"second step {what}")
    for who, i in (("G", 0), ("D", 1)):
        for (k, a), b in zip(dev[i].state_dict().items(), cpu[i].state_dict().values()):
            if a.dtype.kind == "f":
                assert_close64(a, b, f"{who} {k} after a step on each backend")
    # and back: NumPy's checkpoint into fresh device models, exactly
    checkpoint.save(tmp_path / "cpu.npz", *cpu[:4])
    back = make(DEVICE)
    checkpoint.restore(checkpoint.load(tmp_path / "cpu.npz"), *back[:4])
    for (k, a), b in zip(back[0].state_dict().items(), cpu[0].state_dict().values()):
        assert type(a).__module__.split(".")[0] == DEVICE.split(".")[0], f"G {k} did not land on {DEVICE}"
        np.testing.assert_array_equal(to_numpy(a), b)
    for slot_dev, slot_cpu in zip(back[3].exp_avg_sq, cpu[3].exp_avg_sq):
        np.testing.assert_array_equal(to_numpy(slot_dev), slot_cpu)


# ----- the training run and the example ----------------------------------------------------

def test_run_on_the_device_matches_numpy_and_reports_divergence_at_its_step(sprites, tmp_path, monkeypatch, capsys):
    """train.run on the device: the dataset is uploaded once, the per-epoch records follow NumPy's
    (float32, 2 epochs: within a loose bound), and a NaN at step 5 is reported as step 5 even though
    the device run checks its losses only once per window."""
    base = dict(data=str(sprites), epochs=2, image_size=16, features=4, latent_dim=8, batch_size=4, progress=False)
    cpu = train_mod.run(train_mod.Config(backend="numpy", out=str(tmp_path / "cpu"), **base))
    dev = train_mod.run(train_mod.Config(backend=DEVICE, out=str(tmp_path / "dev"), **base))
    said = capsys.readouterr().out
    if not DRY_RUN:
        assert "uploaded to the GPU once" in said, said
    assert dev["steps"] == cpu["steps"] == 6
    logs = [[json.loads(line) for line in (tmp_path / w / "log.jsonl").read_text().splitlines()] for w in ("cpu", "dev")]
    for rc, rd in zip(*logs):
        for k in ("loss_D", "loss_G", "D(x)", "D(G(z))"):
            assert abs(rc[k] - rd[k]) <= 1e-3 * max(1.0, abs(rc[k])), f"epoch {rc['epoch']} {k}: {rc[k]} vs {rd[k]}"

    on_train_step(monkeypatch, TIMING_STEPS + 3 + 2, lambda losses: (losses[0] * np.nan, losses[1]))
    monkeypatch.setitem(train_mod.SYNC_SECONDS, DEVICE, 1e9)          # one window per epoch
    with pytest.raises(train_mod.TrainingDiverged, match=r"diverged at step 5 \(epoch 2\)"):
        train_mod.run(train_mod.Config(backend=DEVICE, out=str(tmp_path / "nan"), **{**base, "epochs": 3}))
    assert (tmp_path / "nan" / "diverged_step_5.png").exists()


def test_the_sprites_recipe_with_every_option_runs_and_samples_on_the_device(sprites, tmp_path, capsys):
    """train.run with the sprites recipe (DiffAugment, the moving average of G), instance noise,
    minibatch std, nearest upsampling and SWD after every epoch; then ``sample`` on the device
    from its checkpoint, by the moving average and by G's last weights."""
    cfg = train_mod.Config(backend=DEVICE, data=str(sprites), out=str(tmp_path / "run"), epochs=2, image_size=16,
                           features=4, latent_dim=8, batch_size=4, progress=False, recipe="sprites",
                           instance_noise=0.1, d_minibatch_std=True, upsample="nearest", swd_every=1)
    assert train_mod.run(cfg)["steps"] == 6
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(np.isfinite(r["swd"]) for r in records)
    sys.path.insert(0, str(ROOT / "examples"))
    import pokemon
    for weights in ("ema", "last"):
        out = tmp_path / f"{weights}.png"
        assert pokemon.main(["sample", "--checkpoint", str(tmp_path / "run" / "checkpoint.npz"), "--backend",
                             DEVICE, "--weights", weights, "--n", "4", "--out", str(out)]) == 0
        assert Image.open(out).size[0] > 16
    said = capsys.readouterr().out
    assert "the moving average of G's weights" in said and "(16x16, G's weights" in said


def run_example(args, tmp_path):
    env = {**os.environ, "TINYGAN_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    if STRICT:                                     # the child's ``import cupy`` gives the stand-in too
        import strict_cupy
        env["PYTHONPATH"] = os.pathsep.join([strict_cupy.shim(tmp_path / "shim"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_pokemon_example_end_to_end_on_the_device(sprites, tmp_path):
    """examples/pokemon.py --backend cupy, 2 tiny epochs: every output, finite logs; then the GPU's
    checkpoint samples and resumes on NumPy."""
    out = tmp_path / "run"
    tiny = ["--image-size", "16", "--features", "4", "--latent-dim", "8", "--batch-size", "4", "--no-progress"]
    proc = run_example(["--backend", DEVICE, "--data", str(sprites), "--epochs", "2", "--out", str(out), *tiny], tmp_path)
    if not DRY_RUN:
        assert "dataset:" in proc.stdout and "uploaded to the GPU once" in proc.stdout, proc.stdout
    names = {p.name for p in out.iterdir()}
    for name in ["real.png", "samples_epoch_001.png", "samples_epoch_002.png", "losses.png",
                 "log.jsonl", "config.json", "checkpoint.npz"]:
        assert name in names, f"{name} missing from {sorted(names)}"
    assert json.loads((out / "config.json").read_text())["backend"] == DEVICE
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(np.isfinite(r[k]) for r in records for k in ("loss_D", "loss_G", "D(x)", "D(G(z))", "examples_per_sec"))
    assert Image.open(out / "samples_epoch_002.png").size[0] > 16
    run_example(["sample", "--checkpoint", str(out / "checkpoint.npz"), "--backend", "numpy", "--n", "4",
                 "--out", str(tmp_path / "grid.png")], tmp_path)
    assert (tmp_path / "grid.png").exists()
    resumed = run_example(["--resume", str(out / "checkpoint.npz"), "--backend", "numpy", "--epochs", "3"], tmp_path)
    assert "resumed" in resumed.stdout
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
