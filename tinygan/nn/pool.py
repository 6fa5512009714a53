"""GlobalAvgPool2d: the mean of every channel over all its positions.

Notation: N batch, C channels, H, W size.

    forward    y[n, c] = (1 / H·W) Σ_{h,w} x[n, c, h, w]        (N, C, H, W) → (N, C, 1, 1)
    backward   dx[n, c, h, w] = dy[n, c] / H·W                 every position gets an equal share

The output keeps two unit axes, so a 1×1 Conv2d after it is a fully connected layer.
Cache: ``self.x_shape``.
"""
from .. import backend
from .module import Module, check_cache


class GlobalAvgPool2d(Module):
    """(N, C, H, W) → (N, C, 1, 1), the mean over H and W; backward spreads dy evenly."""

    x_shape = None

    def forward(self, x):
        if getattr(x, "ndim", None) != 4:
            raise ValueError(f"GlobalAvgPool2d: expected input of shape (N, C, H, W), got {getattr(x, 'shape', x)}")
        self.x_shape = x.shape
        self.out_shape = (x.shape[0], x.shape[1], 1, 1)
        return backend.get_array_module(x).ascontiguousarray(x.mean(axis=(2, 3), keepdims=True))

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        N, C, H, W = self.x_shape
        xp = backend.get_array_module(dout)
        return xp.broadcast_to(dout / dout.dtype.type(H * W), self.x_shape).copy()    # a new array
