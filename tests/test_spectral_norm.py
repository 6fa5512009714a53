"""SpectralNorm: finite differences, PyTorch's spectral_norm as the oracle, the power iteration
against np.linalg.svd, state_dict names and round trips, Adam over it, and its errors.

Finite differences need a fixed function of W. In training mode every forward runs a power
iteration that moves u and v — and u, v depend on W — so the check runs in eval mode, where
u, v are the stored constants and the layer computes exactly W/σ with σ = uᵀWv: the
function whose derivative the backward claims to be. That the training-mode backward is
the same formula at the freshly updated u, v is a separate test (and PyTorch's, below).
"""
import re

import numpy as np
import pytest

import tinygan
from tinygan import nn, to_numpy
from tinygan.gradcheck import check_module
from tinygan.nn import Conv2d, ConvTranspose2d, LeakyReLU, Sequential, SpectralNorm, sampling
from tinygan.nn.spectral_norm import power_iteration, weight_matrix
from tinygan.optim import Adam
from tinygan.summary import summary

RTOL, ATOL = 1e-6, 1e-10


def _sn(layer, seed=0, scale=0.3):
    """SpectralNorm around ``layer`` with non-trivial weights and bias (drawn from ``seed``)."""
    rng = np.random.default_rng(seed)
    xp = tinygan.get_array_module(layer.weight.data)
    for p in (layer.weight, layer.bias):
        if p is not None:
            p.data[...] = xp.asarray(rng.standard_normal(p.shape) * scale)
    return SpectralNorm(layer)


def _layers():
    return [pytest.param(lambda: Conv2d(3, 4, 3, 2, 1), (2, 3, 5, 5), id="conv"),
            pytest.param(lambda: Conv2d(3, 4, 4, 2, 1, bias=False), (2, 3, 6, 6), id="conv-nobias"),
            pytest.param(lambda: ConvTranspose2d(3, 2, 4, 2, 1), (2, 3, 3, 3), id="deconv")]


# ----- finite differences ---------------------------------------------------------------------

@pytest.mark.parametrize("make,shape", _layers())
def test_gradcheck_in_eval_mode(xp, randn, make, shape):
    sn = _sn(make()).eval()
    u, v = sn.weight_u.copy(), sn.weight_v.copy()
    report = check_module(sn, randn(xp, *shape, seed=1))
    assert [t.name for t in report.tensors] == ["input"] + [n for n, _ in sn.named_parameters()]
    assert report.ok, str(report)
    assert np.array_equal(to_numpy(sn.weight_u), to_numpy(u)) and np.array_equal(to_numpy(sn.weight_v), to_numpy(v))


def test_training_backward_is_the_eval_backward_at_the_updated_u_v(xp, randn):
    """Train mode: one power iteration, then the same formula with the new u, v held constant."""
    sn = _sn(Conv2d(3, 4, 3, 1, 1))
    x, R = randn(xp, 2, 3, 4, 4, seed=1), randn(xp, 2, 4, 4, 4, seed=2)
    u0 = sn.weight_u.copy()
    y_train = sn(x)
    assert not np.allclose(to_numpy(sn.weight_u), to_numpy(u0))           # the iteration moved u
    sn.zero_grad()
    dx_train = sn.backward(R)
    g_train = [p.grad.copy() for p in sn.parameters()]
    sn.eval()
    y_eval = sn(x)
    sn.zero_grad()
    dx_eval = sn.backward(R)
    np.testing.assert_allclose(to_numpy(y_train), to_numpy(y_eval), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(dx_train), to_numpy(dx_eval), rtol=1e-12)
    for a, p in zip(g_train, sn.parameters()):
        np.testing.assert_allclose(to_numpy(a), to_numpy(p.grad), rtol=1e-12)


def test_the_weight_gradient_is_orthogonal_to_W(randn):
    """W/σ with σ = uᵀWv is unchanged by scaling W (σ is linear in W), so ⟨dL/dW, W⟩ = 0 for any u, v."""
    tinygan.use("numpy", np.float64)
    sn = _sn(Conv2d(2, 3, 3, 1, 1))
    sn(randn(np, 2, 2, 4, 4, seed=3))
    sn.zero_grad()
    sn.backward(randn(np, 2, 3, 4, 4, seed=4))
    W, dW = sn.weight_orig.data, sn.weight_orig.grad
    assert np.abs(dW).sum() > 0.1
    assert abs((W * dW).sum()) < 1e-12 * np.abs(W).sum() * np.abs(dW).sum()


