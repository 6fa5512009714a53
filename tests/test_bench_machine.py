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
