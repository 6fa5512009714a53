"""The feature metric: its losses against finite differences, KID and precision/recall on
constructed features, and a small deterministic training run."""
import numpy as np
import pytest

from tinygan import featuremetric as fm
from tinygan import nn
from tinygan.gradcheck import check_module


class WithTarget(nn.Module):
    """loss(x, target) as a one-input module, so that ``check_module`` can perturb x."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x):
        return self.loss(x, self.target)

    def backward(self, dout):
        return self.loss.backward(dout)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_backward_matches_finite_differences(reduction):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4)) * 2.0
    target = np.array([0, 3, 1, 1, 2, 0])
    report = check_module(WithTarget(nn.CrossEntropyLoss(reduction), target), logits)
    assert report.ok, str(report)


def test_cross_entropy_value_is_minus_log_softmax_and_stable():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    explicit = [-np.log(np.exp(x[i, y[i]]) / np.exp(x[i]).sum()) for i in range(2)]   # the plain formula
    assert nn.CrossEntropyLoss()(x, y) == pytest.approx(np.mean(explicit), rel=1e-12)
    assert nn.CrossEntropyLoss("sum")(x, y) == pytest.approx(np.sum(explicit), rel=1e-12)
    loss = nn.CrossEntropyLoss()
    big = np.array([[1e4, -1e4, 0.0]], np.float32)
    assert np.isfinite(loss(big, np.array([1]))) and loss(big, np.array([0])) == 0.0
    assert np.isfinite(loss.backward()).all()
    with pytest.raises(ValueError, match="integer classes"):
        loss(x, np.array([0, 3]))


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    t = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(t, torch.tensor(y))
    ref.backward()
    loss = nn.CrossEntropyLoss()
    assert float(loss(x, y)) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_ntxent_backward_matches_finite_differences():
    h = np.random.default_rng(2).standard_normal((6, 5))         # B = 3 pairs of 5-number projections
    report = check_module(nn.NTXentLoss(temperature=0.5), h)
    assert report.ok, str(report)


def test_ntxent_is_low_when_partners_agree():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 8))
    paired = np.concatenate([z, z + 0.01 * rng.standard_normal(z.shape)])
    shuffled = np.concatenate([z, rng.standard_normal(z.shape)])
    assert 5 * nn.NTXentLoss(0.2)(paired) < nn.NTXentLoss(0.2)(shuffled)
    z = paired / np.linalg.norm(paired, axis=1, keepdims=True)      # the plain formula, row by row
    explicit = [-np.log(np.exp(z[i] @ z[(i + 4) % 8] / 0.2)
                        / sum(np.exp(z[i] @ z[j] / 0.2) for j in range(8) if j != i)) for i in range(8)]
    assert nn.NTXentLoss(0.2)(paired) == pytest.approx(np.mean(explicit), rel=1e-10)


def test_global_avg_pool_backward_matches_finite_differences():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    pool = nn.GlobalAvgPool2d()
    np.testing.assert_allclose(pool(x)[:, :, 0, 0], x.mean(axis=(2, 3)))
    assert check_module(pool, x).ok


def test_kid_is_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((300, 8)), rng.standard_normal((300, 8))
    shifted = rng.standard_normal((300, 8)) + 0.5
    same, same_std = fm.kid(a, b, subsets=20, subset_size=100)
    diff, diff_std = fm.kid(a, shifted, subsets=20, subset_size=100)
    assert abs(same) < 3 * same_std / np.sqrt(20) + 0.02
    assert diff > 10 * max(abs(same), same_std) and diff - 3 * diff_std > 0
    assert fm.kid(a, shifted, subsets=5, subset_size=50, seed=1) == fm.kid(a, shifted, subsets=5, subset_size=50,
                                                                           seed=1)


def test_mmd2_unbiased_is_the_explicit_double_sum():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)) + 1.0
    k = lambda x, y: (x @ y / 3 + 1.0) ** 3                      # noqa: E731
    m, n = len(a), len(b)
    explicit = (sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
                + sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
                - 2 * sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n))
    assert fm.mmd2_unbiased(a, b) == pytest.approx(explicit, rel=1e-12)


def test_knn_radii_leave_the_point_itself_out():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(fm.knn_radii(points, k=1), [1, 1, 2, 4])
    np.testing.assert_allclose(fm.knn_radii(points, k=2), [3, 2, 3, 6])


def test_precision_recall_on_constructed_sets():
    real = np.arange(10.0)[:, None]                                # k = 1: every real ball has radius 1
    assert fm.precision_recall(real, real.copy(), k=1) == (1.0, 1.0)
    far = real + 100.0
    assert fm.precision_recall(real, far, k=1) == (0.0, 0.0)
    # samples packed into one end of the real set: all look real, little of the real set is covered
    packed = np.array([[0.0], [0.1], [0.2], [0.3]])                # their own k = 1 balls: radius 0.1
    p, r = fm.precision_recall(real, packed, k=1)
    assert p == 1.0 and r == pytest.approx(0.1)                    # only real point 0 lies in a sample ball
    half = np.array([[0.5], [50.0], [2.0], [60.0]])
    assert fm.precision_recall(real, half, k=1)[0] == 0.5


def sprites(n, seed=0):
    """n little 32×32 figures: a dark-outlined coloured ellipse with a foot on white, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    out = np.ones((n, 3, 32, 32), np.float32)
    for i in range(n):
        cy, cx, ry, rx = rng.uniform(12, 18), rng.uniform(12, 20), rng.uniform(6, 10), rng.uniform(5, 9)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        out[i][:, d < 1.3] = -1.0
        out[i][:, d < 1.0] = rng.uniform(-0.8, 0.8, 3)[:, None]
        out[i][:, int(cy + ry):int(cy + ry) + 3, int(cx) - 1:int(cx) + 2] = -1.0     # a foot: up is up
    return out


