"""Issue 26's candidates: each backward against finite differences (float64) and PyTorch where it has
the op, and each option in train_step doing what it says (off: nothing at all).

flip of the reals, DiffAugment with a probability and ADA's control of it, LeCam, top-k for G,
the hinge loss, bCR's consistency term. The EMA's ramp and BatchNorm re-estimation are in tests/test_ema.py.
"""
import copy

import numpy as np
import pytest

from tinygan import to_numpy
from tinygan.dcgan import AdaptiveAugment, _candidate_step, _d_half, build, train_step
from tinygan.gradcheck import check_directional, check_module, compare, numerical_gradient
from tinygan.nn import (BCEWithLogitsLoss, Consistency, DiffAugment, GeneratorHingeLoss, HingeLoss, LeCam, Module,
                        RandomFlip, TopK, topk_schedule)
from tinygan.nn.augment import HorizontalFlip
from tinygan.optim import Adam


def _image(xp, seed=0, shape=(4, 3, 8, 8)):
    return xp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape))


# ----- horizontal flip ------------------------------------------------------------------------

def test_flip_passes_finite_differences_and_mirrors_only_the_chosen_images(xp):
    flip = HorizontalFlip(xp.asarray(np.array([True, False, True, False])))
    x = _image(xp)
    assert check_module(flip, x).ok
    y = to_numpy(flip(x))
    np.testing.assert_array_equal(y[0], to_numpy(x)[0, :, :, ::-1])
    np.testing.assert_array_equal(y[1], to_numpy(x)[1])


def test_flip_is_torch_flip():
    torch = pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    x, chosen = _image(np), np.array([True, True, False, True])
    ours = HorizontalFlip(chosen)(x)
    t = torch.from_numpy(x)
    theirs = torch.where(torch.from_numpy(chosen).reshape(4, 1, 1, 1), torch.flip(t, dims=[3]), t)
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_random_flip_draws_from_its_rng_with_probability_p():
    x = np.zeros((4000, 1, 1, 2))
    x[..., 0] = 1                                                   # left pixel 1: flipped images have it right
    y = RandomFlip(0.5, rng=np.random.default_rng(0))(x)
    assert 0.45 < y[:, 0, 0, 1].mean() < 0.55
    assert (RandomFlip(0.0)(x) == x).all()
    with pytest.raises(ValueError, match="p must be in"):
        RandomFlip(1.5)


# ----- DiffAugment with a probability, and ADA --------------------------------------------------

