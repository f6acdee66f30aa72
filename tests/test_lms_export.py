"""`fmgrade export canvas|moodle`: each LMS's documented gradebook import columns, students matched
to the roster, nobody's grade invented or dropped silently (grader/instructor/platforms/lms.py)."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from grader import cli
from grader.formats import RESULTS_FORMAT, RESULTS_FORMAT_VERSION
from grader.instructor.platforms import lms
from grader.results import FAILED, PASSED, CheckResult, Report, TopicResult

CANVAS_ROSTER = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Midterm (1234)\n"
    "    Points Possible,,,,,20\n"
    '"Lovelace, Ada",101,S-1,ada,Sec A,18\n'
    '"Hopper, Grace",102,S-2,Grace,Sec A,19\n'
    '"Turing, Alan",103,S-3,alan,Sec B,17\n'
)
MOODLE_ROSTER = (
    "First name,Last name,ID number,Institution,Department,Email address\n"
    "Ada,Lovelace,1001,,,ada@uni.example\n"
    "Grace,Hopper,1002,,,grace@uni.example\n"
)


def result(student, topics, version="v1", problem=""):
    """A results file as `fmgrade grade --format json` writes it: {topic: [(score, max), ...]}."""
    report = Report(
        [
            TopicResult(
                topic,
                [
                    CheckResult(f"c{i}", f"e{i}", PASSED if score == top else FAILED, score, top)
                    for i, (score, top) in enumerate(checks)
                ],
            )
            for topic, checks in topics.items()
        ],
        problem=problem,
    )
    data = {"format": RESULTS_FORMAT, "format_version": RESULTS_FORMAT_VERSION, "course_version": version}
    return json.dumps(data | {"student": student} | report.to_dict())


@pytest.fixture
def batch(tmp_path):
    """A results folder like `grade --output DIR` leaves (with its summary.csv), and the rosters."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "ada.json").write_text(result("ada", {"attention": [(2, 2), (1, 2)], "llama": [(0.5, 1)]}))
    (results / "Grace.json").write_text(result("grace", {"attention": [(4, 4)], "llama": [(1, 1)]}))
    (results / "summary.csv").write_text("student,total,max_total\n")  # not JSON: not read
    (tmp_path / "canvas.csv").write_text(CANVAS_ROSTER, encoding="utf-8")
    (tmp_path / "moodle.csv").write_text(MOODLE_ROSTER, encoding="utf-8")
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli.main, ["export", *map(str, args)])


