"""The GPU path, run on a CPU through a strict stand-in for CuPy (tests/strict_cupy.py).

The stand-in's arrays are not NumPy arrays: what CuPy refuses (an implicit conversion to
NumPy, a NumPy operand, a function or keyword CuPy lacks) it refuses, and it counts every
device→host copy (a sync: the host waits for the GPU) and every upload, with where it
happened. So these tests are the CPU's proof that the CuPy branch runs — every user-facing
command: training with each recipe and option, resume, sample, export, every explore.py
subcommand, the benchmark — and that a training step never waits for the host. What only
a GPU can show (speed, the GPU's rounding, CUDA kernels) is tests/test_gpu.py's.

Sizes are tiny (16×16 images, 4 features, batch 4) so that the whole file takes seconds.
"""
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import strict_cupy
import tinygan
from conftest import make_sprites
from tinygan import nn
from tinygan import train as train_mod
from tinygan.dcgan import augmentation, build, train_step
from tinygan.optim import Adam

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "benchmarks"), str(ROOT / "scripts")]
import explore  # noqa: E402
import gpu_profile  # noqa: E402
import gpu_warm  # noqa: E402
import pokemon  # noqa: E402
import train_step as bench  # noqa: E402

TINY = ["--image-size", "16", "--features", "4", "--latent-dim", "8", "--batch-size", "4", "--no-progress"]


@pytest.fixture
def standin():
    """The stand-in installed as ``cupy``; tinygan still on NumPy, as in a fresh process."""
    with strict_cupy.installed() as mod:
        yield mod


@pytest.fixture
def cp(standin):
    """The stand-in, with tinygan on it in float32; NumPy again afterwards."""
    tinygan.use("cupy", np.float32)
    return standin


def gan_on_device(cp, recipe="paper", batch=8, image_size=32, latent=16, features=8, **options):
    """G, D, both Adams, a real batch and z, all on the device."""
    G, D = build(recipe, latent, features, image_size, seed=0, **options)
    G.to("cupy"), D.to("cupy")
    rng = np.random.default_rng(0)
    real = cp.asarray(rng.uniform(-1, 1, (batch, 3, image_size, image_size)).astype(np.float32))
    z = cp.asarray(rng.standard_normal((batch, latent, 1, 1)).astype(np.float32))
    return G, D, Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999)), real, z


# ----- instance noise is drawn on the device ----------------------------------------------------

def test_instance_noise_is_drawn_on_the_device(cp):
    """A step with --instance-noise uploads no noise: ε is drawn where x is. (Drawn on the host it
    was three batch-sized normal arrays a step — 189 ms at batch 256 on a CPU — and three uploads.)"""
    G, D, opt_G, opt_D, real, z = gan_on_device(cp)
    noise = augmentation("paper", np.random.default_rng(1), instance_noise=0.1)
    with cp.watch() as seen:
        train_step(G, D, opt_G, opt_D, real, z, nn.BCEWithLogitsLoss(), augment=noise)
    from_noise = [t for t in seen.uploads if "noise.py" in t.where]
    assert from_noise == [] and seen.syncs == [], seen.report()
    eps = noise.eps
    assert type(eps).__module__ == "cupy" and eps.shape == real.shape and eps.dtype == np.float32


def test_device_noise_is_standard_normal_fresh_and_decided_by_the_runs_rng(cp):
    x = cp.zeros((16, 3, 32, 32), dtype=np.float32)
    a, b = InstanceNoiseOnDevice(seed=3), InstanceNoiseOnDevice(seed=3)
    first, again = a(x).get(), a(x).get()
    assert abs(first.mean()) < 0.01 and first.std() == pytest.approx(0.5, rel=0.02)
    assert not np.array_equal(first, again)                      # a new ε every call
    assert np.array_equal(b(x).get(), first)                     # the same rng state, the same noise
    a.replay = True
    assert np.array_equal(a(x).get(), again)                     # replay: the last ε (gradient checks)


