"""When grading fails (the kit is broken, a topic's checks cannot run), every format is still
written and names the reason; the command exits 2 (not the learner's doing)."""

import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from grader import cli
from grader import formats as reporters
from grader.learner import classroom
from grader.results import CheckResult, Report, TopicResult

REASON = "grading survey failed: CourseError: the checks of topic 'survey' could not be collected"


def failed_report():
    ok = CheckResult("test_a.py::test_a", "model_families", "passed", 2, 2)
    return Report([TopicResult("gpt3", [ok])], problem=REASON)


def test_json_names_the_reason():
    data = json.loads(reporters.to_json(failed_report()))
    assert data["problem"] == REASON and data["score"] == 2
    assert "problem" not in json.loads(reporters.to_json(Report()))


def test_junit_adds_an_error_case_named_autograder_failed():
    root = ET.fromstring(reporters.to_junit(failed_report()))
    assert root.get("tests") == "2"
    (case,) = [c for c in root.iter("testcase") if c.get("name") == "autograder failed"]
    assert case.find("error").get("message") == REASON


def test_gradescope_adds_a_visible_failed_test_and_says_so_at_the_top():
    data = json.loads(reporters.to_gradescope(failed_report(), execution_time=12.6))
    assert data["tests"][-1] == {
        "name": "autograder failed",
        "score": 0,
        "max_score": 0,
        "status": "failed",
        "output": REASON,
        "visibility": "visible",
    }
    assert data["output"].startswith("The autograder failed: " + REASON) and data["execution_time"] == 13


def test_classroom_is_an_error_naming_it():
    data = classroom.result(failed_report())
    assert data["status"] == "error" and data["tests"][-1]["message"] == REASON


@pytest.mark.parametrize(
    "fmt, name", [("json", "r.json"), ("junit", "r.xml"), ("gradescope", "results.json"), ("text", "r.txt")]
)
def test_a_kit_that_cannot_load_still_gets_its_results_file(tmp_path, fmt, name):
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "course.yml").write_text("format_version: 1\ntitle: [unclosed\n")
    (tmp_path / "alice" / "exercises").mkdir(parents=True)
    out = tmp_path / name
    result = CliRunner().invoke(
        cli.main, ["grade", str(tmp_path / "alice"), "--kit", str(kit), "--format", fmt, "--output", str(out)]
    )
    assert result.exit_code == 2
    text = out.read_text()
    assert "course.yml" in text and ("autograder failed" in text or "problem" in text or "failed" in text)


@pytest.mark.slow
def test_a_topic_whose_checks_break_is_named_and_the_others_still_graded(course_copy, tmp_path):
    broken = "import pytest\nimport no_such_module_anywhere\n\n\n@pytest.mark.exercise('model_families')\ndef test_x(impl):\n    pass\n"
    (course_copy / "tests" / "checks" / "survey" / "test_broken.py").write_text(broken)
    sub = tmp_path / "alice"
    (sub / "exercises").mkdir(parents=True)
    (sub / "exercises" / "gpt3.py").write_text((course_copy / "solutions" / "gpt3.py").read_text())
    out = tmp_path / "results.json"
    result = CliRunner().invoke(
        cli.main,
        [
            "grade",
            str(sub),
            "--kit",
            str(course_copy),
            "--topics",
            "survey,gpt3",
            "--format",
            "gradescope",
            "--output",
            str(out),
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 2, result.output
    data = json.loads(out.read_text())
    failed = [t for t in data["tests"] if t["name"] == "autograder failed"]
    assert len(failed) == 1 and "survey" in failed[0]["output"] and "no_such_module_anywhere" in failed[0]["output"]
    assert data["score"] == data["max_score"] > 0  # gpt3 was graded in full
