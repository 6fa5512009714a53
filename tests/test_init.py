"""tinygan.init: the DCGAN paper's N(0, 0.02) initialisation and d2l's variant."""
import numpy as np

import tinygan
from tinygan import nn, to_numpy
from tinygan.init import dcgan_init, normal_init


def _model():
    return nn.Sequential(nn.ConvTranspose2d(64, 128, 4, 1, 0), nn.BatchNorm2d(128), nn.ReLU(),
                         nn.Conv2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64))


def test_dcgan_init_statistics(xp):
    m = dcgan_init(_model(), rng=0)
    for conv in (m[0], m[3]):
        w = to_numpy(conv.weight.data)
        assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3       # 131k draws each
        assert np.all(to_numpy(conv.bias.data) == 0)
    for bn in (m[1], m[4]):
        g = to_numpy(bn.weight.data)
        assert abs(g.mean() - 1) < 0.01 and 0.01 < g.std() < 0.03
        assert np.all(to_numpy(bn.bias.data) == 0)
    assert all(p.data.dtype == np.float64 for p in m.parameters())      # the xp fixture's dtype


def test_dcgan_init_is_reproducible_and_backend_independent(xp):
    a, b = dcgan_init(_model(), rng=7), dcgan_init(_model(), rng=np.random.default_rng(7))
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(to_numpy(pa.data), to_numpy(pb.data))
    tinygan.use("numpy", np.float64)
    host = dcgan_init(_model(), rng=7)                     # drawn on the host: same numbers on numpy
    for pa, ph in zip(a.parameters(), host.parameters()):
        np.testing.assert_array_equal(to_numpy(pa.data), ph.data)
    c = dcgan_init(_model(), rng=8)
    assert not np.array_equal(to_numpy(a[0].weight.data), to_numpy(c[0].weight.data))


def test_normal_init_draws_every_parameter():
    m = normal_init(_model(), rng=1, std=0.05)
    for name, p in m.named_parameters():
        assert abs(p.data.std() - 0.05) < 0.02 and abs(p.data.mean()) < 0.02, name
        assert p.data.dtype == np.float32
    assert abs(m[1].bias.data).max() > 0                    # β drawn too, unlike dcgan_init
