"""`fmgrade report`: a class's results in, report.html and CSV files out.

A batch of ten synthetic submissions with known statuses and named mistakes is written the way
`fmgrade grade --format json --output DIR` writes it; every number in the CSV files below was
counted by hand from the BATCH table, not computed with the code under test.
"""

import csv
import json
import re

import pytest
from click.testing import CliRunner

from grader import cli
from grader import course as course_mod
from grader import formats as reporters
from grader.cli import instructor as cli_instructor
from grader.instructor import grade as grade_mod
from grader.instructor.classreport import build, mistakes, plots, tables
from grader.instructor.classreport.load import ReportInputError
from grader.instructor.grade import Graded
from grader.results import CheckResult, Report, TopicResult

OUTLINE = """\
format_version: 1
title: A tiny course
sections:
  - id: s
    title: Section
    topics:
      - id: attn
        title: Attention
        exercises:
          - {id: softmax, goal: softmax}
          - {id: mask, goal: mask}
      - id: scale
        title: Scaling
        exercises:
          - {id: fit, goal: fit}
"""

# topic -> [(check id, exercise, points, hidden)]
CHECKS = {
    "attn": [
        ("test_a.py::test_softmax_shape", "softmax", 1, False),
        ("test_a.py::test_softmax_values", "softmax", 2, True),
        ("test_a.py::test_mask", "mask", 1, False),
        ("test_a.py::test_mask_hidden", "mask", 1, True),
    ],
    "scale": [("test_s.py::test_fit", "fit", 2, False), ("test_s.py::test_fit_units", "fit", 1, True)],
}
# Each submission's check statuses, in CHECKS order: Passed, Failed[:mistake], Error, Timeout,
# Not started, Blocked.
BATCH = {
    "s0": ("P P P F", "P P"),
    "s1": ("P F:no_scaling P F", "F:wrong_exponent P"),
    "s2": ("P F:no_scaling F F", "B B"),
    "s3": ("P F:softmax_rows P F", "T B"),
    "s4": ("N N N N", "N N"),
    "s5": ("P F:no_scaling P F", "P P"),
    "s6": ("F:no_scaling F:no_scaling P F", "F:wrong_exponent P"),
    "s7": ("P P E F", "P P"),
    "s8": ("P P T F", "F P"),
    "s9": ("P P P F", "P P"),
}
STATUS = {"P": "passed", "F": "failed", "E": "error", "T": "timeout", "N": "not_started", "B": "blocked"}
HOSTILE = "<script>alert('owned')</script>"

EXERCISES_CSV = [
    [
        "topic",
        "exercise",
        "submissions",
        "passed",
        "failed",
        "error",
        "timeout",
        "not_started",
        "blocked",
        "pass_rate",
        "mean_score",
        "max_score",
        "submissions_with_timeout",
        "submissions_with_error",
        "submissions_with_named_mistake",
    ],
    ["attn", "softmax", "10", "4", "5", "0", "0", "1", "0", "0.4", "1.6", "3", "0", "0", "5"],
    ["attn", "mask", "10", "0", "7", "1", "1", "1", "0", "0", "0.6", "2", "1", "1", "0"],
    ["scale", "fit", "10", "4", "3", "0", "1", "1", "1", "0.4", "1.5", "3", "1", "0", "2"],
]
CHECKS_CSV = [
    [
        "topic",
        "exercise",
        "check",
        "hidden",
        "submissions",
        "passed",
        "failed",
        "error",
        "timeout",
        "not_started",
        "blocked",
        "attempted",
        "flag",
    ],
    ["attn", "softmax", "test_a.py::test_softmax_shape", "false", "10", "8", "1", "0", "0", "1", "0", "9", ""],
    ["attn", "softmax", "test_a.py::test_softmax_values", "true", "10", "4", "5", "0", "0", "1", "0", "9", ""],
    ["attn", "mask", "test_a.py::test_mask", "false", "10", "6", "1", "1", "1", "1", "0", "9", ""],
    ["attn", "mask", "test_a.py::test_mask_hidden", "true", "10", "0", "9", "0", "0", "1", "0", "9", "always failed"],
    ["scale", "fit", "test_s.py::test_fit", "false", "10", "4", "3", "0", "1", "1", "1", "8", ""],
    ["scale", "fit", "test_s.py::test_fit_units", "true", "10", "7", "0", "0", "0", "1", "2", "7", "never failed"],
]
MISTAKES_CSV = [
    ["topic", "exercise", "rank", "mistake", "submissions", "share_of_attempted", "message"],
    ["attn", "softmax", "1", "no_scaling", "4", "0.4444", ""],
    ["attn", "softmax", "2", "softmax_rows", "1", "0.1111", ""],
    ["scale", "fit", "1", "wrong_exponent", "2", "0.25", ""],
]