def test_probability_0_is_the_identity_and_1_the_original_draws(xp):
    x = _image(xp)
    np.testing.assert_array_equal(to_numpy(DiffAugment(p=0.0, rng=np.random.default_rng(1))(x)), to_numpy(x))
    a, b = DiffAugment(rng=np.random.default_rng(1)), DiffAugment(p=1.0, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(to_numpy(a(x)), to_numpy(b(x)))


@pytest.mark.parametrize("policy", ["color", "translation", "cutout"])
def test_with_probability_one_half_about_half_the_images_change(policy):
    x = _image(np, shape=(2000, 3, 8, 8))
    y = DiffAugment(policy, p=0.5, rng=np.random.default_rng(2))(x)
    changed = np.abs(y - x).reshape(len(x), -1).max(axis=1) > 0
    share = {"color": 1 - 0.5 ** 3, "translation": 0.5 * (1 - 1 / 9), "cutout": 0.5}[policy]
    assert abs(changed.mean() - share) < 0.04, (changed.mean(), share)


def test_the_chain_with_a_probability_passes_finite_differences(xp):
    aug = DiffAugment(p=0.5, rng=np.random.default_rng(3))
    x = _image(xp, shape=(6, 3, 8, 8))
    aug(x)
    aug.replay = True
    assert check_module(aug, x).ok


def test_ada_moves_p_by_the_sign_of_ds_real_outputs():
    aug = DiffAugment(rng=np.random.default_rng(0))
    ada = AdaptiveAugment(aug, target=0.6, interval=2, kimg=1.0)      # 4 logits a step: ±8/1000 per interval
    sure = np.array([3.0, 2.0, 1.0, 0.5])                               # r_t = 1 > 0.6: p up
    ada.observe(sure)
    assert ada.p == aug.p == 0.0                                        # not yet: every 2 steps
    ada.observe(sure)
    assert ada.p == aug.p == pytest.approx(0.008)
    unsure = np.array([1.0, -1.0, -2.0, 1.0])                           # r_t = 0 < 0.6: p down, not below 0
    for _ in range(4):
        ada.observe(unsure)
    assert ada.p == 0.0
    ada.load_state([0.999, 2, 0.0, 0])
    ada.observe(sure), ada.observe(sure)
    assert ada.p == 1.0 and aug.p == 1.0                               # and not above 1


# ----- LeCam ----------------------------------------------------------------------------------

def _lecam_with_history(xp):
    lecam = LeCam(weight=0.3, decay=0.9)
    rng = np.random.default_rng(4)
    for _ in range(3):
        lecam.update(xp.asarray(rng.normal(1.0, 1.0, 8)), xp.asarray(rng.normal(-1.0, 1.0, 8)))
    return lecam


@pytest.mark.parametrize("half", ["real", "fake"])
def test_lecam_terms_pass_finite_differences(xp, half):
    lecam = _lecam_with_history(xp)
    term = getattr(lecam, half)
    x = xp.asarray(np.random.default_rng(5).normal(0.0, 2.0, 8))       # on both sides of the averages
    value, grad = term(x)
    numeric = numerical_gradient(lambda: term(x)[0], x)
    report = compare(f"LeCam.{half}", grad, numeric)
    assert report.ok, report.line()
    assert float(value) > 0 and 0 < int((to_numpy(grad) != 0).sum()) < 8      # both sides of the hinge


def test_lecam_is_its_papers_code_in_pytorch():
    """The lecam-gan repository's lecamreg: mean(relu(D_real − ema_fake)²) + mean(relu(ema_real − D_fake)²),
    the averages zero-debiased moving averages of the mean outputs, no gradient through them."""
    torch = pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    lecam = _lecam_with_history(np)
    alpha_real, alpha_fake = lecam.averages()
    x, y = np.random.default_rng(6).normal(0.0, 2.0, (2, 8))
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    reg = 0.3 * (torch.relu(tx - float(alpha_fake)).pow(2).mean() + torch.relu(float(alpha_real) - ty).pow(2).mean())
    reg.backward()
    (vx, gx), (vy, gy) = lecam.real(x), lecam.fake(y)
    assert float(vx + vy) == pytest.approx(reg.item(), rel=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gy, ty.grad.numpy(), rtol=1e-12)


def test_lecam_averages_are_zero_debiased_and_start_empty():
    lecam = LeCam(weight=1.0, decay=0.99)
    value, grad = lecam.real(np.array([5.0, -5.0]))
    assert float(value) == 0 and not grad.any()                        # no history: no term
    lecam.update(np.array([2.0, 4.0]), np.array([-1.0, -3.0]))
    assert lecam.averages() == (pytest.approx(3.0), pytest.approx(-2.0))   # the first means, debiased
    saved = lecam.state()
    other = LeCam(weight=1.0, decay=0.99)
    other.load_state(saved)
    assert other.averages() == lecam.averages()


# ----- top-k ----------------------------------------------------------------------------------

def test_topk_passes_finite_differences_and_keeps_the_largest(xp):
    x = xp.asarray(np.random.default_rng(7).permutation(10).astype(np.float64) + 0.1)
    select = TopK(4)
    assert sorted(to_numpy(select(x)).tolist(), reverse=True) == to_numpy(select(x)).tolist() == [9.1, 8.1, 7.1, 6.1]
    assert check_module(select, x).ok


def test_topk_is_torch_topk():
    torch = pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    x = np.random.default_rng(8).normal(size=16)
    dy = np.random.default_rng(9).normal(size=5)
    select = TopK(5)
    ours = select(x)
    dx = select.backward(dy)
    t = torch.tensor(x, requires_grad=True)
    values, _ = torch.topk(t, 5)
    values.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(ours, values.detach().numpy())
    np.testing.assert_array_equal(dx, t.grad.numpy())


def test_the_schedule_goes_from_the_batch_to_half_of_it():
    assert topk_schedule(32, 0) == 32
    assert topk_schedule(32, 10) == int(32 * 0.99 ** 10) == 28
    assert topk_schedule(32, 1000) == 16
    assert topk_schedule(1, 1000) == 1


# ----- hinge loss -----------------------------------------------------------------------------

class _Hinge(Module):
    """The hinge loss of logits x against fixed targets, as a module of x (for check_module)."""

    def __init__(self, target, reduction):
        self.loss, self.target = HingeLoss(reduction), target

    def forward(self, x):
        return self.loss(x, self.target)

    def backward(self, dout):
        return self.loss.backward(float(dout))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_hinge_passes_finite_differences(xp, reduction):
    x = xp.asarray(np.random.default_rng(10).normal(0.0, 2.0, 12))
    target = xp.asarray((np.arange(12) % 2).astype(np.float64))
    assert check_module(_Hinge(target, reduction), x).ok
    g = GeneratorHingeLoss(reduction)
    g(x)
    numeric = numerical_gradient(lambda: g(x), x)
    assert compare("generator", g.backward(), numeric).ok


def test_hinge_is_the_sn_gan_loss_in_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    real, fake = np.random.default_rng(11).normal(0.0, 2.0, (2, 8))
    loss = HingeLoss()
    ours = [float(loss(real, np.ones(8))), loss.backward(), float(loss(fake, np.zeros(8))), loss.backward(),
            float(loss.generator(fake)), loss.generator.backward()]
    tr, tf = torch.tensor(real, requires_grad=True), torch.tensor(fake, requires_grad=True)
    d_real, d_fake = torch.relu(1 - tr).mean(), torch.relu(1 + tf).mean()
    (d_real + d_fake).backward()
    assert ours[0] == pytest.approx(d_real.item()) and ours[2] == pytest.approx(d_fake.item())
    np.testing.assert_allclose(ours[1], tr.grad.numpy())
    np.testing.assert_allclose(ours[3], tf.grad.numpy())
    tf.grad = None
    g = -tf.mean()
    g.backward()
    assert ours[4] == pytest.approx(g.item())
    np.testing.assert_allclose(ours[5], tf.grad.numpy())


# ----- the options in train_step ----------------------------------------------------------------

def _models(recipe="paper"):
    G, D = build(recipe, latent_dim=8, features=4, image_size=16, seed=1)
    G, D = G.double(), D.double()
    return G, D, Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999)), Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))


