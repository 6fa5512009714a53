"""docs/tour.md and docs/exercises.md as Jupyter notebooks: one source, the markdown.

The markdown files are doctests (``>>>`` prompts, the expected output below each line). A
notebook wants plain code and shows its own output, so each ```python block becomes code
cells: the prompts stripped, the expected output dropped, a new cell after every line that
has output (so that its value shows, as a cell's last expression does) and a cell of its own,
tagged ``raises-exception``, for a line whose expected output is a traceback. The prose and
every other block (bash, console) stay markdown.

    python -m tinygan.exercises notebooks --out build/notebooks     (make notebooks)

writes ``tour.ipynb`` and ``exercises.ipynb`` (nbformat 4.5, unexecuted). ``make test``
executes them with nbmake; open them with Jupyter to run them cell by cell.
"""
import doctest
import json
import re
from pathlib import Path

SOURCES = ("tour.md", "exercises.md")
FENCE = re.compile(r"^```(\w*)\s*$")


def _cell(kind, text, n, tags=()):
    cell = {"cell_type": kind, "id": f"cell-{n}", "metadata": {"tags": list(tags)} if tags else {},
            "source": text.strip("\n").splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _code_groups(block):
    """[(code, raises)]: the block's doctest examples grouped into cells (or the block itself, if it has no prompts)."""
    examples = doctest.DocTestParser().get_examples(block)
    if not examples:
        return [(block, False)]
    groups, current = [], []
    for ex in examples:
        raises = ex.exc_msg is not None
        if raises:
            if current:
                groups.append(("".join(current), False))
            groups.append((ex.source, True))
            current = []
            continue
        current.append(ex.source)
        if ex.want.strip():
            groups.append(("".join(current), False))
            current = []
    if current:
        groups.append(("".join(current), False))
    return groups


def _blocks(text):
    """[(language or None for prose, text)] in the order of the file."""
    out, prose, code, lang = [], [], None, None
    for line in text.splitlines(keepends=True):
        m = FENCE.match(line.rstrip("\n"))
        if code is None and m:
            out.append((None, "".join(prose)))
            prose, code, lang = [], [line], m.group(1)
        elif code is not None and line.strip() == "```":
            code.append(line)
            out.append((lang, "".join(code)))
            code = None
        elif code is not None:
            code.append(line)
        else:
            prose.append(line)
    out.append((None, "".join(prose + (code or []))))
    return [(lang, t) for lang, t in out if t.strip()]


def notebook(markdown, source_name):
    """The notebook (a dict, nbformat 4.5) of one markdown file's text."""
    cells = [_cell("markdown", f"*Generated from `docs/{source_name}` by `python -m tinygan.exercises notebooks`: "
                               "edit the markdown, not this notebook.*", 0)]
    pending = []                                         # prose and non-python blocks gather into one cell
    for lang, text in _blocks(markdown):
        if lang != "python":
            pending.append(text)
            continue
        if pending:
            cells.append(_cell("markdown", "".join(pending), len(cells)))
            pending = []
        body = "".join(text.splitlines(keepends=True)[1:-1])
        for code, raises in _code_groups(body):
            cells.append(_cell("code", code, len(cells), ("raises-exception",) if raises else ()))
    if pending:
        cells.append(_cell("markdown", "".join(pending), len(cells)))
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                        "name": "python3"},
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def docs_folder():
    """The repository's docs/ (beside the tinygan package of a source checkout)."""
    return Path(__file__).resolve().parents[2] / "docs"


def write_notebooks(out, docs=None):
    """Write one .ipynb per markdown source into ``out``; returns their paths."""
    docs = Path(docs) if docs is not None else docs_folder()
    missing = [name for name in SOURCES if not (docs / name).is_file()]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} in {docs}: pass --docs, the folder of a tinygan checkout's docs")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SOURCES:
        path = out / (Path(name).stem + ".ipynb")
        path.write_text(json.dumps(notebook((docs / name).read_text(encoding="utf-8"), name), indent=1,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
