"""Failures that must never lose work or end in a traceback: checkpoints, disks, batches, layer shapes."""
import errno
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygan import checkpoint, io
from tinygan import train as train_mod
from tinygan.dcgan import build
from tinygan.nn import (BatchNorm2d, Conv2d, ConvTranspose2d, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh,
                        conv_out_size, deconv_out_size)
from tinygan.optim import Adam

from conftest import TIMING_STEPS, on_train_step


def _saved(tmp_path, image_size=16, name="ck.npz"):
    G, D = build(latent_dim=8, features=4, image_size=image_size, seed=0)
    path = tmp_path / name
    checkpoint.save(path, G, D, Adam(G.parameters()), Adam(D.parameters()), meta={"epoch": 1})
    return path, G, D


# ---- checkpoints ----------------------------------------------------------------------

def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path, G, D = _saved(tmp_path)
    before = path.read_bytes()

    def dies_half_way(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, G, D, meta={"epoch": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]          # no temp file left behind
    monkeypatch.undo()
    assert checkpoint.load(path)["meta"]["epoch"] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty"])
def test_damaged_or_foreign_checkpoints_are_clear_errors(tmp_path, damage):
    path, _, _ = _saved(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a checkpoint at all" * 10)
    elif damage == "foreign":
        np.savez(path, weights=np.zeros(3))
    else:
        path.write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match=str(path).replace(".", r"\.")):
        checkpoint.load(path)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "nope.npz")


def test_other_architecture_is_refused_with_the_mismatching_keys(tmp_path):
    path, _, _ = _saved(tmp_path, image_size=16)
    G32, D32 = build(latent_dim=8, features=4, image_size=32, seed=0)
    before = [p.data.copy() for p in G32.parameters()]
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.restore(checkpoint.load(path), G32, D32, path=str(path))
    msg = str(e.value)
    assert str(path) in msg and "--image-size" in msg
    assert re.search(r"missing keys: [^|]*main\.9\.weight", msg)       # the 32×32 G has one block more
    assert "main.6.weight: checkpoint (4, 3, 4, 4) vs model (8, 4, 4, 4)" in msg
    assert all(np.array_equal(a, p.data) for a, p in zip(before, G32.parameters()))   # nothing half-loaded


def test_other_latent_size_lists_the_mismatching_shape(tmp_path):
    path, _, _ = _saved(tmp_path)
    G, D = build(latent_dim=16, features=4, image_size=16, seed=0)
    with pytest.raises(checkpoint.CheckpointError, match=r"main\.0\.weight: checkpoint \(8, 8, 4, 4\) vs model \(16, 8, 4, 4\)"):
        checkpoint.restore(checkpoint.load(path), G, D)


def test_checkpoint_arrays_are_host_arrays_that_load_back_exactly(tmp_path):
    path, G, D = _saved(tmp_path)
    state = checkpoint.load(path)
    assert all(type(v) is np.ndarray for v in state["G"].values())
    G2, D2 = build(latent_dim=8, features=4, image_size=16, seed=99)
    checkpoint.restore(state, G2, D2)
    for a, b in zip(G.state_dict().values(), G2.state_dict().values()):
        np.testing.assert_array_equal(a, b)


# ---- the training run -----------------------------------------------------------------

@pytest.fixture
def five_images(tmp_path):
    from PIL import Image
    folder = tmp_path / "five"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _cfg(tmp_path, folder, **kw):
    base = dict(data=str(folder), out=str(tmp_path / "run"), epochs=1, image_size=16, features=4,
                latent_dim=8, batch_size=4, progress=False)
    return train_mod.Config(**{**base, **kw})


def test_batch_larger_than_the_dataset_is_clamped_with_a_warning(tmp_path, five_images, capsys):
    summary = train_mod.run(_cfg(tmp_path, five_images, batch_size=64))
    out = capsys.readouterr().out
    assert "--batch-size 64 is larger than the dataset (5 images); using 5" in out
    assert summary["steps"] == 1 and np.isfinite(summary["loss_D"])


def test_a_final_batch_of_one_image_trains(tmp_path, five_images):
    summary = train_mod.run(_cfg(tmp_path, five_images, batch_size=4, epochs=2))   # batches of 4 and 1
    assert summary["steps"] == 4 and np.isfinite(summary["loss_G"])


