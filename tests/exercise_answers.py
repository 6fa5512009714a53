"""Learners' answers to the exercises, as test fixtures: each stub with its TODOs written, right or wrong.

An answer is {the start of a `raise NotImplementedError("…")` message in the stub: the code a
learner writes there}. ``filled(name, answer)`` is the stub's text with those lines replaced,
what a learner's ./exercises/NAME.py holds after the exercise; the tests write it to a file
and check it by path, as ``python -m tinygan.exercises check NAME FILE`` does.

RIGHT holds the textbook formula of every exercise (the library's reference code, written
into the stub). MISTAKES holds the common mistakes, each with the diagnosis ``check`` must
give: (exercise, diagnosis key, what the learner did, answer).
"""
import textwrap

from tinygan.exercises import exercise


def filled(name, answer):
    """The stub of exercise ``name`` with each answered `raise NotImplementedError` line replaced."""
    lines, out, used = exercise(name).stub.read_text().splitlines(), [], set()
    for line in lines:
        hit = [key for key in answer if f'raise NotImplementedError("{key}' in line]
        if not hit:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        out += [indent + code if code else "" for code in textwrap.dedent(answer[hit[0]]).strip("\n").splitlines()]
        used.add(hit[0])
    missing = set(answer) - used
    assert not missing, f"{name}: no raise line starts with {sorted(missing)}"
    return "\n".join(out) + "\n"


def with_changes(name, **changes):
    """RIGHT[name] with some of its answers replaced."""
    return {**RIGHT[name], **changes}


IM2COL_RIGHT = """
cols = np.empty((N, C, k, k, OH, OW), dtype=x.dtype)
for ky in range(k):
    for kx in range(k):
        cols[:, :, ky, kx] = x_pad[:, :, ky:ky + s * OH:s, kx:kx + s * OW:s]
return cols.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, C * k * k)
"""
COL2IM_RIGHT = """
cols = cols.reshape(N, OH, OW, C, k, k).transpose(0, 3, 4, 5, 1, 2)
for ky in range(k):
    for kx in range(k):
        x_pad[:, :, ky:ky + s * OH:s, kx:kx + s * OW:s] += cols[:, :, ky, kx]
return x_pad[:, :, p:p + H, p:p + W]
"""
CONV_FORWARD = """
self.cols = im2col(x, k, s, p)                              # (N·OH·OW, C·K·K)
Y = self.cols @ self.weight.data.reshape(O, -1).T           # (N·OH·OW, O)
if self.bias is not None:
    Y = Y + self.bias.data
return Y.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)
"""
CONV_BACKWARD = """
dY = dout.transpose(0, 2, 3, 1).reshape(-1, O)              # (N·OH·OW, O)
if self.weight.requires_grad:
    self.weight.grad += (dY.T @ self.cols).reshape(self.weight.shape)
if self.bias is not None and self.bias.requires_grad:
    self.bias.grad += dY.sum(axis=0)
return col2im(dY @ W2, self.x_shape, k=self.kernel_size, s=self.stride, p=self.padding)
"""
DECONV_FORWARD = """
self.X = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)
y = col2im(self.X @ self.weight.data.reshape(C, -1), (N, self.out_channels, OH, OW), k, s, p)
if self.bias is not None:
    y = y + self.bias.data.reshape(-1, 1, 1)
return y
"""
DECONV_BACKWARD = """
cols = im2col(dout, k, s, p)                                # (N·H·W, O·K·K)
if self.weight.requires_grad:
    self.weight.grad += (self.X.T @ cols).reshape(self.weight.shape)
if self.bias is not None and self.bias.requires_grad:
    self.bias.grad += dout.sum(axis=(0, 2, 3))
return (cols @ W2.T).reshape(N, H, W, C).transpose(0, 3, 1, 2)
"""
BN_DX = """
dx = (inv_std / M) * (M * dx_hat - dx_hat.sum(axis=axes).reshape(c)
                      - x_hat * (dx_hat * x_hat).sum(axis=axes).reshape(c))
"""
BN_PARAMS = """
if self.weight.requires_grad:
    self.weight.grad += (dout * x_hat).sum(axis=axes)
if self.bias.requires_grad:
    self.bias.grad += dout.sum(axis=axes)
return dx
"""
BCE_FORWARD = """
self.x, self.y = logits, target
per_element = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
return per_element.sum() / logits.size if self.reduction == "mean" else per_element.sum()
"""
BCE_BACKWARD = """
n = self.x.size if self.reduction == "mean" else 1
return (sigmoid(self.x) - self.y) / n * dout
"""
ADAM_RIGHT = """
m[...] = b1 * m + (1 - b1) * g
v[...] = b2 * v + (1 - b2) * g * g
m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
"""
GAN_G_STEP = """
D.requires_grad_(False)
try:
    loss_G = loss_fn(D(fake), ones)
    G.backward(D.backward(loss_fn.backward()))
finally:
    D.requires_grad_(True)
"""

