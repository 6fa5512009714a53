"""Parameter, Module and Sequential: the containers every layer is built from.

There is no autograd. A layer's ``forward(x)`` keeps what its backward needs in named
attributes (its cache); its ``backward(dout)`` takes dL/d(output), ADDS dL/d(parameter)
into each ``Parameter.grad`` and returns dL/d(input) as a new array. Adding, not
assigning, is what lets a GAN step run D twice (real batch, fake batch) before one
optimizer step, exactly as PyTorch's ``loss.backward()`` accumulates.

Names follow PyTorch (``weight``, ``bias``, ``running_mean``; ``main.0.weight`` inside a
Sequential) so that a state_dict moves between tinygan and PyTorch unchanged.
"""
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from .. import backend
from .workspace import Workspace


def check_input(layer, x, channels):
    """Raise a clear error unless x is a 4-D array with ``channels`` channels on the layer's backend and dtype."""
    name = type(layer).__name__
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(f"{name}: expected input of shape (N, {channels}, H, W), got "
                         f"{'a ' + type(x).__name__ if shape is None else 'shape ' + str(tuple(shape))}")
    if shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} input channels (N, {channels}, H, W), "
                         f"got shape {tuple(shape)}")
    weight = getattr(layer, "weight", None)
    if weight is not None:
        try:
            backend.get_array_module(x, weight.data)
        except ValueError:
            raise ValueError(f"{name}: input of shape {tuple(shape)} is a {type(x).__module__} array "
                             f"but the layer's weights are {type(weight.data).__module__}: "
                             "move one of them (module.to('cupy') or backend.to_numpy)") from None
        if x.dtype != weight.data.dtype:
            raise ValueError(f"{name}: input dtype {x.dtype} (shape {tuple(shape)}) differs from the "
                             f"weight dtype {weight.data.dtype}: cast the input or call module.to(dtype=...)")


def check_cache(layer, dout, expected_shape):
    name = type(layer).__name__
    if expected_shape is None:
        raise RuntimeError(f"{name}.backward called before forward: run forward(x) first")
    if tuple(dout.shape) != tuple(expected_shape):
        raise ValueError(f"{name}.backward: expected dout of shape {tuple(expected_shape)} "
                         f"(the forward output), got {tuple(dout.shape)}")


