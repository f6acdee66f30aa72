"""`fmgrade export canvas|moodle RESULTS... --roster CSV --output FILE`: a gradebook import file.

Most courses post final grades in a learning management system, whose gradebook imports a CSV
file of fixed columns. This module turns `fmgrade grade --format json` results into that file,
one column per topic (`per_topic`) or one total, matched to the students of a roster the
instructor exports from the LMS itself.

Canvas (Grades > Import). The file Canvas's own gradebook export writes, and reads back: the
columns `Student`, `ID`, `SIS User ID`, `SIS Login ID`, `Section`, then one column per
assignment; a column whose name is not an assignment yet creates one. Canvas finds a student by
`ID`, `SIS User ID` or `SIS Login ID`, so the roster must be Canvas's gradebook export (or have
one of those columns); its second row, `Points Possible`, gives each column's maximum. Documented
in Instructure's Canvas guides ("How do I import grades in the Gradebook?", "How do I export
grades in the Gradebook?") and summarised, with the required columns, by Ohio State's
CarmenCanvas guide: teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/
import-csv-file-carmen-grades.

Moodle (Grade administration > Import > CSV file). Moodle maps one identifier column of the file
("Map from") to a user field ("Map to": email address, username or ID number) and every other
column to a grade item, or to a new grade item named after the column. The file here has the
roster's identifier columns (`Email address`, `Username`, `ID number`, as Moodle's own export
names them) and the grade columns. MoodleDocs, "Grade import":
docs.moodle.org/311/en/Grade_import.

A result's student id is matched to the roster column `match` (by default `SIS Login ID` for
Canvas, `Email address` for Moodle), ignoring case. Nothing is guessed: a student with results
but no roster row stops the export and is named (their grade would go nowhere); results from two
course versions, a student with two results, or a total over different topics stop it too.
Roster students without results, and students whose grading failed (the results name why; no
zero is posted for them), are left out of the file and listed. Every cell goes through
grader.spreadsheet.csv_text, which keeps formula-like ids and names inert.
"""

import csv
import io
import json
from dataclasses import dataclass, field

from grader.instructor.classreport import load
from grader.safe_text import safe_text
from grader.spreadsheet import csv_text

MAX_ROSTER_BYTES = 16 * 2**20  # a roster of 100,000 students is a few MB

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_KEYS = ("ID", "SIS User ID", "SIS Login ID")  # what Canvas finds a student by
POINTS_POSSIBLE = "Points Possible"
MOODLE_KEYS = ("Email address", "Username", "ID number")  # Moodle's "Map from" user fields
DEFAULT_MATCH = {"canvas": "SIS Login ID", "moodle": "Email address"}
LMS_NAMES = tuple(DEFAULT_MATCH)


class ExportError(Exception):
    """Why no import file can be written; the message is for a person."""


@dataclass
class Export:
    text: str  # the CSV file
    written: int  # students in it
    without_results: list = field(default_factory=list)  # roster ids that have no results
    failed: list = field(default_factory=list)  # (student, reason) whose grading failed
    columns: list = field(default_factory=list)  # the grade columns, in order


@dataclass
class Roster:
    header: list
    rows: list  # dicts, in the roster's order, Canvas's Points Possible row left out
    match: str

    def shown(self, row):
        return (row.get(self.match) or "").strip()  # a short row has None in its missing cells

    def key(self, row):
        return self.shown(row).casefold()


def read_roster(text, origin, lms, match=None):
    """The Roster in CSV `text`; raises ExportError naming what is wrong."""
    match = match or DEFAULT_MATCH[lms]
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))  # Excel writes a byte-order mark
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise ExportError(f"{origin}: the roster is empty (expected a CSV file with a header row)")
    reader.fieldnames = header
    if match not in header:
        raise ExportError(
            f"{origin}: no column '{match}' to match student ids with (columns: {', '.join(header)}); "
            "name the column that holds them with --match"
        )
    wanted = CANVAS_KEYS if lms == "canvas" else MOODLE_KEYS
    if not any(column in header for column in wanted):
        source = "its gradebook export" if lms == "canvas" else "its grade export (plain text file)"
        raise ExportError(
            f"{origin}: {lms} finds students by {', '.join(wanted[:-1])} or {wanted[-1]}, and the roster has "
            f"none of them: use {lms}'s own roster ({source})"
        )
    roster, seen = Roster(header, [], match), {}
    for row in reader:
        if (row.get("Student") or "").strip() == POINTS_POSSIBLE:
            continue  # Canvas's export has it under the header
        key = roster.key(row)
        if key and key in seen:
            raise ExportError(
                f"{origin}: '{roster.shown(row)}' is on lines {seen[key]} and {reader.line_num} (column {match})"
            )
        seen[key] = reader.line_num
        roster.rows.append(row)
    return roster


