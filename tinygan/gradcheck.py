"""Gradient checking: compare a hand-written backward with central finite differences.

For a module f and a fixed random upstream gradient R (same shape as f(x)), the scalar

    L(x, θ) = Σ f(x; θ) · R

has dL/dx = f.backward(R) and dL/dθ = what backward adds into θ.grad. Each element is
checked against the central difference

    dL/du ≈ (L(u + ε) − L(u − ε)) / 2ε          (error O(ε²); run in float64)

A random R matters: with R = 1 everywhere a transposed index can cancel out, and
BatchNorm's input gradient is exactly zero.

``check_module`` checks every input and parameter element (small shapes only);
``check_directional`` checks one random direction through everything at the cost of
two forward passes (whole networks). Both return a ``GradReport`` and, by default,
raise ``GradcheckError`` with the worst element when a tensor is off.
"""
from dataclasses import dataclass, field

import numpy as np

from .backend import get_array_module, to_numpy


class GradcheckError(AssertionError):
    """A gradient disagrees with its finite-difference estimate."""


@dataclass
class TensorReport:
    name: str
    shape: tuple
    max_abs_err: float
    max_rel_err: float        # max over elements of |a − n| / max(|a|, |n|, atol)
    worst_index: tuple
    analytic: float
    numeric: float
    ok: bool

    def line(self):
        mark = "ok  " if self.ok else "FAIL"
        return (f"{mark} {self.name:<24} {str(self.shape):<18} max abs err {self.max_abs_err:.2e}  "
                f"max rel err {self.max_rel_err:.2e}  worst {self.worst_index}: "
                f"analytic {self.analytic:+.6e} numeric {self.numeric:+.6e}")


@dataclass
class GradReport:
    tensors: list = field(default_factory=list)

    @property
    def ok(self):
        return all(t.ok for t in self.tensors)

    def __str__(self):
        return "\n".join(t.line() for t in self.tensors)

    def raise_if_failed(self, what):
        if not self.ok:
            bad = [t for t in self.tensors if not t.ok]
            raise GradcheckError(f"gradient check failed for {what}: "
                                 + "; ".join(f"{t.name} worst element {t.worst_index}: analytic "
                                             f"{t.analytic:+.6e} vs numeric {t.numeric:+.6e} "
                                             f"(rel err {t.max_rel_err:.2e})" for t in bad)
                                 + "\n" + str(self))


def compare(name, analytic, numeric, rtol=1e-5, atol=1e-8):
    """Element-wise comparison: ok where |a − n| ≤ atol + rtol·|n| for every element."""
    a, n = to_numpy(analytic).astype(np.float64), to_numpy(numeric).astype(np.float64)
    if a.shape != n.shape:
        raise ValueError(f"{name}: analytic gradient shape {a.shape} != numeric {n.shape}")
    diff = np.abs(a - n)
    excess = diff - (atol + rtol * np.abs(n))           # > 0 where the element fails
    worst = np.unravel_index(int(np.argmax(excess)), a.shape) if a.size else ()
    rel = diff / np.maximum(np.maximum(np.abs(a), np.abs(n)), atol)
    return TensorReport(name, a.shape, float(diff.max(initial=0.0)), float(rel.max(initial=0.0)),
                        tuple(int(i) for i in worst), float(a[worst]) if a.size else 0.0,
                        float(n[worst]) if a.size else 0.0, bool((excess <= 0).all()))


def numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar function f() with respect to every element of x (perturbed in place)."""
    xp = get_array_module(x)
    grad = np.zeros(x.shape, dtype=np.float64)
    if not x.flags.c_contiguous:
        raise ValueError(f"numerical_gradient needs a C-contiguous array, got shape {x.shape} strides {x.strides}")
    flat = x.reshape(-1)                                 # a view: writing it perturbs x
    for i in range(x.size):
        old = flat[i].item()
        flat[i] = old + eps
        f_plus = float(f())
        flat[i] = old - eps
        f_minus = float(f())
        flat[i] = old
        grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
    return xp.asarray(grad) if xp is not np else grad


def _upstream(shape, seed, xp, dtype):
    return xp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def check_module(module, x, eps=1e-6, rtol=1e-5, atol=1e-8, seed=0, raise_on_fail=True, check_params=True):
    """Check dL/dx and dL/dθ of ``module`` at ``x`` element by element (use float64 and small shapes).

    ``module`` must be in float64 (``module.double()``) and ``x`` a contiguous float64 array.
    """
    if x.dtype != np.float64:
        raise ValueError(f"check_module: input dtype is {x.dtype}; finite differences need float64 "
                         "(x.astype(np.float64) and module.double())")
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x.copy())
    y = module(x)
    R = _upstream(y.shape, seed, xp, y.dtype)

    def loss():
        return float((module(x) * R).sum())

    module.zero_grad()
    module(x)
    dx = module.backward(R)
    params = list(module.named_parameters()) if check_params else []
    analytic = [("input", dx.copy())] + [(n, p.grad.copy()) for n, p in params if p.requires_grad]

    numeric = [("input", numerical_gradient(loss, x, eps))]
    numeric += [(n, numerical_gradient(loss, p.data, eps)) for n, p in params if p.requires_grad]
    report = GradReport([compare(n, a, num, rtol, atol) for (n, a), (_, num) in zip(analytic, numeric)])
    if raise_on_fail:
        report.raise_if_failed(type(module).__name__)
    return report


def check_directional(f, tensors, grads, eps=1e-6, rtol=1e-5, atol=1e-8, seed=0, raise_on_fail=True):
    """Chainer-style check along one random direction d through all ``tensors`` at once.

    f() -> scalar loss; ``tensors`` the arrays it depends on (perturbed in place);
    ``grads`` their analytic gradients. Compares Σ grad·d with (f(t + εd) − f(t − εd)) / 2ε.
    """
    rng = np.random.default_rng(seed)
    dirs = [get_array_module(t).asarray(rng.standard_normal(t.shape).astype(t.dtype)) for t in tensors]
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, dirs))
    for t, d in zip(tensors, dirs):
        t += eps * d
    f_plus = float(f())
    for t, d in zip(tensors, dirs):
        t -= 2 * eps * d
    f_minus = float(f())
    for t, d in zip(tensors, dirs):
        t += eps * d
    numeric = (f_plus - f_minus) / (2 * eps)
    report = GradReport([compare("direction", np.array([analytic]), np.array([numeric]), rtol, atol)])
    if raise_on_fail:
        report.raise_if_failed("the directional derivative")
    return report
