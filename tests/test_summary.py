"""tinygan.summary: per-layer output shapes and parameter counts of the DCGAN, and the totals."""
import numpy as np

import tinygan
from tinygan.dcgan import build
from tinygan.nn import Conv2d, Sequential


def test_paper_dcgan_64_counts_and_shapes():
    G, D = build("paper", latent_dim=100, features=64, image_size=64)
    lines = []
    sg = tinygan.summary(G, (100, 1, 1), print_fn=lines.append)
    sd = tinygan.summary(D, (3, 64, 64), print_fn=None)
    # totals: the sum of every parameter's size, and by hand from the architecture
    assert sg.total_params == sum(p.data.size for p in G.parameters())
    assert sd.total_params == sum(p.data.size for p in D.parameters())
    convs_g = 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16
    bns_g = 2 * (512 + 256 + 128 + 64)
    assert sg.total_params == convs_g + bns_g == 3_576_704
    convs_d = 3 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 1 * 16
    assert sd.total_params == convs_d + 2 * (128 + 256 + 512) == 2_765_568
    assert sg.trainable_params == sg.total_params and sg.non_trainable_params == 0
    assert sum(r.params for r in sg.rows) == sg.total_params
    assert sg.buffers == 2 * (512 + 256 + 128 + 64) + 4          # running mean/var + 4 batch counters
    # every leaf in order, with its output shape
    assert [(r.name, r.kind, r.out_shape) for r in sg.rows[:4]] == [
        ("main.0", "ConvTranspose2d", (512, 4, 4)), ("main.1", "BatchNorm2d", (512, 4, 4)),
        ("main.2", "ReLU", (512, 4, 4)), ("main.3", "ConvTranspose2d", (256, 8, 8))]
    assert [r.out_shape for r in sg.rows if r.kind == "ConvTranspose2d"] == [
        (512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32), (3, 64, 64)]
    assert [r.out_shape for r in sd.rows if r.kind == "Conv2d"] == [
        (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1, 1, 1)]
    assert sg.output_shape == (3, 64, 64) and sd.output_shape == ()
    assert [r.params for r in sd.rows][:3] == [3 * 64 * 16, 0, 64 * 128 * 16]
    # the printed table
    text = lines[0]
    assert "Total params: 3,576,704" in text and "main.0 (ConvTranspose2d)" in text and "(N, 512, 4, 4)" in text


def test_summary_leaves_the_model_alone():
    G, _ = build("paper", latent_dim=8, features=4, image_size=16)
    before = {k: v.copy() for k, v in G.state_dict().items()}
    G.train()
    tinygan.summary(G, (8, 1, 1), print_fn=None)
    assert G.training and all(m.training for m in G.modules())
    after = G.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)      # running stats untouched
    G.eval()
    tinygan.summary(G, (8, 1, 1), print_fn=None)
    assert not any(m.training for m in G.modules())


def test_frozen_parameters_count_as_non_trainable():
    net = Sequential(Conv2d(3, 4, 3, bias=True), Conv2d(4, 2, 1, bias=False))
    net[0].requires_grad_(False)
    s = tinygan.summary(net, (3, 5, 5), print_fn=None)
    assert s.total_params == 3 * 4 * 9 + 4 + 4 * 2
    assert s.non_trainable_params == 3 * 4 * 9 + 4
    assert [r.out_shape for r in s.rows] == [(4, 3, 3), (2, 3, 3)]
