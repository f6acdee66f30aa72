"""The instructor's commands: dev (check, record, stubs), grade, release and report."""

import shutil
import sys
from pathlib import Path

import click

from grader import course as course_mod
from grader import files, interrupts
from grader import formats as reporters
from grader.cli import platforms
from grader.cli.common import (
    CourseProblem,
    course_here,
    interrupted,
    isolation_for,
    isolation_option,
    load_course,
    parse_topics,
)
from grader.course import CourseError
from grader.learner import rendering as report_text


@click.group()
def dev():
    """Instructor commands."""


@dev.command("check")
@click.option("--topics", help="Comma-separated topic ids (default: all).")
def dev_check(topics):
    """Prove the course is sound: outline, stubs, checks, mutants. Exit 1 naming each problem."""
    from grader.instructor import devcheck

    course = load_course()
    selected = parse_topics(topics)
    findings = devcheck.check_course(course, selected)
    click.echo(report_text.findings_table(findings))
    problems = [f for f in findings if not f.ok]
    click.echo("")
    if problems:
        click.echo(click.style(f"{len(problems)} problem(s):", fg="red", bold=True))
        for f in problems:
            click.echo(f"  {f.topic}: {f.what}: {f.detail}")
        sys.exit(1)
    click.echo(click.style("The course is sound.", fg="green", bold=True))


@dev.command("record")
@click.option("--topics", help="Comma-separated topic ids (default: every available topic).")
def dev_record(topics):
    """Record the solution's answers (and each known mistake's) on the visible checks' inputs."""
    from grader.instructor import record

    course = load_course()
    selected = parse_topics(topics) or [t.id for t in course.topics if course.available(t.id)]
    try:
        for topic, path, answers, fingerprints in record.record(course, selected):
            click.echo(
                f"{topic}: {answers} answers, {fingerprints} mistake fingerprints -> {path.relative_to(course.root)}"
            )
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


@dev.command()
@click.option("--check", "check_only", is_flag=True, help="Only report stubs that differ; exit 1 if any.")
@click.option("--topics", help="Comma-separated topic ids (default: every topic with a solution).")
def stubs(check_only, topics):
    """Regenerate exercises/ from solutions/ (answer regions become TODOs)."""
    from grader import stubgen

    course = load_course()
    selected = parse_topics(topics)
    try:
        if check_only:
            stale = [t for t in stubgen.drifted(course) if not selected or t in selected]
            for topic in stale:
                click.echo(f"exercises/{topic}.py differs from what solutions/{topic}.py generates")
            sys.exit(1 if stale else 0)
        for path in stubgen.write_stubs(course, selected):
            click.echo(f"wrote {path.relative_to(course.root)}")
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