@pytest.mark.parametrize("task", ["contrastive", "rotation"])
def test_training_is_deterministic_and_gives_features(task):
    x = sprites(32)
    kw = dict(task=task, epochs=1, width=8, batch_size=16)
    log = []
    net = fm.train_feature_net(x, seed=0, log=lambda *a: log.append(a), **kw)
    again = fm.train_feature_net(x, seed=0, **kw)
    other = fm.train_feature_net(x, seed=1, **kw)
    for (name, a), b, c in zip(net.state_dict().items(), again.state_dict().values(), other.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert any(not np.array_equal(a, c) for a, c in zip(net.state_dict().values(), other.state_dict().values()))
    assert len(log) == 1 and np.isfinite(log[0][1]) and 0 <= log[0][2] <= 1
    f = fm.features(net, x)
    assert f.shape == (32, 16) and f.dtype == np.float64
    np.testing.assert_allclose(f.mean(axis=0), 0, atol=1e-6)      # standardised on the training images
    # no batch dependence (BatchNorm on running statistics: batch statistics would move every feature
    # by O(1)); float32 products of another batch size may round differently, by ~1e-6 on this scale
    np.testing.assert_allclose(fm.features(net, x[:5]), f[:5], rtol=1e-4, atol=1e-5)
    assert fm.features(net, x, block=None).shape == (32, 8 * 7)


def test_rotations_are_labelled_by_quarter_turns():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 4))
    turned, labels = fm.rotations(x)
    assert turned.shape == (8, 3, 4, 4) and list(labels) == [0, 1, 2, 3, 0, 1, 2, 3]
    np.testing.assert_array_equal(turned[5], np.rot90(x[1], 1, axes=(1, 2)))
    np.testing.assert_array_equal(turned[0], x[0])


def test_cached_net_is_reloaded_with_the_same_features(tmp_path, monkeypatch):
    x = sprites(64)
    trained = []
    train = fm.train_feature_net
    monkeypatch.setattr(fm, "train_feature_net", lambda *a, **k: trained.append(k) or train(*a, **k))
    first = fm.cached_feature_net(x, seed=0, epochs=1, folder=tmp_path)
    second = fm.cached_feature_net(x, seed=0, epochs=1, folder=tmp_path)
    assert len(trained) == 1 and len(list(tmp_path.iterdir())) == 1
    np.testing.assert_array_equal(fm.features(first, x), fm.features(second, x))
    fm.cached_feature_net(x, seed=1, epochs=1, folder=tmp_path)           # another seed: another net
    assert len(trained) == 2 and len(list(tmp_path.iterdir())) == 2
