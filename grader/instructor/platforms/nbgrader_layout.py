"""nbgrader's course folders: grade submitted/{student}/{assignment}/, write autograded/ and feedback/.

nbgrader keeps one folder per step, student and assignment (CourseDirectory's default
`directory_structure`, "{nbgrader_step}/{student_id}/{assignment_id}"). `nbgrader collect`
fills submitted/, with the time of submission in timestamp.txt (and, through the exchange,
submission_secret.txt). This module

- finds the submissions of an assignment (`find`), or recognises them among the paths given to
  `grade` (`detect`): the student id is the folder under submitted/, never the assignment's name;
- reads each timestamp.txt as nbgrader does (naive UTC) and flags it late against the due date;
- writes what nbgrader's own steps would: autograded/{student}/{assignment}/ with the graded
  files, timestamp.txt and one notebook per topic whose grade cells carry the exercise ids
  (formgrader opens autograded/.../{notebook}.ipynb for a submission, and the gradebook has a
  notebook per topic with a grade cell per exercise), and feedback/{student}/{assignment}/ with
  one HTML page per topic plus timestamp.txt and submission_secret.txt, which is what
  `nbgrader release_feedback` copies to the exchange.

Everything a learner wrote (code, printed output, the messages that quote it) is escaped in
the HTML pages.
"""

import datetime
import html
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import submission as learner_files
from grader.instructor.platforms import submission_files
from grader.results import PASSED
from grader.safe_text import safe_id

SUBMITTED, AUTOGRADED, FEEDBACK = "submitted", "autograded", "feedback"
SMALL_FILE = 4096  # timestamp.txt and submission_secret.txt are a line each
RESULTS_FILE = "fmgrade.json"


class LayoutError(Exception):
    """The course folder or a path is not nbgrader's layout; one line for a person."""


@dataclass
class Submission:
    student: str
    folder: Path  # submitted/{student}/{assignment}
    staged: submission_files.Staged = None
    timestamp: datetime.datetime = None  # naive UTC, as nbgrader keeps it
    timestamp_text: str = ""
    secret: str = ""  # submission_secret.txt, which release_feedback needs
    problems: list = field(default_factory=list)

    def seconds_late(self, due):
        if due is None or self.timestamp is None:
            return 0.0
        return max(0.0, (self.timestamp - due).total_seconds())


@dataclass
class Batch:
    root: Path  # the nbgrader course folder (CourseDirectory.root)
    assignment: str
    due: datetime.datetime = None  # naive UTC
    submissions: list = field(default_factory=list)
    staging: Path = None

    @property
    def staged_folders(self):
        return [s.staged.folder for s in self.submissions]

    def by_student(self):
        """{student id as `grade` names it (grader.safe_text.safe_id of the folder): submission}:
        an id that is not safe text (an escape sequence, invalid UTF-8) still finds its folder."""
        return {safe_id(s.student): s for s in self.submissions}

    def close(self):
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def step_path(root, step, student, assignment):
    """nbgrader's CourseDirectory.format_path(step, student, assignment) for the default layout."""
    return Path(root) / step / student / assignment


def find(root, assignment):
    """[(student, folder)] of every submission of `assignment` under ROOT/submitted/, by student."""
    root = Path(root)
    submitted = root / SUBMITTED
    if not submitted.is_dir():
        raise LayoutError(
            f"{root}: no {SUBMITTED}/ folder (nbgrader's course layout is {SUBMITTED}/STUDENT/ASSIGNMENT/)"
        )
    found = []
    for entry in sorted(os.scandir(submitted), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path) / assignment
        if folder.is_dir() and not folder.is_symlink():
            found.append((entry.name, folder))
    return found


# What an nbgrader course folder has beside submitted/ (`nbgrader quickstart` makes the first two):
# a plain folder that happens to be called "submitted" is not taken for one.
COURSE_MARKERS = ("nbgrader_config.py", "source", "gradebook.db")


def detect(paths):
    """(course root, assignment) when every path is ROOT/submitted/STUDENT/ASSIGNMENT with one
    ROOT and ASSIGNMENT, ROOT being an nbgrader course folder; None when no path looks like that;
    LayoutError when only some do."""
    shapes = []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        root = absolute.parent.parent.parent
        if absolute.parent.parent.name == SUBMITTED and any((root / m).exists() for m in COURSE_MARKERS):
            shapes.append((root, absolute.name))
        else:
            shapes.append(None)
    if not any(shapes):
        return None
    if None in shapes or len(set(shapes)) > 1:
        raise LayoutError(
            "mixed submissions: nbgrader's layout is grade-able one assignment of one course at a time "
            f"(ROOT/{SUBMITTED}/STUDENT/ASSIGNMENT); got {', '.join(str(p) for p in paths[:4])}"
        )
    return shapes[0]


