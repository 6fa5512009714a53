"""The checks of BCEWithLogitsLoss (forward and backward, stable) and of Adam's update.

BCE: the loss and dL/dlogits against the library's reference for both reductions, hard and
soft targets and an upstream gradient of ½ (what D's step passes); then logits of ±800,
where log σ(x) overflows unless the loss is written stably. Finite differences check the
backward against the learner's own forward; PyTorch's ``binary_cross_entropy_with_logits``
is the oracle.

Adam: the parameters and both moments after each of four steps, with fresh random
gradients, against the library's reference and ``torch.optim.Adam``; each known mistake
is the same step taken the wrong way from the same state. An update rule has no gradient,
so there are no finite differences.
"""
import numpy as np

from .. import gradcheck, nn, reference
from ..nn import Parameter
from ..optim import Adam
from . import oracle
from .verdict import Fail, Skipped, call, diagnose, expect

UNSTABLE = ("an unstable log at large logits: log σ(x) and log(1 − σ(x)) overflow to inf/NaN at x = ±800; "
            "write the loss as max(x, 0) − x·y + log1p(exp(−|x|)), which never exponentiates a positive number")


def _bce_cases():
    rng = np.random.default_rng(3)
    x8, x43 = rng.standard_normal(8) * 2, rng.standard_normal((4, 3)) * 2
    hard, soft = (rng.random(8) > 0.5).astype(np.float64), rng.uniform(0, 1, 8)
    return [("mean, targets 0/1, dout 1", x8, hard, "mean", 1.0),
            ("mean, soft targets, dout ½", x8, soft, "mean", 0.5),
            ("sum, targets 0/1, dout 1", x8, hard, "sum", 1.0),
            ("mean, logits (4, 3), dout 2", x43, (rng.random((4, 3)) > 0.5).astype(np.float64), "mean", 2.0)]


LARGE = ("mean, logits ±800, dout 1", np.array([-800.0, -40.0, 0.0, 40.0, 800.0, -800.0, 800.0, 3.0]),
         np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]), "mean", 1.0)


def _bce_pair(impl, reduction, path):
    return nn.BCEWithLogitsLoss(reduction), call("bce_with_logits: constructing your loss", path, impl, reduction)


def _bce_run(loss, x, y, dout, what, path=None):
    with reference.mode(), np.errstate(all="ignore"):
        value = call(f"{what}.forward", path, loss, x.copy(), y.copy())
        grad = call(f"{what}.backward", path, loss.backward, dout)
    return value, grad


def _ignores(right, dout):
    return [("no-dout", right / dout if dout != 1 else None,
             f"backward ignores dout: multiply by the upstream gradient (here {dout}; D's step passes ½)")]


def bce_against_reference(impl, path):
    for i, (label, x, y, reduction, dout) in enumerate(_bce_cases() + [LARGE]):
        ref, mine = _bce_pair(impl, reduction, path)
        value_ref, grad_ref = _bce_run(ref, x, y, dout, "reference")
        value, grad = _bce_run(mine, x, y, dout, "bce_with_logits", path)
        ignores = _ignores(grad_ref, dout)
        try:
            expect("bce_with_logits", "loss", value, value_ref, label, batch=x.size)
            expect("bce_with_logits", "gradient dL/dlogits", grad, grad_ref, label, ignores, batch=x.size)
        except Fail as fail:
            if label == LARGE[0]:             # the moderate cases passed: the formula is right, its numerics not
                raise Fail(fail.headline, UNSTABLE, "unstable-log") from None
            raise
    return f"{len(_bce_cases())} cases and logits of ±800: loss and gradient"


def bce_finite_differences(impl, path):
    worst = 0.0
    for label, x, y, reduction, dout in _bce_cases():
        ref, mine = _bce_pair(impl, reduction, path)
        u = np.ascontiguousarray(x.copy())
        numeric = gradcheck.numerical_gradient(lambda: dout * float(_bce_run(mine, u, y, dout, "bce_with_logits",
                                                                            path)[0]), u)
        _, grad = _bce_run(mine, x, y, dout, "bce_with_logits", path)
        t = gradcheck.compare("dL/dlogits", grad, numeric)
        if not t.ok:
            right = _bce_run(ref, x, y, dout, "reference")[1]
            key, why = diagnose(np.asarray(grad), right, _ignores(right, dout), batch=x.size)
            raise Fail(f"FAIL bce_with_logits: gradient dL/dlogits ({label}) against finite differences: worst "
                       f"element {t.worst_index}: yours {t.analytic:+.6e}, finite differences {t.numeric:+.6e}",
                       why, key)
        worst = max(worst, t.max_rel_err)
    return f"{len(_bce_cases())} cases, every logit; largest relative error {worst:.1e}"


def bce_torch(impl, path):
    torch = oracle.torch_or_none()
    if torch is None:
        return Skipped("PyTorch is not installed")
    src = f"PyTorch {torch.__version__}"
    for label, x, y, reduction, dout in _bce_cases() + [LARGE]:
        _, mine = _bce_pair(impl, reduction, path)
        value, grad = _bce_run(mine, x, y, dout, "bce_with_logits", path)
        xt = oracle.tensor(torch, x, grad=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt, oracle.tensor(torch, y), reduction=reduction)
        loss.backward(oracle.tensor(torch, dout))
        expect("bce_with_logits", "loss", value, loss.detach().numpy(), label, source=src)
        expect("bce_with_logits", "gradient dL/dlogits", grad, xt.grad.numpy(), label, source=src)
    return f"torch {torch.__version__}, {len(_bce_cases()) + 1} cases"


