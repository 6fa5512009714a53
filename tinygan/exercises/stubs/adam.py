"""Exercise 9 of 10: Adam's update.

Read first: tinygan/optim.py.
Check:  python -m tinygan.exercises check adam
Train:  python -m tinygan.exercises train adam    (yours as both optimizers of the DCGAN)

Kingma & Ba (2015), as torch.optim.Adam. For each parameter p with gradient g = p.grad,
moments m and v (zeros at first) and t = the number of steps taken, this one included:

    m ← β1·m + (1 − β1)·g            v ← β2·v + (1 − β2)·g²
    m̂ = m / (1 − β1ᵗ)                v̂ = v / (1 − β2ᵗ)          the bias corrections
    p ← p − lr · m̂ / (√v̂ + eps)

Hints
- self.params, self.exp_avg (the m's) and self.exp_avg_sq (the v's) are lists in the same
  order; self.lr, self.beta1, self.beta2, self.eps the settings; self.step_count is t.
- Write INTO the arrays: m[...] = …, p.data -= …  (m = … only rebinds a name; the state is lost).

The solution is the library's own code: tinygan/optim.py, Adam.step (after the fast path's line).
"""
import numpy as np

from tinygan import optim


class Adam(optim.Adam):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8), as tinygan's."""

    def step(self):
        self.step_count += 1
        t, b1, b2 = self.step_count, self.beta1, self.beta2
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad
            raise NotImplementedError("Adam.step: m, v, the bias corrections, then p.data")
