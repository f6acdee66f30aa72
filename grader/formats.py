"""Serialisations of a Report: JSON (as `fmgrade check`), JUnit XML, Gradescope results.json.

Reporters only serialise; every number and status comes from grader.results. Learner text is
made safe where it enters the grader (grader.safe_text); each serialiser passes the report's
text through it once more (`safe_report`, the identity on safe text), so a result built some
other way still gives valid UTF-8, JSON and XML rather than an error that stops a batch.
"""

import dataclasses
import json
import xml.etree.ElementTree as ET

from grader.course import version_of
from grader.results import ERROR, PASSED, TIMEOUT
from grader.safe_text import safe_id, safe_text

FAILED_TEST = "autograder failed"  # the test that names why grading failed, where a format has tests

# Marks a JSON file as fmgrade's results (the class report reads only these).
RESULTS_FORMAT, RESULTS_FORMAT_VERSION = "fmgrade-results", 1


def safe_report(report):
    """A copy of `report` whose every string is safe text (grader.safe_text)."""

    def check(c):
        return dataclasses.replace(
            c,
            id=safe_text(c.id, 1000),
            exercise=safe_text(c.exercise, 200),
            status=safe_text(c.status, 200),
            message=safe_text(c.message),
            output=safe_text(c.output),
            mistake=safe_text(c.mistake, 200),
        )

    def topic(t):
        return dataclasses.replace(
            t,
            id=safe_text(t.id, 200),
            checks=[check(c) for c in t.checks],
            isolation=safe_text(t.isolation, 200),
            cgroup=safe_text(t.cgroup, 300),
            import_error=safe_text(t.import_error),
        )

    return dataclasses.replace(report, topics=[topic(t) for t in report.topics], problem=safe_text(report.problem))


def to_json(report, course=None, student=None, seed=None, kit_hash=None):
    """The report as JSON; with `course`, its version (grader.course.version_of), and with
    `student`, whose results these are; `seed` (the hidden checks' seed) and `kit_hash` (which
    kit graded, grader.instructor.kit.kit_hash) when given. The keys of older versions are unchanged."""
    report = safe_report(report)
    data = {"format": RESULTS_FORMAT, "format_version": RESULTS_FORMAT_VERSION}
    if course is not None:
        data["course_version"] = version_of(course)
    if student is not None:
        data["student"] = safe_id(student)
    data |= _grading_facts(seed, kit_hash)
    return json.dumps(data | report.to_dict(), indent=2) + "\n"


def _grading_facts(seed, kit_hash):
    """{"seed": ..., "kit_hash": ...}, each only when known."""
    return {k: v for k, v in (("seed", seed), ("kit_hash", kit_hash)) if v is not None and v != ""}


