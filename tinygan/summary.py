"""summary(model, input_shape): each layer's output shape and parameter count, like Keras's ``model.summary()``.

    >>> import tinygan
    >>> from tinygan.dcgan import build
    >>> G, D = build(image_size=64)
    >>> tinygan.summary(G, (100, 1, 1))          # prints the table, returns a Summary
    Layer (type)               Output shape        Param #
    ======================================================
    main.0 (ConvTranspose2d)   (N, 512, 4, 4)      819,200
    main.1 (BatchNorm2d)       (N, 512, 4, 4)        1,024
    ...
    Total params: 3,576,704

How it works: one forward pass of a batch of zeros in eval mode (so BatchNorm's running
statistics are not touched), then each leaf layer's ``out_shape`` — the shape of its last
output, which every tinygan layer records — is read off in the order the layers were
registered (for a Sequential, the order they run). A layer's parameter count is the sum of
the sizes of its own ``Parameter``s; BatchNorm's running statistics are buffers, not
parameters, and are counted separately.
"""
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .nn.module import Parameter, sampling


@dataclass
class LayerRow:
    name: str              # e.g. 'main.0'
    kind: str              # the class name, e.g. 'ConvTranspose2d'
    out_shape: tuple       # without the batch axis
    params: int            # learnable numbers in this layer's own Parameters
    trainable: int         # of which requires_grad


@dataclass
class Summary:
    rows: list = field(default_factory=list)
    input_shape: tuple = ()
    output_shape: tuple = ()
    total_params: int = 0
    trainable_params: int = 0
    buffers: int = 0       # numbers in buffers (BatchNorm running statistics), not learned

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params

    def __str__(self):
        def shape(s):
            return "(" + ", ".join(["N", *(str(d) for d in s)]) + (",)" if not s else ")")
        head = ("Layer (type)", "Output shape", "Param #")
        body = [(f"{r.name} ({r.kind})", shape(r.out_shape), f"{r.params:,}") for r in self.rows]
        w0 = max(len(head[0]), *(len(b[0]) for b in body)) + 2
        w1 = max(len(head[1]), *(len(b[1]) for b in body)) + 2
        w2 = max(len(head[2]), *(len(b[2]) for b in body))
        rule = "=" * (w0 + w1 + w2)
        lines = [f"{head[0]:<{w0}}{head[1]:<{w1}}{head[2]:>{w2}}", rule]
        lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in body]
        lines += [rule,
                  f"Input shape: {shape(self.input_shape)}   Output shape: {shape(self.output_shape)}",
                  f"Total params: {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Non-trainable params: {self.non_trainable_params:,}",
                  f"Buffers (BatchNorm running statistics and counters): {self.buffers:,}"]
        return "\n".join(lines)


def _own_parameters(module):
    return [v for v in vars(module).values() if isinstance(v, Parameter)]


def summary(model, input_shape, print_fn=print):
    """Run ``model`` once on zeros of shape (2, *input_shape) and tabulate every leaf layer.

    input_shape: one example's shape without the batch axis, e.g. (100, 1, 1) for G and
    (3, 64, 64) for D. Prints the table with ``print_fn`` (None: print nothing) and returns
    the ``Summary`` (rows, totals). The model's parameters, buffers and train/eval mode are
    left as they were.
    """
    input_shape = tuple(int(d) for d in input_shape)
    params = model.parameters()
    xp = backend.get_array_module(*(p.data for p in params)) if params else backend.xp()
    dtype = params[0].data.dtype if params else backend.default_dtype()
    with sampling(model, bn="running"):          # BatchNorm: running stats used, not updated
        out = model(xp.zeros((2, *input_shape), dtype=dtype))

    result = Summary(input_shape=input_shape, output_shape=tuple(out.shape[1:]))
    for name, m in model.named_modules():
        if list(m.named_children()):              # containers: their leaves are listed instead
            continue
        own = _own_parameters(m)
        shape = tuple(m.out_shape[1:]) if m.out_shape is not None else ()
        result.rows.append(LayerRow(name, type(m).__name__, shape,
                                    sum(int(p.data.size) for p in own),
                                    sum(int(p.data.size) for p in own if p.requires_grad)))
    result.total_params = sum(int(p.data.size) for p in params)
    result.trainable_params = sum(int(p.data.size) for p in params if p.requires_grad)
    result.buffers = sum(int(np.size(b)) for _, b in model.named_buffers())
    if print_fn is not None:
        print_fn(str(result))
    return result
