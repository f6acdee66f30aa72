"""The `fmgrade` command: thin Click commands over plain functions.

Exit codes: 0 all checks pass, 1 some check fails, 2 usage or course errors.
"""
import shutil
import sys
from pathlib import Path

import click

from grader import course as course_mod
from grader import progress as progress_mod
from grader import files, interrupts, report_text, reporters, terminal
from grader.course import CourseError
from grader.platforms import commands as platform_commands
from grader.results import Report


class CourseProblem(click.ClickException):
    """A broken course or a bad argument: exit code 2, never a traceback."""

    exit_code = 2


def _interrupted(what):
    click.echo(f"\ninterrupted: {what}", err=True)
    sys.exit(interrupts.EXIT_CODE)


def _load_course():
    try:
        return course_mod.load()
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None


LEARNER_COMMANDS = ("check", "watch", "hint", "reset", "progress", "list")  # in the order a learner needs them
INSTRUCTOR_COMMANDS = ("dev", "grade", "release", "report", "shards")


class _Commands(click.Group):
    """Lists the learner's commands first, and the instructor's only where they can work: the
    student release ships neither solutions/ nor the instructor's modules (grader.release), so
    its `--help` shows what a learner uses, and an instructor command there is a plain error."""

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        if not _instructor_side():
            names = [name for name in names if name not in INSTRUCTOR_COMMANDS]
        order = {name: i for i, name in enumerate(LEARNER_COMMANDS)}
        return sorted(names, key=lambda name: (order.get(name, len(order)), name))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ImportError as exc:  # `from grader import devcheck` where the package leaves it out
            if (exc.name or "").partition(".")[0] != "grader":
                raise
            raise CourseProblem(f"`fmgrade {ctx.invoked_subcommand}` is an instructor command: "
                                "the student release does not have it") from None


