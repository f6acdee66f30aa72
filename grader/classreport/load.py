"""Reading `fmgrade grade --format json` results files for the class report.

A file counts only when it is whole and fmgrade's: `"format": "fmgrade-results"`, a
format_version this code reads, a course_version, and topics and checks of the right types
and ranges. Anything else is skipped with one line naming the file and the reason (the field
that is wrong, where there is one); a file is never half counted.
"""
import json
import math
from dataclasses import dataclass
from pathlib import Path

from grader.reporters import RESULTS_FORMAT, RESULTS_FORMAT_VERSION
from grader.results import ERROR, NOT_STARTED, PASSED, STATUSES, TIMEOUT

MAX_FILE_BYTES = 64 * 2**20  # one submission's results are tens of KB
EXAMPLE_LENGTH = 200  # characters kept of a message's first line


class ReportInputError(Exception):
    """A RESULTS argument that cannot be read at all; the message is one line for a person."""


class NotResults(Exception):
    """This file is not usable fmgrade results; the message says why."""


@dataclass
class Skipped:
    source: str
    reason: str


@dataclass(slots=True)
class ExerciseOutcome:
    """One exercise of one submission, summarised as grader.results does (first problem wins)."""
    id: str
    status: str
    score: float
    max_score: float
    timed_out: bool = False  # some check of it timed out
    errored: bool = False  # some check of it ended in an error
    mistakes: tuple = ()  # ids of the known mistakes its checks named


@dataclass(slots=True)
class TopicOutcome:
    id: str
    score: float
    max_score: float
    exercises: list
    checks: list  # the check objects of the JSON, validated; [] when the source has none
    isolation: str = ""
    seed: object = None


@dataclass(slots=True)
class Submission:
    student: str
    source: str
    course_version: str
    topics: list


def find_results(paths):
    """The results files named by `paths`: files as given, folders' `*.json` files (not
    recursive, sorted). Returns (files, skipped) where skipped notes empty folders."""
    found, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
            if not inside:
                skipped.append(Skipped(str(path), "folder has no .json results files"))
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ReportInputError(f"{path}: no such file or folder")
    return found, skipped


def read_submission(path):
    """The Submission in the results file `path`; raises NotResults naming what is wrong."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise NotResults(f"larger than {MAX_FILE_BYTES // 2**20} MB: not one submission's results")
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise NotResults(f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise NotResults("not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, or a number too large for Python
        where = f" (line {exc.lineno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotResults(f"not JSON{where}") from None
    return parse_submission(data, default_student=path.stem, source=str(path))


def parse_submission(data, default_student, source):
    if not isinstance(data, dict):
        raise NotResults(f"not fmgrade results: a JSON {type(data).__name__}, not an object")
    marker = data.get("format")
    if marker != RESULTS_FORMAT:
        what = f"\"format\" is {marker!r}" if marker is not None else "no \"format\" field"
        raise NotResults(f"not fmgrade results: {what}, not \"{RESULTS_FORMAT}\"")
    if data.get("format_version") != RESULTS_FORMAT_VERSION:
        raise NotResults(f"format_version {data.get('format_version')!r}: this fmgrade reads {RESULTS_FORMAT_VERSION}")
    version = data.get("course_version")
    if not isinstance(version, str) or not version:
        raise NotResults("course_version: missing or not text")
    student = data.get("student", default_student)
    if not isinstance(student, str) or not student.strip():
        raise NotResults("student: expected non-empty text")
    topics = data.get("topics")
    if not isinstance(topics, list):
        raise NotResults("topics: missing or not a list")
    return Submission(student.strip(), source, version, [_topic(raw, i) for i, raw in enumerate(topics)])


def _topic(raw, i):
    if not isinstance(raw, dict):
        raise NotResults(f"topics[{i}]: expected an object")
    topic_id, isolation, seed, checks = raw.get("id"), raw.get("isolation", ""), raw.get("seed"), raw.get("checks")
    if not isinstance(topic_id, str) or not topic_id:
        raise NotResults(f"topics[{i}].id: expected non-empty text")
    if not isinstance(isolation, str):
        raise NotResults(f"topics[{i}].isolation: expected text")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise NotResults(f"topics[{i}].seed: expected a whole number")
    if not isinstance(checks, list):
        raise NotResults(f"topics[{i}].checks: missing or not a list")
    for j, check in enumerate(checks):
        _validate_check(check, i, j)
    exercises = exercise_outcomes(checks)
    return TopicOutcome(topic_id, sum(e.score for e in exercises), sum(e.max_score for e in exercises),
                        exercises, checks, isolation, seed)


_NUMBER = (int, float)


def _validate_check(check, i, j):
    """Raise NotResults naming the field of topics[i].checks[j] that is wrong. This runs for
    every check of every submission, so the common case is a few type tests."""
    if type(check) is not dict:
        raise NotResults(f"topics[{i}].checks[{j}]: expected an object")
    try:
        check_id, exercise, status, score, top = (check["id"], check["exercise"], check["status"],
                                                  check["score"], check["max_score"])
    except KeyError as exc:
        raise NotResults(f"topics[{i}].checks[{j}]: missing field '{exc.args[0]}'") from None
    where = f"topics[{i}].checks[{j}]"  # cheap: an f-string of two ints
    if type(check_id) is not str or not check_id:
        raise NotResults(f"{where}.id: expected non-empty text")
    if type(exercise) is not str or not exercise:
        raise NotResults(f"{where}.exercise: expected non-empty text")
    if status not in STATUSES:
        raise NotResults(f"{where}.status: {status!r} is not one of {', '.join(STATUSES)}")
    if type(score) not in _NUMBER or type(top) not in _NUMBER or not math.isfinite(top) or not 0 <= score <= top:
        raise NotResults(f"{where}: score {score!r} of max_score {top!r} is not a number from 0 to max_score")
    for key, kind in (("mistake", str), ("message", str), ("hidden", bool)):
        if key in check and type(check[key]) is not kind:
            raise NotResults(f"{where}.{key}: expected {'text' if kind is str else 'true or false'}")


def exercise_outcomes(checks):
    """Per exercise, in first-seen order: the status grader.results.TopicResult.exercises()
    gives (passed; not_started; else the first other status), points, time-outs, errors and
    the named mistakes."""
    grouped = {}
    for check in checks:
        grouped.setdefault(check["exercise"], []).append(check)
    outcomes = []
    for exercise, group in grouped.items():
        first_problem, not_started, timed_out, errored, mistakes = None, False, False, False, []
        for check in group:
            status = check["status"]
            if status == NOT_STARTED:
                not_started = True
            elif status != PASSED:
                first_problem = first_problem or status
                timed_out = timed_out or status == TIMEOUT
                errored = errored or status == ERROR
            mistake = check.get("mistake")
            if mistake and mistake not in mistakes:
                mistakes.append(mistake)
        status = first_problem or (NOT_STARTED if not_started else PASSED)
        outcomes.append(ExerciseOutcome(exercise, status, sum(c["score"] for c in group),
                                        sum(c["max_score"] for c in group), timed_out, errored, tuple(mistakes)))
    return outcomes


def first_line(message):
    line = message.strip().partition("\n")[0]
    return line if len(line) <= EXAMPLE_LENGTH else line[:EXAMPLE_LENGTH - 3] + "..."
