"""tinygan.data: decoding, compositing, squaring, the cache, errors and minibatches.

Every test makes its own small images with Pillow in tmp_path and checks pixel values.
Pixels are compared as uint8 through ``to_uint8`` (exact inverse of the [-1, 1] scaling).
"""
import io
import os
import re
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

import tinygan.data as data
from tinygan.data import DataError, batch_indices, batches, from_uint8, load_images, to_uint8

WHITE, BLACK, RED, GREEN, BLUE = (255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)
SPRITES = Path(__file__).resolve().parents[2] / "shared/data/pokesprite-gen8"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Keep every download and default cache inside tmp_path."""
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def load(path, cache_dir=False, **options):
    """load_images, quiet and (by default) without a cache."""
    return load_images(path, cache_dir=cache_dir, verbose=False, **options)


def pixels(result):
    """(N, H, W, 3) uint8 of a LoadResult."""
    return to_uint8(result.images)


def save(image, path, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def png16(array, colour_type):
    """A 16-bit PNG (Pillow writes only 16-bit grey): 0 grey, 2 RGB, 4 grey+alpha."""
    h, w = array.shape[:2]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def sprite_rgba(size=8):
    """Opaque blue with fully transparent red corners and one half-transparent black pixel."""
    a = np.zeros((size, size, 4), np.uint8)
    a[...] = (0, 0, 255, 255)
    for y, x in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        a[y, x] = (255, 0, 0, 0)
    a[size // 2, size // 2] = (0, 0, 0, 128)
    return Image.fromarray(a, "RGBA")


# ---------------------------------------------------------------------------------------
# modes and transparency
# ---------------------------------------------------------------------------------------

def test_rgba_transparent_corners_become_white(tmp_path):
    save(sprite_rgba(), tmp_path / "s.png")
    u = pixels(load(tmp_path, image_size=8))[0]
    for y, x in [(0, 0), (0, 7), (7, 0), (7, 7)]:
        assert tuple(u[y, x]) == WHITE          # the hidden red must not show
    assert tuple(u[1, 1]) == BLUE
    # alpha 128/255 over white: 255 * (1 - 128/255) = 127
    assert np.all(np.abs(u[4, 4].astype(int) - 127) <= 1)


def test_background_colour_is_configurable(tmp_path):
    save(sprite_rgba(), tmp_path / "s.png")
    u = pixels(load(tmp_path, image_size=8, background=(0, 255, 0)))[0]
    assert tuple(u[0, 0]) == GREEN and tuple(u[1, 1]) == BLUE


def test_palette_with_transparency(tmp_path):
    index = np.ones((6, 6), np.uint8)
    index[0, :] = 0                             # top row: the transparent index, painted red
    image = Image.fromarray(index, "P")
    image.putpalette(list(RED) + list(BLUE) + [0, 0, 0] * 254)
    save(image, tmp_path / "p.png", transparency=0)
    assert Image.open(tmp_path / "p.png").mode == "P"
    u = pixels(load(tmp_path, image_size=6))[0]
    assert np.all(u[0] == WHITE) and np.all(u[1:] == BLUE)


def test_palette_without_transparency_keeps_every_colour(tmp_path):
    index = np.ones((6, 6), np.uint8)
    index[0, :] = 0                             # index 0 is plain red here: nothing is transparent
    image = Image.fromarray(index, "P")
    image.putpalette(list(RED) + list(BLUE) + [0, 0, 0] * 254)
    save(image, tmp_path / "p.png")
    assert "transparency" not in Image.open(tmp_path / "p.png").info
    u = pixels(load(tmp_path, image_size=6))[0]
    assert np.all(u[0] == RED) and np.all(u[1:] == BLUE)


def test_grey_with_alpha(tmp_path):
    la = np.zeros((4, 4, 2), np.uint8)
    la[...] = (50, 255)
    la[0, 0] = (0, 0)
    save(Image.fromarray(la, "LA"), tmp_path / "la.png")
    u = pixels(load(tmp_path, image_size=4))[0]
    assert tuple(u[0, 0]) == WHITE and tuple(u[2, 2]) == (50, 50, 50)


def test_greyscale_becomes_rgb(tmp_path):
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    save(Image.fromarray(grey, "L"), tmp_path / "g.png")
    u = pixels(load(tmp_path, image_size=4))[0]
    assert u.shape == (4, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(u[..., c], grey)


def test_sixteen_bit_grey_png_scales_to_eight_bit(tmp_path):
    u16 = np.array([[0, 257 * 100], [65535, 1000]], np.uint16)
    save(Image.fromarray(u16), tmp_path / "pil.png")                 # Pillow: mode I;16
    (tmp_path / "raw.png").write_bytes(png16(u16, colour_type=0))
    assert Image.open(tmp_path / "pil.png").mode.startswith("I")
    result = load(tmp_path, image_size=2)
    expected = np.array([[0, 100], [255, 4]])                     # round(u16 / 257)
    for u in pixels(result):
        for c in range(3):
            np.testing.assert_array_equal(u[..., c], expected)


def test_mode_i_is_scaled_like_sixteen_bit():
    image = Image.fromarray(np.array([[0, 257 * 100, 65535, 70000]], np.int32))
    assert image.mode == "I"
    rgb = np.asarray(data.to_rgb(image))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 100, 255, 255])


def test_sixteen_bit_rgb_and_grey_alpha_png(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint16)
    rgb[...] = (65535, 257 * 100, 0)
    (tmp_path / "rgb16.png").write_bytes(png16(rgb, colour_type=2))
    la = np.zeros((2, 2, 2), np.uint16)
    la[...] = (257 * 100, 65535)
    la[0, 0] = (0, 0)
    (tmp_path / "la16.png").write_bytes(png16(la, colour_type=4))
    result = load(tmp_path, image_size=2)
    assert result.files == ["la16.png", "rgb16.png"]
    la_u, rgb_u = pixels(result)
    assert tuple(la_u[0, 0]) == WHITE and tuple(la_u[1, 1]) == (100, 100, 100)
    assert np.all(rgb_u == (255, 100, 0))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    u = pixels(load(tmp_path, image_size=8))[0].astype(int)
    assert np.all(np.abs(u - RED) <= 4)


# ---------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------

def test_jpeg(tmp_path):
    save(Image.new("RGB", (16, 16), (200, 100, 50)), tmp_path / "a.JPEG", quality=95)
    u = pixels(load(tmp_path, image_size=16))[0].astype(int)
    assert np.all(np.abs(u - (200, 100, 50)) <= 3)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    assert np.all(pixels(load(tmp_path, image_size=8))[0] == RED)


def test_bmp(tmp_path):
    a = np.zeros((4, 4, 3), np.uint8)
    a[:2] = RED
    a[2:] = GREEN
    save(Image.fromarray(a), tmp_path / "b.Bmp")
    np.testing.assert_array_equal(pixels(load(tmp_path, image_size=4))[0], a)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_lossless_with_alpha(tmp_path):
    save(sprite_rgba(), tmp_path / "w.webp", lossless=True)
    u = pixels(load(tmp_path, image_size=8))[0]
    assert tuple(u[0, 0]) == WHITE and tuple(u[1, 1]) == BLUE


def test_extensions_are_case_insensitive_and_other_files_ignored(tmp_path):
    for name in ["a.PNG", "b.jpg", "c.Jpeg", "d.GIF"]:
        save(Image.new("RGB", (4, 4), RED), tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    save(Image.new("RGB", (4, 4), RED), tmp_path / "e.tiff")
    assert load(tmp_path, image_size=4).files == ["a.PNG", "b.jpg", "c.Jpeg", "d.GIF"]


# ---------------------------------------------------------------------------------------
# square: pad, stretch, crop; resize
# ---------------------------------------------------------------------------------------

def wide_black(w=8, h=4):
    return Image.new("RGB", (w, h), BLACK)


def test_pad_wide_image_top_and_bottom(tmp_path):
    save(wide_black(), tmp_path / "w.png")
    u = pixels(load(tmp_path, image_size=8))[0]
    assert np.all(u[:2] == WHITE) and np.all(u[6:] == WHITE) and np.all(u[2:6] == BLACK)


def test_pad_tall_image_left_and_right_with_background(tmp_path):
    save(wide_black(4, 8), tmp_path / "t.png")
    u = pixels(load(tmp_path, image_size=8, background=(0, 255, 0)))[0]
    assert np.all(u[:, :2] == GREEN) and np.all(u[:, 6:] == GREEN) and np.all(u[:, 2:6] == BLACK)


def test_stretch_has_no_padding(tmp_path):
    save(wide_black(), tmp_path / "w.png")
    assert np.all(pixels(load(tmp_path, image_size=8, resize="stretch"))[0] == BLACK)


def test_crop_keeps_the_centre(tmp_path):
    a = np.zeros((4, 8, 3), np.uint8)           # red | black black | blue, 2 + 4 + 2 columns
    a[:, :2] = RED
    a[:, 6:] = BLUE
    save(Image.fromarray(a), tmp_path / "w.png")
    u = pixels(load(tmp_path, image_size=4, resize="crop"))[0]
    assert u.shape == (4, 4, 3) and np.all(u == BLACK)


def test_resize_to_image_size_and_range(tmp_path):
    rng = np.random.default_rng(0)
    save(Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)), tmp_path / "n.png")
    save(Image.new("RGB", (7, 7), WHITE), tmp_path / "w.png")
    save(Image.new("RGB", (7, 7), BLACK), tmp_path / "z.png")
    result = load(tmp_path, image_size=16)
    x = result.images
    assert x.shape == (3, 3, 16, 16) and x.dtype == np.float32 and x.flags.c_contiguous
    assert x.min() >= -1.0 and x.max() <= 1.0     # LANCZOS overshoot is clipped
    assert np.all(x[1] == 1.0) and np.all(x[2] == -1.0)


@pytest.mark.parametrize("resize", ["pad", "stretch", "crop"])
def test_square_input_is_the_same_for_every_mode(tmp_path, resize):
    a = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    save(Image.fromarray(a), tmp_path / "sq.png")
    np.testing.assert_array_equal(pixels(load(tmp_path, image_size=8, resize=resize))[0], a)


# ---------------------------------------------------------------------------------------
# order, limit, uint8 helpers
# ---------------------------------------------------------------------------------------

def make_folder(folder, names=("b.png", "a/z.png", "a/b/c.png", "c.gif", "A.bmp")):
    """Images whose red channel encodes their place in ``names`` (created in this order)."""
    for i, name in enumerate(names):
        save(Image.new("RGB", (4, 4), (10 * (i + 1), 0, 0)), folder / name)
    return folder


def test_order_is_sorted_relative_paths(tmp_path):
    folder = make_folder(tmp_path / "d")
    result = load(folder, image_size=4)
    assert result.files == ["A.bmp", "a/b/c.png", "a/z.png", "b.png", "c.gif"]
    assert [int(u[0, 0, 0]) for u in pixels(result)] == [50, 30, 20, 10, 40]


def test_hidden_files_and_folders_are_ignored(tmp_path):
    folder = make_folder(tmp_path / "d", ["x.png", ".hidden.png", ".git/y.png", "__MACOSX/._x.png"])
    assert load(folder, image_size=4).files == ["x.png"]


def test_limit_takes_the_first_decodable_images(tmp_path):
    folder = make_folder(tmp_path / "d")
    (folder / "0broken.png").write_bytes(b"nope")
    result = load(folder, image_size=4, limit=2)
    assert result.files == ["A.bmp", "a/b/c.png"]
    assert result.skipped == [("0broken.png", "cannot identify image file")]
    assert result.images.shape == (2, 3, 4, 4)


def test_uint8_round_trip_is_exact():
    u = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    x = from_uint8(u)
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_allclose(x[0, 0].ravel(), np.arange(256) / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(to_uint8(x), u)
    assert to_uint8(x[0]).shape == (16, 16, 3) and from_uint8(u[0]).shape == (3, 16, 16)


def test_to_uint8_clips_out_of_range():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], np.float32).reshape(1, 1, 5).repeat(3, axis=0)
    np.testing.assert_array_equal(to_uint8(x)[0, :, 0], [0, 0, 128, 255, 255])


# ---------------------------------------------------------------------------------------
# broken files and errors
# ---------------------------------------------------------------------------------------

def test_broken_files_are_skipped_with_reasons(tmp_path, capsys):
    save(Image.new("RGB", (4, 4), RED), tmp_path / "good.png")
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, "PNG")
    (tmp_path / "truncated.png").write_bytes(good.getvalue()[:len(good.getvalue()) // 2])
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, I am not a picture")
    result = load_images(tmp_path, image_size=4, cache_dir=False, verbose=True)
    assert result.files == ["good.png"] and result.images.shape == (1, 3, 4, 4)
    reasons = dict(result.skipped)
    assert sorted(reasons) == ["text.png", "truncated.png", "zero.png"]
    assert reasons["zero.png"] == "empty file"
    assert reasons["text.png"] == "cannot identify image file"
    assert reasons["truncated.png"]                       # e.g. "OSError: image file is truncated"
    line = capsys.readouterr().out
    assert "loaded 1 images (skipped 3:" in line and "zero.png: empty file" in line


def test_decompression_bombs_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    save(Image.new("RGB", (8, 8), RED), tmp_path / "ok.png")        # 64 pixels
    save(Image.new("RGB", (12, 12), RED), tmp_path / "warn.png")    # 144: Pillow only warns
    save(Image.new("RGB", (20, 20), RED), tmp_path / "error.png")   # 400 > 2 * 100: Pillow raises
    result = load(tmp_path, image_size=8)
    assert result.files == ["ok.png"]
    reasons = dict(result.skipped)
    assert sorted(reasons) == ["error.png", "warn.png"]
    assert all("decompression bomb" in r for r in reasons.values())


def raises_naming(path):
    return pytest.raises(DataError, match=re.escape(str(path)))


def test_missing_path_is_a_data_error(tmp_path):
    with raises_naming(tmp_path / "nowhere") as e:
        load(tmp_path / "nowhere")
    assert "--data" in str(e.value) and isinstance(e.value, ValueError)


def test_empty_folder_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with raises_naming(tmp_path / "empty"):
        load(tmp_path / "empty")


def test_folder_of_broken_images_is_a_data_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("text")
    with raises_naming(tmp_path) as e:
        load(tmp_path)
    assert "a.png: empty file" in str(e.value)


def test_zip_without_images_is_a_data_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "none.zip", "w") as z:
        z.writestr("readme.txt", "nothing")
        z.writestr("__MACOSX/._a.png", b"resource fork")
    with raises_naming(tmp_path / "none.zip"):
        load(tmp_path / "none.zip")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 this is not really a zip", bytes(range(256)) * 10])
def test_corrupt_zip_is_a_data_error(tmp_path, content):
    (tmp_path / "bad.zip").write_bytes(content)
    with raises_naming(tmp_path / "bad.zip"):
        load(tmp_path / "bad.zip")


def test_bad_options_are_value_errors(tmp_path):
    save(Image.new("RGB", (4, 4), RED), tmp_path / "a.png")
    for options in [dict(resize="squash"), dict(background=(0, 0, 256)), dict(background=(1, 2)),
                    dict(image_size=0), dict(limit=0)]:
        with pytest.raises(ValueError):
            load(tmp_path, **options)


# ---------------------------------------------------------------------------------------
# zips
# ---------------------------------------------------------------------------------------

def zip_folder(folder, archive, extra=()):
    """Zip every file under ``folder`` by its relative path, plus (name, bytes) ``extra``."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                z.write(file, file.relative_to(folder).as_posix())
        for name, content in extra:
            z.writestr(name, content)
    return archive


