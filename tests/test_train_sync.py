"""The training loop's GPU bookkeeping, exercised on NumPy (these run in CI).

On a GPU the loop copies the losses to the host once per window of steps
(``train.SYNC_SECONDS``) instead of once per step. NumPy's window is one step; here it is
made a whole epoch, so the windowed code runs on the CPU: the results must not change, a
NaN must still be reported at the step where it appeared, and a stop mid-window must
checkpoint every finished step's numbers. Dataset placement is checked with a stand-in
for CuPy's memory query.
"""
import json
import os
import signal

import numpy as np
import pytest

from conftest import TIMING_STEPS, on_train_step
from tinygan import train as train_mod


def _cfg(folder, out, **kw):
    base = dict(data=str(folder), out=str(out), epochs=2, image_size=16, features=4, latent_dim=8,
                batch_size=4, progress=False)
    return train_mod.Config(**{**base, **kw})


@pytest.fixture
def whole_epoch_windows(monkeypatch):
    """Sync only at epoch ends (and on a stop), as a slow GPU step would."""
    monkeypatch.setitem(train_mod.SYNC_SECONDS, "numpy", 1e9)


def _arrays(path):
    with np.load(path) as ck:
        return {k: ck[k] for k in ck.files if k != "meta"}, json.loads(str(ck["meta"]))


def test_windowed_sync_changes_no_result(sprites, tmp_path, monkeypatch):
    train_mod.run(_cfg(sprites, tmp_path / "per_step"))
    monkeypatch.setitem(train_mod.SYNC_SECONDS, "numpy", 1e9)
    train_mod.run(_cfg(sprites, tmp_path / "windowed"))
    a, meta_a = _arrays(tmp_path / "per_step" / "checkpoint.npz")
    b, meta_b = _arrays(tmp_path / "windowed" / "checkpoint.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert len(a["extra/loss_D"]) == meta_a["step"] == meta_b["step"] == 6
    timing = ("examples_per_sec", "seconds")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in meta_a["records"]]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in meta_b["records"]]


def test_windowed_divergence_names_the_first_bad_step(sprites, tmp_path, monkeypatch, whole_epoch_windows):
    """Step 5 of 6 turns NaN; the window is checked only after step 6, yet step 5 is reported."""
    on_train_step(monkeypatch, TIMING_STEPS + 3 + 2, lambda losses: (losses[0] * np.nan, losses[1]))
    out = tmp_path / "run"
    with pytest.raises(train_mod.TrainingDiverged, match=r"diverged at step 5 \(epoch 2\)") as e:
        train_mod.run(_cfg(sprites, out, epochs=3))
    assert "1 steps later" in str(e.value)            # the picture is G after step 6: said so
    assert (out / "diverged_step_5.png").exists()
    _, meta = _arrays(out / "checkpoint.npz")
    assert meta["epoch"] == 1 and meta["step"] == 3    # the last good checkpoint, untouched


def test_a_stop_mid_window_checkpoints_every_finished_step(sprites, tmp_path, monkeypatch, whole_epoch_windows):
    def sigterm(losses):
        os.kill(os.getpid(), signal.SIGTERM)           # the loop's handler only sets a flag
        return losses

    on_train_step(monkeypatch, TIMING_STEPS + 4, sigterm)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match="stopped after step 4"):
        train_mod.run(_cfg(sprites, out, epochs=3))
    arrays, meta = _arrays(out / "checkpoint.npz")
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 1, 4)
    assert len(arrays["extra/loss_D"]) == len(arrays["extra/d_fake"]) == 4
    assert np.isfinite(arrays["extra/loss_D"]).all()


class _FakeCuPy:
    """Enough of cupy for ``place_dataset``: a memory query and an upload that marks its result."""

    class cuda:
        class runtime:
            free = 0

            @classmethod
            def memGetInfo(cls):
                return cls.free, 80e9

    @staticmethod
    def asarray(a, dtype=None):
        return ("on device", np.asarray(a, dtype=dtype))


@pytest.mark.parametrize("free,uploaded", [(10e9, True), (0.5e6, False)])
def test_dataset_is_uploaded_once_when_it_fits_in_half_the_free_memory(free, uploaded, capsys):
    images = np.zeros((100, 3, 16, 16), np.float32)                    # 307 kB
    _FakeCuPy.cuda.runtime.free = free
    placed, on_device = train_mod.place_dataset(images, _FakeCuPy, np.float32)
    assert on_device is uploaded
    assert isinstance(placed, tuple) is uploaded                          # only the upload makes a tuple
    said = capsys.readouterr().out
    assert ("uploaded to the GPU once" in said) is uploaded
    assert ("each batch uploaded" in said) is not uploaded


def test_numpy_dataset_is_the_host_array_and_batches_are_plain_indexing():
    images = np.arange(5 * 3 * 2 * 2, dtype=np.float32).reshape(5, 3, 2, 2)
    placed, on_device = train_mod.place_dataset(images, np, np.float32)
    assert placed is images and not on_device
    np.testing.assert_array_equal(train_mod.batch_of(placed, np.array([4, 0]), np), images[[4, 0]])


def test_scalars_reach_the_host_as_float64_in_order():
    got = train_mod._scalars_to_host([np.float32(1.5), np.float32(np.nan), np.array(2.0), np.float64(-3)], np)
    assert got.dtype == np.float64 and got.shape == (4,)
    np.testing.assert_array_equal(got, [1.5, np.nan, 2.0, -3.0])