# ----- PyTorch as the oracle ------------------------------------------------------------------

torch_params = [pytest.param(lambda: Conv2d(3, 4, 3, 2, 1), lambda t: t.nn.Conv2d(3, 4, 3, 2, 1), (2, 3, 5, 5),
                             id="conv"),
                pytest.param(lambda: ConvTranspose2d(3, 2, 4, 2, 1), lambda t: t.nn.ConvTranspose2d(3, 2, 4, 2, 1),
                             (2, 3, 3, 3), id="deconv")]


@pytest.mark.parametrize("ours_make,theirs_make,shape", torch_params)
def test_matches_torch_spectral_norm_over_steps(xp, randn, ours_make, theirs_make, shape):
    """Same weights, same u: three training forwards (u, v carried), then one in eval mode."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    ours = _sn(ours_make())
    theirs = torch.nn.utils.spectral_norm(theirs_make(torch).double())
    assert set(ours.state_dict()) == set(theirs.state_dict())                # weight_orig, weight_u, weight_v, bias
    theirs.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in ours.state_dict().items()})
    for step, train in enumerate([True, True, True, False]):
        ours.train(train)
        theirs.train(train)
        x = randn(xp, *shape, seed=10 + step)
        xt = torch.tensor(to_numpy(x), requires_grad=True)
        y, yt = ours(x), theirs(xt)
        R = randn(xp, *y.shape, seed=20 + step)
        ours.zero_grad()
        theirs.zero_grad()
        dx = ours.backward(R)
        yt.backward(torch.tensor(to_numpy(R)))
        pairs = [("forward", y, yt), ("input gradient", dx, xt.grad)]
        pairs += [(f"{name}.grad", p.grad, dict(theirs.named_parameters())[name].grad)
                  for name, p in ours.named_parameters()]
        pairs += [(name, b, dict(theirs.named_buffers())[name]) for name, b in ours.named_buffers()]
        for what, a, b in pairs:
            np.testing.assert_allclose(to_numpy(a), b.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"step {step} ({'train' if train else 'eval'}): {what}")


def test_torch_state_dict_loads_and_gives_torch_output(randn):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 4, 4, 2, 1, bias=False).double())
    theirs(torch.zeros(1, 3, 8, 8, dtype=torch.float64))                     # one power iteration there
    tinygan.use("numpy", np.float64)
    ours = SpectralNorm(Conv2d(3, 4, 4, 2, 1, bias=False))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = randn(np, 2, 3, 8, 8, seed=5)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=RTOL, atol=ATOL)


# ----- the power iteration ----------------------------------------------------------------------

def test_power_iteration_converges_to_the_largest_singular_value():
    """W with known singular values 3, 1.5, 1, 0.5: the error in u shrinks (1.5/3)² = 1/4 per step."""
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((18, 4)))
    s = np.array([3.0, 1.5, 1.0, 0.5])
    W2 = U @ np.diag(s) @ V.T
    u = rng.standard_normal(4)
    u /= np.linalg.norm(u)
    errors = []
    for _ in range(30):
        u, v = power_iteration(W2, u, 1)
        errors.append(abs(u @ W2 @ v - np.linalg.svd(W2, compute_uv=False)[0]))
    assert errors[-1] < 1e-12 * 3
    assert abs(abs(u @ U[:, 0]) - 1) < 1e-12 and abs(abs(v @ V[:, 0]) - 1) < 1e-12
    assert errors[5] < errors[0] / 100                                        # geometric, ~1/16 per step in σ


@pytest.mark.parametrize("make", [lambda: Conv2d(3, 8, 4, 2, 1, bias=False), lambda: ConvTranspose2d(8, 3, 4, 2, 1)],
                         ids=["conv", "deconv"])
def test_training_forwards_drive_sigma_to_svd_and_W_sn_to_norm_one(randn, make):
    tinygan.use("numpy", np.float64)
    sn = _sn(make())
    x = randn(np, 1, sn.layer.in_channels, 4, 4)
    for _ in range(300):                                                      # one iteration per forward
        sn(x)
    W2 = weight_matrix(sn.weight_orig.data, sn.dim)
    assert W2.shape[0] == (8 if isinstance(sn.layer, Conv2d) else 3)        # rows are the output channels
    sigma_svd = np.linalg.svd(W2, compute_uv=False)[0]
    np.testing.assert_allclose(float(sn.sigma), sigma_svd, rtol=1e-8)
    np.testing.assert_allclose(np.linalg.svd(weight_matrix(sn.layer.weight.data, sn.dim), compute_uv=False)[0],
                               1.0, rtol=1e-8)


def test_eval_and_sampling_leave_u_v_alone(randn):
    sn = Sequential(SpectralNorm(Conv2d(3, 4, 3, 1, 1)))
    x = randn(np, 2, 3, 4, 4).astype(np.float32)
    before = {k: v.copy() for k, v in sn.named_buffers()}
    sn.eval()
    sn(x)
    with sampling(sn, bn="batch"):                                            # train mode inside: u moves,
        sn(x)                                                                 # and is put back on the way out
    sn.train()
    for k, v in sn.named_buffers():
        assert np.array_equal(v, before[k]), k
    sn(x)
    assert not np.array_equal(sn[0].weight_u, before["0.weight_u"])


# ----- the module in the house: names, state_dict, Adam, workspaces ----------------------------

def _small_d():
    """A Discriminator's shape: SN convs, LeakyReLU between, no bias."""
    return Sequential(SpectralNorm(Conv2d(3, 4, 4, 2, 1, bias=False)), LeakyReLU(0.2),
                      SpectralNorm(Conv2d(4, 1, 4, 1, 0, bias=False)))


