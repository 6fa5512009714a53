"""DiffAugment: each map, its backward (finite differences, float64) and PyTorch's autograd of the same map.

The PyTorch side writes each augmentation the way the DiffAugment paper's code does —
translation as a gather from a zero-padded image with clamped indices, cutout as a mask
filled through clamped index grids — so these tests also check that tinygan's shift and
mask (different constructions) compute the same maps.
"""
import numpy as np
import pytest

import tinygan
from tinygan import to_numpy
from tinygan.dcgan import augmentation, build, train_step
from tinygan.gradcheck import check_module
from tinygan.nn import DiffAugment
from tinygan.nn.augment import (Brightness, Contrast, Cutout, Saturation, Translate, cutout_mask, shift,
                                shift_gather, translate_reference)
from tinygan.optim import Adam


def _image(xp, seed=0, shape=(4, 3, 8, 8)):
    return xp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape))


def _ops(xp, N=4, H=8, seed=1):
    rng = np.random.default_rng(seed)
    a = lambda v: xp.asarray(v)                                   # noqa: E731
    mask = cutout_mask(a(np.array([0, 3, 8, 5])), a(np.array([7, 0, 4, 2])), 4, H, H, xp).astype(np.float64)
    return [Brightness(a(rng.random(N) - 0.5)), Saturation(a(rng.random(N) * 2)),
            Contrast(a(rng.random(N) + 0.5)),
            Translate(a(np.array([1, -2, 0, 2])), a(np.array([-1, 0, 2, -2])), 2), Cutout(mask)]


@pytest.mark.parametrize("which", range(5), ids=["brightness", "saturation", "contrast", "translation", "cutout"])
def test_each_map_passes_finite_differences(xp, which):
    op = _ops(xp)[which]
    report = check_module(op, _image(xp))
    assert [t.name for t in report.tensors] == ["input"] and report.ok, str(report)


def test_the_whole_chain_passes_finite_differences(xp):
    aug = DiffAugment(rng=np.random.default_rng(3))
    x = _image(xp)
    aug(x)                                       # draw once; replay the same numbers in every forward
    aug.replay = True
    report = check_module(aug, x)
    assert report.ok, str(report)
    assert [type(op).__name__ for op in aug.ops] == ["Brightness", "Saturation", "Contrast", "Translate", "Cutout"]


@pytest.mark.parametrize("how", [shift, shift_gather])
def test_shift_equals_the_loop_and_its_transpose_is_the_inverse_shift(xp, how):
    x, y = _image(xp, 0, (5, 3, 7, 7)), _image(xp, 1, (5, 3, 7, 7))
    t, u = np.array([3, -3, 0, 1, -2]), np.array([0, 2, -3, 3, -1])
    out = how(x, xp.asarray(t), xp.asarray(u), 3)
    np.testing.assert_array_equal(to_numpy(out), translate_reference(to_numpy(x), t, u))
    back = how(y, xp.asarray(-t), xp.asarray(-u), 3)
    # <shift(x), y> = <x, shift⁻¹(y)>: the inverse shift (zero fill) is the transpose
    assert float((out * y).sum()) == pytest.approx(float((x * back).sum()), rel=1e-12)


def test_cutout_mask_is_one_clipped_square_per_image(xp):
    m = to_numpy(cutout_mask(xp.asarray(np.array([0, 4, 8])), xp.asarray(np.array([4, 8, 0])), 4, 8, 8, xp))
    assert m.shape == (3, 1, 8, 8)
    assert [(m[n] == 0).sum() for n in range(3)] == [2 * 4, 4 * 2, 2 * 2]   # clipped at the edges
    assert (m[0, 0, :2, 2:6] == 0).all() and m[0, 0, 2:].all()


def test_draws_cover_the_documented_ranges():
    aug = DiffAugment(rng=np.random.default_rng(0))
    ops = aug.draw((2000, 3, 32, 32), np, np.float32)
    b, s, k, tr, cut = (op for op in ops)
    assert -0.5 <= b.b.min() and b.b.max() < 0.5 and 0 <= s.s.min() and s.s.max() < 2
    assert 0.5 <= k.k.min() and k.k.max() < 1.5
    assert set(np.unique(tr.t)) == set(range(-4, 5)) and tr.pad == 4            # round(32/8) = 4
    assert set(np.unique((cut.mask == 0).sum(axis=(1, 2, 3)))) >= {256}            # 16×16 when inside
    assert cut.mask.dtype == np.float32 and b.b.dtype == np.float32


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="DiffAugment: unknown policy zoom"):
        DiffAugment("color,zoom")
    with pytest.raises(ValueError, match=r"DiffAugment: expected images of shape \(N, C, H, W\), got \(3, 8, 8\)"):
        DiffAugment()(np.zeros((3, 8, 8)))


