"""Learn by writing it: ten exercises in which you write tinygan's backward passes, graded.

In the order of docs/tour.md: im2col, col2im, Conv2d, ConvTranspose2d, BatchNorm2d's backward,
LeakyReLU's and Tanh's backward, BCEWithLogitsLoss, Adam's update, the GAN step's backward
passes. Each stub (``stubs/NAME.py``) is the signature, the shapes, the formula and a hint or
two, with ``raise NotImplementedError`` where you write. The solutions are the library's own
reference code (``tinygan.reference``). From a shell:

    python -m tinygan.exercises list                  # the exercises, done or not
    python -m tinygan.exercises start conv2d          # copies the stub to exercises/conv2d.py
    python -m tinygan.exercises check conv2d          # grades exercises/conv2d.py
    python -m tinygan.exercises train conv2d          # your Conv2d inside a DCGAN, beside the reference

or from Python or a notebook, with a file or the class itself:

    >>> from tinygan.exercises import check
    >>> check("conv2d", MyConv2d)                                  # doctest: +SKIP

``check`` runs your code in float64 against the library's reference (reference mode), finite
differences and PyTorch (where installed) and, on a mistake, names the output or gradient,
its worst element and, where one fits, the mistake. Your file is loaded by path; it never
changes the installed package, and what ``train`` swaps in is swapped back when it ends.

This package sits at the top of the house: it may import anything in tinygan, and nothing in
tinygan imports it.
"""
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import demo
from .catalog import BY_NAME, EXERCISES, Exercise
from .verdict import Fail, Skipped

__all__ = ["EXERCISES", "Exercise", "Result", "check", "train", "start", "load", "status", "solution", "exercise"]
DIRECTORY = "exercises"               # where ``start`` puts your copies, relative to the current folder


@dataclass
class Result:
    """What ``check`` or ``train`` found: ``ok``; ``key``, the diagnosis' short name; ``text``, the verdict."""
    name: str
    ok: bool
    key: str = None
    text: str = ""

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"<{self.name}: {'PASS' if self.ok else 'FAIL'}{'' if self.key is None else ' (' + self.key + ')'}>"


