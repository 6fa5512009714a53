"""The exercises (tinygan.exercises): every checker passes the library's own solution and a stub
filled in with the textbook formula, and names each common mistake (tests/exercise_answers.py);
``train`` tells a right layer from a wrong one; the CLI and docs/exercises.md's sessions are
what they say; the notebooks are generated from the markdown."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygan
from exercise_answers import MISTAKES, RIGHT, filled
from tinygan import exercises, nn
from tinygan.exercises import EXERCISES, check, load, start, status, train
from tinygan.exercises.__main__ import main
from tinygan.exercises.notebooks import notebook, write_notebooks

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "exercises.md"
NAMES = [e.name for e in EXERCISES]
STAGES = ["against the library's reference", "finite differences", "PyTorch"]
# What issue 29 asks every checker family to diagnose, one broken solution at least each.
ISSUE_DIAGNOSES = {"transpose", "batch-size", "overwritten", "batch-statistics", "half", "unstable-log", "frozen"}


def quiet_check(name, source, **kw):
    lines = []
    result = check(name, source, out=lines.append, **kw)
    return result, lines


def write(tmp_path, name, answer, stem=None):
    path = tmp_path / f"{stem or name}.py"
    path.write_text(filled(name, answer))
    return path


def torch_installed():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ----- the order and the solutions ------------------------------------------------------

def test_the_exercises_come_in_the_order_of_the_tour():
    assert NAMES == ["im2col", "col2im", "conv2d", "conv_transpose2d", "batchnorm2d", "leaky_relu", "tanh",
                     "bce_with_logits", "adam", "gan_step"]
    for ex in EXERCISES:
        text = ex.stub.read_text()
        assert text.startswith(f'"""Exercise {ex.number} of 10: ')
        assert "raise NotImplementedError" in text and "The solution is the library's own" in text


@pytest.mark.parametrize("name", NAMES)
def test_the_library_solution_passes_every_stage(name):
    result, lines = quiet_check(name, exercises.exercise(name).reference())
    assert result.ok and result.key is None, "\n".join(lines)
    marks = dict(m.groups() for m in map(re.compile(r"  (.+?) +(ok|skip|FAIL) ").match, lines) if m)
    assert list(marks) == STAGES
    assert marks["against the library's reference"] == "ok"
    assert marks["finite differences"] == ("skip" if name == "adam" else "ok")
    assert marks["PyTorch"] == ("ok" if torch_installed() else "skip")
    assert lines[-1] == f"PASS {name}"


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_written_with_the_textbook_formula_passes(tmp_path, name):
    result, lines = quiet_check(name, write(tmp_path, name, RIGHT[name]))
    assert result.ok, "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_as_shipped_is_not_done_yet(name):
    result, lines = quiet_check(name, exercises.exercise(name).stub)
    assert (result.ok, result.key) == (False, "not-implemented")
    assert lines[-2].startswith(f"NOT DONE {name}") and "raise NotImplementedError(" in lines[-2]


# ----- the mistakes and their diagnoses -------------------------------------------------

def test_every_diagnosis_the_issue_lists_has_a_broken_solution():
    assert ISSUE_DIAGNOSES <= {key for _, key, _, _ in MISTAKES}


@pytest.mark.parametrize("name, key, what, answer", MISTAKES, ids=[f"{n}-{k}" for n, k, _, _ in MISTAKES])
def test_each_mistake_gets_its_diagnosis(tmp_path, name, key, what, answer):
    result, lines = quiet_check(name, write(tmp_path, name, answer))
    assert (result.ok, result.key) == (False, key), f"{what}:\n" + "\n".join(lines)
    headline, diagnosis = lines[-2], lines[-1]
    assert headline.startswith(f"FAIL {name}: ") and diagnosis.startswith("  diagnosis: ")
    if key not in ("wrote-dout", "frozen-after"):          # those name the element or the flag instead
        number = r"[-+](\d\.\d{6}e[-+]\d\d|nan|inf)"
        assert re.search(rf"(worst element \([\d, ]+\): )?yours {number}[\w ().,]+ {number}", headline), headline