def make_report(statuses, isolation="bwrap"):
    topics = []
    for (topic_id, checks), row in zip(CHECKS.items(), statuses):
        results = []
        for (check_id, exercise, points, hidden), code in zip(checks, row.split()):
            status, _, mistake = code.partition(":")
            message = "" if status == "P" else f"{check_id}: expected 1, got {HOSTILE}"
            results.append(
                CheckResult(
                    check_id,
                    exercise,
                    STATUS[status],
                    points if status == "P" else 0,
                    points,
                    hidden,
                    message,
                    "",
                    mistake,
                )
            )
        topics.append(TopicResult(topic_id, results, isolation, seed=7))
    return Report(topics)


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    (root / "course.yml").write_text(OUTLINE)
    return course_mod.load(root)


@pytest.fixture
def results(tmp_path, course):
    """BATCH as grade's JSON results folder (s3 graded with process isolation), via the CLI's writer."""
    folder = tmp_path / "results"
    graded = [
        Graded(student, f"submissions/{student}", make_report(rows, "process" if student == "s3" else "bwrap"))
        for student, rows in BATCH.items()
    ]
    cli_instructor._write_grades(course, graded, "json", folder)
    return folder


def read_csv(path):
    return list(csv.reader(path.open(encoding="utf-8")))


def test_results_json_carries_format_course_version_and_student(course):
    report = make_report(BATCH["s1"])
    data = json.loads(reporters.to_json(report, course=course, student="s1"))
    assert (data["format"], data["format_version"]) == ("fmgrade-results", 1)
    assert data["course_version"] == course_mod.version_of(course) and data["student"] == "s1"
    assert {k: data[k] for k in ("score", "max_score", "topics")} == report.to_dict()  # older keys unchanged
    bare = json.loads(reporters.to_json(report))
    assert bare["format"] == "fmgrade-results" and "course_version" not in bare and "student" not in bare


def test_course_version_follows_the_outline_or_the_version_field(tmp_path):
    def version(text):
        return course_mod.version_of(course_mod.parse(text, tmp_path))

    base = version(OUTLINE)
    assert base.startswith("outline-")
    assert version(OUTLINE.replace("title: Attention", "title: Attention, revised")) == base  # a title edit keeps it
    assert version(OUTLINE.replace("- {id: mask, goal: mask}", "- {id: masking, goal: mask}")) != base
    assert version(OUTLINE.replace("title: A tiny course", "title: A tiny course\nversion: 2025-fall")) == "2025-fall"
    assert version(OUTLINE.replace("title: A tiny course", "title: A tiny course\nversion: 3")) == "3"
    with pytest.raises(course_mod.CourseError, match=r"course.yml:2: version: expected non-empty text, got a list"):
        course_mod.parse(
            OUTLINE.replace("title: A tiny course", "version: [1]\ntitle: A tiny course"), tmp_path, "course.yml"
        )


def test_csv_numbers_of_a_batch_with_known_mistakes(results, course):
    stats, version, skipped = build.collect_results([results], course)
    assert version == course_mod.version_of(course) and skipped == []  # summary.csv beside them is not read
    assert list(csv.reader(tables.exercises_csv(stats.exercise_rows(course)).splitlines())) == EXERCISES_CSV
    assert list(csv.reader(tables.checks_csv(stats.check_rows(course)).splitlines())) == CHECKS_CSV
    assert list(csv.reader(tables.mistakes_csv(stats.mistake_rows(course)).splitlines())) == MISTAKES_CSV
    # the page's topic numbers: attn scores 4,2,1,2,0,2,1,3,3,4 of 5 points
    attn = stats.topic_rows(course)[0]
    assert (attn.id, attn.submissions, attn.mean_percent, attn.median_percent) == ("attn", 10, 44.0, 40.0)
    assert attn.isolation == {"bwrap": 9, "process": 1} and attn.seeds == {7: 10}