def test_a_copy_of_the_noise_layer_carries_no_device_generator(cp):
    """CuPy's generator holds a cuRAND handle that the first copy to be freed would destroy under
    the other's feet: copies (the run's ETA timing deep-copies the augmentation) make their own."""
    noise = InstanceNoiseOnDevice(seed=0)
    noise(cp.zeros((2, 3, 4, 4), dtype=np.float32))
    twin = copy.deepcopy(noise)
    assert twin.device_rng is None and noise.device_rng is not None
    assert twin(cp.zeros((2, 3, 4, 4), dtype=np.float32)).shape == (2, 3, 4, 4)


def InstanceNoiseOnDevice(seed):
    return nn.InstanceNoise(0.5, rng=np.random.default_rng(seed))


# ----- a training step never waits for the host ------------------------------------------------

STEP_CASES = {
    "paper": ("paper", {}, {}),
    "d2l": ("d2l", {}, {}),
    "sprites (DiffAugment), label 0.9": ("sprites", {}, {"real_label": 0.9}),
    "instance noise": ("paper", {}, {"noise": 0.1}),
    "sprites + instance noise": ("sprites", {}, {"noise": 0.1}),
    "spectral norm": ("paper", {"d_spectral_norm": True}, {}),
    "minibatch std": ("paper", {"d_minibatch_std": True}, {}),
    "nearest upsampling": ("paper", {"upsample": "nearest"}, {}),
}


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_a_training_step_makes_no_sync(cp, case):
    """No device→host copy inside train_step (its losses stay on the device), and nothing of an
    image's size is uploaded: only DiffAugment's few numbers per image."""
    recipe, build_options, step_options = STEP_CASES[case]
    G, D, opt_G, opt_D, real, z = gan_on_device(cp, recipe, **build_options)
    augment = augmentation(recipe, np.random.default_rng(1), step_options.get("noise", 0.0))
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum" if recipe == "d2l" else "mean")
    train_step(G, D, opt_G, opt_D, real, z, loss_fn, {}, augment=augment)        # first calls: scratch, caches
    with cp.watch() as seen:
        stats = {}
        loss_D, loss_G = train_step(G, D, opt_G, opt_D, real, z, loss_fn, stats, augment=augment,
                                    real_label=step_options.get("real_label", 1.0))
    assert seen.syncs == [], f"{case}: " + seen.report()
    per_image = max([t.nbytes for t in seen.uploads], default=0) / real.shape[0]
    assert per_image <= 8, f"{case}: an upload of {per_image:.0f} bytes per image in a step: " + seen.report()
    for v in (loss_D, loss_G, stats["d_real"], stats["d_fake"]):
        assert type(v).__module__ == "cupy" and v.shape == () and np.isfinite(float(v))


def loop_syncs(transfers):
    """{what the training loop called: syncs} for the syncs inside ``train.run``'s loop — those whose
    stack passes through ``Run.step``, ``Run.batches`` or ``EpochLog.step`` right under ``run``."""
    out = {}
    for t in transfers.syncs:
        names = [frame.split(" ")[-1] for frame in t.stack]
        if "run" in names and names.index("run") > 0:
            child = names[names.index("run") - 1]
            if child in ("Run.step", "Run.batches", "EpochLog.step"):
                out[child] = out.get(child, 0) + 1
                assert child != "EpochLog.step" or "EpochLog.sync" in names, str(t)
    return out


@pytest.mark.parametrize("window,expected", [("epoch", "one per epoch"), ("step", "one per step")])
def test_a_run_syncs_once_per_logging_window(standin, sprites, tmp_path, monkeypatch, window, expected):
    """The loop copies a window's losses to the host in one go: one sync per window, none in the
    steps or the batches. Windows of 1e9 s end only with the epoch; windows of 0 s are every step."""
    monkeypatch.setitem(train_mod.SYNC_SECONDS, "cupy", 1e9 if window == "epoch" else 0.0)
    cfg = train_mod.Config(backend="cupy", data=str(sprites), out=str(tmp_path / "run"), epochs=2, image_size=16,
                           features=4, latent_dim=8, batch_size=4, progress=False, recipe="sprites",
                           instance_noise=0.1)
    summary = train_mod.run(cfg)
    windows = 2 if window == "epoch" else summary["steps"]
    assert summary["steps"] == 6 and loop_syncs(strict_cupy.transfers) == {"EpochLog.step": windows}, (
        f"{expected}: " + strict_cupy.transfers.report())
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(np.isfinite(r["loss_D"]) for r in records)


