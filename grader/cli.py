"""The `fmgrade` command: thin Click commands over plain functions.

Exit codes: 0 all checks pass, 1 some check fails, 2 usage or course errors.
"""
import sys

import click

from grader import course as course_mod
from grader import progress as progress_mod
from grader import report_text, stubgen
from grader.course import CourseError
from grader.results import Report


class CourseProblem(click.ClickException):
    """A broken course or a bad argument: exit code 2, never a traceback."""

    exit_code = 2


def _load_course():
    try:
        return course_mod.load()
    except (CourseError, stubgen.StubError) as exc:
        raise CourseProblem(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """fmgrade: an auto-graded course on foundation models."""


def _progress(root):
    progress = progress_mod.load(root)
    if progress.warning:
        click.echo(click.style(f"warning: {progress.warning}", fg="yellow"), err=True)
    return progress


@main.command()
@click.argument("topic")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--seed", type=int, help="Replay the random inputs of an earlier run.")
def check(topic, fmt, seed):
    """Run the visible checks of TOPIC against exercises/TOPIC.py."""
    from grader import check as check_mod  # imports pytest and torch: only when checking

    course = _load_course()
    state = _progress(course.root)  # read before learner code runs: it cannot forge what we keep
    try:
        result = check_mod.check_topic(course, topic, seed=seed)
    except (CourseError, stubgen.StubError) as exc:
        raise CourseProblem(str(exc)) from None
    progress = progress_mod.record(course.root, result, state)
    if fmt == "json":
        click.echo(report_text.json_report(Report([result])))
    else:
        path = course.exercise_path(topic)
        click.echo(report_text.topic_report(course, result))
        click.echo("")
        click.echo(report_text.next_step(course, result, path, progress_mod.suggest_next(course, progress)))
    sys.exit(0 if result.max_score and result.score == result.max_score else 1)


@main.command()
def progress():
    """Your progress across the whole outline, and what to do next."""
    course = _load_course()
    state = _progress(course.root)
    click.echo(report_text.progress_report(course, state, progress_mod.suggest_next(course, state)))


@main.command()
@click.argument("topic")
@click.argument("exercise", required=False)
def hint(topic, exercise):
    """Hints for an exercise of TOPIC (default: the first one you have not passed)."""
    course = _load_course()
    try:
        topic_obj = course.topic(topic)
        if exercise is None:
            state = _progress(course.root)
            pending = [e for e in topic_obj.exercises if not progress_mod.passed(state, topic, e.id)]
            exercise = (pending or topic_obj.exercises)[0].id
        click.echo(report_text.hint_report(course, topic_obj, topic_obj.exercise(exercise)))
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


@main.command("list")
def list_topics():
    """The topics of the course and where you stand in each."""
    course = _load_course()
    click.echo(report_text.list_report(course, _progress(course.root)))


@main.group()
def dev():
    """Instructor commands."""


@dev.command()
@click.option("--check", "check_only", is_flag=True, help="Only report stubs that differ; exit 1 if any.")
def stubs(check_only):
    """Regenerate exercises/ from solutions/ (answer regions become TODOs)."""
    course = _load_course()
    try:
        if check_only:
            stale = stubgen.drifted(course)
            for topic in stale:
                click.echo(f"exercises/{topic}.py differs from what solutions/{topic}.py generates")
            sys.exit(1 if stale else 0)
        for path in stubgen.write_stubs(course):
            click.echo(f"wrote {path.relative_to(course.root)}")
    except stubgen.StubError as exc:
        raise CourseProblem(str(exc)) from None
