"""benchmarks/quality.py: a run keeps its samples at the asked step counts, and the PyTorch twin is the same run."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import quality  # noqa: E402


def _train(sprites, out, *extra):
    quality.train(quality.parse_args(["train", "--data", str(sprites), "--out", str(out), "--steps", "2", "3",
                                      *extra]))


def test_a_run_keeps_samples_at_each_step_count(sprites, tmp_path):
    _train(sprites, tmp_path, "--recipe", "sprites", "--seed", "1")
    lines = [json.loads(x) for x in open(tmp_path / "runs.jsonl")]
    assert [(x["recipe"], x["seed"], x["step"]) for x in lines] == [("sprites", 1, 2), ("sprites", 1, 3)]
    kept = np.load(tmp_path / lines[-1]["samples"])
    assert kept["fake"].shape == kept["fake_ema"].shape == (quality.N_EVAL, 32, 32, 3)
    assert kept["fake"].dtype == np.uint8 and not np.array_equal(kept["fake"], kept["fake_ema"])
    assert (tmp_path / "tinygan_sprites_s1" / "step_000003.png").exists()


def test_a_run_stopped_and_trained_on_is_the_run_never_stopped(sprites, tmp_path):
    """train to 2 steps, then again to 4: the samples, EMA's included, and the losses at step 4 are
    those of one run straight to 4, bit for bit (models, Adam, rng, EMA and the recent losses
    all come back from the checkpoint)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["train", "--data", str(sprites), "--recipe", "sprites", "--seed", "3"]
    quality.train(quality.parse_args([*common, "--out", str(straight), "--steps", "4", "--checkpoint-every", "0"]))
    quality.train(quality.parse_args([*common, "--out", str(split), "--steps", "2", "--checkpoint-every", "3"]))
    assert (split / "tinygan_sprites_s3" / "checkpoint.npz").exists()         # written at the last step
    quality.train(quality.parse_args([*common, "--out", str(split), "--steps", "1", "4"]))   # 1 is past: skipped
    a = [json.loads(x) for x in open(straight / "runs.jsonl")]
    b = [json.loads(x) for x in open(split / "runs.jsonl")]
    assert [x["step"] for x in a] == [4] and [x["step"] for x in b] == [2, 4]
    assert (a[0]["loss_D"], a[0]["loss_G"]) == (b[1]["loss_D"], b[1]["loss_G"])
    assert b[1]["seconds"] > b[0]["seconds"]                                  # the clock goes on too
    for key in ("fake", "fake_ema"):
        np.testing.assert_array_equal(np.load(straight / a[0]["samples"])[key], np.load(split / b[1]["samples"])[key])
    # --restart starts over: its step 4 is the straight run's again
    quality.train(quality.parse_args([*common, "--out", str(split), "--steps", "4", "--restart"]))
    last = [json.loads(x) for x in open(split / "runs.jsonl")][-1]
    np.testing.assert_array_equal(np.load(split / last["samples"])["fake"], np.load(straight / a[0]["samples"])["fake"])


def test_a_checkpoint_of_other_settings_is_refused_in_one_line(sprites, tmp_path):
    quality.train(quality.parse_args(["train", "--data", str(sprites), "--out", str(tmp_path), "--steps", "1"]))
    path = tmp_path / "tinygan_sprites_s0" / "checkpoint.npz"
    other = quality.demo_config(str(sprites), "sprites", 0, str(path.parent), {"lr": 1e-3})
    with pytest.raises(SystemExit, match=r"is not a checkpoint of this run \(.*\blr 0.0002 -> 0.001, .*\); remove it or pass --restart"):
        quality.resumable(str(path), other)
    path.write_bytes(b"not a zip")
    with pytest.raises(SystemExit, match="truncated or not a tinygan checkpoint.*--restart"):
        quality.resumable(str(path), other)


