"""The Click commands and options the grading platforms add to `fmgrade` (the instructor's side;
`fmgrade classroom` is a learner's command, in grader.cli.learner).

    fmgrade shards pick I/N [ID...]           the ids (arguments or stdin lines) of shard I of N
    fmgrade shards merge CSV... --output F    one summary.csv from the shards' summary.csv files
    fmgrade export canvas|moodle RESULTS... --roster CSV --output F   an LMS gradebook import file
    fmgrade grade ... --shard I/N             (option) grade only shard I of N of the submissions
    fmgrade grade ... --shard auto            (option) I/N from Slurm, a Kubernetes Indexed Job or FMGRADE_SHARD
    fmgrade grade --nbgrader DIR --assignment A [--due TIME]   (options) nbgrader's layout
"""

import csv
import io
import os
import sys
from pathlib import Path

import click

from grader.cli.common import CourseProblem, parse_topics
from grader.instructor.platforms import shards as shards_mod


def shard_option(ctx, param, value):
    """Click callback for `--shard I/N`, or `--shard auto` (I/N from the engine's environment:
    shards.from_environment), which says where it found the shard."""
    if value is None:
        return None
    try:
        if value.strip().lower() == shards_mod.AUTO:
            shard, where = shards_mod.from_environment(os.environ)
            click.echo(f"--shard auto: shard {shard} ({where})", err=True)
            return shard
        return shards_mod.parse(value)
    except shards_mod.ShardError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def due_option(ctx, param, value):
    """Click callback for `--due TIME` (any time nbgrader reads, e.g. '2026-03-01 17:00:00 Europe/Paris')."""
    if value is None:
        return None
    from grader.instructor.platforms import nbgrader_layout

    try:
        return nbgrader_layout.parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group()
def shards():
    """Split a batch over several graders (`grade --shard I/N`) and merge their results."""


@shards.command()
@click.argument("shard", callback=shard_option)
@click.argument("ids", nargs=-1)
def pick(shard, ids):
    """Print the student ids (arguments, or one per line on stdin) that belong to SHARD (I/N)."""
    if not ids:
        ids = [line.strip() for line in sys.stdin if line.strip()]
    for student in shards_mod.select(ids, shard):
        click.echo(student)


