"""The `fmgrade` command: thin Click commands over plain functions.

Exit codes: 0 all checks pass, 1 some check fails, 2 usage or course errors.
"""
import shutil
import sys
from pathlib import Path

import click

from grader import course as course_mod
from grader import progress as progress_mod
from grader import files, report_text, reporters
from grader.course import CourseError
from grader.results import Report


class CourseProblem(click.ClickException):
    """A broken course or a bad argument: exit code 2, never a traceback."""

    exit_code = 2


def _load_course():
    try:
        return course_mod.load()
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """fmgrade: an auto-graded course on foundation models."""


def _progress(root):
    progress = progress_mod.load(root)
    if progress.warning:
        click.echo(click.style(f"warning: {progress.warning}", fg="yellow"), err=True)
    return progress


ISOLATION_LEVELS = ("auto", "bwrap", "namespaces", "user", "process")


def _isolation_option(help_text):
    return click.option("--isolation", type=click.Choice(ISOLATION_LEVELS), default="auto", show_default=True,
                        help=help_text)


def _isolation_for(wanted, kit_roots=None):
    """The level learner code runs at: for `grade` (kit_roots given) a sandbox unless asked
    otherwise, for `check` the strongest available. Exit 2 with one line when impossible."""
    from grader import isolation

    try:
        if kit_roots is None:
            return isolation.for_checking(wanted)
        level = isolation.for_grading(wanted, kit_roots)
    except isolation.IsolationUnavailable as exc:
        raise CourseProblem(str(exc)) from None
    if level == "process":
        click.echo(click.style("warning: --isolation process: learner code runs without a sandbox "
                               "(it can read this machine's files); every report says so", fg="yellow"), err=True)
    return level


@main.command()
@click.argument("topic")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--seed", type=int, help="Replay the random inputs of an earlier run.")
@_isolation_option("How your code is isolated (auto: the strongest this machine offers).")
def check(topic, fmt, seed, isolation):
    """Run the visible checks of TOPIC against exercises/TOPIC.py."""
    from grader import check as check_mod  # imports pytest and torch: only when checking

    course = _load_course()
    state = _progress(course.root)  # read before learner code runs: it cannot forge what we keep
    level = _isolation_for(isolation)
    try:
        result = check_mod.check_topic(course, topic, seed=seed, isolation=level)
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    progress = progress_mod.record(course.root, result, state)
    if fmt == "json":
        click.echo(reporters.to_json(Report([result]), course=course), nl=False)
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


@dev.command("check")
@click.option("--topics", help="Comma-separated topic ids (default: all).")
def dev_check(topics):
    """Prove the course is sound: outline, stubs, checks, mutants. Exit 1 naming each problem."""
    from grader import devcheck

    course = _load_course()
    selected = [t.strip() for t in topics.split(",")] if topics else None
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
    from grader.recording import record

    course = _load_course()
    selected = [t.strip() for t in topics.split(",")] if topics else [t.id for t in course.topics if course.available(t.id)]
    try:
        for topic, path, answers, fingerprints in record.record(course, selected):
            click.echo(f"{topic}: {answers} answers, {fingerprints} mistake fingerprints -> {path.relative_to(course.root)}")
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


@dev.command()
@click.option("--check", "check_only", is_flag=True, help="Only report stubs that differ; exit 1 if any.")
@click.option("--topics", help="Comma-separated topic ids (default: every topic with a solution).")
def stubs(check_only, topics):
    """Regenerate exercises/ from solutions/ (answer regions become TODOs)."""
    from grader import stubgen

    course = _load_course()
    selected = [t.strip() for t in topics.split(",")] if topics else None
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


