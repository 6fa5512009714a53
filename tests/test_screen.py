"""benchmarks/screen.py on a tiny run: every stage, the tables and the pictures, in a few dozen steps."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import screen  # noqa: E402
from conftest import make_sprites  # noqa: E402


def test_every_candidate_is_a_config_field_setting():
    from tinygan.train import Config
    for name, settings in screen.CANDIDATES.items():
        for text in settings:
            field, _, _ = text.partition("=")
            assert field in Config.__dataclass_fields__, (name, text)


def test_a_dearer_step_gets_fewer_steps_a_cheaper_one_the_same():
    assert screen.steps_for(1.0, 20160) == screen.steps_for(0.9, 20160) == screen.steps_for(1.02, 20160) == 20160
    assert screen.steps_for(1.2, 20160) == 16800


def test_finalists_by_the_numbers_are_the_least_speckled_of_those_no_worse(capsys):
    def row(name, kid, swd, speckle):
        return (name, 100, 1.0, {"EMA": [{"kid": kid, "swd": swd, "speckle": speckle}]})
    args = screen.parse_args(["--n-finalists", "2"])
    rows = [row("baseline", 100, 15, 20), row("flip", 105, 15, 12), row("lecam0.1", 90, 14, 18),
            row("hinge", 300, 15, 5), row("topk", 100, 20, 1)]
    assert screen.pick_finalists(args, rows) == ["flip", "lecam0.1"]          # hinge and topk: worse KID / SWD
    rows = [row("baseline", 100, 15, 20), row("hinge", 300, 15, 5), row("topk", 100, 20, 1)]
    assert screen.pick_finalists(args, rows) == ["topk", "hinge"]
    assert "no candidate within" in capsys.readouterr().out


def test_a_screen_goes_on_in_the_same_folder_timing_and_training_only_what_is_new(tmp_path, monkeypatch, capsys):
    """A candidate added to a finished screen: only it is timed (against the baseline) and trained;
    the earlier costs and steps stay in screen_plan.json, and every candidate is in the table."""
    out = tmp_path / "screen"
    out.mkdir()
    (out / "screen_plan.json").write_text(json.dumps({"costs": {"baseline": 1.0, "flip": 0.95},
                                                      "steps": {"baseline": 40, "flip": 40}}))
    for name in ("baseline", "flip"):
        folder = out / f"tinygan_{screen.variant(name, 8)}_s0"
        folder.mkdir()
        (folder / "step_000040.npz").write_bytes(b"")
    timed, started = [], []

    def costs(args, names):
        timed.append(list(names))
        return {"baseline": 1.0, "bcr5": 1.5}

    class Job:                                                   # stands in for a quality.py train process
        returncode = 0

        def __init__(self, cmd, stdout, stderr):
            started.append(cmd)

        def poll(self):
            return 0
    monkeypatch.setattr(screen, "step_costs", costs)
    monkeypatch.setattr(screen, "subprocess", types.SimpleNamespace(Popen=Job, STDOUT=subprocess.STDOUT))
    monkeypatch.setattr(screen, "score", lambda args: {})
    monkeypatch.setattr(screen, "pictures", lambda *a: None)
    monkeypatch.setattr(screen, "overview", lambda *a: None)
    args = screen.parse_args(["--out", str(out), "--steps", "40", "--holdout", "8",
                              "--candidates", "flip", "bcr5"])
    screen.screen(args)
    assert timed == [["baseline", "bcr5"]]
    plan = json.load(open(out / "screen_plan.json"))
    assert plan == {"costs": {"baseline": 1.0, "flip": 0.95, "bcr5": 1.5},
                    "steps": {"baseline": 40, "flip": 40, "bcr5": 27}, "settings": {"steps": 40, "holdout": 8}}
    (cmd,) = started
    assert "bcr=5" in cmd and cmd[cmd.index("--steps") + 1:cmd.index("--steps") + 3] == ["13", "27"]
    printed = capsys.readouterr().out
    assert "already trained: baseline seed 0, 40 steps" in printed and "already trained: flip" in printed
    assert "### Screen: one seed (0)" in (out / "screen.md").read_text()
    with pytest.raises(SystemExit, match="planned with --steps 40, not 20160: pass --steps 40 to go on"):
        screen.screen(screen.parse_args(["--out", str(out), "--holdout", "8"]))
    costs = lambda args, names: {"baseline": 1.0, "flip+bcr5": 1.6}       # noqa: E731
    monkeypatch.setattr(screen, "step_costs", costs)
    args = screen.parse_args(["--out", str(out), "--steps", "40", "--holdout", "8", "--stage", "finalists",
                              "--finalists", "flip", "bcr5", "--seeds", "0"])
    screen.finalists(args)                                   # the combination's cost and steps join the plan
    plan = json.load(open(out / "screen_plan.json"))
    assert plan["costs"]["flip+bcr5"] == 1.6 and plan["steps"]["flip+bcr5"] == 25 and plan["steps"]["flip"] == 40


def test_the_overview_sheet_puts_every_candidate_beside_the_real_sprites(tmp_path, monkeypatch):
    from PIL import Image
    out = tmp_path / "screen"
    rng = np.random.default_rng(0)
    colours = {"baseline": 40, "flip": 200}
    for name, value in colours.items():
        folder = out / f"tinygan_{screen.variant(name, 8)}_s0"
        folder.mkdir(parents=True)
        np.savez(folder / "step_000040.npz", fake_ema=np.full((20, 32, 32, 3), value, np.uint8))
    real = rng.uniform(-1, 1, (10, 3, 32, 32))
    monkeypatch.setattr(screen.quality, "real_sets", lambda data: (real, real, real))
    args = screen.parse_args(["--out", str(out), "--holdout", "8"])
    path = screen.overview(args, [("baseline", "baseline", 0, 40, "ema"), ("flip", "flip", 0, 40, "ema")],
                           str(tmp_path / "all.png"), columns=2)
    sheet = np.asarray(Image.open(path))
    grid = 4 * 34 + 2                                        # 4 × (32 + 2 padding) + 2, at 2×
    assert sheet.shape == (2 * 2 * (grid + 12 + 8), 2 * 2 * (grid + 8), 3)
    first = 2 * (12 + 2)                                     # a panel's first sample, below its caption, at 2×
    left = 2 * (grid + 8) + 4                                # the second column
    assert (sheet[first:first + 8, left:left + 8] == 40).all()                 # baseline beside the real sprites
    below = 2 * (grid + 12 + 8) + first
    assert (sheet[below:below + 8, 4:12] == 200).all()                         # flip on the second row
    assert not (sheet[first:first + 8, 4:12] == 40).all()                      # the real sprites first
    with pytest.raises(SystemExit, match="no tinygan_sprites\\+holdout=8_s0:80:ema"):
        screen.overview(args, [("x", "baseline", 0, 80, "ema")], str(tmp_path / "x.png"))


@pytest.mark.slow
def test_the_whole_screen_on_a_tiny_run(tmp_path, monkeypatch):
    """Three candidates at 4 steps, then two finalists and their combination on two seeds: each run is
    kept at 2 and 4 steps, both tables are written and every picture is there (~100 s on 2 cores:
    14 runs of 1,024 samples per sampler, scored)."""
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))       # the feature net and the data cache
    data = make_sprites(tmp_path / "sprites", n=72)
    out = tmp_path / "screen"
    screen.main(["--data", str(data), "--out", str(out), "--steps", "4", "--holdout", "8", "--jobs", "2",
                 "--candidates", "lecam0.1", "flip", "--finalists", "lecam0.1", "flip", "--seeds", "0", "1",
                 "--cost-repeats", "1", "--cost-steps", "1"])
    plan = json.load(open(out / "screen_plan.json"))
    assert set(plan["steps"]) == {"baseline", "lecam0.1", "flip", "lecam0.1+flip"}    # the combination joins it
    lines = [json.loads(x) for x in open(out / "runs.jsonl")]
    runs = {(x["recipe"], x["seed"]) for x in lines}
    combined = "sprites+lecam=0.1+flip=true+holdout=8"
    assert runs == {(f"sprites+{s}holdout=8", seed) for s in ("", "lecam=0.1+", "flip=true+") for seed in (0, 1)} | \
        {(combined, 0), (combined, 1)}
    assert all(x["holdout"] == 8 for x in lines)
    table = (out / "screen.md").read_text()
    for name in ("baseline", "lecam0.1", "flip"):
        assert f"| {name} |" in table
    assert "| EMA-bn |" in table and "speckle" in table
    finals = (out / "finalists.md").read_text()
    assert "| lecam0.1+flip | lecam=0.1 flip=true |" in finals and "(" in finals          # two seeds: a spread
    for name in ("screen_lecam0.1.png", "screen_flip.png", "screen_all.png", "finalists_s0.png", "finalists_s1.png",
                 "report.json"):
        assert (out / name).exists(), name
    rows = json.load(open(out / "report.json"))["rows"]
    assert all("copies_train" in run for row in rows for run in row["runs"])
    assert np.isfinite([run["speckle"] for row in rows for run in row["runs"]]).all()


def test_the_finalists_stage_alone_needs_them_named(tmp_path):
    with pytest.raises(SystemExit, match="name them with --finalists"):
        screen.main(["--stage", "finalists", "--out", str(tmp_path)])
