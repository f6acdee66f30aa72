"""Hidden means hidden: a submission made only of what the student release ships scores nothing.

The attack, as a student with the release would make it: paste every function and class that
the release's check files and helpers define into each stub, then point each unfinished
function or class of the stub at the pasted one that passes the most visible checks of its
exercise (the visible checks are the student's oracle; the few best-named candidates are
tried). Graded with the kit's hidden checks, that submission must score under 10% of the points.
"""

import ast
import difflib
import re

import pytest

from grader import catalog as checks_index
from grader.judge import runner
from grader.results import PASSED

pytestmark = pytest.mark.slow

SHIMS = "pytest = None  # the checks' imports of pytest and grader are not available to learner code\n"
TRIED = 4  # candidates tried per unfinished function, best names first


def _pasteable(tree):
    """Top-level imports (not of pytest or grader), constants, functions and classes."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if not any(n.split(".")[0] in ("pytest", "grader") for n in names):
                yield node
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("test"):
            if not node.decorator_list:
                yield node
        elif isinstance(node, ast.Assign) and not any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            yield node


def _unfinished(stub_source):
    """(node, exercise ids) of the stub's top-level functions and classes that hold TODOs."""
    for node in ast.parse(stub_source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            exercises = set(re.findall(r"TODO\((\w+)\)", ast.get_source_segment(stub_source, node)))
            if exercises:
                yield node, exercises


def _signature(node):
    """(required positional parameters, all positional parameters) of a function or class."""
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if node is None:
            return 0, 0
        args = node.args.args[1:]
    else:
        args = node.args.args
    return len(args) - len(node.args.defaults), len(args)


def _takes_module(candidate, target):
    """A helper(module, ...) that takes the learner's module before the target's arguments."""
    return (
        isinstance(candidate, ast.FunctionDef)
        and candidate.args.args
        and candidate.args.args[0].arg in ("module", "impl", "m")
        and isinstance(target, ast.FunctionDef)
    )


def _fits(candidate, target):
    required, total = _signature(target)
    c_required, c_total = _signature(candidate)
    shift = 1 if _takes_module(candidate, target) else 0
    return c_required - shift <= max(required, 1) and c_total - shift >= required


def _glue(target, candidate):
    if _takes_module(candidate, target):
        return (
            f"def {target.name}(*args, **kwargs):\n    import sys\n"
            f"    return {candidate.name}(sys.modules[__name__], *args, **kwargs)\n"
        )
    return f"{target.name} = {candidate.name}\n"


def _candidates(target, pasted):
    fitting = [
        c
        for c in pasted
        if isinstance(c, (ast.FunctionDef, ast.ClassDef))
        and (isinstance(c, ast.ClassDef) or not isinstance(target, ast.ClassDef))
        and _fits(c, target)
        and c.name != target.name
    ]

    def similarity(c):
        return difflib.SequenceMatcher(None, c.name.strip("_").lower(), target.name.lower()).ratio()

    return sorted(fitting, key=similarity, reverse=True)[:TRIED]


def copy_only_submission(released, topic, workdir):
    """The best copy-only submission for `topic` of the release course `released`."""
    stub = (released.root / "exercises" / f"{topic}.py").read_text()
    sources = [p.read_text() for p in sorted(released.checks_dir(topic).glob("*.py"))]
    pasted = [node for source in sources for node in _pasteable(ast.parse(source))]
    base = "\n\n".join([stub, SHIMS, "\n\n".join(ast.unparse(node) for node in pasted)]) + "\n"
    visible = checks_index.scan(released.checks_dir(topic))
    glue = []
    for target, exercises in _unfinished(stub):
        only = [f"{c.file}::{c.name}" for e in exercises for c in visible.get(e, []) if not c.hidden]
        best, best_score = None, 0
        for candidate in _candidates(target, pasted) if only else []:
            attempt = workdir / f"{topic}.py"
            attempt.write_text(base + "\n".join(glue + [_glue(target, candidate)]))
            try:
                result = runner.run_topic(released, topic, attempt, isolation="none", only=only)
            except Exception:  # noqa: BLE001 - a candidate that breaks the run scores nothing
                continue
            score = sum(c.score for c in result.checks if c.status == PASSED)
            if score > best_score:
                best, best_score = candidate, score
        if best is not None:
            glue.append(_glue(target, best))
    return base + "\n".join(glue)


def test_a_submission_copied_from_the_release_scores_under_ten_percent(release_and_kit, tmp_path):
    released, kit = release_and_kit
    (tmp_path / "work").mkdir()
    (tmp_path / "submission").mkdir()
    score = max_score = 0
    scores = {}
    for topic in (t.id for t in kit.topics if kit.available(t.id)):
        submission = tmp_path / "submission" / f"{topic}.py"
        submission.write_text(copy_only_submission(released, topic, tmp_path / "work"))
        result = runner.run_topic(kit, topic, submission, hidden=True, seed=20261204)
        scores[topic] = f"{result.score:g}/{result.max_score:g}"
        score += result.score
        max_score += result.max_score
    assert max_score > 0
    assert score < 0.10 * max_score, f"copy-only submission scored {score:g}/{max_score:g}: {scores}"