def rows(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_canvas_per_topic_has_canvas_columns_points_possible_and_one_column_per_topic(batch):
    out = batch / "canvas-import.csv"
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", out, "--per-topic")
    assert got.exit_code == 0, got.output
    table = rows(out)
    assert table[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "fmgrade: attention",
        "fmgrade: llama",
    ]
    assert table[1] == ["Points Possible", "", "", "", "", "4", "1"]
    assert table[2:] == [  # roster order; matched without case (Grace / grace)
        ["Lovelace, Ada", "101", "S-1", "ada", "Sec A", "3", "0.5"],
        ["Hopper, Grace", "102", "S-2", "Grace", "Sec A", "4", "1"],
    ]
    assert "1 roster student(s) have no results (left out): alan" in got.output


def test_canvas_total_is_one_column_named_as_asked(batch):
    out = batch / "total.csv"
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", out, "--name", "Final")
    assert got.exit_code == 0, got.output
    table = rows(out)
    assert table[0][5:] == ["Final"] and table[1][5:] == ["5"]
    assert [r[5] for r in table[2:]] == ["3.5", "5"]


def test_moodle_has_its_identifier_columns_and_grade_items(batch):
    (batch / "results" / "ada.json").write_text(result("Ada@Uni.example", {"attention": [(2, 4)], "llama": [(1, 1)]}))
    (batch / "results" / "Grace.json").write_text(
        result("grace@uni.example", {"attention": [(0, 4)], "llama": [(0, 1)]})
    )
    out = batch / "moodle-import.csv"
    got = run("moodle", batch / "results", "--roster", batch / "moodle.csv", "--output", out, "--per-topic")
    assert got.exit_code == 0, got.output
    assert rows(out) == [  # no Points Possible row: Moodle maps every row to a user
        ["Email address", "ID number", "fmgrade: attention", "fmgrade: llama"],
        ["ada@uni.example", "1001", "2", "1"],
        ["grace@uni.example", "1002", "0", "0"],
    ]


def test_a_student_missing_from_the_roster_is_refused_by_name_and_nothing_is_written(batch):
    (batch / "results" / "mallory.json").write_text(result("mallory", {"attention": [(4, 4)], "llama": [(1, 1)]}))
    out = batch / "out.csv"
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", out)
    assert got.exit_code == 2
    assert "1 student(s) with results are not in the roster's 'SIS Login ID' column: mallory" in got.output
    assert not out.exists()


def test_match_names_another_roster_column(batch):
    out = batch / "out.csv"
    (batch / "results" / "ada.json").write_text(result("S-1", {"attention": [(4, 4)], "llama": [(1, 1)]}))
    (batch / "results" / "Grace.json").unlink()
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", out, "--match", "SIS User ID")
    assert got.exit_code == 0, got.output
    assert rows(out)[2][:4] == ["Lovelace, Ada", "101", "S-1", "ada"] and len(rows(out)) == 3


def test_failed_grading_posts_no_zero_and_is_named(batch):
    (batch / "results" / "Grace.json").write_text(result("grace", {}, problem="the worker could not start: bwrap"))
    out = batch / "out.csv"
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", out)
    assert got.exit_code == 1
    assert "grace: the worker could not start: bwrap" in got.output
    assert [r[0] for r in rows(out)[2:]] == ["Lovelace, Ada"]


def test_formula_like_roster_cells_stay_inert(batch):
    (batch / "canvas.csv").write_text(CANVAS_ROSTER.replace("Sec A,18", '=HYPERLINK("x"),18', 1), encoding="utf-8")
    out = batch / "out.csv"
    assert run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", out).exit_code == 0
    assert rows(out)[2][4] == '\'=HYPERLINK("x")'


@pytest.mark.parametrize(
    "change, fragment",
    [
        (
            lambda d: (d / "ada.json").write_text(result("ada", {"attention": [(1, 4)]}, version="v2")),
            "different course",
        ),
        (lambda d: (d / "copy.json").write_text(result("ADA", {"attention": [(1, 4)]})), "two results"),
        (lambda d: (d / "ada.json").write_text(result("ada", {"attention": [(2, 4)]})), "not graded on llama"),
        (
            lambda d: (d / "ada.json").write_text(result("ada", {"attention": [(2, 5)], "llama": [(0, 1)]})),
            "is out of 5 in",
        ),
        (lambda d: (d / "bad.json").write_text('{"format": "something else"}'), "bad.json: not fmgrade results"),
    ],
)
def test_results_that_cannot_make_one_gradebook_column_are_refused(batch, change, fragment):
    change(batch / "results")
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", batch / "out.csv")
    assert got.exit_code == 2 and fragment in got.output, got.output
    assert not (batch / "out.csv").exists()


def test_rosters_that_cannot_identify_students_are_refused(batch):
    names_only = batch / "names.csv"
    names_only.write_text("Student,Email\nAda,ada\nGrace,grace\n", encoding="utf-8")
    got = run("canvas", batch / "results", "--roster", names_only, "--output", batch / "out.csv", "--match", "Email")
    assert got.exit_code == 2 and "finds students by ID, SIS User ID or SIS Login ID" in got.output
    no_column = run("moodle", batch / "results", "--roster", batch / "canvas.csv", "--output", batch / "out.csv")
    assert no_column.exit_code == 2 and "no column 'Email address'" in no_column.output
    assert "Student, ID, SIS User ID" in no_column.output  # names the columns it has
    doubled = batch / "doubled.csv"
    doubled.write_text(CANVAS_ROSTER + '"Ada again",104,S-4,ADA,Sec B\n', encoding="utf-8")
    got = run("canvas", batch / "results", "--roster", doubled, "--output", batch / "out.csv")
    assert got.exit_code == 2 and "'ADA' is on lines 3 and 6 (column SIS Login ID)" in got.output


def test_a_short_roster_row_is_a_student_without_results_not_a_crash(batch):
    (batch / "canvas.csv").write_text(CANVAS_ROSTER + "Nobody,105\n", encoding="utf-8")
    got = run("canvas", batch / "results", "--roster", batch / "canvas.csv", "--output", batch / "out.csv")
    assert got.exit_code == 0 and "(left out): alan" in got.output, got.output


def test_moodle_roster_without_an_identifier_field_is_refused():
    with pytest.raises(lms.ExportError, match="finds students by Email address, Username or ID number"):
        lms.read_roster("First name,GitHub\nAda,ada-gh\n", "r.csv", "moodle", match="GitHub")


@pytest.mark.parametrize(
    "value, text", [(10.0, "10"), (12.5, "12.5"), (1 / 3, "0.3333"), (0.0, "0"), (1234567, "1234567")]
)
def test_numbers_are_written_as_a_gradebook_reads_them(value, text):
    assert lms._number(value) == text
