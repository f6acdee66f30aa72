"""The exercise files are notebooks too (percent cells), and `%load_ext grader` gives Jupyter
and IPython the `%fmgrade check` magic, which runs the sandboxed check on the saved file."""

import ast
import re

import pytest

from grader import course, stubgen
from grader.stubgen import CODE_CELL, MARKDOWN_CELL, NOTEBOOK_HEADER, StubError

ROOT = course.find_root(__file__)
EXERCISES = sorted((ROOT / "exercises").glob("*.py"))


# --- percent cells -------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_every_exercise_file_is_a_percent_notebook_and_still_a_module(path):
    text = path.read_text()
    tree = ast.parse(text)
    assert text.startswith(NOTEBOOK_HEADER)
    lines = text.splitlines()
    docstring_line = tree.body[0].lineno
    assert lines[docstring_line - 2] == MARKDOWN_CELL  # the docstring is the first cell, as markdown
    assert ast.get_docstring(tree)  # ...and still the module's docstring
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            above = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 2
            while lines[above].startswith("#") and lines[above] != CODE_CELL:
                above -= 1  # the comments just above a definition belong to its cell
            assert lines[above] == CODE_CELL, f"{path.name}:{node.lineno}: no cell marker above `{node.name}`"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_jupytext_reads_an_exercise_into_cells_and_writes_it_back_as_the_same_code(path):
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and kinds[1:] == ["code"] * (len(kinds) - 1)
    assert notebook.cells[0].source == ast.get_docstring(ast.parse(path.read_text())).strip()
    tree = ast.parse(path.read_text())
    definitions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    cells_with_a_definition = [
        c for c in notebook.cells[1:] if c.source.lstrip().startswith(("def ", "class ", "@", "#"))
    ]
    assert len(cells_with_a_definition) >= len(definitions)
    written = ast.parse(jupytext.writes(notebook, fmt="py:percent"))  # what saving from Jupyter writes
    assert ast.get_docstring(written) == ast.get_docstring(
        tree
    )  # the docstring stays a docstring (new lines around it)
    assert [ast.dump(n) for n in written.body[1:]] == [ast.dump(n) for n in tree.body[1:]]  # and the code the same


def test_the_notebook_extra_brings_jupyterlab_which_opens_an_exercise_as_a_notebook():
    """What the README promises of `pip install -e ".[notebook]"`: JupyterLab, whose server (with
    jupytext's contents manager) serves `exercises/attention.py` as a notebook of cells."""
    from importlib import metadata

    notebook_extra = [r for r in metadata.requires("fmgrade") or [] if 'extra == "notebook"' in r]
    assert {re.match(r"[\w-]+", r).group().lower() for r in notebook_extra} >= {"jupyterlab", "jupytext", "ipython"}
    pytest.importorskip("jupyterlab")
    jupytext = pytest.importorskip("jupytext")
    manager = jupytext.TextFileContentsManager(root_dir=str(ROOT))
    model = manager.get("exercises/attention.py", type="notebook")
    cells = model["content"]["cells"]
    assert model["type"] == "notebook" and cells[0]["cell_type"] == "markdown"
    assert any("def attention(" in cell["source"] for cell in cells if cell["cell_type"] == "code")


def test_cells_go_above_decorators_and_comments_and_leave_marked_files_alone():
    source = (
        '"""Doc."""\nimport torch\n\n\n# a comment\n@decorator\ndef f():\n    pass\n\n\nX = 1\n\n\nclass A:\n    pass\n'
    )
    out = stubgen.add_cells(source)
    assert out == (
        NOTEBOOK_HEADER + f'\n{MARKDOWN_CELL}\n"""Doc."""\n\n{CODE_CELL}\nimport torch\n\n\n'
        f"{CODE_CELL}\n# a comment\n@decorator\ndef f():\n    pass\n\n\n{CODE_CELL}\nX = 1\n\n\n"
        f"{CODE_CELL}\nclass A:\n    pass\n"
    )
    assert stubgen.add_cells(out) == out


def test_a_stub_that_is_not_python_is_named():
    with pytest.raises(StubError, match=r"solutions/x.py:2: the stub is not valid Python"):
        stubgen.add_cells("x = 1\ndef f(:\n", "solutions/x.py")


def test_solutions_have_no_cells():
    for path in (ROOT / "solutions").glob("*.py"):
        assert CODE_CELL not in path.read_text(), path


# --- the IPython extension -----------------------------------------------------------------


@pytest.fixture
def shell():
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "grader")
    return ipython


@pytest.mark.parametrize(
    "line, message",
    [
        ("", "usage: %fmgrade check TOPIC"),
        ("progress", "usage: %fmgrade check TOPIC"),
        ("check", "usage: %fmgrade check TOPIC"),
        ("check 'attention", "No closing quotation"),
        ("check nope", "no topic 'nope'"),
    ],
)
def test_the_magic_explains_bad_input_without_a_traceback(shell, course_copy, monkeypatch, line, message):
    from IPython.core.error import UsageError

    monkeypatch.chdir(course_copy)
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("fmgrade", line)


