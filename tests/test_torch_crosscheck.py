"""PyTorch as the oracle: same weights in, same outputs and gradients out (float64).

Every layer's forward, input gradient and parameter gradients are compared with
torch.nn's, for a random upstream gradient, to 1e-5 relative. Also: BatchNorm's running
statistics over several steps, BCE at saturated logits, Adam over several steps, and
state_dict names/values moving between the two.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed: pip install -e '.[crosscheck]'")

import tinygan  # noqa: E402
from conftest import CONV_KSP, DECONV_KSPO
from tinygan import nn, to_numpy  # noqa: E402
from tinygan.optim import SGD, Adam  # noqa: E402

torch.set_num_threads(1)
RTOL, ATOL = 1e-5, 1e-10


def T(a, grad=False):
    t = torch.tensor(to_numpy(a), dtype=torch.float64)
    return t.requires_grad_(grad)


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = to_numpy(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def copy_params_to_torch(ours, theirs):
    """Copy tinygan's parameters and buffers into a torch module of the same structure, by name."""
    with torch.no_grad():
        sd = theirs.state_dict()
        theirs.load_state_dict({k: torch.tensor(to_numpy(v)).to(sd[k].dtype) for k, v in ours.state_dict().items()})


def compare_forward_backward(ours, theirs, x, seed=0):
    """Forward both; backward a random upstream gradient; compare output, dx, and every param grad."""
    xt = T(x, grad=True)
    y = ours(x)
    yt = theirs(xt)
    close(y, yt, "forward")
    R = np.random.default_rng(seed).standard_normal(y.shape)
    ours.zero_grad()
    theirs.zero_grad()
    dx = ours.backward(tinygan.backend.asarray(R, like=x))
    yt.backward(torch.tensor(R))
    close(dx, xt.grad, "input gradient")
    torch_params = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(torch_params)
    for name, p in ours.named_parameters():
        close(p.grad, torch_params[name].grad, f"gradient of {name}")
    return y


# ----- convolutions ------------------------------------------------------------------------

@pytest.mark.parametrize("k,s,p", CONV_KSP)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(xp, randn, k, s, p, bias):
    ours = nn.Conv2d(3, 4, k, stride=s, padding=p, bias=bias)
    theirs = torch.nn.Conv2d(3, 4, k, stride=s, padding=p, bias=bias).double()
    copy_params_to_torch(ours, theirs)
    compare_forward_backward(ours, theirs, randn(xp, 2, 3, 7, 6, seed=1))


@pytest.mark.parametrize("k,s,p,op", DECONV_KSPO)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d(xp, randn, k, s, p, op, bias):
    ours = nn.ConvTranspose2d(3, 4, k, stride=s, padding=p, bias=bias, output_padding=op)
    theirs = torch.nn.ConvTranspose2d(3, 4, k, stride=s, padding=p, bias=bias, output_padding=op).double()
    copy_params_to_torch(ours, theirs)
    compare_forward_backward(ours, theirs, randn(xp, 2, 3, 4, 3, seed=2))


def test_output_sizes_match_torch():
    for h, k, s, p in [(7, 3, 2, 1), (8, 4, 2, 1), (5, 5, 1, 2), (9, 2, 3, 0), (1, 1, 1, 0)]:
        assert torch.nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, h, h)).shape[-1] == nn.conv_out_size(h, k, s, p)
        for op in range(s):
            out = torch.nn.ConvTranspose2d(1, 1, k, s, p, output_padding=op)(torch.zeros(1, 1, h, h))
            assert out.shape[-1] == nn.deconv_out_size(h, k, s, p, op)


# ----- BatchNorm -----------------------------------------------------------------------------

