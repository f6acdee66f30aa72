"""`fmgrade dev check`: prove the course is sound, topic by topic.

For every available topic: the stub is what the generator makes and keeps the solution's
signatures; every check passes on the solution and fails on the stub; every exercise has a
visible and a hidden check; every mutant fails its named check with its diagnostic, and no
check of another exercise names a known mistake on it (see grader.judge.naming). The
solutions are trusted, so everything runs in this process, which keeps it fast.
"""

import ast
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader import stubgen
from grader.course import CourseError
from grader.instructor import mutants
from grader.judge import runner
from grader.results import BLOCKED, PASSED


@dataclass(frozen=True)
class Finding:
    topic: str
    what: str
    ok: bool
    detail: str = ""


def check_course(course, topics=None):
    findings = []
    for topic in course.topics:
        if topics and topic.id not in topics:
            continue
        if not course.available(topic.id):
            findings.append(Finding(topic.id, "available", True, "not yet available (no stub or checks): skipped"))
            continue
        findings += prove_topic(course, topic)
    return findings


def prove_topic(course, topic):
    found = [_stub_in_sync(course, topic), _signatures_kept(course, topic)]
    try:
        solution = runner.run_topic(
            course, topic.id, course.solution_path(topic.id), hidden=True, isolation="none", seed=0
        )
        stub = runner.run_topic(course, topic.id, course.exercise_path(topic.id), hidden=True, isolation="none", seed=0)
    except CourseError as exc:
        return found + [Finding(topic.id, "checks run", False, str(exc))]
    failing = [f"{c.id} ({c.status}: {c.message[:120]})" for c in solution.checks if c.status != PASSED]
    found.append(
        Finding(
            topic.id,
            "solution passes every check",
            not failing,
            "; ".join(failing) or f"{len(solution.checks)} checks, {solution.max_score:g} points",
        )
    )
    passing = [c.id for c in stub.checks if c.status == PASSED]
    found.append(
        Finding(
            topic.id,
            "stub fails every check",
            not passing,
            _some("passes on the stub", passing) if passing else "all not started",
        )
    )
    found.append(visible_and_hidden(topic, solution))
    found.append(_recording_current(course, topic))
    found += _mutants(course, topic)
    return found


def _recording_current(course, topic):
    from grader.instructor import record

    try:
        problems = record.drift(course, topic.id)
    except CourseError as exc:
        problems = [str(exc)]
    return Finding(topic.id, "recorded answers match the solution", not problems, "; ".join(problems))


def _some(label, items, shown=3):
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{label}: {', '.join(items[:shown])}{more}"


def _stub_in_sync(course, topic):
    try:
        expected = stubgen.stub_for(course, topic.id)
    except (stubgen.StubError, OSError) as exc:
        return Finding(topic.id, "stub generated from solution", False, str(exc))
    actual = course.exercise_path(topic.id).read_text(encoding="utf-8")
    ok = actual == expected
    return Finding(
        topic.id,
        "stub generated from solution",
        ok,
        ""
        if ok
        else f"exercises/{topic.id}.py differs from what solutions/{topic.id}.py generates (run `fmgrade dev stubs`)",
    )


def signatures(path):
    """{"name" or "Class.method": arguments} of the module's functions and methods; functions
    nested inside a body (an L-BFGS closure in an answer region) are the answer's business."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = ast.unparse(node.args)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = ast.unparse(item.args)
    return found


def _signatures_kept(course, topic):
    solution, stub = signatures(course.solution_path(topic.id)), signatures(course.exercise_path(topic.id))
    differ = sorted(name for name in solution.keys() | stub.keys() if solution.get(name) != stub.get(name))
    return Finding(
        topic.id,
        "stub keeps the signatures",
        not differ,
        ("differ: " + ", ".join(differ)) if differ else f"{len(solution)} functions",
    )


def visible_and_hidden(topic, result):
    missing = []
    for exercise in topic.exercises:
        kinds = {c.hidden for c in result.checks if c.exercise == exercise.id}
        if False not in kinds:
            missing.append(f"{exercise.id} has no visible check")
        if True not in kinds:
            missing.append(f"{exercise.id} has no hidden check")
    return Finding(topic.id, "visible and hidden check per exercise", not missing, "; ".join(missing))


def _mutants(course, topic):
    try:
        known = mutants.load(course, topic.id)
    except CourseError as exc:
        return [Finding(topic.id, "mutants", False, str(exc))]
    if not known:
        return [Finding(topic.id, "mutants", False, f"no mutants in tests/mutants/{topic.id}/{mutants.MUTANTS_FILE}")]
    problems = []
    with tempfile.TemporaryDirectory(prefix="fmgrade-mutant-") as folder:
        for mutant in known:
            problem = mutant_problem(course, topic, mutant, Path(folder))
            if problem:
                problems.append(f"{mutant.id}: {problem}")
    return [
        Finding(
            topic.id, f"mutants caught ({len(known) - len(problems)}/{len(known)})", not problems, "; ".join(problems)
        )
    ]


def mutant_problem(course, topic, mutant, folder):
    """'' when `mutant` fails its named check with its diagnostic and no check of another
    exercise names a mistake on it, else what is wrong. Every check runs (those of exercises
    that build on the mutant's are blocked, which is quick)."""
    try:
        path = mutants.write_mutant(course, topic.id, mutant, folder)
        result = runner.run_topic(course, topic.id, path, hidden=True, isolation="none", seed=0)
    except CourseError as exc:
        return str(exc)
    check = next((c for c in result.checks if c.id == mutant.check), None)
    if check is None:
        return f"names an unknown check {mutant.check}"
    home = mutants.exercise_of(course, topic.id, mutant) or check.exercise
    misnamed = [c for c in result.checks if c.mistake and c.status != PASSED and c.exercise != home]
    if misnamed:
        return "; ".join(
            f"a mistake of exercise {home} is named by {c.id} of exercise {c.exercise} (as '{c.mistake}')"
            for c in misnamed
        )
    if check.status == BLOCKED:  # a mistake in an exercise the check's builds on: run the check alone
        try:
            alone = runner.run_topic(course, topic.id, path, hidden=True, isolation="none", seed=0, only=[mutant.check])
        except CourseError as exc:
            return str(exc)
        check = next((c for c in alone.checks if c.id == mutant.check), check)
    if check.status == PASSED:
        return f"survives: {mutant.check} passes ({mutant.mistake})"
    if mutant.diagnostic and mutant.diagnostic.lower() not in check.message.lower():
        return f"{mutant.check} does not say {mutant.diagnostic!r}; it says {check.message[:160]!r}"
    if mutant.message and not mutant.diagnostic and check.mistake != mutant.id:
        named = f"names mistake '{check.mistake}'" if check.mistake else f"says {check.message[:160]!r}"
        return f"{mutant.check} does not name this mistake ({named}); record it: `fmgrade dev record`"
    return ""
