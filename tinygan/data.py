"""Images from a folder or a .zip, as the (N, 3, H, W) float32 array a DCGAN trains on.

    N       number of images
    3       colour channels, RGB
    H, W    image size: H = W = image_size (64 in the DCGAN paper)

    >>> from tinygan.data import load_images, batches
    >>> data = load_images("../shared/data/pokesprite-gen8", image_size=64)
    >>> data.images.shape, data.images.dtype            # ((1332, 3, 64, 64), float32)
    >>> for x in batches(data.images, 128, rng=0):      # x: (128, 3, 64, 64), last one smaller
    ...     pass

What happens to each image, in order (``load_image`` does one):

1. decode with Pillow (PNG, JPEG, GIF, BMP, WebP; a GIF's first frame);
2. to RGB: transparent pixels (RGBA, LA, palette or grey with a transparent colour) are
   composited onto ``background``, white by default, because sprites come with transparent
   backgrounds; 16-bit grey is scaled to 8 bit; grey and CMYK become RGB;
3. to a square: ``'pad'`` with the background colour (default; the sprite keeps its
   proportions), ``'stretch'`` (as d2l does) or ``'crop'`` (the centre square);
4. resize to image_size x image_size;
5. scale 0..255 to [-1, 1], the range of the generator's tanh: ``x = u / 127.5 - 1``.

Files are taken in sorted order of their relative paths, so ``limit=N`` means the first N
images. A file that cannot be decoded is skipped and reported, never a crash. The decoded
set is cached as an .npz under ``$TINYGAN_HOME/cache``, so a second run starts at once.
With no path, d2l's Pokémon zip is downloaded once (``tinygan.download``).
"""
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageColor, UnidentifiedImageError

from . import backend, memory
from .images import from_uint8, to_uint8  # noqa: F401  (part of this module's API)
from .download import DataError, DownloadError, default_data_path, ensure_pokemon, tinygan_home

__all__ = ["load_images", "load_image", "LoadResult", "DataError", "to_uint8", "from_uint8",
           "batches", "batch_indices", "default_data_path", "ensure_pokemon", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
RESIZE_MODES = ("pad", "stretch", "crop")
MAX_MEMBER_BYTES = 256 << 20     # a zip member larger than this is skipped, not read
CACHE_VERSION = 1                # bump when the pipeline changes what it produces

# LANCZOS (a 3-lobe windowed sinc) rather than BICUBIC: most images here are made smaller
# (d2l's Pokémon 96 -> 64, sprites 68 -> 64), and Pillow widens either filter by the
# shrink factor, so both are antialiased; LANCZOS keeps the thin outlines of small sprites
# sharper. Its slight overshoot at edges is clipped to 0..255 by Pillow (uint8 images),
# so the [-1, 1] range still holds exactly.
RESAMPLE = Image.Resampling.LANCZOS


@dataclass
class LoadResult:
    """What ``load_images`` returns.

    images:     (N, 3, H, W) float32 in [-1, 1]
    files:      N names, relative to the folder (or zip members), in the order of ``images``
    skipped:    (name, reason) for each file that could not be decoded
    from_cache: True when ``images`` came from the .npz cache
    """
    images: np.ndarray
    files: list
    skipped: list = field(default_factory=list)
    from_cache: bool = False


def parse_color(text):
    """'white', 'black', '#rrggbb' or 'r,g,b' → (r, g, b); ValueError naming the text otherwise."""
    try:
        if "," in text:
            rgb = tuple(int(c) for c in text.split(","))
            if len(rgb) == 3 and all(0 <= c <= 255 for c in rgb):
                return rgb
            raise ValueError
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise ValueError(f"background colour {text!r} not understood: use a name (white), "
                         "#rrggbb or r,g,b") from None


# ---------------------------------------------------------------------------------------
# one image: decode -> RGB -> square -> resize
# ---------------------------------------------------------------------------------------

def load_image(source, image_size=64, resize="pad", background=(255, 255, 255), trim=False):
    """One image file (a path or a binary file object) -> (image_size, image_size, 3) uint8.

    ``trim``: first crop away fully transparent borders (``trim_transparent``).

    Raises ImageError with a short reason when the file cannot be decoded.
    """
    image = decode(source)
    if trim:
        image = trim_transparent(image)
    image = to_rgb(image, background)
    image = to_square(image, resize, background)
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), RESAMPLE)
    return np.asarray(image, dtype=np.uint8)


class ImageError(Exception):
    """A file that is not a decodable image; the message is the reason, for the report."""


