"""The DCGAN of Radford, Metz & Chintala (2015): generator, discriminator, one training step.

Shapes for image_size = 64, features F = 64, latent size Z = 100 (the paper's):

    Generator      z (N, Z, 1, 1)
                   → ConvT(k4 s1 p0) BN ReLU → (N, 8F, 4, 4)
                   → ConvT(k4 s2 p1) BN ReLU → (N, 4F, 8, 8)
                   → ConvT(k4 s2 p1) BN ReLU → (N, 2F, 16, 16)
                   → ConvT(k4 s2 p1) BN ReLU → (N, F, 32, 32)
                   → ConvT(k4 s2 p1) Tanh    → (N, 3, 64, 64)       in [-1, 1]
    Discriminator  x (N, 3, 64, 64)
                   → Conv(k4 s2 p1) LeakyReLU(0.2)      → (N, F, 32, 32)   no BN on the input layer
                   → Conv(k4 s2 p1) BN LeakyReLU(0.2)   → (N, 2F, 16, 16)
                   → Conv(k4 s2 p1) BN LeakyReLU(0.2)   → (N, 4F, 8, 8)
                   → Conv(k4 s2 p1) BN LeakyReLU(0.2)   → (N, 8F, 4, 4)
                   → Conv(k4 s1 p0)                     → (N,) one real/fake logit per image

image_size 32 drops one stride-2 block from each (for CPU demos); any power of two ≥ 16
works. ``Generator(upsample='nearest')`` draws each ×2 step of G as Upsample(2) + Conv2d(k3 s1 p1)
instead of ConvT(k4 s2 p1), the remedy for checkerboard artifacts (Odena et al. 2016).
Convolutions carry no bias (BatchNorm's β does that job), as in PyTorch's DCGAN example,
whose parameter names (``main.0.weight`` …) these modules share.
"""
import math

import numpy as np

from .backend import get_array_module
from .init import dcgan_init, normal_init
from .nn import (BatchNorm2d, BCEWithLogitsLoss, Consistency, Conv2d, ConvTranspose2d, DiffAugment, HingeLoss,
                 InstanceNoise, LeakyReLU, LeCam, MinibatchStd, Module, RandomFlip, ReLU, Sequential, SpectralNorm,
                 Tanh, TopK, Upsample, sigmoid, topk_schedule)


def _num_stride2_blocks(image_size, who):
    """How many ×2 resolution steps lie between 4×4 and image_size (3 for 64×64)."""
    steps = math.log2(image_size / 4) if image_size > 0 else -1
    if image_size < 16 or steps != int(steps):
        raise ValueError(f"{who}: image_size must be a power of two >= 16, got {image_size}")
    return int(steps)


UPSAMPLE_MODES = ("transpose", "nearest")


