"""Reference mode: every layer, the loss and Adam run their plain textbook code.

Each layer file opens with the plain version of its arithmetic — im2col and one matrix
product for a convolution, BatchNorm's backward formula by formula, Adam's four-line
update — and by default hands the same work to a speed path instead (the batch-innermost
layout, compiled loops, threads: ``nn/layout.py``, ``jit.py``, ``parallel.py``). The
tests check the two equal. Switch the speed paths off to read, or step through, the code
that the docstrings show:

    TINYGAN_REFERENCE=1 python examples/pokemon.py ...      # for a whole run

    >>> import tinygan
    >>> tinygan.reference.use(True)          # from here on, the textbook code runs
    >>> tinygan.reference.on()
    True
    >>> tinygan.reference.use(False)         # back to the speed paths

or for a few lines, ``with tinygan.reference.mode(): ...``. A layer decides at its
forward pass, and its backward follows the path its forward took.
"""
import contextlib
import os

_state = {"on": os.environ.get("TINYGAN_REFERENCE", "").strip() not in ("", "0")}


def on():
    """Whether the plain textbook code runs (True) or the speed paths (False, the default)."""
    return _state["on"]


def use(flag=True):
    """Run the plain textbook code from now on (``use(False)``: the speed paths again)."""
    _state["on"] = bool(flag)


@contextlib.contextmanager
def mode(flag=True):
    """``with reference.mode():`` the textbook code inside the block, the previous mode after it."""
    before = _state["on"]
    _state["on"] = bool(flag)
    try:
        yield
    finally:
        _state["on"] = before
