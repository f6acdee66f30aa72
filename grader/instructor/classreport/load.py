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

from grader.formats import RESULTS_FORMAT, RESULTS_FORMAT_VERSION
from grader.results import ERROR, NOT_STARTED, PASSED, STATUSES, TIMEOUT
from grader.safe_text import safe_tree

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
    mistakes: list = ()  # ids of the known mistakes its checks named, first seen first


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
    kit_hash: str = ""  # which kit graded it (grader.instructor.kit.kit_hash); "" in older results


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
        elif path.exists():
            raise ReportInputError(f"{path}: not a regular file or a folder")
        else:
            raise ReportInputError(f"{path}: no such file or folder")
    return found, skipped


def read_submission(path):
    """The Submission in the results file `path`; raises NotResults naming what is wrong."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise NotResults(f"larger than {MAX_FILE_BYTES // 2**20} MB: not one submission's results")
        data = safe_tree(json.loads(path.read_bytes()))
    except OSError as exc:
        raise NotResults(f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise NotResults("not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long for Python
        where = f" (line {exc.lineno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotResults(f"not JSON{where}") from None
    except RecursionError:
        raise NotResults("not JSON that fmgrade writes (nested too deeply)") from None
    return parse_submission(data, default_student=path.stem, source=str(path))


def parse_submission(data, default_student, source):
    if not isinstance(data, dict):
        raise NotResults(f"not fmgrade results: a JSON {type(data).__name__}, not an object")
    marker = data.get("format")
    if marker != RESULTS_FORMAT:
        what = f'"format" is {marker!r}' if marker is not None else 'no "format" field'
        raise NotResults(f'not fmgrade results: {what}, not "{RESULTS_FORMAT}"')
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
    kit_hash = data.get("kit_hash", "")
    if not isinstance(kit_hash, str):
        raise NotResults("kit_hash: not text")
    return Submission(student.strip(), source, version, [_topic(raw, i) for i, raw in enumerate(topics)], kit_hash)


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
    exercises = _exercises(checks, f"topics[{i}]")
    return TopicOutcome(
        topic_id,
        sum(e.score for e in exercises),
        sum(e.max_score for e in exercises),
        exercises,
        checks,
        isolation,
        seed,
    )


_STATUS_SET = frozenset(STATUSES)
_NUMBER = (int, float)  # type(x) in _NUMBER leaves out bool


def _exercises(checks, where):
    """Validate each check and sum them up per exercise, in first-seen order, with the status
    grader.results.TopicResult.exercises() gives: passed when all pass, not_started when the
    rest is untouched, else the first problem. This runs for every check of every submission
    (a million for a class of 5,000), so it is one loop of type tests; only a bad check pays
    for finding out which field is wrong."""
    outcomes = {}
    statuses, number, inf = _STATUS_SET, _NUMBER, math.inf  # locals: this loop is the hot path
    for j, check in enumerate(checks):
        if type(check) is not dict:
            raise NotResults(f"{where}.checks[{j}]: expected an object")
        get = check.get
        check_id, exercise, status, score, top = (
            get("id"),
            get("exercise"),
            get("status"),
            get("score"),
            get("max_score"),
        )
        mistake = get("mistake", "")
        if not (
            type(check_id) is str
            and type(exercise) is str
            and type(status) is str
            and status in statuses
            and type(score) in number
            and type(top) in number
            and 0 <= score <= top < inf
            and check_id
            and exercise
            and type(mistake) is str
            and type(get("message", "")) is str
            and type(get("hidden", False)) is bool
        ):
            raise NotResults(f"{where}.checks[{j}]{_what_is_wrong(check)}")
        outcome = outcomes.get(exercise)
        if outcome is None:
            outcome = outcomes[exercise] = ExerciseOutcome(exercise, PASSED, 0, 0, False, False, [])
        outcome.score += score
        outcome.max_score += top
        if status != PASSED:
            if status == NOT_STARTED:
                if outcome.status == PASSED:
                    outcome.status = NOT_STARTED
            else:
                if outcome.status == PASSED or outcome.status == NOT_STARTED:
                    outcome.status = status
                if status == TIMEOUT:
                    outcome.timed_out = True
                elif status == ERROR:
                    outcome.errored = True
            if mistake and mistake not in outcome.mistakes:
                outcome.mistakes.append(mistake)
    return list(outcomes.values())


def _what_is_wrong(check):
    """'.field: what is wrong' for a check that failed the fast test in _exercises."""
    for key in ("id", "exercise", "status", "score", "max_score"):
        if key not in check:
            return f": missing field '{key}'"
    for key in ("id", "exercise"):
        if type(check[key]) is not str or not check[key]:
            return f".{key}: expected non-empty text"
    if check["status"] not in STATUSES:
        return f".status: {check['status']!r} is not one of {', '.join(STATUSES)}"
    for key, kind in (("mistake", str), ("message", str), ("hidden", bool)):
        if key in check and type(check[key]) is not kind:
            return f".{key}: expected {'text' if kind is str else 'true or false'}"
    return f": score {check['score']!r} of max_score {check['max_score']!r} is not a number from 0 to max_score"


def first_line(message):
    line = message.strip().partition("\n")[0]
    return line if len(line) <= EXAMPLE_LENGTH else line[: EXAMPLE_LENGTH - 3] + "..."