@pytest.mark.slow
def test_the_magic_checks_the_saved_file_in_the_sandbox_and_shows_an_escaped_table(
    shell, course_copy, solve_exercise, monkeypatch
):
    from grader.learner import progress

    path = solve_exercise(course_copy, "attention", "attention")
    text = path.read_text()
    start = text.index("def subsequent_mask(size):")
    todo = text.index("    # TODO(subsequent_mask)", start)
    path.write_text(text[:todo] + '    raise ValueError("<script>alert(1)</script> & more")\n' + text[todo:])
    monkeypatch.chdir(course_copy / "exercises")  # a notebook opened next to the exercise file

    shown = shell.run_line_magic("fmgrade", "check attention")

    page = shown._repr_html_()
    assert "<table>" in page and "<code>attention</code>" in page and ">passed<" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "<script>" not in page
    assert shown.result.isolation in ("bwrap", "process")  # the same sandbox as `fmgrade check`
    assert not shown.passed
    assert "attention  5/5" in repr(shown)
    assert "checked the saved file exercises/attention.py, saved at" in page
    assert "Next: fix <code>subsequent_mask</code>" in page and "%fmgrade hint attention subsequent_mask" in page
    assert progress.load(course_copy).topics["attention"]["exercises"]["attention"] == "passed"


def test_importing_grader_does_not_import_ipython():
    import subprocess
    import sys

    code = "import sys, grader; print('IPython' in sys.modules); print(callable(grader.load_ipython_extension))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


# --- what the notebook shows ----------------------------------------------------------------


def _result(statuses):
    from grader.results import CheckResult, TopicResult

    messages = {"failed": "rows of `p_attn` sum to 1.73, not 1: softmax over the wrong dimension?"}
    checks = [
        CheckResult(f"t.py::test_{e}", e, status, 1 if status == "passed" else 0, 1, message=messages.get(status, ""))
        for e, status in statuses.items()
    ]
    return TopicResult("attention", checks, isolation="bwrap")


def test_the_table_renders_code_colours_blocked_apart_and_says_what_it_checked_and_what_next():
    pytest.importorskip("IPython")
    from grader.learner import notebook

    loaded = course.load(ROOT)
    result = _result({"attention": "failed", "subsequent_mask": "passed", "multi_head_attention": "passed"})
    shown = notebook.CheckedTopic(loaded, result, saved_at=0.0, next_step="Next: fix `attention`: rows differ")
    page = shown._repr_html_()
    assert "`" not in page  # every `code` became <code>
    assert "<code>p_attn</code>" in page and "<code>attention</code>" in page
    colour = {}
    for status in ("failed", "blocked", "passed"):
        match = re.search(rf'<td style="color:(#[0-9a-f]+);font-weight:bold">{status}</td>', page)
        assert match, status
        colour[status] = match.group(1)
    assert len(set(colour.values())) == 3  # blocked is not shown as failed
    assert "checked the saved file exercises/attention.py, saved at" in page
    assert "Next: fix <code>attention</code>" in page
    assert "checked the saved file" in repr(shown) and "Next: fix" in repr(shown)


def test_the_hint_magic_reveals_one_more_hint_each_time(shell, course_copy, monkeypatch):
    from grader.learner import progress

    monkeypatch.chdir(course_copy)
    first = shell.run_line_magic("fmgrade", "hint attention attention")
    assert "1. " in repr(first) and "2. " not in repr(first)
    assert "%fmgrade hint attention attention" in repr(first)  # what to type here for the next one
    second = shell.run_line_magic("fmgrade", "hint attention attention")
    assert "2. " in repr(second) and "<code>%fmgrade hint attention attention</code>" in second._repr_html_()
    assert progress.load(course_copy).hints["attention"]["attention"] == 2


def test_a_python_without_torch_is_named_instead_of_a_traceback(shell, course_copy, monkeypatch):
    import sys

    from IPython.core.error import UsageError

    from grader.learner import check

    monkeypatch.setattr(check, "_find_spec", lambda name: None)
    monkeypatch.chdir(course_copy)
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("fmgrade", "check attention")
    message = str(raised.value)
    assert "no torch in this interpreter" in message and sys.executable in message
    assert "-m pip install torch" in message and "kernel" in message


def test_torch_only_in_the_user_site_is_named(monkeypatch, tmp_path):
    import importlib.machinery
    import site

    from grader.learner import check

    user_site = tmp_path / "user-site"
    monkeypatch.setattr(site, "ENABLE_USER_SITE", True)
    monkeypatch.setattr(site, "getusersitepackages", lambda: str(user_site))
    spec = importlib.machinery.ModuleSpec("torch", None, origin=str(user_site / "torch" / "__init__.py"))
    monkeypatch.setattr(check, "_find_spec", lambda name: spec)
    assert "user site-packages or PYTHONPATH" in check.interpreter_problem()
    monkeypatch.setattr(check, "_find_spec", lambda name: importlib.util.find_spec(name))
    assert check.interpreter_problem() is None  # this test run's own torch is fine