def test_batchnorm2d_train_steps_and_eval(xp, randn):
    ours = nn.BatchNorm2d(3, momentum=0.2)
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    rng = np.random.default_rng(3)
    ours.weight.data[...] = tinygan.backend.asarray(rng.uniform(0.5, 1.5, 3), like=ours.weight.data)
    ours.bias.data[...] = tinygan.backend.asarray(rng.standard_normal(3), like=ours.bias.data)
    copy_params_to_torch(ours, theirs)
    for step in range(4):                                      # several train steps
        x = randn(xp, 4, 3, 3, 2, seed=10 + step) * (1 + step) + step
        compare_forward_backward(ours, theirs, x, seed=step)
        close(ours.running_mean, theirs.running_mean, f"running_mean after step {step}")
        close(ours.running_var, theirs.running_var, f"running_var after step {step}")
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == step + 1
    ours.eval(), theirs.eval()
    compare_forward_backward(ours, theirs, randn(xp, 2, 3, 4, 4, seed=20) * 3 - 1, seed=9)
    close(ours.running_var, theirs.running_var, "running_var unchanged in eval")
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4


# ----- activations ---------------------------------------------------------------------------

@pytest.mark.parametrize("ours,theirs", [
    (nn.ReLU, torch.nn.ReLU), (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    (nn.LeakyReLU, torch.nn.LeakyReLU), (nn.Tanh, torch.nn.Tanh), (nn.Sigmoid, torch.nn.Sigmoid)],
    ids=["ReLU", "LeakyReLU0.2", "LeakyReLU", "Tanh", "Sigmoid"])
def test_activation(xp, randn, ours, theirs):
    x = randn(xp, 2, 3, 4, 4, seed=4) * 4
    x[0, 0, 0, :3] = tinygan.backend.asarray([60.0, -60.0, 0.0], like=x)   # saturation, and the kink at 0
    compare_forward_backward(ours(), theirs(), x)


# ----- BCEWithLogitsLoss -----------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(xp, randn, reduction):
    x = randn(xp, 6, 5, seed=5) * 3
    target = np.random.default_rng(6).uniform(size=(6, 5))
    target[0] = np.round(target[0])
    ours = nn.BCEWithLogitsLoss(reduction)
    theirs = torch.nn.BCEWithLogitsLoss(reduction=reduction)
    xt = T(x, grad=True)
    loss = ours(x, tinygan.backend.asarray(target, like=x))
    loss_t = theirs(xt, torch.tensor(target))
    close(loss, loss_t, "loss")
    upstream = 0.37
    loss_t.backward(torch.tensor(upstream, dtype=torch.float64))
    close(ours.backward(upstream), xt.grad, "dlogits")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_saturated(xp, reduction):
    """Logits ±1e4: finite loss equal to torch's; the gradient is exactly (σ(x) − y)/N."""
    x_host = np.array([[1e4, -1e4, 1e4, -1e4, 0.5, -2.0]])
    y_host = np.array([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    x = tinygan.backend.asarray(x_host)
    ours = nn.BCEWithLogitsLoss(reduction)
    loss = ours(x, tinygan.backend.asarray(y_host))
    assert np.isfinite(float(loss))
    n = x_host.size if reduction == "mean" else 1
    # per element: 0, 0, 1e4, 1e4, softplus(-0.5), softplus(-2)
    want = (2e4 + np.log1p(np.exp(-0.5)) + np.log1p(np.exp(-2.0))) / n
    assert float(loss) == pytest.approx(want, rel=1e-12)
    xt = T(x, grad=True)
    loss_t = torch.nn.BCEWithLogitsLoss(reduction=reduction)(xt, torch.tensor(y_host))
    close(loss, loss_t, "loss")
    loss_t.backward()
    g = to_numpy(ours.backward())
    assert np.all(np.isfinite(g))
    sigma_t = torch.sigmoid(torch.tensor(x_host)).numpy()
    np.testing.assert_array_equal(g[0, :4], (sigma_t[0, :4] - y_host[0, :4]) / n)   # exactly
    np.testing.assert_array_equal(g[0, :4], np.array([0.0, 0.0, 1.0, -1.0]) / n)
    close(g, xt.grad, "dlogits")


# ----- optimizers ------------------------------------------------------------------------------

def _grads(shapes, step):
    rng = np.random.default_rng(50 + step)
    return [rng.standard_normal(s) * (0.5 + step) for s in shapes]


@pytest.mark.parametrize("make_ours,make_theirs", [
    (lambda ps: Adam(ps, lr=2e-4, betas=(0.5, 0.999)), lambda ps: torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999))),
    (lambda ps: Adam(ps, lr=1e-2), lambda ps: torch.optim.Adam(ps, lr=1e-2)),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
], ids=["Adam-dcgan", "Adam-default", "SGD-momentum"])
def test_optimizer_steps(xp, make_ours, make_theirs):
    shapes = [(4, 3, 2, 2), (4,), (1,)]
    rng = np.random.default_rng(7)
    start = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(tinygan.backend.asarray(a)) for a in start]
    theirs = [torch.tensor(a, requires_grad=True) for a in start]
    opt, opt_t = make_ours(ours), make_theirs(theirs)
    for step in range(5):
        for p, pt, g in zip(ours, theirs, _grads(shapes, step)):
            p.grad[...] = tinygan.backend.asarray(g, like=p.grad)
            pt.grad = torch.tensor(g)
        opt.step()
        opt_t.step()
        for i, (p, pt) in enumerate(zip(ours, theirs)):
            close(p.data, pt, f"parameter {i} after step {step + 1}")
    if isinstance(opt, Adam):
        for i, pt in enumerate(theirs):
            close(opt.exp_avg[i], opt_t.state[pt]["exp_avg"], f"exp_avg {i}")
            close(opt.exp_avg_sq[i], opt_t.state[pt]["exp_avg_sq"], f"exp_avg_sq {i}")
            assert int(opt_t.state[pt]["step"]) == opt.step_count == 5