class Parameter:
    """A learnable array ``data`` and the gradient ``grad`` that backward adds into.

    ``requires_grad = False`` makes the owning layer skip this gradient (as PyTorch's
    ``requires_grad_(False)``): used for D while G is updated.
    """

    def __init__(self, data, requires_grad=True):
        self.data = data
        self.grad = backend.get_array_module(data).zeros_like(data)
        self.requires_grad = requires_grad

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: ``__call__`` runs ``forward``; subclasses write ``forward`` and ``backward``.

    Parameters, buffers (non-learned state such as BatchNorm's running statistics) and
    sub-modules are found by walking the instance's attributes in the order they were set.
    """

    training = True
    out_shape = None       # shape of the last forward output; None until forward has run
    _buffers = ()          # names of array attributes saved in state_dict but not learned
    # False: backward still adds the parameter gradients but skips dL/d(input) and returns
    # None. For a network's FIRST layer, whose input (noise, images) needs no gradient;
    # Conv2d and ConvTranspose2d honour it (it saves a matrix product and a col2im).
    needs_input_grad = True

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    # ----- walking the tree -------------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix=""):
        for mod_name, mod in self.named_modules(prefix):
            for name, value in vars(mod).items():
                if isinstance(value, Parameter):
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for mod_name, mod in self.named_modules(prefix):
            for name in mod._buffers:
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(mod, name)

    # ----- training switches --------------------------------------------------------
    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def share_workspace(self, workspace=None):
        """Give every layer below this module that has scratch memory the same ``Workspace``
        (a new one by default): layers of one model run one at a time, so one set of
        buffers serves them all. Returns the workspace."""
        workspace = Workspace() if workspace is None else workspace
        for m in self.modules():
            if hasattr(m, "workspace"):
                m.workspace = workspace
        return workspace

    def requires_grad_(self, flag=True):
        """Switch parameter gradients on or off for every parameter below this module."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    # ----- moving and saving --------------------------------------------------------
    def to(self, backend_name=None, dtype=None):
        """Move every parameter, gradient and float buffer to 'numpy'/'cupy' and/or ``dtype``."""
        if backend_name is None:
            xp = backend.get_array_module(*(p.data for p in self.parameters()))
        else:
            xp = backend.array_module(backend_name)

        def convert(a, cast=True):
            a = backend.to_numpy(a) if xp is np else xp.asarray(a)
            return a.astype(dtype) if (cast and dtype is not None and a.dtype.kind == "f") else a

        for p in self.parameters():
            p.data, p.grad = convert(p.data), convert(p.grad)
        for mod in self.modules():
            for name in mod._buffers:
                setattr(mod, name, convert(getattr(mod, name)))
        return self

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def state_dict(self):
        """Ordered name -> array (parameters, then each module's buffers), as PyTorch names them.

        The arrays are the module's own (not copies); ``checkpoint.save`` copies them to host.
        """
        state = OrderedDict()
        for mod_name, mod in self.named_modules():
            for name, value in vars(mod).items():
                if isinstance(value, Parameter):
                    state[f"{mod_name}.{name}" if mod_name else name] = value.data
            for name in mod._buffers:
                state[f"{mod_name}.{name}" if mod_name else name] = getattr(mod, name)
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into this module, checking names and shapes.

        Raises a KeyError/ValueError listing every missing, unexpected or mis-shaped key,
        and changes nothing unless all of them match.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [f"{k}: checkpoint {tuple(np.shape(state[k]))} vs model {tuple(own[k].shape)}"
                 for k in own if k in state and tuple(np.shape(state[k])) != tuple(own[k].shape)]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if wrong:
            problems.append("shape mismatch: " + "; ".join(wrong))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + " | ".join(problems))
        for k, target in own.items():
            if k in state:
                xp = backend.get_array_module(target)
                src = state[k]
                src = backend.to_numpy(src) if xp is np else xp.asarray(src)
                target[...] = src.astype(target.dtype, copy=False)

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            lines += ["  " + line for line in f"({name}): {child!r}".splitlines()]
        return "\n".join(lines + [")"])

    def extra_repr(self):
        return ""


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse. Children are named "0", "1", …"""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __getitem__(self, i):
        return list(self.named_children())[i][1]

    def __len__(self):
        return len(list(self.named_children()))

    def __iter__(self):
        return (m for _, m in self.named_children())

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x

    def backward(self, dout):
        layers = list(self)
        for i in reversed(range(len(layers))):
            dout = layers[i].backward(dout)
            if dout is None and i > 0:
                raise RuntimeError(f"Sequential.backward: layer {i} ({type(layers[i]).__name__}) returned no "
                                   "input gradient (needs_input_grad is False) but the layers before it need "
                                   "one: only a network's first layer may skip its input gradient")
        return dout


@contextmanager
def sampling(model, bn="running"):
    """Run ``model`` for inference inside the block, and leave it exactly as it was.

        with sampling(G, bn="batch"):
            images = G(z)

    bn='running': eval mode, BatchNorm normalises with its running averages (``G.eval()``),
    so each output depends on its own input only. bn='batch': train mode, BatchNorm uses
    the batch's own statistics, as during training. Either way the running statistics
    (every buffer) and each sub-module's train/eval mode are restored on the way out, so
    sampling never changes what the next training step or checkpoint sees.
    """
    if bn not in ("running", "batch"):
        raise ValueError(f"sampling: bn must be 'running' or 'batch', got {bn!r}")
    modes = [(m, m.training) for m in model.modules()]
    saved = [(m, name, getattr(m, name).copy()) for m in model.modules() for name in m._buffers]
    model.train(bn == "batch")
    try:
        yield model
    finally:
        for m, name, value in saved:
            getattr(m, name)[...] = value          # in place: the arrays stay the same objects
        for m, mode in modes:
            m.training = mode
