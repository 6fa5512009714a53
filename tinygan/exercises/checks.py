"""The checks of the layer exercises: im2col, col2im, the convolutions, BatchNorm2d, the activations.

Every check runs in float64 and in reference mode (the library's plain textbook code is the
reference), in three stages, each a function that returns a one-line summary or raises
``Fail``:

  reference            the output, the input gradient and every parameter gradient against
                       the library's own reference code from the same weights and inputs, with
                       .grad filled with random numbers first (backward must ADD into it) and
                       dout compared afterwards (backward must not write into it)
  finite differences   the learner's backward against central differences of the learner's
                       forward, (L(u + ε) − L(u − ε))/2ε, for a random upstream gradient
                       (``tinygan.gradcheck``); the diagnosis compares with the reference
  PyTorch              output and gradients against torch autograd (skipped without torch)
"""
from dataclasses import dataclass, field

import numpy as np

from .. import gradcheck, nn, reference
from ..nn.im2col import col2im, conv_out_size, im2col
from . import oracle
from .verdict import Fail, Skipped, call, diagnose, expect

OVERWRITTEN = ("the gradient was overwritten instead of added into .grad: write p.grad += …, "
               "not p.grad = … (D runs backward twice, real batch then fake, before one optimizer step)")


@dataclass
class Case:
    """One setting of a layer: constructor arguments, the input's shape, train or eval mode."""
    label: str
    args: tuple
    x_shape: tuple
    kwargs: dict = field(default_factory=dict)
    training: bool = True


def _randomise(layer, seed):
    """Random parameters (γ not all ones, β not zero) and running statistics, so that no term hides."""
    rng = np.random.default_rng(seed)
    for _, p in layer.named_parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * (0.5 if p.data.ndim == 1 else 1.0)
    if hasattr(layer, "running_var"):
        layer.running_mean[...] = rng.standard_normal(layer.running_mean.shape) * 0.3
        layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)


def make_layer(cls, case, seed, state=None):
    """A float64 layer of ``cls`` for ``case``: random weights from ``seed``, or ``state``'s."""
    layer = cls(*case.args, **case.kwargs).double()
    layer.train(case.training)
    if state is None:
        _randomise(layer, seed)
    else:
        layer.load_state_dict(state)
    return layer


def run_layer(layer, x, R, G0, what, path=None):
    """forward(x), then backward(R) with each .grad pre-filled with G0: (y, dx, [added grads], dout after)."""
    with reference.mode():
        y = call(f"{what}.forward", path, layer, x.copy())
        for p, g in zip(layer.parameters(), G0):
            p.grad[...] = g
        dout = R.copy()
        dx = call(f"{what}.backward", path, layer.backward, dout)
    return y, dx, [p.grad - g for p, g in zip(layer.parameters(), G0)], dout


