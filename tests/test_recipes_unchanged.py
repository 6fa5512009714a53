"""Issue 26's options, all off, leave --recipe paper, d2l and sprites training exactly as before.

Two checks, for each recipe on a tiny run (16×16, features 4, batch 8, 24 sprites, 6 steps
across an epoch boundary):

* today's ``Run.step`` against ``recipes_before_issue26.old_run_step`` (the step of commit
  d00729c, verbatim) from one state: equal losses and equal bits in G, D, both Adam states
  and the moving average, on any machine;
* today's run against what commit d00729c's code did on it, stored in
  ``recipes_before_issue26.json`` (``python tests/test_recipes_unchanged.py --write`` wrote
  it, before the options existed): the run's rng state after the steps (what it drew: data
  order, z, DiffAugment's numbers — exact on any machine), the losses and the weights' sums
  (to float32 rounding: another BLAS kernel rounds the products differently), and, on the
  machine kind that wrote it (same BLAS kernel and threads), the SHA-256 of every weight.
"""
import hashlib
import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "..", "benchmarks"))
from recipes_before_issue26 import old_run_step  # noqa: E402

FIXTURE = os.path.join(HERE, "recipes_before_issue26.json")
RECIPES, STEPS = ("paper", "d2l", "sprites"), 6


def tiny_sprites(folder, n=24):
    """n made-up RGBA sprites (20×16) in ``folder``: two flat boxes each, colours from a fixed rng."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(26)
    for i in range(n):
        a = np.zeros((16, 20, 4), np.uint8)
        a[3:13, 4:16, :3], a[3:13, 4:16, 3] = rng.integers(0, 255, 3), 255
        a[6:10, 8:12, :3] = rng.integers(0, 255, 3)
        Image.fromarray(a, "RGBA").save(os.path.join(folder, f"t{i:02d}.png"))
    return folder


def tiny_run(recipe, data, out, **options):
    from tinygan.train import Config, Run
    cfg = Config(backend="numpy", data=data, out=out, recipe=recipe, seed=5, image_size=16, features=4,
                 batch_size=8, latent_dim=8, progress=False, **options).resolved()
    return Run(cfg)


def weights(r):
    """Every array the steps change: G, D, both Adam states, the moving average (name → array)."""
    out = {f"G.{k}": v for k, v in r.G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in r.D.state_dict().items()})
    for name, opt in (("opt_G", r.opt_G), ("opt_D", r.opt_D)):
        out.update({f"{name}.{k}": np.asarray(v) for k, v in opt.state_dict().items()
                    if isinstance(v, np.ndarray)})
    if r.ema is not None:
        out.update({f"ema.{k}": v for k, v in r.ema.model.state_dict().items()})
    return out


def train(r, step):
    """STEPS steps of ``step(r, real, z)`` over r's batches; the losses as floats."""
    losses = []
    while len(losses) < STEPS:
        for real, z in r.batches():
            losses.append([float(v) for v in step(r, real, z)])
            r.state.batch += 1
            r.state.step += 1
            if len(losses) == STEPS:
                break
        else:
            r.state.epoch, r.state.batch, r.state.perm = r.state.epoch + 1, 0, None
    return losses


def digest(r, losses):
    w = weights(r)
    sha = hashlib.sha256()
    for k in sorted(w):
        sha.update(k.encode() + np.ascontiguousarray(w[k]).tobytes())
    return {"losses": losses, "rng": r.state.rng.bit_generator.state["state"],
            "sums": {k: float(np.asarray(v, np.float64).sum()) for k, v in sorted(w.items())},
            "sha256": sha.hexdigest()}


def machine_kind():
    import threads
    return threads.machine_line().split(";")[1].split(", compiled")[0].strip()   # BLAS, kernel, threads


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_step_with_every_option_off_is_the_old_step_bit_for_bit(recipe, tmp_path):
    data = tiny_sprites(str(tmp_path / "data"))
    new = tiny_run(recipe, data, str(tmp_path / "new"))
    old = tiny_run(recipe, data, str(tmp_path / "old"))     # the same seed: the same models, rng, EMA
    a = train(new, lambda r, real, z: r.step(real, z))
    b = train(old, old_run_step)
    assert a == b
    wa, wb = weights(new), weights(old)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_as_commit_d00729c_did(recipe, tmp_path):
    with open(FIXTURE) as f:
        stored = json.load(f)
    want = stored["runs"][recipe]
    r = tiny_run(recipe, tiny_sprites(str(tmp_path / "data")), str(tmp_path / "out"))
    got = digest(r, train(r, lambda r, real, z: r.step(real, z)))
    assert got["rng"] == want["rng"]                                   # the same draws, exactly
    np.testing.assert_allclose(got["losses"], want["losses"], rtol=1e-5)
    assert sorted(got["sums"]) == sorted(want["sums"])
    for k, v in want["sums"].items():
        assert got["sums"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    if machine_kind() == stored["machine_kind"]:
        assert got["sha256"] == want["sha256"]                         # the same bits where the same BLAS runs


def write_fixture():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_sprites(os.path.join(tmp, "data"))
        runs = {}
        for recipe in RECIPES:
            r = tiny_run(recipe, data, os.path.join(tmp, recipe))
            runs[recipe] = digest(r, train(r, lambda r, real, z: r.step(real, z)))
    with open(FIXTURE, "w") as f:
        json.dump({"written_by": "d00729c", "machine_kind": machine_kind(), "runs": runs}, f, indent=1)
    print(f"{FIXTURE}: {', '.join(k + ' ' + v['sha256'][:12] for k, v in runs.items())}")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    sys.path.insert(0, os.path.join(HERE, ".."))
    write_fixture()
