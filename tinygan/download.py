"""Download the Pokémon sprites of d2l.ai's DCGAN chapter, once, and verify them.

    >>> from tinygan.download import ensure_pokemon
    >>> path = ensure_pokemon()       # ~/.cache/tinygan/pokemon.zip, downloaded if absent

Where files go: ``$TINYGAN_HOME`` (default ``~/.cache/tinygan``). The zip is fetched
with urllib into a temporary file in that folder, its SHA-1 is checked, and only then is
it renamed to its final name (``os.replace`` is atomic within a folder). So a file under
the final name is always whole and verified; a failed, interrupted or corrupted transfer
leaves nothing behind and the next run starts clean.

Errors that the user can act on are ``DataError`` (a ``ValueError``) with a one-line
message; ``tinygan.data`` raises the same class.
"""
import hashlib
import http.client
import os
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .progress import Progress, format_bytes

POKEMON_URL = "http://d2l-data.s3-accelerate.amazonaws.com/pokemon.zip"
POKEMON_SHA1 = "c065c0e2593b8b161a2d7873e42418bf6a21106c"
POKEMON_FILE = "pokemon.zip"
OFFLINE_HINT = "pass --data FOLDER_OR_ZIP instead (make demo DATA=FOLDER_OR_ZIP; e.g. ../shared/data/pokesprite-gen8)"
# Seconds to wait for the name server, for the connection, and for each read: a working network
# answers in far less, and a machine without one is told so within seconds (it waited 30 s or more).
TIMEOUT = 10


class DataError(ValueError):
    """A data set that cannot be found, downloaded or read; the message says what to do."""


class DownloadError(DataError):
    """A download that failed or arrived corrupt; ``url`` and ``reason`` (a few words) say which and why."""

    def __init__(self, url, reason, message=None):
        self.url, self.reason = url, reason
        super().__init__(message or f"download of {url} failed ({reason}); check the connection, or {OFFLINE_HINT}")


def tinygan_home():
    """The folder for downloads and caches: ``$TINYGAN_HOME``, default ``~/.cache/tinygan``."""
    home = os.environ.get("TINYGAN_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "tinygan"


def default_data_path():
    """Where the Pokémon zip lives (or will live) once downloaded; nothing is fetched."""
    return tinygan_home() / POKEMON_FILE


def sha1_of(path, chunk_size=1 << 20):
    """The SHA-1 hex digest of a file, read in chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_pokemon(path=None, url=POKEMON_URL, sha1=POKEMON_SHA1, verbose=True, timeout=None):
    """The path of the verified Pokémon zip, downloading it first when it is not there.

    path: where the zip goes (default ``default_data_path()``). A file already there is
    checked against ``sha1``; one that does not match is deleted and downloaded again.
    ``url`` and ``sha1`` are parameters so that tests can serve their own zip.
    """
    path = Path(path) if path is not None else default_data_path()
    if path.is_file():
        if sha1 is None or sha1_of(path) == sha1:
            return path
        if verbose:
            print(f"{path}: checksum does not match, downloading it again", file=sys.stderr)
        path.unlink()
    return download(url, path, sha1=sha1, verbose=verbose, timeout=timeout)


def download(url, path, sha1=None, verbose=True, timeout=None):
    """Fetch ``url`` into ``path`` through a temporary file; verify; rename. Returns ``path``.

    Raises DownloadError (a DataError), leaving neither ``path`` nor the temporary file nor a
    folder made for them, when the transfer fails or stops short of Content-Length, or when
    the SHA-1 differs from ``sha1``.
    """
    path, timeout = Path(path), TIMEOUT if timeout is None else timeout
    made = [d for d in [path.parent, *path.parent.parents] if not d.exists()]   # the folders we create, deepest first
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, verbose, timeout)
        if sha1 is not None and digest != sha1:
            raise DownloadError(url, f"corrupt: SHA-1 {digest}, expected {sha1}",
                                f"download of {url} is corrupt: SHA-1 {digest}, expected {sha1}; "
                                f"run again, or {OFFLINE_HINT}")
        os.replace(tmp, path)
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(url, _reason(e)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        if not path.exists():
            _remove_empty(made)
    return path


def _remove_empty(folders):
    """Remove ``folders`` (deepest first) that a failed download created and left empty."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:                 # not empty, or gone: leave it and its parents
            return


def _fetch(url, out, verbose, timeout):
    """Copy the response body of ``url`` into the open file ``out``; return its SHA-1.

    Raises IncompleteRead when fewer bytes than Content-Length arrive.
    """
    digest = hashlib.sha1()
    _resolve(url, timeout)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total is not None else None
        bar = Progress(total, desc=url.rsplit("/", 1)[-1], unit="", fmt=format_bytes, enabled=verbose)
        done = 0
        try:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
    if total is not None and done != total:
        raise http.client.IncompleteRead(b"", total - done)
    return digest.hexdigest()


def _resolve(url, timeout):
    """Look up the host of ``url``, giving up after ``timeout`` seconds with URLError.

    urlopen's timeout covers the connection and the reads but not the name lookup, which on a
    machine whose packets go nowhere waits out the resolver's own retries (10-20 s or more).
    So the lookup runs in a thread of its own, and is left behind if it does not answer. Behind
    a proxy the proxy resolves the name, and this is skipped.
    """
    host = urllib.parse.urlsplit(url).hostname
    if not host or urllib.request.getproxies():
        return
    answer = {}

    def look_up():
        try:
            answer["addresses"] = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as e:
            answer["error"] = e

    thread = threading.Thread(target=look_up, daemon=True)
    thread.start()
    thread.join(timeout)
    if "addresses" not in answer:
        raise urllib.error.URLError(answer.get("error") or f"no answer for {host} within {timeout} s")


def _reason(e):
    """A short reason for a network or file error."""
    if isinstance(e, http.client.IncompleteRead):
        return f"connection closed early, {e.expected} bytes missing"
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return f"{type(e).__name__}: {e}"
