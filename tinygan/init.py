"""Weight initialisation of the DCGAN paper (Radford et al. 2015, section 4).

"All weights were initialized from a zero-centered Normal distribution with standard
deviation 0.02." PyTorch's DCGAN example reads this for BatchNorm as γ ~ N(1, 0.02),
β = 0; convolution biases (DCGAN's convolutions have none) are set to 0.
"""
import numpy as np

from .backend import get_array_module
from .nn import BatchNorm2d, Conv2d, ConvTranspose2d, SpectralNorm


def _normal(like, mean, std, rng):
    xp = get_array_module(like)
    return xp.asarray(rng.normal(mean, std, size=like.shape).astype(like.dtype))


def dcgan_init(model, rng=None, std=0.02):
    """Re-initialise ``model`` in place: conv weights N(0, std); BatchNorm γ N(1, std), β 0.

    ``rng``: a ``numpy.random.Generator`` (or an int seed); drawing on the host keeps the
    same seed giving the same weights on NumPy and CuPy.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    for m in model.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d, SpectralNorm)):
            # under SpectralNorm the learned W is weight_orig (the layer's weight W/σ is derived)
            w = m.weight_orig if isinstance(m, SpectralNorm) else m.weight
            w.data[...] = _normal(w.data, 0.0, std, rng)
            if m.bias is not None:
                m.bias.data[...] = 0
        elif isinstance(m, BatchNorm2d):
            m.weight.data[...] = _normal(m.weight.data, 1.0, std, rng)
            m.bias.data[...] = 0
    return model


def normal_init(model, rng=None, std=0.02):
    """d2l's variant: EVERY parameter (BatchNorm γ and β included) drawn from N(0, std)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    for p in model.parameters():
        p.data[...] = _normal(p.data, 0.0, std, rng)
    return model