def open_batch(root, assignment, topics, due=None, students=None):
    """Find and stage the submissions of `assignment` (only `students` when given)."""
    batch = Batch(Path(root), assignment, due, staging=Path(tempfile.mkdtemp(prefix="fmgrade-nbgrader-")))
    try:
        wanted = set(students) if students is not None else None
        for student, folder in find(root, assignment):
            if wanted is not None and student not in wanted:
                continue
            submission = Submission(student, folder)
            # staged under the student's id: `grade` names a submission after its folder
            submission.staged = submission_files.stage(folder, topics, batch.staging / student)
            submission.problems += submission.staged.problems
            _read_timestamp(submission)
            _read_secret(submission)
            batch.submissions.append(submission)
    except BaseException:
        batch.close()
        raise
    return batch


def parse_time(text):
    """A time as nbgrader reads it (nbgrader.utils.parse_utc), as naive UTC; ValueError if it is
    not one. "2026-03-01 17:00:00.000000 UTC" (what `nbgrader submit` writes), an offset
    ("... +0100") or a zone name ("... Europe/Paris") after the time; no zone means UTC.
    The same rules as nbgrader's, without importing nbgrader (seconds) to read a timestamp."""
    import dateutil.parser
    import dateutil.tz

    text = str(text).strip()
    try:
        parts = text.split(" ")
        if len(parts) == 3:
            zone = parts[2]
            try:
                zone = int(zone)
            except ValueError:
                zone = dateutil.tz.gettz(zone)
            moment = dateutil.parser.parse(" ".join(parts[:2] + ["TZ"]), tzinfos={"TZ": zone})
        else:
            moment = dateutil.parser.parse(text)
    except (ValueError, OverflowError, TypeError) as exc:
        raise ValueError(f"{text!r} is not a date and time ({exc})") from None
    if moment.tzinfo is not None:
        moment = (moment - moment.utcoffset()).replace(tzinfo=None)
    return moment


