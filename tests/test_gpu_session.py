"""scripts/gpu_session.sh and the scripts it runs, checked without a GPU.

The session must take at most 360 s of command time (two tries then fit in a 15-minute GPU
rental with the machine's start), return at most 8 files (a rental returns no more), warm
CuPy's kernels before anything is timed, run the full training run before the benchmarks and
the profile, print each stage's result as it finishes, stop a stage that hangs, and say "no
GPU" in seconds where there is none. The benchmark and the profile it calls must run from a
checkout (tinygan not installed) and set the math (strict FP32 or TF32) before CuPy is imported.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinygan import backend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_session.sh"
SESSION_LIMIT = 360              # seconds of command time: two tries and the machine's start in 15 minutes
MAX_FILES = 8                    # what a rented GPU machine returns
NO_GPU = not backend.cupy_available()


def session(*args, env=None, timeout=60, **kw):
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT, **kw)


def dry_run_stages(stdout):
    """[(stage, limit, command)] and the total from the --dry-run table."""
    rows = re.findall(r"^  (\S+)\s+(\d+)  (.*)$", stdout, flags=re.M)
    stages = [(name, int(limit), cmd) for name, limit, cmd in rows if name != "total"]
    total = [int(limit) for name, limit, _ in rows if name == "total"]
    assert len(total) == 1, stdout
    return stages, total[0]


def dry_run_files(stdout):
    """The files the --dry-run says the session returns."""
    found = re.search(r"^returns in \$OUT \(.*\), (\d+) files at most: (.*)$", stdout, flags=re.M)
    assert found, stdout
    files = found.group(2).split()
    assert int(found.group(1)) == len(files)
    return files


def test_dry_run_fits_the_rental_and_runs_the_training_before_bench_and_profile(tmp_path):
    proc = session("--dry-run", env={"OUT": str(tmp_path / "out")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages, total = dry_run_stages(proc.stdout)
    names = [s for s, _, _ in stages]
    assert names == ["env", "warm", "tests", "run", "bench-256-fp32", "bench-256-tf32", "bench-64-fp32", "profile"]
    assert total == sum(limit for _, limit, _ in stages) <= SESSION_LIMIT
    assert len(dry_run_files(proc.stdout)) <= MAX_FILES
    assert all(names.index("run") < i for i, n in enumerate(names) if n.startswith(("bench", "profile")))
    assert names.index("warm") < min(i for i, n in enumerate(names) if n in ("tests", "run") or "bench" in n)
    cmds = {name: cmd for name, _, cmd in stages}
    assert "pytest -m gpu tests/test_gpu.py" in cmds["tests"] and "--maxfail" in cmds["tests"]
    assert "examples/pokemon.py --backend cupy" in cmds["run"] and "--tf32" not in cmds["run"]
    assert cmds["warm"].endswith("scripts/gpu_warm.py") and "--out" in cmds["profile"]
    assert "--batch-size 256 --tf32" in cmds["bench-256-tf32"]
    assert "--tf32" not in cmds["bench-256-fp32"] + cmds["bench-64-fp32"]
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"


def test_dry_run_refuses_limits_over_the_session():
    proc = session("--dry-run", env={"STAGES": "tests-all run bench profile"})
    stages, total = dry_run_stages(proc.stdout)
    assert [s for s, _, _ in stages][0] == "env" and total > SESSION_LIMIT
    assert proc.returncode == 1 and re.search(r"more than the session's (\d+) s", proc.stderr)
    assert int(re.search(r"more than the session's (\d+) s", proc.stderr).group(1)) <= SESSION_LIMIT


def test_an_unknown_stage_is_refused():
    proc = session("--dry-run", env={"STAGES": "env benchmark"})
    assert proc.returncode == 64 and "unknown stage 'benchmark'" in proc.stderr


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU: the session would run its GPU stages")
def test_without_a_gpu_the_session_says_so_in_seconds(tmp_path):
    start = time.monotonic()
    proc = session(env={"STAGES": "env tests", "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")})
    said = proc.stdout + proc.stderr
    assert time.monotonic() - start < 30, said
    assert proc.returncode == 2, said
    assert "=== no GPU: backend 'cupy'" in said and "=== tests: skipped: no GPU" in said
    assert "every GPU stage was skipped" in said and "Traceback" not in said
    assert (tmp_path / "out" / "session.log").read_text() == proc.stdout


def test_the_env_stage_exits_cleanly(tmp_path):
    """STAGES=env, for real: versions, then the GPU's name (exit 0) or why there is none (exit 2)."""
    proc = session(env={"STAGES": "env", "OUT": str(tmp_path)})
    said = proc.stdout + proc.stderr
    assert "python 3." in said and "numpy" in said and "Traceback" not in said
    if NO_GPU:
        assert proc.returncode == 2 and "=== no GPU:" in said, said
    else:
        assert proc.returncode == 0 and "=== GPU: usable:" in said, said


