"""GitHub Classroom: points in the form its autograding reporter reads.

Classroom shows the points of a student repository from the check run "run-autograding-tests"
of the workflow "Autograding Tests". Its reporter action
(github-education-resources/autograding-grading-reporter, `runners: fmgrade`) reads each
runner's result from the environment variable `FMGRADE_RESULTS`: base64 of a JSON object
`{"version": 1, "status": "pass"|"fail"|"error", "max_score": N, "tests": [...]}`, each test
with `name`, `status`, `score`, `message`, `test_code`, `filename`, `line_no` and `duration` (the
shape its command grader writes). The reporter adds the `score` of every test and the runner's
`max_score`, writes "Points X/Y" on the check run, and fails the job when `status` is not
"pass". `fmgrade classroom` writes that result as the step output `result` and prints the same
"Points X/Y" as a workflow notice, so the points also show on the run's summary page.

Only visible checks run here: the student repository has no hidden checks and no kit.
"""

import base64
import json
import os

from grader.formats import FAILED_TEST
from grader.results import ERROR, PASSED, TIMEOUT, Report

RUNNER = "fmgrade"  # the step id the reporter is given; its variable is FMGRADE_RESULTS


def run_visible(course, topics):
    """The visible checks of `topics` through the learner's own path (`fmgrade check`); a topic
    the grader cannot run is named in `problem` and the others still run."""
    from grader.learner import check

    report = Report()
    failures = []
    for topic in topics:
        try:
            report.topics.append(check.check_topic(course, topic))
        except Exception as exc:  # the grader's failure, never the learner's: name it, go on
            failures.append(f"{topic}: {type(exc).__name__}: {exc}")
    report.problem = "; ".join(failures)
    return report


def result(report):
    """The reporter's result object for `report`: one test per exercise (a topic's checks of
    one exercise pass or fail together as far as the student is concerned)."""
    tests = []
    for topic in report.topics:
        for exercise in topic.exercises():
            status = "pass" if exercise.status == PASSED else "error" if exercise.status in (ERROR, TIMEOUT) else "fail"
            tests.append(_test(f"{topic.id}: {exercise.id}", status, exercise.score, exercise.message))
    if report.problem:
        tests.append(_test(FAILED_TEST, "error", 0, report.problem))
    if report.problem:
        status = "error"
    elif tests and all(t["status"] == "pass" for t in tests):
        status = "pass"
    else:
        status = "fail"
    return {"version": 1, "status": status, "max_score": _number(report.max_score), "tests": tests}


def encoded(report):
    """`result(report)` as the base64 text a step output carries."""
    return base64.b64encode(json.dumps(result(report)).encode("utf-8")).decode("ascii")


def points_notice(report):
    """The workflow command that puts "Points X/Y" on the run's summary page."""
    text = f"Points {_number(report.score)}/{_number(report.max_score)}"
    if report.problem:
        text += f" (the autograder failed: {_one_line(report.problem)})"
    return f"::notice title=Autograding complete::{_escape(text)}"


def write_step_output(report, path=None):
    """Append `result=<base64>` to $GITHUB_OUTPUT (or `path`); returns the file, or None
    outside GitHub Actions."""
    path = path or os.environ.get("GITHUB_OUTPUT")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"result={encoded(report)}\n")
    return path


def _test(name, status, score, message):
    return {
        "name": name,
        "status": status,
        "score": _number(score),
        "message": message or "",
        "test_code": "",
        "filename": "",
        "line_no": 0,
        "duration": 0,
    }


def _number(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def _one_line(text):
    return " ".join(str(text).split())


def _escape(text):
    """GitHub's escaping of a workflow command's message (%, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
