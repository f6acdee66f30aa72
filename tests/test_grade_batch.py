"""A batch loses nothing and waits on nothing forever: results are written as each submission
finishes, a submission over its time budget gets a timeout, a failing or dying grading costs
only its own submission, duplicate student ids are refused, and the kit must not change."""

import csv
import json
import operator
import os
import time

import pytest
from click.testing import CliRunner

from grader import cli
from grader import course as course_mod
from grader.instructor import batch, grade
from grader.sandbox import process as sandbox

HANG_AT_IMPORT = "while True:\n    pass\n"


@pytest.fixture
def kit(make_tiny, tmp_path):
    return make_tiny(tmp_path / "kit", call_timeout=2, topic_timeout=30)


def submission(tmp_path, name, source):
    folder = tmp_path / "subs" / name
    (folder / "exercises").mkdir(parents=True)
    (folder / "exercises" / "tiny.py").write_text(source)
    return folder


def solution(kit):
    return (kit / "solutions" / "tiny.py").read_text()


def run(*args):
    return CliRunner().invoke(cli.main, ["grade", *map(str, args)], catch_exceptions=False)


# --- the pool ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_pool_keeps_every_result_when_a_process_dies_or_overruns():
    tasks = [(operator.add, (1, 2)), (time.sleep, (600,)), (os._exit, (3,)), (operator.mul, (3, 4))]
    arrived = []
    results = batch.run(
        len(tasks),
        task=lambda i: tasks[i],
        fallback=lambda i, reason: (operator.add, (reason, "!")) if i != 2 else (os._exit, (4,)),
        last_resort=lambda i, reason: f"last resort: {reason}",
        jobs=2,
        on_result=lambda i, value: arrived.append(i),
        time_limit=5,
    )
    assert results[0] == 3 and results[3] == 12
    assert results[1] == "not graded: its grading did not finish within 5 s, so it was stopped!"
    assert results[2] == "last resort: not graded: its grading process died (exit status 3)"
    assert sorted(arrived) == [0, 1, 2, 3]


def test_an_exception_from_the_work_ends_the_run():
    with pytest.raises(ZeroDivisionError):
        batch.run(
            2,
            task=lambda i: (operator.truediv, (1, i)),
            fallback=None,
            last_resort=None,
            jobs=2,
            on_result=lambda i, value: None,
        )


# --- budgets ----------------------------------------------------------------------------------------


def test_a_spent_budget_gives_every_check_a_timeout_without_running_learner_code(kit, tmp_path):
    sub = submission(tmp_path, "alice", solution(kit))
    graded = grade.grade_submission(course_mod.load(kit), sub, ["tiny"], 1, seconds=1e-9)
    (topic,) = graded.report.topics
    assert graded.report.score == 0 and graded.report.max_score == 2
    assert {(c.status, c.message) for c in topic.checks} == {("timeout", graded.problem)}
    assert "budget of 1e-09 s" in graded.problem


BUDGET_REASON = "not finished: grading this submission took longer than its budget of 12 s"


@pytest.mark.slow
@pytest.mark.parametrize("level", ["process", "bwrap"])
def test_a_submission_that_hangs_at_import_times_out_under_either_isolation(kit, tmp_path, level):
    if level == "bwrap" and not sandbox.bwrap_available():
        pytest.skip("bubblewrap is not available here")
    subs = [submission(tmp_path, "hank", HANG_AT_IMPORT), submission(tmp_path, "alice", solution(kit))]
    hank, alice = grade.grade_many(course_mod.load(kit), subs, ["tiny"], 3, isolation=level, seconds=12)
    assert hank.problem == BUDGET_REASON and hank.report.topics[0].isolation == level
    assert {(c.status, c.message) for c in hank.report.topics[0].checks} == {("timeout", BUDGET_REASON)}
    assert alice.report.score == alice.report.max_score == 2


@pytest.mark.slow
def test_a_submission_that_hangs_at_import_times_out_and_the_parallel_batch_goes_on(kit, tmp_path):
    hanging = submission(tmp_path, "hank", HANG_AT_IMPORT)
    honest = submission(tmp_path, "alice", solution(kit))
    out = tmp_path / "out"
    result = run(hanging, honest, "--kit", kit, "--format", "json", "--output", out, "--timeout", 12, "--jobs", 2)
    assert result.exit_code == 1, result.output
    hank = json.loads((out / "hank.json").read_text())
    assert hank["score"] == 0 and hank["max_score"] == 2
    for check in hank["topics"][0]["checks"]:
        assert check["status"] == "timeout"
        assert check["message"] == BUDGET_REASON
    assert json.loads((out / "alice.json").read_text())["score"] == 2


