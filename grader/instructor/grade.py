"""`fmgrade grade`: visible and hidden checks on submissions, one Report per submission.

Only `exercises/<topic>.py` is taken from a submission, read without following links (see
grader.submission); its own tests, grader, conftest or course.yml are never read. A missing,
linked, oversized or unreadable file gives that topic's checks one clear error and zero
points; a submission that overruns its time budget gets a timeout for the checks cut short.
A failure of the grader itself (a topic whose checks cannot run, a grading process that dies)
is named in the result's `problem` and the rest is graded: nothing stops the batch.
"""

import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from grader.course import CourseError
from grader.instructor import batch
from grader.instructor import budget as budget_mod
from grader.judge import runner
from grader.results import Report
from grader.safe_text import safe_id, safe_text
from grader.spreadsheet import csv_text

HARD_LIMIT_GRACE = 60  # seconds beyond its budget before a submission's grading process is stopped


@dataclass
class Graded:
    student: str
    submission: str
    report: Report
    problem: str = ""  # a note about the submission as a whole (e.g. folder missing)


def student_id(submission):
    """The folder's name, as safe text (grader.safe_text.safe_id): a name is chosen by whoever
    submits, and may hold escape sequences, invalid UTF-8 (lone surrogates here) or 255 bytes."""
    return safe_id(Path(submission).resolve().name)


def safe_graded(graded):
    """`graded` with every string safe text: what reaches a report, a terminal, XML, HTML, CSV
    or the gradebook (learner text is made safe in the sandbox already; this covers text the
    grader built from it, and the submission's path)."""
    from grader import formats

    graded.submission = safe_text(graded.submission, 2000)
    graded.problem = safe_text(graded.problem)
    graded.report = formats.safe_report(graded.report)
    return graded


def duplicate_ids(submissions):
    """One line per student id that several submissions would share (compared without case:
    alice.json and Alice.json are one file on macOS and Windows)."""
    by_id = defaultdict(list)
    for submission in submissions:
        by_id[student_id(submission).casefold()].append(safe_text(str(submission), 1000))
    return [
        f"student id '{student_id(paths[0])}' is shared by {' and '.join(paths)}"
        for paths in by_id.values()
        if len(paths) > 1
    ]


def select_topics(course, topics=None):
    available = [t.id for t in course.topics if course.available(t.id)]
    if not topics:
        return available
    unknown = [t for t in topics if t not in {x.id for x in course.topics}]
    if unknown:
        raise CourseError(f"--topics: unknown topic(s) {', '.join(unknown)} (topics: {', '.join(available)})")
    missing = [t for t in topics if t not in available]
    if missing:
        raise CourseError(f"--topics: not available yet in this course: {', '.join(missing)}")
    return list(topics)


def grade_submission(course, submission, topics, seed, isolation="auto", seconds=None):
    """Grade one submission folder on `topics` with the kit's checks (hidden included), within
    `seconds` of wall-clock time in all when given (checks cut short get a timeout)."""
    submission = Path(submission)
    problem = _folder_problem(submission)
    clock = budget_mod.Budget(seconds) if seconds else None
    report = Report()
    failures = []
    for topic in topics:
        learner_file = submission / "exercises" / f"{topic}.py"
        try:
            report.topics.append(
                runner.run_topic(
                    course,
                    topic,
                    learner_file,
                    hidden=True,
                    seed=seed,
                    isolation=isolation,
                    root=submission,
                    budget=clock,
                )
            )
        except Exception as exc:  # the grader's own failure: every format names it, the other topics still run
            failures.append(f"grading {topic} failed: {type(exc).__name__}: {exc}")
    report.problem = "; ".join(failures)
    if clock is not None and any(c.message == clock.reason for t in report.topics for c in t.checks):
        problem = problem or clock.reason
    return safe_graded(Graded(student_id(submission), str(submission), report, problem))


def _folder_problem(submission):
    if not submission.is_dir():
        return f"submission {submission} is not a folder"
    exercises = submission / "exercises"
    if exercises.is_symlink():
        return f"submission {submission}: exercises/ is a symbolic link, which is never followed"
    if not exercises.is_dir():
        return f"submission {submission} has no exercises/ folder"
    return ""


def grade_or_report(course, submission, topics, seed, isolation="auto", seconds=None):
    """grade_submission, except that a failure outside any topic gives this submission a
    result naming it instead of ending the batch."""
    try:
        return grade_submission(course, submission, topics, seed, isolation, seconds)
    except Exception as exc:  # noqa: BLE001 - one submission must never end the batch
        return ungraded(
            course,
            submission,
            topics,
            seed,
            f"not graded: the grader failed on this submission ({type(exc).__name__}: {safe_text(exc, 2000)})",
            isolation,
        )


def ungraded(course, submission, topics, seed, reason, isolation="auto"):
    """A result for a submission the grader failed on: every check of `topics` at 0 points with
    `reason` (so every format shows it, and max scores stay comparable) and the report's problem
    set; no learner code runs."""
    try:
        report = Report(
            [
                runner.run_topic(
                    course, topic, os.devnull, hidden=True, seed=seed, isolation=isolation, unusable=reason
                )
                for topic in topics
            ],
            problem=reason,
        )
    except Exception:  # noqa: BLE001 - even the checks cannot be listed: the reason alone
        report = Report(problem=reason)
    return safe_graded(Graded(student_id(submission), str(submission), report))


def unlisted(submission, reason):
    """The last resort, made without pytest: no checks, just the reason."""
    return safe_graded(Graded(student_id(submission), str(submission), Report(problem=reason)))


def new_seed():
    return random.SystemRandom().randrange(2**31)


def grade_many(course, submissions, topics, seed, jobs=1, isolation="auto", on_done=None, seconds=None):
    """Grade every submission; `on_done(graded)` is called as each finishes (write it then: an
    interrupt raises KeyboardInterrupt and returns nothing). Results keep the order of
    `submissions`. `seconds`: each submission's budget (default: from the topics' limits).
    With jobs > 1, submissions are graded in parallel processes."""
    seconds = seconds or budget_mod.default_seconds(course, topics)
    on_done = on_done or (lambda graded: None)
    if jobs <= 1 or len(submissions) <= 1:
        results = []
        for submission in submissions:
            results.append(grade_or_report(course, submission, topics, seed, isolation, seconds))
            on_done(results[-1])
        return results
    return batch.run(
        len(submissions),
        task=lambda i: (grade_or_report, (course, submissions[i], topics, seed, isolation, seconds)),
        fallback=lambda i, reason: (ungraded, (course, submissions[i], topics, seed, reason, isolation)),
        last_resort=lambda i, reason: unlisted(submissions[i], reason),
        jobs=jobs,
        on_result=lambda i, graded: on_done(graded),
        time_limit=seconds + HARD_LIMIT_GRACE,
    )


def summary_rows(results):
    topics = sorted({t.id for g in results for t in g.report.topics})
    header = ["student", *topics, "total", "max_total"]
    rows = []
    for graded in results:
        scores = {t.id: t.score for t in graded.report.topics}
        rows.append(
            [
                graded.student,  # made inert by grader.spreadsheet, as every cell
                *(f"{scores.get(t, 0):g}" for t in topics),
                f"{graded.report.score:g}",
                f"{graded.report.max_score:g}",
            ]
        )
    return header, rows


def summary_csv(results):
    return csv_text(*summary_rows(results))


def summary_table(results):
    header, rows = summary_rows(results)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in [header, *rows])
