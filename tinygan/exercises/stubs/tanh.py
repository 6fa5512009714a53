"""Exercise 7 of 10: Tanh's backward.

Read first: tinygan/nn/activation.py.
Check:  python -m tinygan.exercises check tanh
Train:  python -m tinygan.exercises train tanh    (yours as G's last layer)

Any input shape. forward (given) keeps its OUTPUT self.y = tanh(x). The derivative of tanh
is a function of that output:

    dy/dx = 1 − tanh(x)² = 1 − y²,     so     dx = dout · (1 − y²)

Return a NEW array; never write into dout.

The solution is the library's own code: tinygan/nn/activation.py, Tanh.
"""
import numpy as np

from tinygan import nn


class Tanh(nn.Tanh):
    """Tanh(), as tinygan's."""

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        """dout (any shape) -> dx, a new array of the same shape."""
        raise NotImplementedError("Tanh.backward: dx = dout · (1 − y²)")
