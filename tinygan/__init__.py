"""tinygan: a DCGAN from scratch in NumPy/CuPy, every backward pass written by hand.

    tinygan.backend   choose numpy or cupy, and the default dtype
    tinygan.nn        Conv2d, ConvTranspose2d, BatchNorm2d, activations, BCEWithLogitsLoss
    tinygan.optim     Adam, SGD
    tinygan.init      the DCGAN paper's N(0, 0.02) initialisation
    tinygan.gradcheck finite-difference checks of any backward
    tinygan.reference reference mode: the plain textbook code instead of the speed paths
"""
from . import backend, gradcheck, init, nn, optim, reference
from .backend import get_array_module, to_numpy, use
from .summary import summary

__version__ = "0.1.0"
__all__ = ["backend", "nn", "optim", "init", "gradcheck", "reference", "use", "get_array_module", "to_numpy"]
