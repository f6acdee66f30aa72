"""The exercise files are notebooks too (percent cells), and `%load_ext grader` gives Jupyter
and IPython the `%fmgrade check` magic, which runs the sandboxed check on the saved file."""

import ast

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
    assert progress.load(course_copy).topics["attention"]["exercises"]["attention"] == "passed"


def test_importing_grader_does_not_import_ipython():
    import subprocess
    import sys

    code = "import sys, grader; print('IPython' in sys.modules); print(callable(grader.load_ipython_extension))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