def test_the_default_budget_comes_from_the_topics_limits(kit):
    course = course_mod.load(kit)
    limits = course.topic("tiny").limits
    from grader.instructor import budget

    assert budget.default_seconds(course, ["tiny"]) == limits.topic_timeout + limits.call_timeout + budget.WORKER_START


# --- one submission's failure ----------------------------------------------------------------------


def test_an_exception_while_grading_one_submission_gives_it_an_error_result(kit, tmp_path, monkeypatch):
    real = grade.grade_submission

    def flaky(course, sub, *args, **kwargs):
        if sub.name == "bob":
            raise RuntimeError("the disk went away")
        return real(course, sub, *args, **kwargs)

    monkeypatch.setattr(grade, "grade_submission", flaky)
    bob, alice = submission(tmp_path, "bob", solution(kit)), submission(tmp_path, "alice", solution(kit))
    out = tmp_path / "out"
    result = run(bob, alice, "--kit", kit, "--format", "json", "--output", out)
    assert result.exit_code == 2, result.output  # the grader failed: not the learner's doing
    failed = json.loads((out / "bob.json").read_text())
    reason = "not graded: the grader failed on this submission (RuntimeError: the disk went away)"
    assert failed["score"] == 0 and failed["max_score"] == 2 and failed["problem"] == reason
    assert {c["message"] for c in failed["topics"][0]["checks"]} == {reason}
    rows = {r["student"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert (rows["alice"]["total"], rows["bob"]["total"], rows["bob"]["max_total"]) == ("2", "0", "2")


def test_results_are_written_as_each_submission_finishes(kit, tmp_path, monkeypatch):
    """When bob is being graded, alice's file and a summary listing her are already there."""
    real, seen = grade.grade_submission, {}
    out = tmp_path / "out"

    def spy(course, sub, *args, **kwargs):
        if sub.name == "bob":
            seen["files"] = sorted(p.name for p in out.iterdir())
            seen["summary"] = (out / "summary.csv").read_text()
        return real(course, sub, *args, **kwargs)

    monkeypatch.setattr(grade, "grade_submission", spy)
    alice, bob = submission(tmp_path, "alice", solution(kit)), submission(tmp_path, "bob", "x = 1\n")
    assert run(alice, bob, "--kit", kit, "--format", "json", "--output", out).exit_code == 1
    assert seen["files"] == ["alice.json", "summary.csv"]
    assert [r["student"] for r in csv.DictReader(seen["summary"].splitlines())] == ["alice"]
    assert [r["student"] for r in csv.DictReader((out / "summary.csv").open())] == ["alice", "bob"]


# --- duplicate ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["alice", "Alice"])
def test_two_submissions_with_one_student_id_are_refused(kit, tmp_path, second):
    first = submission(tmp_path / "a", "alice", solution(kit))
    other = submission(tmp_path / "b", second, solution(kit))
    out = tmp_path / "out"
    result = run(first, other, "--kit", kit, "--output", out)
    assert result.exit_code == 2
    assert str(first) in result.output and str(other) in result.output
    assert "folder named for its student" in result.output
    assert not out.exists()


# --- the kit -----------------------------------------------------------------------------------------


def test_a_kit_changed_during_the_batch_stops_it_loudly(kit, tmp_path, monkeypatch):
    real = grade.grade_submission

    def tamper(course, sub, *args, **kwargs):
        graded = real(course, sub, *args, **kwargs)
        (kit / "tests" / "checks" / "tiny" / "conftest.py").write_text("# every later student passes\n")
        return graded

    monkeypatch.setattr(grade, "grade_submission", tamper)
    alice, bob = submission(tmp_path, "alice", solution(kit)), submission(tmp_path, "bob", solution(kit))
    out = tmp_path / "out"
    result = run(alice, bob, "--kit", kit, "--format", "json", "--output", out)
    assert result.exit_code == 2
    assert "the grading kit changed while grading" in result.output
    assert "tests/checks/tiny/conftest.py (added)" in result.output
    assert list(out.iterdir()) == []  # alice's grading may have been the culprit: not written; bob never graded


@pytest.mark.slow
def test_grading_in_parallel_leaves_the_kit_as_it_was(kit, tmp_path):
    """The grader writes no bytecode into the kit, so an honest batch never trips the check."""
    from grader.instructor import kit as kit_mod

    before = kit_mod.fingerprint(kit)
    subs = [submission(tmp_path, name, solution(kit)) for name in ("alice", "bob")]
    result = run(*subs, "--kit", kit, "--jobs", 2, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert kit_mod.fingerprint(kit) == before
    assert not list(kit.rglob("__pycache__"))


def test_an_output_that_cannot_be_written_is_a_clear_error(kit, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    subs = [submission(tmp_path, name, solution(kit)) for name in ("alice", "bob")]
    result = run(*subs, "--kit", kit, "--output", blocker)
    assert result.exit_code == 2 and f"cannot write {blocker}" in result.output