def decode(source):
    """Open and fully decode an image (first frame), or raise ImageError.

    A decompression bomb (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``) is an error
    here: Pillow only warns below twice that limit, and we turn the warning into one.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                image.seek(0)             # multi-frame GIF/WebP: the first frame
                image.load()              # decode now, so truncated files fail here
                return image.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"decompression bomb? {e}") from None
    except UnidentifiedImageError:
        raise ImageError("cannot identify image file") from None
    except Exception as e:  # OSError, SyntaxError, EOFError, ...: Pillow raises many kinds
        raise ImageError(f"{type(e).__name__}: {e}") from None


def trim_transparent(image, margin=1):
    """Crop to the bounding box of the pixels that are not fully transparent, plus ``margin``.

    Sprite sheets put a small sprite in a large transparent frame (pokesprite's are
    68×56 with the creature often 30 px tall); trimmed, it fills the square it is padded
    to, and a 32×32 training image keeps its detail. Images without alpha are unchanged.
    """
    if not (image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info):
        return image
    box = image.convert("RGBA").getchannel("A").getbbox()
    if box is None:                     # all transparent: nothing to trim to
        return image
    left, top, right, bottom = box
    w, h = image.size
    return image.crop((max(left - margin, 0), max(top - margin, 0),
                       min(right + margin, w), min(bottom + margin, h)))


def to_rgb(image, background=(255, 255, 255)):
    """Any Pillow mode -> 'RGB', transparent pixels composited onto ``background``.

    RGBA, LA, PA, and P/L/RGB with a transparent colour (``info['transparency']``) carry
    alpha a in 0..1: out = a * colour + (1 - a) * background. 16-bit grey ('I;16', 'I')
    is scaled to 0..255. Everything else ('L', '1', 'CMYK', 'YCbCr', ...) is converted.
    """
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        image = _sixteen_to_eight_bit(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def _sixteen_to_eight_bit(image):
    """16-bit grey (mode 'I;16*' or 'I', 0..65535) -> mode 'L': u8 = round(u16 / 257)."""
    u16 = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
    return Image.fromarray(((u16 + 128) // 257).astype(np.uint8), mode="L")


def to_square(image, resize="pad", background=(255, 255, 255)):
    """Make an RGB image square: 'pad' (centred, background colour), 'crop' (centre) or 'stretch'.

    'stretch' returns the image unchanged; the resize that follows stretches it.
    """
    w, h = image.size
    if resize == "stretch" or w == h:
        return image
    if resize == "crop":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        return image.crop((left, top, left + side, top + side))
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), tuple(background))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


# ---------------------------------------------------------------------------------------
# sources: a folder or a zip, as a sorted list of entries
# ---------------------------------------------------------------------------------------

def _is_image_name(name):
    """An image extension, and no part of the path hidden ('.x') or macOS metadata.

    '..' is not hidden: a zip member '../x.png' is read like any other (into memory).
    """
    parts = PurePosixPath(name).parts
    if any((p.startswith(".") and p != "..") or p == "__MACOSX" for p in parts):
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _folder_entries(folder):
    """[(relative posix name, size, mtime_ns)] of the image files under ``folder``, sorted."""
    entries = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            full = os.path.join(root, f)
            name = Path(os.path.relpath(full, folder)).as_posix()
            if _is_image_name(name) and os.path.isfile(full):
                st = os.stat(full)
                entries.append((name, st.st_size, st.st_mtime_ns))
    return sorted(entries)


def _zip_entries(archive):
    """[(member name, size, CRC-32)] of the image members of an open ZipFile, sorted.

    Members are only ever read into memory (``ZipFile.open``), never extracted, so names
    like '../x.png' or '/x.png' cannot write anywhere.
    """
    return sorted((i.filename, i.file_size, i.CRC) for i in archive.infolist()
                  if not i.is_dir() and _is_image_name(i.filename))


def _open_zip(path):
    """Open a regular file as a zip, or raise DataError saying what it is instead."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        reason = e
    try:
        decode(path)
    except ImageError:
        pass
    else:
        raise DataError(f"{path}: a single image, not a folder or .zip of images; pass --data with "
                        f"the folder that holds it ({path.parent})") from None
    if path.suffix.lower() != ".zip" and not _starts_like_zip(path):
        raise DataError(f"{path}: neither a zip nor an image file; pass --data with a folder "
                        f"or .zip of images") from None
    raise DataError(f"{path}: not a readable zip file ({reason}); download it again, "
                    f"or pass --data with a folder of images") from None