def read_results(paths):
    """{student key: load.Submission} from results files and folders; raises ExportError for a
    file that is not fmgrade's results, a student with two results, or two course versions."""
    try:
        found, _ = load.find_results(paths)
    except load.ReportInputError as exc:
        raise ExportError(str(exc)) from None
    if not found:
        raise ExportError(f"no results files in {', '.join(map(str, paths))} (fmgrade grade --format json)")
    by_student, versions = {}, {}
    for path in found:
        try:
            submission = load.read_submission(path)
        except load.NotResults as exc:
            raise ExportError(f"{path}: {exc}") from None
        key = submission.student.casefold()
        if key in by_student:
            raise ExportError(
                f"student '{submission.student}' has two results: {by_student[key].source} and {submission.source}"
            )
        by_student[key] = submission
        versions.setdefault(submission.course_version, submission.source)
    if len(versions) > 1:
        raise ExportError(
            "the results are from different course versions ("
            + ", ".join(f"{v}, e.g. {source}" for v, source in versions.items())
            + "): export each version's results on its own"
        )
    return by_student


def export(lms, results, roster, per_topic=False, name="fmgrade"):
    """The Export of `results` ({key: Submission}) for `roster` in `lms`'s import format."""
    enrolled = {roster.key(row) for row in roster.rows}
    unknown = sorted(s.student for key, s in results.items() if key not in enrolled)
    if unknown:
        raise ExportError(
            f"{len(unknown)} student(s) with results are not in the roster's '{roster.match}' column: "
            + names_text(unknown)
            + ". Add them to the roster, or name the column that holds their ids with --match."
        )
    graded, failed, without = [], [], []
    for row in roster.rows:
        submission = results.get(roster.key(row))
        if submission is None:
            if roster.key(row):
                without.append(roster.shown(row))
        elif not submission.topics:
            failed.append((submission.student, _problem(submission.source)))
        else:
            graded.append((row, submission))
    columns, maxima, cells = _grades(graded, per_topic, name)
    if lms == "canvas":
        identity = list(CANVAS_COLUMNS)
        first = [[POINTS_POSSIBLE, *[""] * (len(identity) - 1), *(_number(m) for m in maxima)]]
    else:
        identity = [c for c in MOODLE_KEYS if c in roster.header]
        first = []
    body = [[row.get(c, "") or "" for c in identity] + values for (row, _), values in zip(graded, cells)]
    return Export(csv_text(identity + columns, first + body), len(body), without, failed, columns)


def _grades(graded, per_topic, name):
    """(column names, their maxima, one list of cells per graded student)."""
    topics, first = {}, {}  # topic -> max_score, first seen first (results list topics in course order)
    for _row, submission in graded:
        for topic in submission.topics:
            if topics.setdefault(topic.id, topic.max_score) != topic.max_score:
                raise ExportError(
                    f"topic '{topic.id}' is out of {topics[topic.id]:g} in {first[topic.id]} and out of "
                    f"{topic.max_score:g} in {submission.source}: grade every student with one kit"
                )
            first.setdefault(topic.id, submission.source)
    if per_topic:
        columns = [f"{name}: {t}" for t in topics]
        maxima = list(topics.values())
        cells = []
        for _row, submission in graded:
            score = {t.id: t.score for t in submission.topics}
            cells.append([_number(score[t]) if t in score else "" for t in topics])
        return columns, maxima, cells
    for _row, submission in graded:
        missing = [t for t in topics if t not in {x.id for x in submission.topics}]
        if missing:
            raise ExportError(
                f"student '{submission.student}' was not graded on {', '.join(missing)}, which others were: "
                "a total would compare different work (export --per-topic, or grade them on every topic)"
            )
    cells = [[_number(sum(t.score for t in submission.topics))] for _row, submission in graded]
    return [name], [sum(topics.values())], cells


def _problem(source):
    """Why grading failed, as the results file says (`problem`), for a result without topics."""
    try:
        with open(source, "rb") as handle:
            problem = json.loads(handle.read(load.MAX_FILE_BYTES)).get("problem")
    except (OSError, ValueError, AttributeError):
        problem = None
    return load.first_line(safe_text(problem)) if isinstance(problem, str) and problem.strip() else "graded on no topic"


def _number(value):
    """12.5 -> '12.5', 10.0 -> '10': what a gradebook reads, to four decimals."""
    text = f"{round(float(value), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def names_text(names, shown=20):
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def read_roster_file(path, lms, match=None):
    """read_roster for a file; raises ExportError when it cannot be read."""
    try:
        if path.stat().st_size > MAX_ROSTER_BYTES:
            raise ExportError(f"{path}: larger than {MAX_ROSTER_BYTES // 2**20} MB, not a roster")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not UTF-8 text (save the roster as CSV UTF-8)") from None
    try:
        return read_roster(text, str(path), lms, match)
    except csv.Error as exc:
        raise ExportError(f"{path}: not CSV ({exc})") from None
