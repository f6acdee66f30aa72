"""Hidden means hidden: a submission made only of what the student release ships scores nothing.

The attack: take every function and class that the release's check files and helpers define,
paste them into each stub, and point every unfinished function of the stub at the pasted
function whose name and arity fit best. Graded with the kit's hidden checks, that submission
must score under 10% of the points.
"""
import ast
import difflib
import shutil

import pytest

from grader import course, release, runner

pytestmark = pytest.mark.slow

SHIMS = "pytest = None  # the checks' imports of pytest and grader are not available to learner code\n"


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


def _unfinished(stub_tree):
    """Top-level functions and classes of the stub whose bodies raise NotImplementedError."""
    for node in stub_tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and "NotImplementedError" in ast.unparse(node):
            yield node


def _arity(node):
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        return len(init.args.args) - 1 if init else 0
    return len(node.args.args)


def copy_only_submission(stub_source, release_sources):
    pasted = [node for source in release_sources for node in _pasteable(ast.parse(source))]
    glue = []
    candidates = [n for n in pasted if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    for target in _unfinished(ast.parse(stub_source)):
        same_kind = [c for c in candidates if isinstance(c, type(target)) or isinstance(target, ast.FunctionDef)]
        fitting = [c for c in same_kind if _arity(c) in (_arity(target), _arity(target) + 1)]
        if not fitting:
            continue
        best = max(fitting, key=lambda c: difflib.SequenceMatcher(None, c.name.strip("_").lower(), target.name.lower()).ratio())
        if best.name == target.name:
            continue  # pasted under the stub's own name: it already replaces the stub
        if isinstance(best, ast.FunctionDef) and _arity(best) == _arity(target) + 1:
            glue.append(f"def {target.name}(*args, **kwargs):\n    import sys\n"
                        f"    return {best.name}(sys.modules[__name__], *args, **kwargs)\n")
        else:
            glue.append(f"{target.name} = {best.name}\n")
    pasted_code = "\n\n".join(ast.unparse(node) for node in pasted)
    return "\n\n".join([stub_source, SHIMS, pasted_code, *glue]) + "\n"


def test_a_submission_copied_from_the_release_scores_under_ten_percent(course_copy, tmp_path):
    shutil.copytree(course.find_root(__file__) / "grader", course_copy / "grader", ignore=release.IGNORED)
    shutil.copy(course.find_root(__file__) / "pyproject.toml", course_copy / "pyproject.toml")
    loaded = course.load(course_copy)
    out = tmp_path / "release"
    release.build_release(loaded, out)
    kit = course.load(release.build_kit(loaded, tmp_path / "kit"))
    score = max_score = 0
    scores = {}
    for topic in (t.id for t in kit.topics if kit.available(t.id)):
        sources = [p.read_text() for p in sorted((out / "tests" / "checks" / topic).glob("*.py"))]
        submission = tmp_path / "submission" / f"{topic}.py"
        submission.parent.mkdir(exist_ok=True)
        submission.write_text(copy_only_submission((out / "exercises" / f"{topic}.py").read_text(), sources))
        result = runner.run_topic(kit, topic, submission, hidden=True, seed=20261204)
        hidden = [c for c in result.checks if c.hidden]
        scores[topic] = (sum(c.score for c in hidden), sum(c.max_score for c in hidden), result.score, result.max_score)
        score += result.score
        max_score += result.max_score
    assert max_score > 0
    assert score < 0.10 * max_score, f"copy-only submission scored {score:g}/{max_score:g}: {scores}"
