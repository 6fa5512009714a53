"""The shape of the house: imports point down, functions fit on a screen.

Read with ``ast`` (nothing is imported or run), so an import written inside a function —
the kind that hides a cycle — counts as much as one at the top of a file.
"""
import ast
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinygan"
# The lowest rooms: each may import only what is listed (and itself); see README "Read the code".
LOW = {
    "tinygan.backend": set(),
    "tinygan.io": set(),
    "tinygan.progress": set(),
    "tinygan.parallel": set(),
    "tinygan.jit": set(),
    "tinygan.reference": set(),
    "tinygan.blas": set(),
    "tinygan.nn": {"tinygan.backend", "tinygan.jit", "tinygan.parallel", "tinygan.reference"},
    "tinygan.optim_fast": {"tinygan.backend", "tinygan.jit", "tinygan.parallel"},
    "tinygan.optim": {"tinygan.backend", "tinygan.nn", "tinygan.optim_fast", "tinygan.reference"},
    "tinygan.images": {"tinygan.backend", "tinygan.io"},
}
LONGEST_FUNCTION = 80            # lines, decorators and docstring included


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name):
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def imports_of(path):
    """Every tinygan module that ``path`` imports, at any depth of its code."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tinygan"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "tinygan":
                continue
            for a in node.names:                     # `from . import backend` names a module
                found.add(f"{target}.{a.name}" if is_module(f"{target}.{a.name}") else target)
    found.discard(me)
    return found


def graph(collapse=False):
    """{module: modules it imports}; with ``collapse`` every subpackage is one node."""
    def node(name):
        parts = name.split(".")
        if collapse and len(parts) > 2 and (PACKAGE / parts[1]).is_dir():
            return ".".join(parts[:2])                 # tinygan.nn.conv -> tinygan.nn
        return name
    g = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = node(module_name(path))
        g.setdefault(src, set()).update(node(t) for t in imports_of(path))
        g[src].discard(src)
    return g


def find_cycle(g):
    """One import cycle as a list of modules, or None (depth-first search, colouring nodes)."""
    colour, stack = {}, []

    def visit(u):
        colour[u] = "grey"
        stack.append(u)
        for v in sorted(g.get(u, ())):
            if colour.get(v) == "grey":
                return stack[stack.index(v):] + [v]
            if v not in colour:
                cycle = visit(v)
                if cycle:
                    return cycle
        colour[u] = "black"
        stack.pop()
        return None

    for u in sorted(g):
        if u not in colour:
            cycle = visit(u)
            if cycle:
                return cycle
    return None


@pytest.mark.parametrize("collapse", [False, True], ids=["between-modules", "between-subpackages"])
def test_no_circular_import(collapse):
    cycle = find_cycle(graph(collapse))
    assert cycle is None, "circular import: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_lower_rooms_import_nothing_above_them():
    g = graph(collapse=True)
    wrong = [f"{m} imports {t}" for m, allowed in LOW.items() for t in sorted(g.get(m, ())) if t not in allowed]
    assert not wrong, "; ".join(wrong)


def test_the_graph_sees_relative_and_lazy_imports():
    g = graph()
    assert "tinygan.backend" in g["tinygan.nn.conv"]                  # from .. import backend
    assert "tinygan.nn.layout" in g["tinygan.nn.conv_fast"]           # from .layout import ...
    assert {"tinygan.callbacks", "tinygan.dcgan"} <= g["tinygan.train"]


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                n = node.end_lineno - first + 1
                if n > LONGEST_FUNCTION:
                    long.append(f"{module_name(path)}.{node.name}: {n} lines")
    assert not long, f"functions over {LONGEST_FUNCTION} lines: " + ", ".join(long)


def test_train_run_is_a_loop_of_about_a_screen():
    tree = ast.parse((PACKAGE / "train.py").read_text())
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    assert run.end_lineno - run.lineno + 1 <= 60
    loops = [n for n in ast.walk(run) if isinstance(n, (ast.For, ast.While))]
    assert len(loops) >= 2 and any(isinstance(n, ast.For) for n in itertools.chain(*map(ast.walk, loops)))
