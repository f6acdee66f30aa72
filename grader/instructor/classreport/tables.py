"""exercises.csv, checks.csv, mistakes.csv and unexplained.csv: the report's numbers for spreadsheets."""

from grader.instructor.classreport.stats import status_columns
from grader.spreadsheet import csv_text

EXERCISE_HEADER = (
    "topic",
    "exercise",
    "submissions",
    *status_columns(),
    "pass_rate",
    "mean_score",
    "max_score",
    "submissions_with_timeout",
    "submissions_with_error",
    "submissions_with_named_mistake",
)
CHECK_HEADER = ("topic", "exercise", "check", "hidden", "submissions", *status_columns(), "attempted", "flag")
MISTAKE_HEADER = ("topic", "exercise", "rank", "mistake", "submissions", "share_of_attempted", "message")


def number(value):
    """A number as a spreadsheet reads it: 4 decimals at most, no trailing zeros."""
    return f"{round(value, 4):g}"


def exercises_csv(rows):
    return _csv(
        EXERCISE_HEADER,
        (
            (
                e.topic,
                e.id,
                e.submissions,
                *(e.statuses[s] for s in status_columns()),
                number(e.pass_rate),
                number(e.mean_score),
                number(e.max_score),
                e.timed_out,
                e.errored,
                e.with_mistake,
            )
            for e in rows
        ),
    )


def checks_csv(rows):
    return _csv(
        CHECK_HEADER,
        (
            (
                c.topic,
                c.exercise,
                c.id,
                str(c.hidden).lower(),
                c.submissions,
                *(c.statuses[s] for s in status_columns()),
                c.attempted,
                c.flag,
            )
            for c in rows
        ),
    )


def mistakes_csv(rows):
    return _csv(
        MISTAKE_HEADER,
        ((m.topic, m.exercise, m.rank, m.mistake, m.submissions, number(m.share), m.message) for m in rows),
    )


UNEXPLAINED_HEADER = ("topic", "exercise", "check", "message_shape", "submissions", "example_student", "example")


def unexplained_csv(rows):
    return _csv(
        UNEXPLAINED_HEADER,
        ((u.topic, u.exercise, u.check, u.shape, u.submissions, *(u.example or ("", ""))) for u in rows),
    )


def _csv(header, rows):
    return csv_text(header, rows)
