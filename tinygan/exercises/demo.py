"""``train``: a short DCGAN run with the learner's piece swapped in, beside the reference's run.

Both runs are the paper's DCGAN at 16×16 (features 8, latent 16, batch 8, Adam lr 1e-3,
β1 0.5) in float64 and reference mode, from the same weights, on the same made-up images
(coloured squares) and the same noise. One of them has the learner's piece in it:

    im2col, col2im     patched into ``tinygan.nn.conv`` for the run (every reference-mode convolution)
    a layer            every such layer of G and D becomes an instance of the learner's class
    bce_with_logits    the loss of every step;   adam: both optimizers;   gan_step: the step itself

A correct piece computes the same sums, perhaps in another order, so the two runs' losses
agree to rounding; the verdict allows TOLERANCE (relative) at every step. A wrong piece
usually parts from the reference at the first or second step. Nothing is written to disk,
and every swap is undone when the run ends.
"""
import contextlib
import time
from unittest import mock

import numpy as np

from .. import reference
from ..dcgan import build, train_step
from ..nn import BCEWithLogitsLoss
from ..nn import conv as conv_module
from ..optim import Adam
from .verdict import Fail, call

TOLERANCE = 1e-6            # |yours − reference| ≤ TOLERANCE·max(1, |reference|) for loss_D and loss_G at every step
SIZE, FEATURES, LATENT, BATCH, LR = 16, 8, 16, 8, 1e-3


def images(n=64, seed=1):
    """n made-up RGB images in [-1, 1]: a square of one colour on a dark background."""
    rng = np.random.default_rng(seed)
    x = np.full((n, 3, SIZE, SIZE), -1.0)
    for i in range(n):
        top, left = rng.integers(0, SIZE // 2, 2)
        side = int(rng.integers(4, SIZE // 2 + 1))
        x[i, :, top:top + side, left:left + side] = rng.uniform(-1, 1, (3, 1, 1))
    return x


def _swap_layers(models, base, impl):
    """Make every instance of ``base`` in ``models`` an instance of the learner's subclass; how many."""
    count = 0
    for model in models:
        for m in model.modules():
            if type(m) is base:
                m.__class__ = impl
                count += 1
    return count


def _setup(ex, impl, models):
    """(what was swapped, the step function, the loss, the optimizer class, a context of patches)."""
    step, loss, opt, patches = train_step, BCEWithLogitsLoss(), Adam, contextlib.nullcontext()
    if impl is None:
        return "the library's reference", step, loss, opt, patches
    if ex.name in ("im2col", "col2im"):
        patches = mock.patch.object(conv_module, ex.name, impl)
        where = "every convolution's forward and every transposed convolution's backward" if ex.name == "im2col" \
            else "every transposed convolution's forward and every convolution's input gradient"
        return f"your {ex.name} in {where}", step, loss, opt, patches
    if ex.base is not None and ex.name not in ("bce_with_logits", "adam"):
        n = _swap_layers(models, ex.base, impl)
        return f"your {ex.attr} as the DCGAN's {n} {ex.base.__name__} layers", step, loss, opt, patches
    if ex.name == "bce_with_logits":
        return "your BCEWithLogitsLoss as the loss of D and G", step, impl(), opt, patches
    if ex.name == "adam":
        return "your Adam as the optimizer of D and G", step, loss, impl, patches
    return "your train_step as the step", impl, loss, opt, patches


def run(ex, impl=None, steps=40, path=None):
    """[(loss_D, loss_G)] of ``steps`` training steps, and a description of what ran."""
    data, rng = images(), np.random.default_rng(0)
    G, D = build("paper", latent_dim=LATENT, features=FEATURES, image_size=SIZE, seed=0)
    G, D = G.double(), D.double()
    what, step, loss_fn, Opt, patches = _setup(ex, impl, (G, D))
    opt_G = call(f"train {ex.name}: making the optimizers", path, Opt, G.parameters(), lr=LR, betas=(0.5, 0.999))
    opt_D = call(f"train {ex.name}: making the optimizers", path, Opt, D.parameters(), lr=LR, betas=(0.5, 0.999))
    losses = []
    with reference.mode(), patches, np.errstate(all="ignore"):
        for t in range(steps):
            real = data[rng.choice(len(data), BATCH, replace=False)]
            z = rng.standard_normal((BATCH, LATENT, 1, 1))
            loss_D, loss_G = call(f"train {ex.name}, step {t + 1}", path, step, G, D, opt_G, opt_D, real, z, loss_fn)
            losses.append((float(loss_D), float(loss_G)))
    return losses, what


def compare(ex, impl, steps=40, path=None, out=print):
    """Run the reference and the learner's piece, print the two loss curves side by side and the verdict.

    Returns (ok, first step that parts or None, largest difference)."""
    t0 = time.perf_counter()
    ref, _ = run(ex, None, steps)
    mine, what = run(ex, impl, steps, path)
    out(f"train {ex.name}: {what}, in the paper's DCGAN ({SIZE}×{SIZE} images, {FEATURES} features, batch {BATCH}, "
        f"lr {LR:g}, float64), {steps} steps beside the library's reference from the same weights, images and noise")
    out(f"{'step':>5}  {'loss_D yours':>12} {'reference':>10}  {'loss_G yours':>12} {'reference':>10}")
    parts, largest = None, 0.0
    for t, ((d, g), (dr, gr)) in enumerate(zip(mine, ref), 1):
        for name, a, b in (("loss_D", d, dr), ("loss_G", g, gr)):
            diff = abs(a - b) if np.isfinite(a) else np.inf
            largest = max(largest, diff)
            if parts is None and not diff <= TOLERANCE * max(1.0, abs(b)):
                parts = (t, name, a, b)
        if t == 1 or t % 5 == 0 or t == steps or (parts and parts[0] == t):
            out(f"{t:>5}  {d:>12.6f} {dr:>10.6f}  {g:>12.6f} {gr:>10.6f}")
    seconds = time.perf_counter() - t0
    if parts is None:
        out(f"PASS train {ex.name}: it trains like the reference: loss_D and loss_G within {TOLERANCE:g} (relative) "
            f"of the reference's at every one of the {steps} steps; largest difference {largest:.1e} ({seconds:.1f} s)")
        return True, None, largest
    t, name, a, b = parts
    out(f"FAIL train {ex.name}: it does not train like the reference: {name} parts from it at step {t}, "
        f"{a:.6f} against {b:.6f} (tolerance {TOLERANCE:g} relative); check {ex.name} names what is wrong")
    return False, t, largest


def train_or_fail(ex, impl, steps, path, out):
    """``compare``, with NumPy's global random state (which ``build`` draws weights from) put back after."""
    state = np.random.get_state()
    try:
        return compare(ex, impl, steps, path, out)
    except Fail as fail:
        out(fail.text())
        return False, 0, np.inf
    finally:
        np.random.set_state(state)
