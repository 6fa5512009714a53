"""Instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017): D sees x + σ·ε.

Why. Real images and G's images lie on thin sets of image space that need not overlap, and
a D that separates them perfectly gives G a vanishing gradient. Gaussian noise on
everything D sees — real and fake, in D's step and in G's — spreads both sets out until
they overlap; annealing σ to 0 over the run gives the original problem back once G is
close (the training run does that: ``train.Run.step``).

    forward    y = x + σ·ε,     ε ~ N(0, 1), one number per element, fresh each call
    backward   dx = dy          (ε does not depend on x)

The noise is drawn on the host from the ``rng`` the layer is given (the training run
passes its own, so a checkpoint's rng state covers it) and copied to the device.
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

    def extra_repr(self):
        return f"sigma={self.sigma}"

    def forward(self, x):
        self.out_shape = x.shape
        if self.sigma == 0:
            return x.copy()
        if not (self.replay and self.eps is not None and self.eps.shape == x.shape):
            self.eps = get_array_module(x).asarray(self.rng.standard_normal(x.shape).astype(x.dtype))
        return x + x.dtype.type(self.sigma) * self.eps

    def backward(self, dout):
        check_cache(self, dout, getattr(self, "out_shape", None))
        return dout.copy()                                  # dx = dy, a new array
