"""python -m tinygan.exercises: list, start, check and train the exercises (``--help`` for each)."""
import argparse
import sys
from pathlib import Path

from . import DIRECTORY, EXERCISES, check, exercise, solution, start, status, train
from .demo import TOLERANCE

DESCRIPTION = """\
Learn by writing it: you write tinygan's backward passes, ten exercises in the order of
docs/tour.md, and the gradient checks grade them.

  1. list                  the exercises, done or not (from the files in ./exercises/)
  2. start NAME            copies the stub to ./exercises/NAME.py: signature, shapes,
                           formula, hints, and `raise NotImplementedError` where you write
  3. check NAME [FILE]     grades your file (default ./exercises/NAME.py) in float64 against
                           the library's own reference code, finite differences and PyTorch
                           (where installed); on a mistake it names the output or gradient,
                           its worst element and, where it knows one, the mistake
  4. train NAME [FILE]     trains a tiny DCGAN a few dozen steps with your piece swapped in,
                           beside the library's reference: it trains like the reference when
                           every loss agrees within {tol:g} (relative)
     solution NAME         prints the library's own code that answers the exercise
     notebooks [--out DIR] writes docs/tour.md and docs/exercises.md as Jupyter notebooks

Your file is loaded by its path and never changes the installed package. docs/exercises.md
walks through one exercise, with what `check` prints on a real mistake.
""".format(tol=TOLERANCE)


def _names():
    return [e.name for e in EXERCISES]


def parser():
    p = argparse.ArgumentParser(prog="python -m tinygan.exercises", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=DIRECTORY, help="the folder of your exercise files (default: ./%(default)s)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="the exercises in order, and which are done")
    s = sub.add_parser("start", help="copy an exercise's stub to DIR/NAME.py, where you write it")
    s.add_argument("name", choices=_names(), metavar="NAME")
    s.add_argument("--force", action="store_true", help="overwrite DIR/NAME.py with the stub")
    for command, words in (("check", "grade your code: the library's reference, finite differences, PyTorch"),
                           ("train", "train a tiny DCGAN with your piece in it, beside the reference")):
        c = sub.add_parser(command, help=words, description=words)
        c.add_argument("name", choices=_names(), metavar="NAME", help="the exercise (see list)")
        c.add_argument("file", nargs="?", metavar="FILE", help="your file (default: DIR/NAME.py)")
        if command == "train":
            c.add_argument("--steps", type=int, default=40, help="training steps (default %(default)s)")
    s = sub.add_parser("solution", help="print the library's own code that answers an exercise")
    s.add_argument("name", choices=_names(), metavar="NAME")
    s = sub.add_parser("notebooks", help="write docs/tour.md and docs/exercises.md as notebooks")
    s.add_argument("--out", default="build/notebooks", help="folder for the .ipynb files (default %(default)s)")
    s.add_argument("--docs", default=None, help="the folder of tour.md and exercises.md (default: the repository's)")
    return p


def _list(directory):
    rows = status(directory)
    print(f"{'':>3} {'exercise':<17} {'status':<8} what you write")
    for ex, state in rows:
        print(f"{ex.number:>3} {ex.name:<17} {state:<8} {ex.title}")
    done = sum(state == "passed" for _, state in rows)
    print(f"{done} of {len(rows)} passed. Files in {directory}/; begin with: python -m tinygan.exercises start "
          f"{next((ex.name for ex, state in rows if state != 'passed'), rows[0][0].name)}")


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "list":
        _list(args.dir)
        return 0
    if args.command == "start":
        try:
            target = start(args.name, args.dir, force=args.force)
        except FileExistsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        ex = exercise(args.name)
        print(f"wrote {target}: exercise {ex.number}, {ex.title}. Read first: {ex.read}.\n"
              f"Write it where the stub raises NotImplementedError, then: python -m tinygan.exercises check {args.name}")
        return 0
    if args.command == "check":
        return 0 if check(args.name, args.file, args.dir) else 1
    if args.command == "train":
        return 0 if train(args.name, args.file, args.dir, steps=args.steps) else 1
    if args.command == "solution":
        path, source = solution(args.name)
        print(f"# the library's own reference code: {path}\n{source}")
        return 0
    from .notebooks import write_notebooks
    for path in write_notebooks(Path(args.out), Path(args.docs) if args.docs else None):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
