"""EMA of G's weights: θ̄ ← β·θ̄ + (1 − β)·θ after each step, buffers copied, the live model untouched."""
import numpy as np
import pytest

from tinygan import to_numpy
from tinygan.dcgan import Generator
from tinygan.ema import EMA


def _perturb(G, rng):
    for p in G.parameters():
        p.data += rng.standard_normal(p.shape).astype(p.data.dtype)


def test_update_is_the_exponential_average_of_the_weights():
    G = Generator(8, 4, 16)
    rng = np.random.default_rng(0)
    _perturb(G, rng)
    ema = EMA(G, decay=0.9)
    expected = [to_numpy(p.data).astype(np.float64) for p in G.parameters()]
    for _ in range(3):
        _perturb(G, rng)
        ema.update()
        expected = [0.9 * e + 0.1 * to_numpy(p.data) for e, p in zip(expected, G.parameters())]
    for (name, avg), e, p in zip(ema.model.named_parameters(), expected, G.parameters()):
        np.testing.assert_allclose(to_numpy(avg.data), e, rtol=1e-5, atol=1e-6, err_msg=name)
        assert avg.data is not p.data
    assert not np.allclose(to_numpy(ema.model.parameters()[0].data), to_numpy(G.parameters()[0].data))


def test_buffers_follow_the_live_model_and_the_live_model_is_untouched():
    G = Generator(8, 4, 16)
    ema = EMA(G, decay=0.5)
    G.main[1].running_mean[...] = 3.0
    before = [to_numpy(p.data).copy() for p in G.parameters()]
    ema.update()
    np.testing.assert_array_equal(ema.model.main[1].running_mean, 3.0)
    for b, p in zip(before, G.parameters()):
        np.testing.assert_array_equal(b, to_numpy(p.data))


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_decay_out_of_range_is_refused(decay):
    with pytest.raises(ValueError, match=r"EMA: decay must be in \[0, 1\)"):
        EMA(Generator(8, 4, 16), decay)


# ----- issue 26: ADA's ramp of the half-life, and BatchNorm statistics of the average itself --------

def test_the_ramp_grows_the_half_life_to_that_of_decay():
    G = Generator(8, 4, 16)
    ema = EMA(G, decay=0.999, rampup=0.05)
    h = np.log(0.5) / np.log(0.999)                                  # ~692.8 steps
    assert ema.decay_at(0) == 0.0                                    # the first update copies G
    assert ema.decay_at(1000) == pytest.approx(0.5 ** (1 / 50))      # half-life 5% of 1,000 steps
    assert ema.decay_at(100_000) == pytest.approx(0.999)             # capped at decay's half-life
    assert ema.decay_at(int(h / 0.05) + 1) == pytest.approx(0.999, abs=1e-6)
    assert EMA(G, decay=0.999).decay_at(0) == 0.999                  # no ramp: decay whatever the step


def test_a_ramped_update_uses_the_steps_beta_and_needs_the_step():
    G = Generator(8, 4, 16)
    rng = np.random.default_rng(1)
    ema = EMA(G, decay=0.99, rampup=0.5)
    _perturb(G, rng)
    ema.update(step=0)                                               # β = 0: θ̄ = θ
    for avg, p in zip(ema.model.parameters(), G.parameters()):
        np.testing.assert_array_equal(to_numpy(avg.data), to_numpy(p.data))
    before = [to_numpy(a.data).astype(np.float64) for a in ema.model.parameters()]
    _perturb(G, rng)
    ema.update(step=4)                                               # half-life 2 steps: β = ½^(1/2)
    beta = 0.5 ** 0.5
    for b, avg, p in zip(before, ema.model.parameters(), G.parameters()):
        np.testing.assert_allclose(to_numpy(avg.data), beta * b + (1 - beta) * to_numpy(p.data), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs the step"):
        ema.update()
    with pytest.raises(ValueError, match="rampup must be >= 0"):
        EMA(G, rampup=-1)


def test_reestimated_batchnorm_statistics_are_pytorchs_cumulative_average():
    """reestimate_batchnorm over 3 batches = torch BatchNorm2d(momentum=None) after reset_running_stats()."""
    torch = pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    from tinygan.ema import reestimate_batchnorm
    from tinygan.nn import BatchNorm2d, Conv2d, Sequential
    rng = np.random.default_rng(2)
    net = Sequential(Conv2d(3, 4, 3, 1, 1, bias=False), BatchNorm2d(4)).double()
    net[1].running_mean[...] = 7.0                                   # stale statistics, to be replaced
    net.eval()
    batches = [rng.standard_normal((5, 3, 6, 6)) for _ in range(3)]
    reestimate_batchnorm(net, batches)
    ref_conv = torch.nn.Conv2d(3, 4, 3, 1, 1, bias=False).double()
    ref_bn = torch.nn.BatchNorm2d(4, momentum=None).double()
    with torch.no_grad():
        ref_conv.weight.copy_(torch.from_numpy(net[0].weight.data))
    ref_bn.train()
    for x in batches:
        ref_bn(ref_conv(torch.from_numpy(x)))
    np.testing.assert_allclose(net[1].running_mean, ref_bn.running_mean.numpy(), rtol=1e-10)
    np.testing.assert_allclose(net[1].running_var, ref_bn.running_var.numpy(), rtol=1e-10)
    assert not net.training and not net[1].training and net[1].momentum == 0.1   # left as it was


def test_reestimated_statistics_are_the_averages_own_not_gs():
    """The first BatchNorm's running mean and variance: the mean over the batches of the average's own
    batch statistics (variance unbiased, as in training), not G's buffers."""
    from tinygan.ema import reestimate_batchnorm
    G = Generator(8, 4, 16)
    ema = EMA(G, decay=0.9)
    _perturb(G, np.random.default_rng(3))
    ema.update()                                                     # θ̄ ≠ θ; buffers G's
    z = [np.random.default_rng(i).standard_normal((16, 8, 1, 1)).astype(np.float32) for i in range(4)]
    reestimate_batchnorm(ema.model, z)
    h = [to_numpy(ema.model.main[0](x)).astype(np.float64) for x in z]          # what BatchNorm 1 saw
    M = h[0].size // h[0].shape[1]
    bn = ema.model.main[1]
    np.testing.assert_allclose(bn.running_mean, np.mean([a.mean(axis=(0, 2, 3)) for a in h], axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, np.mean([a.var(axis=(0, 2, 3)) * M / (M - 1) for a in h], axis=0),
                               rtol=1e-4)
    assert not np.allclose(bn.running_mean, G.main[1].running_mean, rtol=1e-2)
