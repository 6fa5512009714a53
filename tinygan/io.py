"""Atomic file writes: a file is either the old one or the whole new one, never half of it.

Every file tinygan writes (checkpoints, sample grids, plots, logs, caches) goes through
``atomic_write``: the content is written to a temporary file in the SAME folder, flushed
to disk, and renamed over the final name with ``os.replace`` (atomic on POSIX and
Windows). A kill at any moment leaves the previous file whole.
"""
import os
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_write(path, mode="wb"):
    """``with atomic_write(path) as f: f.write(...)`` — the file appears only if the block succeeds."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        _no_folder(path, folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())       # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def make_folder_for(path):
    """Create the folder the file ``path`` goes in, with its parents; in words (NotADirectoryError)
    when part of the way is a file, as in ``--out notes.txt/netG.pth``."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        _no_file_in_the_way(path, folder)
        os.makedirs(folder, exist_ok=True)
    return folder


def file_in_the_way(folder):
    """The file (or other non-folder) that stands where ``folder`` or one of its parents belongs, or None."""
    p = os.path.abspath(os.fspath(folder))
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p if os.path.lexists(p) and not os.path.isdir(p) else None


def _no_file_in_the_way(path, folder):
    blocker = file_in_the_way(folder)
    if blocker:
        raise NotADirectoryError(f"cannot write {path}: {blocker} is a file, not a folder; choose another --out")


def _no_folder(path, folder):
    """Raise an OSError in words: a file in the way (NotADirectoryError), or no such folder."""
    _no_file_in_the_way(path, folder)
    raise FileNotFoundError(f"cannot write {path}: there is no folder {folder}; create it or choose another --out")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(folder):
    """Create ``folder`` and prove a file can be written there (a probe), or raise OSError saying so."""
    folder = os.fspath(folder)
    blocker = file_in_the_way(folder)
    if blocker:
        raise NotADirectoryError(f"output folder {folder} is not writable ({blocker} is a file, not a folder): "
                                 "choose another with --out")
    try:
        os.makedirs(folder, exist_ok=True)
        with atomic_write(os.path.join(folder, ".write-probe")) as f:
            f.write(b"x" * 4096)
        os.unlink(os.path.join(folder, ".write-probe"))
    except OSError as e:
        raise OSError(f"output folder {folder} is not writable ({e.strerror or e}): "
                      "choose another with --out or free some space") from None
