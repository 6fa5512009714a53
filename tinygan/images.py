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


# A faint line through every step's loss stops being readable, and gets slow to draw, once the
# steps outnumber the plot's pixel columns (~700): beyond RAW_POINTS it is drawn as the band it
# covers, each bin of steps from its smallest loss to its largest.
RAW_POINTS = 1000


def envelope(values, bins):
    """(x, low, high): ``values`` (n,) cut into ``bins`` runs of steps, each run's first step
    (1-based) and its smallest and largest value — what a line through all n would cover.
    Needs 0 < bins ≤ n (``loss_figure`` calls it with n > RAW_POINTS and RAW_POINTS // 2 bins)."""
    if not 0 < bins <= len(values):
        raise ValueError(f"envelope: {bins} bins of {len(values)} values; needs 0 < bins <= len(values)")
    edges = np.linspace(0, len(values), bins + 1).astype(np.int64)
    starts = edges[:-1]
    return starts + 1, np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)


def pyplot():
    """matplotlib.pyplot on its file-only backend (Agg). Its first import and first figure take
    most of a second; ``callbacks.LossPlot`` calls this at the start of a run for that reason."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_loss_plot(loss_D, loss_G, path, steps_per_epoch=None, title="DCGAN losses"):
    """Plot per-step loss_D and loss_G (with a moving average) to ``path`` (PNG)."""
    save_figure(loss_figure(loss_D, loss_G, steps_per_epoch, title), path)


def loss_figure(loss_D, loss_G, steps_per_epoch=None, title="DCGAN losses"):
    """The figure of ``save_loss_plot``: each loss faint (a line, or its band when long) and its moving average."""
    fig, ax = pyplot().subplots(figsize=(7, 3.5), dpi=110)
    for values, name, color in ((loss_D, "loss_D", "tab:blue"), (loss_G, "loss_G", "tab:orange")):
        v = np.asarray(values, dtype=np.float64)
        steps = np.arange(1, len(v) + 1)
        if len(v) <= RAW_POINTS:
            ax.plot(steps, v, color=color, alpha=0.25, lw=0.8)
        else:
            x, low, high = envelope(v, RAW_POINTS // 2)
            # each bin drawn flat from its first step to the next bin's ("post"); the last to the last step
            ax.fill_between(np.append(x, len(v)), np.append(low, low[-1]), np.append(high, high[-1]),
                            color=color, alpha=0.25, lw=0, step="post")
        k = max(1, min(len(v) // 20, 50))
        if len(v) >= k > 1:
            smooth = np.convolve(v, np.ones(k) / k, mode="valid")
            # a mean of 50 barely moves from one step to the next: at most RAW_POINTS of it, the last step's included
            keep = np.unique(np.linspace(0, len(smooth) - 1, min(len(smooth), RAW_POINTS)).round().astype(np.int64))
            ax.plot(steps[k - 1:][keep], smooth[keep], color=color, lw=1.6, label=f"{name} (mean of {k})")
        else:
            ax.plot(steps, v, color=color, lw=1.6, label=name)
    ax.set_xlabel("step" + (f" ({steps_per_epoch} per epoch)" if steps_per_epoch else ""))
    ax.set_ylabel("BCE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def save_figure(fig, path):
    """Lay out a matplotlib figure, write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt                   # the caller's backend, whichever made the figure

    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# progress.gif: the sample grid of every epoch as one animation
# ---------------------------------------------------------------------------------------

def save_gif(frames, path, duration_ms=100, last_frame_ms=None, loop=0):
    """Save uint8 (H, W, 3) frames (arrays or Pillow images) as an animated GIF, atomically.

    duration_ms:   how long each frame shows; last_frame_ms, if given, for the last one
    loop:          0 repeats forever

    A GIF frame has at most 256 colours: each frame gets its own palette by Pillow's fast
    octree quantiser, without dithering (sprites have flat colours; Pillow's default for an
    RGB frame, median cut, is far slower). Pillow merges identical consecutive
    frames into one, adding their durations.
    """
    from PIL import Image
    frames = [f if isinstance(f, Image.Image) else Image.fromarray(_rgb_uint8(f)) for f in frames]
    if not frames:
        raise ValueError(f"save_gif: no frames to write to {path}")
    frames = [f if f.mode == "P" else _to_palette(f) for f in frames]
    durations = [int(duration_ms)] * len(frames)
    if last_frame_ms is not None:
        durations[-1] = int(last_frame_ms)
    with atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=loop)


def _rgb_uint8(frame):
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"save_gif: a frame must be a uint8 (H, W, 3) array, got {frame.dtype} {frame.shape}")
    return frame


def _to_palette(image):
    from PIL import Image
    return image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def save_progress_gif(folder, path=None, max_frames=64, max_size=300, duration_ms=150, last_frame_ms=2000):
    """Write ``folder/progress.gif`` (or ``path``) from the folder's samples_epoch_NNN.png, in epoch order.

    It reads the files, so it shows a resumed run whole. Every epoch's grid is a frame until
    there are more than ``max_frames``; then every 2nd epoch's, then every 4th (…), always
    with the last epoch, which is held for ``last_frame_ms``. Frames larger than
    ``max_size`` pixels are shrunk by a whole factor (the grids are saved at scale 2: back
    to one pixel per pixel). Returns the number of frames (0, and nothing written, when
    the folder holds no grid yet).

    Cheap enough to call after every epoch: each frame is decoded and quantised once per
    process and kept (``_GIF_FRAMES``); the power-of-two strides make the frames chosen at
    every stride a subset of those of the stride before, so a new epoch decodes one file.
    """
    import os
    import re

    from PIL import Image
    folder = os.fspath(folder)
    path = os.path.join(folder, "progress.gif") if path is None else path
    grids = sorted((int(m.group(1)), m.group(0))
                   for m in (re.fullmatch(_SAMPLES_NAME, name) for name in os.listdir(folder)) if m)
    chosen = [os.path.join(folder, name) for _, name in _every_stride(grids, max_frames)]
    frames, keep = [], {}
    for file in chosen:
        try:
            st = os.stat(file)
            key = (file, st.st_mtime_ns, st.st_size, max_size)
            frame = _GIF_FRAMES.get(key)
            if frame is None:
                with Image.open(file) as img:
                    img = img.convert("RGB")
                factor = -(-max(img.size) // max_size)
                frame = _to_palette(img.reduce(factor) if factor > 1 else img)
        except (OSError, SyntaxError, ValueError):          # a file being replaced, a broken one
            continue
        keep[key] = frame
        frames.append(frame)
    _GIF_FRAMES.clear()
    _GIF_FRAMES.update(keep)
    if not frames:
        return 0
    size = frames[-1].size                                   # a resumed run may have changed n_samples
    frames = [f if f.size == size else f.resize(size, Image.NEAREST) for f in frames]
    save_gif(frames, path, duration_ms, last_frame_ms)
    return len(frames)


_SAMPLES_NAME = r"samples_epoch_(\d+)\.png"
_GIF_FRAMES = {}        # (file, mtime_ns, size, max_size) -> its palette frame, for the next call


def _every_stride(items, max_items):
    """items[0::s] plus the last item, with s the smallest power of two that makes them <= max_items."""
    if len(items) <= max_items:
        return list(items)
    stride = 1
    while -(-(len(items) - 1) // stride) + 1 > max(max_items, 2):
        stride *= 2
    return list(items[:-1:stride]) + [items[-1]]
