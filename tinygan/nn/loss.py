"""Losses on raw logits, stable for any logit: BCEWithLogitsLoss (binary), CrossEntropyLoss (softmax)
and NTXentLoss (SimCLR's contrastive loss, a CrossEntropyLoss over similarities); for GAN experiments
HingeLoss (with GeneratorHingeLoss, G's side of it), LeCam, a regulariser of D's outputs, and
Consistency (bCR), which asks D to score two augmentations of one image alike.

BCEWithLogitsLoss: for a logit x and a target y ∈ [0, 1] (p = σ(x)):
    ℓ = −[y·log p + (1 − y)·log(1 − p)] = max(x, 0) − x·y + log(1 + e^−|x|)
The right-hand form never exponentiates a positive number, so x = ±1e4 gives a finite
loss and no NaN. Its derivative is dℓ/dx = σ(x) − y.

Reduction 'mean' (PyTorch's default, the DCGAN paper's) divides by the number of
elements n; 'sum' (d2l's chapter) does not. Cache: ``self.x``, ``self.y``.
"""
import numpy as np

from ..backend import get_array_module
from .activation import sigmoid
from .module import Module


class BCEWithLogitsLoss(Module):
    """loss = reduce(max(x,0) − x·y + log1p(e^−|x|));  backward: dx = (σ(x) − y)/n · dloss."""

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"BCEWithLogitsLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def forward(self, logits, target):
        xp = get_array_module(logits, target)
        if logits.shape != target.shape:
            raise ValueError(f"BCEWithLogitsLoss: logits of shape {tuple(logits.shape)} and target of "
                             f"shape {tuple(target.shape)} must have the same shape")
        self.x, self.y = logits, target
        per_element = xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))
        total = per_element.sum()
        return total / logits.size if self.reduction == "mean" else total

    def backward(self, dout=1.0):
        """dL/dlogits for an upstream dL/dloss ``dout`` (1 when the loss is the objective)."""
        if getattr(self, "x", None) is None:
            raise RuntimeError("BCEWithLogitsLoss.backward called before forward: compute the loss first")
        if getattr(dout, "shape", ()) not in ((), (1,)):
            raise ValueError(f"BCEWithLogitsLoss.backward: expected a scalar dout (the loss is a scalar), "
                             f"got shape {tuple(dout.shape)}")
        dout = dout.item() if hasattr(dout, "item") else float(dout)     # a host scalar, from any backend
        scale = dout / self.x.size if self.reduction == "mean" else dout
        # in the logits' dtype even when the target is wider (a float64 ``ones(N)``), as
        # PyTorch does: a float64 gradient would turn the whole float32 backward into float64
        return ((sigmoid(self.x) - self.y) * self.x.dtype.type(scale)).astype(self.x.dtype, copy=False)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on raw logits, as ``torch.nn.CrossEntropyLoss`` with class indices.

    logits (N, K), target (N,) integer classes in 0..K−1. With log-softmax computed stably,

        log p_ik = x_ik − m_i − log Σ_j e^(x_ij − m_i),   m_i = max_j x_ij
        ℓ_i = −log p_i,target_i

    the largest exponent is e^0, so no logit overflows. Reduction 'mean' divides Σ ℓ_i by N,
    'sum' does not. Backward: dℓ_i/dx_ik = p_ik − [k = target_i], so
        dlogits = (softmax(x) − onehot(target)) / N · dloss          (N for 'mean', 1 for 'sum')
    Cache: ``self.p`` (the softmax), ``self.y`` (the targets).
    """

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def forward(self, logits, target):
        xp = get_array_module(logits)
        if logits.ndim != 2 or tuple(target.shape) != (logits.shape[0],):
            raise ValueError(f"CrossEntropyLoss: expected logits (N, K) and target (N,), got "
                             f"{tuple(logits.shape)} and {tuple(target.shape)}")
        target = xp.asarray(target)
        if target.dtype.kind not in "iu" or target.size and (int(target.min()) < 0
                                                             or int(target.max()) >= logits.shape[1]):
            raise ValueError(f"CrossEntropyLoss: target must hold integer classes in 0..{logits.shape[1] - 1}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.p, self.y = xp.exp(log_p), target
        total = -log_p[xp.arange(len(target)), target].sum()
        return total / len(target) if self.reduction == "mean" else total

    def backward(self, dout=1.0):
        """dL/dlogits (N, K) for an upstream dL/dloss ``dout`` (1 when the loss is the objective)."""
        if getattr(self, "p", None) is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward: compute the loss first")
        if getattr(dout, "shape", ()) not in ((), (1,)):
            raise ValueError(f"CrossEntropyLoss.backward: expected a scalar dout (the loss is a scalar), "
                             f"got shape {tuple(dout.shape)}")
        dout = dout.item() if hasattr(dout, "item") else float(dout)
        scale = dout / len(self.y) if self.reduction == "mean" else dout
        grad = self.p.copy()                                            # a new array; the cache stays
        grad[get_array_module(grad).arange(len(self.y)), self.y] -= 1.0
        return grad * grad.dtype.type(scale)


class NTXentLoss(Module):
    """SimCLR's contrastive loss (Chen et al. 2020), "normalised temperature-scaled cross-entropy".

    h (2B, P): projections of 2B views, rows i and i + B being two views of one image.
    Each row, normalised, must pick its partner out of the other 2B − 1 rows:

        z_i = h_i / ‖h_i‖,   S_ij = z_i·z_j / τ  (S_ii left out),   t_i = i + B mod 2B
        loss = CrossEntropyLoss(S, t)          (mean over the 2B rows)

    Backward, from dS = CrossEntropyLoss's logit gradient (dS_ii = 0, the diagonal being out):
        dz = (dS + dSᵀ) · z / τ                      S is symmetric in z: both factors
        dh = (dz − z·(z·dz)) / ‖h‖                   normalisation: drop the radial part
    Cache: ``self.z``, ``self.norm``, and the cross-entropy's own.
    """

    MASKED = -1e9              # S_ii: e^(−1e9 − max) is 0 in float32 and float64

    def __init__(self, temperature=0.2):
        if not temperature > 0:
            raise ValueError(f"NTXentLoss: temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.cross_entropy = CrossEntropyLoss()

    def forward(self, h):
        xp = get_array_module(h)
        if h.ndim != 2 or len(h) < 2 or len(h) % 2:
            raise ValueError(f"NTXentLoss: expected projections (2B, P) of B pairs, got shape {tuple(h.shape)}")
        B = len(h) // 2
        self.norm = xp.sqrt((h * h).sum(axis=1, keepdims=True))
        self.z = h / self.norm
        S = self.z @ self.z.T / h.dtype.type(self.temperature)
        S[xp.arange(2 * B), xp.arange(2 * B)] = self.MASKED
        target = xp.concatenate([xp.arange(B, 2 * B), xp.arange(B)])
        self.similarities = S
        return self.cross_entropy(S, target)

    def backward(self, dout=1.0):
        """dL/dh (2B, P) for an upstream dL/dloss ``dout``."""
        if getattr(self, "z", None) is None:
            raise RuntimeError("NTXentLoss.backward called before forward: compute the loss first")
        dS = self.cross_entropy.backward(dout)
        z, tau = self.z, self.z.dtype.type(self.temperature)
        dz = (dS + dS.T) @ z / tau
        return (dz - z * (z * dz).sum(axis=1, keepdims=True)) / self.norm


class HingeLoss(Module):
    """The hinge loss of D (SN-GAN, Miyato et al. 2018; Lim & Ye 2017): real logits pushed above +1,
    fake ones below −1, nothing asked beyond.

    target y ∈ {0, 1} per logit, s = 2y − 1 (+1 real, −1 fake):
        ℓ = reduce(max(0, 1 − s·x))
        dℓ/dx = −s·[1 − s·x > 0] / n · dloss        (n for 'mean'; 1 for 'sum')
    G's side is ``GeneratorHingeLoss`` (−x, not a hinge): ``self.generator``. Cache: ``self.x``, ``self.s``.
    """

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"HingeLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self.generator = GeneratorHingeLoss(reduction)

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def forward(self, logits, target):
        xp = get_array_module(logits, target)
        if logits.shape != target.shape:
            raise ValueError(f"HingeLoss: logits of shape {tuple(logits.shape)} and target of "
                             f"shape {tuple(target.shape)} must have the same shape")
        self.x, self.s = logits, 2 * target - 1
        total = xp.maximum(1 - self.s * logits, 0).sum()
        return total / logits.size if self.reduction == "mean" else total

    def backward(self, dout=1.0):
        """dL/dlogits for an upstream dL/dloss ``dout`` (a host scalar)."""
        if getattr(self, "x", None) is None:
            raise RuntimeError("HingeLoss.backward called before forward: compute the loss first")
        dout = dout.item() if hasattr(dout, "item") else float(dout)
        scale = dout / self.x.size if self.reduction == "mean" else dout
        active = (1 - self.s * self.x > 0).astype(self.x.dtype)
        return (-self.s * active * self.x.dtype.type(scale)).astype(self.x.dtype, copy=False)


class GeneratorHingeLoss(Module):
    """G's loss with a hinge-loss D: ℓ = −reduce(x) (make D's score of a fake high, without limit);
    dℓ/dx = −1/n · dloss. Takes no target. Cache: ``self.x``."""

    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def __call__(self, logits):
        return self.forward(logits)

    def forward(self, logits):
        self.x = logits
        total = -logits.sum()
        return total / logits.size if self.reduction == "mean" else total

    def backward(self, dout=1.0):
        if getattr(self, "x", None) is None:
            raise RuntimeError("GeneratorHingeLoss.backward called before forward: compute the loss first")
        dout = dout.item() if hasattr(dout, "item") else float(dout)
        scale = dout / self.x.size if self.reduction == "mean" else dout
        return get_array_module(self.x).full(self.x.shape, -scale, dtype=self.x.dtype)


class LeCam(Module):
    """LeCam regularisation of D (Tseng et al. 2021), as their code has it (with a ReLU):

        R = mean(max(0, D(x) − α_F)²) + mean(max(0, α_R − D(G(z)))²),   added to D's loss as λ·R

    α_R, α_F: moving averages (decay 0.99, zero-debiased) of the mean logit D gave real and fake
    images in PAST steps (constants here: no gradient flows into them). It keeps D's real scores
    from running far above what fakes used to get and the reverse, which bounds how far D can
    pull the two apart on a small set.

    D's two halves run one after the other (D keeps one forward cache), so each term is its own
    call, with its gradient (per logit; N logits in the half):
        real(x):  λ·mean(relu(x − α_F)²),   d/dx_i = 2λ·relu(x_i − α_F)/N
        fake(y):  λ·mean(relu(α_R − y)²),   d/dy_i = −2λ·relu(α_R − y_i)/N
    ``update(logits_real, logits_fake)`` after D's step moves the averages on; until the first
    update there is no history and both terms are 0. The averages stay on the device (no sync).
    """

    def __init__(self, weight, decay=0.99):
        if not weight >= 0 or not 0 <= decay < 1:
            raise ValueError(f"LeCam: weight must be >= 0 and decay in [0, 1), got {weight}, {decay}")
        self.weight, self.decay = weight, decay
        self.ema_real = self.ema_fake = 0.0          # undebiased sums; 0-d arrays once updated
        self.updates = 0

    def averages(self):
        """(α_R, α_F), zero-debiased: the sums divided by 1 − decay^updates."""
        debias = 1.0 - self.decay ** self.updates
        return self.ema_real / debias, self.ema_fake / debias

    def real(self, logits):
        """λ·mean(relu(x − α_F)²) and its gradient (N,) w.r.t. the real logits x."""
        return self._term(logits, +1)

    def fake(self, logits):
        """λ·mean(relu(α_R − y)²) and its gradient (N,) w.r.t. the fake logits y."""
        return self._term(logits, -1)

    def _term(self, logits, sign):
        xp = get_array_module(logits)
        if not self.updates:
            return xp.zeros((), logits.dtype), xp.zeros_like(logits)
        alpha_real, alpha_fake = self.averages()
        gap = xp.maximum(sign * (logits - (alpha_fake if sign > 0 else alpha_real)), 0).astype(logits.dtype)
        n, w = logits.size, logits.dtype.type(self.weight)
        return w * (gap * gap).sum() / n, (sign * 2 * w / n) * gap

    def update(self, logits_real, logits_fake):
        """α_R, α_F moved on by this step's mean logits."""
        d = self.decay
        self.ema_real = d * self.ema_real + (1 - d) * logits_real.astype(np.float64).mean()
        self.ema_fake = d * self.ema_fake + (1 - d) * logits_fake.astype(np.float64).mean()
        self.updates += 1

    def state(self):
        """What a checkpoint keeps: [ema_real, ema_fake, updates] as host floats."""
        return [float(self.ema_real), float(self.ema_fake), float(self.updates)]

    def load_state(self, values):
        self.ema_real, self.ema_fake, self.updates = float(values[0]), float(values[1]), int(values[2])