def _starts_like_zip(path):
    """True when the file begins with a zip signature (a truncated download of one)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _read_member(archive, name, size):
    """The bytes of one zip member, as a file object for Pillow; ImageError if unreadable."""
    if size > MAX_MEMBER_BYTES:
        raise ImageError(f"zip member too large ({size} bytes)")
    try:
        with archive.open(name) as f:
            return io.BytesIO(f.read())
    except Exception as e:  # BadZipFile (bad CRC), zlib.error, encrypted, unsupported method
        raise ImageError(f"unreadable zip member: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------------------------------
# the whole set
# ---------------------------------------------------------------------------------------

def load_images(path=None, image_size=64, resize="pad", background=(255, 255, 255),
                limit=None, cache_dir=None, verbose=True, trim=False):
    """Load every image under a folder (recursively) or in a .zip as (N, 3, H, W) float32.

    path:       a folder or a .zip; None downloads d2l's Pokémon zip (``ensure_pokemon``)
    image_size: H = W of the result
    resize:     'pad' (default), 'stretch' or 'crop': how a non-square image becomes square
    background: RGB colour behind transparent pixels and in the padding
    trim:       crop fully transparent borders first (sprites in large frames)
    limit:      keep only the first ``limit`` decodable images (in sorted file order)
    cache_dir:  where the .npz cache goes (default ``$TINYGAN_HOME/cache``); False: no cache
    verbose:    print (stdout) one line: how many images were loaded and skipped

    Returns a LoadResult. Raises DataError when the path is missing, is not a folder or
    zip, or holds no decodable image.
    """
    image_size, resize, background, limit = _check_options(image_size, resize, background, limit)
    start = time.monotonic()
    path = Path(_downloaded(verbose) if path is None else path).expanduser()
    if path.is_dir():
        result = _load_source(path, _folder_entries(path), None, image_size, resize,
                              background, limit, cache_dir, trim)
    elif path.is_file():
        with _open_zip(path) as archive:
            result = _load_source(path, _zip_entries(archive), archive, image_size, resize,
                                  background, limit, cache_dir, trim)
    else:
        raise DataError(f"{path}: no such folder or file; pass --data with a folder or .zip "
                        f"of images, or leave it out to download the Pokémon set")
    if verbose:
        print(_summary(result, path, image_size, time.monotonic() - start), flush=True)
    return result


def _downloaded(verbose):
    """The Pokémon zip (``ensure_pokemon``), or one DataError naming both ways to data without it."""
    try:
        return ensure_pokemon(verbose=verbose)
    except DownloadError as e:
        raise DataError(f"no training data: no --data given, and d2l's Pokémon zip could not be downloaded "
                        f"({e.reason}; {e.url}); pass a folder or .zip of images: --data PATH, or make demo "
                        f"DATA=PATH (make looks in ../shared/data/pokesprite-gen8), or connect to the network "
                        f"and run again") from None


def _check_options(image_size, resize, background, limit):
    if int(image_size) != image_size or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    background = tuple(int(c) for c in background)
    if len(background) != 3 or not all(0 <= c <= 255 for c in background):
        raise ValueError(f"background must be three integers 0..255, got {background!r}")
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    return int(image_size), resize, background, None if limit is None else int(limit)


def _load_source(path, entries, archive, image_size, resize, background, limit, cache_dir, trim=False):
    """Decode ``entries`` (or read them from the cache); raise DataError when none decode."""
    kind = "zip" if archive is not None else "folder"
    if not entries:
        raise DataError(f"{path}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this {kind}; "
                        f"pass --data with a folder or .zip that holds images")
    count = len(entries) if limit is None else min(limit, len(entries))
    memory.require(memory.dataset_bytes(count, image_size), f"loading {count} images at {image_size}x{image_size}",
                   "choose a smaller --image-size, or fewer images (--limit)")
    cache = None
    if cache_dir is not False:
        key = cache_key(kind, entries, image_size, resize, background, limit, trim)
        folder = Path(cache_dir or tinygan_home() / "cache")
        cache = folder / f"{path.stem}-{image_size}px-{key}.npz"
        stored = read_cache(cache)
        if stored is not None:
            return _result(*stored, from_cache=True)
    pixels, files, skipped = _decode_all(path, entries, archive, image_size, resize,
                                         background, limit, trim)
    if cache is not None:
        write_cache(cache, pixels, files, skipped)
    return _result(pixels, files, skipped)


def _result(pixels, files, skipped, from_cache=False):
    """(N, H, W, 3) uint8 pixels -> LoadResult with (N, 3, H, W) float32 images in [-1, 1]."""
    images = np.ascontiguousarray(from_uint8(pixels))
    return LoadResult(images, list(files), [tuple(s) for s in skipped], from_cache)


def _decode_all(path, entries, archive, image_size, resize, background, limit, trim=False):
    """Decode entries in order until ``limit`` images are loaded.

    Returns (N, H, W, 3) uint8 pixels, N file names, and (name, reason) for each skip.
    """
    pixels, files, skipped = [], [], []
    for name, size, _ in entries:
        if limit is not None and len(files) == limit:
            break
        try:
            if size == 0:
                raise ImageError("empty file")
            source = _read_member(archive, name, size) if archive is not None else path / name
            pixels.append(load_image(source, image_size, resize, background, trim))
            files.append(name)
        except ImageError as e:
            skipped.append((name, str(e)))
    if not pixels:
        raise DataError(f"{path}: none of its {len(skipped)} image files could be decoded "
                        f"({_list_skipped(skipped)}); pass --data with a folder or .zip of "
                        f"working images")
    return np.stack(pixels), files, skipped


def _list_skipped(skipped, show=5):
    text = "; ".join(f"{name}: {reason}" for name, reason in skipped[:show])
    return text + (f"; and {len(skipped) - show} more" if len(skipped) > show else "")


def _summary(result, path, image_size, seconds):
    """'loaded 1332 images (skipped 2: a.png: ...; b.png: ...) from PATH, 64x64, 1.9 s'."""
    n, skipped = len(result.files), result.skipped
    skip = f"skipped {len(skipped)}: {_list_skipped(skipped)}" if skipped else "skipped 0"
    where = "cache" if result.from_cache else "decoded"
    return (f"loaded {n} images ({skip}) from {path}, {image_size}x{image_size}, "
            f"{where}, {seconds:.1f} s")


# ---------------------------------------------------------------------------------------
# the cache: one .npz per (files, options)
# ---------------------------------------------------------------------------------------

def cache_key(kind, entries, image_size, resize, background, limit, trim=False):
    """A 16-hex-digit hash of everything the result depends on.

    entries carry (name, size, mtime) for a folder, (name, size, CRC-32) for a zip, so an
    edited, added or removed file changes the key; so do the options and Pillow's version.
    """
    description = json.dumps([CACHE_VERSION, Image.__version__, kind, entries, image_size,
                              resize, list(background), limit, bool(trim)])
    return hashlib.sha1(description.encode()).hexdigest()[:16]


def read_cache(cache):
    """(pixels, files, skipped) stored in ``cache``, or None when it is missing or unreadable."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as npz:
            pixels, files, skipped = npz["pixels"], npz["files"].tolist(), npz["skipped"].tolist()
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(pixels) != len(files):
            raise ValueError("unexpected contents")
    except Exception as e:  # truncated, not a zip, missing arrays, ...: rebuild it
        warnings.warn(f"ignoring unreadable cache {cache} ({type(e).__name__}: {e}); rebuilding it")
        return None
    return pixels, files, skipped