@dataclass
class LayerExercise:
    """A layer exercise: the library's class (the solution), its cases, and its known mistakes.

    ``mistakes(tensor, x, ref, R, G0)`` -> [(key, wrong array, words)] for tensor 'input' or a
    parameter's name; ``ref`` the reference layer after its forward pass."""
    name: str
    reference: type
    cases: list
    mistakes: object = None

    def stages(self, impl, path=None):
        return [("against the library's reference", lambda: self._against_reference(impl, path)),
                ("finite differences", lambda: self._finite_differences(impl, path)),
                ("PyTorch", lambda: self._torch(impl, path))]

    def _pair(self, impl, case, seed, path):
        ref = make_layer(self.reference, case, seed)
        state = {k: v.copy() for k, v in ref.state_dict().items()}
        mine = call(f"{self.name}: {impl.__name__}(…)", path, make_layer, impl, case, seed, state)
        rng = np.random.default_rng(seed + 1)
        x = rng.standard_normal(case.x_shape)
        with reference.mode():
            out_shape = ref(x.copy()).shape
        ref.load_state_dict(state)                      # the running statistics as they were
        return ref, mine, state, x, rng.standard_normal(out_shape)

    def _against_reference(self, impl, path):
        worst = 0.0
        for seed, case in enumerate(self.cases):
            ref, mine, state, x, R = self._pair(impl, case, 10 * seed, path)
            G0 = [np.random.default_rng(seed + 99).standard_normal(p.data.shape) for p in ref.parameters()]
            y_ref, dx_ref, g_ref, _ = run_layer(ref, x, R, G0, "reference")
            y, dx, g, dout = run_layer(mine, x, R, G0, self.name, path)
            N = case.x_shape[0]
            worst = max(worst, expect(self.name, "output", y, y_ref, case.label, batch=N))
            if not np.array_equal(dout, R):
                i = np.unravel_index(int(np.argmax(dout != R)), R.shape)
                raise Fail(f"FAIL {self.name}: backward wrote into the upstream gradient dout ({case.label}): "
                           f"dout{tuple(int(j) for j in i)} was {R[i]:+.6e}, is {dout[i]:+.6e}",
                           "return a new array (dx = dout * …); never dout *= … or dout[…] = …", "wrote-dout")
            known = self.mistakes or (lambda *a: [])
            worst = max(worst, expect(self.name, "input gradient", dx, dx_ref, case.label,
                                      known("input", x, ref, R, G0), batch=N))
            for (pname, _), gi, gr, g0 in zip(ref.named_parameters(), g, g_ref, G0):
                wrong = [("overwritten", gr - g0, OVERWRITTEN)] + known(pname, x, ref, R, G0)
                worst = max(worst, expect(self.name, f"{pname} gradient", gi, gr, case.label, wrong, batch=N))
        return f"{len(self.cases)} cases: output, input and parameter gradients; largest difference {worst:.1e}"

    def _finite_differences(self, impl, path):
        worst = 0.0
        for seed, case in enumerate(self.cases):
            ref, mine, state, x, R = self._pair(impl, case, 10 * seed, path)
            G0 = [np.zeros(p.data.shape) for p in ref.parameters()]
            _, dx_ref, g_ref, _ = run_layer(ref, x, R, G0, "reference")
            right = dict(zip(["input"] + [n for n, _ in ref.named_parameters()], [dx_ref] + g_ref))
            known = self.mistakes or (lambda *a: [])
            with reference.mode():
                report = call(f"{self.name} under finite differences", path, gradcheck.check_module, mine,
                              np.ascontiguousarray(x), raise_on_fail=False)
            for t in report.tensors:
                if not t.ok:
                    mine.zero_grad()
                    with reference.mode():
                        mine(x.copy())
                        got = {"input": mine.backward(R.copy())}
                    got.update((n, p.grad) for n, p in mine.named_parameters())
                    key, why = diagnose(np.asarray(got[t.name]), right[t.name], known(t.name, x, ref, R, G0),
                                        batch=case.x_shape[0])
                    raise Fail(f"FAIL {self.name}: {t.name} gradient ({case.label}) against finite differences: "
                               f"worst element {t.worst_index}: yours {t.analytic:+.6e}, finite differences "
                               f"{t.numeric:+.6e}", why, key)
                worst = max(worst, t.max_rel_err)
        return f"{len(self.cases)} cases, every element; largest relative error {worst:.1e}"

    def _torch(self, impl, path):
        torch = oracle.torch_or_none()
        if torch is None:
            return Skipped("PyTorch is not installed")
        worst = 0.0
        for seed, case in enumerate(self.cases):
            ref, mine, state, x, R = self._pair(impl, case, 10 * seed, path)
            G0 = [np.zeros(p.data.shape) for p in mine.parameters()]
            y, dx, g, _ = run_layer(mine, x, R, G0, self.name, path)
            y_t, dx_t, g_t = oracle.layer_grads(torch, ref, state, x, R)
            run_layer(ref, x, R, G0, "reference")                         # its cache, for the known mistakes
            known, src = self.mistakes or (lambda *a: []), f"PyTorch {torch.__version__}"
            worst = max(worst, expect(self.name, "output", y, y_t, case.label, source=src))
            worst = max(worst, expect(self.name, "input gradient", dx, dx_t, case.label,
                                      known("input", x, ref, R, G0), source=src))
            for (pname, _), gi in zip(mine.named_parameters(), g):
                worst = max(worst, expect(self.name, f"{pname} gradient", gi, g_t[pname], case.label,
                                          known(pname, x, ref, R, G0), source=src))
        return f"torch {torch.__version__}, {len(self.cases)} cases; largest difference {worst:.1e}"


