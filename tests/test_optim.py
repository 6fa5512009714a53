"""Adam and SGD against the textbook update rules written out here, and their state_dict."""
import numpy as np
import pytest

import tinygan
from tinygan import nn, to_numpy
from tinygan.optim import SGD, Adam


def _params(xp, seed=0, shapes=((3, 2, 2, 2), (3,))):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(xp.asarray(rng.standard_normal(s))) for s in shapes]


def _grads(step, shapes=((3, 2, 2, 2), (3,))):
    """A different gradient each step (with mixed signs and scales)."""
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s) * (0.1 + step) for s in shapes]


def _set_grads(xp, params, grads):
    for p, g in zip(params, grads):
        p.grad[...] = xp.asarray(g)


def adam_textbook(theta, grads_per_step, lr, b1, b2, eps):
    """Kingma & Ba, Algorithm 1."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads_per_step, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta, m, v


def sgd_momentum_textbook(theta, grads_per_step, lr, mu):
    """PyTorch's form: b_1 = g_1, b_t = μ·b_{t−1} + g_t, θ ← θ − lr·b_t."""
    b = None
    for g in grads_per_step:
        b = g.copy() if b is None else mu * b + g
        theta = theta - lr * b
    return theta, b


@pytest.mark.parametrize("lr,betas,eps", [(1e-3, (0.9, 0.999), 1e-8), (2e-4, (0.5, 0.999), 1e-8),
                                          (0.05, (0.0, 0.9), 1e-3)])
def test_adam_matches_textbook(xp, lr, betas, eps):
    params = _params(xp)
    start = [to_numpy(p.data).copy() for p in params]
    opt = Adam(params, lr=lr, betas=betas, eps=eps)
    steps = 6
    for t in range(steps):
        _set_grads(xp, params, _grads(t))
        opt.step()
        assert opt.step_count == t + 1
    for i, p in enumerate(params):
        want, m, v = adam_textbook(start[i], [_grads(t)[i] for t in range(steps)], lr, *betas, eps)
        np.testing.assert_allclose(to_numpy(p.data), want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(to_numpy(opt.exp_avg[i]), m, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(to_numpy(opt.exp_avg_sq[i]), v, rtol=1e-12, atol=1e-15)
        assert not np.allclose(to_numpy(p.data), start[i])


def test_adam_first_step_is_lr_times_sign():
    """With bias correction the first step is lr·g/(|g| + eps) ≈ lr·sign(g), whatever |g|."""
    tinygan.use("numpy", np.float64)
    p = nn.Parameter(np.zeros(4))
    p.grad[...] = [3.0, -1e-3, 250.0, -7.0]
    Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, [-0.01, 0.01, -0.01, 0.01], rtol=1e-4)


@pytest.mark.parametrize("momentum", [0.0, 0.9, 0.5])
def test_sgd_matches_textbook(xp, momentum):
    params = _params(xp, seed=1)
    start = [to_numpy(p.data).copy() for p in params]
    opt = SGD(params, lr=0.03, momentum=momentum)
    steps = 5
    for t in range(steps):
        _set_grads(xp, params, _grads(t))
        opt.step()
    for i, p in enumerate(params):
        want, buf = sgd_momentum_textbook(start[i], [_grads(t)[i] for t in range(steps)], 0.03, momentum)
        np.testing.assert_allclose(to_numpy(p.data), want, rtol=1e-12, atol=1e-14)
        if momentum:
            np.testing.assert_allclose(to_numpy(opt.momentum_buffer[i]), buf, rtol=1e-12, atol=1e-14)


def test_plain_sgd_step():
    tinygan.use("numpy", np.float64)
    p = nn.Parameter(np.array([1.0, 2.0]))
    p.grad[...] = [0.5, -1.0]
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, 2.1], rtol=1e-15)


@pytest.mark.parametrize("make", [lambda ps: Adam(ps, lr=1e-2, betas=(0.5, 0.999)),
                                  lambda ps: SGD(ps, lr=1e-2, momentum=0.9)], ids=["Adam", "SGD"])
def test_state_dict_round_trip_continues_identically(xp, make):
    a_params = _params(xp, seed=2)
    opt_a = make(a_params)
    for t in range(3):
        _set_grads(xp, a_params, _grads(t))
        opt_a.step()
    state = opt_a.state_dict()
    # host copies, not the live arrays
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if "." in k)
    first_slot = [k for k in state if "." in k][0]
    snapshot = state[first_slot].copy()

    b_params = [nn.Parameter(p.data.copy()) for p in a_params]
    opt_b = make(b_params)
    opt_b.load_state_dict(state)
    assert opt_b.step_count == 3 and opt_b.lr == opt_a.lr
    for t in range(3, 6):
        _set_grads(xp, a_params, _grads(t))
        _set_grads(xp, b_params, _grads(t))
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a_params, b_params):
        np.testing.assert_array_equal(to_numpy(pa.data), to_numpy(pb.data))
    np.testing.assert_array_equal(state[first_slot], snapshot)          # the saved state did not move


