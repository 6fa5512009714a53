"""PyTorch as the oracle of the exercises: the same computation from the same numbers, by autograd.

Imported only when ``check`` reaches its PyTorch stage; without torch that stage is skipped.
"""
import numpy as np


def torch_or_none():
    """The torch module, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def tensor(torch, a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def layer_forward(torch, layer, x, params):
    """What ``layer`` (a tinygan layer, its settings read off it) computes, in torch, on tensors."""
    F = torch.nn.functional
    names = [c.__name__ for c in type(layer).__mro__]
    if "ConvTranspose2d" in names:
        return F.conv_transpose2d(x, params["weight"], params.get("bias"), stride=layer.stride,
                                  padding=layer.padding, output_padding=layer.output_padding)
    if "Conv2d" in names:
        return F.conv2d(x, params["weight"], params.get("bias"), stride=layer.stride, padding=layer.padding)
    if "BatchNorm2d" in names:
        mean, var = (tensor(torch, b) for b in (layer.running_mean, layer.running_var))
        return F.batch_norm(x, mean, var, params["weight"], params["bias"], training=layer.training,
                            momentum=layer.momentum, eps=layer.eps)
    if "LeakyReLU" in names:
        return F.leaky_relu(x, layer.negative_slope)
    if "Tanh" in names:
        return torch.tanh(x)
    raise TypeError(f"no PyTorch twin for {type(layer).__name__}")


def layer_grads(torch, layer, state, x, R):
    """(y, dx, {name: grad}) of Σ layer(x)·R by torch autograd, the parameters taken from ``state``."""
    xt = tensor(torch, x, grad=True)
    params = {name: tensor(torch, state[name], grad=True) for name, _ in layer.named_parameters()}
    y = layer_forward(torch, layer, xt, params)
    (y * tensor(torch, R)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy(), {n: p.grad.numpy() for n, p in params.items()}


def sequential(torch, main):
    """A torch.nn.Sequential twin of a tinygan Sequential of DCGAN layers, with its weights."""
    nn = torch.nn
    layers = []
    for m in main:
        names = [c.__name__ for c in type(m).__mro__]
        if "ConvTranspose2d" in names:
            t = nn.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                   bias=m.bias is not None)
        elif "Conv2d" in names:
            t = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=m.bias is not None)
        elif "BatchNorm2d" in names:
            t = nn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
        elif "LeakyReLU" in names:
            t = nn.LeakyReLU(m.negative_slope)
        elif "Tanh" in names:
            t = nn.Tanh()
        else:
            t = nn.ReLU()
        layers.append(t)
    seq = nn.Sequential(*layers).double()
    seq.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in main.state_dict().items()})
    return seq
