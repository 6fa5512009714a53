"""SpectralNorm: a layer whose weight is divided by its largest singular value (Miyato et al. 2018).

Notation: O output channels, C input channels, K kernel; W the weight seen as a matrix
(O, C·K·K) — axis ``dim`` first, the other axes flattened in order, as PyTorch does (dim=0
for Conv2d's (O, C, K, K); dim=1 for ConvTranspose2d's (C, O, K, K), so the rows are again
the output channels). σ = σ(W) its largest singular value, u (O,) and v (C·K·K,) the
left and right singular vectors: W v = σ u, Wᵀ u = σ v.

Why. The layer computes with W_sn = W/σ, whose largest singular value is 1, so it stretches
no input direction by more than 1. With every layer of D normalised and 1-Lipschitz
activations between (LeakyReLU; not BatchNorm, which SN-GAN's D does without), D's output
cannot change faster than its input, and the gradient G learns from stays bounded however
well D trains. (For a convolution σ of the reshaped kernel is a proxy for the norm of the
convolution itself, as in the paper.) Only W is learned, and its scale cancels out.

Forward, training mode — n_power_iterations (default 1) steps of the power method, from
the u kept since the last step (W moves little between steps, so u, v stay close to the
singular vectors and one step keeps them there):
    v ← normalize(Wᵀ u),   u ← normalize(W v)         normalize(a) = a / max(‖a‖, eps)
    σ = uᵀ W v,   W_sn = W / σ,   y = layer(x) computed with W_sn
Eval mode: the same σ and W_sn from the stored u, v, which are not changed.

Backward. u and v are constants (PyTorch computes them without gradient), so σ = uᵀ W v
is linear in W, dσ/dW = u vᵀ. With G = dL/dW_sn, the weight gradient the layer itself
computes, the quotient rule gives
    dL/dW = G/σ − (⟨G, W⟩/σ²)·u vᵀ = (G − ⟨G, W_sn⟩·u vᵀ) / σ        ⟨A, B⟩ = Σ A·B
(the bias gradient and dx are the layer's own: σ does not touch them). Where u, v are
the singular vectors, u vᵀ is also the exact derivative of σ(W) itself, so holding them
constant loses nothing there.
"""
import numpy as np

from ..backend import get_array_module
from .conv import ConvTranspose2d
from .module import Module, Parameter, check_cache, check_input


def weight_matrix(w, dim=0):
    """w (…) → the matrix (w.shape[dim], rest): axis ``dim`` first, the others flattened in order."""
    return get_array_module(w).moveaxis(w, dim, 0).reshape(w.shape[dim], -1)


def normalize(a, eps=1e-12):
    """a / max(‖a‖, eps): a unit vector, and no division by zero (PyTorch's F.normalize).

    The maximum is taken on the array module, so on a GPU nothing waits for the norm.
    """
    xp = get_array_module(a)
    return a / xp.maximum(xp.linalg.norm(a), eps)


def power_iteration(W2, u, n=1, eps=1e-12):
    """n steps of v = normalize(W2ᵀ u), u = normalize(W2 v), from u; returns new (u, v).

    W2 (O, C·K·K), u (O,). Each step multiplies the error in u by (σ₂/σ₁)², the ratio of
    the two largest singular values, squared: u, v converge to the top singular vectors
    and uᵀ W2 v to σ₁ (``np.linalg.svd`` is the slow twin the tests compare with).
    """
    for _ in range(n):
        v = normalize(W2.T @ u, eps)
        u = normalize(W2 @ v, eps)
    return u, v


def spectral_norm_weight_grad(G, W_sn, u, v, sigma, dim=0):
    """dL/dW = (G − ⟨G, W_sn⟩·u vᵀ) / σ in the weight's shape; G = dL/dW_sn, u (O,), v (C·K·K,)."""
    xp = get_array_module(G)
    moved = (W_sn.shape[dim],) + tuple(d for i, d in enumerate(W_sn.shape) if i != dim)
    uv = xp.moveaxis(xp.outer(u, v).reshape(moved), 0, dim)          # u vᵀ back in the weight's shape
    return (G - (G * W_sn).sum() * uv) / sigma


