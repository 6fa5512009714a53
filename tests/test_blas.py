"""tinygan.blas: a run says when OPENBLAS_CORETYPE forces a kernel older than the CPU's, and never changes it."""
import os

import pytest

from tinygan import blas, train

AVX512 = {"avx2", "fma", "avx512f", "avx512bw"}


@pytest.mark.parametrize("environ, flags, forced", [
    ({"OPENBLAS_CORETYPE": "Haswell"}, AVX512, "Haswell"),           # the Zen 5 kind's setting
    ({"OPENBLAS_CORETYPE": "zen"}, AVX512, "zen"),
    ({"OPENBLAS_CORETYPE": "SkylakeX"}, AVX512, None),               # an AVX-512 kernel: nothing lost
    ({"OPENBLAS_CORETYPE": "sapphirerapids"}, AVX512, None),
    ({"OPENBLAS_CORETYPE": "Haswell"}, {"avx2", "fma"}, None),       # the CPU's own kernel anyway
    ({"OPENBLAS_CORETYPE": " "}, AVX512, None),
    ({}, AVX512, None),
])
def test_forced_kernel(environ, flags, forced):
    assert blas.forced_kernel(environ, flags) == forced


def test_the_line_names_both_variables_and_the_rate_it_measured():
    line = blas.forced_kernel_line({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}, AVX512,
                                   measure=lambda: 254.6)
    assert line.startswith("note: OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE=512 in the environment "
                           "makes OpenBLAS use its Haswell kernel on this AVX-512 CPU (float32 product now "
                           "255 GFLOP/s)"), line
    assert "unsetting it is your choice" in line
    assert blas.forced_kernel_line({"OPENBLAS_CORETYPE": "SkylakeX"}, AVX512, measure=lambda: 1 / 0) is None


def test_the_product_rate_is_measured():
    assert blas.gemm_gflops(n=64, repeats=2) > 0


def test_a_runs_first_lines_say_so_and_leave_the_variables_alone(tmp_path, monkeypatch, capsys):
    from test_demo import demo_run, tiny_pngs
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    monkeypatch.setattr(blas, "cpu_flags", lambda: AVX512)
    monkeypatch.setattr(train, "estimate_step_seconds", lambda run: (0.01, 3))
    r = demo_run(["--data", str(tiny_pngs(tmp_path / "data", 8)), "--out", str(tmp_path / "run"),
                  "--image-size", "16", "--features", "4", "--batch-size", "4", "--steps", "2"])
    capsys.readouterr()                                                       # the loading line
    train.announce(r)
    first, second = capsys.readouterr().out.splitlines()[:2]
    assert first.startswith("note: OPENBLAS_CORETYPE=Haswell in the environment makes OpenBLAS use its Haswell "
                            "kernel"), first
    assert second.startswith("numpy"), second
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell" and "OPENBLAS_L2_SIZE" not in os.environ
    monkeypatch.setattr(blas, "cpu_flags", lambda: {"avx2"})                  # nothing forced: no note
    train.announce(r)
    assert not capsys.readouterr().out.startswith("note:")


def test_the_benchmarks_machine_line_says_so(monkeypatch):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import threads
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setattr(blas, "cpu_flags", lambda: AVX512)
    line = threads.machine_line()
    assert "OPENBLAS_CORETYPE=Haswell" in line and "(forces OpenBLAS's Haswell kernel on this AVX-512 CPU" in line, line
    monkeypatch.setattr(blas, "cpu_flags", lambda: {"avx2"})
    assert "forces" not in threads.machine_line()


# ----- benchmarks/train_step.py: one table per setting of the variables ------------------------------

def _bench():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import train_step
    return train_step


TINY = ["--no-torch", "--no-memory", "--repeats", "1", "--warmup", "1", "--settle", "0", "--image-size", "16",
        "--features", "4", "--latent", "8", "--batch-size", "2"]


class _Child:
    """Stands in for subprocess.run: records the command and environment, prints a table."""

    def __init__(self, returncode=0, stdout="| the child's table |\n", stderr=""):
        self.calls, self.result = [], (returncode, stdout, stderr)

    def __call__(self, cmd, env, capture_output, text):
        import subprocess
        self.calls.append((cmd, env))
        return subprocess.CompletedProcess(cmd, *self.result)


def test_train_step_prints_a_second_table_with_both_variables_unset_in_a_child_only(capsys):
    bench, child = _bench(), _Child()
    environ = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512", "PATH": "/usr/bin"}
    assert bench.main(TINY, environ=environ, run=child) == 0
    out = capsys.readouterr().out
    first, second = out.split("## With OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")
    assert first.startswith("## With the OpenBLAS variables as set")
    assert "OpenBLAS kernel variables as set: OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE=512" in first
    assert "| the child's table |" in second
    (cmd, env), = child.calls
    assert cmd[-len(TINY) - 1:] == [*TINY, "--as-set"] and cmd[1].endswith("train_step.py")
    assert env == {"PATH": "/usr/bin"}                        # the child's environment lacks both, nothing else
    assert environ["OPENBLAS_CORETYPE"] == "Haswell"          # the caller's is untouched


def test_train_step_prints_one_table_where_neither_is_set_or_with_as_set(capsys):
    bench, child = _bench(), _Child()
    assert bench.main(TINY, environ={"PATH": "/usr/bin"}, run=child) == 0
    out = capsys.readouterr().out
    assert "OpenBLAS kernel variables: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset" in out and "##" not in out
    assert bench.main([*TINY, "--as-set"], environ={"OPENBLAS_L2_SIZE": "512"}, run=child) == 0
    out = capsys.readouterr().out
    assert "OpenBLAS kernel variables as set: OPENBLAS_L2_SIZE=512" in out and "##" not in out
    assert child.calls == []


def test_train_step_json_carries_the_unset_run_and_a_failed_child_says_so(capsys):
    import json
    bench = _bench()
    child = _Child(stdout=json.dumps({"tinygan_stats": {"examples_per_sec": 123.0}, "openblas_env": {}}))
    assert bench.main([*TINY, "--json"], environ={"OPENBLAS_CORETYPE": "Zen"}, run=child) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["openblas_env"] == {"OPENBLAS_CORETYPE": "Zen"}
    assert result["openblas_unset"]["tinygan_stats"]["examples_per_sec"] == 123.0
    failing = _Child(returncode=3, stdout="", stderr="Traceback ...\nMemoryError: out of memory\n")
    assert bench.main(TINY, environ={"OPENBLAS_CORETYPE": "Zen"}, run=failing) == 3
    captured = capsys.readouterr()
    assert "OPENBLAS_CORETYPE=Zen" in captured.out
    assert "unset failed (exit 3): MemoryError: out of memory" in captured.err
    garbled = _Child(stdout="a warning\n{}", stderr="(torch is not installed: timing tinygan alone)\n")
    assert bench.main([*TINY, "--json"], environ={"OPENBLAS_CORETYPE": "Zen"}, run=garbled) == 1
    captured = capsys.readouterr()
    assert "(torch is not installed" in captured.err and "its output is not one JSON object" in captured.err
