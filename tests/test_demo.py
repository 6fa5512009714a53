"""`make demo`: a length in steps whatever the data it finds, and one clear line when it finds none.

The demo's command line is taken from the Makefile itself (``make -n demo``, which prints it and
runs nothing) and given to examples/pokemon.py in this process.
"""
import json
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import pokemon  # noqa: E402

from tinygan import download, train  # noqa: E402
from tinygan.callbacks import standard  # noqa: E402

DEMO_STEPS = 20160
TINY = ["--image-size", "16", "--features", "4", "--latent-dim", "8", "--no-progress"]


def make_demo_args(**variables):
    """The arguments `make demo VAR=value ...` gives examples/pokemon.py."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    make = ["make", "-s", "-n", "--no-print-directory", "-C", str(ROOT), "demo"]
    command = subprocess.run([*make, *(f"{k}={v}" for k, v in variables.items())], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
    words = shlex.split(command)
    return words[words.index("examples/pokemon.py") + 1:]


def tiny_pngs(folder, n, seed=0):
    """``n`` made-up 4×4 RGB images in ``folder``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two data sets of the demo's batch size 32: the sprites' 1,332 images (42 steps an epoch)
    and 3,000 (94 steps an epoch, of which 20,160 leave 44 in the last)."""
    base = tmp_path_factory.mktemp("sets")
    return {1332: tiny_pngs(base / "small", 1332), 3000: tiny_pngs(base / "large", 3000, seed=1)}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))


def demo_run(args):
    """The ``train.Run`` examples/pokemon.py would train with ``args`` (data loaded, models built, nothing trained)."""
    parsed = pokemon.train_parser().parse_args(args)
    settings = {k: v for k, v in vars(parsed).items() if v is not None and k in train.Config.__dataclass_fields__}
    return train.Run(train.Config(**settings).resolved())


@pytest.mark.parametrize("n, epochs, last", [(1332, 480, 42), (3000, 215, 44)])
def test_make_demo_trains_20160_steps_whatever_the_data(folders, tmp_path, n, epochs, last):
    args = make_demo_args(DATA=folders[n], OUT=tmp_path / "demo")
    assert args[args.index("--steps") + 1] == str(DEMO_STEPS) and "--epochs" not in args
    r = demo_run(args)
    assert (r.n, r.total_steps, r.cfg.epochs) == (n, DEMO_STEPS, epochs)
    # the schedule's end: in the last epoch, 4 steps before the end, 4 batches are left and no more
    s = r.state
    s.epoch, s.batch, s.step = epochs - 1, last - 4, DEMO_STEPS - 4
    for _ in r.batches():                      # counted as the loop's EpochLog.step counts them
        s.batch, s.step = s.batch + 1, s.step + 1
    assert (s.batch, s.step) == (last, DEMO_STEPS)


def test_the_eta_counts_every_step_left_and_the_chores_share(folders, tmp_path, monkeypatch, capsys):
    r = demo_run(make_demo_args(DATA=folders[3000], OUT=tmp_path / "demo"))
    monkeypatch.setattr(train, "estimate_step_seconds", lambda run: (0.03, 65))
    train.announce(r, standard(r.cfg))
    line = capsys.readouterr().out
    # 20,160 steps of 30 ms, and 1% for the throttled chores: 610.8 s
    assert "94 steps/epoch, steps 1..20160 (epochs 1..215, the last one cut after 44 of its steps)" in line, line
    assert "ETA 10:11 (65 steps timed)" in line, line


def test_the_eta_times_several_steps_and_leaves_the_run_untouched(folders, tmp_path):
    r = demo_run(["--data", str(folders[1332]), "--out", str(tmp_path / "r"), "--recipe", "sprites", "--steps", "500",
                  *TINY])
    before = (r.state.rng.bit_generator.state, [p.data.copy() for p in r.G.parameters()],
              [p.data.copy() for p in r.ema.model.parameters()])
    seconds, timed = train.estimate_step_seconds(r)
    assert seconds > 0 and timed >= train.ESTIMATE_MIN_STEPS
    assert r.state.rng.bit_generator.state == before[0]
    assert all(np.array_equal(p.data, q) for p, q in zip(r.G.parameters(), before[1]))
    assert all(np.array_equal(p.data, q) for p, q in zip(r.ema.model.parameters(), before[2]))


def test_steps_stop_part_way_through_an_epoch_of_a_large_set(folders, tmp_path, capsys):
    """`make demo DATA=... DEMO_ARGS=...` as documented: 100 steps of 94-step epochs stop 6 steps into
    the second; the final checkpoint, log and trace line say so."""
    out = tmp_path / "demo"
    args = make_demo_args(DATA=folders[3000], OUT=out, DEMO_ARGS=shlex.join(["--steps", "100", *TINY]))
    assert pokemon.main(args) == 0
    printed = capsys.readouterr().out
    with np.load(out / "checkpoint.npz") as ck:
        meta = json.loads(str(ck["meta"]))
        assert len(ck["extra/loss_D"]) == 100
    assert (meta["step"], meta["epoch"], meta["batch"]) == (100, 1, 6)
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert (out / "samples_epoch_002.png").exists()
    assert "trained 100 steps (1 epoch and 6 of the 94 steps of the 2nd epoch) in " in printed, printed


SPRITES_TINY = [*TINY, "--batch-size", "4"]


@pytest.mark.parametrize("recipe", ["paper", "sprites"])
def test_a_run_cut_part_way_through_an_epoch_resumes_bit_identically(folders, tmp_path, recipe):
    """12 images in batches of 4: 3 steps an epoch. 7 steps straight = 4 steps, then resumed to 7;
    and the cut run resumed in epochs (--epochs 3) = 3 epochs straight."""
    data = tmp_path / "twelve"
    data.mkdir()
    for f in sorted(folders[1332].iterdir())[:12]:
        shutil.copy(f, data)
    common = ["--data", str(data), "--recipe", recipe, *SPRITES_TINY]

    def weights(folder):
        with np.load(folder / "checkpoint.npz") as ck:
            return {k: ck[k] for k in ck.files if k != "meta"}, json.loads(str(ck["meta"]))

    for straight, split, more in ((["--steps", "7"], ["--steps", "4"], ["--steps", "7"]),
                                  (["--epochs", "3"], ["--steps", "4"], ["--epochs", "3"])):
        assert pokemon.main([*common, *straight, "--out", str(tmp_path / "straight")]) == 0
        assert pokemon.main([*common, *split, "--out", str(tmp_path / "split")]) == 0
        assert pokemon.main(["--resume", str(tmp_path / "split" / "checkpoint.npz"), *more, "--no-progress"]) == 0
        (a, meta_a), (b, meta_b) = weights(tmp_path / "straight"), weights(tmp_path / "split")
        assert a.keys() == b.keys()
        assert not [k for k in a if not np.array_equal(a[k], b[k])], (straight, split, more)
        means = lambda meta: [{k: r[k] for k in ("epoch", "loss_D", "loss_G", "D(x)", "D(G(z))")}  # noqa: E731
                              for r in meta["records"]]
        assert meta_a["step"] == meta_b["step"] and means(meta_a) == means(meta_b)
        shutil.rmtree(tmp_path / "straight")
        shutil.rmtree(tmp_path / "split")


def test_epochs_and_steps_together_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        pokemon.main(["--epochs", "3", "--steps", "10"])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_help_describes_steps(capsys):
    with pytest.raises(SystemExit):
        pokemon.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--steps N optimizer steps (batches) to train in all, instead of --epochs" in text
    assert "stops after step N even part-way through an epoch" in text


# ----- without data or network -----------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch):
    """A machine whose packets go nowhere: the name lookup never answers. Nothing reaches the network:
    a connection attempt fails the test."""
    release = threading.Event()
    monkeypatch.setattr(download.socket, "getaddrinfo", lambda *a, **k: release.wait(60) and None)
    monkeypatch.setattr(download.urllib.request, "getproxies", lambda: {})

    def urlopen(*a, **k):
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    yield
    release.set()


def test_make_demo_without_data_or_network_stops_in_seconds_with_one_line(tmp_path, monkeypatch, capsys, no_network):
    assert download.TIMEOUT <= 10                  # what the demo waits at most for each answer
    monkeypatch.setattr(download, "TIMEOUT", 1)
    args = make_demo_args(DATA="", OUT=tmp_path / "demo")
    assert "--data" not in args
    t = time.perf_counter()
    assert pokemon.main(args) == 1
    assert time.perf_counter() - t < 1 + 5
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: no training data: no --data given, and d2l's Pokémon zip "
                                                   "could not be downloaded (no answer for d2l-data"), err
    assert "--data PATH" in err and "make demo DATA=PATH" in err and "connect to the network" in err
    assert "loaded" not in out and not (tmp_path / "demo" / "checkpoint.npz").exists()
    assert not list((tmp_path / "home").glob("**/*.part"))


def test_the_name_lookup_gives_up_after_the_timeout(monkeypatch):
    """The lookup in its own thread answers as the resolver does (an address, or its error), or
    says it got no answer in time."""
    monkeypatch.setattr(download.urllib.request, "getproxies", lambda: {})
    download._resolve("http://127.0.0.1:9/x.zip", 1)                  # an address: nothing to wait for
    with pytest.raises(download.urllib.error.URLError, match="no answer for example.invalid within 0.2 s"):
        monkeypatch.setattr(download.socket, "getaddrinfo", lambda *a, **k: time.sleep(1))
        download._resolve("http://example.invalid/x.zip", 0.2)
    monkeypatch.setattr(download.socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(OSError("unreachable")))
    with pytest.raises(download.urllib.error.URLError, match="unreachable"):
        download._resolve("http://example.invalid/x.zip", 1)