# ----- the layer exercises' cases and known mistakes ----------------------------------------

def _conv_label(k, s, p, shape):
    return f"k{k} s{s} p{p}, x {shape}"


CONV_CASES = [Case(_conv_label(k, s, p, shape), (shape[1], o, k), shape, dict(stride=s, padding=p, bias=b))
              for k, s, p, o, shape, b in [(3, 1, 1, 4, (2, 3, 5, 5), True), (3, 2, 1, 4, (2, 3, 5, 5), False),
                                           (4, 2, 1, 3, (2, 2, 6, 6), True), (1, 1, 0, 2, (3, 2, 3, 3), True)]]
DECONV_CASES = [Case(_conv_label(k, s, p, shape), (shape[1], o, k), shape, dict(stride=s, padding=p, bias=b))
                for k, s, p, o, shape, b in [(4, 2, 1, 3, (2, 4, 3, 3), True), (4, 1, 0, 3, (2, 5, 1, 1), False),
                                             (3, 1, 1, 2, (2, 3, 4, 4), True), (3, 2, 0, 2, (3, 2, 2, 2), True)]]
BN_CASES = [Case("train mode, x (4, 3, 2, 2)", (3,), (4, 3, 2, 2)),
            Case("train mode, x (2, 3, 3, 3)", (3,), (2, 3, 3, 3)),
            Case("eval mode, x (2, 3, 2, 2)", (3,), (2, 3, 2, 2), training=False)]
ACT_CASES = [Case("x (2, 3, 4, 4)", (), (2, 3, 4, 4)), Case("x (5, 7)", (), (5, 7))]
LEAKY_CASES = [Case("slope 0.2, x (2, 3, 4, 4)", (0.2,), (2, 3, 4, 4)), Case("slope 0.01, x (5, 7)", (0.01,), (5, 7))]


def batchnorm_mistakes(tensor, x, ref, R, G0):
    """BatchNorm's classic mistakes, each as the wrong input gradient it gives (train mode)."""
    if tensor != "input" or not ref.mode_at_forward:
        return [] if tensor != "weight" else [("x-hat", R.sum(axis=(0, 2, 3)),
                                               "dγ = Σ dy·x̂: the x̂ (kept by forward as self.x_hat) is missing")]
    N, C, H, W = x.shape
    c, axes, M = (1, C, 1, 1), (0, 2, 3), N * H * W
    x_hat, inv_std, gamma = ref.x_hat, ref.inv_std.reshape(c), ref.weight.data.reshape(c)
    d = R * gamma                                                   # dx̂ = γ·dy

    def tail(count, mean_term=True, var_term=True, d=d):
        return (inv_std / count) * (count * d - (d.sum(axis=axes).reshape(c) if mean_term else 0)
                                    - (x_hat * (d * x_hat).sum(axis=axes).reshape(c) if var_term else 0))
    missing = "BatchNorm's batch-statistics terms are missing"
    return [("batch-statistics", inv_std * d, f"{missing}: γ·dy/√(σ² + eps) is the eval-mode gradient; in train "
             "mode μ and σ² depend on every x of the channel: dx = γ·inv_std/M·(M·dy − Σdy − x̂·Σ(dy·x̂))"),
            ("batch-statistics", tail(M, mean_term=False), f"{missing}: the term through μ, − Σ dx̂, is not there"),
            ("batch-statistics", tail(M, var_term=False), f"{missing}: the term through σ², − x̂·Σ(dx̂·x̂), is not there"),
            ("count", tail(N), f"M is the number of values per channel, N·H·W = {M}, not the batch size N = {N}"),
            ("gamma", tail(M, d=R), "γ is missing: dx̂ = γ·dy before the batch-statistics terms")]


def conv_mistakes(tensor, x, ref, R, G0):
    """dW with its matrix product the wrong way round: the right one's transpose, reshaped."""
    if tensor != "weight":
        return []
    right = R.transpose(0, 2, 3, 1).reshape(-1, ref.out_channels).T @ im2col(x, ref.kernel_size, ref.stride,
                                                                               ref.padding)
    O, CKK = right.shape
    return [("transpose", right.T.reshape(ref.weight.shape), f"the result is the transpose of the right one: "
             f"dW = dYᵀ·cols is ({O}, {CKK}) = (O, C·K·K) before the reshape; colsᵀ·dY is its transpose")]


