"""One truth: check, watch, progress, list and the notebook compute an exercise's status and the
topic's score by the same rule (grader.results.standing), blocked included."""

import re

import click
import pytest

from grader import course as course_mod
from grader.learner import progress as progress_mod
from grader.learner import rendering, screen
from grader.learner.watch import Rechecked
from grader.results import BLOCKED, FAILED, PASSED, CheckResult, TopicResult, standing

ROOT = course_mod.find_root(__file__)


@pytest.fixture(scope="module")
def course():
    return course_mod.load(ROOT)


def merged_result(course):
    """What watch holds after a save broke `attention`: only `attention` re-ran, so the kept checks
    of the exercises built on it still say passed. A full run would report them blocked."""
    topic = course.topic("attention")
    checks = []
    for exercise in topic.exercises:
        status = FAILED if exercise.id == "attention" else PASSED
        checks.append(
            CheckResult(
                f"test_x.py::test_{exercise.id}",
                exercise.id,
                status,
                2 if status == PASSED else 0,
                2,
                message="rows of p_attn sum to 1.73, not 1" if status == FAILED else "",
            )
        )
    return TopicResult("attention", checks, isolation="bwrap")


def plain(text):
    return click.unstyle(str(text))


def test_the_rule_blocks_what_builds_on_a_failing_exercise_and_names_the_root(course):
    topic = course.topic("attention")
    ruled = standing(merged_result(course), topic.exercises)
    statuses = {s.id: s for s in ruled.exercises}
    assert statuses["attention"].status == FAILED
    assert statuses["multi_head_attention"].status == BLOCKED and statuses["multi_head_attention"].score == 0
    # encoder_decoder_layers builds on multi_head_attention, itself blocked by attention
    assert statuses["encoder_decoder_layers"].status == BLOCKED
    assert "fix `attention` first" in statuses["encoder_decoder_layers"].message
    assert statuses["layer_norm"].status == PASSED
    blocked = [s for s in ruled.exercises if s.status == BLOCKED]
    assert ruled.score == 2 * (len(topic.exercises) - 1 - len(blocked))
    assert ruled.max_score == 2 * len(topic.exercises)
    assert ruled.score < merged_result(course).score  # the raw checks would have counted the stale passes


def test_a_module_that_does_not_import_blocks_nothing(course):
    result = merged_result(course)
    result.import_error = "your module does not import: SyntaxError"
    ruled = standing(result, course.topic("attention").exercises)
    assert BLOCKED not in {s.status for s in ruled.exercises}


def test_every_screen_shows_the_same_status_and_score(course, tmp_path):
    topic = course.topic("attention")
    result = merged_result(course)
    ruled = standing(result, topic.exercises)
    score = f"{ruled.score:g}/{ruled.max_score:g}"

    check_text = plain(rendering.topic_report(course, result))
    assert f"{score} points" in check_text
    assert re.search(r"multi_head_attention\s+0/2\s+blocked: fix `attention` first", check_text), check_text
    assert f"{ruled.done} of {len(topic.exercises)} exercises done" in check_text

    watch_text = plain(screen.render(course, Rechecked(result, ("attention",), 0.5, "attention")))
    assert f"{score} points" in watch_text
    assert re.search(r"multi_head_attention\s+0/2\s+blocked: fix `attention` first", watch_text), watch_text

    state = progress_mod.record(tmp_path, result, exercises=topic.exercises)
    entry = state.topics["attention"]
    assert (entry["score"], entry["max_score"]) == (ruled.score, ruled.max_score)
    assert entry["exercises"]["multi_head_attention"] == BLOCKED
    assert entry["points"]["multi_head_attention"] == [0, 2]
    assert {e: s for e, s in entry["exercises"].items()} == {s.id: s.status for s in ruled.exercises}

    progress_text = plain(rendering.progress_report(course, state, None))
    assert re.search(rf"attention\s+\[.*\]\s+{re.escape(score)}\s", progress_text), progress_text
    list_text = plain(rendering.list_report(course, state))
    assert re.search(rf"^attention\s+{re.escape(score)}\s", list_text, re.M), list_text

    notebook = pytest.importorskip("grader.learner.notebook")
    shown = notebook.CheckedTopic(course, result)
    assert f"{score} points" in repr(shown) and f"{score} points" in shown._repr_html_()
    assert {s.id: s.status for s in shown.rows} == {s.id: s.status for s in ruled.exercises}
    assert not shown.passed


def test_a_partial_check_merged_into_progress_follows_the_rule(course, tmp_path):
    # every exercise passed once; then `check attention attention` finds `attention` broken
    topic = course.topic("attention")
    full = merged_result(course)
    for check in full.checks:
        check.status, check.score = PASSED, 2
    state = progress_mod.record(tmp_path, full, exercises=topic.exercises)
    assert state.complete("attention")
    partial = TopicResult("attention", [c for c in merged_result(course).checks if c.exercise == "attention"])
    partial.not_run = {e.id: 2 for e in topic.exercises if e.id != "attention"}
    state = progress_mod.record(tmp_path, partial, state, topic.exercises)
    entry = state.topics["attention"]
    assert entry["exercises"]["multi_head_attention"] == BLOCKED
    assert entry["score"] == standing(merged_result(course), topic.exercises).score


def test_progress_names_the_topics_not_run(course, tmp_path):
    topic = course.topic("attention")
    state = progress_mod.record(tmp_path, merged_result(course), exercises=topic.exercises)
    text = plain(rendering.progress_report(course, state, None))
    line = next(line for line in text.splitlines() if line.startswith("Not run yet"))
    available = [t.id for t in course.topics if course.available(t.id)]
    for topic_id in available:
        assert (topic_id in line) == (topic_id != "attention"), line


def test_progress_says_when_only_some_exercises_of_a_topic_were_checked(course, tmp_path):
    topic = course.topic("attention")
    partial = TopicResult("attention", [c for c in merged_result(course).checks if c.exercise == "layer_norm"])
    partial.not_run = {e.id: 2 for e in topic.exercises if e.id != "layer_norm"}
    state = progress_mod.record(tmp_path, partial, exercises=topic.exercises)
    text = plain(rendering.progress_report(course, state, None))
    row = next(line for line in text.splitlines() if line.strip().startswith("attention "))
    assert f"(1 of {len(topic.exercises)} exercises checked)" in row, row
    full = progress_mod.record(tmp_path, merged_result(course), exercises=topic.exercises)
    assert "exercises checked" not in plain(rendering.progress_report(course, full, None))
