"""tinygan.download: the verified, atomic download, against a server the tests run themselves.

An http.server on 127.0.0.1 serves a small zip. Its handler can lie about Content-Length
(an interrupted transfer) or answer 404; it counts the requests it gets.
"""
import functools
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygan.data as data
from tinygan.download import (DataError, POKEMON_SHA1, POKEMON_URL, default_data_path, download,
                              ensure_pokemon, sha1_of, tinygan_home)


def small_zip():
    """A zip of three 4x4 PNGs, as bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
            png = io.BytesIO()
            Image.new("RGB", (4, 4), colour).save(png, "PNG")
            z.writestr(f"pokemon/{i}.png", png.getvalue())
    return buffer.getvalue()


BODY = small_zip()
SHA1 = hashlib.sha1(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.body``; ``server.extra`` bytes are promised but never sent."""

    def do_GET(self):
        server = self.server
        server.requests += 1
        if self.path != "/pokemon.zip":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(server.body) + server.extra))
        self.end_headers()
        self.wfile.write(server.body)
        self.wfile.flush()
        self.close_connection = True      # HTTP/1.0: the connection closes after the body

    def log_message(self, *args):         # keep the test output clean
        pass


@pytest.fixture
def server():
    """A local server; ``server.url`` is the zip's address."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.body, httpd.extra, httpd.requests = BODY, 0, 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/pokemon.zip"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir()) if Path(folder).exists() else []


def test_right_checksum_gives_a_verified_file(server, home, capsys):
    path = ensure_pokemon(url=server.url, sha1=SHA1, verbose=True)
    assert path == home / "pokemon.zip" == default_data_path()
    assert path.read_bytes() == BODY and sha1_of(path) == SHA1
    assert files_in(home) == ["pokemon.zip"]                  # no temporary file left
    bar = capsys.readouterr().err
    assert f"pokemon.zip [{'#' * 24}] {len(BODY)} B/{len(BODY)} B " in bar and "B/s" in bar


def test_wrong_checksum_leaves_nothing(server, home):
    with pytest.raises(DataError, match="SHA-1") as e:
        ensure_pokemon(url=server.url, sha1="0" * 40, verbose=False)
    assert server.url in str(e.value) and "--data" in str(e.value)
    assert files_in(home) == []


def test_interrupted_transfer_leaves_nothing(server, home):
    server.extra = 1000                                       # promise 1000 bytes more than sent
    with pytest.raises(DataError, match="download of .* failed") as e:
        ensure_pokemon(url=server.url, sha1=SHA1, verbose=False)
    assert "--data" in str(e.value)
    assert not home.exists()                                  # not even the folder it made
    server.extra = 0                                          # a rerun starts clean and succeeds
    assert ensure_pokemon(url=server.url, sha1=SHA1, verbose=False).read_bytes() == BODY
    assert files_in(home) == ["pokemon.zip"]


def test_interrupted_transfer_without_checksum_leaves_nothing(server, tmp_path):
    server.extra = 1
    with pytest.raises(DataError):
        download(server.url, tmp_path / "out" / "deeper" / "x.zip", sha1=None, verbose=False)
    assert not (tmp_path / "out").exists()                    # both folders it made are gone


def test_failed_download_keeps_folders_that_were_there(server, tmp_path):
    """Only what the download made is removed: an existing folder, and anything in it, stays."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    server.extra = 1
    with pytest.raises(DataError):
        download(server.url, tmp_path / "mine" / "new" / "x.zip", sha1=None, verbose=False)
    assert files_in(tmp_path / "mine") == ["notes.txt"]


def test_present_file_is_not_downloaded_again(server):
    first = ensure_pokemon(url=server.url, sha1=SHA1, verbose=False)
    second = ensure_pokemon(url=server.url, sha1=SHA1, verbose=False)
    assert first == second and server.requests == 1


def test_present_but_corrupt_file_is_replaced(server, home):
    home.mkdir()
    (home / "pokemon.zip").write_bytes(b"half a zip")
    path = ensure_pokemon(url=server.url, sha1=SHA1, verbose=False)
    assert path.read_bytes() == BODY and server.requests == 1


def test_offline_is_a_data_error_that_mentions_data(home):
    with socket.socket() as s:                                # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/pokemon.zip"
    with pytest.raises(DataError) as e:
        ensure_pokemon(url=url, sha1=SHA1, verbose=False, timeout=5)
    message = str(e.value)
    assert "download" in message and "failed" in message and url in message
    assert "--data FOLDER_OR_ZIP" in message and "\n" not in message
    assert files_in(home) == []


def test_http_error_is_a_data_error(server, home):
    with pytest.raises(DataError, match="HTTP 404"):
        ensure_pokemon(url=server.url.replace("pokemon.zip", "missing.zip"), sha1=SHA1, verbose=False)
    assert files_in(home) == []


def test_home_defaults_to_user_cache(monkeypatch):
    monkeypatch.delenv("TINYGAN_HOME")
    assert tinygan_home() == Path.home() / ".cache" / "tinygan"
    assert default_data_path() == Path.home() / ".cache" / "tinygan" / "pokemon.zip"


def test_d2l_constants():
    assert POKEMON_URL == "http://d2l-data.s3-accelerate.amazonaws.com/pokemon.zip"
    assert POKEMON_SHA1 == "c065c0e2593b8b161a2d7873e42418bf6a21106c"


def test_load_images_without_a_path_downloads_then_loads(server, home, monkeypatch):
    monkeypatch.setattr(data, "ensure_pokemon",
                        functools.partial(ensure_pokemon, url=server.url, sha1=SHA1))
    result = data.load_images(None, image_size=4, verbose=False)
    assert result.files == ["pokemon/0.png", "pokemon/1.png", "pokemon/2.png"]
    first_pixels = data.to_uint8(result.images)[:, 0, 0]
    np.testing.assert_array_equal(first_pixels, [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    assert files_in(home) == ["cache", "pokemon.zip"]
    data.load_images(None, image_size=4, verbose=False)
    assert server.requests == 1


def test_sizes_for_people():
    from tinygan.progress import format_bytes as _size
    assert [_size(n) for n in (0, 553, 12_300, 40_100_000, 2.5e9)] == \
        ["0 B", "553 B", "12.3 kB", "40.1 MB", "2.5 GB"]
