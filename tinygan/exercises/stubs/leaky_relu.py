"""Exercise 6 of 10: LeakyReLU's backward.

Read first: tinygan/nn/activation.py.
Check:  python -m tinygan.exercises check leaky_relu
Train:  python -m tinygan.exercises train leaky_relu    (yours after every convolution of D)

Any input shape. forward (given) keeps its input self.x:

    y = x where x > 0, a·x elsewhere          (a = self.negative_slope; D uses 0.2)

backward multiplies the upstream gradient by the local derivative dy/dx:

    dx = dy · (1 where x > 0, a elsewhere)

and returns it as a NEW array: never write into dout (dout *= … or dout[mask] = … change the
caller's array; check notices).

Hint: np.where(condition, value_if_true, value_if_false) builds the derivative.

The solution is the library's own code: tinygan/nn/activation.py, LeakyReLU.
"""
import numpy as np

from tinygan import nn


class LeakyReLU(nn.LeakyReLU):
    """LeakyReLU(negative_slope=0.01), as tinygan's."""

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.negative_slope * x)

    def backward(self, dout):
        """dout (any shape) -> dx, a new array of the same shape."""
        raise NotImplementedError("LeakyReLU.backward: dx = dy · (1 or a)")