def deconv_mistakes(tensor, x, ref, R, G0):
    if tensor != "weight":
        return []
    X = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
    right = X.T @ im2col(R, ref.kernel_size, ref.stride, ref.padding)
    C, OKK = right.shape
    return [("transpose", right.T.reshape(ref.weight.shape), f"the result is the transpose of the right one: "
             f"dW = Xᵀ·cols is ({C}, {OKK}) = (C, O·K·K) before the reshape; colsᵀ·X is its transpose")]


def tanh_mistakes(tensor, x, ref, R, G0):
    y = np.tanh(x)
    return [("uses-input", R * (1 - x * x), "1 − x² uses the input; tanh' = 1 − y², y = tanh(x) the output "
             "that forward keeps (self.y)"),
            ("uses-input", R * (1 - np.tanh(y) ** 2), "1 − tanh(y)² applies tanh twice: tanh' = 1 − y² with y "
             "the output itself"),
            ("no-dout", 1 - y * y, "the local derivative 1 − y² alone: multiply it by dout (the chain rule)")]


def leaky_mistakes(tensor, x, ref, R, G0):
    a = ref.negative_slope
    return [("slopes-swapped", R * np.where(x > 0, a, 1.0), "the slopes are swapped: 1 where x > 0, a elsewhere"),
            ("relu", R * (x > 0), f"the negative side's slope a = {a} is missing: that is ReLU's derivative"),
            ("no-dout", np.where(x > 0, 1.0, a), "the local derivative alone: multiply it by dout (the chain rule)")]


LAYERS = {
    "conv2d": LayerExercise("conv2d", nn.Conv2d, CONV_CASES, conv_mistakes),
    "conv_transpose2d": LayerExercise("conv_transpose2d", nn.ConvTranspose2d, DECONV_CASES, deconv_mistakes),
    "batchnorm2d": LayerExercise("batchnorm2d", nn.BatchNorm2d, BN_CASES, batchnorm_mistakes),
    "leaky_relu": LayerExercise("leaky_relu", nn.LeakyReLU, LEAKY_CASES, leaky_mistakes),
    "tanh": LayerExercise("tanh", nn.Tanh, ACT_CASES, tanh_mistakes),
}


# ----- im2col and col2im: functions, checked through each other -----------------------------

IM2COL_CASES = [(3, 1, 0, (1, 1, 4, 4)), (3, 2, 1, (2, 3, 5, 5)), (4, 2, 1, (2, 2, 6, 6)), (2, 3, 2, (1, 2, 5, 4))]


def _col2im_assigning(cols, x_shape, k, s, p):
    """col2im with '=' where '+=' belongs: each window overwrites the ones before it."""
    N, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = cols.reshape(N, OH, OW, C, k, k).transpose(0, 3, 4, 5, 1, 2)
    x_pad = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for ky in range(k):
        for kx in range(k):
            x_pad[:, :, ky:ky + s * OH:s, kx:kx + s * OW:s] = cols[:, :, ky, kx]
    return x_pad[:, :, p:p + H, p:p + W]


def _im2col_mistakes(right, C, k):
    rows = right.shape[0]
    per = right.reshape(rows, C, k, k)
    return [("transpose", per.transpose(0, 1, 3, 2).reshape(rows, -1), "the result is a transpose of the right "
             "one: ky and kx are swapped within each row, whose order is (c, ky, kx)"),
            ("transpose", per.transpose(0, 2, 3, 1).reshape(rows, -1), "the result is a transpose of the right "
             "one: each row is ordered (ky, kx, c); it must be (c, ky, kx), as weight.reshape(O, C·K·K)")]


