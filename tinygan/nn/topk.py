"""Top-k selection of logits: G learns only from the fakes D scores highest (Sinha et al. 2020).

logits x (N,); k ≤ N. Forward keeps the k largest, in descending order:
    idx = the indices of the k largest x,   y = x[idx]   (k,)
Backward scatters the gradient back to where each one came from, 0 for the N − k left out:
    dx[idx[j]] = dy[j],   dx[i] = 0 for i ∉ idx
(the masked gradient: the fakes D already rejects teach G nothing this step). Ties are
broken by index, the smaller first, so the selection is deterministic. Cache: ``self.idx``.
"""
from ..backend import get_array_module
from .module import Module


class TopK(Module):
    """x (N,) → its k largest (k,), largest first; backward scatters dy into zeros (N,)."""

    def __init__(self, k):
        if int(k) != k or k < 1:
            raise ValueError(f"TopK: k must be a positive integer, got {k!r}")
        self.k = int(k)

    def extra_repr(self):
        return f"k={self.k}"

    def forward(self, x):
        xp = get_array_module(x)
        if x.ndim != 1 or len(x) < self.k:
            raise ValueError(f"TopK: expected a vector of at least k = {self.k} logits, got shape {tuple(x.shape)}")
        self.n = len(x)
        self.idx = xp.argsort(-x, kind="stable")[:self.k]
        return x[self.idx]

    def backward(self, dout):
        xp = get_array_module(dout)
        if dout.shape != (self.k,):
            raise ValueError(f"TopK.backward: expected dout of shape ({self.k},), got {tuple(dout.shape)}")
        dx = xp.zeros(self.n, dtype=dout.dtype)
        dx[self.idx] = dout
        return dx


def topk_schedule(n, epoch, gamma=0.99, minimum=0.5):
    """Sinha et al.'s k for a batch of n at epoch ``epoch`` (0-based): max(⌊n·γ^epoch⌋, ⌊minimum·n⌋), at least 1.

    γ = 0.99 per epoch takes k from the whole batch to half of it in ~69 epochs."""
    return max(int(n * gamma ** epoch), int(minimum * n), 1)
