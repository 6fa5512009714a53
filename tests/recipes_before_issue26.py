"""The training step as it was before issue 26's options (commit d00729c), kept verbatim to compare against.

Issue 26 added options to ``dcgan.train_step`` and ``train.Run`` (flip, augmentation
probability, ADA, LeCam, top-k, hinge loss, an EMA ramp); with all of them off, every recipe
must train exactly as before, bit for bit. ``old_train_step`` is the function of that commit,
unchanged, and ``old_run_step`` what ``Run.step`` did with it; tests/test_recipes_unchanged.py
runs them beside today's code from one state and asks for equal bits. It uses today's layers,
DiffAugment and EMA (their own changes are covered by the stored fixture of that test).
"""
from tinygan.backend import get_array_module
from tinygan.nn import BCEWithLogitsLoss, sigmoid


def old_train_step(G, D, opt_G, opt_D, real, z, loss_fn=None, stats=None, augment=None, real_label=1.0):
    xp = get_array_module(real)
    loss_fn = loss_fn or BCEWithLogitsLoss()
    N = real.shape[0]
    ones, zeros = xp.ones(N, dtype=real.dtype), xp.zeros(N, dtype=real.dtype)
    seen = augment if augment is not None else (lambda x: x)     # what D is shown of an image

    # ---- D step: real → 1, fake → 0 ----------------------------------------------------
    opt_D.zero_grad()
    logits_real = D(seen(real))
    loss_real = loss_fn(logits_real, ones if real_label == 1 else xp.full(N, real_label, dtype=real.dtype))
    D.backward(loss_fn.backward(0.5), input_grad=False)  # d loss_D / d loss_real = ½; no dL/d(image)
    fake = G(z)
    logits_fake = D(seen(fake))
    loss_fake = loss_fn(logits_fake, zeros)
    D.backward(loss_fn.backward(0.5), input_grad=False)
    opt_D.step()
    loss_D = (loss_real + loss_fake) / 2

    # ---- G step: fake → 1, through the freshly updated D --------------------------------
    opt_G.zero_grad()
    D.requires_grad_(False)
    try:
        loss_G = loss_fn(D(seen(fake)), ones)
        d_seen = D.backward(loss_fn.backward())          # D gives dL/d(what it saw)
        G.backward(augment.backward(d_seen) if augment is not None else d_seen)   # G needs no dL/dz
    finally:
        D.requires_grad_(True)
    opt_G.step()

    if stats is not None:
        stats["d_real"] = sigmoid(logits_real).mean()
        stats["d_fake"] = sigmoid(logits_fake).mean()
    return loss_D, loss_G


def old_run_step(run, real, z, stats=None):
    """``Run.step`` of commit d00729c, on ``run``'s models, optimizers, loss and augmentation."""
    if run.noise is not None:
        run.noise.sigma = run.noise_sigma()
    losses = old_train_step(run.G, run.D, run.opt_G, run.opt_D, real, z, run.loss_fn, stats,
                            augment=run.augment, real_label=run.cfg.real_label)
    if run.ema is not None:
        run.ema.update()
    return losses