BCE_STAGES = [("against the library's reference", bce_against_reference),
              ("finite differences", bce_finite_differences), ("PyTorch", bce_torch)]


# ----- Adam ---------------------------------------------------------------------------------

SETTINGS = [dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), dict(lr=0.1, betas=(0.5, 0.99), eps=1e-3)]
SHAPES, STEPS = [(3, 4), (5,)], 4


def _params(seed):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s)) for s in SHAPES]


def _grads(seed, t):
    rng = np.random.default_rng(1000 * seed + t)
    return [rng.standard_normal(s) * 10.0 ** rng.integers(-2, 2) for s in SHAPES]


def _adam_mistakes(p0, m0, v0, g, t, lr, betas, eps):
    """Adam's classic mistakes: this step taken the wrong way from the same state."""
    b1, b2 = betas
    m, v = b1 * m0 + (1 - b1) * g, b2 * v0 + (1 - b2) * g * g
    mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
    fresh_m, fresh_v = (1 - b1) * g / (1 - b1 ** t), (1 - b2) * g * g / (1 - b2 ** t)
    return [("bias-correction", p0 - lr * m / (np.sqrt(v) + eps), "the bias corrections are missing: "
             "m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ); m and v start at zero, so the first steps come out too small"),
            ("bias-correction", p0 - lr * (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps),
             "the bias corrections use t + 1: step_count is already t when the update runs"),
            ("eps", p0 - lr * mh / np.sqrt(vh + eps), "eps belongs outside the square root: lr·m̂/(√v̂ + eps)"),
            ("state", p0 - lr * fresh_m / (np.sqrt(fresh_v) + eps), "the moments were not kept between steps: "
             "write into the arrays (m[...] = β1·m + (1 − β1)·g); m = … only rebinds the name"),
            ("sign", p0 + lr * mh / (np.sqrt(vh) + eps), "the step goes uphill: p ← p − lr·m̂/(√v̂ + eps)")]


def adam_against_reference(impl, path):
    for si, setting in enumerate(SETTINGS):
        P_ref, P_mine = _params(si), _params(si)
        ref = Adam(P_ref, **setting)
        mine = call("adam: Adam(params, lr, betas, eps)", path, impl, P_mine, **setting)
        case = f"lr {setting['lr']}, betas {setting['betas']}, eps {setting['eps']}"
        for t in range(1, STEPS + 1):
            for P in (P_ref, P_mine):
                for p, g in zip(P, _grads(si, t)):
                    p.grad[...] = g
            before = [(p.data.copy(), m.copy(), v.copy()) for p, m, v in zip(P_ref, ref.exp_avg, ref.exp_avg_sq)]
            with reference.mode(), np.errstate(all="ignore"):
                ref.step()
                call("adam.step", path, mine.step)
            for i, ((p0, m0, v0), g) in enumerate(zip(before, _grads(si, t))):
                where = f"{case}, step {t}"
                expect("adam", f"parameter {i} after the step", P_mine[i].data, P_ref[i].data, where,
                       _adam_mistakes(p0, m0, v0, g, t, **setting))
                kept = [("state", m0, "the moment m was not kept: write into the array, m[...] = β1·m + (1 − β1)·g "
                         "(m = … only rebinds the name)")]
                expect("adam", f"exp_avg {i} (m)", mine.exp_avg[i], ref.exp_avg[i], where, kept)
                kept = [("state", v0, "the moment v was not kept: write into the array, v[...] = β2·v + (1 − β2)·g² "
                         "(v = … only rebinds the name)")]
                expect("adam", f"exp_avg_sq {i} (v)", mine.exp_avg_sq[i], ref.exp_avg_sq[i], where, kept)
    return f"{len(SETTINGS)} settings × {STEPS} steps: parameters, m and v"


def adam_finite_differences(impl, path):
    return Skipped("not applicable: an update rule has no gradient to difference")


def adam_torch(impl, path):
    torch = oracle.torch_or_none()
    if torch is None:
        return Skipped("PyTorch is not installed")
    for si, setting in enumerate(SETTINGS):
        P_mine = _params(si)
        P_t = [oracle.tensor(torch, p.data, grad=True) for p in _params(si)]
        mine = call("adam: Adam(params, lr, betas, eps)", path, impl, P_mine, **setting)
        opt = torch.optim.Adam(P_t, **setting)
        for t in range(1, STEPS + 1):
            for p, pt, g in zip(P_mine, P_t, _grads(si, t)):
                p.grad[...] = g
                pt.grad = oracle.tensor(torch, g)
            with reference.mode(), np.errstate(all="ignore"):
                call("adam.step", path, mine.step)
            opt.step()
            for i, (p, pt) in enumerate(zip(P_mine, P_t)):
                expect("adam", f"parameter {i} after the step", p.data, pt.detach().numpy(),
                       f"lr {setting['lr']}, betas {setting['betas']}, step {t}", source=f"PyTorch {torch.__version__}")
    return f"torch.optim.Adam {torch.__version__}, {len(SETTINGS)} settings × {STEPS} steps"


ADAM_STAGES = [("against the library's reference", adam_against_reference),
               ("finite differences", adam_finite_differences), ("PyTorch", adam_torch)]
