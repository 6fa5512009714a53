"""Exercise 8 of 10: BCEWithLogitsLoss, forward and backward, stable at any logit.

Read first: tinygan/nn/loss.py (its docstring).
Check:  python -m tinygan.exercises check bce_with_logits
Train:  python -m tinygan.exercises train bce_with_logits    (yours as the DCGAN's loss)

For logits x (any shape, n = x.size numbers) and targets y in [0, 1], with p = σ(x):

    ℓ = −[y·log p + (1 − y)·log(1 − p)]
      = max(x, 0) − x·y + log(1 + e^−|x|)          the same number, stable for any x
    loss = Σ ℓ / n   (self.reduction == 'mean', the DCGAN paper's)   or   Σ ℓ   ('sum')

    dloss/dx = (σ(x) − y) / n · dout                ('sum': without the / n)

dout is the upstream gradient dL/dloss: 1 when the loss is the objective, ½ in D's step
(loss_D = ½·[ℓ_real + ℓ_fake]).

Hints
- The first form overflows: at x = −800, e^800 is inf and log σ(x) = −inf. The second never
  exponentiates a positive number: np.log1p(np.exp(-np.abs(x))).
- tinygan.nn.sigmoid(x) is a σ that does not overflow either.
- forward keeps x and y for backward.

The solution is the library's own code: tinygan/nn/loss.py, BCEWithLogitsLoss.
"""
import numpy as np

from tinygan import nn
from tinygan.nn import sigmoid


class BCEWithLogitsLoss(nn.BCEWithLogitsLoss):
    """BCEWithLogitsLoss(reduction='mean'), as tinygan's: loss(logits, target) -> a scalar."""

    def forward(self, logits, target):
        """logits, target (same shape) -> the loss, a scalar (0-d array or float)."""
        self.x, self.y = logits, target
        raise NotImplementedError("BCEWithLogitsLoss.forward: the stable form, then the mean or the sum")

    def backward(self, dout=1.0):
        """dL/dloss (a scalar) -> dL/dlogits, the logits' shape."""
        raise NotImplementedError("BCEWithLogitsLoss.backward: (σ(x) − y) / n · dout")
