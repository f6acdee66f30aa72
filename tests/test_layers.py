"""The package's folders are layers, and imports point down only (CONTRIBUTING.md has the map).

    cli/                         the `fmgrade` command (and grader/__init__, __main__: entry points)
    instructor/                  release, dev check, grade, platforms, class report: not in the student release
    learner/                     check, watch, hint, reset, progress, notebook
    judge/                       pytest run, plugin, verdicts, recorded answers
    sandbox/                     the worker and what keeps it apart
    grader/*.py (the core)       course, results, checking helpers, files

Every import counts, also one inside a function: a lazy import still ties two modules together,
and the student release (grader/ minus instructor/) must import without the instructor's side.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
LAYERS = ["core", "sandbox", "judge", "learner", "instructor", "cli"]
ENTRY_POINTS = {"grader", "grader.__main__"}  # `%load_ext grader` and `python -m grader` start the command


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module):
    parts = module.split(".")
    if module in ENTRY_POINTS:
        return "cli"
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "core"


def imports_of(path, module):
    """Every grader module `path` imports (at the top or inside a function), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [(base, alias.name) for alias in node.names]
        else:
            continue
        for base, name in names:
            if base != "grader" and not base.startswith("grader."):
                continue
            target = f"{base}.{name}" if name and _is_module(f"{base}.{name}") else base
            yield target, node.lineno


def _is_module(name):
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def import_graph():
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        graph[module] = [(target, line, path) for target, line in imports_of(path, module) if target != module]
    return graph


def upward_imports(graph):
    found = []
    for module, targets in graph.items():
        for target, line, path in targets:
            if target == "grader":
                continue  # a name of the package itself (`from grader import load_ipython_extension`)
            if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module)):
                found.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({layer_of(module)}) "
                    f"imports {target} ({layer_of(target)})"
                )
    return found


def circles(graph):
    """Each import circle between modules once, as 'a -> b -> a'."""
    edges = {m: sorted({t for t, _, _ in targets if t in graph and t != "grader"}) for m, targets in graph.items()}
    found, done = set(), set()

    def visit(module, stack):
        if module in stack:
            loop = stack[stack.index(module) :]
            turn = loop.index(min(loop))
            found.add(" -> ".join(loop[turn:] + loop[:turn] + [min(loop)]))
            return
        if module in done:
            return
        for target in edges.get(module, []):
            visit(target, stack + [module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    return sorted(found)


def test_imports_point_down_only():
    assert upward_imports(import_graph()) == []


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_the_finders_find_what_they_are_for():
    """The two tests above can fail: a made-up upward import and a made-up circle are found."""
    graph = {
        "grader.course": [("grader.judge.runner", 3, PACKAGE / "course.py")],
        "grader.judge.runner": [("grader.course", 5, PACKAGE / "judge" / "runner.py")],
    }
    assert upward_imports(graph) == ["grader/course.py:3: grader.course (core) imports grader.judge.runner (judge)"]
    assert circles(graph) == ["grader.course -> grader.judge.runner -> grader.course"]


@pytest.mark.parametrize(
    "module",
    ["grader.cli.learner", "grader.learner.check", "grader.judge.runner", "grader.cli.show", "grader.learner.pictures"],
)
def test_learner_side_imports_without_the_instructor_package(module, tmp_path):
    """The student release is grader/ minus instructor/: what learners run imports without it."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(PACKAGE, tmp_path / "grader", ignore=shutil.ignore_patterns("instructor", "__pycache__"))
    # the editable install's finder would find grader.instructor in this checkout: only the copy counts
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
        f"import {module}, grader.cli; assert grader.cli.__file__.startswith({str(tmp_path)!r}); from click.testing import CliRunner; print(CliRunner().invoke(grader.cli.main, ['--help']).output)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "PYTHONNOUSERSITE": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "check" in done.stdout and "grade" not in done.stdout.split("Commands:")[-1]