RIGHT = {
    "im2col": {"im2col:": IM2COL_RIGHT},
    "col2im": {"col2im:": COL2IM_RIGHT},
    "conv2d": {"Conv2d.forward": CONV_FORWARD, "Conv2d.backward": CONV_BACKWARD},
    "conv_transpose2d": {"ConvTranspose2d.forward": DECONV_FORWARD, "ConvTranspose2d.backward": DECONV_BACKWARD},
    "batchnorm2d": {"BatchNorm2d.backward: dx": BN_DX, "BatchNorm2d.backward: add": BN_PARAMS},
    "leaky_relu": {"LeakyReLU.backward": "return dout * np.where(self.x > 0, 1.0, self.negative_slope)"},
    "tanh": {"Tanh.backward": "return dout * (1 - self.y * self.y)"},
    "bce_with_logits": {"BCEWithLogitsLoss.forward": BCE_FORWARD, "BCEWithLogitsLoss.backward": BCE_BACKWARD},
    "adam": {"Adam.step": ADAM_RIGHT},
    "gan_step": {"train_step: D's backward pass for the real": "D.backward(loss_fn.backward(0.5), input_grad=False)",
                 "train_step: D's backward pass for the fake": "D.backward(loss_fn.backward(0.5), input_grad=False)",
                 "train_step: loss_G": GAN_G_STEP},
}

