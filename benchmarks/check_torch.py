"""tinygan's train_step against its PyTorch twin in float64: the same numbers, step after step.

    .venv/bin/python benchmarks/check_torch.py

For 16×16, 32×32 and 64×64 DCGANs (small widths), both frameworks start from the same
weights and take three training steps on the same data. The losses must agree to 1e-9
relative, every parameter and buffer afterwards to 1e-7 and every gradient to 1e-6 (they
agree to about 1e-14). This is the check behind the benchmark's claim that both run the
same network; in float32 the benchmark's losses differ in the fifth digit from rounding.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinygan  # noqa: E402
import torch_dcgan  # noqa: E402
from tinygan.dcgan import build, train_step  # noqa: E402
from tinygan.optim import Adam  # noqa: E402


def main():
    torch.set_default_dtype(torch.float64)
    tinygan.use("numpy", np.float64)
    for size, features, N in [(16, 4, 5), (32, 8, 3), (64, 8, 2)]:
        G, D = build("paper", latent_dim=6, features=features, image_size=size, seed=1)
        Gt = torch_dcgan.from_tinygan(G, torch_dcgan.Generator(6, features, size).double())
        Dt = torch_dcgan.from_tinygan(D, torch_dcgan.Discriminator(features, size).double())
        opt_G, opt_D = Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999))
        opt_Gt, opt_Dt = torch_dcgan.make_optimizers(Gt, Dt)
        rng = np.random.default_rng(0)
        for _ in range(3):
            real = rng.uniform(-1, 1, (N, 3, size, size))
            z = rng.standard_normal((N, 6, 1, 1))
            ours = train_step(G, D, opt_G, opt_D, real, z)
            theirs = torch_dcgan.torch_train_step(Gt, Dt, opt_Gt, opt_Dt, torch.from_numpy(real), torch.from_numpy(z))
            for a, b, what in zip(ours, theirs, ("loss_D", "loss_G")):
                assert abs(float(a) - b.item()) <= 1e-9 * max(1.0, abs(b.item())), (size, what, float(a), b.item())
        worst = 0.0
        for mod, mod_t in ((G, Gt), (D, Dt)):
            sd = mod_t.state_dict()
            for k, v in mod.state_dict().items():
                a, b = np.asarray(v, dtype=np.float64), sd[k].numpy().astype(np.float64)
                err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
                assert err < 1e-7, (size, k, err)
                worst = max(worst, err)
            for (name, p), (_, p_t) in zip(mod.named_parameters(), mod_t.named_parameters()):
                if p_t.grad is not None:
                    g_t = p_t.grad.numpy()
                    err = np.abs(p.grad - g_t).max() / max(np.abs(g_t).max(), 1e-12)
                    assert err < 1e-6, (size, name, err)
        print(f"{size}x{size}: 3 steps, losses equal, parameters and buffers within {worst:.1e} relative")
    print("tinygan and PyTorch agree")


if __name__ == "__main__":
    main()