def write_cache(cache, pixels, files, skipped):
    """Store (N, H, W, 3) uint8 pixels, file names and skips in ``cache``, atomically.

    The .npz is written to a temporary file in the same folder and renamed, so a reader
    sees the old file, the new one, or none, never half of one. A failure only warns.
    """
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, pixels=pixels, files=np.array(files, dtype=str),
                     skipped=np.array(skipped, dtype=str).reshape(-1, 2))
        os.replace(tmp, cache)
    except OSError as e:
        warnings.warn(f"could not write the cache {cache} ({e}); the next run decodes again")
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


# ---------------------------------------------------------------------------------------
# minibatches
# ---------------------------------------------------------------------------------------

def batch_indices(n, batch_size, rng, drop_last=False):
    """Yield index arrays that cover range(n) once, in a random order, batch_size at a time.

    rng: a numpy Generator (or a seed for one); the same rng state gives the same batches.
    drop_last: leave out the final batch when it is smaller than batch_size.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = np.random.default_rng(rng).permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def batches(images, batch_size, rng, drop_last=False):
    """Yield ``images[idx]`` for each index array of ``batch_indices`` (one epoch).

    images: (N, 3, H, W), NumPy or CuPy; each batch has the same array type.
    """
    xp = backend.get_array_module(images)
    for idx in batch_indices(len(images), batch_size, rng, drop_last):
        yield images[xp.asarray(idx)]