def test_the_report_folder_holds_the_page_and_the_same_numbers(results, course, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the report's plots need pip install 'fmgrade[instructor]'")
    _bad_files(results, course)
    words = {("attn", "no_scaling"): "forgot to divide by sqrt(d_k) <b>", ("scale", "wrong_exponent"): "used 0.5"}
    monkeypatch.setattr(mistakes, "messages", lambda course: (words, []))
    context = build.make_report([results], tmp_path / "out", course)
    assert len(context.skipped) == 8 and context.stats.submissions == 10
    assert read_csv(tmp_path / "out" / "exercises.csv") == EXERCISES_CSV  # nothing of a bad file is counted
    assert read_csv(tmp_path / "out" / "checks.csv") == CHECKS_CSV
    assert [r[6] for r in read_csv(tmp_path / "out" / "mistakes.csv")[1:]] == [
        "forgot to divide by sqrt(d_k) <b>",
        "",
        "used 0.5",
    ]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "10 submission(s) from results files" in page and "8 results file(s) skipped" in page
    assert "oldcourse.json" in page and "forgot to divide by sqrt(d_k) &lt;b&gt;" in page
    assert "<td><em>not in this course's mutants files</em></td>" in page  # softmax_rows has no text


def test_the_real_course_s_mutants_give_the_messages():
    root = course_mod.find_root(__file__)
    course = course_mod.load(root)
    from grader.instructor import mutants as mutants_mod

    known = mutants_mod.load(course, "attention")
    found, problems = mistakes.messages(course)
    assert problems == [] and known
    for mutant in known:
        assert found[("attention", mutant.id)] == (getattr(mutant, "message", "") or mutant.mistake)


def test_reading_in_processes_gives_the_same_numbers(results, course):
    one = build.collect_results([results], course, jobs=1)
    two = build.collect_results([results], course, jobs=2)
    for _stats, version, skipped in (one, two):
        assert version == course_mod.version_of(course) and skipped == []
    assert tables.exercises_csv(one[0].exercise_rows(course)) == tables.exercises_csv(two[0].exercise_rows(course))
    assert tables.checks_csv(one[0].check_rows(course)) == tables.checks_csv(two[0].check_rows(course))
    assert one[0].check_rows(course)[3].example_failure == two[0].check_rows(course)[3].example_failure
    assert tables.mistakes_csv(one[0].mistake_rows(course)) == tables.mistakes_csv(two[0].mistake_rows(course))


def _bad_files(folder, course):
    good = json.loads((folder / "s0.json").read_text())
    bad = {
        "notes.json": "{not json",
        "list.json": "[1, 2]",
        "gradescope.json": reporters.to_gradescope(make_report(BATCH["s0"])),
        "future.json": json.dumps(good | {"format_version": 2}),
        "badstatus.json": json.dumps(
            good
            | {"topics": [good["topics"][0] | {"checks": [good["topics"][0]["checks"][0] | {"status": "passedish"}]}]}
        ),
        "bigscore.json": json.dumps(
            good | {"topics": [good["topics"][0] | {"checks": [good["topics"][0]["checks"][0] | {"score": 5}]}]}
        ),
        "oldcourse.json": json.dumps(good | {"course_version": "2024-spring"}),
        "deep.json": "[" * 100_000,
    }
    for name, text in bad.items():
        (folder / name).write_text(text)
    return {
        "notes.json": "not JSON (line 1: Expecting property name enclosed in double quotes)",
        "list.json": "not fmgrade results: a JSON list, not an object",
        "gradescope.json": 'not fmgrade results: no "format" field, not "fmgrade-results"',
        "future.json": "format_version 2: this fmgrade reads 1",
        "badstatus.json": "topics[0].checks[0].status: 'passedish' is not one of passed, failed, error, timeout, "
        "not_started, blocked",
        "bigscore.json": "topics[0].checks[0]: score 5 of max_score 1 is not a number from 0 to max_score",
        "oldcourse.json": f"from course version 2024-spring, not {course_mod.version_of(course)}",
        "deep.json": "not JSON that fmgrade writes (nested too deeply)",
    }


def test_files_that_are_not_this_course_s_results_are_named_and_skipped(results, course, tmp_path):
    expected = _bad_files(results, course)
    empty = tmp_path / "empty"
    empty.mkdir()
    stats, _, skipped = build.collect_results([results, empty], course)
    assert {s.source.rsplit("/", 1)[-1]: s.reason for s in skipped} == expected | {
        "empty": "folder has no .json results files"
    }
    assert stats.submissions == 10
    assert list(csv.reader(tables.exercises_csv(stats.exercise_rows(course)).splitlines())) == EXERCISES_CSV


def test_without_a_course_the_most_common_version_wins(results, course, tmp_path):
    _bad_files(results, course)
    stats, version, skipped = build.collect_results([results])
    assert version == course_mod.version_of(course) and stats.submissions == 10
    assert any(s.source.endswith("oldcourse.json") for s in skipped)


def test_results_from_another_course_version_only_are_refused(results, tmp_path):
    other = course_mod.parse(OUTLINE.replace("title: A tiny course", "title: A tiny course\nversion: 9"), tmp_path)
    with pytest.raises(ReportInputError, match=r"none of the results is from course version 9 .*outline-"):
        build.collect_results([results], other)


def test_the_page_escapes_learner_text_and_loads_nothing(results, course, tmp_path):
    pytest.importorskip("matplotlib", reason="the report's plots need pip install 'fmgrade[instructor]'")
    data = json.loads((results / "s0.json").read_text())
    data["student"] = "eve<img src=x onerror=alert(1)>"
    data["topics"][0]["checks"][0]["exercise"] = "softmax<svg onload=alert(2)>"
    (results / "s0.json").write_text(json.dumps(data))
    build.make_report([results], tmp_path / "out", course)
    page = (tmp_path / "out" / "report.html").read_text()
    assert HOSTILE not in page and "<img" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page  # the always-failed check's message
    assert "eve&lt;img src=x onerror=alert(1)&gt;" in page
    assert "softmax&lt;svg onload=alert(2)&gt;" in page
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert all(ref.startswith("#") for ref in re.findall(r'(?:href|src)\s*=\s*"([^"]*)"', page))
    assert "Content-Security-Policy" in page and page.count("<svg") == 3
    for section in (
        "Score distribution per topic",
        "Pass rate per exercise",
        "named mistakes",
        "Never failed",
        "Always failed",
        "Time-outs and errors",
        "process: 1",
        "bwrap: 9",
        "7: 10",
    ):
        assert section in page


def test_report_command(results, course, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the report's plots need pip install 'fmgrade[instructor]'")
    (results / "junk.json").write_text("{")
    monkeypatch.chdir(tmp_path)  # outside any course: --course names it
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, ["report", str(results), "--output", str(out), "--course", str(course.root)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "checks.csv",
        "exercises.csv",
        "mistakes.csv",
        "report.html",
        "unexplained.csv",
    ]
    assert (
        f"10 submission(s) from results files, course version {course_mod.version_of(course)}; 1 skipped"
        in result.output
    )
    assert f"skipped {results / 'junk.json'}: not JSON" in result.output
    assert "attn·mask 0%" in result.output  # lowest pass rate first
    assert "attn·softmax no_scaling (4)" in result.output
    assert "checks: 1 never failed (too easy?), 1 always failed (broken?)" in result.output


def test_report_command_usage_errors(results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plots, "require", lambda: None)  # these are refused before anything is drawn

    def run(*args):
        return CliRunner().invoke(cli.main, ["report", *args, "--output", str(tmp_path / "out")])

    cases = {
        (): "nothing to report on",
        (str(results), "--gradebook", "sqlite:///x.db"): "not both",
        (str(tmp_path / "missing"),): f"{tmp_path / 'missing'}: no such file or folder",
    }
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.json").write_text("[]")
    cases[(str(bad),)] = f"no usable results (1 skipped: {bad / 'a.json'}: not fmgrade results"
    for args, message in cases.items():
        result = run(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing written for a refused report


def test_without_matplotlib_the_command_says_what_to_install(results, tmp_path, monkeypatch):
    def missing():
        raise plots.PlotsUnavailable("the report's plots need matplotlib: pip install 'fmgrade[instructor]'")

    monkeypatch.setattr(plots, "require", missing)
    result = CliRunner().invoke(cli.main, ["report", str(results), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "pip install 'fmgrade[instructor]'" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # imports nbgrader and writes a gradebook: several seconds
def test_a_gradebook_gives_exercise_scores_and_says_what_it_lacks(results, course, tmp_path):
    pytest.importorskip("matplotlib", reason="the report's plots need pip install 'fmgrade[instructor]'")
    from grader.instructor import gradebook

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    for student in ("s0", "s6", "s8"):
        gradebook.record(url, student, make_report(BATCH[student]), course)
    context = build.make_report([], tmp_path / "out", course, gradebook=url)
    assert context.from_gradebook and context.stats.submissions == 3
    # s0: softmax 3/3, mask 1/2, fit 3/3; s6: 0/3, 1/2, 1/3; s8: 3/3, 0/2, 1/3
    assert read_csv(tmp_path / "out" / "exercises.csv")[1:] == [
        ["attn", "softmax", "3", "2", "1", "0", "0", "0", "0", "0.6667", "2", "3", "0", "0", "0"],
        ["attn", "mask", "3", "0", "3", "0", "0", "0", "0", "0", "0.6667", "2", "0", "0", "0"],
        ["scale", "fit", "3", "1", "2", "0", "0", "0", "0", "0.3333", "1.6667", "3", "0", "0", "0"],
    ]
    assert read_csv(tmp_path / "out" / "mistakes.csv")[1:] == []
    page = (tmp_path / "out" / "report.html").read_text()
    assert "from an nbgrader gradebook" in page and "Named mistakes" in page and "are not in a gradebook" in page


def test_a_missing_gradebook_file_is_an_error_and_is_not_created(tmp_path):
    from grader.instructor.classreport import from_gradebook
    from grader.instructor.gradebook import GradebookError

    with pytest.raises(GradebookError, match="no such file"):
        from_gradebook.read(f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


def test_a_student_with_two_results_files_counts_once_with_the_latest(results, course):
    import os

    before, _, _ = build.collect_results([results], course)
    data = json.loads((results / "s1.json").read_text())
    for topic in data["topics"]:  # the resubmission passes everything
        for check in topic["checks"]:
            check.update(status="passed", score=check["max_score"], mistake="", message="")
    (results / "s1-resubmitted.json").write_text(json.dumps(data))  # its `student` field says s1
    os.utime(results / "s1.json", ns=(10**18, 10**18))
    os.utime(results / "s1-resubmitted.json", ns=(2 * 10**18, 2 * 10**18))
    stats, _, skipped = build.collect_results([results], course)
    assert stats.submissions == 10 and stats.duplicate_students() == []
    (earlier,) = [s for s in skipped if s.source.endswith("s1.json")]
    assert "earlier result of student s1" in earlier.reason and "s1-resubmitted.json" in earlier.reason
    passed = sum(e.statuses["passed"] for e in stats.exercises.values())
    assert passed > sum(e.statuses["passed"] for e in before.exercises.values())


def test_results_of_two_kits_are_never_mixed(results, course, tmp_path):
    """Last term's kit may carry the same course version; its kit hash tells it apart."""
    for path in sorted(results.glob("*.json"))[:3]:
        data = json.loads(path.read_text())
        path.write_text(json.dumps(data | {"kit_hash": "last-term"}))
    for path in sorted(results.glob("*.json"))[3:]:
        data = json.loads(path.read_text())
        path.write_text(json.dumps(data | {"kit_hash": "this-term"}))
    with pytest.raises(ReportInputError, match="different kits are never mixed: kit last-term .*kit this-term"):
        build.collect_results([results], course)
    with pytest.raises(ReportInputError, match="different kits"):
        build.collect_results([results], course, jobs=2)
    for path in sorted(results.glob("*.json"))[:3]:
        path.unlink()
    stats, _, _ = build.collect_results([results], course)
    assert stats.submissions == 7


def test_failures_no_known_mistake_explains_are_grouped_by_check_and_message_shape(course, tmp_path):
    from grader.instructor.classreport import stats as stats_mod

    def graded(student, message, mistake="", status="failed"):
        check = CheckResult("test_a.py::test_softmax_shape", "softmax", status, 0, 1, False, message, "", mistake)
        return Graded(student, student, Report([TopicResult("attn", [check], "bwrap", 7)]))

    batch = [
        graded("s1", "rows of p_attn sum to 1.73, not 1: softmax over the wrong dimension?"),
        graded("s2", "rows of p_attn sum to 0.41, not 1: softmax over the wrong dimension?\nmore detail"),
        graded("s3", "rows of p_attn sum to 2, not 1", mistake="softmax_rows"),  # explained: not counted
        graded("s4", "shape (2, 3) is not (2, 4)"),
        graded("s5", "took too long", status="timeout"),  # time-outs have their own section
        graded("s6", "shape (5, 1) is not (5, 2)", status="error"),
    ]
    folder = tmp_path / "res"
    cli_instructor._write_grades(course, batch, "json", folder)
    stats, _, _ = build.collect_results([folder], course)
    rows = [(u.check, u.shape, u.submissions, u.example[0]) for u in stats.unexplained_rows(course)]
    assert rows == [
        ("test_a.py::test_softmax_shape", "rows of p_attn sum to #, not #: softmax over the wrong dimension?", 2, "s1"),
        ("test_a.py::test_softmax_shape", "shape (#, #) is not (#, #)", 2, "s4"),
    ]
    in_parallel, _, _ = build.collect_results([folder], course, jobs=2)
    assert [(u.shape, u.submissions) for u in in_parallel.unexplained_rows(course)] == [r[1:3] for r in rows]
    assert stats_mod.message_shape("got 'abc' and \"x y\" at -1.5e-3") == "got '…' and '…' at #"
    pytest.importorskip("matplotlib", reason="the report's plots need pip install 'fmgrade[instructor]'")
    build.make_report([folder], tmp_path / "out", course)
    table = read_csv(tmp_path / "out" / "unexplained.csv")
    assert table[0] == ["topic", "exercise", "check", "message_shape", "submissions", "example_student", "example"]
    assert table[1][3:6] == ["rows of p_attn sum to #, not #: softmax over the wrong dimension?", "2", "s1"]
    assert "Failures no known mistake explains" in (tmp_path / "out" / "report.html").read_text()


def test_results_written_before_text_was_made_safe_are_made_safe_when_read(results, course, tmp_path):
    """Results files from an older grader (or edited by hand) may hold lone surrogates and escape
    sequences: `report` once stopped with a traceback in matplotlib; `--resume` and `gradebook
    import` read them too."""
    pytest.importorskip("matplotlib", reason="the report's plots need pip install 'fmgrade[instructor]'")
    data = json.loads((results / "s0.json").read_text())
    data["student"] = "eve\ud800\x1b]52;c;aGk=\x07"
    data["topics"][0]["checks"][0]["exercise"] = "softmax\ud801"
    data["topics"][0]["checks"][0]["message"] = "boom \udcff \x1b[2J"
    (results / "s0.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, ["report", str(results), "--output", str(out), "--course", str(course.root)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    for written in out.iterdir():
        text = written.read_bytes().decode("utf-8")  # strict: no lone surrogate was written
        assert "\x1b" not in text and "\x07" not in text
    assert "softmax\\ud801" in (out / "exercises.csv").read_text()
    graded = grade_mod.load_result(results / "s0.json")
    assert graded.student == "eve\\ud800\\x1b]52;c;aGk=\\x07"
    assert graded.report.topics[0].checks[0].message == "boom \\udcff \\x1b[2J"
