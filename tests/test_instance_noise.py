"""Instance noise: y = x + σ·ε, dx = dy; chained after DiffAugment; annealed to 0 by the run."""
import numpy as np
import pytest

from tinygan import to_numpy
from tinygan.dcgan import augmentation
from tinygan.gradcheck import check_module
from tinygan.nn import DiffAugment, InstanceNoise, Sequential
from tinygan.train import Config, Run


def test_backward_passes_finite_differences(xp):
    noise = InstanceNoise(0.3, rng=np.random.default_rng(2))
    x = xp.asarray(np.random.default_rng(0).uniform(-1, 1, (3, 3, 5, 5)))
    noise(x)
    noise.replay = True                                  # the same ε in every forward of the check
    report = check_module(noise, x)
    assert [t.name for t in report.tensors] == ["input"] and report.ok, str(report)


def test_noise_has_the_asked_spread_and_is_fresh_each_call(xp):
    noise = InstanceNoise(0.3, rng=np.random.default_rng(1))
    x = xp.zeros((16, 3, 32, 32), dtype=np.float32)
    a, b = to_numpy(noise(x)), to_numpy(noise(x))
    assert a.dtype == np.float32 and a.shape == x.shape
    assert abs(a.mean()) < 0.01 and a.std() == pytest.approx(0.3, rel=0.02)
    assert not np.array_equal(a, b)                      # a new ε every call
    d = noise.backward(xp.ones_like(x))
    assert np.array_equal(to_numpy(d), np.ones(x.shape, np.float32))


def test_sigma_zero_is_the_identity_and_a_negative_one_is_refused():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    y = InstanceNoise(0.0)(x)
    assert np.array_equal(y, x) and y is not x
    with pytest.raises(ValueError, match="InstanceNoise: sigma must be >= 0, got -0.1"):
        InstanceNoise(-0.1)


def test_augmentation_chains_noise_after_the_recipes_diffaugment():
    rng = np.random.default_rng(0)
    assert augmentation("paper", rng) is None
    assert isinstance(augmentation("paper", rng, instance_noise=0.1), InstanceNoise)
    both = augmentation("sprites", rng, instance_noise=0.1)
    assert isinstance(both, Sequential) and [type(m) for m in both] == [DiffAugment, InstanceNoise]
    assert all(m.rng is rng for m in both)               # one rng: the run's, saved in its checkpoint
    x = np.random.default_rng(1).uniform(-1, 1, (4, 3, 8, 8))
    y = both(x)
    dx = both.backward(np.ones_like(y))
    assert dx.shape == x.shape


def test_a_run_anneals_sigma_linearly_to_zero(sprites, tmp_path):
    r = Run(Config(data=str(sprites), out=str(tmp_path / "o"), image_size=16, features=4, latent_dim=8,
                   batch_size=4, epochs=2, instance_noise=0.2).resolved())
    total = 2 * r.n_batches                              # 12 sprites, batches of 4: 3 a epoch
    assert r.noise is r.augment and r.noise.rng is r.state.rng
    assert r.noise_sigma() == pytest.approx(0.2)
    r.state.step = total // 2
    assert r.noise_sigma() == pytest.approx(0.2 * (1 - (total // 2) / total))
    r.state.step = total
    assert r.noise_sigma() == 0.0
    r.state.step = 1
    real, z = next(r.batches())
    r.step(real, z)
    assert r.noise.sigma == pytest.approx(0.2 * (1 - 1 / total))
    assert Run(Config(data=str(sprites), out=str(tmp_path / "p"), image_size=16, features=4, latent_dim=8,
                      batch_size=4, epochs=1).resolved()).noise is None
