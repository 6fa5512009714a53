"""Instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017): D sees x + σ·ε.

Why. Real images and G's images lie on thin sets of image space that need not overlap, and
a D that separates them perfectly gives G a vanishing gradient. Gaussian noise on
everything D sees — real and fake, in D's step and in G's — spreads both sets out until
they overlap; annealing σ to 0 over the run gives the original problem back once G is
close (the training run does that: ``train.Run.step``).

    forward    y = x + σ·ε,     ε ~ N(0, 1), one number per element, fresh each call
    backward   dx = dy          (ε does not depend on x)

Where ε comes from. On NumPy it is drawn from the ``rng`` the layer is given (the training
run passes its own, so a checkpoint's rng state covers it). On a GPU it is drawn there, by
CuPy's generator (``device_rng``), which the layer seeds once from its ``rng``: a batch of
noise drawn on the host and uploaded would cost more than the step it feeds (three
256×3×64×64 arrays a step, 189 ms on a CPU against a GPU step of tens of ms). The run's
seed decides the GPU's noise too; a resumed GPU run continues with a fresh stream seeded
from the checkpoint's rng (on NumPy it continues the same one).

``replay=True`` makes forward reuse the last noise (for gradient checks).
"""
import numpy as np

from ..backend import get_array_module
from .module import Module, check_cache


class InstanceNoise(Module):
    """y = x + σ·ε with ε ~ N(0, 1) drawn from ``rng`` at every call; σ = 0 is the identity."""

    def __init__(self, sigma, rng=None):
        if not sigma >= 0:
            raise ValueError(f"InstanceNoise: sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.eps, self.replay = None, False
        self.device_rng = None                              # CuPy's generator, made at the first GPU call

    def extra_repr(self):
        return f"sigma={self.sigma}"

    def forward(self, x):
        self.out_shape = x.shape
        if self.sigma == 0:
            return x.copy()
        if not (self.replay and self.eps is not None and self.eps.shape == x.shape):
            self.eps = self.draw(x.shape, x.dtype, get_array_module(x))
        return x + x.dtype.type(self.sigma) * self.eps

    def draw(self, shape, dtype, xp):
        """ε ~ N(0, 1) of ``shape`` where x is: from ``rng`` on NumPy, from ``device_rng`` on a GPU."""
        if xp is np:
            return self.rng.standard_normal(shape).astype(dtype)
        if self.device_rng is None:
            self.device_rng = xp.random.RandomState(int(self.rng.integers(2**63)))
        return self.device_rng.standard_normal(shape, dtype=dtype)

    def __getstate__(self):
        """Copies leave the GPU generator out: it holds a cuRAND handle, which the first copy to be
        freed would destroy under the other's feet. A copy makes its own at its first GPU call."""
        return {**self.__dict__, "device_rng": None}

    def backward(self, dout):
        check_cache(self, dout, getattr(self, "out_shape", None))
        return dout.copy()                                  # dx = dy, a new array