@main.command()
@click.argument("submissions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kit", type=click.Path(file_okay=False, path_type=Path), help="Grading kit (default: this course).")
@click.option("--topics", help="Comma-separated topic ids (default: every available topic).")
@click.option("--seed", type=int, help="Seed for the hidden checks' inputs (default: chosen per run).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "gradescope"]), default="text", show_default=True)
@click.option("--output", type=click.Path(path_type=Path),
              help="File for one submission; a folder (one file each plus summary.csv) for several.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Submissions graded in parallel.")
@click.option("--gradebook", metavar="URL", help="Record topic scores in an nbgrader gradebook (e.g. sqlite:///gradebook.db).")
@click.option("--student", metavar="ID", help="Student id in the gradebook (default: the submission folder's name).")
@_isolation_option("Sandbox for learner code (auto: bwrap, namespaces or a user id of its own; "
                   "process: none, and every report says so).")
def grade(submissions, kit, topics, seed, fmt, output, jobs, gradebook, student, isolation):
    """Grade SUBMISSIONS (folders with exercises/*.py) on visible and hidden checks."""
    from grader import grade as grade_mod

    if student and len(submissions) > 1:
        raise CourseProblem("--student names one student: with several submissions, their folder names are used")
    if student and not gradebook:
        raise CourseProblem("--student only makes sense with --gradebook URL")

    try:
        course = course_mod.load(kit) if kit else _load_course()
        selected = grade_mod.select_topics(course, [t.strip() for t in topics.split(",") if t.strip()] if topics else None)
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    level = _isolation_for(isolation, kit_roots=[course.root])
    seed = seed if seed is not None else grade_mod.new_seed()
    with click.progressbar(length=len(submissions), label=f"grading (seed {seed}, isolation {level})", file=sys.stderr,
                           show_pos=True) as bar:
        results = grade_mod.grade_many(course, list(submissions), selected, seed, jobs, isolation=level,
                                       on_done=lambda _: bar.update(1))
    _write_grades(course, results, fmt, output)
    if gradebook:
        _record_grades(gradebook, results, student, course)
    sys.exit(0 if all(g.report.score == g.report.max_score for g in results) else 1)


def _record_grades(url, results, student, course):
    from grader import gradebook as gradebook_mod  # imports nbgrader (about 2 s): only when asked

    try:
        for graded in results:
            gradebook_mod.record(url, student or graded.student, graded.report, course)
    except gradebook_mod.GradebookError as exc:
        raise CourseProblem(str(exc)) from None
    click.echo(f"recorded {len(results)} submission(s) in the gradebook", err=True)


def _write_grades(course, results, fmt, output):
    from grader import grade as grade_mod

    render = {"text": lambda r: _text_grade(course, r)} | {k: (lambda f: lambda r: f(r.report))(f) for k, f in reporters.FORMATS.items()}
    render["json"] = lambda r: reporters.to_json(r.report, course=course, student=r.student)  # marked for `report`
    if len(results) == 1 and (output is None or output.suffix):
        text = render[fmt](results[0])
        if output is None:
            click.echo(text, nl=False)
        else:
            files.write_atomically(output, text)
        return
    if output is None:
        click.echo(grade_mod.summary_table(results), nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    extension = {"text": "txt", "json": "json", "junit": "xml", "gradescope": "json"}[fmt]
    for graded in results:
        files.write_atomically(output / f"{graded.student}.{extension}", render[fmt](graded))
    files.write_atomically(output / "summary.csv", grade_mod.summary_csv(results))
    click.echo(f"wrote {len(results)} result(s) and summary.csv to {output}")


def _text_grade(course, graded):
    parts = [f"submission {graded.submission} (student {graded.student})"]
    if graded.problem:
        parts.append(click.style(graded.problem, fg="red"))
    parts += [report_text.topic_report(course, topic) for topic in graded.report.topics]
    parts.append(f"Total: {graded.report.score:g}/{graded.report.max_score:g}")
    return "\n\n".join(parts) + "\n"


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--kit", type=click.Path(path_type=Path), help="Also write the grading kit here (keep it private).")
def release(out, kit):
    """Write the student release to OUT (and OUT.tar.gz); with --kit, the grading kit too."""
    from grader import release as release_mod

    course = _load_course()
    try:
        leaks = release_mod.build_release(course, out)
        if leaks:
            shutil.rmtree(out)
            raise CourseProblem("the release would leak solution text, so it was not written:\n  " + "\n  ".join(leaks))
        archive = release_mod.write_archive(out, out.with_name(out.name + ".tar.gz"))
        click.echo(f"wrote the student release to {out} and {archive}")
        if kit:
            release_mod.build_kit(course, kit)
            kit_archive = release_mod.write_archive(kit, kit.with_name(kit.name + ".tar.gz"))
            click.echo(f"wrote the grading kit to {kit} and {kit_archive} (keep them private)")
    except release_mod.ReleaseError as exc:
        raise CourseProblem(str(exc)) from None


@main.command()
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for report.html, exercises.csv, checks.csv and mistakes.csv.")
@click.option("--gradebook", metavar="URL", help="Read exercise scores from an nbgrader gradebook instead (it holds no mistakes).")
@click.option("--course", "course_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The course the results were graded with (default: the course in this folder, if any).")
def report(results, output, gradebook, course_dir):
    """What the class gets wrong: a report from grade's JSON RESULTS (files or folders)."""
    try:
        from grader.classreport import build, plots
        from grader.gradebook import GradebookError
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("grader."):
            raise
        raise CourseProblem("`fmgrade report` is an instructor command: the student release does not have it") from None

    if bool(results) == bool(gradebook):
        raise CourseProblem("give grade's JSON RESULTS (files or folders) or --gradebook URL, not both"
                            if results else "nothing to report on: give grade's JSON RESULTS or --gradebook URL")
    try:
        course = course_mod.load(course_dir) if course_dir else _course_here()
        context = build.make_report(results, output, course, gradebook)
    except (CourseError, build.ReportInputError, GradebookError, plots.PlotsUnavailable) as exc:
        raise CourseProblem(str(exc)) from None
    click.echo(build.terminal_summary(context, output))


def _course_here():
    """The course around the current folder, or None outside any course."""
    try:
        root = course_mod.find_root()
    except CourseError:
        return None
    return course_mod.load(root)
