"""examples/pokemon.py end to end: outputs, resume, sampling, flags, interruption, divergence."""
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pokemon.py"
SPRITES = ROOT.parent / "shared" / "data" / "pokesprite-gen8"

sys.path.insert(0, str(ROOT / "examples"))
import pokemon  # noqa: E402
from conftest import TIMING_STEPS, make_sprites, on_train_step  # noqa: E402


@pytest.fixture
def sprite_folder(tmp_path):
    """A handful of sprites: the real ones when present, else made-up RGBA sprites."""
    folder = tmp_path / "sprites"
    folder.mkdir()
    if SPRITES.is_dir():
        for f in sorted(SPRITES.glob("*.png"))[:12]:
            (folder / f.name).write_bytes(f.read_bytes())
    else:
        make_sprites(folder, size=(68, 56))
    return folder


def run_example(args, tmp_path, check=True, **kw):
    env = {**os.environ, "TINYGAN_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          env=env, timeout=300, **kw)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


TINY = ["--image-size", "16", "--features", "4", "--latent-dim", "8", "--batch-size", "4", "--no-progress"]


def test_two_epochs_write_every_output(sprite_folder, tmp_path):
    out = tmp_path / "run"
    proc = run_example(["--data", str(sprite_folder), "--epochs", "2", "--out", str(out), *TINY], tmp_path)
    names = {p.name for p in out.iterdir()}
    for name in ["real.png", "samples_epoch_001.png", "samples_epoch_002.png", "losses.png",
                 "log.jsonl", "config.json", "checkpoint.npz", "progress.gif"]:
        assert name in names, f"{name} missing from {sorted(names)}"
    assert not [n for n in names if n.endswith(".tmp")]
    assert ".tinygan-run.lock" not in names                    # the run's lock is gone with it
    # progress.gif: the two epoch grids, in order, as frames of the animation
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 2
        frames = []
        for i in range(2):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB").resize((64, 64))).astype(float))
    grids = [np.asarray(Image.open(out / f"samples_epoch_00{i}.png").convert("RGB").resize((64, 64))).astype(float)
             for i in (1, 2)]
    assert np.abs(frames[0] - grids[0]).mean() < np.abs(frames[0] - grids[1]).mean()
    # the log: one line per epoch with every field, finite numbers
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r) == {"epoch", "loss_D", "loss_G", "D(x)", "D(G(z))", "examples_per_sec", "seconds"}
        assert all(np.isfinite(v) for v in r.values())
        assert 0 < r["D(x)"] < 1 and 0 < r["D(G(z))"] < 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["image_size"] == 16 and cfg["epochs"] == 2 and cfg["images"] == 12
    # pictures: 12 real images → 3 rows of 4 16-px tiles at scale 2; 64 samples → 8×8
    assert Image.open(out / "real.png").size == (2 * (4 * 18 + 2), 2 * (3 * 18 + 2))
    assert Image.open(out / "samples_epoch_002.png").size == (2 * (8 * 18 + 2),) * 2
    assert Image.open(out / "losses.png").size[0] > 300
    # the samples change between epochs (G is training), from the same fixed noise
    a = np.asarray(Image.open(out / "samples_epoch_001.png"))
    b = np.asarray(Image.open(out / "samples_epoch_002.png"))
    assert not np.array_equal(a, b)
    # the deck's trace line closes the run
    assert "examples/sec" in proc.stdout.splitlines()[-2] and proc.stdout.splitlines()[-2].startswith("loss_D ")
    # the checkpoint holds G, D (with running stats), both Adam states, RNG state and epoch
    with np.load(out / "checkpoint.npz") as ck:
        keys = set(ck.files)
        meta = json.loads(str(ck["meta"]))
    assert {"G/main.1.running_mean", "D/main.3.running_var", "opt_G/exp_avg.0", "opt_D/exp_avg_sq.0",
            "extra/fixed_noise"} <= keys
    assert meta["epoch"] == 2 and meta["step"] == 6 and "rng_state" in meta