class FunctionExercise:
    """im2col or col2im: the learner's function against the library's, and the other one as its adjoint."""

    def __init__(self, name):
        self.name = name

    def _inputs(self, k, s, p, shape, seed):
        x = np.random.default_rng(seed).standard_normal(shape)
        cols = im2col(x, k, s, p)
        return (x,) if self.name == "im2col" else (np.random.default_rng(seed + 1).standard_normal(cols.shape),)

    def _right(self, arg, k, s, p, shape):
        if self.name == "im2col":
            return im2col(arg, k, s, p)
        return col2im(arg, shape, k, s, p)

    def _mine(self, impl, arg, k, s, p, shape, path):
        args = (arg.copy(), k, s, p) if self.name == "im2col" else (arg.copy(), shape, k, s, p)
        with reference.mode():
            return call(f"{self.name}", path, impl, *args)

    def stages(self, impl, path=None):
        return [("against the library's reference", lambda: self._against_reference(impl, path)),
                ("finite differences", lambda: self._finite_differences(impl, path)),
                ("PyTorch", lambda: self._torch(impl, path))]

    def _against_reference(self, impl, path):
        for i, (k, s, p, shape) in enumerate(IM2COL_CASES):
            (arg,) = self._inputs(k, s, p, shape, i)
            right = self._right(arg, k, s, p, shape)
            got = self._mine(impl, arg, k, s, p, shape, path)
            wrong = _im2col_mistakes(right, shape[1], k) if self.name == "im2col" else [
                ("overwritten", _col2im_assigning(arg, shape, k, s, p), "overlapping windows overwrite each other "
                 "instead of adding up: x_pad[…] += cols…, not x_pad[…] = cols…")]
            expect(self.name, "output", got, right, _conv_label(k, s, p, shape), wrong)
        return f"{len(IM2COL_CASES)} cases, every element equal"

    def _finite_differences(self, impl, path):
        """d/du Σ mine(u)·R, by central differences, must be the adjoint applied to R."""
        worst = 0.0
        for i, (k, s, p, shape) in enumerate(IM2COL_CASES):
            (arg,) = self._inputs(k, s, p, shape, i)
            R = np.random.default_rng(i + 7).standard_normal(self._right(arg, k, s, p, shape).shape)
            u = np.ascontiguousarray(arg.copy())
            numeric = gradcheck.numerical_gradient(
                lambda: float((np.asarray(self._mine(impl, u, k, s, p, shape, path)) * R).sum()), u)
            adjoint = col2im(R, shape, k, s, p) if self.name == "im2col" else \
                im2col(R, k, s, p)
            other = "col2im" if self.name == "im2col" else "im2col"
            t = gradcheck.compare("gradient", numeric, adjoint)
            if not t.ok:
                raise Fail(f"FAIL {self.name}: d/du Σ {self.name}(u)·R ({_conv_label(k, s, p, shape)}) against the "
                           f"library's {other}(R): worst element {t.worst_index}: finite differences {t.analytic:+.6e}, "
                           f"{other}(R) {t.numeric:+.6e}",
                           f"{self.name} must be the adjoint of {other}: ⟨{self.name}(u), R⟩ = ⟨u, {other}(R)⟩",
                           "adjoint")
            worst = max(worst, t.max_rel_err)
        return f"the gradient of Σ {self.name}(u)·R is the library's adjoint; largest relative error {worst:.1e}"

    def _torch(self, impl, path):
        torch = oracle.torch_or_none()
        if torch is None:
            return Skipped("PyTorch is not installed")
        F, src = torch.nn.functional, f"PyTorch {torch.__version__}"
        for i, (k, s, p, shape) in enumerate(IM2COL_CASES):
            (arg,) = self._inputs(k, s, p, shape, i)
            N, C, H, W = shape
            got = self._mine(impl, arg, k, s, p, shape, path)
            if self.name == "im2col":         # unfold: (N, C·K·K, OH·OW)
                t = F.unfold(torch.tensor(arg), k, padding=p, stride=s).transpose(1, 2).reshape(-1, C * k * k)
                what = "output against F.unfold"
            else:                             # fold takes (N, C·K·K, OH·OW)
                cols = torch.tensor(arg).reshape(N, -1, C * k * k).transpose(1, 2)
                t = F.fold(cols, (H, W), k, padding=p, stride=s)
                what = "output against F.fold"
            wrong = _im2col_mistakes(t.numpy(), C, k) if self.name == "im2col" else []
            expect(self.name, what, got, t.numpy(), _conv_label(k, s, p, shape), wrong, source=src)
        return f"torch {torch.__version__} ({'unfold' if self.name == 'im2col' else 'fold'}), {len(IM2COL_CASES)} cases"


FUNCTIONS = {"im2col": FunctionExercise("im2col"), "col2im": FunctionExercise("col2im")}
