"""Hostile submissions aimed at the grader's reports, not its sandbox: text that would break a
writer (a lone surrogate, control and escape characters, NUL), student ids chosen as attacks (a
spreadsheet formula, invalid UTF-8 with an escape sequence, a name of 250 characters), and a
report that cannot be written. One submission never costs another: every other submission is
graded and written, the honest ones keep full marks, every file is valid, no escape sequence
reaches a report or the terminal, and the exit status tells "every submission graded" (0, 1)
from "some could not be graded" (2).

Each batch runs in a grader subprocess (`python -m grader grade`) at both isolation levels of
FMGRADE_HOSTILE_ISOLATION (default "bwrap,process"), at `--jobs 1` and `--jobs 2`.
"""

import csv
import json
import os
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import cli
from grader import formats as reporters
from grader.sandbox import process as sandbox

LEVELS = [level for level in os.environ.get("FMGRADE_HOSTILE_ISOLATION", "bwrap,process").split(",") if level]
GRADING_TIMEOUT = 600
FILE = "exercises/tiny.py"

# Written into the learner's file as Python escapes (the file itself is plain UTF-8).
SCARY = r"\ud800 \x1b[2K\x1b[1G\x1b[32mPASSED\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x00 \r\x9b2J \u202eevil"
SOURCES = {
    "honest": None,  # the reference solution
    "surrogate_message": f'def double(x):\n    raise ValueError("{SCARY}" * 50)\n',
    "escape_output": f'def double(x):\n    print("{SCARY}")\n    return 2 * x + 1\n',
}
# student id (folder name, bytes) -> source: honest code under a hostile name keeps full marks
NAMES = {
    b'=HYPERLINK("evil.example","open me")': "honest",
    b"caf\xe9\x1b[2J\x1b]0;owned\x07": "honest",
    b"n" * 250: "honest",
}
HONEST = {"honest", *(os.fsdecode(name) for name in NAMES)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, make_tiny):
    root = tmp_path_factory.mktemp("hostile-reports")
    kit = make_tiny(root / "kit")
    solution = (kit / "solutions" / "tiny.py").read_text()
    folders = []
    for name, source in SOURCES.items():
        folders.append(_submission(root / "subs" / name, source or solution))
    for name, which in NAMES.items():
        folders.append(_submission(Path(os.fsdecode(bytes(root / "subs") + b"/" + name)), SOURCES[which] or solution))
    return kit, folders


def _submission(folder, source):
    (folder / "exercises").mkdir(parents=True)
    (folder / FILE).write_text(source, encoding="utf-8")
    return folder


def _level(level):
    if level == "bwrap" and not sandbox.bwrap_available():
        pytest.skip("bubblewrap is not available here")
    return level


def grade(kit, folders, out, fmt, jobs, level):
    return subprocess.run(
        [sys.executable, "-m", "grader", "grade", *map(str, folders), "--kit", str(kit), "--format", fmt]
        + ["--output", str(out), "--jobs", str(jobs), "--isolation", level, "--seed", "7"],
        capture_output=True,
        timeout=GRADING_TIMEOUT,
    )


def no_escape(data, where):
    assert b"\x1b" not in data and b"\x00" not in data and b"\x9b" not in data.replace(b"\xc2\x9b", b"?"), where
    data.decode("utf-8")  # strict: no lone surrogate was written either


@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("fmt, jobs", [("junit", 1), ("json", 2)])
def test_hostile_text_and_ids_cost_no_other_submission(batch, tmp_path, level, fmt, jobs):
    kit, folders = batch
    out = tmp_path / "out"
    done = grade(kit, folders, out, fmt, jobs, _level(level))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output.decode("utf-8", "replace")[-3000:]  # every one graded; some lost points
    no_escape(done.stdout, "stdout")
    assert b"Traceback" not in output

    rows = {r["student"]: r for r in csv.DictReader((out / "summary.csv").open(encoding="utf-8"))}
    assert len(rows) == len(folders), sorted(rows)
    students = {s.removeprefix("'") for s in rows}
    assert '\'=HYPERLINK("evil.example","open me")' in rows  # never a formula in a spreadsheet
    for student in rows:
        assert not student.startswith(("=", "+", "-", "@")), student
        assert len(student) <= 121 and "\x1b" not in student
    full = {s for s in students if rows.get(s, rows.get("'" + s))["total"] == "2"}
    assert len(full) == len(HONEST), rows  # every honest submission, under whatever name, has full marks
    assert rows["surrogate_message"]["total"] == rows["escape_output"]["total"] == "0"

    files = sorted(p for p in out.iterdir() if p.name != "summary.csv")
    assert len(files) == len(folders), [p.name for p in files]
    for path in files:
        data = path.read_bytes()
        no_escape(data, path.name)
        if fmt == "junit":
            xml.dom.minidom.parseString(data)
        if fmt == "json":
            assert json.loads(data)["student"] + ".json" == path.name
    scary = (out / f"surrogate_message.{'xml' if fmt == 'junit' else 'txt' if fmt == 'text' else 'json'}").read_text()
    assert "\\ud800" in scary and "\\x1b[32mPASSED" in scary  # shown, not run

    if fmt == "json" and jobs == 2:  # the class report reads every one of them
        report = subprocess.run(
            [sys.executable, "-m", "grader", "report", str(out), "--course", str(kit), "--output", str(tmp_path / "r")],
            capture_output=True,
            timeout=GRADING_TIMEOUT,
        )
        assert report.returncode == 0, report.stderr.decode("utf-8", "replace")[-3000:]
        no_escape((tmp_path / "r" / "report.html").read_bytes(), "report.html")


# --- a report that cannot be written is that submission's error -------------------------------


