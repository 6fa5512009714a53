"""benchmarks/products.py writes down every product of a training step, no more and no fewer."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import products  # noqa: E402
import train_step as bench  # noqa: E402

TINY = ["--image-size", "16", "--features", "4", "--latent", "8", "--batch-size", "2", "--repeats", "1",
        "--no-torch", "--threads", "1"]


def test_the_products_recorded_are_the_steps_and_compute_what_it_does():
    from tinygan.dcgan import train_step
    args = products.parse_args(TINY)
    G, D, opt_G, opt_D, real, z = bench.tinygan_setup(args, "numpy")
    seen = products.record(lambda: train_step(G, D, opt_G, opt_D, real, z))
    # D: 3 forwards (real, fake, G's step), 2 weight gradients, 2 input gradients without the first
    # layer's and 1 with it; G: 1 forward, 1 weight gradient, input gradients without the first layer's
    convs = lambda model: len([m for m in model.main if "Conv" in type(m).__name__])     # noqa: E731
    d, g = convs(D), convs(G)
    assert len(seen) == 3 * d + 2 * d + 2 * (d - 1) + d + g + g + (g - 1)
    assert sum(p.flops for p in seen) == bench.step_flops(G, D, 2, 16)
    assert {p.where for p in seen} == {"convolve", "convolve_transpose", "weight gradient"}
    # orientation read off the step's own operands: W2ᵀ in the transposed convolution, the weight
    # gradient's second operand a transposed view; the convolution's both C-ordered
    for p in seen:
        expected = {"convolve": (False, False), "convolve_transpose": (True, False),
                    "weight gradient": (False, True)}[p.where]
        if min(p.m, p.k) > 1 and min(p.k, p.n) > 1:          # a vector is both C- and F-ordered
            assert (p.a_t, p.b_t) == expected, (p.where, p.label())
        assert p.out == (p.where == "convolve_transpose")
    rng = np.random.default_rng(0)
    for p in seen:                                               # operands of the recorded shapes and order
        A, B = p.operands(np, rng)
        assert A.shape == (p.m, p.k) and B.shape == (p.k, p.n)
        assert (not A.flags.c_contiguous) == p.a_t and (not B.flags.c_contiguous) == p.b_t


def test_labels_show_the_arrays_as_stored():
    assert products.Product("x", 4096, 512, 1024, a_t=True).label() == "(512×4096)ᵀ · (512×1024)"
    assert products.Product("x", 512, 1024, 4096, b_t=True).label() == "(512×1024) · (4096×1024)ᵀ"


def test_the_table_and_a_missed_product_is_refused(capsys, monkeypatch):
    assert products.main(TINY) == 0
    out = capsys.readouterr().out
    assert "| where | A · B | times per step |" in out and "products alone:" in out and "yardstick:" in out
    monkeypatch.setattr(bench, "step_flops", lambda *a: 1)
    with pytest.raises(SystemExit, match="conv_fast computes a product this script does not wrap"):
        products.main(TINY)