# ----- every command a user runs with --backend cupy ------------------------------------------

def no_sync_in_a_step(transfers):
    inside = [t for t in transfers.syncs if any(f.endswith(" train_step") for f in t.stack)]
    assert inside == [], "syncs inside train_step:\n" + "\n".join(map(str, inside))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_sprites(tmp_path_factory.mktemp("gpu_path") / "sprites", n=12)


TRAIN_CASES = {
    "paper": [],
    "d2l, spectral norm, moving average, TTUR": ["--recipe", "d2l", "--d-spectral-norm", "--ema", "0.9",
                                                  "--lr-d", "1e-3"],
    "sprites and every option": ["--recipe", "sprites", "--instance-noise", "0.1", "--d-minibatch-std",
                                 "--upsample", "nearest", "--swd-every", "1", "--summary", "--tf32",
                                 "--real-label", "0.9", "--limit", "10"],
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_training_on_the_device(standin, data, tmp_path, monkeypatch, case, capsys):
    monkeypatch.setenv("CUPY_TF32", os.environ.get("CUPY_TF32", "0"))          # --tf32 sets it: put it back
    out = tmp_path / "run"
    rc = pokemon.main(["--backend", "cupy", "--data", str(data), "--epochs", "2", "--out", str(out), *TINY,
                       *TRAIN_CASES[case]])
    said = capsys.readouterr().out
    assert rc == 0 and "uploaded to the GPU once" in said, said
    for name in ("samples_epoch_002.png", "losses.png", "progress.gif", "checkpoint.npz", "log.jsonl"):
        assert (out / name).is_file(), f"{name} missing"
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "cupy" and config["tf32"] == ("--tf32" in TRAIN_CASES[case])
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert ("swd" in records[-1]) == ("--swd-every" in TRAIN_CASES[case])
    no_sync_in_a_step(strict_cupy.transfers)


@pytest.fixture(scope="module")
def device_run(data, tmp_path_factory):
    """A tiny run trained on the device (the stand-in), for resume, sample, export and explore."""
    out = tmp_path_factory.mktemp("device_run") / "run"
    with strict_cupy.installed():
        assert pokemon.main(["--backend", "cupy", "--data", str(data), "--epochs", "1", "--out", str(out),
                             "--limit", "8", *TINY]) == 0
    return out


def test_resume_on_the_device(standin, device_run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for f in device_run.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    assert pokemon.main(["--resume", str(out / "checkpoint.npz"), "--epochs", "2"]) == 0
    said = capsys.readouterr().out
    assert "resumed" in said and "cupy" in said
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    no_sync_in_a_step(strict_cupy.transfers)


@pytest.mark.parametrize("weights", ["last", "ema"])
def test_sample_on_the_device(standin, device_run, tmp_path, weights, capsys):
    args = ["--weights", "ema"] if weights == "ema" else []
    rc = pokemon.main(["sample", "--checkpoint", str(device_run / "checkpoint.npz"), "--backend", "cupy",
                       "--n", "4", "--out", str(tmp_path / "grid.png"), *args])
    said = capsys.readouterr()
    if weights == "ema":                                   # a paper run keeps no moving average: said so
        assert rc == 1 and "holds no moving average" in said.err
    else:
        assert rc == 0 and (tmp_path / "grid.png").is_file(), said.err


def test_export_of_a_device_run(standin, device_run, tmp_path):
    pytest.importorskip("torch", reason="export writes PyTorch's .pth")
    assert pokemon.main(["export", "--checkpoint", str(device_run / "checkpoint.npz"),
                         "--out", str(tmp_path / "netG.pth")]) == 0
    assert (tmp_path / "netG.pth").is_file() and (tmp_path / "netD.pth").is_file()


EXPLORE = {
    "walk": ["--points", "3", "--steps", "3", "--gif", "{tmp}/walk.gif"],
    "arithmetic": ["--n", "9"],
    "arithmetic A-B+C": ["--n", "9", "--a", "0,1,2", "--b", "3,4,5", "--c", "6,7,8"],
    "memorisation": ["--n", "8", "--show", "2"],
    "swd": ["--n", "4"],
    "features": ["--n-train", "40", "--n-test", "20", "--epochs", "1"],
    "filters": [],
    "saliency": ["--n", "2"],
    "checkerboard": [],
    "summary": [],
}


@pytest.mark.parametrize("case", list(EXPLORE))
def test_explore_on_the_device(standin, device_run, tmp_path, case, capsys):
    command = case.split(" ")[0]
    if command == "features":
        pytest.importorskip("sklearn", reason="the features experiment's digits come from scikit-learn")
    out = tmp_path / f"{command}.png"
    extra = [a.format(tmp=tmp_path) for a in EXPLORE[case]]
    rc = explore.main([command, "--checkpoint", str(device_run / "checkpoint.npz"), "--backend", "cupy",
                       *([] if command == "summary" else ["--out", str(out)]), *extra])
    said = capsys.readouterr()
    assert rc == 0, said.err
    assert command == "summary" and "Discriminator" in said.out or out.is_file()
    assert strict_cupy.transfers.syncs, "the stand-in saw no device→host copy: was the device used?"


@pytest.mark.parametrize("math", ["strict FP32", "TF32 on both"])
def test_the_benchmark_on_the_device(standin, monkeypatch, capsys, math):
    """benchmarks/train_step.py --backend cupy, two timed steps (PyTorch has no CUDA here: tinygan alone)."""
    for name in (*bench.threadctl._ENV, "OPENBLAS_THREAD_TIMEOUT", "CUPY_TF32"):      # it sets these: put back
        monkeypatch.setenv(name, os.environ.get(name, "")) if name in os.environ else monkeypatch.delenv(name, False)
    rc = bench.main(["--backend", "cupy", "--batch-size", "4", "--image-size", "16", "--features", "4",
                     "--latent", "8", "--warmup", "1", "--repeats", "2", "--settle", "0", "--no-memory", "--json",
                     *(["--tf32"] if math == "TF32 on both" else [])])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and result["backend"] == "cupy" and result["math"] == math
    assert result["tinygan_stats"]["examples_per_sec"] > 0
    assert result["math_settings"]["CUPY_TF32"] == ("1" if math == "TF32 on both" else "0")
    no_sync_in_a_step(strict_cupy.transfers)


# ----- the GPU session's own scripts ----------------------------------------------------------

def test_the_sessions_warm_up_runs_every_kind_of_step(standin, capsys):
    """scripts/gpu_warm.py at toy sizes: every recipe and option it warms runs on the device."""
    assert gpu_warm.main(["--tiny"]) == 0
    said = capsys.readouterr().out
    lines = said.splitlines()
    assert sum(line.startswith("warm: ") for line in lines) == len(gpu_warm.parts(True))
    assert lines[-1].startswith("=== warm:")


def test_the_profile_keeps_each_section_and_survives_a_failing_one(standin, tmp_path, capsys):
    """scripts/gpu_profile.py writes its JSON after every section; a section that fails (here the
    CUDA kernels, which a CPU cannot run) is recorded and the next one still runs."""
    out = tmp_path / "profile.json"
    assert gpu_profile.main(["--batch-size", "4", "--repeats", "2", "--image-size", "16", "--features", "4",
                             "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["layers"]) == 14 and all(r["forward_ms"] >= 0 for r in result["layers"])
    for name in ("col2im", "adam", "bn_act"):
        assert "runs no CUDA code" in result[name]["error"]
    said = capsys.readouterr().err
    assert [line.split(":")[1].strip() for line in said.splitlines() if line.startswith("profile:")] == \
        ["layers", "col2im", "adam", "bn_act"]
