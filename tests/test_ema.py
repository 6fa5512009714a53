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