def exercise(name):
    """The ``Exercise`` called ``name``, or a ValueError that lists them."""
    if name not in BY_NAME:
        raise ValueError(f"no exercise {name!r}; the exercises are: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def load(name, path):
    """The learner's ``attr`` (class or function) from the file ``path``, loaded by path under a
    private module name: nothing of the installed package is replaced."""
    ex, path = exercise(name), Path(path)
    if not path.is_file():
        raise Fail(f"no file {path}: start the exercise with  python -m tinygan.exercises start {name}", None, "no-file")
    spec = importlib.util.spec_from_file_location(f"tinygan_learner_{name}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:                       # the learner's file: any error is a verdict, not a crash
        from .verdict import learner_error
        raise learner_error(f"{name}: loading {path}", e, str(path.resolve())) from None
    if not hasattr(module, ex.attr):
        raise Fail(f"FAIL {name}: {path} defines no {ex.attr}", f"the stub's {ex.attr} is what the check runs", "no-attr")
    impl = getattr(module, ex.attr)
    if ex.base is not None and not (isinstance(impl, type) and issubclass(impl, ex.base)):
        raise Fail(f"FAIL {name}: {ex.attr} in {path} is not a subclass of tinygan's {ex.base.__name__}",
                   f"keep the stub's  class {ex.attr}({ex.base.__module__}.{ex.base.__name__})", "no-subclass")
    return impl


def _resolve(name, source, directory):
    """(the learner's object, its file or None, a line saying what it is)."""
    ex = exercise(name)
    if source is None or isinstance(source, (str, os.PathLike)):
        path = Path(source) if source is not None else Path(directory) / f"{name}.py"
        return load(name, path), str(path.resolve()), f"{ex.attr} from {path}"
    kind = "class" if isinstance(source, type) else "function" if callable(source) else type(source).__name__
    return source, None, f"your {kind} {getattr(source, '__qualname__', ex.attr)}"


def check(name, source=None, directory=DIRECTORY, out=print, stages=None):
    """Grade exercise ``name``: ``source`` is a file, the learner's class or function itself, or None
    for ``directory/NAME.py``. Prints each stage and the verdict; returns a ``Result``.

    ``stages``: the titles to run (default all: the library's reference, finite differences, PyTorch)."""
    ex, lines = exercise(name), []

    def say(text):
        for line in text.split("\n"):
            lines.append(line)
            out(line)
    try:
        impl, path, what = _resolve(name, source, directory)
    except Fail as fail:
        say(fail.text())
        return Result(name, False, fail.key, "\n".join(lines))
    say(f"check {name}: {what}, in float64")
    result = _run_stages(ex, impl, path, stages, say)
    result.text = "\n".join(lines)
    if path is not None and Path(path) == (Path(directory) / f"{name}.py").resolve():
        _record(directory, name, path, result)
    return result


def _run_stages(ex, impl, path, only, say):
    state = np.random.get_state()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            for title, thunk in ex.stages(impl, path):
                if only is not None and title not in only:
                    continue
                try:
                    summary = thunk()
                except Fail as fail:
                    say(f"  {title:<33} FAIL")
                    say(fail.text())
                    return Result(ex.name, False, fail.key)
                mark = "skip" if isinstance(summary, Skipped) else "ok"
                say(f"  {title:<33} {mark:<5} {summary}")
    finally:
        np.random.set_state(state)
    say(f"PASS {ex.name}")
    return Result(ex.name, True)


def train(name, source=None, directory=DIRECTORY, steps=40, out=print):
    """Train the DCGAN a few dozen steps with the learner's piece swapped in, beside the reference."""
    ex = exercise(name)
    try:
        impl, path, _ = _resolve(name, source, directory)
    except Fail as fail:
        for line in fail.text().split("\n"):
            out(line)
        return Result(name, False, fail.key, fail.text())
    lines = []

    def say(text):
        for line in text.split("\n"):
            lines.append(line)
            out(line)
    ok, step, _ = demo.train_or_fail(ex, impl, steps, path, say)
    return Result(name, ok, None if ok else "parts", "\n".join(lines))


def start(name, directory=DIRECTORY, force=False):
    """Copy exercise ``name``'s stub to ``directory/NAME.py`` (never over a file, unless ``force``)."""
    ex, target = exercise(name), Path(directory) / f"{name}.py"
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists: edit it, or pass --force to start again from the stub")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ex.stub, target)
    return target


def _progress_file(directory):
    return Path(directory) / ".progress.json"


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _record(directory, name, path, result):
    progress = _read_progress(directory)
    progress[name] = {"sha256": _digest(path), "passed": result.ok, "key": result.key}
    _progress_file(directory).write_text(json.dumps(progress, indent=1) + "\n")


def _read_progress(directory):
    try:
        return json.loads(_progress_file(directory).read_text())
    except (OSError, ValueError):
        return {}


def status(directory=DIRECTORY):
    """[(exercise, status)]: 'to do' (no file), 'started' (not checked since the last edit, or not
    done), 'failing' or 'passed' (its last check, on the file as it is now)."""
    progress, rows = _read_progress(directory), []
    for ex in EXERCISES:
        path = Path(directory) / f"{ex.name}.py"
        if not path.is_file():
            rows.append((ex, "to do"))
            continue
        seen = progress.get(ex.name, {})
        if seen.get("sha256") == _digest(path) and seen.get("key") != "not-implemented":
            rows.append((ex, "passed" if seen.get("passed") else "failing"))
        else:
            rows.append((ex, "started"))
    return rows


def solution(name):
    """(file, source) of the library's own reference code that answers exercise ``name``."""
    obj, parts = exercise(name).solution
    if not isinstance(obj, type):
        return inspect.getsourcefile(obj), inspect.getsource(obj)
    return inspect.getsourcefile(obj), "\n".join(inspect.getsource(getattr(obj, p)) for p in parts)