def test_the_verdict_names_the_gradient_its_worst_element_and_both_values(tmp_path):
    answer = next(a for n, k, _, a in MISTAKES if (n, k) == ("conv2d", "transpose"))
    result, lines = quiet_check("conv2d", write(tmp_path, "conv2d", answer))
    assert lines[-2] == ("FAIL conv2d: weight gradient (k3 s1 p1, x (2, 3, 5, 5)): worst element (1, 2, 2, 0): "
                         "yours +1.206261e+01, right -4.406749e+00")
    assert lines[-1] == ("  diagnosis: the result is the transpose of the right one: dW = dYᵀ·cols is (4, 27) = "
                         "(O, C·K·K) before the reshape; colsᵀ·dY is its transpose")


@pytest.mark.parametrize("name, key, stage", [
    ("conv2d", "transpose", "finite differences"), ("conv2d", "transpose", "PyTorch"),
    ("batchnorm2d", "batch-statistics", "finite differences"), ("gan_step", "half", "finite differences"),
    ("gan_step", "half", "PyTorch"), ("bce_with_logits", "no-dout", "finite differences"),
    ("im2col", "transpose", "PyTorch"), ("col2im", "overwritten", "finite differences")])
def test_finite_differences_and_pytorch_catch_mistakes_on_their_own(tmp_path, name, key, stage):
    if stage == "PyTorch" and not torch_installed():
        pytest.skip("PyTorch is not installed")
    answer = next(a for n, k, _, a in MISTAKES if (n, k) == (name, key))
    result, lines = quiet_check(name, write(tmp_path, name, answer), stages=[stage])
    assert not result.ok and lines[1].split()[-1] == "FAIL" and lines[1].strip().startswith(stage), lines
    expected = {"finite differences": ("finite differences", "adjoint"), "PyTorch": ("PyTorch",)}[stage]
    assert any(word in lines[-2] or word in lines[-1] for word in expected), lines
    if (name, key) != ("col2im", "overwritten"):         # there: 'not the adjoint of im2col'
        assert result.key == key, lines


def test_a_learner_file_that_raises_is_named_with_its_line(tmp_path):
    path = write(tmp_path, "tanh", {"Tanh.backward": "return dout * self.y.reshape(-1)"})
    result, lines = quiet_check("tanh", path)
    assert result.key == "error" and "your code raised ValueError" in lines[-1]
    assert f"{path.name}, line " in lines[-1] or str(path) in lines[-1]


@pytest.mark.parametrize("text, key", [(None, "no-file"), ("x = 1\n", "no-attr"),
                                       ("class Conv2d:\n    pass\n", "no-subclass"), ("def (:\n", "error")])
def test_a_file_that_is_not_an_answer_says_what_is_missing(tmp_path, text, key):
    path = tmp_path / "conv2d.py"
    if text is not None:
        path.write_text(text)
    result, lines = quiet_check("conv2d", path)
    assert (result.ok, result.key) == (False, key), lines


# ----- train ------------------------------------------------------------------------------

def _table(text):
    """{step: (loss_D yours, reference, loss_G yours, reference)} from train's printed table."""
    rows = [line.split() for line in text.splitlines() if re.match(r"\s+\d+\s+\d", line)]
    return {int(r[0]): tuple(map(float, r[1:])) for r in rows}


def test_train_with_a_right_conv2d_trains_like_the_reference(tmp_path):
    lines = []
    result = train("conv2d", write(tmp_path, "conv2d", RIGHT["conv2d"]), out=lines.append)
    assert result.ok, result.text
    table = _table(result.text)
    assert sorted(table) == [1, 5, 10, 15, 20, 25, 30, 35, 40]
    for d, d_ref, g, g_ref in table.values():
        assert abs(d - d_ref) <= 1e-6 and abs(g - g_ref) <= 1e-6
    assert table[40][0] != table[1][0]                       # it trained: the losses moved
    assert lines[-1].startswith("PASS train conv2d: it trains like the reference")


