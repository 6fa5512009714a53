"""An exponential moving average of a model's weights, for sampling (Yazıcı et al. 2019).

G's weights wander from step to step as G and D chase each other; an average over the
last few hundred steps draws steadier, often cleaner samples than the last weights do.
After every optimizer step:

    θ̄ ← β·θ̄ + (1 − β)·θ            β = ``decay`` (0.999: about the last 1,000 steps)

The average is never trained: ``ema.model`` is a copy of the model whose parameters hold
θ̄ (buffers, e.g. BatchNorm's running statistics, are copied from the live model at each
update). It has no backward pass, and the training step never sees it.

Two refinements from StyleGAN2-ADA (Karras et al. 2020), both off unless asked for:

* **A ramp of the half-life** (``rampup``). θ̄ starts at G's initial weights, and with β =
  0.999 it takes ~700 steps to forget them. ADA lets the half-life grow with the run: the
  half-life of β is h = ln ½ / ln β steps; at step t (steps done before this update) it is
      h_t = min(h, rampup·t),   β_t = ½^(1/h_t)     (β_0 = 0: the first update copies θ)
  so with rampup 0.05 the average covers the last 5% of the run until that reaches h.
* **BatchNorm statistics of the average itself** (``reestimate_batchnorm``). The buffers are
  G's running statistics, gathered by G's weights, not by θ̄'s; drawing θ̄ in eval mode
  (``sample --bn running``) normalises its activations with another network's statistics.
  A few forward passes of θ̄ in train mode, averaged with equal weights (as PyTorch's
  ``momentum=None``), give it its own.
"""
import copy
import math

from .backend import get_array_module


class EMA:
    """``EMA(G, decay).update()`` after each step; sample from ``ema.model``.

    ``rampup`` > 0: ``update(step)`` uses ADA's ramped β_t (module docstring) instead of ``decay``.
    """

    def __init__(self, model, decay=0.999, rampup=0.0):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA: decay must be in [0, 1), got {decay}")
        if not rampup >= 0.0:
            raise ValueError(f"EMA: rampup must be >= 0 (0: no ramp), got {rampup}")
        self.decay, self.rampup = decay, rampup
        self.model = copy.deepcopy(model)
        self.pairs = list(zip(self.model.parameters(), model.parameters()))
        self.buffers = [(a, b) for (_, a), (_, b) in zip(self.model.named_buffers(), model.named_buffers())]

    def decay_at(self, step):
        """β for the update after ``step`` steps: ``decay``, or with a ramp ½^(1/min(h, rampup·step))."""
        if not self.rampup:
            return self.decay
        half_life = min(math.log(0.5) / math.log(self.decay), self.rampup * step) if self.decay > 0 else 0.0
        return 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0

    def update(self, step=None):
        """θ̄ ← β·θ̄ + (1 − β)·θ for every parameter, in place; buffers copied. ``step``: the steps
        done before this update (needed with a ramp)."""
        if self.rampup and step is None:
            raise ValueError("EMA.update: an EMA with a ramp needs the step (steps done before this update)")
        decay = self.decay_at(step)
        for avg, p in self.pairs:
            xp = get_array_module(p.data)
            avg.data *= avg.data.dtype.type(decay)
            xp.add(avg.data, p.data * p.data.dtype.type(1 - decay), out=avg.data)
        for avg, b in self.buffers:
            avg[...] = b


def reestimate_batchnorm(model, inputs):
    """Set every BatchNorm's running mean and variance in ``model`` to the equal-weight average of
    its batch statistics over the forward passes of ``inputs`` (an iterable of batches: for G,
    batches of z), as PyTorch's BatchNorm with ``momentum=None`` after ``reset_running_stats()``.

    Batch i (1-based) moves each statistic with momentum 1/i: r ← (1 − 1/i)·r + (1/i)·s, so
    after n batches r is the mean of the n batch values (the first overwrites whatever was
    there). Parameters and every module's train/eval mode are left as they were; the model
    is changed only in those buffers (copy it first to keep the originals). Returns ``model``.
    """
    norms = [m for m in model.modules() if hasattr(m, "running_mean") and hasattr(m, "momentum")]
    saved = [(m, m.momentum) for m in norms]
    modes = [(m, m.training) for m in model.modules()]
    model.train(True)
    try:
        for i, x in enumerate(inputs, start=1):
            for m in norms:
                m.momentum = 1.0 / i
            model(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        for m, mode in modes:
            m.training = mode
    return model