# ----- state_dict compatibility ---------------------------------------------------------------

def _pair():
    ours = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                         nn.ConvTranspose2d(4, 2, 4, 2, 1), nn.BatchNorm2d(2), nn.ReLU(),
                         nn.Conv2d(2, 1, 3, 1, 1), nn.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, 2, 1, bias=False), torch.nn.BatchNorm2d(4),
                                 torch.nn.LeakyReLU(0.2), torch.nn.ConvTranspose2d(4, 2, 4, 2, 1),
                                 torch.nn.BatchNorm2d(2), torch.nn.ReLU(), torch.nn.Conv2d(2, 1, 3, 1, 1),
                                 torch.nn.Sigmoid()).double()
    return ours, theirs


def test_state_dict_names_and_shapes_equal_torch(xp):
    ours, theirs = _pair()
    sd, sd_t = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(sd_t)
    assert "0.weight" in sd and "1.running_mean" in sd and "1.num_batches_tracked" in sd
    for k in sd:
        assert tuple(sd[k].shape) == tuple(sd_t[k].shape), k
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_weights_from_torch_give_the_same_output(xp, randn):
    ours, theirs = _pair()
    with torch.no_grad():                                    # non-trivial running statistics in torch
        for i in range(3):
            theirs(T(randn(xp, 4, 3, 8, 8, seed=30 + i) * 2 + 1))
    assert int(theirs[1].num_batches_tracked) == 3
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert int(ours[1].num_batches_tracked) == 3
    close(ours[4].running_var, theirs[4].running_var, "running_var loaded")
    x = randn(xp, 2, 3, 8, 8, seed=40)
    ours.eval(), theirs.eval()
    compare_forward_backward(ours, theirs, x, seed=1)        # eval: uses the loaded running stats
    ours.train(), theirs.train()
    compare_forward_backward(ours, theirs, x, seed=2)


def test_weights_from_tinygan_load_into_torch(xp, randn):
    ours, theirs = _pair()
    for i in range(2):
        ours(randn(xp, 4, 3, 8, 8, seed=50 + i) - 0.5)
    theirs.load_state_dict({k: torch.from_numpy(np.array(to_numpy(v))) for k, v in ours.state_dict().items()})
    assert int(theirs[1].num_batches_tracked) == 2
    ours.eval(), theirs.eval()
    x = randn(xp, 2, 3, 8, 8, seed=60)
    with torch.no_grad():
        close(ours(x), theirs(T(x)), "output after loading into torch")