class SpectralNorm(Module):
    """``SpectralNorm(Conv2d(c_in, c_out, 4, 2, 1, bias=False))``: the layer, computing with W/σ(W).

    Same input and output as the wrapped layer (Conv2d or ConvTranspose2d: any layer with
    a ≥ 2-D ``weight`` Parameter whose backward adds into ``weight.grad``).

    State, under the names ``torch.nn.utils.spectral_norm`` gives the layer it changes in
    place (so ``main.0.weight_orig`` … as in PyTorch):
        weight_orig  W, the learned Parameter: the layer's own weight Parameter, moved here
        bias         the layer's bias Parameter (the same object), if it has one
        weight_u     u (O,), buffer, random unit vector at first
        weight_v     v (C·K·K,), buffer
    The wrapped layer is this module's implementation, not a child: ``named_children``
    yields nothing, so parameters(), state_dict(), to() and Adam see exactly the four
    above. The layer's ``weight`` is now W_sn, set by every forward: computed, not
    learned, and listed nowhere. Cache: ``self.u``, ``self.v``, ``self.sigma`` of the last
    forward (u, v copied, so a later forward cannot change what this backward uses).
    """

    _buffers = ("weight_u", "weight_v")

    def __init__(self, layer, n_power_iterations=1, eps=1e-12, dim=None):
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, Parameter) or weight.data.ndim < 2:
            raise ValueError(f"SpectralNorm: expected a layer with a weight Parameter of 2 or more dimensions "
                             f"(Conv2d, ConvTranspose2d), got {type(layer).__name__} with weight "
                             f"{None if weight is None else getattr(weight, 'shape', type(weight).__name__)}")
        if int(n_power_iterations) != n_power_iterations or n_power_iterations < 1:
            raise ValueError(f"SpectralNorm: n_power_iterations must be an integer >= 1, got {n_power_iterations} "
                             "(eval() runs none)")
        dim = (1 if isinstance(layer, ConvTranspose2d) else 0) if dim is None else dim
        if not 0 <= dim < weight.data.ndim:
            raise ValueError(f"SpectralNorm: dim must be in [0, {weight.data.ndim}) for a weight of shape "
                             f"{tuple(weight.shape)}, got {dim}")
        self.layer = layer
        self.n_power_iterations, self.eps, self.dim = int(n_power_iterations), eps, dim
        self.weight_orig = weight
        self.bias = getattr(layer, "bias", None)
        layer.weight = Parameter(weight.data.copy())          # W_sn's place; every forward overwrites it
        xp, dtype = get_array_module(weight.data), weight.data.dtype
        rows, cols = weight_matrix(weight.data, dim).shape
        self.weight_u = normalize(xp.asarray(np.random.standard_normal(rows).astype(dtype)), eps)
        self.weight_v = normalize(xp.asarray(np.random.standard_normal(cols).astype(dtype)), eps)

    def named_children(self):
        return iter(())                                       # the layer is not a child: see the class docstring

    @property
    def workspace(self):
        """The wrapped layer's scratch memory, so that ``Module.share_workspace`` reaches it."""
        return self.layer.workspace

    @workspace.setter
    def workspace(self, workspace):
        self.layer.workspace = workspace

    def extra_repr(self):
        return f"{self.layer!r}, n_power_iterations={self.n_power_iterations}, dim={self.dim}"

    def forward(self, x):
        if hasattr(self.layer, "in_channels"):
            check_input(self, x, self.layer.in_channels)
        W = self.weight_orig.data
        W2 = weight_matrix(W, self.dim)
        if self.training:
            u, v = power_iteration(W2, self.weight_u, self.n_power_iterations, self.eps)
        else:
            u, v = self.weight_u.copy(), self.weight_v.copy()
        sigma = u @ (W2 @ v)                                   # σ = uᵀ W v, a 0-d array (no device sync)
        self.layer.weight.data = W / sigma                     # W_sn, a new array
        self.layer.training = self.training
        y = self.layer(x)
        if self.training:                                      # only once the layer has accepted x
            self.weight_u[...] = u
            self.weight_v[...] = v
        self.u, self.v, self.sigma = u, v, sigma
        self.out_shape = self.layer.out_shape
        return y

    def backward(self, dout):
        check_cache(self, dout, self.out_shape)
        layer, W = self.layer, self.weight_orig
        layer.weight.requires_grad = W.requires_grad
        if W.requires_grad:
            layer.weight.grad = get_array_module(dout).zeros_like(layer.weight.data)   # G, which the layer adds into
        layer.needs_input_grad = self.needs_input_grad
        dx = layer.backward(dout)
        if W.requires_grad:
            W.grad += spectral_norm_weight_grad(layer.weight.grad, layer.weight.data,
                                                self.u, self.v, self.sigma, self.dim)
        return dx