@shards.command()
@click.argument("summaries", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The merged summary.csv."
)
@click.option(
    "--expect",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Student ids (one a line) that must all have a row: exit 1 naming any without.",
)
def merge(summaries, output, expect):
    """Merge the summary.csv files of several shards into one (OUTPUT)."""
    from grader import files

    texts = []
    for path in summaries:
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise CourseProblem(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    rejected = []
    try:
        merged = shards_mod.merge_summaries(texts, rejected)
    except shards_mod.ShardError as exc:
        raise CourseProblem(str(exc)) from None
    files.write_atomically(output, merged)
    rows = merged.count("\n") - 1
    click.echo(f"merged {len(texts)} shard summar{'y' if len(texts) == 1 else 'ies'} ({rows} students) into {output}")
    if rejected:  # a failed shard's rows are no grades: left out, and the merge fails
        click.echo(click.style(f"{len(rejected)} row(s) left out:", fg="red"), err=True)
        for line in rejected[:20]:
            click.echo(f"  {line}", err=True)
    status = 1 if rejected else 0
    if expect:
        wanted = [line.strip() for line in expect.read_text(encoding="utf-8").splitlines() if line.strip()]
        have = {row[0] for row in list(csv.reader(io.StringIO(merged)))[1:] if row}
        missing = [s for s in wanted if s not in have]
        if missing:
            click.echo(
                click.style(
                    f"{len(missing)} student(s) of {expect} have no result: {', '.join(missing[:20])}"
                    + (" ..." if len(missing) > 20 else ""),
                    fg="red",
                ),
                err=True,
            )
            status = 1
    sys.exit(status)


@click.command(name="export")
@click.argument("lms_name", metavar="canvas|moodle", type=click.Choice(["canvas", "moodle"]))
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--roster",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The class roster as the LMS exports it (Canvas: the gradebook export; Moodle: a grade export).",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The import file.")
@click.option("--per-topic/--total", default=False, show_default=True, help="One grade column per topic, or one total.")
@click.option(
    "--match",
    metavar="COLUMN",
    help="The roster column holding fmgrade's student ids (default: SIS Login ID for Canvas, Email address for Moodle).",
)
@click.option("--name", default="fmgrade", show_default=True, help="The grade column (per topic: 'NAME: topic').")
def export(lms_name, results, roster, output, per_topic, match, name):
    """Write the gradebook import CSV of Canvas or Moodle from `fmgrade grade --format json`
    RESULTS (files, or folders of them) for the students of ROSTER.

    Exit 2, writing nothing, when a student with results is not in the roster; exit 1 when some
    student's grading failed (left out of the file, and named)."""
    from grader import files
    from grader.instructor.platforms import lms

    try:
        made = lms.export(
            lms_name, lms.read_results(results), lms.read_roster_file(roster, lms_name, match), per_topic, name
        )
    except lms.ExportError as exc:
        raise CourseProblem(str(exc)) from None
    try:
        files.write_atomically(output, made.text)
    except OSError as exc:
        raise CourseProblem(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {made.written} student(s) to {output} for {lms_name} ({', '.join(made.columns)})")
    if made.without_results:
        click.echo(
            f"{len(made.without_results)} roster student(s) have no results (left out): "
            + lms.names_text(made.without_results),
            err=True,
        )
    if made.failed:
        click.echo(
            click.style(
                f"{len(made.failed)} student(s) whose grading failed are left out (grade them again): "
                + "; ".join(f"{student}: {reason}" for student, reason in made.failed),
                fg="red",
            ),
            err=True,
        )
        sys.exit(1)


# --- hooks into `fmgrade grade` -----------------------------------------------------------


def prepare_grading(submissions, topics, topics_given, shard, nbgrader_root, assignment, due, gradebook):
    """(submission folders to grade, topics, nbgrader batch or None) for `grade`'s options.

    nbgrader's layout is used with --nbgrader COURSE_DIR --assignment NAME, or when every
    submission given is COURSE_DIR/submitted/STUDENT/ASSIGNMENT. Its submissions are staged
    (copied to a temporary folder per student, removed when the command ends)."""
    from grader.instructor import grade as grade_mod
    from grader.instructor.platforms import nbgrader_layout

    students = None
    try:
        if nbgrader_root is None and submissions:
            detected = nbgrader_layout.detect(submissions)
            if detected is not None:
                nbgrader_root, found = detected
                if assignment and assignment != found:
                    raise CourseProblem(f"--assignment {assignment}: the submissions given are of assignment '{found}'")
                assignment, students = found, [Path(p).resolve().parent.name for p in submissions]
        if nbgrader_root is not None:
            if not assignment:
                raise CourseProblem("--nbgrader needs --assignment NAME (the folder under submitted/STUDENT/)")
            if submissions and students is None:
                raise CourseProblem("--nbgrader grades every submission of the assignment: give no SUBMISSIONS with it")
            if assignment in topics and not topics_given:
                topics = [assignment]  # an nbgrader assignment named after a topic grades that topic
            if due is None and gradebook:
                due = nbgrader_layout.gradebook_duedate(gradebook, assignment)
            batch = nbgrader_layout.open_batch(nbgrader_root, assignment, topics, due, students)
            click.get_current_context().call_on_close(batch.close)
            click.echo(
                f"nbgrader: {len(batch.submissions)} submission(s) of '{assignment}' in {nbgrader_root}"
                + (f", due {due} UTC" if due else ""),
                err=True,
            )
            folders = batch.staged_folders
        else:
            if not submissions:
                raise CourseProblem(
                    "give SUBMISSIONS, or nbgrader's course folder: --nbgrader COURSE_DIR --assignment NAME"
                )
            if assignment or due:
                raise CourseProblem("--assignment and --due are for nbgrader's layout (--nbgrader COURSE_DIR)")
            batch, folders = None, list(submissions)
    except nbgrader_layout.LayoutError as exc:
        raise CourseProblem(str(exc)) from None
    chosen = shards_mod.select(folders, shard, key=grade_mod.student_id)
    if shard is not None:
        click.echo(f"shard {shard}: {len(chosen)} of {len(folders)} submission(s)", err=True)
    return chosen, topics, batch


def finish_grading(batch, course, results):
    """After grading: nbgrader's autograded/ and feedback/ folders. Returns False (having said
    why) when they could not be written."""
    if batch is None:
        return True
    from grader.instructor.platforms import nbgrader_layout

    by_student = batch.by_student()
    for graded in results:  # name the submission as the instructor knows it, not the staged copy
        if graded.student in by_student:
            graded.submission = str(by_student[graded.student].folder)
    try:
        nbgrader_layout.write_outputs(batch, course, results)
    except OSError as exc:
        click.echo(
            click.style(
                f"nbgrader: cannot write autograded/ or feedback/ in {batch.root}: "
                f"{exc.strerror or exc} ({exc.filename})",
                fg="red",
            ),
            err=True,
        )
        return False
    click.echo(f"nbgrader: wrote autograded/ and feedback/ for {len(results)} submission(s) in {batch.root}", err=True)
    return True


def gradebook_args(batch, graded):
    """Extra arguments of gradebook.record for one graded submission of nbgrader's layout."""
    if batch is None:
        return {}
    submission = batch.by_student().get(graded.student)
    return {
        "assignment": batch.assignment,
        "timestamp": submission.timestamp if submission else None,
        "duedate": batch.due,
    }


# --- hook into `fmgrade release` ----------------------------------------------------------


def gradescope_bundle(course, kit, zip_path, topics, hidden_visibility):
    """Write autograder.zip from the freshly built kit (for `release --gradescope ZIP`)."""
    from grader.course import CourseError
    from grader.instructor import grade as grade_mod
    from grader.instructor.platforms import gradescope

    try:
        chosen = tuple(grade_mod.select_topics(course, parse_topics(topics))) if topics else ()
        return gradescope.build_bundle(
            kit, zip_path, gradescope.Config(topics=chosen, hidden_visibility=hidden_visibility)
        )
    except (CourseError, gradescope.BundleError) as exc:
        raise CourseProblem(f"--gradescope: {exc}") from None


def failed_results(submissions, reason):
    """One Graded per submission whose report only says why grading could not start."""
    from grader.instructor import grade as grade_mod
    from grader.results import Report

    return [grade_mod.Graded(grade_mod.student_id(s), str(s), Report(problem=reason)) for s in submissions or []]
