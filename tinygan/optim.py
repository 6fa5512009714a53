"""Optimizers: Adam and SGD (with momentum), as PyTorch defines them.

Each takes a list of ``Parameter``s and updates ``p.data`` in place from ``p.grad``.
State (moments, step count) is kept per parameter, in the parameter's array module,
and can be saved and restored with ``state_dict`` / ``load_state_dict``.

``Adam.step`` is the paper's four-line update, tensor by tensor, and runs in reference mode
(``tinygan.reference``; ``TINYGAN_REFERENCE=1``). By default it is instead one call into
``optim_fast.py``: the whole model's numbers in one flat buffer, one pass per line of the
update (or one compiled pass), the idea of PyTorch's ``foreach``/``fused`` Adam.
"""
from . import optim_fast, reference
from .backend import get_array_module, to_numpy
from .nn.workspace import Workspace


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = lr

    def flat_in_use(self):
        """Whether the parameters live in one flat buffer (``flatten``); only Adam does that."""
        return False

    def zero_grad(self):
        if self.flat_in_use():
            self.flat[1].fill(0)                                       # every gradient at once
            return
        for p in self.params:
            p.grad[...] = 0

    def state_dict(self):
        """Host (NumPy) copies of every state array plus the scalar settings."""
        state = {"lr": self.lr, **{k: getattr(self, k) for k in self._scalars}}
        for name in self._slots:
            for i, a in enumerate(getattr(self, name)):
                state[f"{name}.{i}"] = to_numpy(a).copy()
        return state

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s output; checks every key and shape before changing anything."""
        name = type(self).__name__
        expected = [f"{slot}.{i}" for slot in self._slots for i in range(len(self.params))]
        missing = [k for k in ["lr", *self._scalars, *expected] if k not in state]
        unexpected = [k for k in state if "." in k and k not in expected]
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                raise ValueError(f"{name}.load_state_dict: {what} keys {keys[:5]}"
                                 f"{' …' if len(keys) > 5 else ''}; the state is from another model")
        for slot in self._slots:
            for i, a in enumerate(getattr(self, slot)):
                src = state[f"{slot}.{i}"]
                if tuple(src.shape) != tuple(a.shape):
                    raise ValueError(f"{name}.load_state_dict: {slot}.{i} has shape "
                                     f"{tuple(src.shape)}, parameter has {tuple(a.shape)}")
        for slot in self._slots:
            for i, a in enumerate(getattr(self, slot)):
                a[...] = get_array_module(a).asarray(state[f"{slot}.{i}"], dtype=a.dtype)
        self.lr = float(state["lr"])
        for k in self._scalars:
            setattr(self, k, type(getattr(self, k))(state[k]))


class SGD(Optimizer):
    """p ← p − lr·b,  b ← momentum·b + g (b = g on the first step; PyTorch's form)."""

    _slots = ("momentum_buffer",)
    _scalars = ("momentum", "step_count")

    def __init__(self, params, lr=0.01, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.step_count = 0
        self.momentum_buffer = [get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def step(self):
        for p, buf in zip(self.params, self.momentum_buffer):
            if self.momentum:
                if self.step_count == 0:
                    buf[...] = p.grad
                else:
                    buf *= self.momentum
                    buf += p.grad
                p.data -= self.lr * buf
            else:
                p.data -= self.lr * p.grad
        self.step_count += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``:

        m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1ᵗ)              v̂ = v / (1 − β2ᵗ)
        p ← p − lr · m̂ / (√v̂ + eps)
    """

    _slots = ("exp_avg", "exp_avg_sq")
    _scalars = ("beta1", "beta2", "eps", "step_count")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = eps
        self.step_count = 0
        self.workspace = Workspace()                   # the speed path's temporaries, reused
        self.flat = optim_fast.flatten(self.params)    # (data, grad) of the whole model in one buffer each, or None
        if self.flat is None:
            self.exp_avg = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
            self.exp_avg_sq = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        else:
            xp = get_array_module(self.flat[0])
            self.flat_moments = xp.zeros_like(self.flat[0]), xp.zeros_like(self.flat[0])
            self.exp_avg, self.exp_avg_sq = (optim_fast.views(m, self.params) for m in self.flat_moments)
        self._bound = [(p.data, p.grad) for p in self.params]

    def flat_in_use(self):
        """True while every parameter's .data and .grad are still the views ``flatten`` made
        (an assignment such as ``p.data = ...`` afterwards falls back to the per-tensor loop)."""
        return self.flat is not None and all(p.data is d and p.grad is g
                                             for p, (d, g) in zip(self.params, self._bound))

    def step(self):
        self.step_count += 1
        if not reference.on():
            return optim_fast.adam_step(self)                            # the speed path: one call
        t, b1, b2, xp = self.step_count, self.beta1, self.beta2, get_array_module(self.params[0].data)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad
            m[...] = b1 * m + (1 - b1) * g                               # m ← β1·m + (1 − β1)·g
            v[...] = b2 * v + (1 - b2) * g * g                           # v ← β2·v + (1 − β2)·g²
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)          # bias corrections
            p.data -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)      # p ← p − lr·m̂/(√v̂ + eps)