def test_state_dict_contents():
    tinygan.use("numpy", np.float64)
    opt = Adam(_params(np), lr=3e-4, betas=(0.5, 0.99), eps=1e-7)
    state = opt.state_dict()
    assert set(state) == {"lr", "beta1", "beta2", "eps", "step_count",
                          "exp_avg.0", "exp_avg.1", "exp_avg_sq.0", "exp_avg_sq.1"}
    assert (state["lr"], state["beta1"], state["beta2"], state["eps"], state["step_count"]) == (3e-4, 0.5, 0.99, 1e-7, 0)


def test_load_state_dict_errors():
    tinygan.use("numpy", np.float64)
    opt = Adam(_params(np))
    state = opt.state_dict()
    other = Adam(_params(np, shapes=((3, 2, 2, 2),)))
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: missing keys \['exp_avg.2', 'exp_avg_sq.2'\]"):
        Adam(_params(np, shapes=((3, 2, 2, 2), (3,), (5,)))).load_state_dict(state)
    # a state for MORE parameters than this optimizer has is from another model too
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: unexpected keys \['exp_avg.1', 'exp_avg_sq.1'\]"):
        other.load_state_dict(state)
    assert other.step_count == 0
    # an SGD state is not an Adam state
    sgd_state = SGD(_params(np), lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: missing keys \['beta1', 'beta2', 'eps', "
                                         r"'exp_avg.0'"):
        opt.load_state_dict(sgd_state)
    no_step = {k: v for k, v in state.items() if k != "step_count"}
    with pytest.raises(ValueError, match=r"missing keys \['step_count'\]"):
        opt.load_state_dict(no_step)
    bad = dict(other.state_dict())
    bad["exp_avg.0"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"exp_avg.0 has shape \(2, 2\), parameter has \(3, 2, 2, 2\)"):
        other.load_state_dict(bad)
    # a bad shape anywhere leaves the whole state as it was (no half-loaded optimizer)
    bad = dict(state)
    bad["exp_avg.0"] = np.full((3, 2, 2, 2), 7.0)
    bad["exp_avg_sq.1"] = np.zeros(4)
    bad["step_count"] = 9
    with pytest.raises(ValueError, match=r"exp_avg_sq.1 has shape \(4,\), parameter has \(3,\)"):
        opt.load_state_dict(bad)
    assert np.abs(opt.exp_avg[0]).max() == 0 and opt.step_count == 0


def test_optimizer_argument_errors():
    tinygan.use("numpy", np.float64)
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        Adam([])
    with pytest.raises(ValueError, match="SGD: lr must be > 0, got 0"):
        SGD(_params(np), lr=0)
    with pytest.raises(ValueError, match=r"Adam: betas must be in \[0, 1\), got \(0.9, 1.0\)"):
        Adam(_params(np), betas=(0.9, 1.0))


def test_optimizer_zero_grad_and_float32():
    m = nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2))
    opt = Adam(m.parameters(), lr=1e-3)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    y = m(x)
    m.backward(np.ones_like(y) * np.float32(0.5) + x[:, :, :2, :2])
    opt.step()
    for p, s1, s2 in zip(m.parameters(), opt.exp_avg, opt.exp_avg_sq):
        assert p.data.dtype == p.grad.dtype == s1.dtype == s2.dtype == np.float32
    opt.zero_grad()
    assert all(np.abs(p.grad).max() == 0 for p in m.parameters())


def test_adam_flat_update_is_bit_identical_to_the_per_tensor_loop():
    """Adam over one flat buffer (``optim.flatten``) against the same steps tensor by tensor
    (what it falls back to when a parameter is rebound): the same bits, for several steps."""
    from tinygan.dcgan import build
    rng = np.random.default_rng(3)
    G1, _ = build("paper", latent_dim=8, features=4, image_size=16, seed=0)
    G2, _ = build("paper", latent_dim=8, features=4, image_size=16, seed=0)
    flat, loop = Adam(G1.parameters(), lr=1e-2, betas=(0.5, 0.999)), Adam(G2.parameters(), lr=1e-2, betas=(0.5, 0.999))
    for p in G2.parameters():                          # rebinding every array: the per-tensor loop
        p.data, p.grad = p.data.copy(), p.grad.copy()
    assert flat.flat_in_use() and not loop.flat_in_use()
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in G1.parameters()]
        for opt, G in ((flat, G1), (loop, G2)):
            opt.zero_grad()
            for p, g in zip(G.parameters(), grads):
                p.grad += g
            opt.step()
    for a, b in zip(G1.parameters(), G2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    for m1, m2 in zip(flat.exp_avg_sq, loop.exp_avg_sq):
        np.testing.assert_array_equal(m1, m2)
    assert np.shares_memory(G1.parameters()[0].data, flat.flat[0])
