"""What every `fmgrade` command shares: the exit code of a course error, loading the course,
reading progress, the `--isolation` and `--topics` options."""

import sys

import click

from grader import course as course_mod
from grader import interrupts
from grader.course import CourseError
from grader.learner import progress as progress_mod


class CourseProblem(click.ClickException):
    """A broken course or a bad argument: exit code 2, never a traceback."""

    exit_code = 2


def interrupted(what):
    click.echo(f"\ninterrupted: {what}", err=True)
    sys.exit(interrupts.EXIT_CODE)


def load_course():
    try:
        return course_mod.load()
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


def course_here():
    """The course around the current folder, or None outside any course."""
    try:
        root = course_mod.find_root()
    except CourseError:
        return None
    return course_mod.load(root)


def read_progress(root):
    progress = progress_mod.load(root)
    if progress.warning:
        click.echo(click.style(f"warning: {progress.warning}", fg="yellow"), err=True)
    return progress


def parse_topics(text):
    """`--topics a, b,c` as ["a", "b", "c"]; None when the option was not given (or empty)."""
    return [t.strip() for t in text.split(",") if t.strip()] or None if text else None


ISOLATION_LEVELS = ("auto", "bwrap", "namespaces", "user", "process")


def isolation_option(help_text):
    return click.option(
        "--isolation", type=click.Choice(ISOLATION_LEVELS), default="auto", show_default=True, help=help_text
    )


def isolation_for(wanted, kit_roots=None):
    """The level learner code runs at: for `grade` (kit_roots given) a sandbox unless asked
    otherwise, for `check` the strongest available. Exit 2 with one line when impossible."""
    from grader.sandbox import isolation

    try:
        if kit_roots is None:
            return isolation.for_checking(wanted)
        level = isolation.for_grading(wanted, kit_roots)
    except isolation.IsolationUnavailable as exc:
        raise CourseProblem(str(exc)) from None
    if level in ("user", "process"):
        click.echo(
            click.style(
                f"warning: --isolation {level}: learner code runs without a sandbox "
                "(it can read this machine's files); every report says so",
                fg="yellow",
            ),
            err=True,
        )
    return level