def test_the_pytorch_twin_takes_the_same_steps(sprites, tmp_path):
    pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    _train(sprites, tmp_path, "--recipe", "paper")
    _train(sprites, tmp_path, "--recipe", "paper", "--framework", "torch")
    lines = [json.loads(x) for x in open(tmp_path / "runs.jsonl")]
    ours, theirs = lines[1], lines[3]
    assert (ours["framework"], theirs["framework"], ours["step"], theirs["step"]) == ("tinygan", "torch", 3, 3)
    assert theirs["loss_D"] == pytest.approx(ours["loss_D"], rel=1e-4)
    assert theirs["loss_G"] == pytest.approx(ours["loss_G"], rel=1e-4)
    a = np.load(tmp_path / ours["samples"])["fake"].astype(int)
    b = np.load(tmp_path / theirs["samples"])["fake"].astype(int)
    assert np.abs(a - b).max() <= 2          # the same images, to float32 rounding of a uint8


def test_torch_refuses_a_recipe_it_does_not_have(sprites, tmp_path):
    pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    with pytest.raises(SystemExit, match="runs the 'paper' recipe only"):
        _train(sprites, tmp_path, "--recipe", "sprites", "--framework", "torch")


def test_set_puts_config_fields_on_the_recipe(sprites, tmp_path):
    _train(sprites, tmp_path, "--recipe", "paper", "--set", "real_label=0.9", "d_minibatch_std=true")
    line = json.loads(open(tmp_path / "runs.jsonl").readline())
    assert line["recipe"] == "paper+real_label=0.9+d_minibatch_std=true"
    assert quality.parse_setting("lr_d=4e-4") == ("lr_d", 4e-4)
    assert quality.parse_setting("d_spectral_norm=false") == ("d_spectral_norm", False)
    with pytest.raises(SystemExit):
        quality.parse_args(["train", "--set", "nonsense=1"])


def test_report_keeps_the_last_line_of_a_sample_file_trained_twice():
    lines = [{"samples": "a/step_1.npz", "seed": 0, "seconds": 5},
             {"samples": "b/step_1.npz", "seed": 1, "seconds": 6},
             {"samples": "a/step_1.npz", "seed": 0, "seconds": 9}]      # run a trained again to step 1
    kept = quality.latest_per_sample_set(lines)
    assert [(x["samples"], x["seconds"]) for x in kept] == [("b/step_1.npz", 6), ("a/step_1.npz", 9)]


def test_scores_of_a_sample_file_written_again_are_not_reused(tmp_path, monkeypatch):
    path = str(tmp_path / "step_000002.npz")
    calls = []
    monkeypatch.setattr(quality, "swd_scores", lambda fake, reals: calls.append("swd") or {"swd": float(fake.mean())})
    monkeypatch.setattr(quality, "kid_scores", lambda fake, metric: {"recall": 0.5})
    np.savez(path, fake=np.zeros((2, 4, 4, 3), np.uint8))
    first = dict(quality.cached_scores(path, "fake", None, None))
    assert quality.cached_scores(path, "fake", None, None) == first and calls == ["swd"]     # cached
    np.savez(path, fake=np.full((2, 4, 4, 3), 255, np.uint8))                               # trained again
    os.utime(path, (1e9, 1e9))
    again = quality.cached_scores(path, "fake", None, None)
    assert calls == ["swd", "swd"] and again["swd"] != first["swd"]


def test_threads_take_effect_also_with_set(tmp_path):
    """--set parses Config fields, which imports numpy: --threads must be in the environment
    before that, or OpenBLAS starts with every core (two runs side by side would share them)."""
    import subprocess
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import quality, threads\n"
            "quality.parse_args(['train', '--threads', '1', '--set', 'real_label=0.9'])\n"
            "print(threads.blas_threads())")
    root = os.path.join(os.path.dirname(__file__), "..")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if out.stdout.split() == ["None"]:
        pytest.skip("numpy's BLAS does not say how many threads it uses (not OpenBLAS)")
    assert out.stdout.split() == ["1"], out.stdout