MISTAKES = [
    # ----- the diagnoses the issue lists ---------------------------------------------------
    ("conv2d", "transpose", "dW = colsᵀ·dY, reshaped: the transpose of dYᵀ·cols",
     with_changes("conv2d", **{"Conv2d.backward": CONV_BACKWARD.replace("(dY.T @ self.cols)", "(self.cols.T @ dY)")})),
    ("im2col", "transpose", "each row ordered (c, kx, ky)",
     {"im2col:": IM2COL_RIGHT.replace("cols.transpose(0, 4, 5, 1, 2, 3)", "cols.transpose(0, 4, 5, 1, 3, 2)")}),
    ("conv_transpose2d", "transpose", "dW = colsᵀ·X, reshaped",
     with_changes("conv_transpose2d", **{"ConvTranspose2d.backward": DECONV_BACKWARD.replace(
         "(self.X.T @ cols)", "(cols.T @ self.X)")})),
    ("bce_with_logits", "batch-size", "the sum where the mean belongs, forward and backward",
     {"BCEWithLogitsLoss.forward": BCE_FORWARD.replace("per_element.sum() / logits.size", "per_element.sum()"),
      "BCEWithLogitsLoss.backward": "return (sigmoid(self.x) - self.y) * dout"}),
    ("conv2d", "batch-size", "db divided by the batch size",
     with_changes("conv2d", **{"Conv2d.backward": CONV_BACKWARD.replace("dY.sum(axis=0)", "dY.sum(axis=0) / dout.shape[0]")})),
    ("conv2d", "overwritten", "dW and db assigned into .grad instead of added",
     with_changes("conv2d", **{"Conv2d.backward": CONV_BACKWARD.replace("grad +=", "grad[...] =")})),
    ("batchnorm2d", "overwritten", "dγ and dβ assigned to .grad",
     with_changes("batchnorm2d", **{"BatchNorm2d.backward: add": BN_PARAMS.replace("grad +=", "grad =")})),
    ("batchnorm2d", "batch-statistics", "the eval-mode gradient in train mode: μ and σ² as constants",
     with_changes("batchnorm2d", **{"BatchNorm2d.backward: dx": "dx = inv_std * dx_hat"})),
    ("batchnorm2d", "batch-statistics", "the variance term left out",
     with_changes("batchnorm2d", **{"BatchNorm2d.backward: dx":
                                    "dx = (inv_std / M) * (M * dx_hat - dx_hat.sum(axis=axes).reshape(c))"})),
    ("gan_step", "half", "each of D's backward passes given 1, not ½",
     with_changes("gan_step", **{k: "D.backward(loss_fn.backward(), input_grad=False)"
                                 for k in ("train_step: D's backward pass for the real",
                                           "train_step: D's backward pass for the fake")})),
    ("bce_with_logits", "unstable-log", "the textbook form −[y·log σ(x) + (1 − y)·log(1 − σ(x))]",
     with_changes("bce_with_logits", **{"BCEWithLogitsLoss.forward": """
         self.x, self.y = logits, target
         p = 1 / (1 + np.exp(-logits))
         per_element = -(target * np.log(p) + (1 - target) * np.log(1 - p))
         return per_element.sum() / logits.size if self.reduction == "mean" else per_element.sum()
         """})),
    ("gan_step", "frozen", "G's backward through D with D's parameter gradients still on",
     with_changes("gan_step", **{"train_step: loss_G": """
         loss_G = loss_fn(D(fake), ones)
         G.backward(D.backward(loss_fn.backward()))
         """})),
    # ----- more of them ----------------------------------------------------------------
    ("col2im", "overwritten", "overlapping windows assigned, not added",
     {"col2im:": COL2IM_RIGHT.replace("] += cols", "] = cols")}),
    ("leaky_relu", "wrote-dout", "the negative side scaled in place, in dout",
     {"LeakyReLU.backward": "dout[self.x <= 0] *= self.negative_slope\nreturn dout"}),
    ("leaky_relu", "relu", "ReLU's derivative: the slope a left out",
     {"LeakyReLU.backward": "return dout * (self.x > 0)"}),
    ("tanh", "uses-input", "1 − x², the input's square", {"Tanh.backward": "return dout * (1 - np.arctanh(self.y) ** 2)"}),
    ("bce_with_logits", "no-dout", "backward ignores the upstream gradient",
     with_changes("bce_with_logits", **{"BCEWithLogitsLoss.backward":
                                        BCE_BACKWARD.replace("/ n * dout", "/ n")})),
    ("adam", "bias-correction", "no bias correction",
     {"Adam.step": ADAM_RIGHT.replace("m / (1 - b1 ** t), v / (1 - b2 ** t)", "m, v")}),
    ("adam", "state", "the moments rebound, not written into",
     {"Adam.step": ADAM_RIGHT.replace("m[...] =", "m =").replace("v[...] =", "v =")}),
    ("adam", "eps", "eps inside the square root",
     {"Adam.step": ADAM_RIGHT.replace("(np.sqrt(v_hat) + self.eps)", "np.sqrt(v_hat + self.eps)")}),
    ("gan_step", "frozen-after", "D switched off for G's step and left off",
     with_changes("gan_step", **{"train_step: loss_G": """
         D.requires_grad_(False)
         loss_G = loss_fn(D(fake), ones)
         G.backward(D.backward(loss_fn.backward()))
         """})),
]
