"""Workspace: scratch memory that layers reuse from call to call, owned by whoever runs them.

A convolution's big temporaries — the padded input, the column matrix, the canvas that
col2im adds into — cost more to allocate than to fill: fresh memory from the operating
system arrives zeroed, one page fault per 4 KiB on first touch. So instead of
``xp.empty(shape, dtype)`` a layer asks its workspace

    self.workspace.get(role, shape, dtype, xp)

and gets a C-contiguous array of that shape carved from a buffer kept for ``role``, grown
to the largest request seen. The rules that make this safe:

  * a scratch array is dead when the forward/backward that asked for it returns: it is
    never returned to the caller and never kept in a layer's cache;
  * layers that share a workspace run one at a time, so one buffer per role serves them
    all; within one call, two temporaries alive at once need two different roles.

Every layer starts with a workspace of its own; ``Module.share_workspace()`` gives all the
layers of a model one (``dcgan.build`` gives G and D of one GAN the same one, since a
training step runs them one after the other). Two models trained in two threads each keep
their own. Contents are garbage on arrival (as ``empty``'s): fill it completely, or zero it.
``Workspace(reuse=False)`` is the plain version: a fresh ``xp.empty`` every time.
"""
import math

import numpy as np


class Workspace:
    """{role: buffer}: uninitialised C-contiguous arrays handed out per role and reused."""

    def __init__(self, reuse=True):
        self.reuse = reuse
        self.buffers = {}

    def get(self, role, shape, dtype, xp):
        """An uninitialised C-contiguous ``shape`` array of ``dtype`` on ``xp``, reused per role."""
        n = math.prod(shape)
        if not self.reuse:
            return xp.empty(shape, dtype)
        key = (role, np.dtype(dtype).str, xp.__name__)
        buf = self.buffers.get(key)
        if buf is None or buf.size < n:
            self.buffers.pop(key, None)            # let the old buffer go before taking the new one
            buf = self.buffers[key] = xp.empty(n, dtype)
        return buf[:n].reshape(shape)

    def clear(self):
        """Drop every buffer (their memory is freed once no array views them)."""
        self.buffers.clear()

    def nbytes(self):
        """Bytes held now."""
        return sum(b.nbytes for b in self.buffers.values())

    def __repr__(self):
        return f"Workspace({len(self.buffers)} buffers, {self.nbytes():,} bytes)"