def test_empty_policy_gives_the_papers_step_bit_for_bit():
    """augment=DiffAugment('') (no maps) and augment=None take the same step."""
    results = []
    for augment in (None, DiffAugment("")):
        G, D = build("paper", 8, 4, 16, seed=0)
        oG, oD = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)), Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
        z = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
        losses = [float(v) for v in train_step(G, D, oG, oD, x, z, augment=augment)]
        results.append((losses, to_numpy(G.main[0].weight.data).copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_recipe_sprites_augments_and_the_others_do_not():
    assert augmentation("paper", None) is None and augmentation("d2l", None) is None
    aug = augmentation("sprites", np.random.default_rng(0))
    assert aug.policy == ["color", "translation", "cutout"]


# ----- PyTorch's autograd of the same maps ---------------------------------------------------

torch = pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed: pip install -e '.[crosscheck]'")


def _torch_map(op, x):
    """The same map as ``op`` in PyTorch, written as DiffAugment's own code writes it."""
    T = lambda a: torch.as_tensor(to_numpy(a))                    # noqa: E731
    if isinstance(op, Brightness):
        return x + T(op.b).view(-1, 1, 1, 1)
    if isinstance(op, Saturation):
        m = x.mean(dim=1, keepdim=True)
        return (x - m) * T(op.s).view(-1, 1, 1, 1) + m
    if isinstance(op, Contrast):
        m = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - m) * T(op.k).view(-1, 1, 1, 1) + m
    if isinstance(op, Translate):
        N, C, H, W = x.shape
        gb, gi, gj = torch.meshgrid(torch.arange(N), torch.arange(H), torch.arange(W), indexing="ij")
        gi = torch.clamp(gi + T(op.t).view(-1, 1, 1) + 1, 0, H + 1)
        gj = torch.clamp(gj + T(op.u).view(-1, 1, 1) + 1, 0, W + 1)
        padded = torch.nn.functional.pad(x, [1, 1, 1, 1])
        return padded.permute(0, 2, 3, 1)[gb, gi, gj].permute(0, 3, 1, 2)
    return x * T(op.mask)


def _torch_cutout_mask(cy, cx, size, H, W):
    N = len(cy)
    gb, gi, gj = torch.meshgrid(torch.arange(N), torch.arange(size), torch.arange(size), indexing="ij")
    gi = torch.clamp(gi + torch.as_tensor(cy).view(-1, 1, 1) - size // 2, 0, H - 1)
    gj = torch.clamp(gj + torch.as_tensor(cx).view(-1, 1, 1) - size // 2, 0, W - 1)
    mask = torch.ones(N, H, W, dtype=torch.float64)
    mask[gb, gi, gj] = 0
    return mask.unsqueeze(1)


def test_cutout_mask_equals_diffaugments_clamped_grid():
    rng = np.random.default_rng(5)
    for size, H in ((16, 32), (3, 9), (4, 8)):
        cy, cx = rng.integers(0, H + 1 - size % 2, 50), rng.integers(0, H + 1 - size % 2, 50)
        ours = cutout_mask(cy, cx, size, H, H, np)
        np.testing.assert_array_equal(ours, _torch_cutout_mask(cy, cx, size, H, H).numpy())


def test_forward_and_backward_equal_torch_autograd(xp):
    """The whole drawn chain at 32 px (shift 4, cutout 16), translation beyond the 1-pixel pad included."""
    aug = DiffAugment(rng=np.random.default_rng(11))
    x = _image(xp, 2, (6, 3, 32, 32))
    y = aug(x)
    xt = torch.tensor(to_numpy(x), requires_grad=True)
    yt = xt
    for op in aug.ops:
        yt = _torch_map(op, yt)
    np.testing.assert_allclose(to_numpy(y), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    R = np.random.default_rng(4).standard_normal(y.shape)
    yt.backward(torch.tensor(R))
    dx = aug.backward(tinygan.backend.asarray(R, like=x))
    np.testing.assert_allclose(to_numpy(dx), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
