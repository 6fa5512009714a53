"""What a machine cannot do is refused in one line, naming the thing and what to do, before any
work: sizes whose arrays would not fit (tinygan/memory.py), and output paths under a file."""
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import pokemon  # noqa: E402
from conftest import make_sprites  # noqa: E402

from tinygan import data, memory, train  # noqa: E402
from tinygan.dcgan import build  # noqa: E402
from tinygan.nn import sampling  # noqa: E402

TINY = ["--image-size", "16", "--features", "4", "--latent-dim", "8", "--batch-size", "4", "--no-progress"]
GB = 10 ** 9


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))


@pytest.fixture
def sprites(tmp_path):
    return make_sprites(tmp_path / "sprites")


@pytest.fixture
def checkpoint(sprites, tmp_path):
    """A tiny run's checkpoint.npz (16×16, features 4, latent size 8): two steps."""
    assert pokemon.main(["--data", str(sprites), "--steps", "2", "--out", str(tmp_path / "run"), *TINY]) == 0
    return tmp_path / "run" / "checkpoint.npz"


def one_line_error(capsys):
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, out + err
    return err.strip()


def nothing_built(monkeypatch):
    """Make building the models or decoding the images fail the test: a refusal must come first."""
    def built(*a, **k):
        raise AssertionError("allocated before the refusal")
    monkeypatch.setattr(train.checkpoint, "models_from_arch", built)
    monkeypatch.setattr(data, "_decode_all", built)


# ----- sizes -------------------------------------------------------------------------------------

def test_sample_with_more_images_than_memory_holds_is_refused_before_drawing(checkpoint, tmp_path, capsys, monkeypatch):
    """It ended in a MemoryError traceback (z alone for 10,000,000 images is 8 GB in float64)."""
    capsys.readouterr()
    monkeypatch.setattr(memory, "available", lambda: 8 * GB)
    t = time.perf_counter()
    tracemalloc.start()
    try:
        assert pokemon.main(["sample", "--checkpoint", str(checkpoint), "--n", "10000000",
                             "--out", str(tmp_path / "g.png")]) == 1
        assert tracemalloc.get_traced_memory()[1] < 50 * 10 ** 6          # no z, no images: the model only
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t < 5
    err = one_line_error(capsys)
    assert err.startswith("error: sample --n 10000000 (16x16, features 4) would need about ")
    assert " GB of memory, but 8.0 GB is available; draw fewer images at once (--n)" in err, err
    assert not (tmp_path / "g.png").exists()


