"""The course is sound: through the sandboxed worker, as learners and CI run it, solutions get
full marks and untouched stubs score 0 as "not started"; in-process, every known mistake
loses points with its diagnostic (the same functions `fmgrade dev check` uses)."""

import os

import pytest

from grader import course
from grader.instructor import devcheck, mutants
from grader.judge import runner
from grader.results import BLOCKED, NOT_STARTED, PASSED

ROOT = course.find_root(__file__)


COURSE = course.load(ROOT)
TOPICS = [t.id for t in COURSE.topics if COURSE.available(t.id)]
# The fast lane (-m "not slow") grades one topic in the worker and two mutants a topic; the whole
# suite runs every topic and every mutant.
FAST_TOPIC, FAST_MUTANTS = "attention", 2
WORKER_TOPICS = [pytest.param(t, marks=[] if t == FAST_TOPIC else [pytest.mark.slow]) for t in TOPICS]
MUTANTS = [
    pytest.param(topic, m, id=f"{topic}-{m.id}", marks=[pytest.mark.slow] if i >= FAST_MUTANTS else [])
    for topic in TOPICS
    for i, m in enumerate(mutants.load(COURSE, topic))
]


@pytest.mark.parametrize("topic", WORKER_TOPICS)
def test_solution_gets_full_marks_in_the_worker(topic):
    result = runner.run_topic(COURSE, topic, COURSE.solution_path(topic), hidden=True)
    problems = [f"{c.id}: {c.status}: {c.message}" for c in result.checks if c.status != PASSED]
    assert not problems, "\n".join(problems)
    assert result.score == result.max_score > 0
    assert result.isolation in ("bwrap", "namespaces", "process")


@pytest.mark.parametrize("topic", WORKER_TOPICS)
def test_untouched_stub_scores_zero_and_reads_not_started(topic):
    """Every check reads "not started", or "blocked" when its exercise builds on one not started yet."""
    result = runner.run_topic(COURSE, topic, COURSE.exercise_path(topic), hidden=True)
    assert result.score == 0
    wrong = [f"{c.id}: {c.status}: {c.message}" for c in result.checks if c.status not in (NOT_STARTED, BLOCKED)]
    assert not wrong, "\n".join(wrong)
    depends = {e.id: e.depends for e in COURSE.topic(topic).exercises}
    for summary in result.exercises():
        assert summary.status == (BLOCKED if depends[summary.id] else NOT_STARTED), summary


@pytest.mark.parametrize("topic", TOPICS)
def test_every_exercise_has_a_visible_and_a_hidden_check(topic):
    result = runner.run_topic(COURSE, topic, COURSE.solution_path(topic), hidden=True, isolation="none")
    finding = devcheck.visible_and_hidden(COURSE.topic(topic), result)
    assert finding.ok, finding.detail


@pytest.mark.parametrize("topic, mutant", MUTANTS)
def test_mutant_loses_points_with_its_diagnostic(topic, mutant, tmp_path):
    assert devcheck.mutant_problem(COURSE, COURSE.topic(topic), mutant, tmp_path) == ""


def test_topics_with_checks_have_at_least_eight_mutants():
    for topic in TOPICS:
        assert len(mutants.load(COURSE, topic)) >= 8, topic


def test_a_check_reads_course_yml_once(tiny_course, monkeypatch):
    """The runner hands its loaded course to pytest: the fixtures do not load course.yml again."""
    from grader import course as course_mod
    from grader.judge import plugin

    loaded = course_mod.load(tiny_course)

    def no_second_load(*args, **kwargs):
        raise AssertionError("course.yml loaded again inside pytest")

    monkeypatch.setattr(plugin.course_mod, "load", no_second_load)
    result = runner.run_topic(loaded, "tiny", loaded.solution_path("tiny"), hidden=True, isolation="none", seed=1)
    assert result.score == result.max_score > 0, [(c.id, c.message) for c in result.checks]


def test_the_callers_pytest_options_do_not_reach_the_checks(tiny_course, monkeypatch):
    """PYTEST_ADDOPTS in the shell (here an option the runner's pytest rejects) changes nothing."""
    from grader import course as course_mod

    loaded = course_mod.load(tiny_course)
    monkeypatch.setenv("PYTEST_ADDOPTS", "--durations=5 -vv")
    result = runner.run_topic(loaded, "tiny", loaded.solution_path("tiny"), hidden=True, isolation="none", seed=1)
    assert result.score == result.max_score > 0, [(c.id, c.message) for c in result.checks]
    assert os.environ["PYTEST_ADDOPTS"] == "--durations=5 -vv"  # put back afterwards