def test_train_with_a_wrong_conv2d_parts_from_the_reference(tmp_path):
    answer = next(a for n, k, _, a in MISTAKES if (n, k) == ("conv2d", "transpose"))
    result = train("conv2d", write(tmp_path, "conv2d", answer), out=lambda line: None)
    assert not result.ok
    assert "it does not train like the reference: loss_G parts from it at step 1" in result.text
    d, d_ref, g, g_ref = _table(result.text)[1]
    assert d == d_ref and abs(g - g_ref) > 1e-3                # D's loss is computed before D's first update


@pytest.mark.parametrize("name", ["im2col", "batchnorm2d", "adam", "gan_step"])
def test_train_takes_every_kind_of_piece_and_swaps_it_back(tmp_path, name):
    result = train(name, write(tmp_path, name, RIGHT[name]), steps=5, out=lambda line: None)
    assert result.ok, result.text
    from tinygan.nn import conv as conv_module
    im2col_module = sys.modules["tinygan.nn.im2col"]         # tinygan.nn's im2col is the function
    assert conv_module.im2col is im2col_module.im2col and conv_module.col2im is im2col_module.col2im
    G, D = tinygan.dcgan.build("paper", latent_dim=8, features=4, image_size=16)
    assert {type(m).__module__.split(".")[0] for m in G.modules() + D.modules()} == {"tinygan"}


def test_a_learner_file_never_changes_the_installed_package(tmp_path):
    before = {k: v for k, v in vars(nn).items()}
    impl = load("conv2d", write(tmp_path, "conv2d", RIGHT["conv2d"]))
    assert impl.__module__ == "tinygan_learner_conv2d" and "tinygan_learner_conv2d" not in sys.modules
    assert issubclass(impl, nn.Conv2d) and impl is not nn.Conv2d
    assert {k: v for k, v in vars(nn).items()} == before


# ----- the command line, the progress file, docs/exercises.md --------------------------------

def test_the_command_line_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "tinygan.exercises", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    for words in ("list", "start NAME", "check NAME [FILE]", "train NAME [FILE]", "finite differences"):
        assert words in done.stdout


def test_start_copies_the_stub_and_never_over_your_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = start("tanh")
    assert path == Path("exercises/tanh.py") and path.read_text() == exercises.exercise("tanh").stub.read_text()
    path.write_text("# my work\n")
    with pytest.raises(FileExistsError):
        start("tanh")
    assert main(["start", "tanh"]) == 1 and path.read_text() == "# my work\n"
    assert main(["start", "tanh", "--force"]) == 0 and "raise NotImplementedError" in path.read_text()


