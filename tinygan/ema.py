"""An exponential moving average of a model's weights, for sampling (Yazıcı et al. 2019).

G's weights wander from step to step as G and D chase each other; an average over the
last few hundred steps draws steadier, often cleaner samples than the last weights do.
After every optimizer step:

    θ̄ ← β·θ̄ + (1 − β)·θ            β = ``decay`` (0.999: about the last 1,000 steps)

The average is never trained: ``ema.model`` is a copy of the model whose parameters hold
θ̄ (buffers, e.g. BatchNorm's running statistics, are copied from the live model at each
update). It has no backward pass, and the training step never sees it.
"""
import copy

from .backend import get_array_module


class EMA:
    """``EMA(G, decay).update()`` after each step; sample from ``ema.model``."""

    def __init__(self, model, decay=0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA: decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.pairs = list(zip(self.model.parameters(), model.parameters()))
        self.buffers = [(a, b) for (_, a), (_, b) in zip(self.model.named_buffers(), model.named_buffers())]

    def update(self):
        """θ̄ ← β·θ̄ + (1 − β)·θ for every parameter, in place; buffers copied."""
        for avg, p in self.pairs:
            xp = get_array_module(p.data)
            avg.data *= avg.data.dtype.type(self.decay)
            xp.add(avg.data, p.data * p.data.dtype.type(1 - self.decay), out=avg.data)
        for avg, b in self.buffers:
            avg[...] = b