def _instructor_side():
    if not Path(__file__).with_name("grade.py").is_file():
        return False  # the learner's package (grader.release.learner_package)
    try:
        return (course_mod.find_root() / "solutions").is_dir()
    except CourseError:
        return True  # outside any course: nothing to hide from


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """fmgrade: an auto-graded course on foundation models.

    \b
    Fill in the TODOs of exercises/TOPIC.py, then:
      fmgrade check attention     check your code (exit 0 when every check passes)
      fmgrade hint attention      one more hint for the exercise you are on
      fmgrade progress            where you stand in the whole course
    """


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
@click.argument("exercises", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--seed", type=int, help="Replay the random inputs of an earlier run.")
@click.option("-v", "--verbose", is_flag=True, help="Every failing check's full message, not only the first.")
@_isolation_option("How your code is isolated (auto: the strongest this machine offers).")
def check(topic, exercises, fmt, seed, verbose, isolation):
    """Run the visible checks of TOPIC against exercises/TOPIC.py.

    With EXERCISES, only theirs; the others keep their last result."""
    from grader import check as check_mod  # imports pytest and torch: only when checking

    course = _load_course()
    state = _progress(course.root)  # read before learner code runs: it cannot forge what we keep
    level = _isolation_for(isolation)
    try:
        with interrupts.handled():
            result = check_mod.check_topic(course, topic, exercises, seed=seed, isolation=level)
            progress = progress_mod.record(course.root, result, state)
    except KeyboardInterrupt:
        _interrupted(f"nothing was recorded for {topic}")
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    if fmt == "json":
        click.echo(reporters.to_json(Report([result]), course=course), nl=False)
    else:
        path = course.exercise_path(topic)
        terminal.echo(report_text.topic_report(course, result, exercise_path=path, verbose=verbose), "",
                      report_text.next_step(course, result, path, progress_mod.suggest_next(course, progress)))
        if result.random_inputs and not result.import_error:
            terminal.echo(report_text.seed_line(result))
    sys.exit(0 if result.max_score and result.score == result.max_score else 1)


@main.command()
def progress():
    """Your progress across the whole outline, and what to do next."""
    course = _load_course()
    state = _progress(course.root)
    terminal.echo(report_text.progress_report(course, state, progress_mod.suggest_next(course, state)))


@main.command()
@click.argument("topic")
@click.argument("exercise", required=False)
@click.option("--all", "show_all", is_flag=True, help="Show every hint of the exercise at once.")
def hint(topic, exercise, show_all):
    """One more hint for an exercise of TOPIC.

    The exercise defaults to the first one you have not passed. Each run reveals the next
    hint; how many you have seen is kept with your progress."""
    course = _load_course()
    state = _progress(course.root)
    try:
        topic_obj = course.topic(topic)
        if exercise is None:
            pending = [e for e in topic_obj.exercises if not progress_mod.passed(state, topic, e.id)]
            exercise = (pending or topic_obj.exercises)[0].id
        exercise_obj = topic_obj.exercise(exercise)
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    shown = progress_mod.reveal_hint(course.root, state, topic_obj.id, exercise_obj, everything=show_all)
    terminal.echo(report_text.hint_report(course, topic_obj, exercise_obj, shown))


@main.command()
@click.argument("topic", required=False)
@click.option("--poll", is_flag=True, help="Poll the file for changes (for network drives and WSL, where file events may not arrive).")
def watch(topic, poll):
    """Re-check the exercise you are editing on every save (default TOPIC: the one in progress)."""
    import queue

    from grader import keys, watch_screen
    from grader import watch as watch_mod

    course = _load_course()
    if topic is None:
        topic = watch_mod.topic_in_progress(course, _progress(course.root))
        if topic is None:
            raise CourseProblem("every available topic is complete: name the topic to watch, e.g. `fmgrade watch attention`")
    try:
        if not course.available(course.topic(topic).id):
            raise CourseProblem(f"topic '{topic}' is not available yet in this course")
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    commands = queue.Queue()
    clear = sys.stdout.isatty()
    with keys.reader(commands) as has_keys:
        def show(event):
            if clear and isinstance(event, watch_mod.Rechecked):
                click.clear()
            click.echo(watch_screen.render(course, event, keys=has_keys))

        click.echo(f"watching exercises/{topic}.py: checking every exercise first...")
        try:
            watch_mod.run(course, topic, show, commands=commands, poll=poll)
        except CourseError as exc:
            raise CourseProblem(str(exc)) from None
        except KeyboardInterrupt:
            pass


@main.command()
@click.argument("topic")
@click.argument("exercise", required=False)
@click.option("--undo", is_flag=True, help="Bring back the newest backup (the current file is backed up first).")
@click.option("--yes", "-y", is_flag=True, help="Reset the whole file without asking.")
def reset(topic, exercise, undo, yes):
    """Put the stub of EXERCISE (or of the whole file) back; your version is kept in .fmgrade/backups/."""
    from grader import reset as reset_mod

    course = _load_course()
    try:
        if undo:
            if exercise:
                raise CourseProblem("--undo brings back the whole file: leave out the EXERCISE")
            done = reset_mod.undo(course, topic)
        elif exercise:
            done = reset_mod.reset_exercise(course, topic, exercise)
        else:
            course.topic(topic)
            if not yes:
                click.confirm(f"Reset the whole of exercises/{topic}.py to the stub? (your version is backed up first)",
                              abort=True)
            done = reset_mod.reset_file(course, topic)
    except (CourseError, reset_mod.ResetError) as exc:
        raise CourseProblem(str(exc)) from None
    click.echo(done.summary)
    if done.backup is not None:
        click.echo(f"your previous version is kept in {done.backup.relative_to(course.root).as_posix()} "
                   f"(`fmgrade reset {topic} --undo` brings it back)")


@main.command("list")
def list_topics():
    """The topics of the course and where you stand in each."""
    course = _load_course()
    terminal.echo(report_text.list_report(course, _progress(course.root)))


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
@click.argument("submissions", nargs=-1, type=click.Path(path_type=Path))
@click.option("--kit", type=click.Path(file_okay=False, path_type=Path), help="Grading kit (default: this course).")
@click.option("--topics", help="Comma-separated topic ids (default: every available topic).")
@click.option("--seed", type=int, help="Seed for the hidden checks' inputs (default: chosen per run).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "gradescope"]), default="text", show_default=True)
@click.option("--output", type=click.Path(path_type=Path),
              help="File for one submission; a folder (one file each plus summary.csv) for several.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Submissions graded in parallel.")
@click.option("--gradebook", metavar="URL", help="Record topic scores in an nbgrader gradebook (e.g. sqlite:///gradebook.db).")
@click.option("--student", metavar="ID", help="Student id in the gradebook (default: the submission folder's name).")
@click.option("--shard", metavar="I/N", callback=platform_commands.shard_option,
              help="Grade only shard I of N (by a hash of the student id), for N graders in parallel.")
@click.option("--nbgrader", "nbgrader_root", type=click.Path(file_okay=False, path_type=Path),
              help="nbgrader's course folder: grade submitted/*/ASSIGNMENT, write autograded/ and feedback/.")
@click.option("--assignment", help="The nbgrader assignment to grade (with --nbgrader).")
@click.option("--due", metavar="TIME", callback=platform_commands.due_option,
              help="Due date for nbgrader submissions' late flag (default: the gradebook's).")
@click.option("--timeout", "seconds", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Wall-clock time one submission may take in all (default: the sum of its topics' limits).")
@_isolation_option("Sandbox for learner code (auto: bwrap, namespaces or a user id of its own; "
                   "process: none, and every report says so).")
def grade(submissions, kit, topics, seed, fmt, output, jobs, gradebook, student, shard, nbgrader_root, assignment, due,
          seconds, isolation):
    """Grade SUBMISSIONS (folders with exercises/*.py) on visible and hidden checks.

    Each result is written as soon as its submission is graded. Ctrl-C stops at once and keeps
    the results finished; the kit must not change while it grades (exit 2 if it does)."""
    from grader import grade as grade_mod
    from grader import kit as kit_mod

    if student and len(submissions) > 1:
        raise CourseProblem("--student names one student: with several submissions, their folder names are used")
    if student and not gradebook:
        raise CourseProblem("--student only makes sense with --gradebook URL")
    if gradebook:
        _require_gradebook_extra(gradebook)  # before grading, not after an hour of it

    try:
        course = course_mod.load(kit) if kit else _load_course()
        selected = grade_mod.select_topics(course, [t.strip() for t in topics.split(",") if t.strip()] if topics else None)
    except CourseError as exc:
        if output is not None:  # a CI job still finds its results file, naming why there are no grades
            _write_grades(None, platform_commands.failed_results(submissions, str(exc)), fmt, output)
        raise CourseProblem(str(exc)) from None
    submissions, selected, layout = platform_commands.prepare_grading(
        list(submissions), selected, bool(topics), shard, nbgrader_root, assignment, due, gradebook)
    duplicates = grade_mod.duplicate_ids(submissions)
    if duplicates:
        raise CourseProblem("two submissions would get one result: " + "; ".join(duplicates) +
                            ". Give each submission a folder named for its student (e.g. submissions/<id>/) and grade again.")
    level = _isolation_for(isolation, kit_roots=[course.root])
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
        with interrupts.handled(), kit_mod.no_bytecode(), \
                click.progressbar(length=len(submissions), label=f"grading (seed {seed}, isolation {level})", file=sys.stderr,
                                  show_pos=True) as bar:
            results = grade_mod.grade_many(course, list(submissions), selected, seed, jobs, isolation=level,
                                           on_done=done, seconds=seconds)
        guard.check()
    except KeyboardInterrupt:
        writer.flush(interrupted=True)
        _interrupted(f"{writer.kept()}; nothing was recorded for the submissions being graded")
    except kit_mod.KitChanged as exc:
        raise CourseProblem("the grading kit changed while grading, so the batch was stopped (a submission may have "
                            f"written into it): {', '.join(exc.changed)}. {writer.kept().capitalize()}; rebuild the kit "
                            "(fmgrade release --kit) and grade the rest again.") from None
    writer.flush()
    layout_written = platform_commands.finish_grading(layout, course, results)
    if gradebook:
        _record_grades(gradebook, results, student, course, layout)
    if not layout_written or any(g.report.problem for g in results):
        sys.exit(2)  # the grader failed somewhere (named in every format): not the learners' doing
    sys.exit(0 if all(g.report.score == g.report.max_score and not g.problem for g in results) else 1)


def _require_gradebook_extra(url):
    from grader import extras

    try:
        extras.require("--gradebook", "nbgrader")
        if url.startswith("postgresql"):
            extras.require("a PostgreSQL gradebook", "psycopg", "psycopg2")
    except extras.MissingExtra as exc:
        raise CourseProblem(str(exc)) from None


def _record_grades(url, results, student, course, layout=None):
    from grader import gradebook as gradebook_mod  # imports nbgrader (about 2 s): only when asked

    try:
        for graded in results:
            gradebook_mod.record(url, student or graded.student, graded.report, course,
                                 **platform_commands.gradebook_args(layout, graded))
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
        from grader import grade as grade_mod

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
        from grader import grade as grade_mod

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
        from grader import grade as grade_mod

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


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--kit", type=click.Path(path_type=Path), help="Also write the grading kit here (keep it private).")
@click.option("--gradescope", "gradescope_zip", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write Gradescope's autograder.zip here (needs --kit; private too).")
@click.option("--gradescope-topics", metavar="a,b", help="Topics the Gradescope assignment grades (default: all).")
@click.option("--gradescope-hidden", type=click.Choice(["after_published", "after_due_date", "hidden", "visible"]),
              default="after_published", show_default=True, help="When students see the hidden checks' results on Gradescope.")
def release(out, kit, gradescope_zip, gradescope_topics, gradescope_hidden):
    """Write the student release to OUT (and OUT.tar.gz); with --kit, the grading kit too."""
    from grader import release as release_mod

    course = _load_course()
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
            bundle = platform_commands.gradescope_bundle(course, kit, gradescope_zip, gradescope_topics, gradescope_hidden)
            click.echo(f"wrote Gradescope's autograder bundle to {bundle} (private: it holds the kit)")
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


for _command in platform_commands.COMMANDS:  # classroom, shards (grader/platforms/)
    main.add_command(_command)