def test_parameters_buffers_and_names_are_pytorchs():
    d = _small_d()
    assert [n for n, _ in d.named_parameters()] == ["0.weight_orig", "2.weight_orig"]
    assert list(d.state_dict()) == ["0.weight_orig", "0.weight_u", "0.weight_v",
                                    "2.weight_orig", "2.weight_u", "2.weight_v"]
    assert [m for m in d.modules() if isinstance(m, Conv2d)] == []           # the convs are not children
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 4, 4, 2, 1, bias=False)),
                                 torch.nn.LeakyReLU(0.2),
                                 torch.nn.utils.spectral_norm(torch.nn.Conv2d(4, 1, 4, 1, 0, bias=False)))
    assert set(d.state_dict()) == set(theirs.state_dict())
    assert {k: tuple(v.shape) for k, v in d.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


def test_state_dict_round_trip(randn):
    d = _small_d()
    x = randn(np, 4, 3, 8, 8).astype(np.float32)
    for _ in range(3):
        d(x)
    saved = {k: v.copy() for k, v in d.state_dict().items()}
    other = _small_d()                                                        # other weights and u, v
    assert not np.allclose(other.state_dict()["0.weight_u"], saved["0.weight_u"])
    other.load_state_dict(saved)
    for k, v in other.state_dict().items():
        assert np.array_equal(v, saved[k]), k
    np.testing.assert_array_equal(other(x), d(x))                            # train mode: same iteration too
    d.eval()
    other.eval()
    np.testing.assert_array_equal(other(x), d(x))


def test_adam_sees_only_weight_orig_and_trains_it(randn):
    """Adam's flat buffer holds weight_orig (and bias); the layer reads it afresh every forward."""
    sn = _sn(Conv2d(3, 4, 3, 1, 1))
    opt = Adam(sn.parameters(), lr=1e-2)
    assert opt.params == [sn.weight_orig, sn.bias] and opt.flat_in_use()
    x, R = randn(np, 2, 3, 4, 4).astype(np.float32), randn(np, 2, 4, 4, 4, seed=1).astype(np.float32)
    W_before = sn.weight_orig.data.copy()
    for _ in range(3):
        sn.zero_grad()
        opt.zero_grad()
        sn(x)
        sn.backward(R)
        assert np.abs(sn.weight_orig.grad).sum() > 0
        opt.step()
        assert opt.flat_in_use()                                             # still the flat views
    assert not np.allclose(sn.weight_orig.data, W_before)
    sn.eval()
    sn(x)
    np.testing.assert_allclose(sn.layer.weight.data, sn.weight_orig.data / sn.sigma, rtol=1e-6)


def test_adam_over_spectral_norm_matches_torch(randn):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    tinygan.use("numpy", np.float64)
    ours = _sn(Conv2d(3, 4, 3, 2, 1))
    theirs = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 4, 3, 2, 1).double())
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    opt, opt_t = Adam(ours.parameters(), lr=1e-2, betas=(0.5, 0.999)), None
    params_t = dict(theirs.named_parameters())
    opt_t = torch.optim.Adam([params_t[n] for n, _ in ours.named_parameters()], lr=1e-2, betas=(0.5, 0.999))
    for step in range(4):
        x = randn(np, 2, 3, 6, 6, seed=step)
        R = randn(np, 2, 4, 3, 3, seed=50 + step)
        opt.zero_grad()
        opt_t.zero_grad()
        ours(x)
        ours.backward(R)
        theirs(torch.tensor(x)).backward(torch.tensor(R))
        opt.step()
        opt_t.step()
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v, theirs.state_dict()[k].numpy(), rtol=1e-6, atol=1e-9, err_msg=k)