FAKE_PYTHON = """#!/bin/bash
# a Python that has a GPU and pytest, and whose every real command hangs
[ "$1" = -c ] && { case $2 in *array_module*) echo "=== GPU: usable: fake";; esac; exit 0; }
exec sleep 60
"""


def test_a_hanging_stage_is_stopped_and_the_session_deadline_holds(tmp_path):
    """With a 14 s session, a hanging test stage is stopped within it and the run is not started."""
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    (tmp_path / "data").mkdir()
    start = time.monotonic()
    proc = session(str(tmp_path / "data"), env={"PYTHON": str(fake), "STAGES": "tests run", "SESSION_LIMIT": "14",
                                                "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")})
    said = proc.stdout + proc.stderr
    assert time.monotonic() - start < 14 + 2, said
    assert proc.returncode == 1, said
    assert re.search(r"=== tests: exit 1(24|37) after", said), said
    assert "=== run: skipped, the session's 14 s are spent" in said
    assert "FAILED: tests (exit 1" in said and "FAILED: run (no time left)" in said


FAKE_GPU_PYTHON = """#!{python}
# A Python with a GPU: each stage's command answers at once with what the real one writes;
# anything else (the session's own helpers) is the real Python.
import json, os, sys
args = sys.argv[1:]
arg = lambda name: args[args.index(name) + 1]
if args[:1] == ["-c"] and "array_module" in args[1]:
    print("=== GPU: usable: a fake H100"); sys.exit(0)
if "scripts/gpu_warm.py" in args:
    print("=== warm: 1.0 s; CuPy's kernel cache 0 -> 150 compiled kernels"); sys.exit(0)
if args[:2] == ["-m", "pytest"]:
    print("..........\\n12 passed in 3.21s"); sys.exit(0)
if "examples/pokemon.py" in args:
    out = arg("--out"); os.makedirs(out)
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "losses.png", "progress.gif", "real.png",
                 "checkpoint.npz", "config.json"):
        open(os.path.join(out, name), "w").write("{{}}")
    with open(os.path.join(out, "log.jsonl"), "w") as f:
        for e in (1, 2):
            f.write(json.dumps({{"epoch": e, "loss_D": 0.5, "loss_G": 2.0, "D(x)": 0.7, "D(G(z))": 0.3,
                                "examples_per_sec": 9000.0, "seconds": 1.5}}) + "\\n")
    sys.exit(0)
if "benchmarks/train_step.py" in args:
    b = int(arg("--batch-size"))
    print(json.dumps({{"batch_size": b, "math": "TF32 on both" if "--tf32" in args else "strict FP32",
                      "tinygan_stats": {{"examples_per_sec": 10500.0}}, "torch_stats": {{"examples_per_sec": 14000.0}},
                      "ratio_median": 0.75}})); sys.exit(0)
if "scripts/gpu_profile.py" in args:
    layer = {{"model": "G", "index": 0, "layer": "ConvTranspose2d", "forward_ms": 0.5, "backward_ms": 1.0}}
    json.dump({{"device": "fake", "batch_size": 256, "layers": [layer], "col2im": {{"error": "RuntimeError: x"}}}},
              open(arg("--out"), "w")); sys.exit(0)
os.execv(sys.executable, [sys.executable] + args)
"""