def test_zip_gives_the_same_array_as_the_folder(tmp_path):
    folder = make_folder(tmp_path / "d")
    save(sprite_rgba(), folder / "s/sprite.png")
    save(wide_black(), folder / "wide.png")
    (folder / "broken.png").write_bytes(b"")
    archive = zip_folder(folder, tmp_path / "d.zip", extra=[("__MACOSX/._wide.png", b"x"),
                                                            (".DS_Store.png", b"x")])
    from_folder, from_zip = load(folder, image_size=8), load(archive, image_size=8)
    assert from_zip.files == from_folder.files
    assert from_zip.skipped == from_folder.skipped == [("broken.png", "empty file")]
    np.testing.assert_array_equal(from_zip.images, from_folder.images)


def test_zip_members_with_unsafe_names_write_nothing(tmp_path, monkeypatch):
    image = io.BytesIO()
    Image.new("RGB", (4, 4), RED).save(image, "PNG")
    absolute = f"/tinygan-test-{uuid.uuid4().hex}.png"
    (tmp_path / "box" / "work").mkdir(parents=True)
    archive = tmp_path / "box" / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../evil.png", image.getvalue())
        z.writestr("../../evil2.png", image.getvalue())
        z.writestr(absolute, image.getvalue())
        z.writestr("ok.png", image.getvalue())
    monkeypatch.chdir(tmp_path / "box" / "work")
    before = sorted(p for p in tmp_path.rglob("*"))
    result = load(archive, image_size=4)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path(absolute).exists()
    assert result.files == sorted(["../../evil2.png", "../evil.png", absolute, "ok.png"])
    assert np.all(pixels(result) == RED)