def _weights(path):
    with np.load(path) as ck:
        return {k: ck[k] for k in ck.files if k != "meta"}


def test_tf32_is_a_setting_of_the_run_kept_in_config_json_and_on_resume(sprite_folder, tmp_path):
    """--tf32 is written to config.json (and the checkpoint) like every other setting, and a
    --resume without the flag goes on as the run was set; on numpy it changes nothing else."""
    out = tmp_path / "run"
    proc = run_example(["--data", str(sprite_folder), *TINY, "--epochs", "1", "--tf32", "--out", str(out)], tmp_path)
    assert json.loads((out / "config.json").read_text())["tf32"] is True, proc.stdout
    run_example(["--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--no-progress"], tmp_path)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["tf32"] is True and cfg["epochs"] == 2
    plain = tmp_path / "plain"
    run_example(["--data", str(sprite_folder), *TINY, "--epochs", "1", "--out", str(plain)], tmp_path)
    assert json.loads((plain / "config.json").read_text())["tf32"] is False


@pytest.mark.parametrize("recipe", ["paper", "sprites"])
def test_resume_is_bit_identical(sprite_folder, tmp_path, recipe):
    """Also with DiffAugment, whose random numbers come from the run's rng (saved in the checkpoint)."""
    common = ["--data", str(sprite_folder), "--recipe", recipe, *TINY]
    run_example([*common, "--epochs", "2", "--out", str(tmp_path / "straight")], tmp_path)
    run_example([*common, "--epochs", "1", "--out", str(tmp_path / "split")], tmp_path)
    run_example(["--resume", str(tmp_path / "split" / "checkpoint.npz"), "--epochs", "2", "--no-progress"], tmp_path)
    a, b = _weights(tmp_path / "straight" / "checkpoint.npz"), _weights(tmp_path / "split" / "checkpoint.npz")
    assert a.keys() == b.keys()
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, different


def test_resume_refuses_a_different_architecture(sprite_folder, tmp_path):
    run_example(["--data", str(sprite_folder), "--epochs", "1", "--out", str(tmp_path / "r"), *TINY], tmp_path)
    proc = run_example(["--resume", str(tmp_path / "r" / "checkpoint.npz"), "--image-size", "32"], tmp_path, check=False)
    assert proc.returncode == 2 and "--image-size 32 (checkpoint: 16)" in proc.stderr


