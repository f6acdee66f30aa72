"""The course is sound: checks pass on the solutions, stubs score 0 as "not started", and every
known mistake loses points with its diagnostic. Runs through the same runner as `fmgrade`."""
import functools

import pytest

from grader import course, mutants, runner
from grader.results import NOT_STARTED, PASSED

from conftest import ROOT

COURSE = course.load(ROOT)
TOPICS = [t.id for t in COURSE.topics if COURSE.available(t.id)]
MUTANTS = [(topic, m) for topic in TOPICS for m in mutants.load(COURSE, topic)]


@functools.lru_cache(maxsize=None)
def solution_result(topic):
    return runner.run_topic(COURSE, topic, COURSE.solution_path(topic), hidden=True)


@pytest.mark.parametrize("topic", TOPICS)
def test_solution_gets_full_marks_on_visible_and_hidden_checks(topic):
    result = solution_result(topic)
    problems = [f"{c.id}: {c.status}: {c.message}" for c in result.checks if c.status != PASSED]
    assert not problems, "\n".join(problems)
    assert result.score == result.max_score > 0


@pytest.mark.parametrize("topic", TOPICS)
def test_untouched_stub_scores_zero_and_reads_not_started(topic):
    result = runner.run_topic(COURSE, topic, COURSE.exercise_path(topic), hidden=True)
    assert result.score == 0
    wrong = [f"{c.id}: {c.status}: {c.message}" for c in result.checks if c.status != NOT_STARTED]
    assert not wrong, "\n".join(wrong)
    assert all(s.status == NOT_STARTED for s in result.exercises())


@pytest.mark.parametrize("topic", TOPICS)
def test_every_exercise_has_a_visible_and_a_hidden_check(topic):
    result = solution_result(topic)
    for exercise in COURSE.topic(topic).exercises:
        checks = [c for c in result.checks if c.exercise == exercise.id]
        assert any(not c.hidden for c in checks), f"{topic}.{exercise.id} has no visible check"
        assert any(c.hidden for c in checks), f"{topic}.{exercise.id} has no hidden check"


@pytest.mark.parametrize("topic, mutant", MUTANTS, ids=[f"{t}-{m.id}" for t, m in MUTANTS])
def test_mutant_loses_points_with_its_diagnostic(topic, mutant, tmp_path):
    # Only the named check, in-process: if it fails, the mutant has lost points. The worker
    # path is covered by the solution, stub, CLI and hostile tests.
    path = mutants.write_mutant(COURSE, topic, mutant, tmp_path)
    result = runner.run_topic(COURSE, topic, path, hidden=True, seed=1234, isolation="none", only=[mutant.check])
    by_id = {c.id: c for c in result.checks}
    assert mutant.check in by_id, f"mutant '{mutant.id}' names an unknown check {mutant.check}"
    check = by_id[mutant.check]
    assert check.status != PASSED, f"{mutant.check} passed on mutant '{mutant.id}' ({mutant.mistake})"
    assert mutant.diagnostic.lower() in check.message.lower(), (
        f"{mutant.check} on mutant '{mutant.id}' said: {check.message!r}; expected it to mention {mutant.diagnostic!r}"
    )


def test_topics_with_checks_have_at_least_eight_mutants():
    for topic in TOPICS:
        assert len(mutants.load(COURSE, topic)) >= 8, topic