@pytest.mark.parametrize("value", ["0", "1", "-0.1"])
def test_set_ema_outside_0_1_is_refused_before_any_work(value, capsys):
    with pytest.raises(SystemExit) as e:
        quality.parse_args(["train", "--set", f"ema={value}"])
    assert e.value.code == 2 and "its β must be in (0, 1)" in capsys.readouterr().err


def test_report_also_merges_saved_reports_seed_by_seed(tmp_path):
    def saved(name, runs):
        path = tmp_path / name
        path.write_text(json.dumps({"rows": [{"framework": "tinygan", "recipe": "sprites", "steps": 80640,
                                              "sampler": "G", "runs": runs}]}))
        return str(path)
    a = saved("a.json", [{"seed": 0, "swd": 1.0}, {"seed": 1, "swd": 2.0}])
    b = saved("b.json", [{"seed": 1, "swd": 5.0}, {"seed": 2, "swd": 3.0}])
    rows = quality.merged_rows([a, b])
    assert {x["seed"]: x["swd"] for x in rows["tinygan", "sprites", 80640, "G"]} == {0: 1.0, 1: 5.0, 2: 3.0}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="bad.json is not a saved report"):
        quality.merged_rows([str(tmp_path / "bad.json")])


def test_instance_noise_anneals_over_the_runs_own_steps(sprites, tmp_path, monkeypatch):
    """--set instance_noise=σ falls linearly to 0 at max(--steps), the run's own last step."""
    from tinygan.train import Run
    sigmas = []
    step = Run.step

    def spy(self, real, z, stats=None):
        sigmas.append(self.noise_sigma())
        return step(self, real, z, stats)
    monkeypatch.setattr(Run, "step", spy)
    _train(sprites, tmp_path, "--recipe", "sprites", "--set", "instance_noise=0.2", "--steps", "4")
    n_batches = -(-len(os.listdir(sprites)) // 32)
    epochs = -(-4 // n_batches)
    np.testing.assert_allclose(sigmas, [0.2 * (1 - s / (epochs * n_batches)) for s in range(4)])
    assert sigmas[0] == 0.2 and sigmas[-1] < 0.2


# ----- issue 26: speckle, the EMA with its own BatchNorm statistics, a held-out part of the sprites -----

def test_a_run_keeps_the_averages_samples_with_its_own_batchnorm_statistics(sprites, tmp_path):
    _train(sprites, tmp_path, "--recipe", "sprites", "--steps", "2")
    line = json.loads(open(tmp_path / "runs.jsonl").readline())
    kept = np.load(tmp_path / line["samples"])
    assert kept["fake_ema_bn"].shape == kept["fake_ema"].shape and kept["fake_ema_bn"].dtype == np.uint8
    assert not np.array_equal(kept["fake_ema_bn"], kept["fake_ema"])          # eval mode, its own statistics
    assert (tmp_path / "tinygan_sprites_s0" / "step_000002_ema_bn.png").exists()
    assert quality.kept_samples(str(tmp_path), "tinygan_sprites_s0:2:ema_bn").shape == (quality.N_EVAL, 3, 32, 32)
    with pytest.raises(SystemExit, match="a sampler is g, ema or ema_bn"):
        quality.kept_samples(str(tmp_path), "tinygan_sprites_s0:2:nonsense")


def test_holdout_trains_on_the_rest_the_same_split_every_time(sprites, tmp_path):
    _train(sprites, tmp_path, "--recipe", "paper", "--holdout", "4", "--steps", "1")
    line = json.loads(open(tmp_path / "runs.jsonl").readline())
    assert line["recipe"] == "paper+holdout=4" and line["holdout"] == 4
    folder = tmp_path / "data" / f"sprites_holdout4_seed{quality.SPLIT_SEED}"
    links = sorted(p.name for p in folder.iterdir())
    files = sorted(os.listdir(sprites))
    train, held = quality.split(len(files), 4)
    assert links == [files[i] for i in train] and all((folder / n).is_symlink() for n in links)
    assert set(train) | set(held) == set(range(len(files))) and not set(train) & set(held)
    np.testing.assert_array_equal(quality.split(len(files), 4)[1], held)     # fixed by SPLIT_SEED
    with pytest.raises(SystemExit, match="leaves nothing to train on"):
        quality.split(12, 12)


def test_memorisation_scores_catch_copies_of_either_part():
    from tinygan.images import to_uint8
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (40, 3, 8, 8)).astype(np.float32)
    held = rng.uniform(-1, 1, (20, 3, 8, 8)).astype(np.float32)
    copies = quality.memorisation_scores(to_uint8(train[:30]), (train, held))
    assert copies["copies_train"] == 100.0 and copies["nn_train"] < 0.01 and copies["copies_heldout"] < 15   # ~ real vs real
    unseen = quality.memorisation_scores(to_uint8(held[:10]), (train, held))
    assert unseen["copies_heldout"] == 100.0 and unseen["copies_train"] < 15
    fresh = quality.memorisation_scores(to_uint8(rng.uniform(-1, 1, (30, 3, 8, 8))), (train, held))
    assert fresh["copies_train"] < 10 and 0.8 < fresh["nn_train"] < 1.2           # like real vs real


def test_scores_include_speckle_and_memorisation_for_a_holdout_run(tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "swd_scores", lambda fake, reals: {"swd": 1.0})
    monkeypatch.setattr(quality, "kid_scores", lambda fake, metric: {"recall": 0.5})
    u = np.full((3, 8, 8, 3), 255, np.uint8)
    u[:, 2:6, 2:6] = (200, 30, 30)
    u[:, 3, 3] = (0, 250, 0)                                                 # one stray pixel in 16
    path = str(tmp_path / "step_000001.npz")
    np.savez(path, fake=u)
    parts = (np.zeros((4, 3, 8, 8), np.float32), np.ones((2, 3, 8, 8), np.float32))
    scores = quality.cached_scores(path, "fake", None, None, parts)
    assert scores["speckle"] == pytest.approx(100 / 16) and scores["colours"] == 2
    assert {"copies_train", "copies_heldout", "nn_train", "nn_heldout"} <= set(scores)
    assert quality.cached_scores(path, "fake_ema_bn", None, None) is None    # not kept in this file


def test_speckle_scores_saved_grids_and_the_real_sprites(sprites, tmp_path, capsys):
    from tinygan.images import make_grid, save_png
    rng = np.random.default_rng(1)
    flat = np.ones((64, 3, 32, 32), np.float32)
    flat[:, :, 8:24, 8:24] = -0.5
    save_png(make_grid(flat), str(tmp_path / "flat.png"), 2)
    save_png(make_grid(rng.uniform(-1, 1, (64, 3, 32, 32))), str(tmp_path / "noise.png"), 2)
    rows = quality.speckle_table(quality.parse_args(["speckle", str(tmp_path / "flat.png"), str(tmp_path / "noise.png"),
                                                     "--data", str(sprites), "--json", str(tmp_path / "t.json")]))
    assert [r["n"] for r in rows] == [12, 64, 64]
    assert rows[0]["speckle"] == 0 and rows[1]["speckle"] == 0 and rows[2]["speckle"] > 90
    assert json.load(open(tmp_path / "t.json"))["rows"][2]["speckle"] == rows[2]["speckle"]
    assert "noise.png" in capsys.readouterr().out


def test_interleaved_times_turn_the_order_every_round(monkeypatch):
    order, clock = [], iter(range(1000))
    monkeypatch.setattr(quality.time, "perf_counter", lambda: float(next(clock)))

    class Stepper:
        def __init__(self, name):
            self.name = name

        def step(self, real, z):
            order.append(self.name)

    runs = {n: Stepper(n) for n in ("baseline", "ada", "flip")}
    times = quality.interleaved_times(runs, {n: (None, None) for n in runs}, repeats=3, steps=2)
    assert order[:3] == ["baseline", "ada", "flip"]                        # one warm-up step each
    rounds = [order[3 + 6 * i:3 + 6 * (i + 1)] for i in range(3)]
    assert [r[0] for r in rounds] == ["baseline", "ada", "flip"]          # each first once
    assert rounds[1] == ["ada", "ada", "flip", "flip", "baseline", "baseline"]
    assert times == {n: [0.5, 0.5, 0.5] for n in runs}                    # one clock tick per run of 2 steps


def _kept(out, variant, step):
    lines = [json.loads(x) for x in open(out / "runs.jsonl")]
    line = [x for x in lines if x["recipe"] == variant and x["step"] == step][-1]
    return line, np.load(out / line["samples"])


def test_also_ema_keeps_the_runs_that_set_ema_trains_bit_for_bit(sprites, tmp_path):
    """One run with --also-ema 0.9 0.5 keeps three runs; each extra one is the run --set ema=β
    trains, every sample and loss equal (β never enters the training step)."""
    common = ["train", "--data", str(sprites), "--recipe", "sprites", "--seed", "2", "--steps", "2", "3",
              "--set", "lr_d=3e-4"]
    quality.train(quality.parse_args([*common, "--out", str(tmp_path / "one"), "--also-ema", "0.9", "0.5"]))
    for beta in ("0.9", "0.5"):
        alone = tmp_path / f"alone{beta}"
        quality.train(quality.parse_args([*common, f"ema={beta}", "--out", str(alone)]))
        for step in (2, 3):
            a, ka = _kept(alone, f"sprites+lr_d=3e-4+ema={beta}", step)
            b, kb = _kept(tmp_path / "one", f"sprites+lr_d=3e-4+ema={beta}", step)
            assert (a["run"], a["loss_D"], a["loss_G"]) == (b["run"], b["loss_D"], b["loss_G"])
            for key in ("fake", "fake_ema", "fake_ema_bn"):
                np.testing.assert_array_equal(ka[key], kb[key])
    own, k_own = _kept(tmp_path / "one", "sprites+lr_d=3e-4", 3)              # the run's own average, β 0.999
    _, k_half = _kept(tmp_path / "one", "sprites+lr_d=3e-4+ema=0.5", 3)
    np.testing.assert_array_equal(k_own["fake"], k_half["fake"])               # one G
    assert not np.array_equal(k_own["fake_ema"], k_half["fake_ema"])           # two averages


def test_also_ema_goes_on_from_a_checkpoint_and_refuses_one_without_it(sprites, tmp_path):
    common = ["train", "--data", str(sprites), "--recipe", "sprites", "--seed", "4", "--also-ema", "0.8"]
    quality.train(quality.parse_args([*common, "--out", str(tmp_path / "straight"), "--steps", "4"]))
    quality.train(quality.parse_args([*common, "--out", str(tmp_path / "split"), "--steps", "2"]))
    quality.train(quality.parse_args([*common, "--out", str(tmp_path / "split"), "--steps", "4"]))
    _, a = _kept(tmp_path / "straight", "sprites+ema=0.8", 4)
    _, b = _kept(tmp_path / "split", "sprites+ema=0.8", 4)
    np.testing.assert_array_equal(a["fake_ema"], b["fake_ema"])                # the average came back too
    with pytest.raises(SystemExit, match=r"holds no moving average at β 0.7 .*--restart"):
        quality.train(quality.parse_args([*common[:-1], "0.7", "--out", str(tmp_path / "split"), "--steps", "5"]))


@pytest.mark.parametrize("betas", [["0.999"], ["1.0"], ["0.9", "0.9"]])
def test_also_ema_refuses_the_runs_own_beta_and_nonsense_before_any_work(betas, capsys):
    with pytest.raises(SystemExit):
        quality.parse_args(["train", "--also-ema", *betas])
    assert "--also-ema" in capsys.readouterr().err