@pytest.fixture
def small_batch(make_tiny, tmp_path):
    kit = make_tiny(tmp_path / "kit")
    solution = (kit / "solutions" / "tiny.py").read_text()
    return kit, [_submission(tmp_path / "subs" / name, solution) for name in ("alice", "bob", "carol")]


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_report_that_cannot_be_rendered_costs_only_its_submission(small_batch, tmp_path, monkeypatch, jobs):
    kit, folders = small_batch
    real = reporters.to_junit

    def breaks_on_bob(report, *args, **kwargs):
        if any("bob's own text" in c.message for t in report.topics for c in t.checks):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(report, *args, **kwargs)

    monkeypatch.setitem(reporters.FORMATS, "junit", breaks_on_bob)
    (folders[1] / FILE).write_text('def double(x):\n    raise ValueError("bob\'s own text")\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli.main,
        ["grade", *map(str, folders), "--kit", str(kit), "--format", "junit", "--output", str(out)]
        + ["--jobs", str(jobs), "--isolation", "process", "--seed", "3"],
        catch_exceptions=False,
    )
    assert result.exit_code == 2, result.output  # not every submission could be graded in full
    assert sorted(p.name for p in out.iterdir()) == ["alice.xml", "bob.xml", "carol.xml", "summary.csv"]
    bob = (out / "bob.xml").read_text()
    assert "its report could not be written (UnicodeEncodeError" in bob
    xml.dom.minidom.parseString(bob.encode())
    rows = {r["student"]: r["total"] for r in csv.DictReader((out / "summary.csv").open())}
    assert rows == {"alice": "2", "bob": "0", "carol": "2"}


@pytest.mark.slow
def test_a_result_file_that_cannot_be_written_costs_only_its_submission(small_batch, tmp_path):
    kit, folders = small_batch
    out = tmp_path / "out"
    (out / "bob.json").mkdir(parents=True)  # a folder where bob's result goes: its write fails
    (out / "bob.json" / "keep").write_text("")
    result = CliRunner().invoke(
        cli.main,
        ["grade", *map(str, folders), "--kit", str(kit), "--format", "json", "--output", str(out)]
        + ["--isolation", "process", "--seed", "3"],
        catch_exceptions=False,
    )
    assert result.exit_code == 2, result.output
    assert json.loads((out / "alice.json").read_text())["score"] == 2
    assert json.loads((out / "carol.json").read_text())["score"] == 2
    rows = [r["student"] for r in csv.DictReader((out / "summary.csv").open())]
    assert rows == ["alice", "bob", "carol"]


def test_exit_statuses_tell_every_submission_graded_from_some_not():
    from grader.cli.instructor import grade_exit_status
    from grader.instructor.grade import Graded
    from grader.results import CheckResult, Report, TopicResult

    def graded(score, problem=""):
        return Graded("s", "s", Report([TopicResult("t", [CheckResult("c", "e", "passed", score, 1)])], problem))

    assert grade_exit_status([graded(1), graded(1)]) == 0
    assert grade_exit_status([graded(1), graded(0)]) == 1
    assert grade_exit_status([graded(1), graded(1, "not graded: its grading process died")]) == 2
    assert grade_exit_status([graded(1)], layout_written=False) == 2


def test_a_grader_bug_is_never_the_status_of_an_ordinary_batch(small_batch, tmp_path, monkeypatch):
    from grader.instructor import grade as grade_mod

    def broken(*args, **kwargs):
        raise LookupError("a bug in the grader")

    monkeypatch.setattr(grade_mod, "grade_many", broken)
    kit, folders = small_batch
    result = CliRunner().invoke(cli.main, ["grade", *map(str, folders), "--kit", str(kit), "--isolation", "process"])
    assert result.exit_code == 2 and "the grader failed (LookupError: a bug in the grader)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- nbgrader's layout and the gradebook ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS)
def test_nbgrader_feedback_and_gradebook_rows_for_every_student(make_tiny, tmp_path, level):
    """The surrogate in mallory's message once stopped the feedback at her and left the gradebook
    without rows; now every student gets a feedback page and gradebook rows, also one whose folder
    name is not safe text (its results name it escaped; its feedback goes to its own folder)."""
    pytest.importorskip("nbgrader")
    kit = make_tiny(tmp_path / "kit")
    solution = (kit / "solutions" / "tiny.py").read_text()
    course_dir = tmp_path / "course"
    eve = "eve\x1b[31m"
    students = (("alice", solution), ("mallory", SOURCES["surrogate_message"]), ("zed", solution), (eve, solution))
    for student, source in students:
        folder = course_dir / "submitted" / student / "tiny"
        folder.mkdir(parents=True)
        (folder / "tiny.py").write_text(source, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--nbgrader", str(course_dir), "--assignment", "tiny"]
        + ["--kit", str(kit), "--seed", "3", "--gradebook", url, "--isolation", _level(level)]
        + ["--format", "junit", "--output", str(tmp_path / "out"), "--due", "2026-03-01 17:00:00 UTC"],
        capture_output=True,
        timeout=GRADING_TIMEOUT,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 1, (done.stdout + done.stderr).decode("utf-8", "replace")[-3000:]
    for student in ("alice", "mallory", "zed", eve):
        page = course_dir / "feedback" / student / "tiny" / "tiny.html"
        no_escape(page.read_bytes(), str(page))
    assert "\\ud800" in (course_dir / "feedback" / "mallory" / "tiny" / "tiny.html").read_text()
    from nbgrader import api

    with api.Gradebook(url) as gb:
        students = ("alice", "mallory", "zed", "eve\\x1b[31m")
        scores = {s: gb.find_submission_notebook("tiny", "tiny", s).score for s in students}
    assert scores == {"alice": 2, "mallory": 0, "zed": 2, "eve\\x1b[31m": 2}