def test_list_shows_what_is_done(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {s for _, s in status()} == {"to do"}
    start("tanh"), start("adam"), start("conv2d")
    quiet_check("tanh", None)                                  # the stub: not done, still 'started'
    Path("exercises/adam.py").write_text(filled("adam", RIGHT["adam"]))
    quiet_check("adam", None)
    Path("exercises/conv2d.py").write_text(filled("conv2d", next(a for n, k, _, a in MISTAKES if n == "conv2d")))
    quiet_check("conv2d", None)
    states = {ex.name: s for ex, s in status()}
    assert (states["tanh"], states["adam"], states["conv2d"], states["im2col"]) == ("started", "passed", "failing",
                                                                                   "to do")
    Path("exercises/adam.py").write_text(Path("exercises/adam.py").read_text() + "# edited\n")
    assert dict((ex.name, s) for ex, s in status())["adam"] == "started"      # not checked since the edit


def _normalise(text):
    text = re.sub(r"\(\d+\.\d s\)", "(<seconds>)", text)
    text = re.sub(r"torch(\.optim\.Adam)? \d[\w.+]*", r"torch\1 <version>", text)
    text = re.sub(r"\d\.\de[-+]\d\d", "<small>", text)               # errors at the level of rounding
    return [line.rstrip() for line in text.strip().splitlines()]


def _console_blocks():
    """[(file to write, (exercise, 'right' or a mistake's key)) or None, [(argv, expected output)])]."""
    pattern = re.compile(r"(?:<!-- replay: (\S+) <- (\w+):([\w-]+) -->\n)?```console\n(.*?)```", re.S)
    blocks = []
    for m in pattern.finditer(DOC.read_text()):
        target, name, which, body = m.groups()
        commands = re.split(r"^\$ ", body, flags=re.M)[1:]
        runs = [(shlex.split(c.splitlines()[0]), "\n".join(c.splitlines()[1:])) for c in commands]
        blocks.append(((target, name, which) if target else None, runs))
    return blocks


def test_the_console_sessions_of_docs_exercises_md_are_real(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = _console_blocks()
    assert len(blocks) >= 4 and sum(len(runs) for _, runs in blocks) >= 7
    for replay, runs in blocks:
        if replay:
            target, name, which = replay
            answer = RIGHT[name] if which == "right" else next(a for n, k, _, a in MISTAKES if (n, k) == (name, which))
            Path(target).write_text(filled(name, answer))
        for argv, expected in runs:
            assert argv[:3] == ["python", "-m", "tinygan.exercises"], argv
            main(argv[3:])
            assert _normalise(capsys.readouterr().out) == _normalise(expected), " ".join(argv)


# ----- the house and the notebooks --------------------------------------------------------

def test_nothing_in_tinygan_imports_the_exercises():
    from test_house import graph
    users = [m for m, targets in graph().items() if not m.startswith("tinygan.exercises")
             and any(t.startswith("tinygan.exercises") for t in targets)]
    assert not users, users


def test_the_notebooks_are_the_markdown_as_code_cells(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    paths = write_notebooks(tmp_path)
    assert [p.name for p in paths] == ["tour.ipynb", "exercises.ipynb"]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and not any(line.startswith((">>>", "...")) for c in code for line in c.source.splitlines())
    tour = json.loads(paths[0].read_text())
    raising = [c for c in tour["cells"] if "raises-exception" in c["metadata"].get("tags", [])]
    assert len(raising) == 1 and "check_module(ForgetfulBatchNorm" in "".join(raising[0]["source"])
    cells = json.loads(paths[1].read_text())["cells"]
    checks = [c for c in cells if c["cell_type"] == "code" and 'check("batchnorm2d"' in "".join(c["source"])]
    assert len(checks) == 2
    shown = [c for c in cells if c["cell_type"] == "markdown" and "$ python -m tinygan.exercises" in "".join(c["source"])]
    assert shown                                                 # console sessions stay text


def test_the_notebook_generator_splits_cells_where_output_shows():
    md = "Intro\n\n```python\n>>> a = 1\n>>> a + 1\n2\n>>> b = 3\n>>> raise ValueError\nTraceback (most recent call last):\n" \
         "ValueError\n>>> b\n3\n\n```\n\nEnd\n\n```bash\nls\n```\n"
    cells = notebook(md, "x.md")["cells"]
    kinds = [(c["cell_type"], "".join(c["source"]), c["metadata"].get("tags", [])) for c in cells[1:]]
    assert kinds == [("markdown", "Intro", []), ("code", "a = 1\na + 1", []), ("code", "b = 3", []),
                     ("code", "raise ValueError", ["raises-exception"]), ("code", "b", []),
                     ("markdown", "End\n\n```bash\nls\n```", [])]
    assert np.all([c["id"] == f"cell-{i}" for i, c in enumerate(cells)])


def test_train_leaves_numpys_global_random_state_as_it_found_it(tmp_path):
    """A notebook's later cells draw from np.random: ``train`` must not move it on."""
    np.random.seed(2024)
    expected = np.random.random(3)
    np.random.seed(2024)
    result = train("leaky_relu", write(tmp_path, "leaky_relu", RIGHT["leaky_relu"]), steps=2, out=lambda line: None)
    assert result.ok
    np.testing.assert_array_equal(np.random.random(3), expected)