@click.command()
@click.argument("submissions", nargs=-1, type=click.Path(path_type=Path))
@click.option("--kit", type=click.Path(file_okay=False, path_type=Path), help="Grading kit (default: this course).")
@click.option("--topics", help="Comma-separated topic ids (default: every available topic).")
@click.option("--seed", type=int, help="Seed for the hidden checks' inputs (default: chosen per run).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "junit", "gradescope"]), default="text", show_default=True
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="File for one submission; a folder (one file each plus summary.csv) for several.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Submissions graded in parallel."
)
@click.option(
    "--gradebook", metavar="URL", help="Record topic scores in an nbgrader gradebook (e.g. sqlite:///gradebook.db)."
)
@click.option("--student", metavar="ID", help="Student id in the gradebook (default: the submission folder's name).")
@click.option(
    "--shard",
    metavar="I/N|auto",
    callback=platforms.shard_option,
    help="Grade only shard I of N (by a hash of the student id), for N graders in parallel; auto: I/N from "
    "a Slurm array, a Kubernetes Indexed Job (with FMGRADE_SHARD_COUNT) or FMGRADE_SHARD.",
)
@click.option(
    "--nbgrader",
    "nbgrader_root",
    type=click.Path(file_okay=False, path_type=Path),
    help="nbgrader's course folder: grade submitted/*/ASSIGNMENT, write autograded/ and feedback/.",
)
@click.option("--assignment", help="The nbgrader assignment to grade (with --nbgrader).")
@click.option(
    "--due",
    metavar="TIME",
    callback=platforms.due_option,
    help="Due date for nbgrader submissions' late flag (default: the gradebook's).",
)
@click.option(
    "--timeout",
    "seconds",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Wall-clock time one submission may take in all (default: the sum of its topics' limits).",
)
@isolation_option(
    "Sandbox for learner code (auto: bwrap, namespaces or a user id of its own; "
    "process: none, and every report says so)."
)
def grade(
    submissions,
    kit,
    topics,
    seed,
    fmt,
    output,
    jobs,
    gradebook,
    student,
    shard,
    nbgrader_root,
    assignment,
    due,
    seconds,
    isolation,
):
    """Grade SUBMISSIONS (folders with exercises/*.py) on visible and hidden checks.

    Each result is written as soon as its submission is graded. Ctrl-C stops at once and keeps
    the results finished; the kit must not change while it grades (exit 2 if it does)."""
    from grader.instructor import grade as grade_mod
    from grader.instructor import kit as kit_mod

    if student and len(submissions) > 1:
        raise CourseProblem("--student names one student: with several submissions, their folder names are used")
    if student and not gradebook:
        raise CourseProblem("--student only makes sense with --gradebook URL")
    if gradebook:
        _require_gradebook_extra(gradebook)  # before grading, not after an hour of it

    try:
        course = course_mod.load(kit) if kit else load_course()
        selected = grade_mod.select_topics(course, parse_topics(topics))
    except CourseError as exc:
        if output is not None:  # a CI job still finds its results file, naming why there are no grades
            _write_grades(None, platforms.failed_results(submissions, str(exc)), fmt, output)
        raise CourseProblem(str(exc)) from None
    submissions, selected, layout = platforms.prepare_grading(
        list(submissions), selected, bool(topics), shard, nbgrader_root, assignment, due, gradebook
    )
    duplicates = grade_mod.duplicate_ids(submissions)
    if duplicates:
        raise CourseProblem(
            "two submissions would get one result: "
            + "; ".join(duplicates)
            + ". Give each submission a folder named for its student (e.g. submissions/<id>/) and grade again."
        )
    level = isolation_for(isolation, kit_roots=[course.root])
    seed = seed if seed is not None else grade_mod.new_seed()
    writer = _GradeWriter(course, fmt, output, submissions)
    guard = kit_mod.Guard(course.root, skip=[output] if output else [])
    staged = layout.by_student() if layout is not None else {}

    def done(graded):
        guard.check()  # a submission that changed the kit is not written, and the batch stops
        if graded.student in staged:  # name it as the instructor knows it, not by its staged copy
            graded.submission = str(staged[graded.student].folder)
        writer.add(graded)
        bar.update(1)

    try:
        with (
            interrupts.handled(),
            kit_mod.no_bytecode(),
            click.progressbar(
                length=len(submissions),
                label=f"grading (seed {seed}, isolation {level})",
                file=sys.stderr,
                show_pos=True,
            ) as bar,
        ):
            results = grade_mod.grade_many(
                course, list(submissions), selected, seed, jobs, isolation=level, on_done=done, seconds=seconds
            )
        guard.check()
    except KeyboardInterrupt:
        writer.flush(interrupted=True)
        interrupted(f"{writer.kept()}; nothing was recorded for the submissions being graded")
    except kit_mod.KitChanged as exc:
        raise CourseProblem(
            "the grading kit changed while grading, so the batch was stopped (a submission may have "
            f"written into it): {', '.join(exc.changed)}. {writer.kept().capitalize()}; rebuild the kit "
            "(fmgrade release --kit) and grade the rest again."
        ) from None
    writer.flush()
    layout_written = platforms.finish_grading(layout, course, results)
    if gradebook:
        _record_grades(gradebook, results, student, course, layout)
    if not layout_written or any(g.report.problem for g in results):
        sys.exit(2)  # the grader failed somewhere (named in every format): not the learners' doing
    sys.exit(0 if all(g.report.score == g.report.max_score and not g.problem for g in results) else 1)


def _require_gradebook_extra(url):
    from grader.instructor import extras

    try:
        extras.require("--gradebook", "nbgrader")
        if url.startswith("postgresql"):
            extras.require("a PostgreSQL gradebook", "psycopg", "psycopg2")
    except extras.MissingExtra as exc:
        raise CourseProblem(str(exc)) from None


def _record_grades(url, results, student, course, layout=None):
    from grader.instructor import gradebook as gradebook_mod  # imports nbgrader (about 2 s): only when asked

    try:
        for graded in results:
            gradebook_mod.record(
                url, student or graded.student, graded.report, course, **platforms.gradebook_args(layout, graded)
            )
    except gradebook_mod.GradebookError as exc:
        raise CourseProblem(str(exc)) from None
    click.echo(f"recorded {len(results)} submission(s) in the gradebook", err=True)


def _write_grades(course, results, fmt, output):
    """Write finished results all at once (`grade` hands them to a _GradeWriter one by one)."""
    writer = _GradeWriter(course, fmt, output, [g.submission for g in results])
    for graded in results:
        writer.add(graded)
    writer.flush()


class _GradeWriter:
    """Writes each submission's result the moment it is graded; summary.csv always lists the
    finished ones, in the order the submissions were given."""

    EXTENSIONS = {"text": "txt", "json": "json", "junit": "xml", "gradescope": "json"}

    def __init__(self, course, fmt, output, submissions):
        from grader.instructor import grade as grade_mod

        self.course, self.fmt, self.output = course, fmt, output
        self.order = {grade_mod.student_id(s): i for i, s in enumerate(submissions or [])}
        self.single = len(submissions or []) == 1 and (output is None or bool(output.suffix))
        self.finished = []
        if output is not None and not self.single:
            self._safely(output, lambda: output.mkdir(parents=True, exist_ok=True))

    def _safely(self, path, write):
        try:
            write()
        except OSError as exc:
            raise CourseProblem(f"cannot write {path}: {exc.strerror or exc} ({self.kept()})") from None

    def render(self, graded):
        if self.fmt == "text":
            return _text_grade(self.course, graded)
        if self.fmt == "json":  # marked for `report`
            return reporters.to_json(graded.report, course=self.course, student=graded.student)
        return reporters.FORMATS[self.fmt](graded.report)

    def add(self, graded):
        from grader.instructor import grade as grade_mod

        self.finished.append(graded)
        self.finished.sort(key=lambda g: self.order.get(g.student, len(self.order)))
        if self.single and self.output is None:
            click.echo(self.render(graded), nl=False)
        elif self.single:
            self._safely(self.output, lambda: files.write_atomically(self.output, self.render(graded)))
        elif self.output is not None:
            path = self.output / f"{graded.student}.{self.EXTENSIONS[self.fmt]}"
            self._safely(path, lambda: files.write_atomically(path, self.render(graded)))
            summary = self.output / "summary.csv"
            self._safely(summary, lambda: files.write_atomically(summary, grade_mod.summary_csv(self.finished)))

    def flush(self, interrupted=False):
        """What is printed once, at the end (or when interrupted: then only if something finished)."""
        from grader.instructor import grade as grade_mod

        if self.single or (interrupted and not self.finished):
            return
        if self.output is None:
            click.echo(grade_mod.summary_table(self.finished), nl=False)
            return
        if not self.finished:  # an empty batch (an empty shard) still has its summary
            summary = self.output / "summary.csv"
            self._safely(summary, lambda: files.write_atomically(summary, grade_mod.summary_csv([])))
        click.echo(f"wrote {len(self.finished)} result(s) and summary.csv to {self.output}")

    def kept(self):
        where = f" in {self.output}" if self.output is not None else ""
        return f"{len(self.finished)} finished result(s) kept{where}"


def _text_grade(course, graded):
    parts = [f"submission {graded.submission} (student {graded.student})"]
    if graded.problem:
        parts.append(click.style(graded.problem, fg="red"))
    if graded.report.problem:
        parts.append(click.style(f"The autograder failed: {graded.report.problem}", fg="red"))
    parts += [str(report_text.topic_report(course, topic)) for topic in graded.report.topics]
    parts.append(f"Total: {graded.report.score:g}/{graded.report.max_score:g}")
    drawn = [topic for topic in graded.report.topics if topic.random_inputs]
    if drawn:
        parts.append(str(report_text.seed_line(drawn[0])))
    return "\n\n".join(parts) + "\n"


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--kit", type=click.Path(path_type=Path), help="Also write the grading kit here (keep it private).")
@click.option(
    "--gradescope",
    "gradescope_zip",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write Gradescope's autograder.zip here (needs --kit; private too).",
)
@click.option("--gradescope-topics", metavar="a,b", help="Topics the Gradescope assignment grades (default: all).")
@click.option(
    "--gradescope-hidden",
    type=click.Choice(["after_published", "after_due_date", "hidden", "visible"]),
    default="after_published",
    show_default=True,
    help="When students see the hidden checks' results on Gradescope.",
)
def release(out, kit, gradescope_zip, gradescope_topics, gradescope_hidden):
    """Write the student release to OUT (and OUT.tar.gz); with --kit, the grading kit too."""
    from grader.instructor import release as release_mod

    course = load_course()
    if gradescope_zip and not kit:
        raise CourseProblem("--gradescope needs --kit KIT: the bundle holds the grading kit")
    try:
        leaks = release_mod.build_release(course, out)
        if leaks:
            shutil.rmtree(out)
            raise CourseProblem("the release would leak solution text, so it was not written:\n  " + "\n  ".join(leaks))
        archive = release_mod.write_archive(out, out.with_name(out.name + ".tar.gz"))
        click.echo(f"wrote the student release to {out} and {archive}")
        if kit:
            release_mod.build_kit(course, kit)
            kit_archive = release_mod.write_archive(kit, kit.with_name(kit.name + ".tar.gz"), private=True)
            click.echo(f"wrote the grading kit to {kit} and {kit_archive} (keep them private)")
        if gradescope_zip:
            bundle = platforms.gradescope_bundle(course, kit, gradescope_zip, gradescope_topics, gradescope_hidden)
            click.echo(f"wrote Gradescope's autograder bundle to {bundle} (private: it holds the kit)")
    except release_mod.ReleaseError as exc:
        raise CourseProblem(str(exc)) from None


@click.command()
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for report.html, exercises.csv, checks.csv and mistakes.csv.",
)
@click.option(
    "--gradebook", metavar="URL", help="Read exercise scores from an nbgrader gradebook instead (it holds no mistakes)."
)
@click.option(
    "--course",
    "course_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The course the results were graded with (default: the course in this folder, if any).",
)
def report(results, output, gradebook, course_dir):
    """What the class gets wrong: a report from grade's JSON RESULTS (files or folders)."""
    try:
        from grader.instructor.classreport import build, plots
        from grader.instructor.gradebook import GradebookError
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("grader."):
            raise
        raise CourseProblem("`fmgrade report` is an instructor command: the student release does not have it") from None

    if bool(results) == bool(gradebook):
        raise CourseProblem(
            "give grade's JSON RESULTS (files or folders) or --gradebook URL, not both"
            if results
            else "nothing to report on: give grade's JSON RESULTS or --gradebook URL"
        )
    try:
        course = course_mod.load(course_dir) if course_dir else course_here()
        context = build.make_report(results, output, course, gradebook)
    except (CourseError, build.ReportInputError, GradebookError, plots.PlotsUnavailable) as exc:
        raise CourseProblem(str(exc)) from None
    click.echo(build.terminal_summary(context, output))
