"""Exercise 10 of 10: the GAN step's two backward passes.

Read first: docs/tour.md stop 6; tinygan/dcgan.py (train_step's docstring).
Check:  python -m tinygan.exercises check gan_step
Train:  python -m tinygan.exercises train gan_step    (yours as the DCGAN's step)

One DCGAN step: update D once on a real and a fake batch, then G once. With ℓ(logit, label)
the BCE on logits (loss_fn; loss_fn.backward(dout) returns dℓ/dlogits times dout):

    D step   loss_D = ½·[ℓ(D(x), 1) + ℓ(D(G(z)), 0)]
             D's parameter gradients from both halves ADD in .grad (each D.backward adds),
             and each half's upstream gradient is dloss_D/dℓ = ½
    G step   loss_G = ℓ(D(G(z)), 1)                   through the freshly updated D
             its gradient flows back through D into G; D's own parameter gradients are
             switched off meanwhile (D.requires_grad_(False)), so D keeps no stale .grad,
             and switched on again afterwards (in a finally:)

Layers keep what their backward needs from their LAST forward: call D.backward right after
the D(…) whose gradient you want.

Hints
- D.backward(dlogits, input_grad=False) skips the images' gradient (D's own update needs none);
  in G's step D.backward(dlogits) returns dL/d(fake), which G.backward takes.
- G.backward(d_fake) adds G's parameter gradients; it returns nothing by default.

The solution is the library's own code: tinygan/dcgan.py, train_step.
"""
import numpy as np


def train_step(G, D, opt_G, opt_D, real, z, loss_fn):
    """One step; returns (loss_D, loss_G). real (N, 3, H, W), z (N, Z, 1, 1)."""
    N = real.shape[0]
    ones, zeros = np.ones(N, dtype=real.dtype), np.zeros(N, dtype=real.dtype)

    # ---- D step: real -> 1, fake -> 0 --------------------------------------------------
    opt_D.zero_grad()
    loss_real = loss_fn(D(real), ones)
    raise NotImplementedError("train_step: D's backward pass for the real half")
    fake = G(z)
    loss_fake = loss_fn(D(fake), zeros)
    raise NotImplementedError("train_step: D's backward pass for the fake half")
    opt_D.step()
    loss_D = (loss_real + loss_fake) / 2

    # ---- G step: fake -> 1, through the updated D, D's parameter gradients switched off -----
    opt_G.zero_grad()
    raise NotImplementedError("train_step: loss_G = ℓ(D(fake), 1), and its backward through D into G")
    opt_G.step()
    return loss_D, loss_G