def test_unwritable_output_is_reported_before_training(tmp_path, five_images, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(train_mod, "train_step", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(OSError, match="not writable.*--out"):
        train_mod.run(_cfg(tmp_path, five_images, out=str(blocker / "run")))


def test_disk_full_at_a_save_stops_and_keeps_the_previous_checkpoint(tmp_path, five_images, monkeypatch):
    cfg = _cfg(tmp_path, five_images, epochs=1)
    train_mod.run(cfg)
    ck = tmp_path / "run" / "checkpoint.npz"
    good = ck.read_bytes()
    real_atomic_write = io.atomic_write

    def full_disk(path, mode="wb"):
        if str(path).endswith("checkpoint.npz"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_atomic_write(path, mode)

    monkeypatch.setattr(checkpoint, "atomic_write", full_disk)
    with pytest.raises(OSError, match="No space left on device.*last checkpoint that was written whole"):
        train_mod.run(_cfg(tmp_path, five_images, epochs=2), resume=str(ck))
    assert ck.read_bytes() == good
    assert checkpoint.load(ck)["meta"]["epoch"] == 1


def test_ctrl_c_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path, five_images, monkeypatch, capsys):
    """SIGINT after step 4 (the middle of epoch 2) writes a checkpoint there; resuming it ends
    bit-identical to a run that was never interrupted."""
    import os
    import signal

    straight = train_mod.run(_cfg(tmp_path, five_images, epochs=3, batch_size=2, out=str(tmp_path / "straight")))
    def ctrl_c(losses):
        os.kill(os.getpid(), signal.SIGINT)              # as Ctrl-C: handled between steps
        return losses

    real_step = on_train_step(monkeypatch, TIMING_STEPS + 4, ctrl_c)
    cfg = _cfg(tmp_path, five_images, epochs=3, batch_size=2, out=str(tmp_path / "split"))
    with pytest.raises(KeyboardInterrupt, match=r"(?s)SIGINT: stopped after step 4 \(epoch 2, batch 1/3\).*--resume"):
        train_mod.run(cfg)
    ck = tmp_path / "split" / "checkpoint.npz"
    meta = checkpoint.load(ck)["meta"]
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 1, 4)
    monkeypatch.setattr(train_mod, "train_step", real_step)
    resumed = train_mod.run(cfg, resume=str(ck))
    assert resumed["steps"] == straight["steps"] == 9
    a, b = checkpoint.load(tmp_path / "straight" / "checkpoint.npz"), checkpoint.load(ck)
    for group in ("G", "D", "opt_G", "opt_D"):
        for k in a[group]:
            np.testing.assert_array_equal(a[group][k], b[group][k], err_msg=f"{group}/{k}")


def test_log_is_rewritten_whole_from_the_checkpoint_on_resume(tmp_path, five_images):
    train_mod.run(_cfg(tmp_path, five_images, epochs=1))
    ck = str(tmp_path / "run" / "checkpoint.npz")
    train_mod.run(_cfg(tmp_path, five_images, epochs=2), resume=ck)
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


# ---- layers: random valid shapes work, invalid ones raise the layer's clear error -------------

def _layer_and_input(kind, n, c, h, w, k, s, p, rng):
    if kind == "conv":
        return Conv2d(c, 3, k, s, p), conv_out_size(h, k, s, p), conv_out_size(w, k, s, p), 3
    if kind == "deconv":
        return ConvTranspose2d(c, 3, k, s, p), deconv_out_size(h, k, s, p), deconv_out_size(w, k, s, p), 3
    layer = {"bn": BatchNorm2d(c), "relu": ReLU(), "lrelu": LeakyReLU(0.2), "tanh": Tanh(),
             "sigmoid": Sigmoid()}[kind]
    return layer, h, w, c


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["conv", "deconv", "bn", "relu", "lrelu", "tanh", "sigmoid"]),
       n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9),
       k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2))
def test_valid_shapes_give_finite_outputs_of_the_right_shape(kind, n, c, h, w, k, s, p):
    rng = np.random.default_rng(0)
    layer, oh, ow, oc = _layer_and_input(kind, n, c, h, w, k, s, p, rng)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32) * 3
    if oh < 1 or ow < 1 or (kind == "bn" and n * h * w < 2):
        with pytest.raises(ValueError, match=type(layer).__name__):
            layer(x)
        return
    y = layer(x)
    assert y.shape == (n, oc, oh, ow) and y.dtype == np.float32 and np.isfinite(y).all()
    dx = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert dx.shape == x.shape and dx.dtype == np.float32 and np.isfinite(dx).all()


def test_sequential_reports_the_failing_layer():
    net = Sequential(Conv2d(3, 4, 3), ReLU(), Conv2d(5, 2, 3))
    with pytest.raises(ValueError, match=r"Conv2d: expected 5 input channels"):
        net(np.zeros((1, 3, 8, 8), np.float32))
