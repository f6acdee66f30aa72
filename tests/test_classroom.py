"""`fmgrade classroom`: the visible checks, reported in the form GitHub Classroom's autograding
reporter reads (a base64 `result` step output) and as a "Points X/Y" notice."""

import base64
import json

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.learner import classroom
from grader.results import CheckResult, Report, TopicResult

ROOT = course.find_root(__file__)


def report_of(*checks, problem=""):
    return Report([TopicResult("attention", list(checks))], problem=problem)


def check(exercise, status, points=2):
    return CheckResult(
        f"test_{exercise}.py::test_it",
        exercise,
        status,
        points if status == "passed" else 0,
        points,
        message="" if status == "passed" else f"{exercise} is wrong: 1.73, not 1",
    )


def decode(text):
    return json.loads(base64.b64decode(text))


def test_result_has_the_reporters_shape_one_test_per_exercise():
    report = report_of(
        check("softmax", "passed"), check("mask", "failed"), check("mask", "passed"), check("rate", "timeout", 1)
    )
    data = classroom.result(report)
    assert data["version"] == 1 and data["status"] == "fail" and data["max_score"] == 7
    assert [(t["name"], t["status"], t["score"]) for t in data["tests"]] == [
        ("attention: softmax", "pass", 2),
        ("attention: mask", "fail", 2),
        ("attention: rate", "error", 0),
    ]
    assert data["tests"][1]["message"] == "mask is wrong: 1.73, not 1"
    # What the reporter adds up: the tests' scores over the runner's max_score.
    assert sum(t["score"] for t in data["tests"]) == report.score == 4
    assert set(data["tests"][0]) == {
        "name",
        "status",
        "score",
        "message",
        "test_code",
        "filename",
        "line_no",
        "duration",
    }
    assert decode(classroom.encoded(report)) == data


def test_all_passing_is_pass_and_the_notice_shows_the_points():
    report = report_of(check("softmax", "passed"), check("mask", "passed", 1))
    assert classroom.result(report)["status"] == "pass"
    assert classroom.points_notice(report) == "::notice title=Autograding complete::Points 3/3"


def test_a_grader_failure_is_an_error_that_names_its_reason():
    report = report_of(check("softmax", "passed"), problem="attention: CourseError: the checks could not be collected")
    data = classroom.result(report)
    assert data["status"] == "error"
    assert data["tests"][-1] == {**data["tests"][-1], "name": "autograder failed", "status": "error", "score": 0}
    assert "could not be collected" in data["tests"][-1]["message"]
    notice = classroom.points_notice(Report(problem="50% done\nthen broke"))
    assert notice == "::notice title=Autograding complete::Points 0/0 (the autograder failed: 50%25 done then broke)"


def test_step_output_is_appended_to_github_output(tmp_path, monkeypatch):
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    report = report_of(check("softmax", "passed"))
    assert classroom.write_step_output(report) == str(out)
    first, second = out.read_text().splitlines()
    assert first == "earlier=1" and decode(second.removeprefix("result=")) == classroom.result(report)
    monkeypatch.delenv("GITHUB_OUTPUT")
    assert classroom.write_step_output(report) is None


@pytest.mark.slow
def test_command_runs_visible_checks_and_sets_the_output(course_copy, tmp_path, monkeypatch):
    (course_copy / "exercises" / "survey.py").write_text((course_copy / "solutions" / "survey.py").read_text())
    (course_copy / "solutions").rename(tmp_path / "elsewhere")  # a student repository has none
    out = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.chdir(course_copy)
    result = CliRunner().invoke(cli.main, ["classroom", "--topics", "survey"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = decode(out.read_text().strip().removeprefix("result="))
    assert data["status"] == "pass" and data["max_score"] > 0
    assert all(t["name"].startswith("survey: ") for t in data["tests"])
    assert f"::notice title=Autograding complete::Points {data['max_score']}/{data['max_score']}" in result.output
    # only visible checks: the release has no hidden ones, and the command never asks for them
    visible = CliRunner().invoke(cli.main, ["check", "survey", "--format", "json"])
    assert data["max_score"] == json.loads(visible.output)["max_score"]


@pytest.mark.slow
def test_command_names_a_broken_topic_and_still_reports(course_copy, tmp_path, monkeypatch):
    broken = "import pytest\nimport no_such_module_anywhere\n\n\n@pytest.mark.exercise('model_families')\ndef test_x(impl):\n    pass\n"
    (course_copy / "tests" / "checks" / "survey" / "test_broken.py").write_text(broken)
    out = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.chdir(course_copy)
    result = CliRunner().invoke(cli.main, ["classroom", "--topics", "survey"])
    assert result.exit_code == 0, result.output
    data = decode(out.read_text().strip().removeprefix("result="))
    assert data["status"] == "error"
    assert data["tests"][-1]["name"] == "autograder failed" and "survey" in data["tests"][-1]["message"]
    assert "the autograder failed" in result.output


def test_unknown_topic_is_a_usage_error(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)
    result = CliRunner().invoke(cli.main, ["classroom", "--topics", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