# ---------------------------------------------------------------------------------------
# the cache
# ---------------------------------------------------------------------------------------

def no_decoding(monkeypatch):
    """Make any decode fail loudly: what follows must come from the cache."""
    def refuse(*args, **kwargs):
        raise AssertionError("decoded an image although the cache should have been used")
    monkeypatch.setattr(data, "load_image", refuse)


def npz_files(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_second_load_reads_the_cache(tmp_path, monkeypatch):
    folder, cache = make_folder(tmp_path / "d"), tmp_path / "cache"
    (folder / "broken.png").write_bytes(b"")
    first = load(folder, image_size=4, cache_dir=cache)
    assert not first.from_cache
    [name] = npz_files(cache)                               # one .npz, no temp files left
    assert name.startswith("d-4px-") and name.endswith(".npz")
    no_decoding(monkeypatch)
    second = load(folder, image_size=4, cache_dir=cache)
    assert second.from_cache
    np.testing.assert_array_equal(second.images, first.images)
    assert second.images.dtype == np.float32
    assert second.files == first.files and second.skipped == first.skipped


def test_default_cache_dir_is_under_tinygan_home(tmp_path, home):
    folder = make_folder(tmp_path / "d")
    load_images(folder, image_size=4, verbose=False)
    assert len(npz_files(home / "cache")) == 1


def test_no_cache_writes_nothing(tmp_path, home):
    load(make_folder(tmp_path / "d"), image_size=4, cache_dir=False)
    assert not home.exists()


@pytest.mark.parametrize("change", [dict(image_size=8), dict(resize="crop"), dict(resize="stretch"),
                                    dict(background=(0, 0, 0)), dict(limit=2)])
def test_cache_key_changes_with_options(tmp_path, change):
    folder, cache = make_folder(tmp_path / "d"), tmp_path / "cache"
    load(folder, image_size=4, cache_dir=cache)
    result = load(folder, **{"image_size": 4, **change}, cache_dir=cache)
    assert not result.from_cache and len(npz_files(cache)) == 2


def test_cache_key_changes_when_a_file_changes(tmp_path):
    folder, cache = make_folder(tmp_path / "d"), tmp_path / "cache"
    load(folder, image_size=4, cache_dir=cache)
    save(Image.new("RGB", (4, 4), GREEN), folder / "b.png")
    stat = os.stat(folder / "b.png")
    os.utime(folder / "b.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    result = load(folder, image_size=4, cache_dir=cache)
    assert not result.from_cache
    assert tuple(pixels(result)[result.files.index("b.png")][0, 0]) == GREEN
    save(Image.new("RGB", (4, 4), RED), folder / "new.png")           # an added file
    assert not load(folder, image_size=4, cache_dir=cache).from_cache
    (folder / "new.png").unlink()                                    # ... removed again
    assert load(folder, image_size=4, cache_dir=cache).from_cache


def test_zip_cache_key_follows_member_contents(tmp_path):
    folder, cache = make_folder(tmp_path / "d"), tmp_path / "cache"
    archive = zip_folder(folder, tmp_path / "d.zip")
    load(archive, image_size=4, cache_dir=cache)
    assert load(archive, image_size=4, cache_dir=cache).from_cache
    save(Image.new("RGB", (4, 4), GREEN), folder / "b.png")
    zip_folder(folder, archive)
    result = load(archive, image_size=4, cache_dir=cache)
    assert not result.from_cache
    assert tuple(pixels(result)[result.files.index("b.png")][0, 0]) == GREEN


@pytest.mark.parametrize("garbage", [b"", b"not an npz", "truncate"])
def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, garbage):
    folder, cache = make_folder(tmp_path / "d"), tmp_path / "cache"
    first = load(folder, image_size=4, cache_dir=cache)
    [name] = npz_files(cache)
    file = cache / name
    file.write_bytes(file.read_bytes()[:200] if garbage == "truncate" else garbage)
    with pytest.warns(UserWarning, match="unreadable cache"):
        rebuilt = load(folder, image_size=4, cache_dir=cache)
    assert not rebuilt.from_cache
    np.testing.assert_array_equal(rebuilt.images, first.images)
    no_decoding(monkeypatch)
    assert load(folder, image_size=4, cache_dir=cache).from_cache       # rewritten whole
    assert npz_files(cache) == [name]


def test_unwritable_cache_only_warns(tmp_path):
    folder = make_folder(tmp_path / "d")
    (tmp_path / "file").write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the cache"):
        result = load(folder, image_size=4, cache_dir=tmp_path / "file" / "cache")
    assert len(result.files) == 5


def test_no_path_loads_the_downloaded_pokemon_zip(tmp_path, monkeypatch):
    archive = zip_folder(make_folder(tmp_path / "d"), tmp_path / "pokemon.zip")
    monkeypatch.setattr(data, "ensure_pokemon", lambda verbose=True: archive)
    assert load(None, image_size=4).files == load(archive, image_size=4).files


# ---------------------------------------------------------------------------------------
# minibatches
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (5, 8), (1, 1)])
def test_batch_indices_cover_every_index_once(n, batch_size):
    chunks = list(batch_indices(n, batch_size, np.random.default_rng(0)))
    assert sorted(np.concatenate(chunks).tolist()) == list(range(n))
    assert [len(c) for c in chunks[:-1]] == [batch_size] * (len(chunks) - 1)
    kept = list(batch_indices(n, batch_size, np.random.default_rng(0), drop_last=True))
    assert all(len(c) == batch_size for c in kept) and len(kept) == n // batch_size