def _batch(seed=0, N=8):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (N, 3, 16, 16)), rng.standard_normal((N, 8, 1, 1))


def _weights(*models):
    return [to_numpy(p.data).copy() for m in models for p in m.parameters()]


def test_the_candidate_step_with_every_option_off_is_train_step():
    a, b = _models(), _models()
    real, z = _batch()
    la = train_step(*a, real, z, BCEWithLogitsLoss())
    lb = _candidate_step(*b, real, z, BCEWithLogitsLoss(), None, None, 1.0, None, None, None, None)
    assert [float(v) for v in la] == [float(v) for v in lb]
    for wa, wb in zip(_weights(*a[:2]), _weights(*b[:2])):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("option", ["flip", "ada", "lecam", "topk", "hinge", "bcr"])
def test_each_option_changes_the_step_and_trains(option):
    """Each option, alone, on the sprites recipe's augmentation: a finite step that differs from the plain one."""
    real, z = _batch(1)
    plain, model = _models("sprites"), _models("sprites")
    aug = lambda: DiffAugment(rng=np.random.default_rng(5))         # noqa: E731
    train_step(*plain, real, z, BCEWithLogitsLoss(), augment=aug())
    kw, loss_fn, augment = {}, BCEWithLogitsLoss(), aug()
    lecam = LeCam(weight=1.0)
    if option == "flip":
        kw["flip"] = RandomFlip(rng=np.random.default_rng(6))
    elif option == "ada":
        kw["ada"] = AdaptiveAugment(augment, interval=1, kimg=0.001)   # p from 0: D sees the plain images first
    elif option == "lecam":
        lecam.update(np.full(8, 5.0), np.full(8, -5.0))                 # a history D's outputs now exceed
        kw["lecam"] = lecam
    elif option == "topk":
        kw["topk"] = 4
    elif option == "bcr":
        kw["bcr"] = Consistency(10.0)
    else:
        loss_fn = HingeLoss()
    stats = {}
    losses = train_step(*model, real, z, loss_fn, stats, augment=augment, **kw)
    assert all(np.isfinite(float(v)) for v in losses)
    changed = [not np.array_equal(a, b) for a, b in zip(_weights(*plain[:2]), _weights(*model[:2]))]
    assert any(changed)
    if option == "ada":
        assert augment.p > 0                                           # D was sure of the reals: p went up
    if option == "lecam":
        assert float(stats["lecam"]) > 0
    if option == "bcr":
        assert float(stats["bcr"]) > 0


