"""benchmarks/threads.py's machine line names NumPy's own BLAS, whatever else the process has loaded."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import threads as threadctl  # noqa: E402


@pytest.mark.parametrize("checkout", ["/home/u/gan-numpy", "/home/u/src"])
def test_machine_line_takes_numpys_openblas_not_scipys(monkeypatch, checkout):
    # torch._dynamo imports SciPy, whose OpenBLAS (another build, in scipy.libs) may be listed first;
    # a checkout folder whose name ends in "numpy" must not make every library look like numpy's
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl names the BLAS (test extra)")
    site = os.path.dirname(os.path.dirname(np.__file__))          # numpy's site-packages
    fake_site = checkout + "/.venv/lib/python3.11/site-packages"
    info = [
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.30", "architecture": "Haswell",
         "num_threads": 2, "filepath": f"{fake_site}/scipy.libs/libscipy_openblas-6cdc3b4a.so"},
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31.188.0", "architecture": "Haswell",
         "num_threads": 2, "filepath": f"{site}/numpy.libs/libscipy_openblas64_-32a4b2a6.so"},
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: info)
    assert threadctl.machine()["blas"]["version"] == "0.3.31.188.0"
    assert "openblas 0.3.31.188.0 kernel Haswell" in threadctl.machine_line()


def test_yardstick_measures_a_product_and_sets_the_steps_beside_it():
    y = threadctl.yardstick(n=64, repeats=2)
    assert y["n"] == 64 and y["numpy_gflops"] > 0 and "torch_gflops" not in y
    y = {"n": 2048, "numpy_gflops": 150.0, "torch_gflops": 160.0}
    line = threadctl.yardstick_line(y, {"tinygan": 105.0, "torch": 80.0})
    assert line == ("yardstick: float32 GEMM 2048x2048 now: NumPy 150 GFLOP/s, PyTorch 160; "
                    "tinygan's step 0.70 of NumPy's, PyTorch's 0.50 of PyTorch's")
    assert threadctl.yardstick_line({"n": 8, "numpy_gflops": 2.0}) == "yardstick: float32 GEMM 8x8 now: NumPy 2 GFLOP/s"
