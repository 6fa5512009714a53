"""Pictures for the experiments: grids with numbers on the tiles, rows with a label in front.

Images are (N, 3, H, W) arrays in [-1, 1], as everywhere in tinygan; the results are
uint8 (height, width, 3) arrays for ``images.save_png``. Text is drawn with Pillow's
built-in font, so nothing is downloaded.
"""
import numpy as np

from ..images import make_grid

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def _font(size=12):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                                  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def enlarge(pixels, scale):
    """Nearest-neighbour enlargement of a uint8 (H, W, 3) array by an integer factor."""
    return pixels.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else pixels


def numbered_grid(images, nrow=None, scale=3, padding=2):
    """make_grid with each tile's index (0, 1, …) written in its top-left corner; uint8."""
    from PIL import Image, ImageDraw
    n, _, h, w = images.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    img = Image.fromarray(enlarge(make_grid(images, nrow, padding), scale))
    draw, font = ImageDraw.Draw(img), _font(max(10, 4 * scale))
    for i in range(n):
        r, c = divmod(i, nrow)
        x, y = scale * (padding + c * (w + padding)) + 1, scale * (padding + r * (h + padding)) + 1
        draw.text((x, y), str(i), fill=BLACK, font=font, stroke_width=2, stroke_fill=WHITE)
    return np.asarray(img)


def labelled_rows(rows, scale=3, label_width=120, padding=2, font_size=13):
    """Rows of images, each with a text label on its left: rows = [(label, (k, 3, H, W) or None), …].

    A row whose images are None is a heading (text only). Rows may hold different numbers of
    images; all images must share H, W. Returns uint8 (height, width, 3), white background.
    """
    from PIL import Image, ImageDraw
    strips = [(label, None if x is None else enlarge(make_grid(x, nrow=len(x), padding=padding), scale))
              for label, x in rows]
    width = label_width + max(s.shape[1] for _, s in strips if s is not None)
    heights = [s.shape[0] if s is not None else font_size + 8 for _, s in strips]
    canvas = Image.new("RGB", (width, sum(heights)), WHITE)
    draw, font = ImageDraw.Draw(canvas), _font(font_size)
    y = 0
    for (label, strip), h in zip(strips, heights):
        if strip is not None:
            canvas.paste(Image.fromarray(strip), (label_width, y))
        for j, line in enumerate(label.split("\n")):
            draw.text((4, y + 4 + j * (font_size + 2)), line, fill=BLACK, font=font)
        y += h
    return np.asarray(canvas)


def heatmap(values, cmap="inferno"):
    """(N, H, W) values in [0, 1] → (N, 3, H, W) images in [-1, 1] coloured with a matplotlib colormap."""
    import matplotlib
    rgb = matplotlib.colormaps[cmap](np.clip(values, 0, 1))[..., :3]        # (N, H, W, 3) in [0, 1]
    return (rgb.transpose(0, 3, 1, 2) * 2 - 1).astype(np.float32)


def stack(pictures, gap=8):
    """uint8 pictures one below the other, left-aligned, on white."""
    width = max(p.shape[1] for p in pictures)
    out = []
    for i, p in enumerate(pictures):
        if i:
            out.append(np.full((gap, width, 3), 255, np.uint8))
        out.append(np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(out)