def _up2(c_in, c_out, upsample):
    """One ×2 step of G: (N, c_in, H, W) → (N, c_out, 2H, 2W).

    'transpose': ConvTranspose2d(k4 s2 p1), the paper's. 'nearest': Upsample(2) then
    Conv2d(k3 s1 p1), the resize-convolution of Odena et al. (2016), which has no built-in
    2×2-periodic (checkerboard) pattern; see ``examples/explore.py checkerboard``.
    """
    if upsample == "transpose":
        return [ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    return [Upsample(2), Conv2d(c_in, c_out, 3, 1, 1, bias=False)]


class Generator(Module):
    """z (N, latent_dim, 1, 1) → image (N, 3, image_size, image_size) in [-1, 1].

    ``upsample='nearest'`` replaces every stride-2 ConvTranspose2d by Upsample(2) + Conv2d(k3 s1 p1)
    (the first 1×1 → 4×4 layer stays a transposed convolution).
    """

    def __init__(self, latent_dim=100, features=64, image_size=64, channels=3, upsample="transpose"):
        n = _num_stride2_blocks(image_size, "Generator")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"Generator: upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {upsample!r}")
        self.latent_dim, self.features, self.image_size = latent_dim, features, image_size
        self.upsample = upsample
        width = features * 2 ** (n - 1)                  # 8F for 64×64
        layers = [ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False), BatchNorm2d(width), ReLU()]
        for _ in range(n - 1):
            layers += [*_up2(width, width // 2, upsample), BatchNorm2d(width // 2), ReLU()]
            width //= 2
        layers += [*_up2(width, channels, upsample), Tanh()]
        self.main = Sequential(*layers)
        self.workspace = self.share_workspace()          # its layers run one at a time: one scratch set

    def forward(self, z):
        if z.ndim == 2:                                  # accept (N, Z) as well as (N, Z, 1, 1)
            z = z.reshape(z.shape[0], z.shape[1], 1, 1)
        return self.main(z)

    def backward(self, dout, input_grad=False):
        """Add dL/dθ into every parameter's .grad; return dL/dz only if ``input_grad``.

        z is sampled noise, so by default its gradient (the first layer's second matrix
        product) is skipped and None is returned; see ``Module.needs_input_grad``.
        """
        return _backward_first_layer_switch(self.main, dout, input_grad)


class Discriminator(Module):
    """image (N, 3, image_size, image_size) → logits (N,); no sigmoid (the loss takes logits).

    Two regularisers of D for experiments, both off in every recipe (``--d-spectral-norm``,
    ``--d-minibatch-std`` of examples/pokemon.py switch them on):
    ``spectral_norm=True`` wraps every convolution in ``SpectralNorm`` (W/σ(W), Miyato et
    al. 2018; SN-GAN's D has no BatchNorm, so BatchNorm goes too); ``minibatch_std=True``
    puts ``MinibatchStd`` (ProGAN) before the last convolution, which then reads 8F + 1
    channels: a D that sees how varied the batch is can catch a G that draws one sprite.
    """

    def __init__(self, features=64, image_size=64, channels=3, batchnorm_first=False, spectral_norm=False,
                 minibatch_std=False):
        n = _num_stride2_blocks(image_size, "Discriminator")
        self.features, self.image_size = features, image_size
        conv = (lambda *a: SpectralNorm(Conv2d(*a, bias=False))) if spectral_norm else \
            (lambda *a: Conv2d(*a, bias=False))
        norm = (lambda c: []) if spectral_norm else (lambda c: [BatchNorm2d(c)])
        layers = [conv(channels, features, 4, 2, 1)]
        layers += norm(features) if batchnorm_first else []             # d2l's variant has it
        layers += [LeakyReLU(0.2)]
        width = features
        for _ in range(n - 1):
            layers += [conv(width, width * 2, 4, 2, 1), *norm(width * 2), LeakyReLU(0.2)]
            width *= 2
        layers += [MinibatchStd(), conv(width + 1, 1, 4, 1, 0)] if minibatch_std else [conv(width, 1, 4, 1, 0)]
        self.main = Sequential(*layers)
        self.workspace = self.share_workspace()

    def forward(self, x):
        logits = self.main(x)                            # (N, 1, 1, 1)
        return logits.reshape(logits.shape[0])

    def backward(self, dout, input_grad=True):
        """dout (N,) -> dL/dx (N, 3, H, W), adding dL/dθ into every parameter's .grad.

        ``input_grad=False`` — D's own update, where the images need no gradient — skips
        the first conv's input gradient (a matrix product and a col2im) and returns None.
        """
        return _backward_first_layer_switch(self.main, dout.reshape(dout.shape[0], 1, 1, 1), input_grad)


def _backward_first_layer_switch(main, dout, input_grad):
    """``main.backward(dout)`` with main[0].needs_input_grad = ``input_grad`` for this call only."""
    first = main[0]
    first.needs_input_grad = input_grad
    try:
        return main.backward(dout)
    finally:
        first.needs_input_grad = True


RECIPES = {
    # The paper's recipe, as the DCGAN deck gives it: mean BCE, no BN on D's input layer,
    # conv weights N(0, 0.02), BN γ N(1, 0.02) and β 0, Adam(2e-4, β1 0.5).
    "paper": dict(lr=2e-4, beta1=0.5, reduction="mean", batchnorm_first=False, init=dcgan_init),
    # d2l.ai's chapter: BN on D's first block, every parameter N(0, 0.02), lr 0.005, summed BCE.
    "d2l": dict(lr=5e-3, beta1=0.5, reduction="sum", batchnorm_first=True, init=normal_init),
    # The paper's, with D kept from memorising a small data set: DiffAugment (colour,
    # translation 1/8, cutout 1/2) on everything D sees; its pictures are drawn by the moving
    # average of G's weights (ema.py, β 0.999), which never changes a training step.
    # benchmarks/QUALITY.md measures both.
    "sprites": dict(lr=2e-4, beta1=0.5, reduction="mean", batchnorm_first=False, init=dcgan_init,
                    augment="color,translation,cutout", ema=0.999),
}


def augmentation(recipe, rng, instance_noise=0.0, p=1.0, policy=None):
    """What D is shown of an image, drawing from ``rng``: the recipe's ``DiffAugment`` (or one of
    ``policy``, e.g. 'color,translation'; '' for none), each map applied with probability ``p``, and,
    if ``instance_noise`` > 0, ``InstanceNoise(instance_noise)`` after it (both: a Sequential);
    None when there is neither (paper, d2l without noise)."""
    policy = RECIPES[recipe].get("augment") if policy is None else policy
    chain = ([DiffAugment(policy, rng=rng, p=p)] if policy else []) + \
        ([InstanceNoise(instance_noise, rng=rng)] if instance_noise > 0 else [])
    return None if not chain else chain[0] if len(chain) == 1 else Sequential(*chain)


def build(recipe="paper", latent_dim=100, features=64, image_size=64, seed=0, upsample="transpose",
          d_spectral_norm=False, d_minibatch_std=False):
    """G and D for ``recipe`` ('paper', 'd2l' or 'sprites'), initialised from ``seed``; ``upsample``: G's ×2 steps;
    ``d_spectral_norm``, ``d_minibatch_std``: D's regularisers (see ``Discriminator``)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    r = RECIPES[recipe]
    G = Generator(latent_dim, features, image_size, upsample=upsample)
    D = Discriminator(features, image_size, batchnorm_first=r["batchnorm_first"], spectral_norm=d_spectral_norm,
                      minibatch_std=d_minibatch_std)
    rng = np.random.default_rng(seed)
    r["init"](G, rng)
    r["init"](D, rng)
    D.share_workspace(G.workspace)       # a training step runs G and D one after the other: one scratch set
    return G, D


class AdaptiveAugment:
    """StyleGAN2-ADA's control of the augmentation probability p (Karras et al. 2020).

    D overfitting shows in its outputs on the (augmented) real images: r_t = E[sign(D(x))]
    goes to 1 as D grows certain about every training image. Every ``interval`` steps,

        p ← clip(p + sign(r_t − target)·N·interval / (kimg·1000), 0, 1)

    over the logits of those steps (N per step): p rises while D is too sure of the reals and
    falls when it is not. ADA's target is 0.6, its interval 4 steps and its speed 500 kimg
    (p could go from 0 to 1 in 500,000 images); the default here, 100 kimg, lets p cross
    0 → 1 in ~3,000 steps of batch 32, within the demo's 20,160. p starts at 0 and is
    written into ``augment.p`` (a ``DiffAugment``). The signs are summed on the device; the
    adjustment reads that sum once per interval (on a GPU one wait every ``interval`` steps).
    """

    def __init__(self, augment, target=0.6, interval=4, kimg=100.0, p=0.0):
        if not 0 < target < 1 or interval < 1 or not kimg > 0:
            raise ValueError(f"AdaptiveAugment: need 0 < target < 1, interval >= 1, kimg > 0; "
                             f"got {target}, {interval}, {kimg}")
        self.augment, self.target, self.interval, self.kimg = augment, target, interval, kimg
        self.augment.p = self.p = p
        self.signs, self.count, self.steps = 0.0, 0, 0

    def observe(self, logits_real):
        """Add one step's real logits (N,); adjust p after every ``interval`` steps."""
        self.signs = self.signs + get_array_module(logits_real).sign(logits_real).sum()
        self.count += len(logits_real)
        self.steps += 1
        if self.steps % self.interval == 0:
            r_t = float(self.signs) / self.count
            adjust = math.copysign(self.count / (self.kimg * 1000), r_t - self.target) if r_t != self.target else 0.0
            self.augment.p = self.p = min(max(self.p + adjust, 0.0), 1.0)
            self.signs, self.count = 0.0, 0

    def state(self):
        """[p, steps, the signs summed and the logits counted since the last adjustment] for a checkpoint."""
        return [self.p, float(self.steps), float(self.signs), float(self.count)]

    def load_state(self, values):
        self.augment.p = self.p = float(values[0])
        self.steps, self.signs, self.count = int(values[1]), float(values[2]), int(values[3])


LOSSES = ("bce", "hinge")


def make_loss(loss, reduction):
    """D's loss ('bce': BCEWithLogitsLoss, the paper's; 'hinge': HingeLoss, whose ``generator`` is G's)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    return BCEWithLogitsLoss(reduction=reduction) if loss == "bce" else HingeLoss(reduction=reduction)


def candidates(augment, rng, flip=False, ada_target=0.0, ada_kimg=100.0, lecam=0.0, bcr=0.0):
    """The ``train_step`` options of issue 26 that keep state from step to step, for those that are on
    (a dict of keywords; {} with all off): ``flip`` a RandomFlip(½) of the reals drawing from ``rng``;
    ``ada_target`` > 0 an AdaptiveAugment of ``augment``'s DiffAugment; ``lecam`` > 0 a LeCam of that weight;
    ``bcr`` > 0 a Consistency (bCR) of that weight."""
    options = {}
    if flip:
        options["flip"] = RandomFlip(0.5, rng=rng)
    if ada_target:
        chain = list(augment) if isinstance(augment, Sequential) else [augment]
        diff = next((m for m in chain if isinstance(m, DiffAugment)), None)
        if diff is None:
            raise ValueError("ada_target: the adaptive probability needs an augmentation (--recipe sprites)")
        options["ada"] = AdaptiveAugment(diff, target=ada_target, kimg=ada_kimg)
    if lecam:
        options["lecam"] = LeCam(lecam)
    if bcr:
        if augment is None:
            raise ValueError("bcr: consistency under augmentation needs D's inputs augmented: a recipe with "
                             "DiffAugment (--recipe sprites)")
        options["bcr"] = Consistency(bcr)
    return options


def train_step(G, D, opt_G, opt_D, real, z, loss_fn=None, stats=None, augment=None, real_label=1.0,
               flip=None, ada=None, lecam=None, topk=None, bcr=None):
    """One DCGAN step: update D once on a real and a fake batch, then G once. Returns (loss_D, loss_G).

    real (N, 3, H, W) in [-1, 1]; z (N, Z, 1, 1). With ℓ(logit, label) the BCE on logits:

      D step   loss_D = ½·[ℓ(D(x), 1) + ℓ(D(G(z)), 0)]       D's gradients from both halves ADD
      G step   loss_G = ℓ(D(G(z)), 1)                        the non-saturating loss of the paper;
               its gradient flows back through D (whose parameter gradients are switched off,
               so D is neither changed nor left with stale .grad) into G.

    The losses come back as 0-d arrays of the backend (no host sync); ``float()`` them to log.
    If ``stats`` is a dict it receives D(x) and D(G(z)): the mean probability D gives a real
    and a fake image during the D step.

    Options of the 'sprites' recipe (both off by default, which is the paper's step exactly):
      ``augment``     a ``DiffAugment`` (or any map with a backward: ``augmentation`` chains
                      instance noise after it): D sees T(x) and T(G(z)) with fresh random T each
                      time, and G's gradient comes back through it: dL/dfake = Tᵀ(dL/dT(fake)).
      ``real_label``  the target of real images in D's loss (0.9: one-sided label smoothing,
                      Salimans et al. 2016); fakes stay at 0 and G's target stays 1.
    Issue 26's candidates, each off (None) by default; ``_candidate_step`` runs them:
      ``loss_fn``     a ``HingeLoss``: D's hinge, and G's −D(G(z)) (``loss_fn.generator``).
      ``flip``        a ``RandomFlip``: the real images mirrored at random before D sees them.
      ``ada``         an ``AdaptiveAugment``: sees D's real logits, adjusts ``augment``'s p.
      ``lecam``       a ``LeCam``: λ·R added to D's loss (its own gradient on each half's logits);
                      the returned loss_D stays the adversarial part, R goes into ``stats['lecam']``.
      ``topk``        k < N: G's loss over the k fakes D scores highest only (``TopK``).
      ``bcr``         a ``Consistency``: λ·mean((D(T₁u) − D(T₂u))²) added to D's loss for the reals
                      and for the fakes (two draws of ``augment``); its value goes into ``stats['bcr']``.
    """
    if flip is not None or ada is not None or lecam is not None or topk is not None or bcr is not None or \
            hasattr(loss_fn, "generator"):
        return _candidate_step(G, D, opt_G, opt_D, real, z, loss_fn, stats, augment, real_label,
                               flip, ada, lecam, topk, bcr)
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


def _candidate_step(G, D, opt_G, opt_D, real, z, loss_fn, stats, augment, real_label, flip, ada, lecam, topk,
                    bcr=None):
    """``train_step`` with issue 26's candidates: the same two updates, each option where it acts.

    Kept apart so that the plain step above stays the paper's, line for line; with every option
    off this function computes what it does (tests/test_candidates.py checks that too).
    """
    xp = get_array_module(real)
    loss_fn = loss_fn or BCEWithLogitsLoss()
    g_loss = getattr(loss_fn, "generator", None)                  # hinge: G's own loss, no target
    if g_loss is not None and real_label != 1:
        raise ValueError("train_step: real_label (label smoothing) is a BCE option; the hinge loss has no labels")
    N = real.shape[0]
    ones, zeros = xp.ones(N, dtype=real.dtype), xp.zeros(N, dtype=real.dtype)
    seen = augment if augment is not None else (lambda x: x)

    # ---- D step: real → 1, fake → 0 (plus λ·R and bCR's C) ------------------------------
    opt_D.zero_grad()
    target_real = ones if real_label == 1 else xp.full(N, real_label, dtype=real.dtype)
    logits_real, loss_real, reg_real, cr_real = _d_half(D, loss_fn, seen, flip(real) if flip is not None else real,
                                                        target_real, lecam.real if lecam is not None else None, bcr,
                                                        ada)
    fake = G(z)
    logits_fake, loss_fake, reg_fake, cr_fake = _d_half(D, loss_fn, seen, fake, zeros,
                                                        lecam.fake if lecam is not None else None, bcr)
    opt_D.step()
    loss_D = (loss_real + loss_fake) / 2
    if lecam is not None:
        lecam.update(logits_real, logits_fake)

    # ---- G step: through the freshly updated D, on the top k fakes ----------------------
    opt_G.zero_grad()
    D.requires_grad_(False)
    try:
        select = TopK(topk) if topk is not None and topk < N else None
        logits = D(seen(fake))
        chosen = select(logits) if select is not None else logits
        loss_G = g_loss(chosen) if g_loss is not None else loss_fn(chosen, ones[:len(chosen)])
        d_chosen = (g_loss or loss_fn).backward()
        d_seen = D.backward(select.backward(d_chosen) if select is not None else d_chosen)
        G.backward(augment.backward(d_seen) if augment is not None else d_seen)
    finally:
        D.requires_grad_(True)
    opt_G.step()

    if stats is not None:
        stats["d_real"] = sigmoid(logits_real).mean()
        stats["d_fake"] = sigmoid(logits_fake).mean()
        if lecam is not None:
            stats["lecam"] = reg_real + reg_fake
        if bcr is not None:
            stats["bcr"] = cr_real + cr_fake
    return loss_D, loss_G


def _d_half(D, loss_fn, seen, images, target, term, bcr, ada=None):
    """D's forward and backward on one half of its step (the reals or the fakes), each candidate
    where it acts: ADA sees the logits; LeCam's ``term`` and bCR's consistency C add their
    gradients to the loss's. Returns (logits, loss, LeCam's value, C).

    bCR needs D's outputs on a second draw of the augmentation, b = D(T₂u), beside a = D(T₁u):
    b's values first, then a forward and back (the loss, R and dC/da), then b forward again for
    its own backward, −dC/da (D keeps one forward cache: three forwards, two backwards). A
    spectral norm's power iteration moves on at every forward: b's second forward starts from
    the vectors its first did, so it computes the same b, and the vectors are then put back
    where a's forward left them."""
    shown = seen(images)
    if bcr is not None:
        other = seen(images)                                      # T₂: a second, independent draw
        before = _power_vectors(D)
        logits_other = D(other)
    logits = D(shown)
    if ada is not None:
        ada.observe(logits)
    loss = loss_fn(logits, target)
    reg, d_reg = term(logits) if term is not None else (0.0, 0.0)
    cr, d_cr = bcr(logits, logits_other) if bcr is not None else (0.0, 0.0)
    D.backward(loss_fn.backward(0.5) + d_reg + d_cr, input_grad=False)
    if bcr is not None:
        after = _power_vectors(D)
        _set_power_vectors(before)
        D(other)
        _set_power_vectors(after)
        D.backward(-d_cr, input_grad=False)
    return logits, loss, reg, cr


def _power_vectors(model):
    """Copies of each SpectralNorm's power-iteration vectors u, v in ``model`` ([] without one)."""
    return [(m, m.weight_u.copy(), m.weight_v.copy()) for m in model.modules() if isinstance(m, SpectralNorm)]


def _set_power_vectors(saved):
    for m, u, v in saved:
        m.weight_u[...] = u
        m.weight_v[...] = v