def test_gs_gradient_through_topk_hinge_and_augmentation_passes_finite_differences():
    """G's half of the step with top-k, the hinge loss and DiffAugment: one random direction through all of G."""
    G, D, _, _ = _models("sprites")
    _, z = _batch(2)
    aug = DiffAugment(p=0.5, rng=np.random.default_rng(7))
    select, loss = TopK(5), GeneratorHingeLoss()
    aug(G(z))
    aug.replay = True
    D.requires_grad_(False)

    def f():
        return loss(select(D(aug(G(z)))))
    G.zero_grad()
    f()
    G.backward(aug.backward(D.backward(select.backward(loss.backward()))))
    params = [p for p in G.parameters()]
    report = check_directional(f, [p.data for p in params], [p.grad for p in params])
    assert report.ok, str(report)


def test_the_hinge_loss_refuses_label_smoothing():
    real, z = _batch()
    with pytest.raises(ValueError, match="hinge loss has no labels"):
        train_step(*_models(), real, z, HingeLoss(), real_label=0.9)


def test_candidates_leave_the_callers_arrays_alone():
    real, z = _batch(3)
    before = real.copy()
    train_step(*_models("sprites"), real, z, HingeLoss(), flip=RandomFlip(rng=np.random.default_rng(0)),
               lecam=LeCam(1.0), topk=4, augment=DiffAugment(p=0.5, rng=np.random.default_rng(1)))
    np.testing.assert_array_equal(real, before)
    assert copy.deepcopy(LeCam(0.1)).weight == 0.1


# ----- bCR: consistency of D under two augmentations -----------------------------------------------

