"""Looking inside D: its first-layer filters, and saliency — which pixels its verdict depends on.

Notation: N images (N, 3, H, W); D(x) the logit (N,); F filters of size K×K in D's first conv.

Filters. D's first Conv2d has weight (F, 3, K, K): F small RGB pictures that each first-layer
unit correlates the image with. Each is scaled by its own largest |value| to [-1, 1] so the
grid shows its pattern. Training starts from random N(0, 0.02) filters and a short run moves
them only part of the way, so the difference trained − initial shows what was learned.

Saliency (Simonyan et al. 2014). The gradient of the logit with respect to the pixels,

    s_n = ∂D(x_n)/∂x_n   (3, H, W)         saliency map: max over channels of |s_n|

is what D.backward already computes: start the backward pass with dout = 1 for every
image and keep the input gradient instead of the parameter gradients.

BatchNorm decides what "D's verdict" means. bn='running' (eval mode): each logit depends
on its own image only and s_n is exactly ∂D(x_n)/∂x_n; but the running statistics average
real AND fake batches, so this D may judge differently from the D that trained. bn='batch'
(train mode, running statistics left untouched): D as it ran in training, on a batch of real
or of fake images; the backward of dout = 1 then gives ∂(Σ_m D(x_m))/∂x_n, which adds to
∂D(x_n)/∂x_n the small coupling through the batch mean and variance (O(1/N)).
"""
import numpy as np

from .. import backend
from ..nn import Conv2d, sampling


def first_conv(D):
    """D's first Conv2d."""
    for m in D.modules():
        if isinstance(m, Conv2d):
            return m
    raise ValueError(f"{type(D).__name__} has no Conv2d")


def first_layer_weights(D):
    """D's first-layer weights as a NumPy (F, 3, K, K) float64 array."""
    return backend.to_numpy(first_conv(D).weight.data).astype(np.float64)


def scale_filters(w):
    """(F, 3, K, K) → the same, each filter divided by its largest |value|: in [-1, 1], ready for make_grid."""
    w = np.asarray(w, dtype=np.float64)
    peak = np.abs(w).reshape(len(w), -1).max(axis=1)
    return (w / np.where(peak > 0, peak, 1.0)[:, None, None, None]).astype(np.float32)


def filter_images(D):
    """D's first-layer filters, each scaled to [-1, 1] by its largest |value|: (F, 3, K, K)."""
    return scale_filters(first_layer_weights(D))


def saliency(D, x, bn="running"):
    """The gradient of D's logits with respect to the images, and the logits: (N, 3, H, W), (N,).

    bn='running': ∂D(x_n)/∂x_n exactly (eval mode). bn='batch': ∂(Σ_m D(x_m))/∂x_n with
    batch statistics, D as in training (see the module docstring). Nothing in D changes:
    its parameter gradients are off during the backward pass (.grad stays as it was), its
    running statistics are restored, and its train/eval mode is put back.
    """
    if bn not in ("running", "batch"):
        raise ValueError(f"saliency: bn must be 'running' or 'batch', got {bn!r}")
    xp = backend.get_array_module(*(p.data for p in D.parameters()))
    x = xp.asarray(x, dtype=D.parameters()[0].data.dtype)
    flags = [(p, p.requires_grad) for p in D.parameters()]
    D.requires_grad_(False)
    try:
        with sampling(D, bn):
            logits = D(x)
            grad = D.backward(xp.ones_like(logits))
    finally:
        for p, flag in flags:
            p.requires_grad = flag
    return grad, logits


def saliency_map(grad):
    """(N, 3, H, W) gradients → (N, H, W) in [0, 1]: max over channels of |grad|, each image scaled by its own maximum."""
    s = np.abs(backend.to_numpy(grad)).max(axis=1)
    peak = s.reshape(len(s), -1).max(axis=1)
    return s / np.where(peak > 0, peak, 1.0)[:, None, None]