def test_sample_within_memory_still_draws(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available", lambda: 8 * GB)
    assert pokemon.main(["sample", "--checkpoint", str(checkpoint), "--n", "16", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").exists()


@pytest.mark.parametrize("flags, have, says, lower", [
    (["--features", "100000"], 8 * GB, "training 16x16 images with features 100000, latent size 8 (the models with "
     "their gradients, Adam's moments and G's moving average: ", "lower --features, --image-size or --latent-dim"),
    (["--latent-dim", "1000000000"], 8 * GB, "latent size 1000000000 (the models", "lower --features"),
    (["--steps", "1000000000000"], 8 * GB, "the per-step history: 200.0 TB)", "lower --steps or --epochs"),
    # 12 images of 256×256 in one batch: the data set (14 MB) and models fit, a step's activations do not
    (["--image-size", "256", "--batch-size", "12"], 100 * 10 ** 6, "batches of 12 (",
     "lower --batch-size, --image-size or --features"),
])
def test_training_sizes_that_do_not_fit_are_refused_before_the_models_are_built(
        sprites, tmp_path, capsys, monkeypatch, flags, have, says, lower):
    monkeypatch.setattr(memory, "available", lambda: have)
    if "--image-size" not in flags:
        nothing_built(monkeypatch)
    else:
        monkeypatch.setattr(train.checkpoint, "models_from_arch", lambda *a, **k: pytest.fail("models built"))
    args = ["--data", str(sprites), "--out", str(tmp_path / "run"), *TINY, *flags]
    assert pokemon.main(args) == 1
    err = one_line_error(capsys)
    assert says in err and f"is available; {lower}" in err and "would need about" in err, err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_images_too_large_to_load_are_refused_before_decoding(sprites, tmp_path, capsys, monkeypatch):
    """12 images of 512×512: the models fit in 40 MB (29 MB), the data set does not (57 MB)."""
    monkeypatch.setattr(memory, "available", lambda: 40 * 10 ** 6)
    monkeypatch.setattr(data, "_decode_all", lambda *a, **k: pytest.fail("decoded"))
    assert pokemon.main(["--data", str(sprites), "--out", str(tmp_path / "run"), *TINY, "--image-size", "512"]) == 1
    err = one_line_error(capsys)
    assert err == ("error: loading 12 images at 512x512 would need about 56.6 MB of memory, but 40.0 MB is available; "
                   "choose a smaller --image-size, or fewer images (--limit)"), err
    assert not (tmp_path / "home" / "cache").exists()


def test_summary_of_models_that_do_not_fit_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available", lambda: 8 * GB)
    nothing_built(monkeypatch)
    monkeypatch.setattr("tinygan.checkpoint.models_from_arch", lambda *a, **k: pytest.fail("models built"))
    assert pokemon.main(["--summary", "--features", "100000", "--out", str(tmp_path / "run"), "--data", "x"]) == 1
    assert "lower --features, --image-size or --latent-dim" in one_line_error(capsys)


@pytest.mark.parametrize("S, F, Z", [(16, 8, 16), (32, 32, 100), (64, 16, 20)])
def test_the_estimates_are_within_a_fifth_of_what_numpy_allocates(S, F, Z):
    """``memory``'s floats per image against tracemalloc's peak for 64 more images (32 and 96), drawing
    and training, each on fresh models after a warm-up on 2 images (compiling the loops is not counted)."""
    from tinygan.dcgan import train_step
    from tinygan.optim import Adam
    rng = np.random.default_rng(0)
    z = lambda n: rng.standard_normal((n, Z, 1, 1)).astype(np.float32)                # noqa: E731

    def draw(G, D, opts, n):
        with sampling(G, "batch"):
            G(z(n))

    def step(G, D, opts, n):
        train_step(G, D, *opts, rng.standard_normal((n, 3, S, S)).astype(np.float32), z(n))

    def peak(work, n):
        G, D = build("paper", Z, F, S)
        opts = Adam(G.parameters()), Adam(D.parameters())
        step(G, D, opts, 2)
        draw(G, D, opts, 2)
        tracemalloc.start()
        try:
            work(G, D, opts, n)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    for work, counted in ((draw, memory.generator_floats(S, F, Z)), (step, memory.step_floats(S, F, Z))):
        per_image = (peak(work, 96) - peak(work, 32)) / 64
        assert abs(memory.FLOAT * counted / per_image - 1) < 0.2, (work.__name__, memory.FLOAT * counted, per_image)


def test_parameter_counts_are_the_models():
    for S, F, Z in ((16, 4, 8), (32, 32, 100), (64, 8, 20)):
        G, D = build("paper", Z, F, S)
        count = [sum(p.data.size for p in m.parameters()) + sum(b.size for _, b in m.named_buffers() if b.ndim)
                 for m in (G, D)]
        assert memory.parameter_count(S, F, Z) == tuple(count)


def test_available_is_a_number_of_bytes_and_require_says_what_and_how_much(monkeypatch):
    have = memory.available()
    assert have is None or have > 0
    memory.require(10, "ten bytes", "never", have=100)
    with pytest.raises(memory.NotEnoughMemory, match=r"^a thing would need about 2\.0 kB of memory, but 1\.0 kB is "
                                                     r"available; lower it$"):
        memory.require(2000, "a thing", "lower it", have=1000)
    monkeypatch.setattr(memory, "available", lambda: None)
    memory.require(10 ** 30, "anything", "where the memory is unknown, nothing is refused")


def test_memory_imports_only_the_lowest_rooms():
    from test_house import graph
    assert graph()["tinygan.memory"] <= {"tinygan.progress"}


# ----- output paths under a file ------------------------------------------------------------------

def test_export_into_a_path_under_a_file_says_so(checkpoint, tmp_path, capsys):
    pytest.importorskip("safetensors")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    for out in (tmp_path / "notes.txt" / "netG.safetensors", tmp_path / "notes.txt" / "deeper" / "netG.safetensors"):
        capsys.readouterr()
        assert pokemon.main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 1
        assert one_line_error(capsys) == (f"error: cannot write {out}: {tmp_path / 'notes.txt'} is a file, not a "
                                          f"folder; choose another --out")
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder"
    out = tmp_path / "new" / "folder" / "netG.safetensors"              # a folder that is not there is made
    assert pokemon.main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert out.exists() and (out.parent / "netD.safetensors").exists()


def test_sample_and_training_into_a_path_under_a_file_say_so(checkpoint, sprites, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("")
    capsys.readouterr()
    assert pokemon.main(["sample", "--checkpoint", str(checkpoint),
                         "--out", str(tmp_path / "notes.txt" / "g.png")]) == 1
    assert one_line_error(capsys).endswith(f"{tmp_path / 'notes.txt'} is a file, not a folder; choose another --out")
    assert pokemon.main(["--data", str(sprites), "--out", str(tmp_path / "notes.txt" / "run"), *TINY]) == 1
    assert one_line_error(capsys) == (f"error: output folder {tmp_path / 'notes.txt' / 'run'} is not writable "
                                      f"({tmp_path / 'notes.txt'} is a file, not a folder): choose another with --out")


@pytest.mark.parametrize("v1", [False, True], ids=["cgroup-v2", "cgroup-v1"])
def test_a_containers_reclaimable_page_cache_counts_as_available(tmp_path, monkeypatch, v1):
    """A container's usage grows to its limit with cached files (an install, the data set read);
    the kernel drops that cache on demand, so it is not memory a run is refused for."""
    GiB, MiB = 2 ** 30, 2 ** 20
    names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file") if v1 else \
        ("memory.max", "memory.current", "inactive_file")
    (tmp_path / names[0]).write_text(f"{2 * GiB}\n")
    (tmp_path / names[1]).write_text(f"{2 * GiB - 20 * MiB}\n")
    (tmp_path / "memory.stat").write_text(f"anon 123\n{names[2]} {GiB}\nactive_file 5\n")
    monkeypatch.setattr(memory, "CGROUPS", ())
    host = memory.available()                                               # MemAvailable alone
    monkeypatch.setattr(memory, "CGROUPS", ((str(tmp_path), *names),))
    have = memory.available()
    assert have == min(host, GiB + 20 * MiB), f"{have} bytes: the reclaimable 1 GiB was counted as used"
    (tmp_path / "memory.stat").write_text("anon 123\n")                      # no cache to drop: the limit binds
    assert memory.available() <= 20 * MiB
