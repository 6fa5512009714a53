"""The small-data options of a run: one-sided label smoothing and D's own learning rate (TTUR)."""
import copy

import numpy as np
import pytest

from tinygan.dcgan import build, train_step
from tinygan.nn import BCEWithLogitsLoss
from tinygan.optim import Adam
from tinygan.train import Config


def _setup():
    G, D = build("paper", 8, 4, 16, seed=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 3, 16, 16))
    z = rng.standard_normal((4, 8, 1, 1))
    G.double(), D.double()
    return G, D, x, z


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_real_label_is_the_target_of_real_images_only(real_label):
    G, D, x, z = _setup()
    bce = BCEWithLogitsLoss()
    G0, D0 = copy.deepcopy((G, D))                       # the models before the step, for the expectation
    fake = G0(z)
    expected = 0.5 * (float(bce(D0(x), np.full(4, real_label))) + float(bce(D0(fake), np.zeros(4))))
    opts = [Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D)]
    loss_D, loss_G = train_step(G, D, *opts, x, z, real_label=real_label)
    assert float(loss_D) == pytest.approx(expected, rel=1e-12)


def test_smoothing_changes_ds_gradient_by_exactly_the_target_shift():
    """dℓ/dlogit = σ(x) − y: lowering y for reals by 0.1 adds 0.1/N·(½) to each real logit's gradient."""
    bce = BCEWithLogitsLoss()
    logits = np.random.default_rng(1).standard_normal(6)
    bce(logits, np.ones(6))
    g1 = bce.backward(0.5)
    bce(logits, np.full(6, 0.9))
    g09 = bce.backward(0.5)
    np.testing.assert_allclose(g09 - g1, np.full(6, 0.5 * 0.1 / 6), rtol=1e-12)


def test_lr_d_defaults_to_lr_and_can_differ():
    assert Config().resolved().lr_d == 2e-4
    c = Config(lr=1e-4, lr_d=4e-4).resolved()
    assert (c.lr, c.lr_d) == (1e-4, 4e-4)


def test_a_run_gives_d_its_own_rate_and_the_step_its_label(sprites, tmp_path, monkeypatch):
    from tinygan import train
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return train_step(*args, **kwargs)
    monkeypatch.setattr(train, "train_step", spy)
    r = train.Run(Config(data=str(sprites), out=str(tmp_path / "o"), image_size=16, features=4, latent_dim=8,
                         batch_size=4, lr=1e-4, lr_d=4e-4, real_label=0.9, recipe="sprites").resolved())
    assert (r.opt_G.lr, r.opt_D.lr) == (1e-4, 4e-4)
    real, z = next(r.batches())
    r.step(real, z)
    assert seen["real_label"] == 0.9 and seen["augment"] is r.augment and r.augment is not None


@pytest.mark.parametrize("sn, mbstd", [(True, False), (False, True), (True, True)])
def test_discriminator_options_train_and_survive_a_checkpoint(sprites, tmp_path, sn, mbstd):
    """--d-spectral-norm / --d-minibatch-std: D is built with them, trains, and load_models rebuilds it."""
    from tinygan import checkpoint, train
    from tinygan.nn import BatchNorm2d, MinibatchStd, SpectralNorm
    cfg = Config(data=str(sprites), out=str(tmp_path / "o"), image_size=16, features=4, latent_dim=8, batch_size=4,
                 epochs=1, progress=False, d_spectral_norm=sn, d_minibatch_std=mbstd)
    train.run(cfg, callbacks=[])
    r = train.Run(cfg.resolved())
    r.save_checkpoint()
    G, D, meta = checkpoint.load_models(r.checkpoint_path)
    kinds = [type(m) for m in D.main]
    assert (SpectralNorm in kinds, BatchNorm2d in kinds, MinibatchStd in kinds) == (sn, not sn, mbstd)
    assert list(D.state_dict()) == list(r.D.state_dict())
    for (name, a), (_, b) in zip(D.state_dict().items(), r.D.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert D(np.zeros((4, 3, 16, 16), np.float32)).shape == (4,)
    if sn:                                   # dcgan_init reached the learned weight: std 0.02, not PyTorch's uniform
        assert 0.01 < float(r.D.main[0].weight_orig.data.std()) < 0.03