class Consistency(Module):
    """Balanced consistency regularisation of D (bCR, Zhao et al. 2020): D should score an image the
    same however it is augmented, real images and fakes alike ("balanced": both halves).

        C = λ·mean((D(T₁u) − D(T₂u))²),   added to D's loss once for the reals and once for the fakes

    T₁u is the augmented image D's loss already sees, T₂u a second, independent draw of the same
    augmentation. The paper adds λ·C to D's loss ℓ_real + ℓ_fake with λ_real = λ_fake = 10; tinygan's
    D loss is the mean of the two, ½(ℓ_real + ℓ_fake), so the paper's weighting is λ = 5 here.
    With a = D(T₁u), b = D(T₂u), N logits:
        dC/da_i = 2λ·(a_i − b_i)/N,   dC/db_i = −dC/da_i
    Both branches carry a gradient into D's weights, so D runs T₂u forward and back as well:
    ``__call__(a, b)`` returns C and dC/da; the caller sends −dC/da back through D(T₂u).
    No state: nothing to keep in a checkpoint. Where the augmentation does nothing (DiffAugment
    with p = 0, as ADA starts) T₁u = T₂u and C is 0: the term acts only as far as D's inputs vary.
    """

    def __init__(self, weight):
        if not weight >= 0:
            raise ValueError(f"Consistency: weight must be >= 0, got {weight}")
        self.weight = weight

    def __call__(self, a, b):
        return self.forward(a, b)

    def forward(self, a, b):
        if a.shape != b.shape:
            raise ValueError(f"Consistency: logits of shapes {tuple(a.shape)} and {tuple(b.shape)} must match")
        gap = a - b
        w = a.dtype.type(self.weight)
        return w * (gap * gap).sum() / a.size, (2 * w / a.size) * gap
