"""BCEWithLogitsLoss: binary cross-entropy on raw logits, stable for any logit.

For a logit x and a target y ∈ [0, 1] (p = σ(x)):
    ℓ = −[y·log p + (1 − y)·log(1 − p)] = max(x, 0) − x·y + log(1 + e^−|x|)
The right-hand form never exponentiates a positive number, so x = ±1e4 gives a finite
loss and no NaN. Its derivative is dℓ/dx = σ(x) − y.

Reduction 'mean' (PyTorch's default, the DCGAN paper's) divides by the number of
elements n; 'sum' (d2l's chapter) does not. Cache: ``self.x``, ``self.y``.
"""
from ..backend import get_array_module
from .activation import sigmoid
from .module import Module


class BCEWithLogitsLoss(Module):
    """loss = reduce(max(x,0) − x·y + log1p(e^−|x|));  backward: dx = (σ(x) − y)/n · dloss."""

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"BCEWithLogitsLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def forward(self, logits, target):
        xp = get_array_module(logits, target)
        if logits.shape != target.shape:
            raise ValueError(f"BCEWithLogitsLoss: logits of shape {tuple(logits.shape)} and target of "
                             f"shape {tuple(target.shape)} must have the same shape")
        self.x, self.y = logits, target
        per_element = xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))
        total = per_element.sum()
        return total / logits.size if self.reduction == "mean" else total

    def backward(self, dout=1.0):
        """dL/dlogits for an upstream dL/dloss ``dout`` (1 when the loss is the objective)."""
        if getattr(self, "x", None) is None:
            raise RuntimeError("BCEWithLogitsLoss.backward called before forward: compute the loss first")
        if getattr(dout, "shape", ()) not in ((), (1,)):
            raise ValueError(f"BCEWithLogitsLoss.backward: expected a scalar dout (the loss is a scalar), "
                             f"got shape {tuple(dout.shape)}")
        dout = dout.item() if hasattr(dout, "item") else float(dout)     # a host scalar, from any backend
        scale = dout / self.x.size if self.reduction == "mean" else dout
        # in the logits' dtype even when the target is wider (a float64 ``ones(N)``), as
        # PyTorch does: a float64 gradient would turn the whole float32 backward into float64
        return ((sigmoid(self.x) - self.y) * self.x.dtype.type(scale)).astype(self.x.dtype, copy=False)