def test_first_layer_switch_frozen_d_workspace_and_dtype(randn):
    d = _small_d()
    ws = d.share_workspace()
    assert d[0].layer.workspace is ws and d[2].layer.workspace is ws
    x = randn(np, 2, 3, 8, 8).astype(np.float32)
    d[0].needs_input_grad = False                                            # what dcgan does for D's own step
    y = d(x)
    assert d.backward(np.ones_like(y)) is None
    assert np.abs(d[0].weight_orig.grad).sum() > 0
    d[0].needs_input_grad = True
    d.zero_grad()
    d.requires_grad_(False)                                                  # D frozen while G learns
    d(x)
    dx = d.backward(np.ones_like(y))
    assert dx.shape == x.shape and all(np.abs(p.grad).sum() == 0 for p in d.parameters())
    d.requires_grad_(True).double()
    assert all(a.dtype == np.float64 for a in d.state_dict().values())
    assert d(x.astype(np.float64)).dtype == np.float64


def test_summary_lists_the_wrapper_as_one_layer():
    s = summary(_small_d(), (3, 8, 8), print_fn=None)
    assert [(r.name, r.kind, r.params) for r in s.rows] == [("0", "SpectralNorm", 3 * 4 * 16), ("1", "LeakyReLU", 0),
                                                             ("2", "SpectralNorm", 4 * 16)]
    assert s.buffers == (4 + 48) + (1 + 64)


# ----- errors -----------------------------------------------------------------------------------

def test_constructor_errors():
    with pytest.raises(ValueError, match=r"^SpectralNorm: expected a layer with a weight Parameter of 2 or more "
                                         r"dimensions \(Conv2d, ConvTranspose2d\), "
                                         r"got BatchNorm2d with weight \(4,\)$"):
        SpectralNorm(nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"^SpectralNorm: expected a layer .* got LeakyReLU with weight None$"):
        SpectralNorm(LeakyReLU(0.2))
    with pytest.raises(ValueError, match=r"got SpectralNorm with weight None"):     # wrapped twice
        SpectralNorm(SpectralNorm(Conv2d(3, 4, 3)))
    with pytest.raises(ValueError, match=r"^SpectralNorm: n_power_iterations must be an integer >= 1, got 0"):
        SpectralNorm(Conv2d(3, 4, 3), n_power_iterations=0)
    with pytest.raises(ValueError, match=r"^SpectralNorm: dim must be in \[0, 4\) .* got 4$"):
        SpectralNorm(Conv2d(3, 4, 3), dim=4)


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 3, 8, 8, 1)])
def test_wrong_rank_names_the_layer_and_leaves_u_alone(shape):
    sn = SpectralNorm(Conv2d(3, 4, 3, 1, 1))
    u = sn.weight_u.copy()
    with pytest.raises(ValueError, match=rf"^SpectralNorm: expected input of shape \(N, 3, H, W\), "
                                         rf"got shape {re.escape(str(shape))}$"):
        sn(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"^SpectralNorm: expected 3 input channels"):
        sn(np.zeros((2, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"^Conv2d: input dtype float64 .* differs from the weight dtype float32"):
        sn(np.zeros((2, 3, 8, 8)))                                           # the wrapped layer's own check
    assert np.array_equal(sn.weight_u, u)                                    # no failed forward moved u


def test_backward_errors():
    sn = SpectralNorm(Conv2d(3, 4, 3, 1, 1))
    with pytest.raises(RuntimeError, match=r"^SpectralNorm.backward called before forward"):
        sn.backward(np.zeros((2, 4, 8, 8), np.float32))
    sn(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"^SpectralNorm.backward: expected dout of shape \(2, 4, 8, 8\)"):
        sn.backward(np.zeros((2, 4, 8, 7), np.float32))