def _read_timestamp(submission):
    try:
        text = learner_files.read_bytes(submission.folder, "timestamp.txt", SMALL_FILE).decode("utf-8")
    except learner_files.Missing:
        return
    except learner_files.Unusable as exc:
        submission.problems.append(str(exc))
        return
    except UnicodeDecodeError as exc:
        submission.problems.append(f"timestamp.txt is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return
    submission.timestamp_text = text.strip()
    try:
        submission.timestamp = parse_time(text) if text.strip() else None
    except ValueError as exc:
        submission.problems.append(f"timestamp.txt: {exc}")


def _read_secret(submission):
    try:
        submission.secret = (
            learner_files.read_bytes(submission.folder, "submission_secret.txt", SMALL_FILE).decode("ascii").strip()
        )
    except (learner_files.Unusable, UnicodeDecodeError):
        submission.secret = ""


def gradebook_duedate(url, assignment):
    """The due date nbgrader's gradebook has for `assignment` (naive UTC), or None."""
    from nbgrader import api

    from grader.instructor import gradebook

    try:
        with api.Gradebook(gradebook.with_driver(url)) as gb:
            return gb.find_assignment(assignment).duedate
    except api.MissingEntry:
        return None
    except Exception as exc:  # a gradebook that cannot be read: say so, grading goes on without a due date
        raise LayoutError(
            f"gradebook {gradebook.mask_url(url)}: cannot read the due date of '{assignment}': "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


# --- writing -----------------------------------------------------------------------------


def write_outputs(batch, course, results):
    """autograded/ and feedback/ for every graded submission; returns the folders written."""
    by_student = batch.by_student()
    written = []
    for graded in results:
        submission = by_student.get(graded.student)
        if submission is None:
            continue
        written.append(_write_autograded(batch, course, submission, graded.report))
        written.append(_write_feedback(batch, course, submission, graded.report))
    return written


def _replace_folder(final, fill):
    """Fill a fresh sibling folder, then swap it in: a reader sees the old folder or the new one."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        fill(fresh)
        os.chmod(fresh, 0o755)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}-old-", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(fresh, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(fresh, final)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return final


def _record(batch, submission, report):
    seconds_late = submission.seconds_late(batch.due)
    return {
        "student": safe_id(submission.student),
        "assignment": batch.assignment,
        "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
        "duedate": batch.due.isoformat() if batch.due else None,
        "late": seconds_late > 0,
        "seconds_late": seconds_late,
        "problems": submission.problems,
        "found": submission.staged.found,
        "report": report.to_dict(),
    }


def _common_files(submission, folder):
    if submission.timestamp_text:
        (folder / "timestamp.txt").write_text(submission.timestamp_text + "\n", encoding="utf-8")
    if submission.secret:
        (folder / "submission_secret.txt").write_text(submission.secret, encoding="utf-8")


def _write_autograded(batch, course, submission, report):
    def fill(folder):
        for topic, where in submission.staged.found.items():
            dest = folder / where
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(submission.staged.folder / "exercises" / f"{topic}.py", dest)
        _common_files(submission, folder)
        for topic in report.topics:
            source = _source(submission, topic.id)
            (folder / f"{topic.id}.ipynb").write_text(notebook_json(course, topic, source), encoding="utf-8")
        (folder / RESULTS_FILE).write_text(
            json.dumps(_record(batch, submission, report), indent=2) + "\n", encoding="utf-8"
        )

    return _replace_folder(step_path(batch.root, AUTOGRADED, submission.student, batch.assignment), fill)


def _release_files(submission, folder):
    """What `nbgrader release_feedback` opens in every feedback folder, whatever was collected:
    timestamp.txt (only logged there: empty when none was collected) and submission_secret.txt
    (it names the released page). A submission collected without a secret gets a random one, so
    its page lands where no one can fetch it, rather than where every such student's would."""
    (folder / "timestamp.txt").write_text(
        submission.timestamp_text + "\n" if submission.timestamp_text else "", encoding="utf-8"
    )
    (folder / "submission_secret.txt").write_text(submission.secret or secrets.token_hex(16), encoding="utf-8")


def _write_feedback(batch, course, submission, report):
    def fill(folder):
        _release_files(submission, folder)
        for topic in report.topics:
            page = feedback_html(course, batch, submission, topic, report.problem)
            (folder / f"{topic.id}.html").write_text(page, encoding="utf-8")
        if not report.topics:  # grading failed before any topic: still one page naming why
            (folder / f"{batch.assignment}.html").write_text(
                feedback_html(course, batch, submission, None, report.problem), encoding="utf-8"
            )

    return _replace_folder(step_path(batch.root, FEEDBACK, submission.student, batch.assignment), fill)


def _source(submission, topic):
    path = submission.staged.folder / "exercises" / f"{topic}.py"
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


def notebook_json(course, topic, source):
    """A notebook for formgrader: the learner's code, then one autograded grade cell per exercise
    (nbgrader metadata, `grade_id` = the exercise id, as in the gradebook) showing its checks."""
    import nbformat
    from nbformat import v4

    cells = [
        v4.new_markdown_cell(
            f"# {topic.id}: graded by fmgrade\n\n"
            f"{_number(topic.score)}/{_number(topic.max_score)} points; "
            f"isolation {topic.isolation}, seed {topic.seed}."
        ),
        v4.new_code_cell(source or "# (no file was submitted for this topic)"),
    ]
    by_exercise = {}
    for check in topic.checks:
        by_exercise.setdefault(check.exercise, []).append(check)
    for exercise in topic.exercises(_order(course, topic.id)):
        lines = [
            f"{'ok' if c.status == PASSED else c.status:>10}  {c.id}{'  (hidden)' if c.hidden else ''}"
            + (f"\n            {c.message.strip()}" if c.status != PASSED and c.message.strip() else "")
            for c in by_exercise.get(exercise.id, [])
        ]
        cell = v4.new_code_cell(f"# fmgrade's checks of exercise '{exercise.id}'")
        cell.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "locked": True,
            "task": False,
            "grade_id": exercise.id,
            "points": _number(exercise.max_score),
            "schema_version": 3,
        }
        cell.outputs = [v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n")]
        cells.append(cell)
    notebook = v4.new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nbformat.validate(notebook)
    return nbformat.writes(notebook)


def _order(course, topic_id):
    try:
        return [e.id for e in course.topic(topic_id).exercises]
    except Exception:
        return []


def feedback_html(course, batch, submission, topic, problem=""):
    """One self-contained page: the topic's score, late flag, every check with its message, and the
    code that was graded. Everything from the submission is escaped."""
    e = html.escape
    seconds_late = submission.seconds_late(batch.due)
    title = f"{topic.id if topic else batch.assignment}: feedback for {safe_id(submission.student)}"
    when = submission.timestamp_text or "no timestamp.txt"
    late = (
        f"<p class=late>Submitted {_duration(seconds_late)} after the due date ({e(str(batch.due))} UTC).</p>"
        if seconds_late > 0
        else ""
    )
    parts = [
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
        ".passed{color:#176117}.failed,.error,.timeout{color:#a11}.late{color:#a11;font-weight:bold}"
        "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>Assignment <b>{e(batch.assignment)}</b>, submitted {e(when)}.</p>",
        late,
    ]
    if problem:
        parts.append(f"<p class=error>The autograder failed: {e(problem)}</p>")
    for note in submission.problems:
        parts.append(f"<p class=error>{e(note)}</p>")
    if topic is not None:
        parts.append(f"<h2>{_number(topic.score)} / {_number(topic.max_score)} points</h2>")
        parts.append("<table><tr><th>exercise</th><th>check</th><th>result</th><th>points</th><th>message</th></tr>")
        order = _order(course, topic.id)
        for check in sorted(topic.checks, key=lambda c: order.index(c.exercise) if c.exercise in order else len(order)):
            status = check.status
            message = e(check.message.strip())
            if check.output:
                message += f"<br>Your code printed:<pre>{e(check.output)}</pre>"
            parts.append(
                f"<tr><td>{e(check.exercise)}</td><td>{e(check.id)}{' (hidden)' if check.hidden else ''}</td>"
                f"<td class={e(status)}>{e(status)}</td><td>{_number(check.score)}/{_number(check.max_score)}</td>"
                f"<td>{message}</td></tr>"
            )
        parts.append("</table>")
        source = _source(submission, topic.id)
        parts.append(f"<h2>The code that was graded</h2><pre>{e(source) if source else '(no file)'}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def _duration(seconds):
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n)
    return text or f"{int(seconds)} s"


def _number(value):
    value = float(value)
    return int(value) if value.is_integer() else value
