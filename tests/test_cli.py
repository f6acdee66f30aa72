"""The learner's commands through Click's CliRunner, in a throwaway copy of the course."""
import json
import shutil

import pytest
from click.testing import CliRunner

from grader import cli

SCHEMA_KEYS = {"id", "exercise", "status", "score", "max_score", "hidden", "message"}


@pytest.fixture
def run(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)

    def invoke(*args):
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)

    return invoke


def test_check_on_the_stubs_reads_not_started(run, course_copy):
    result = run("check", "attention")
    assert result.exit_code == 1, result.output
    assert "not started" in result.output
    assert "0/" in result.output
    assert "Next: exercise `attention` at exercises/attention.py:" in result.output
    assert "Traceback" not in result.output
    progress = json.loads((course_copy / ".fmgrade" / "progress.json").read_text())
    assert progress["topics"]["attention"]["score"] == 0


def test_check_json_on_the_solution_has_full_marks(run, course_copy):
    shutil.copy(course_copy / "solutions" / "attention.py", course_copy / "exercises" / "attention.py")
    result = run("check", "attention", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["score"] == data["max_score"] > 0
    (topic,) = data["topics"]
    assert topic["id"] == "attention" and topic["isolation"] in ("bwrap", "namespaces", "process")
    assert topic["checks"] and all(SCHEMA_KEYS <= set(c) for c in topic["checks"])
    assert all(c["status"] == "passed" and not c["hidden"] for c in topic["checks"])


def test_check_names_the_learners_mistake(run, course_copy):
    stub = course_copy / "exercises" / "attention.py"
    solution = (course_copy / "solutions" / "attention.py").read_text()
    stub.write_text(solution.replace("/ math.sqrt(d_k)", ""))
    result = run("check", "attention")
    assert result.exit_code == 1
    assert "sqrt(d_k)" in result.output
    assert "Next: fix `attention`" in result.output


def test_syntax_error_gives_one_line_with_file_and_line(run, course_copy):
    stub = course_copy / "exercises" / "attention.py"
    stub.write_text(stub.read_text().replace("def rate(", "def rate(((", 1))
    result = run("check", "attention", "--format", "json")
    assert result.exit_code == 1
    messages = {c["message"] for c in json.loads(result.output)["topics"][0]["checks"]}
    assert len(messages) == 1
    (message,) = messages
    assert "exercises/attention.py:" in message and "SyntaxError" in message


def test_unknown_topic_is_a_usage_error(run):
    result = run("check", "attnetion")
    assert result.exit_code == 2
    assert "no topic 'attnetion'" in result.output


def test_topic_not_yet_available(run, course_copy):
    (course_copy / "exercises" / "llama.py").unlink()
    result = run("check", "llama")
    assert result.exit_code == 2
    assert "not available yet" in result.output


def test_broken_course_yml_is_reported_with_its_line(run, course_copy):
    path = course_copy / "course.yml"
    path.write_text(path.read_text().replace("title: Attention and the Transformer", "titel: x", 1))
    result = run("list")
    assert result.exit_code == 2
    assert "course.yml:" in result.output and "titel" in result.output


def test_progress_draws_the_outline_and_suggests_the_next_topic(run, course_copy):
    (course_copy / "exercises" / "llama.py").unlink()
    result = run("progress")
    assert result.exit_code == 0
    assert "Transformers and attention" in result.output and "not yet available" in result.output
    assert "Suggested next: attention" in result.output


def test_corrupt_progress_is_moved_aside_and_reported(run, course_copy):
    folder = course_copy / ".fmgrade"
    folder.mkdir()
    (folder / "progress.json").write_text("{not json")
    result = run("progress")
    assert result.exit_code == 0
    assert "could not be read" in result.output
    aside = list(folder.glob("progress.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"


def test_hint_shows_goal_hints_and_reading(run):
    result = run("hint", "attention", "rate")
    assert result.exit_code == 0
    assert "warmup" in result.output and "Reading:" in result.output


def test_hint_defaults_to_the_first_exercise_not_passed(run):
    result = run("hint", "attention")
    assert "attention · attention" in result.output


def test_hint_for_an_unknown_exercise(run):
    result = run("hint", "attention", "nope")
    assert result.exit_code == 2 and "has no exercise 'nope'" in result.output


def test_list_shows_every_topic(run):
    result = run("list")
    assert result.exit_code == 0
    for topic in ("attention", "gpt3", "llama", "survey", "scaling", "instructgpt", "alpaca", "minigpt4", "deepspeed_chat"):
        assert topic in result.output


def test_commands_work_from_a_subfolder(run, course_copy, monkeypatch):
    monkeypatch.chdir(course_copy / "tests" / "checks")
    assert run("list").exit_code == 0


def test_dev_stubs_check_reports_drift(run, course_copy):
    assert run("dev", "stubs", "--check").exit_code == 0
    stub = course_copy / "exercises" / "attention.py"
    stub.write_text(stub.read_text() + "\n# edited\n")
    result = run("dev", "stubs", "--check")
    assert result.exit_code == 1 and "exercises/attention.py differs" in result.output
    assert run("dev", "stubs").exit_code == 0
    assert run("dev", "stubs", "--check").exit_code == 0
