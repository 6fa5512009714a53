"""The float32 training path keeps float32 everywhere: no float64 sneaks into an output,
a gradient, a cache or a running statistic (it would silently double time and memory)."""
import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.optim import Adam


@pytest.fixture
def xp32(xp):
    tinygan.use(tinygan.backend.backend_name(), np.float32)
    return xp


def _float_arrays(module):
    """Every floating array a module holds: parameters, grads, buffers and forward caches."""
    for mod_name, mod in module.named_modules():
        for name, value in vars(mod).items():
            if isinstance(value, nn.Parameter):
                yield f"{mod_name}.{name}.data", value.data
                yield f"{mod_name}.{name}.grad", value.grad
            elif hasattr(value, "dtype") and hasattr(value, "shape") and value.dtype.kind == "f":
                yield f"{mod_name}.{name}", value


def test_conv_bn_leakyrelu_convT_stack_stays_float32(xp32, randn):
    model = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                          nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh())
    opt = Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x = randn(xp32, 2, 3, 8, 8, dtype=np.float32, seed=1)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        y = model(x)
        assert y.dtype == np.float32 and y.shape == (2, 3, 8, 8), mode
        dx = model.backward(randn(xp32, *y.shape, dtype=np.float32, seed=2))
        assert dx.dtype == np.float32, mode
        opt.step()
        for name, a in _float_arrays(model):
            assert a.dtype == np.float32, f"{mode}: {name} is {a.dtype}"
        for a in opt.exp_avg + opt.exp_avg_sq:
            assert a.dtype == np.float32
    assert len(dict(_float_arrays(model))) >= 12      # the walk really looked at caches and buffers


def test_discriminator_with_bce_stays_float32(xp32, randn):
    D = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
                      nn.Conv2d(4, 1, 4, 1, 0, bias=False))
    loss_fn = nn.BCEWithLogitsLoss()
    x = randn(xp32, 3, 3, 8, 8, dtype=np.float32, seed=3)
    logits = D(x).reshape(-1)
    loss = loss_fn(logits, xp32.ones(3, dtype=np.float32))
    assert loss.dtype == np.float32
    dlogits = loss_fn.backward()
    assert dlogits.dtype == np.float32
    dx = D.backward(dlogits.reshape(3, 1, 1, 1))
    assert dx.dtype == np.float32
    for name, a in _float_arrays(D):
        assert a.dtype == np.float32, name


def test_bce_gradient_has_the_logits_dtype_even_with_a_float64_target(xp32, randn):
    """A target made with a plain ``ones(N)`` is float64; the gradient flowing back into a
    float32 network must still be float32 (as PyTorch returns a gradient in the input's dtype)."""
    logits = randn(xp32, 5, dtype=np.float32, seed=4)
    loss_fn = nn.BCEWithLogitsLoss()
    loss_fn(logits, xp32.ones(5))                       # float64 target
    g = loss_fn.backward()
    assert g.dtype == np.float32
    sig = 1 / (1 + np.exp(-tinygan.to_numpy(logits).astype(np.float64)))
    np.testing.assert_allclose(tinygan.to_numpy(g), (sig - 1) / 5, rtol=1e-6)


def test_sigmoid_and_activations_keep_float32(xp32):
    x = xp32.asarray(np.array([-100.0, -1.0, 0.0, 2.0, 100.0], dtype=np.float32))
    for layer in [nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid()]:
        y = layer(x)
        assert y.dtype == np.float32 and layer.backward(xp32.ones_like(y)).dtype == np.float32
    assert nn.sigmoid(x).dtype == np.float32


# ----- a whole float32 training step ------------------------------------------------------

def _spy_on(module, name, seen):
    """Wrap ``module``'s forward and backward (this instance only) to record the dtype of every
    float array that crosses the call — input, output, upstream and returned gradient — and
    of every array the module holds right after the call (its caches)."""
    forward, backward = module.forward, module.backward

    def note(what, a):
        if hasattr(a, "dtype") and a.dtype.kind == "f":
            seen.append((f"{name}: {what}", a.dtype))

    def held():
        for attr, value in vars(module).items():
            if hasattr(value, "dtype"):
                note(f"cache .{attr}", value)

    def spied_forward(x, *args, **kwargs):
        note("forward input", x)
        y = forward(x, *args, **kwargs)
        note("forward output", y)
        held()
        return y

    def spied_backward(dout=None, *args, **kwargs):
        note("backward upstream gradient", dout)
        dx = backward(*(() if dout is None else (dout,)), *args, **kwargs)
        note("backward returned gradient", dx)
        held()
        return dx

    module.forward, module.backward = spied_forward, spied_backward


def test_float32_train_step_makes_no_float64_array(xp32):
    """Two float32 DCGAN training steps (the second reuses every buffer the first made):
    every array that enters or leaves a layer, every cache a layer keeps after each call,
    and afterwards every parameter, gradient, buffer, optimizer moment, scratch buffer,
    loss and statistic is float32 — no float64 upcast hides anywhere in the step."""
    from tinygan.dcgan import build, train_step

    G, D = build("paper", latent_dim=8, features=4, image_size=16, seed=0)
    if tinygan.backend.backend_name() != "numpy":
        G.to(tinygan.backend.backend_name()), D.to(tinygan.backend.backend_name())
    opt_G = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss_fn = nn.BCEWithLogitsLoss()
    seen = []
    for net_name, net in (("G", G), ("D", D)):
        for mod_name, mod in net.named_modules(net_name):
            _spy_on(mod, mod_name, seen)
    _spy_on(loss_fn, "loss", seen)
    rng = np.random.default_rng(0)
    for step in range(2):
        real = xp32.asarray(rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
        z = xp32.asarray(rng.standard_normal((4, 8, 1, 1)).astype(np.float32))
        stats = {}
        losses = train_step(G, D, opt_G, opt_D, real, z, loss_fn=loss_fn, stats=stats)
        for name, value in [("loss_D", losses[0]), ("loss_G", losses[1]), *stats.items()]:
            seen.append((name, value.dtype))

    for net_name, net in (("G", G), ("D", D)):
        seen += [(f"{name}", a.dtype) for name, a in _float_arrays(net)]
        seen += [(f"{net_name}.{name}", a.dtype) for name, a in net.named_buffers() if a.dtype.kind == "f"]
    for opt_name, opt in (("opt_G", opt_G), ("opt_D", opt_D)):
        seen += [(f"{opt_name} moment", a.dtype) for a in opt.exp_avg + opt.exp_avg_sq]
    for owner, ws in (("G and D", G.workspace), ("opt_G", opt_G.workspace), ("opt_D", opt_D.workspace)):
        seen += [(f"scratch buffer {owner} {key[0]!r}", buf.dtype) for key, buf in ws.buffers.items()]

    wrong = [f"{where} is {dtype}" for where, dtype in seen if dtype != np.float32]
    assert not wrong, "float64 (or other) arrays in a float32 step:\n" + "\n".join(wrong[:20])
    # the spies really watched: every layer of both networks, both directions, both steps
    assert sum("forward output" in w for w, _ in seen) >= 2 * 3 * len(list(D.main)) + 2 * len(list(G.main))
    if tinygan.reference.on():                     # the textbook path caches the column matrix
        assert any(w.endswith(".cols") for w, _ in seen)
    else:                                          # the speed path keeps the input and uses scratch
        assert any("scratch buffer" in w for w, _ in seen) and any(w.endswith(".x") for w, _ in seen)
