"""The GPU path, run on a CPU through a strict stand-in for CuPy (tests/strict_cupy.py).

The stand-in's arrays are not NumPy arrays: what CuPy refuses (an implicit conversion to
NumPy, a NumPy operand, a function or keyword CuPy lacks) it refuses, and it counts every
device→host copy (a sync: the host waits for the GPU) and every upload, with where it
happened. So these tests are the CPU's proof that the CuPy branch runs — every user-facing
command: training with each recipe and option, resume, sample, export, every explore.py
subcommand, the benchmark — and that a training step never waits for the host. What only
a GPU can show (speed, the GPU's rounding, CUDA kernels) is tests/test_gpu.py's.

Sizes are tiny (16×16 images, 4 features, batch 4) so that the whole file takes seconds.
"""
import copy

import numpy as np
import pytest

import strict_cupy
import tinygan
from tinygan import nn
from tinygan.dcgan import augmentation, build, train_step
from tinygan.optim import Adam


@pytest.fixture
def cp():
    """The stand-in installed as ``cupy``, tinygan on it in float32; NumPy again afterwards."""
    with strict_cupy.installed() as mod:
        tinygan.use("cupy", np.float32)
        yield mod


def gan_on_device(cp, recipe="paper", batch=8, image_size=32, latent=16, features=8, **options):
    """G, D, both Adams, a real batch and z, all on the device."""
    G, D = build(recipe, latent, features, image_size, seed=0, **options)
    G.to("cupy"), D.to("cupy")
    rng = np.random.default_rng(0)
    real = cp.asarray(rng.uniform(-1, 1, (batch, 3, image_size, image_size)).astype(np.float32))
    z = cp.asarray(rng.standard_normal((batch, latent, 1, 1)).astype(np.float32))
    return G, D, Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999)), real, z


# ----- instance noise is drawn on the device ----------------------------------------------------

def test_instance_noise_is_drawn_on_the_device(cp):
    """A step with --instance-noise uploads no noise: ε is drawn where x is. (Drawn on the host it
    was three batch-sized normal arrays a step — 189 ms at batch 256 on a CPU — and three uploads.)"""
    G, D, opt_G, opt_D, real, z = gan_on_device(cp)
    noise = augmentation("paper", np.random.default_rng(1), instance_noise=0.1)
    with cp.watch() as seen:
        train_step(G, D, opt_G, opt_D, real, z, nn.BCEWithLogitsLoss(), augment=noise)
    from_noise = [t for t in seen.uploads if "noise.py" in t.where]
    assert from_noise == [] and seen.syncs == [], seen.report()
    eps = noise.eps
    assert type(eps).__module__ == "cupy" and eps.shape == real.shape and eps.dtype == np.float32


def test_device_noise_is_standard_normal_fresh_and_decided_by_the_runs_rng(cp):
    x = cp.zeros((16, 3, 32, 32), dtype=np.float32)
    a, b = InstanceNoiseOnDevice(seed=3), InstanceNoiseOnDevice(seed=3)
    first, again = a(x).get(), a(x).get()
    assert abs(first.mean()) < 0.01 and first.std() == pytest.approx(0.5, rel=0.02)
    assert not np.array_equal(first, again)                      # a new ε every call
    assert np.array_equal(b(x).get(), first)                     # the same rng state, the same noise
    a.replay = True
    assert np.array_equal(a(x).get(), again)                     # replay: the last ε (gradient checks)


def test_a_copy_of_the_noise_layer_carries_no_device_generator(cp):
    """CuPy's generator holds a cuRAND handle that the first copy to be freed would destroy under
    the other's feet: copies (the run's ETA timing deep-copies the augmentation) make their own."""
    noise = InstanceNoiseOnDevice(seed=0)
    noise(cp.zeros((2, 3, 4, 4), dtype=np.float32))
    twin = copy.deepcopy(noise)
    assert twin.device_rng is None and noise.device_rng is not None
    assert twin(cp.zeros((2, 3, 4, 4), dtype=np.float32)).shape == (2, 3, 4, 4)


def InstanceNoiseOnDevice(seed):
    return nn.InstanceNoise(0.5, rng=np.random.default_rng(seed))
