"""save_gif and save_progress_gif: frames, their order and colours, subsampling, atomic writes."""
import os

import numpy as np
import pytest
from PIL import Image, ImageSequence

from tinygan import images
from tinygan.images import save_gif, save_progress_gif


def colour(i):
    """A distinct flat colour for frame/epoch i (so Pillow cannot merge two frames)."""
    return (i * 37 % 256, i * 91 % 256, (i * 53 + 7) % 256)


def read_gif(path):
    """[(colour of the centre pixel, duration ms, (W, H))] for every frame of a GIF."""
    with Image.open(path) as im:
        out = []
        for f in ImageSequence.Iterator(im):
            rgb = np.asarray(f.convert("RGB"))
            out.append((tuple(int(c) for c in rgb[rgb.shape[0] // 2, rgb.shape[1] // 2]),
                        f.info.get("duration"), f.size))
        return out


def write_grids(folder, epochs, size=(20, 16)):
    """samples_epoch_NNN.png for each epoch, each a flat colour(epoch) picture of ``size`` (W, H)."""
    folder.mkdir(parents=True, exist_ok=True)
    for e in epochs:
        Image.new("RGB", size, colour(e)).save(folder / f"samples_epoch_{e:03d}.png")


def test_save_gif_frames_in_order_with_their_colours_and_durations(tmp_path):
    frames = [np.full((10, 12, 3), colour(i), np.uint8) for i in range(7)]
    save_gif(frames, tmp_path / "a.gif", duration_ms=50, last_frame_ms=500)
    got = read_gif(tmp_path / "a.gif")
    assert [c for c, _, _ in got] == [colour(i) for i in range(7)]
    assert [d for _, d, _ in got] == [50] * 6 + [500]
    assert {s for _, _, s in got} == {(12, 10)}
    assert os.listdir(tmp_path) == ["a.gif"]                 # atomic: no temp file left


def test_save_gif_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    save_gif([np.zeros((4, 4, 3), np.uint8)], tmp_path / "a.gif")
    before = (tmp_path / "a.gif").read_bytes()

    def disk_full(self, f, **kw):
        f.write(b"GIF89a half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError):
        save_gif([np.full((4, 4, 3), 9, np.uint8)], tmp_path / "a.gif")
    assert (tmp_path / "a.gif").read_bytes() == before and os.listdir(tmp_path) == ["a.gif"]


@pytest.mark.parametrize("frames", [[], [np.zeros((4, 4, 3), np.float32)], [np.zeros((4, 4), np.uint8)]])
def test_save_gif_refuses_what_is_not_uint8_rgb_frames(tmp_path, frames):
    with pytest.raises(ValueError, match="frame"):
        save_gif(frames, tmp_path / "b.gif")
    assert os.listdir(tmp_path) == []


def test_progress_gif_has_every_epoch_in_epoch_order(tmp_path):
    run = tmp_path / "run"
    write_grids(run, [3, 1, 2, 10, 9, 1000])                 # 1000 sorts after 999, not after 100
    Image.new("RGB", (20, 16), "red").save(run / "real.png")  # other pictures are not frames
    (run / "samples_epoch_x.png").write_bytes(b"")
    assert save_progress_gif(run, duration_ms=70, last_frame_ms=900) == 6
    got = read_gif(run / "progress.gif")
    assert [c for c, _, _ in got] == [colour(e) for e in (1, 2, 3, 9, 10, 1000)]
    assert [d for _, d, _ in got] == [70] * 5 + [900]         # the last epoch held longer
    assert sorted(p for p in os.listdir(run) if not p.startswith("samples_epoch_")) == ["progress.gif", "real.png"]


def test_progress_gif_to_another_path_and_nothing_without_grids(tmp_path):
    assert save_progress_gif(tmp_path) == 0 and os.listdir(tmp_path) == []
    write_grids(tmp_path / "run", [1, 2])
    assert save_progress_gif(tmp_path / "run", path=tmp_path / "p.gif") == 2
    assert len(read_gif(tmp_path / "p.gif")) == 2 and not (tmp_path / "run" / "progress.gif").exists()


@pytest.mark.parametrize("epochs, max_frames, stride", [(10, 10, 1), (11, 10, 2), (120, 64, 2), (120, 60, 4),
                                                       (300, 64, 8), (5, 1, 4)])
def test_subsampling_keeps_the_first_and_last_epochs_at_an_even_stride(tmp_path, epochs, max_frames, stride):
    write_grids(tmp_path, range(1, epochs + 1), size=(4, 4))
    n = save_progress_gif(tmp_path, max_frames=max_frames)
    shown = list(range(1, epochs, stride)) + [epochs]
    assert n == len(shown) <= max(max_frames, 2)
    assert [c for c, _, _ in read_gif(tmp_path / "progress.gif")] == [colour(e) for e in shown]


def test_big_grids_are_shrunk_by_a_whole_factor(tmp_path):
    grid = np.zeros((274, 274, 3), np.uint8)
    grid[::2, ::2] = 255                                     # a pattern a nearest 2x enlargement keeps
    for e in (1, 2):
        Image.fromarray(grid.repeat(2, 0).repeat(2, 1)).save(tmp_path / f"samples_epoch_{e:03d}.png")
    save_progress_gif(tmp_path, max_size=300)
    with Image.open(tmp_path / "progress.gif") as im:
        assert im.size == (274, 274)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), grid)


def test_progress_gif_follows_rewritten_and_new_files_across_calls(tmp_path):
    write_grids(tmp_path, [1, 2])
    save_progress_gif(tmp_path)
    write_grids(tmp_path, [3])                               # the next epoch
    Image.new("RGB", (20, 16), colour(50)).save(tmp_path / "samples_epoch_001.png")   # a rerun's epoch 1
    os.utime(tmp_path / "samples_epoch_001.png", ns=(1, 1))  # even with an mtime that went backwards
    assert save_progress_gif(tmp_path) == 3
    assert [c for c, _, _ in read_gif(tmp_path / "progress.gif")] == [colour(50), colour(2), colour(3)]
    images._GIF_FRAMES.clear()                               # a new process (a resumed run) reads them all
    assert save_progress_gif(tmp_path) == 3