def test_sample_command_both_batchnorm_modes(sprite_folder, tmp_path):
    run_example(["--data", str(sprite_folder), "--epochs", "1", "--out", str(tmp_path / "r"), *TINY], tmp_path)
    ck = str(tmp_path / "r" / "checkpoint.npz")
    grids = {}
    for bn in ("batch", "running"):
        out = tmp_path / f"grid_{bn}.png"
        proc = run_example(["sample", "--checkpoint", ck, "--n", "9", "--out", str(out), "--bn", bn], tmp_path)
        assert f"BatchNorm: {bn}" in proc.stdout
        grids[bn] = np.asarray(Image.open(out))
        assert grids[bn].shape == (2 * (3 * 18 + 2), 2 * (3 * 18 + 2), 3)
    assert not np.array_equal(grids["batch"], grids["running"])


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs: must be a positive integer"),
    (["--batch-size", "-3"], "--batch-size: must be a positive integer"),
    (["--lr", "0"], "--lr: must be a positive number"),
    (["--image-size", "48"], "--image-size: must be a power of two"),
    (["--image-size", "8"], "--image-size: must be a power of two"),
    (["--backend", "jax"], "invalid choice: 'jax'"),
    (["--resume", "no/such/file.npz"], "--resume: checkpoint no/such/file.npz does not exist"),
    (["--background", "notacolour"], "background colour 'notacolour' not understood"),
])
def test_bad_flags_exit_2_before_any_work(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        pokemon.main(flags + ["--out", str(tmp_path / "never")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_help_explains_defaults_and_sampling(capsys):
    with pytest.raises(SystemExit) as e:
        pokemon.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--backend" in text and "sample --checkpoint" in text and "64x64, features 64, batch 256," in text


def test_sigterm_writes_checkpoint_and_resume_finishes(sprite_folder, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "TINYGAN_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--data", str(sprite_folder), "--epochs", "500",
                             "--out", str(out), *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 120
    while not (out / "log.jsonl").exists() and time.time() < deadline:   # let it finish an epoch
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "--resume" in stderr and str(out / "checkpoint.npz") in stderr
    with np.load(out / "checkpoint.npz") as ck:
        meta = json.loads(str(ck["meta"]))
    assert meta["step"] >= 3
    resumed = run_example(["--resume", str(out / "checkpoint.npz"), "--epochs", str(meta["epoch"] + 1)], tmp_path)
    assert "resumed" in resumed.stdout
    with np.load(out / "checkpoint.npz") as ck:
        assert json.loads(str(ck["meta"]))["epoch"] == meta["epoch"] + 1


def test_divergence_stops_with_the_step_and_keeps_last_checkpoint(sprite_folder, tmp_path, monkeypatch):
    """A NaN loss stops the run naming the step; the last good checkpoint survives."""
    from tinygan import train as train_mod

    out = tmp_path / "run"
    cfg = train_mod.Config(data=str(sprite_folder), out=str(out), epochs=3, image_size=16, features=4,
                           latent_dim=8, batch_size=4, progress=False)
    # step 5 = the 2nd of epoch 2 (3 steps per epoch): loss_D turns NaN
    on_train_step(monkeypatch, TIMING_STEPS + 3 + 2, lambda losses: (losses[0] * np.nan, losses[1]))
    with pytest.raises(train_mod.TrainingDiverged, match="diverged at step 5 \\(epoch 2\\)"):
        train_mod.run(cfg)
    with np.load(out / "checkpoint.npz") as ck:
        assert json.loads(str(ck["meta"]))["epoch"] == 1
    assert (out / "diverged_step_5.png").exists()


@pytest.mark.data
@pytest.mark.skipif(not SPRITES.is_dir(), reason=f"real sprites not found at {SPRITES}")
def test_real_sprites_short_run(tmp_path):
    out = tmp_path / "run"
    run_example(["--data", str(SPRITES), "--limit", "32", "--epochs", "1", "--out", str(out), *TINY], tmp_path)
    assert json.loads((out / "config.json").read_text())["images"] == 32


def test_sample_rebuilds_a_nearest_upsampling_generator(sprite_folder, tmp_path):
    run_example(["--data", str(sprite_folder), "--epochs", "1", "--upsample", "nearest",
                 "--out", str(tmp_path / "r"), *TINY], tmp_path)
    proc = run_example(["sample", "--checkpoint", str(tmp_path / "r" / "checkpoint.npz"), "--n", "4",
                        "--out", str(tmp_path / "g.png")], tmp_path)
    assert "wrote 4 samples (16x16" in proc.stdout
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (2 * (2 * 18 + 2),) * 2 + (3,)


def test_a_second_run_into_a_held_folder_stops_at_once(sprite_folder, tmp_path):
    """While one run holds --out, another into it exits 1 at once naming the folder and the pid."""
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tinygan.runlock import RunLock\n"
                               f"with RunLock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_example(["--data", str(sprite_folder), "--epochs", "1", "--out", str(out), *TINY], tmp_path,
                           check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(out) in line and f"pid {holder.pid}" in line and "--out" in line
    assert not (out / "checkpoint.npz").exists() and not (out / "config.json").exists()
    # the holder died without releasing: its lock is stale, and the next run takes it over
    proc = run_example(["--data", str(sprite_folder), "--epochs", "1", "--out", str(out), *TINY], tmp_path)
    assert "stale" in proc.stdout + proc.stderr and (out / "checkpoint.npz").exists()


def test_the_examples_chores_are_the_standard_callbacks():
    """examples/pokemon.py lists the per-epoch chores itself (for the reader); they must be
    the ones ``train.run`` uses by default, in the same order."""
    from tinygan.callbacks import standard
    from tinygan.train import Config
    for cfg in (Config(), Config(swd_every=5, progress=False)):
        assert list(map(repr, pokemon.chores(cfg))) == list(map(repr, standard(cfg)))


def _unreachable_url():
    with socket.socket() as s:                                # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/pokemon.zip"


def test_without_data_or_network_cupy_stops_with_numpys_one_line(tmp_path, monkeypatch, capsys):
    """No --data on a machine that cannot download: exit 1 and one line naming --data, the same on
    --backend cupy as on numpy. CuPy is simulated (its check passes, NumPy does the work), as on a
    GPU machine without a network: there backend.use('cupy') succeeds first, then the download fails."""
    from tinygan import backend, data
    from tinygan.download import ensure_pokemon
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data, "ensure_pokemon", functools.partial(ensure_pokemon, url=_unreachable_url(), timeout=5))
    monkeypatch.setattr(backend, "_import_cupy", lambda: np)
    said = {}
    for name in ("numpy", "cupy"):
        rc = pokemon.main(["--backend", name, "--out", str(tmp_path / name), "--epochs", "1", "--no-progress"])
        out, err = capsys.readouterr()
        assert rc == 1, out + err
        assert err.startswith("error: no training data: no --data given, and d2l's Pokémon zip could not be "
                              "downloaded (") and err.count("\n") == 1, err
        assert "--data PATH" in err and "make demo DATA=PATH" in err and out == "", out
        said[name] = err
    assert said["cupy"] == said["numpy"]


def test_tf32_sets_cupy_tf32_before_the_backend_is_chosen(tmp_path, monkeypatch):
    """--tf32 puts CUPY_TF32=1 in the environment before backend.use (which imports CuPy) runs;
    without it the variable is left as it was."""
    from tinygan import backend
    monkeypatch.setenv("CUPY_TF32", "")
    monkeypatch.delenv("CUPY_TF32")                           # unset now, and restored after the test
    seen = []

    def use(name, dtype=None):
        seen.append(os.environ.get("CUPY_TF32"))
        raise RuntimeError("stop here")

    monkeypatch.setattr(backend, "use", use)
    for flags in ([], ["--tf32"]):
        assert pokemon.main(["--backend", "cupy", "--out", str(tmp_path / "run"), *flags]) == 1
    assert seen == [None, "1"]


def test_the_sprites_recipe_draws_its_grids_with_the_moving_average_of_g(sprite_folder, tmp_path):
    """--recipe sprites keeps an EMA of G (β 0.999) in the checkpoint; the epoch grid is that
    average's picture of the fixed noise, not G's; paper keeps none unless --ema asks."""
    from tinygan.checkpoint import load, load_models
    from tinygan.images import save_grid
    from tinygan.nn import sampling
    out = tmp_path / "sprites"
    run_example(["--data", str(sprite_folder), "--recipe", "sprites", "--epochs", "2", "--out", str(out), *TINY],
                tmp_path)
    assert json.loads((out / "config.json").read_text())["ema"] == 0.999
    saved = load(out / "checkpoint.npz")
    assert saved["G_ema"].keys() == saved["G"].keys()
    assert any(not np.array_equal(saved["G_ema"][k], saved["G"][k]) for k in saved["G"])
    grid = (out / "samples_epoch_002.png").read_bytes()
    for ema, same in ((True, True), (False, False)):
        G, _, _ = load_models(out / "checkpoint.npz", ema=ema)
        with sampling(G, bn="batch"):
            save_grid(G(saved["extra"]["fixed_noise"]), tmp_path / "again.png", scale=2)
        assert ((tmp_path / "again.png").read_bytes() == grid) is same, f"ema={ema}"

    plain = tmp_path / "paper"
    run_example(["--data", str(sprite_folder), "--epochs", "1", "--out", str(plain), *TINY], tmp_path)
    assert json.loads((plain / "config.json").read_text())["ema"] == 0.0
    assert load(plain / "checkpoint.npz")["G_ema"] == {}
    # --ema 0 takes it away from the sprites recipe: no average kept, the grids are G's
    no_ema = tmp_path / "sprites_no_ema"
    run_example(["--data", str(sprite_folder), "--recipe", "sprites", "--ema", "0", "--epochs", "1",
                 "--out", str(no_ema), *TINY], tmp_path)
    assert load(no_ema / "checkpoint.npz")["G_ema"] == {}
    G, _, _ = load_models(no_ema / "checkpoint.npz")
    with sampling(G, bn="batch"):
        save_grid(G(load(no_ema / "checkpoint.npz")["extra"]["fixed_noise"]), tmp_path / "g.png", scale=2)
    assert (tmp_path / "g.png").read_bytes() == (no_ema / "samples_epoch_001.png").read_bytes()
    # a run that had none gets one from G's weights when resumed with --ema
    proc = run_example(["--resume", str(plain / "checkpoint.npz"), "--epochs", "2", "--ema", "0.9", "--no-progress"],
                       tmp_path)
    assert "holds no moving average of G: it starts from G's weights at step " in proc.stdout
    assert load(plain / "checkpoint.npz")["G_ema"].keys() == saved["G"].keys()


def test_sample_and_export_choose_the_moving_average_or_the_last_weights(sprite_folder, tmp_path):
    run_example(["--data", str(sprite_folder), "--recipe", "sprites", "--epochs", "1", "--out", str(tmp_path / "s"),
                 *TINY], tmp_path)
    run_example(["--data", str(sprite_folder), "--epochs", "1", "--out", str(tmp_path / "p"), *TINY], tmp_path)
    grids = {}
    for run, weights, said in (("s", "auto", "the moving average of G's weights"), ("s", "ema", "the moving average"),
                               ("s", "last", "G's weights"), ("p", "auto", "G's weights")):
        png = tmp_path / f"{run}_{weights}.png"
        proc = run_example(["sample", "--checkpoint", str(tmp_path / run / "checkpoint.npz"), "--n", "4",
                            "--weights", weights, "--out", str(png)], tmp_path)
        assert f"16x16, {said}" in proc.stdout
        grids[run, weights] = png.read_bytes()
    assert grids["s", "auto"] == grids["s", "ema"] != grids["s", "last"]
    proc = run_example(["sample", "--checkpoint", str(tmp_path / "p" / "checkpoint.npz"), "--weights", "ema",
                        "--out", str(tmp_path / "never.png")], tmp_path, check=False)
    assert proc.returncode == 1 and "holds no moving average of G" in proc.stderr and "--weights last" in proc.stderr
    assert not (tmp_path / "never.png").exists()
    pytest.importorskip("safetensors", reason="export to .safetensors needs the safetensors package")
    from tinygan.torch_weights import load_generator
    from tinygan.checkpoint import load
    for weights, group in (("last", "G"), ("ema", "G_ema")):
        target = tmp_path / weights / "netG.safetensors"
        run_example(["export", "--checkpoint", str(tmp_path / "s" / "checkpoint.npz"), "--weights", weights,
                     "--out", str(target)], tmp_path)
        G = load_generator(str(target))
        expected = load(tmp_path / "s" / "checkpoint.npz")[group]
        for k, v in G.state_dict().items():
            np.testing.assert_array_equal(np.asarray(v), expected[k], err_msg=f"{weights}: {k}")
