"""Looking inside D: its first-layer filters, and saliency — which pixels its verdict depends on.

Notation: N images (N, 3, H, W); D(x) the logit (N,); F filters of size K×K in D's first conv.

Filters. D's first Conv2d has weight (F, 3, K, K): F small RGB pictures that each first-layer
unit correlates the image with. Each is scaled by its own largest |value| to [-1, 1] so the
grid shows its pattern (edges, colour blobs); a random-init D's look like noise.

Saliency (Simonyan et al. 2014). The gradient of the logit with respect to the pixels,

    s_n = ∂D(x_n)/∂x_n   (3, H, W)         saliency map: max over channels of |s_n|

is what D.backward already computes: start the backward pass with dout = 1 for every
image and keep the input gradient instead of the parameter gradients. D runs in eval mode,
so an image's logit depends on that image alone (in train mode BatchNorm would mix the
batch and the gradient of one logit would reach every image).
"""
import numpy as np

from .. import backend
from ..nn import Conv2d


def first_conv(D):
    """D's first Conv2d."""
    for m in D.modules():
        if isinstance(m, Conv2d):
            return m
    raise ValueError(f"{type(D).__name__} has no Conv2d")


def filter_images(D):
    """D's first-layer weights (F, 3, K, K), each filter divided by its largest |value|: in [-1, 1], ready for make_grid."""
    w = backend.to_numpy(first_conv(D).weight.data).astype(np.float64)
    peak = np.abs(w).reshape(len(w), -1).max(axis=1)
    return (w / np.where(peak > 0, peak, 1.0)[:, None, None, None]).astype(np.float32)


def saliency(D, x):
    """∂D(x_n)/∂x_n for every image, and the logits: (N, 3, H, W), (N,).

    D is switched to eval mode and its parameter gradients are off during the backward pass
    (nothing in D changes; its .grad stays as it was); both are restored afterwards.
    """
    xp = backend.get_array_module(*(p.data for p in D.parameters()))
    x = xp.asarray(x, dtype=D.parameters()[0].data.dtype)
    flags = [(p, p.requires_grad) for p in D.parameters()]
    was_training = D.training
    D.eval()
    D.requires_grad_(False)
    try:
        logits = D(x)
        grad = D.backward(xp.ones_like(logits))
    finally:
        D.train(was_training)
        for p, flag in flags:
            p.requires_grad = flag
    return grad, logits


def saliency_map(grad):
    """(N, 3, H, W) gradients → (N, H, W) in [0, 1]: max over channels of |grad|, each image scaled by its own maximum."""
    s = np.abs(backend.to_numpy(grad)).max(axis=1)
    peak = s.reshape(len(s), -1).max(axis=1)
    return s / np.where(peak > 0, peak, 1.0)[:, None, None]