def test_batches_are_reproducible_and_shuffled():
    x = np.arange(20 * 3 * 2 * 2, dtype=np.float32).reshape(20, 3, 2, 2)
    a = list(batches(x, 6, np.random.default_rng(7)))
    b = list(batches(x, 6, np.random.default_rng(7)))
    c = list(batches(x, 6, np.random.default_rng(8)))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    firsts = np.concatenate(a)[:, 0, 0, 0]
    assert sorted(firsts.tolist()) == x[:, 0, 0, 0].tolist()
    assert firsts.tolist() != x[:, 0, 0, 0].tolist()             # shuffled, not in order


def test_one_generator_gives_new_orders_each_epoch():
    rng = np.random.default_rng(0)
    first, second = (np.concatenate(list(batch_indices(30, 7, rng))) for _ in range(2))
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(30))
    assert first.tolist() != second.tolist()


# ---------------------------------------------------------------------------------------
# the real sprites
# ---------------------------------------------------------------------------------------

needs_sprites = pytest.mark.skipif(not SPRITES.is_dir(), reason=f"sprite folder {SPRITES} not found")


@pytest.mark.data
@needs_sprites
def test_real_sprites_first_64(tmp_path):
    result = load(SPRITES, image_size=32, limit=64, cache_dir=tmp_path / "cache")
    x = result.images
    assert x.shape == (64, 3, 32, 32) and x.dtype == np.float32
    assert np.all(np.isfinite(x)) and x.min() >= -1 and x.max() <= 1
    assert result.files == sorted(result.files) and result.skipped == []
    for y, x_ in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert np.all(x[:, :, y, x_] == 1.0)                 # padding / transparency: white
    assert x.mean() < 0.95                                   # ... and the sprites are there


