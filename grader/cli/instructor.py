"""The instructor's commands: dev (check, record, stubs), grade, release and report."""

import dataclasses
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
from grader.results import Report
from grader.safe_text import safe_text


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
@click.option(
    "--seed",
    type=int,
    help="Seed for the hidden checks' inputs, for every submission (default: each student's own, "
    "derived from the kit's secret and the student id, the same on every run).",
)
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
@click.option(
    "--resume",
    is_flag=True,
    help="Skip submissions whose JSON results in --output were graded with this kit and seed.",
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
    resume,
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
    if resume and (output is None or fmt != "json" or output.suffix):
        raise CourseProblem("--resume needs --format json and an --output folder (where the results are)")
    if gradebook:
        _require_gradebook_extra(gradebook)  # before grading, not after an hour of it
        _open_gradebook(gradebook)

    try:
        course = course_mod.load(kit) if kit else load_course()
        selected = grade_mod.select_topics(course, parse_topics(topics))
        problem = kit_mod.grading_problem(course, selected)
        if problem:
            raise kit_mod.KitError(problem)
    except (CourseError, kit_mod.KitError) as exc:
        if output is not None:  # a CI job still finds its results file, naming why there are no grades
            _write_grades(None, platforms.failed_results(submissions, str(exc)), fmt, output)
        raise CourseProblem(str(exc)) from None
    submissions, selected, layout = platforms.prepare_grading(
        list(submissions), selected, bool(topics), shard, nbgrader_root, assignment, due, gradebook
    )
    try:
        seeds, kit_hash = _kit_facts(course, seed, student, shard, needed=bool(submissions))
    except kit_mod.KitError as exc:
        raise CourseProblem(str(exc)) from None
    duplicates = grade_mod.duplicate_ids(submissions)
    if duplicates:
        raise CourseProblem(
            "two submissions would get one result: "
            + "; ".join(duplicates)
            + ". Give each submission a folder named for its student (e.g. submissions/<id>/) and grade again."
        )
    level = isolation_for(isolation, kit_roots=[course.root])
    _say_cgroups()
    writer = _GradeWriter(course, fmt, output, submissions)
    guard = kit_mod.Guard(course.root, skip=[output] if output else [])
    staged = layout.by_student() if layout is not None else {}
    book = _BatchGradebook(gradebook, student, course, layout, writer)
    earlier = grade_mod.finished_before(output, submissions, seeds, kit_hash) if resume else {}
    if earlier:
        click.echo(f"--resume: {len(earlier)} submission(s) already graded with this kit and seed", err=True)
    pending = [s for s in submissions if grade_mod.student_id(s) not in earlier]

    def done(graded):
        guard.check()  # a submission that changed the kit is not written, and the batch stops
        if graded.student in staged:  # name it as the instructor knows it, not by its staged copy
            graded.submission = str(staged[graded.student].folder)
        graded.kit_hash = kit_hash
        with interrupts.protected():  # its file and its gradebook rows, whole
            writer.add(graded)
            book.add(graded)
        bar.update(1)

    try:
        for graded in earlier.values():  # listed again, and in the gradebook (recording twice changes nothing)
            writer.keep(graded)
            book.add(graded)
        with (
            interrupts.handled(),
            kit_mod.no_bytecode(),
            click.progressbar(
                length=len(pending),
                label=f"grading ({seeds.describe()}, isolation {level})",
                file=sys.stderr,
                show_pos=True,
            ) as bar,
        ):
            grade_mod.grade_many(course, pending, selected, seeds, jobs, isolation=level, on_done=done, seconds=seconds)
        guard.check()
        results = writer.finished  # resumed and fresh, in the submissions' order
    except KeyboardInterrupt:
        writer.flush(interrupted=True)
        interrupted(f"{writer.kept()}; nothing was recorded for the submissions being graded")
    except kit_mod.KitChanged as exc:
        raise CourseProblem(
            "the grading kit changed while grading, so the batch was stopped (a submission may have "
            f"written into it): {', '.join(exc.changed)}. {writer.kept().capitalize()}; rebuild the kit "
            "(fmgrade release --kit) and grade the rest again."
        ) from None
    except GradebookFailed as exc:
        writer.flush(interrupted=True)
        raise CourseProblem(
            f"{exc} The batch was stopped: {writer.kept()}; {book.recorded} recorded in the gradebook. "
            "Load the rest later with `fmgrade gradebook import RESULTS --gradebook URL`, or grade again with --resume."
        ) from None
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - a grader bug: never the status of an ordinary batch (1)
        writer.flush(interrupted=True)
        raise CourseProblem(
            f"the grader failed ({type(exc).__name__}: {safe_text(exc, 2000)}); {writer.kept()}. "
            "Please report this with the command that was run."
        ) from None
    writer.flush()
    layout_written = platforms.finish_grading(layout, course, results)
    if gradebook:
        click.echo(f"recorded {book.recorded} submission(s) in the gradebook", err=True)
    sys.exit(grade_exit_status(results, layout_written))


# `fmgrade grade`'s exit statuses (README, "Exit statuses of grade"; the kit's workflow reads them)
EXIT_ALL_FULL = 0  # every submission graded, each with full marks
EXIT_SOME_LOST = 1  # every submission graded, some lost points: an ordinary batch
EXIT_NOT_ALL_GRADED = 2  # some submission could not be graded (its result says why), or nothing could be


def grade_exit_status(results, layout_written=True):
    """0 and 1 only when every submission was graded and its result written; 2 otherwise."""
    if not layout_written or any(g.report.problem for g in results):
        return EXIT_NOT_ALL_GRADED  # the grader failed somewhere (named in every format): not the learners' doing
    if all(g.report.score == g.report.max_score and not g.problem for g in results):
        return EXIT_ALL_FULL
    return EXIT_SOME_LOST


def _say_cgroups():
    """Name it, as the isolation level is named, when workers cannot get a cgroup of their own."""
    from grader.sandbox import cgroups

    available, why = cgroups.status()
    if not available:
        click.echo(
            f"note: workers get no cgroup of their own here ({why}): the processes of a submission are "
            "limited per process and per user only, so they can take CPU from the submission graded beside them",
            err=True,
        )


def _require_gradebook_extra(url):
    from grader.instructor import extras

    try:
        extras.require("--gradebook", "nbgrader")
        if url.startswith("postgresql"):
            extras.require("a PostgreSQL gradebook", "psycopg", "psycopg2")
    except extras.MissingExtra as exc:
        raise CourseProblem(str(exc)) from None


def _open_gradebook(url):
    """Open and check the gradebook before grading: a wrong URL fails at once."""
    from grader.instructor import gradebook as gradebook_mod  # imports nbgrader (about 2 s): only when asked

    try:
        gradebook_mod.check(url)
    except gradebook_mod.GradebookError as exc:
        raise CourseProblem(f"{exc} (checked before grading: nothing was graded)") from None


def _kit_facts(course, seed, student, shard, needed=True):
    """(seeds, kit hash) of a batch graded with `course` as its kit. A kit without a secret gets
    one, except for a shard: shards must agree without talking, so they need the kit's own (an
    empty shard, `needed` False, needs none)."""
    from grader.instructor import grade as grade_mod
    from grader.instructor import kit as kit_mod

    if not needed and seed is None and kit_mod.read_secret(course.root) is None:
        return grade_mod.Seeds(fixed=0), kit_mod.kit_hash(course.root)
    made = seed is None and kit_mod.read_secret(course.root) is None and shard is None
    seeds = grade_mod.seeds_for(course, seed, create=shard is None)
    if made:
        click.echo(f"made the kit's secret {kit_mod.secret_path(course.root)}: seeds derive from it", err=True)
    if student and seed is None:  # the gradebook's id is the student's id for the seed too
        seeds = grade_mod.Seeds(fixed=seeds(student))
    return seeds, kit_mod.kit_hash(course.root)


class GradebookFailed(Exception):
    """The gradebook could not take a submission's rows; the batch stops."""


class _BatchGradebook:
    """Records each graded submission in the gradebook as it finishes, in one transaction
    (gradebook.record), so an interrupted batch loses nothing it finished."""

    def __init__(self, url, student, course, layout, writer):
        self.url, self.student, self.course, self.layout, self.writer = url, student, course, layout, writer
        self.recorded = 0

    def add(self, graded):
        if not self.url:
            return
        from grader.instructor import gradebook as gradebook_mod

        try:
            gradebook_mod.record(
                self.url,
                self.student or graded.student,
                graded.report,
                self.course,
                **platforms.gradebook_args(self.layout, graded),
            )
        except gradebook_mod.GradebookError as exc:
            raise GradebookFailed(str(exc)) from None
        self.recorded += 1


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
        facts = {"seed": graded.seed, "kit_hash": graded.kit_hash or None}
        if self.fmt == "text":
            return _text_grade(self.course, graded)
        if self.fmt == "json":  # marked for `report`
            return reporters.to_json(graded.report, course=self.course, student=graded.student, **facts)
        return reporters.FORMATS[self.fmt](graded.report, **facts)

    def keep(self, graded):
        """A result finished by an earlier run (--resume): listed, its file left as it is."""
        self._list(graded)
        if self.output is not None and not self.single:
            from grader.instructor import grade as grade_mod

            summary = self.output / "summary.csv"
            self._safely(summary, lambda: files.write_atomically(summary, grade_mod.summary_csv(self.finished)))

    def _list(self, graded):
        self.finished.append(graded)
        self.finished.sort(key=lambda g: self.order.get(g.student, len(self.order)))

    def add(self, graded):
        """Write one submission's result. Its report failing to render, or its own file failing
        to be written, is that submission's error (its result then names it, and `grade` exits 2);
        only the output folder or summary.csv failing stops the batch."""
        from grader.instructor import grade as grade_mod

        self._list(graded)
        text = self._rendered(graded)
        if self.single and self.output is None:
            click.echo(text, nl=False)
        elif self.single:
            self._safely(self.output, lambda: files.write_atomically(self.output, text))
        elif self.output is not None:
            path = self.output / f"{graded.student}.{self.EXTENSIONS[self.fmt]}"
            try:
                files.write_atomically(path, text)
            except (OSError, ValueError) as exc:
                self._unwritten(graded, f"its result could not be written to {path.name}: {exc}")
            summary = self.output / "summary.csv"
            self._safely(summary, lambda: files.write_atomically(summary, grade_mod.summary_csv(self.finished)))

    def _rendered(self, graded):
        try:
            return self.render(graded)
        except Exception as exc:  # noqa: BLE001 - one submission's report must never end the batch
            self._unwritten(graded, f"its report could not be written ({type(exc).__name__}: {exc})")
            return self.render(graded)

    @staticmethod
    def _unwritten(graded, why):
        """Name the failure in the result; keep the scores and statuses (summary.csv lists them)
        but drop the text of the checks, which is what could not be written."""
        reason = safe_text(f"not graded in full: {why}", 2000)
        hidden = "(not shown: this submission's report could not be written)"
        graded.report = Report(
            [
                dataclasses.replace(t, checks=[dataclasses.replace(c, message=hidden, output="") for c in t.checks])
                for t in graded.report.topics
            ],
            problem="; ".join(filter(None, [safe_text(graded.report.problem), reason])),
        )

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
    if graded.seed is not None or graded.kit_hash:
        parts.append(f"seed {graded.seed}, kit {graded.kit_hash or 'unknown'}")
    cgroups = sorted({topic.cgroup for topic in graded.report.topics if topic.cgroup})
    if cgroups:
        parts.append(f"workers: {', '.join(cgroups)}")
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
    help="Folder for report.html, exercises.csv, checks.csv, mistakes.csv and unexplained.csv.",
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


@click.group("gradebook")
def gradebook_commands():
    """nbgrader gradebooks: load results that `grade` wrote earlier."""


@gradebook_commands.command("import")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--gradebook", "url", metavar="URL", required=True, help="The nbgrader gradebook (e.g. sqlite:///gradebook.db)."
)
def gradebook_import(results, url):
    """Record grade's JSON RESULTS (files, or folders of them) in the gradebook at URL: each
    student's rows in one transaction; importing twice changes nothing."""
    from grader.instructor import grade as grade_mod
    from grader.instructor import gradebook as gradebook_mod

    _require_gradebook_extra(url)
    try:
        loaded = grade_mod.load_results(results)
    except grade_mod.StoredResultError as exc:
        raise CourseProblem(f"{exc} (nothing was recorded)") from None
    _open_gradebook(url)
    done = 0
    try:
        for graded in loaded:
            gradebook_mod.record(url, graded.student, graded.report, None)
            done += 1
    except gradebook_mod.GradebookError as exc:
        raise CourseProblem(f"{exc} ({done} of {len(loaded)} result(s) recorded before it)") from None
    click.echo(f"recorded {done} result(s) in the gradebook {gradebook_mod.mask_url(url)}")
