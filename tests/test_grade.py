"""`fmgrade grade`: only exercises/*.py is taken from a submission; every format serialises the
same results; broken submissions get a clear message and zero, never a crashed batch."""

import csv
import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from grader import cli, course

ROOT = course.find_root(__file__)


COURSE = course.load(ROOT)


def make_submission(folder, source=None):
    (folder / "exercises").mkdir(parents=True)
    if source is not None:
        (folder / "exercises" / "attention.py").write_bytes(source if isinstance(source, bytes) else source.encode())
    return folder


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    return make_submission(tmp_path_factory.mktemp("alice") / "alice", COURSE.solution_path("attention").read_text())


def run(*args):
    return CliRunner().invoke(
        cli.main, ["grade", *args, "--kit", str(ROOT), "--topics", "attention", "--seed", "7"], catch_exceptions=False
    )


@pytest.mark.slow
def test_a_solved_submission_gets_full_marks_on_visible_and_hidden_checks(solved):
    result = run(str(solved), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["score"] == data["max_score"] > 0
    checks = data["topics"][0]["checks"]
    assert any(c["hidden"] for c in checks) and any(not c["hidden"] for c in checks)
    assert data["topics"][0]["seed"] == 7


def test_the_submissions_own_tests_grader_and_conftest_are_ignored(tmp_path):
    sub = make_submission(tmp_path / "mallory", COURSE.exercise_path("attention").read_text())
    (sub / "conftest.py").write_text(
        "import pytest\n@pytest.hookimpl(wrapper=True)\ndef pytest_runtest_makereport(item, call):\n    r = yield\n    r.outcome = 'passed'\n    return r\n"
    )
    (sub / "tests" / "checks" / "attention").mkdir(parents=True)
    (sub / "tests" / "checks" / "attention" / "conftest.py").write_text("raise SystemExit('grader hijacked')\n")
    (sub / "grader").mkdir()
    (sub / "grader" / "__init__.py").write_text("raise SystemExit('grader hijacked')\n")
    (sub / "course.yml").write_text("format_version: 1\n")
    result = run(str(sub), "--format", "json")
    data = json.loads(result.output[result.output.index("{") :])
    assert data["score"] == 0 and data["max_score"] > 0
    assert {c["status"] for c in data["topics"][0]["checks"]} <= {"not_started", "blocked"}


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "exercises/attention.py is missing"),
        ("   \n", "exercises/attention.py is empty"),
        (b"\xff\xfe\x00binary", "exercises/attention.py is not UTF-8 text"),
    ],
)
def test_broken_submissions_get_a_clear_message_and_zero(tmp_path, content, message):
    sub = make_submission(tmp_path / "bob", content)
    result = run(str(sub), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output[result.output.index("{") :])
    assert data["score"] == 0
    (only,) = {c["message"] for c in data["topics"][0]["checks"]}
    assert only.startswith(message)


@pytest.mark.slow
def test_junit_and_gradescope_outputs(solved, tmp_path):
    stub = make_submission(tmp_path / "carol", COURSE.exercise_path("attention").read_text())
    junit, scope = tmp_path / "r.xml", tmp_path / "results.json"
    assert run(str(stub), "--format", "junit", "--output", str(junit)).exit_code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == "attention" and int(suite.get("failures")) == int(suite.get("tests")) > 0
    assert suite.find("testcase/failure").get("type") == "not_started"
    assert run(str(solved), "--format", "gradescope", "--output", str(scope)).exit_code == 0
    results = json.loads(scope.read_text())
    assert results["score"] == results["max_score"] > 0
    tests = results["tests"]
    assert {t["visibility"] for t in tests} == {"visible", "after_published"}
    assert all({"name", "score", "max_score", "status", "output", "visibility"} <= set(t) for t in tests)


@pytest.mark.slow
def test_a_batch_in_parallel_writes_one_result_each_and_a_summary(solved, tmp_path):
    stub = make_submission(tmp_path / "dave", COURSE.exercise_path("attention").read_text())
    missing = tmp_path / "erin"  # no folder at all
    out = tmp_path / "out"
    result = run(str(solved), str(stub), str(missing), "--format", "json", "--output", str(out), "--jobs", "2")
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["alice.json", "dave.json", "erin.json", "summary.csv"]
    rows = {r["student"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert float(rows["alice"]["total"]) == float(rows["alice"]["max_total"]) > 0
    assert float(rows["dave"]["total"]) == 0 and float(rows["erin"]["total"]) == 0


def test_unknown_topic_is_a_usage_error(solved):
    result = CliRunner().invoke(cli.main, ["grade", str(solved), "--kit", str(ROOT), "--topics", "nope"])
    assert result.exit_code == 2 and "unknown topic" in result.output