def to_junit(report, suite_prefix="", seed=None, kit_hash=None):
    """JUnit XML: a <testsuite> per topic, a <testcase> per check. `failed` and `not_started`
    are <failure>s, `error` and `timeout` are <error>s; points go in <properties>, with the
    submission's `seed` and `kit_hash` when given."""
    facts = _grading_facts(seed, kit_hash)
    report, suite_prefix = safe_report(report), safe_id(suite_prefix) if suite_prefix else ""
    suites = ET.Element(
        "testsuites", name=f"{suite_prefix}fmgrade", tests=str(sum(len(t.checks) for t in report.topics))
    )
    for topic in report.topics:
        failures = sum(c.status not in (PASSED, ERROR, TIMEOUT) for c in topic.checks)
        errors = sum(c.status in (ERROR, TIMEOUT) for c in topic.checks)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{suite_prefix}{topic.id}",
            tests=str(len(topic.checks)),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
        )
        props = ET.SubElement(suite, "properties")
        pairs = [("score", topic.score), ("max_score", topic.max_score), ("isolation", topic.isolation)]
        pairs += [("cgroup", topic.cgroup)] if topic.cgroup else []
        pairs += [("seed", topic.seed)] + ([("kit_hash", facts["kit_hash"])] if "kit_hash" in facts else [])
        for key, value in pairs:
            ET.SubElement(props, "property", name=key, value=f"{value:g}" if isinstance(value, float) else str(value))
        for check in topic.checks:
            file_part, _, name = check.id.partition("::")
            case = ET.SubElement(
                suite, "testcase", classname=f"{topic.id}.{file_part.removesuffix('.py')}", name=name or check.id
            )
            case_props = ET.SubElement(case, "properties")
            for key, value in (
                ("exercise", check.exercise),
                ("points", f"{check.score:g}/{check.max_score:g}"),
                ("hidden", str(check.hidden).lower()),
            ):
                ET.SubElement(case_props, "property", name=key, value=value)
            if check.status != PASSED:
                tag = "error" if check.status in (ERROR, TIMEOUT) else "failure"
                element = ET.SubElement(case, tag, type=check.status, message=_first_line(check.message))
                element.text = check.message
            if check.output:
                ET.SubElement(case, "system-out").text = check.output
    if report.problem:  # grading failed: say why where a CI system looks, as an error
        suite = ET.SubElement(
            suites, "testsuite", name=f"{suite_prefix}fmgrade", tests="1", failures="0", errors="1", skipped="0"
        )
        if facts:
            props = ET.SubElement(suite, "properties")
            for key, value in facts.items():
                ET.SubElement(props, "property", name=key, value=str(value))
        case = ET.SubElement(suite, "testcase", classname=f"{suite_prefix}fmgrade", name=FAILED_TEST)
        ET.SubElement(case, "error", type="grader", message=_first_line(report.problem)).text = report.problem
        suites.set("tests", str(int(suites.get("tests", "0")) + 1))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def to_gradescope(report, hidden_visibility="after_published", execution_time=None, seed=None, kit_hash=None):
    """Gradescope's results.json. Hidden checks get `hidden_visibility` (Gradescope's
    "after_published", "after_due_date", "hidden" or "visible"); a failed grading run adds a
    test named "autograder failed" that carries the reason. `seed` and `kit_hash` go in
    `extra_data`, which Gradescope keeps but does not show to the student."""
    report = safe_report(report)
    tests = []
    for topic in report.topics:
        for check in topic.checks:
            output = check.message + (f"\n\nYour code printed:\n{check.output}" if check.output else "")
            tests.append(
                {
                    "name": f"{topic.id} / {check.exercise} / {check.id}",
                    "score": check.score,
                    "max_score": check.max_score,
                    "status": "passed" if check.status == PASSED else "failed",
                    "output": output,
                    "visibility": hidden_visibility if check.hidden else "visible",
                    "tags": [topic.id, check.exercise, check.status],
                }
            )
    isolation = sorted({t.isolation for t in report.topics})
    cgroup = sorted({t.cgroup for t in report.topics if t.cgroup})
    summary = f"Graded {len(report.topics)} topic(s); isolation: {', '.join(isolation) or 'none'}"
    summary += f"; {', '.join(cgroup)}." if cgroup else "."
    if report.problem:
        tests.append(
            {
                "name": FAILED_TEST,
                "score": 0,
                "max_score": 0,
                "status": "failed",
                "output": report.problem,
                "visibility": "visible",
            }
        )
        summary = f"The autograder failed: {report.problem}\n{summary}"
    results = {
        "score": report.score,
        "max_score": report.max_score,
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if _grading_facts(seed, kit_hash):
        results["extra_data"] = _grading_facts(seed, kit_hash)
    if execution_time is not None:
        results["execution_time"] = int(round(execution_time))  # seconds
    return json.dumps(results, indent=2) + "\n"


def _first_line(text):
    return text.strip().splitlines()[0] if text.strip() else ""


FORMATS = {"json": to_json, "junit": to_junit, "gradescope": to_gradescope}
