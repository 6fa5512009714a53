"""What a wrong answer is wrong by: the comparisons ``check`` makes and the diagnoses it prints.

``expect(what, got, want, ...)`` compares a learner's array with the right one and, when
they differ, raises ``Fail`` whose text is the verdict, one or two lines:

    FAIL conv2d: weight gradient (k3 s1 p1, x (2, 3, 5, 5)): worst element (1, 2, 0, 1): yours +1.2e+00, right -2.3e-01
      diagnosis: the transpose of the right one ...

The diagnosis comes from ``diagnose``: first the exercise's own list of known mistakes
(each a wrong array computed the wrong way, and the words that name it), then what any
array can be wrong by: not finite, all zeros, a constant factor (the batch size: a sum
where a mean belongs; −1: the sign), a transposition (axes permuted, or a matrix
reshaped the other way round).
"""
import itertools
import linecache
import os
import traceback

import numpy as np

RTOL = 1e-8          # float64 results that equal the right ones up to the order of the additions


class Fail(Exception):
    """A check failed. ``headline``: what differs and where; ``diagnosis``: why, where one fits;
    ``key``: the diagnosis' short name (tests assert on it)."""

    def __init__(self, headline, diagnosis=None, key=None):
        self.headline, self.diagnosis, self.key = headline, diagnosis, key
        super().__init__(self.text())

    def text(self):
        return self.headline + (f"\n  diagnosis: {self.diagnosis}" if self.diagnosis else "")


class Skipped(str):
    """What a stage returns instead of its summary when it cannot run (no PyTorch; nothing to difference)."""


def close(got, want, rtol=RTOL, atol=1e-12):
    """Equal up to rounding: |got − want| ≤ atol + rtol·max|want| everywhere (same shape)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    with np.errstate(all="ignore"):
        scale = float(np.abs(want).max(initial=0.0))
        return bool(np.all(np.abs(got - want) <= atol + rtol * scale))


def worst(got, want):
    """(index, yours, right) of the element furthest from the right one; NaN counts as furthest."""
    with np.errstate(all="ignore"):
        err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    err = np.where(np.isnan(err), np.inf, err)
    i = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    return tuple(int(j) for j in i), float(np.asarray(got)[i]), float(np.asarray(want)[i])


def expect(ex, what, got, want, case="", mistakes=(), batch=None, source="right", rtol=RTOL):
    """Raise ``Fail`` unless ``got`` equals ``want``; ``mistakes``: (key, wrong array or a function
    giving one, diagnosis) of the exercise's known mistakes; ``batch``: the N that a sum and a
    mean differ by. Returns the largest difference."""
    got = np.asarray(got) if got is not None else None
    want = np.asarray(want)
    where = f"{ex}: {what}" + (f" ({case})" if case else "")
    if got is None:
        raise Fail(f"FAIL {where}: yours is None, expected an array of shape {want.shape}",
                   "return the result (a new array)", "none")
    if got.shape != want.shape:
        key, why = _shape_diagnosis(got.shape, want.shape)
        raise Fail(f"FAIL {where}: yours has shape {got.shape}, the right one {want.shape}", why, key)
    if close(got, want, rtol):
        with np.errstate(all="ignore"):
            return float(np.abs(got - want).max(initial=0.0))
    index, yours, right = worst(got, want)
    key, why = diagnose(got, want, mistakes, batch)
    at = f"worst element {index}: " if got.ndim else ""
    raise Fail(f"FAIL {where}: {at}yours {yours:+.6e}, {source} {right:+.6e}", why, key)


def _shape_diagnosis(got, want):
    if tuple(got) == tuple(want)[::-1] and len(got) > 1:
        return "transpose", "the shape is the transpose of the right one"
    if int(np.prod(got)) == int(np.prod(want)):
        return "reshape", f"the right numbers may be there, in another shape: reshape to {tuple(want)}"
    return "shape", None


def diagnose(got, want, mistakes=(), batch=None):
    """(key, words) naming what ``got`` is wrong by, or (None, None) if nothing known fits."""
    with np.errstate(all="ignore"):
        for key, wrong, words in mistakes:
            wrong = wrong() if callable(wrong) else wrong
            if wrong is not None and close(got, wrong, 1e-6, 1e-9):
                return key, words
        if not np.isfinite(got).all() and np.isfinite(want).all():
            i = np.unravel_index(int(np.argmax(~np.isfinite(got))), got.shape)
            return "not-finite", f"yours is {got[i]} at {tuple(int(j) for j in i)} where the right value is finite"
        if not got.any() and want.any():
            return "zeros", "yours is all zeros: was the result computed but not added or returned?"
        found = _scale(got, want, batch) or _transposition(got, want)
        return found if found else (None, None)


def _scale(got, want, batch):
    """('batch-size' | 'sign' | 'scale', words) if got is one constant times want."""
    denom = float((want * want).sum())
    if denom == 0 or not np.isfinite(got).all():
        return None
    c = float((got * want).sum()) / denom
    if not close(got, c * want, 1e-6, 1e-9):
        return None
    if batch and batch > 1 and abs(c - batch) < 1e-6 * batch:
        return "batch-size", (f"off by the batch size: yours is N = {batch} times the right value "
                              "(a sum where the mean belongs)")
    if batch and batch > 1 and abs(c * batch - 1) < 1e-6:
        return "batch-size", (f"off by the batch size: yours is 1/N = 1/{batch} of the right value "
                              "(a mean where the sum belongs)")
    if abs(c + 1) < 1e-6:
        return "sign", "the sign is flipped: yours is −1 times the right value"
    return "scale", f"yours is {c:.6g} times the right value everywhere"


def _transposition(got, want):
    """('transpose', words) if got is want with its axes permuted, or a reshaped matrix transposed."""
    shape = want.shape
    for perm in itertools.permutations(range(want.ndim)):
        if perm == tuple(range(want.ndim)):
            continue
        t = want.transpose(perm)
        if t.shape == got.shape and close(got, t):
            return "transpose", f"the result is the transpose of the right one (its axes in the order {perm})"
    for i in range(1, want.ndim):
        a = int(np.prod(shape[:i]))
        t = want.reshape(a, -1).T
        if close(got, t.reshape(shape)):
            return "transpose", (f"the result is the transpose of the right one: the right numbers as a "
                                 f"({a}, {want.size // a}) matrix, transposed, then reshaped to {shape}")
    return None


def learner_error(what, error, path=None):
    """``Fail`` for an exception raised by the learner's code: NotImplementedError is 'not done yet';
    anything else is named with the line of the learner's file it came from."""
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if path and f.filename == str(path)] or frames[-1:]
    at = ""
    if mine:
        name, line = mine[-1].filename, mine[-1].lineno
        short = os.path.relpath(name) if os.path.isabs(name) else name
        at = f" ({short if not short.startswith('..') else name}, line {line}: {linecache.getline(name, line).strip()})"
    if isinstance(error, NotImplementedError):
        return Fail(f"NOT DONE {what}: your code raises NotImplementedError{at}",
                    "write the formula where the stub raises, then check again", "not-implemented")
    return Fail(f"FAIL {what}: your code raised {type(error).__name__}: {error}{at}", None, "error")


def call(what, path, fn, *args, **kw):
    """fn(*args, **kw), with any exception of the learner's code turned into a ``Fail``."""
    try:
        return fn(*args, **kw)
    except Fail:
        raise
    except Exception as e:                                   # the learner's code: any error is a verdict
        raise learner_error(what, e, path).with_traceback(None) from None
