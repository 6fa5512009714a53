"""The PyTorch twin of tinygan's DCGAN, for side-by-side timing (and nothing else).

Same layers in the same order as ``tinygan.dcgan`` (bias-free convolutions, BatchNorm,
no BatchNorm on D's first layer), wrapped in ``main`` so that the parameter names match
(``main.0.weight`` …) and ``from_tinygan`` can copy tinygan's state_dict across as is.
The activations work in place by default, as in PyTorch's DCGAN example (about 2% faster
here); ``inplace=False`` gives layers that can be timed one at a time.

``torch_train_step`` is tinygan's ``train_step`` written in PyTorch, line for line: the
D step backpropagates each half (real, fake) on its own with the ½ factor, the fake batch
is detached for D, and D's parameters are frozen (``requires_grad_(False)``) while G is
updated, exactly as tinygan does. (PyTorch's DCGAN example leaves D's gradients on in the
G step and throws them away; switching them off is the fair, identical-work comparison.)
"""
import numpy as np
import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, latent_dim=100, features=64, image_size=64, channels=3, inplace=True):
        super().__init__()
        n = int(np.log2(image_size // 4))                 # 3 stride-2 blocks for 64×64
        width = features * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width),
                  nn.ReLU(inplace)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(inplace)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, features=64, image_size=64, channels=3, inplace=True):
        super().__init__()
        n = int(np.log2(image_size // 4))
        layers = [nn.Conv2d(channels, features, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace)]
        width = features
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, inplace)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).reshape(-1)


def from_tinygan(module_tg, module_torch, device="cpu"):
    """Copy every parameter and buffer of a tinygan module into its PyTorch twin (names match)."""
    from tinygan import to_numpy
    state = {k: torch.from_numpy(np.array(to_numpy(v))) for k, v in module_tg.state_dict().items()}
    module_torch.load_state_dict(state, strict=True)
    return module_torch.to(device)


def make_optimizers(G, D, lr=2e-4, beta1=0.5):
    """The paper's Adam(2e-4, β1 0.5) for each network, as tinygan's 'paper' recipe."""
    return (torch.optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999)),
            torch.optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999)))


def torch_train_step(G, D, opt_G, opt_D, real, z, loss_fn=None):
    """tinygan.dcgan.train_step in PyTorch; returns (loss_D, loss_G) as 0-d tensors."""
    loss_fn = loss_fn or nn.BCEWithLogitsLoss()
    N = real.shape[0]
    ones = torch.ones(N, device=real.device)
    zeros = torch.zeros(N, device=real.device)

    opt_D.zero_grad(set_to_none=False)
    loss_real = loss_fn(D(real), ones)
    (0.5 * loss_real).backward()
    fake = G(z)
    loss_fake = loss_fn(D(fake.detach()), zeros)
    (0.5 * loss_fake).backward()
    opt_D.step()
    loss_D = (loss_real.detach() + loss_fake.detach()) / 2

    opt_G.zero_grad(set_to_none=False)
    D.requires_grad_(False)
    try:
        loss_G = loss_fn(D(fake), ones)
        loss_G.backward()
    finally:
        D.requires_grad_(True)
    opt_G.step()
    return loss_D, loss_G.detach()