def test_a_session_returns_at_most_8_files_and_says_each_result_as_it_goes(tmp_path):
    """The whole session on a fake GPU (every stage answers at once): it passes, prints each
    stage's result in order, and leaves only the files the dry run lists, at most 8."""
    fake = tmp_path / "python"
    fake.write_text(FAKE_GPU_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    (tmp_path / "data").mkdir()
    out = tmp_path / "out"
    env = {"PYTHON": str(fake), "OUT": str(out), "WORK": str(tmp_path / "work")}
    proc = session(str(tmp_path / "data"), env=env, timeout=120)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "=== gpu session: every stage passed" in said, said
    results = re.findall(r"^=== (GPU: usable|warm: [\d.]+ s;|[\w-]+: result)", said, flags=re.M)
    assert results == ["GPU: usable", "warm: 1.0 s;", "tests: result", "run: result", "256-fp32: result",
                       "256-tf32: result", "64-fp32: result", "profile: result"], said
    assert "=== tests: result: 12 passed in 3.21s" in said and "=== run: result: 2 epochs" in said
    assert "[>= 10,000 ex/s: MET; >= 0.7 x PyTorch: MET]" in said
    assert "=== profile: sections failed: ['col2im']; not reached: ['adam', 'bn_act']" in said
    returned = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    listed = dry_run_files(session("--dry-run", env=env).stdout)
    assert set(returned) <= set(listed) and len(returned) <= MAX_FILES, returned
    assert set(returned) == set(listed), f"a stage wrote nothing: {set(listed) - set(returned)}"
    bench = json.loads((out / "bench.json").read_text())
    assert sorted(bench) == ["256-fp32", "256-tf32", "64-fp32"] and bench["256-tf32"]["math"] == "TF32 on both"
    assert (out / "session.log").read_text() == proc.stdout


# ----- the scripts the session runs ---------------------------------------------------------

def test_benchmarks_find_tinygan_in_the_checkout_without_an_install(tmp_path):
    """Run with -S (no .pth files, so no editable install) from another folder: each script's own
    sys.path line must make ``import tinygan`` load this checkout."""
    site = str(Path(np.__file__).resolve().parents[1])
    probe = ("import runpy, sys; sys.path.append({site!r})\n"
             "{run}"
             "import tinygan; print(tinygan.__file__)\n")
    bare = subprocess.run([sys.executable, "-S", "-c", probe.format(site=site, run="")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert bare.returncode != 0 and "No module named 'tinygan'" in bare.stderr, "the setup must lack tinygan"
    for script in ("benchmarks/train_step.py", "benchmarks/layers.py"):
        run = f"runpy.run_path({str(ROOT / script)!r}, run_name='not_main')\n"
        proc = subprocess.run([sys.executable, "-S", "-c", probe.format(site=site, run=run)],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"
        assert Path(proc.stdout.strip()) == ROOT / "tinygan" / "__init__.py"


FAKE_CUPY = """import os
with open(os.environ["FAKE_CUPY_SAW"], "a") as f:
    f.write(repr(os.environ.get("CUPY_TF32")) + "\\n")
raise ImportError("a stand-in: it records CUPY_TF32 as CuPy's import would see it")
"""


@pytest.mark.parametrize("flags,seen", [([], "'0'"), (["--tf32"], "'1'")])
def test_the_benchmark_sets_cupy_tf32_before_cupy_is_imported(tmp_path, flags, seen):
    """A stand-in ``cupy`` package records CUPY_TF32 when it is imported: strict FP32 (0) by
    default, whatever the caller's environment says, TF32 (1) with --tf32."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(FAKE_CUPY)
    saw = tmp_path / "saw.txt"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "FAKE_CUPY_SAW": str(saw), "CUPY_TF32": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "--backend", "cupy",
                           "--no-torch", "--no-memory", *flags], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "needs CuPy" in proc.stderr, proc.stdout + proc.stderr
    assert saw.read_text().split() == [seen]


def test_the_benchmark_names_its_math(monkeypatch):
    monkeypatch.setattr(sys, "path", [str(ROOT / "benchmarks"), *sys.path])      # restored after the test
    import train_step
    monkeypatch.setenv("CUPY_TF32", "1")
    assert train_step.choose_cupy_math(train_step.parse_args(["--backend", "cupy"])) == "strict FP32"
    assert os.environ["CUPY_TF32"] == "0"
    assert train_step.choose_cupy_math(train_step.parse_args(["--backend", "cupy", "--tf32"])) == "TF32 on both"
    assert os.environ["CUPY_TF32"] == "1"
    with pytest.raises(SystemExit):
        train_step.parse_args(["--tf32"])                       # NumPy: no TF32 to switch on
    stats = dict(examples_per_sec=1.0, examples_per_sec_min=1.0, examples_per_sec_max=1.0, step_ms=1.0,
                 gflops_per_sec=1.0)
    table = train_step.format_table(dict(image_size=64, batch_size=256, threads=2, backend="cupy", math="TF32 on both",
                                         gflop_per_step=1.0, gflop_per_example=0.1, tinygan_stats=stats,
                                         first_step_losses={}, numpy=np.__version__, blas_threads_in_effect=None))
    assert "math: TF32 on both" in table.splitlines()[0]


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU: the profile would run")
def test_the_profile_without_a_gpu_says_so_in_one_line():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_profile.py"), "--batch-size", "8"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("gpu_profile.py: needs CuPy and a GPU: ") and proc.stderr.count("\n") == 1


def cuda_extras(path=ROOT / "setup.cfg"):
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(path)
    extras = cfg["options.extras_require"]
    return {k: [line.strip() for line in extras[k].splitlines() if line.strip()] for k in extras if "cuda" in k}


def test_the_cuda_extras_bring_a_cupy_that_runs():
    """The bare cupy-cudaNNx wheel has no cuBLAS or NVRTC (they are its [ctk] extra): on a machine
    with only the driver it imports, then fails at the first kernel. Each extra brings them."""
    assert cuda_extras() == {"cuda": ["cupy-cuda12x[ctk]>=14"], "cuda13": ["cupy-cuda13x[ctk]>=14"]}