@pytest.mark.data
@needs_sprites
def test_real_sprites_all_load(tmp_path):
    result = load(SPRITES, image_size=32, cache_dir=tmp_path / "cache")
    assert result.images.shape == (1332, 3, 32, 32)
    assert result.skipped == []
    assert np.all(result.images[:, :, 0, 0] == 1.0)        # RGBA, P and LA all on white
    modes = {Image.open(SPRITES / f).mode for f in result.files[::50]}
    assert "RGBA" in modes


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello\n"), ("weights.npz", bytes(range(256)) * 4),
                                           ("empty", b""), ("fake.png", b"\x89PNG\r\n\x1a\n not really")])
def test_a_file_that_is_neither_a_zip_nor_an_image_says_so(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with raises_naming(tmp_path / name) as e:
        load(tmp_path / name)
    msg = str(e.value)
    assert "neither a zip nor an image" in msg and "download" not in msg and "\n" not in msg


def test_a_single_image_file_names_its_folder(tmp_path):
    save(Image.new("RGB", (8, 8), RED), tmp_path / "pics" / "one.png")
    with raises_naming(tmp_path / "pics" / "one.png") as e:
        load(tmp_path / "pics" / "one.png")
    assert "single image" in str(e.value) and f"({tmp_path / 'pics'})" in str(e.value)


def test_a_truncated_zip_under_another_name_is_still_a_broken_zip(tmp_path):
    zip_folder(make_folder(tmp_path / "d"), tmp_path / "d.zip")
    (tmp_path / "d.download").write_bytes((tmp_path / "d.zip").read_bytes()[:40])
    with raises_naming(tmp_path / "d.download") as e:
        load(tmp_path / "d.download")
    assert "not a readable zip file" in str(e.value)