def test_consistency_term_passes_finite_differences_and_is_mse_loss_in_pytorch(xp):
    rng = np.random.default_rng(8)
    a, b = xp.asarray(rng.normal(0, 2, 8)), xp.asarray(rng.normal(0, 2, 8))
    bcr = Consistency(10.0)
    value, grad = bcr(a, b)
    report = compare("Consistency d/da", grad, numerical_gradient(lambda: bcr(a, b)[0], a))
    assert report.ok, report.line()
    report = compare("Consistency d/db", -grad, numerical_gradient(lambda: bcr(a, b)[0], b))
    assert report.ok, report.line()
    torch = pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed")
    ta = torch.tensor(to_numpy(a), requires_grad=True)
    tb = torch.tensor(to_numpy(b), requires_grad=True)
    loss = 10.0 * torch.nn.functional.mse_loss(ta, tb)
    loss.backward()
    np.testing.assert_allclose(float(value), loss.item(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(grad), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(-to_numpy(grad), tb.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        Consistency(-1.0)
    with pytest.raises(ValueError, match=r"shapes \(8,\) and \(4,\)"):
        bcr(a, b[:4])


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_ds_half_with_bcr_passes_finite_differences_through_both_branches(loss):
    """½·ℓ(D(T₁u), y) + λ·mean((D(T₁u) − D(T₂u))²): the gradient _d_half leaves in D's weights
    (three forwards, two backwards) against finite differences along a random direction."""
    _, D, _, _ = _models("sprites")
    rng = np.random.default_rng(9)
    xa, xb = rng.uniform(-1, 1, (6, 3, 16, 16)), rng.uniform(-1, 1, (6, 3, 16, 16))
    target = np.ones(6)
    loss_fn, bcr = (BCEWithLogitsLoss() if loss == "bce" else HingeLoss()), Consistency(10.0)
    draws = iter([xa, xb])                                  # T₁u, then T₂u: what the two draws return
    D.zero_grad()
    logits, _, _, cr = _d_half(D, loss_fn, lambda u: next(draws), None, target, None, bcr)
    assert float(cr) > 0

    def f():
        a, b = D(xa), D(xb)
        return 0.5 * loss_fn(a, target) + bcr(a, b)[0]
    np.testing.assert_array_equal(to_numpy(logits), to_numpy(D(xa)))
    params = list(D.parameters())
    report = check_directional(f, [p.data for p in params], [p.grad for p in params])
    assert report.ok, str(report)


def test_bcr_replays_d_on_the_second_draw_with_the_spectral_norms_vectors_it_first_had():
    """With a spectral norm in D each forward moves its power iteration on: b's second forward must
    compute the b that dC/da was made from, and leave u, v where a plain b-then-a pair would."""
    G, D = build("sprites", latent_dim=8, features=4, image_size=16, seed=1, d_spectral_norm=True)
    D = D.double()
    rng = np.random.default_rng(10)
    xa, xb = rng.uniform(-1, 1, (6, 3, 16, 16)), rng.uniform(-1, 1, (6, 3, 16, 16))
    twin = copy.deepcopy(D)
    twin(xb), twin(xa)                                      # where the vectors should end
    outputs, forward = [], D.forward
    D.forward = lambda x: outputs.append(forward(x)) or outputs[-1]
    draws = iter([xa, xb])
    _d_half(D, BCEWithLogitsLoss(), lambda u: next(draws), None, np.ones(6), None, Consistency(5.0))
    assert len(outputs) == 3                                # b, a, b again
    np.testing.assert_array_equal(to_numpy(outputs[0]), to_numpy(outputs[2]))
    norms = [m for m in D.modules() if hasattr(m, "weight_u")]
    assert norms
    for m, t in zip(norms, [m for m in twin.modules() if hasattr(m, "weight_u")]):
        np.testing.assert_array_equal(m.weight_u, t.weight_u)
        np.testing.assert_array_equal(m.weight_v, t.weight_v)


def test_bcr_needs_an_augmentation(sprites, tmp_path):
    from tinygan.train import Config, Run
    with pytest.raises(ValueError, match="bcr: consistency under augmentation needs D.s inputs augmented"):
        Run(Config(data=str(sprites), out=str(tmp_path / "a"), recipe="paper", image_size=16, features=4,
                   batch_size=4, progress=False, bcr=10.0).resolved())


# ----- the options as Config fields of a run ----------------------------------------------------

OPTIONS = {"flip": {"flip": True}, "augment_p": {"augment_p": 0.5}, "nocutout": {"augment_policy": "color,translation"},
           "ada": {"ada_target": 0.6, "ada_kimg": 0.01}, "lecam": {"lecam": 0.5}, "topk": {"topk_gamma": 0.5},
           "hinge": {"loss": "hinge"}, "ema_rampup": {"ema_rampup": 0.05}, "bcr": {"bcr": 10.0}}


def _run(tmp_path, name, data, **options):
    from tinygan.train import Config, Run
    return Run(Config(backend="numpy", data=str(data), out=str(tmp_path / name), recipe="sprites", seed=2,
                      image_size=16, features=4, batch_size=4, latent_dim=8, progress=False, **options).resolved())


def _steps(r, n):
    losses = []
    while len(losses) < n:
        for real, z in r.batches():
            losses.append([float(v) for v in r.step(real, z)])
            r.state.batch += 1
            r.state.step += 1
            if len(losses) == n:
                return losses
        r.state.epoch, r.state.batch, r.state.perm = r.state.epoch + 1, 0, None
    return losses


@pytest.mark.parametrize("option", list(OPTIONS))
def test_each_option_as_a_config_field_changes_the_run_and_resumes_bit_for_bit(option, sprites, tmp_path):
    """4 steps straight = 2 steps, a checkpoint, a new Run resuming it, 2 more (ADA's p and sums, LeCam's
    averages, the EMA's ramp and the rng all come back); and the run differs from the plain recipe's."""
    from tinygan.train import Run
    opts = OPTIONS[option]
    plain, straight = _run(tmp_path, "plain", sprites), _run(tmp_path, "straight", sprites, **opts)
    a = _steps(straight, 6)
    if option == "ema_rampup":                                         # the training is the plain one; the average not
        assert a == _steps(plain, 6)
        assert not np.array_equal(plain.ema.model.main[0].weight.data, straight.ema.model.main[0].weight.data)
    else:
        assert a != _steps(plain, 6)
    first = _run(tmp_path, "split", sprites, **opts)
    b = _steps(first, 3)
    (tmp_path / "split").mkdir()
    first.save_checkpoint()
    again = Run(first.cfg, resume=first.checkpoint_path)
    b += _steps(again, 3)
    assert a == b
    for (name, x), (_, y) in zip(straight.G.state_dict().items(), again.G.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    for (name, x), (_, y) in zip(straight.ema.model.state_dict().items(), again.ema.model.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    if option == "ada":
        assert straight.candidates["ada"].state() == again.candidates["ada"].state()


def test_ada_needs_an_augmentation_and_the_loss_a_known_name(sprites, tmp_path):
    from tinygan.train import Config, Run
    with pytest.raises(ValueError, match="needs an augmentation"):
        Run(Config(data=str(sprites), out=str(tmp_path / "a"), recipe="paper", image_size=16, features=4,
                   batch_size=4, progress=False, ada_target=0.6).resolved())
    with pytest.raises(ValueError, match="unknown loss 'wgan'"):
        Run(Config(data=str(sprites), out=str(tmp_path / "b"), image_size=16, features=4, batch_size=4,
                   progress=False, loss="wgan").resolved())


# ----- the command line, and runs kept before these options existed ------------------------------

def test_pokemon_trains_with_every_candidate_flag_and_samples_with_the_averages_own_statistics(sprites, tmp_path,
                                                                                               monkeypatch, capsys):
    import json
    import os
    import sys
    monkeypatch.setenv("TINYGAN_HOME", str(tmp_path / "home"))
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import pokemon
    out = tmp_path / "run"
    assert pokemon.main_train(["--data", str(sprites), "--out", str(out), "--recipe", "sprites", "--steps", "4",
                               "--image-size", "16", "--features", "4", "--latent-dim", "8", "--batch-size", "4",
                               "--no-progress", "--flip", "--augment-policy", "color,translation", "--augment-p", "0.5",
                               "--ada-target", "0.6", "--ada-kimg", "1", "--lecam", "0.1", "--topk-gamma", "0.9",
                               "--loss", "hinge", "--ema-rampup", "0.05", "--bcr", "10"]) in (0, None)
    saved = json.load(open(out / "config.json"))
    assert (saved["flip"], saved["augment_policy"], saved["augment_p"], saved["ada_target"], saved["lecam"],
            saved["topk_gamma"], saved["loss"], saved["ema_rampup"], saved["bcr"]) == \
        (True, "color,translation", 0.5, 0.6, 0.1, 0.9, "hinge", 0.05, 10.0)
    from tinygan import checkpoint
    extra = checkpoint.load(str(out / "checkpoint.npz"))["extra"]
    assert {"ada_state", "lecam_state"} <= set(extra)
    grids = {}
    for bn in ("running", "own"):
        assert pokemon.main_sample(["--checkpoint", str(out / "checkpoint.npz"), "--n", "16", "--bn", bn,
                                    "--out", str(tmp_path / f"{bn}.png")]) == 0
        grids[bn] = np.asarray(__import__("PIL.Image").Image.open(tmp_path / f"{bn}.png"))
    assert "BatchNorm: own statistics" in capsys.readouterr().out
    assert not np.array_equal(grids["running"], grids["own"])


def test_quality_goes_on_from_a_checkpoint_written_before_these_fields(sprites, tmp_path):
    """A run kept by quality.py before issue 26 lacks the new Config fields: they count as their defaults."""
    import json
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import quality
    quality.train(quality.parse_args(["train", "--data", str(sprites), "--out", str(tmp_path), "--steps", "1"]))
    path = tmp_path / "tinygan_sprites_s0" / "checkpoint.npz"
    with np.load(path) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta"]))
    for k in ("flip", "augment_policy", "augment_p", "ada_target", "ada_kimg", "lecam", "topk_gamma", "topk_min",
              "loss", "ema_rampup", "bcr"):
        del meta["config"][k]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    def cfg(**more):                                  # as the Run made it: the batch cut to the 12 sprites
        c = quality.demo_config(str(sprites), "sprites", 0, str(path.parent), {"ema": quality.EMA_DECAY, **more})
        c.batch_size = 12
        return c
    assert quality.resumable(str(path), cfg())["meta"]["step"] == 1
    with pytest.raises(SystemExit, match="lecam 0.0 -> 0.5"):
        quality.resumable(str(path), cfg(lecam=0.5))


# ----- on the GPU path (the strict CuPy stand-in of tests/strict_cupy.py) -------------------------

def test_every_candidate_runs_on_the_cupy_path_and_only_ada_waits_for_the_host():
    """All candidates in one step on the stand-in: nothing CuPy refuses; no sync, except ADA's one read of
    its summed signs at the end of each interval (here every second step)."""
    import strict_cupy

    import tinygan
    with strict_cupy.installed() as cp:
        tinygan.use("cupy", np.float32)
        try:
            G, D = build("sprites", latent_dim=8, features=4, image_size=16, seed=0)
            G.to("cupy"), D.to("cupy")
            opts = (Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999)))
            rng = np.random.default_rng(0)
            real = cp.asarray(rng.uniform(-1, 1, (8, 3, 16, 16)).astype(np.float32))
            z = cp.asarray(rng.standard_normal((8, 8, 1, 1)).astype(np.float32))
            augment = DiffAugment(p=0.5, rng=np.random.default_rng(1))
            kw = dict(flip=RandomFlip(rng=np.random.default_rng(2)), ada=AdaptiveAugment(augment, interval=2),
                      lecam=LeCam(0.1), topk=5, bcr=Consistency(10.0))
            syncs = []
            for _ in range(2):
                with cp.watch() as seen:
                    losses = train_step(G, D, *opts, real, z, HingeLoss(), {}, augment=augment, **kw)
                syncs.append(len(seen.syncs))
            assert syncs[0] == 0 and syncs[1] == 1, syncs
            assert all(np.isfinite(float(v)) for v in losses)
        finally:
            tinygan.use("numpy", np.float32)
