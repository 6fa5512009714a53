"""examples/explore.py end to end: every subcommand on the checkpoint of a tiny real training run."""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinygan.train import Config, run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import explore  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """16 made-up sprites, the first 12 trained on for one epoch (4 held out), SWD logged."""
    tmp = tmp_path_factory.mktemp("explore")
    folder = tmp / "sprites"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        a = np.zeros((40, 40, 4), np.uint8)
        y, x = rng.integers(4, 16, 2)
        a[y:y + 20, x:x + 16, :3] = rng.integers(0, 255, 3)
        a[y:y + 20, x:x + 16, 3] = 255
        Image.fromarray(a, "RGBA").save(folder / f"s{i:02d}.png")
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYGAN_HOME", str(tmp / "home"))
    run(Config(data=str(folder), out=str(tmp / "run"), epochs=1, image_size=16, features=4, latent_dim=8,
               batch_size=4, limit=12, progress=False, swd_every=1))
    yield tmp / "run" / "checkpoint.npz", tmp
    mp.undo()


def explore_cli(args, capsys):
    code = explore.main([str(a) for a in args])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def png(path):
    return np.asarray(Image.open(path))


def test_walk_writes_rows_and_a_gif(tiny_run, capsys):
    ckpt, tmp = tiny_run
    out = explore_cli(["walk", "--checkpoint", ckpt, "--out", tmp / "walk.png", "--points", 3, "--steps", 4,
                       "--method", "both", "--gif", tmp / "walk.gif", "--scale", 1], capsys)
    assert "slerp: 2 rows of 4 frames" in out and "lerp: 2 rows" in out
    assert png(tmp / "walk.png").shape[0] == 4 * (2 + 16 + 2)               # 4 strips: 16 px and 2 px padding
    gif = Image.open(tmp / "walk.gif")
    assert gif.n_frames == 2 * 3 + 1


def test_arithmetic_numbered_grid_then_result(tiny_run, capsys):
    ckpt, tmp = tiny_run
    out = explore_cli(["arithmetic", "--checkpoint", ckpt, "--out", tmp / "grid.png", "--n", 12], capsys)
    assert "--a i,j,k" in out
    assert png(tmp / "grid.png").ndim == 3
    explore_cli(["arithmetic", "--checkpoint", ckpt, "--out", tmp / "arith.png", "--n", 12,
                 "--a", "0,1,2", "--b", "3,4,5", "--c", "6,7,8", "--scale", 1], capsys)
    assert png(tmp / "arith.png").shape[1] == 150 + 9 * 18 + 2              # the widest row: y and 8 neighbours
    with pytest.raises(SystemExit):
        explore.main(["arithmetic", "--checkpoint", str(ckpt), "--out", str(tmp / "x.png"), "--a", "1,2,3"])


def test_memorisation_uses_the_held_out_images(tiny_run, capsys):
    ckpt, tmp = tiny_run
    out = explore_cli(["memorisation", "--checkpoint", ckpt, "--out", tmp / "nn.png", "--n", 8, "--show", 3,
                       "--scale", 1], capsys)
    assert "4 held-out real images" in out and "12 training images" in out
    assert png(tmp / "nn.png").shape[0] == 3 * 20


def test_swd_filters_saliency_summary(tiny_run, capsys):
    ckpt, tmp = tiny_run
    out = explore_cli(["swd", "--checkpoint", ckpt, "--out", tmp / "swd.png", "--n", 4], capsys)
    assert "generated vs real: SWD x1e3: 16px" in out and "real vs real" in out
    explore_cli(["filters", "--checkpoint", ckpt, "--out", tmp / "filters.png", "--scale", 2], capsys)
    out = explore_cli(["saliency", "--checkpoint", ckpt, "--out", tmp / "sal.png", "--n", 3, "--scale", 1], capsys)
    assert out.count("D(x) =") == 2
    assert png(tmp / "sal.png").shape[0] == 4 * 20
    out = explore_cli(["summary", "--checkpoint", ckpt], capsys)
    assert "Generator" in out and "Discriminator" in out and "Total params" in out
    for name in ("swd.png", "filters.png", "sal.png"):
        assert png(tmp / name).size > 0


def test_checkerboard_with_and_without_checkpoint(tiny_run, capsys):
    ckpt, tmp = tiny_run
    out = explore_cli(["checkerboard", "--out", tmp / "cb.png", "--size", 4], capsys)
    assert "ConvT k4 s2 p1: interior values [4], border [1, 2]" in out
    assert "ConvT k3 s2 p1: interior values [1, 2, 4]" in out
    explore_cli(["checkerboard", "--out", tmp / "cb2.png", "--checkpoint", ckpt, "--size", 4], capsys)
    a, b = png(tmp / "cb.png"), png(tmp / "cb2.png")
    assert a.shape == b.shape and not np.array_equal(a, b)                  # the sixth panel is drawn


def test_features(tiny_run, capsys, monkeypatch):
    ckpt, tmp = tiny_run
    args = ["features", "--checkpoint", str(ckpt), "--out", str(tmp / "probe.png"), "--epochs", "3",
            "--n-train", "100", "--n-test", "60"]
    with monkeypatch.context() as m:                                   # without scikit-learn: one clear line
        m.setitem(sys.modules, "sklearn", None)
        m.setitem(sys.modules, "sklearn.datasets", None)
        with pytest.raises(SystemExit, match=r"^error: .*pip install -e '\.\[explore\]'$"):
            explore.main(args)
    pytest.importorskip("sklearn", reason="scikit-learn (the 'explore' extra) provides the digits set")
    out = explore_cli(args, capsys)
    assert "trained D" in out and "random D" in out and "pixels" in out
    assert "digits: 100 training and 60 test images, upscaled 8x8 -> 16x16" in out
