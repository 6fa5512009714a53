"""Pictures: image grids of samples and the loss plot.

Images are (N, 3, H, W) arrays in [-1, 1] (the generator's tanh range), on either
backend; grids are uint8 (rows·(H+pad)+pad, cols·(W+pad)+pad, 3) arrays saved as PNG.
"""
import math

import numpy as np

from . import backend
from .io import atomic_write


# ---------------------------------------------------------------------------------------
# pixels: uint8 <-> [-1, 1]
# ---------------------------------------------------------------------------------------

def from_uint8(pixels):
    """(N, H, W, 3) or (H, W, 3) uint8 -> (N, 3, H, W) or (3, H, W) float32, x = u/127.5 - 1.

    0 maps to -1 and 255 to 1 exactly.
    """
    pixels = np.asarray(pixels)
    return np.moveaxis(_scale(pixels), -1, -3)


def to_uint8(images):
    """(N, 3, H, W) or (3, H, W) floats in [-1, 1] -> (N, H, W, 3) or (H, W, 3) uint8.

    u = round((x + 1) * 127.5), clipped to 0..255; the inverse of ``from_uint8``. Takes
    NumPy or CuPy arrays (generator samples) and returns NumPy, ready for Pillow.
    """
    x = backend.to_numpy(images).astype(np.float32)
    u = np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(u, -3, -1))


def _scale(u):
    """uint8 (any shape) -> float32 in [-1, 1]."""
    return u.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def make_grid(images, nrow=None, padding=2, pad_value=255):
    """Tile (N, 3, H, W) images into one uint8 (rows·(H+p)+p, nrow·(W+p)+p, 3) picture, row by row."""
    pixels = to_uint8(images)
    n, h, w, c = pixels.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = pixels[i]
    return grid


def save_png(array, path, scale=1):
    """Save a uint8 (H, W, 3) array as PNG, atomically; ``scale`` enlarges it with nearest pixels."""
    from PIL import Image
    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_write(path) as f:
        img.save(f, format="PNG")


def save_grid(images, path, nrow=None, scale=1):
    """Save (N, 3, H, W) images in [-1, 1] as one PNG grid."""
    save_png(make_grid(images, nrow), path, scale)


def save_loss_plot(loss_D, loss_G, path, steps_per_epoch=None, title="DCGAN losses"):
    """Plot per-step loss_D and loss_G (with a moving average) to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    for values, name, color in ((loss_D, "loss_D", "tab:blue"), (loss_G, "loss_G", "tab:orange")):
        v = np.asarray(values, dtype=np.float64)
        steps = np.arange(1, len(v) + 1)
        ax.plot(steps, v, color=color, alpha=0.25, lw=0.8)
        k = max(1, min(len(v) // 20, 50))
        if len(v) >= k > 1:
            smooth = np.convolve(v, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], smooth, color=color, lw=1.6, label=f"{name} (mean of {k})")
        else:
            ax.plot(steps, v, color=color, lw=1.6, label=name)
    ax.set_xlabel("step" + (f" ({steps_per_epoch} per epoch)" if steps_per_epoch else ""))
    ax.set_ylabel("BCE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def save_figure(fig, path):
    """Lay out a matplotlib figure, write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)
