"""Sample grids, the loss plot, the progress bar and trimming of transparent borders."""
import io

import numpy as np
import pytest
from PIL import Image

from tinygan.data import load_image
from tinygan.images import RAW_POINTS, envelope, make_grid, save_grid, save_loss_plot
from tinygan.progress import Progress, format_seconds


def test_grid_places_each_image_row_by_row():
    images = np.full((5, 3, 2, 3), -1.0, np.float32)        # 5 black 2×3 images
    images[3] = 1.0                                          # the 4th is white
    grid = make_grid(images, nrow=2, padding=1, pad_value=128)
    assert grid.shape == (3 * (2 + 1) + 1, 2 * (3 + 1) + 1, 3) and grid.dtype == np.uint8
    assert (grid[0] == 128).all() and (grid[:, 0] == 128).all()            # padding
    assert (grid[1:3, 1:4] == 0).all()                                     # image 0 at row 0, col 0
    assert (grid[4:6, 5:8] == 255).all()                                   # image 3 at row 1, col 1
    assert (grid[7:9, 5:8] == 128).all()                                   # no 6th image: padding


def test_save_grid_scales_pixels_and_writes_no_temp_file(tmp_path):
    images = np.linspace(-1, 1, 4 * 3 * 4 * 4, dtype=np.float32).reshape(4, 3, 4, 4)
    save_grid(images, tmp_path / "g.png", scale=3)
    img = np.asarray(Image.open(tmp_path / "g.png"))
    assert img.shape == (3 * 14, 3 * 14, 3)               # 2×2 tiles of 4 px, 2 px padding
    np.testing.assert_array_equal(img[::3, ::3], make_grid(images))
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]


def test_loss_plot_is_a_png(tmp_path):
    rng = np.random.default_rng(0)
    save_loss_plot(rng.uniform(0, 1, 300), rng.uniform(1, 5, 300), tmp_path / "l.png", steps_per_epoch=21)
    img = Image.open(tmp_path / "l.png")
    assert img.format == "PNG" and img.size[0] > 500
    assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 10   # not blank


def test_envelope_is_each_bin_of_steps_smallest_and_largest_value():
    v = np.random.default_rng(1).normal(size=1003)
    x, low, high = envelope(v, 10)
    edges = np.linspace(0, 1003, 11).astype(int)
    np.testing.assert_array_equal(x, edges[:-1] + 1)                        # 1-based steps, as plotted
    for i in range(10):                                                     # the plain way, bin by bin
        assert low[i] == v[edges[i]:edges[i + 1]].min() and high[i] == v[edges[i]:edges[i + 1]].max()


def test_envelope_refuses_more_bins_than_values():
    with pytest.raises(ValueError, match="envelope: 5 bins of 3 values"):
        envelope(np.zeros(3), 5)


def test_long_loss_plot_keeps_a_one_step_spike(tmp_path):
    # beyond RAW_POINTS steps the faint line becomes the band it covers; binning must not lose
    # an outlier: the band of the spike's bin reaches up to it, and the axis shows it
    from tinygan.images import loss_figure, pyplot
    rng = np.random.default_rng(0)
    n = 5 * RAW_POINTS
    loss_D, loss_G = rng.uniform(0.5, 1, n), rng.uniform(1, 2, n)
    loss_G[1234] = 9.0
    fig = loss_figure(loss_D, loss_G, steps_per_epoch=26)
    ax = fig.axes[0]
    bands = ax.collections                                   # fill_between: one band per loss
    assert len(bands) == 2 and len(ax.lines) == 2            # and no line through all 5,000 points
    assert all(len(line.get_xdata()) <= RAW_POINTS for line in ax.lines)
    assert all(line.get_xdata()[-1] == n for line in ax.lines)   # the moving average reaches the last step
    assert max(path.vertices[:, 0].max() for path in bands[0].get_paths()) == n   # and so does the band
    top = max(path.vertices[:, 1].max() for path in bands[1].get_paths())
    assert top == 9.0 and ax.get_ylim()[1] >= 9.0
    pyplot().close(fig)


def test_progress_line_counts_and_final_line_only_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress(4, desc="epoch 1/2", unit="batches", stream=out)
    for i in range(4):
        bar.update(1, postfix=f"loss {i}")
    assert out.getvalue() == ""                          # not a tty: nothing until close
    bar.close()
    line = out.getvalue()
    assert line.startswith("epoch 1/2 [" + "#" * 24 + "] 4/4 batches") and line.endswith("loss 3\n")


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 61, 3600, 3725)] == ["0:00", "1:00", "1:01", "1:00:00", "1:02:05"]


def test_trim_crops_transparent_borders_before_padding():
    a = np.zeros((56, 68, 4), np.uint8)                  # a 68×56 frame, a 10×20 red sprite inside
    a[20:40, 30:40] = (255, 0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, format="PNG")
    buf.seek(0)
    trimmed = load_image(buf, image_size=22, trim=True)  # 12×22 with the 1-px margin → pad to 22×22
    buf.seek(0)
    framed = load_image(buf, image_size=68, trim=False)
    red = (trimmed == (255, 0, 0)).all(axis=-1)
    assert red[1:21, 6:16].all() and red.sum() == 200   # the sprite fills the height
    assert (framed == (255, 0, 0)).all(axis=-1).sum() == 200 and (framed[0, 0] == 255).all()


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    from tinygan.io import atomic_write
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.bin") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644     # not mkstemp's 0600
