"""The learner's commands: check, watch, hint, reset, progress, list, and classroom (the visible
checks with points, for a GitHub Classroom student repository)."""

import contextlib
import sys

import click

from grader import formats as reporters
from grader import interrupts
from grader.cli.common import (
    CourseProblem,
    interrupted,
    isolation_for,
    isolation_option,
    load_course,
    parse_topics,
    read_progress,
)
from grader.course import CourseError
from grader.learner import progress as progress_mod
from grader.learner import rendering as report_text
from grader.learner import terminal
from grader.results import Report, standing


@click.command()
@click.argument("topic")
@click.argument("exercises", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--seed", type=int, help="Replay the random inputs of an earlier run.")
@click.option("-v", "--verbose", is_flag=True, help="Every failing check's full message, not only the first.")
@isolation_option("How your code is isolated (auto: the strongest this machine offers).")
def check(topic, exercises, fmt, seed, verbose, isolation):
    """Run the visible checks of TOPIC against exercises/TOPIC.py.

    With EXERCISES, only theirs; the others keep their last result."""
    course = load_course()
    state = read_progress(course.root)  # read before learner code runs: it cannot forge what we keep
    level = isolation_for(isolation)
    spare = _early_worker(course, topic, level)
    try:
        from grader.learner import check as check_mod  # imports pytest and torch: only when checking

        width = max((len(e.id) for e in course.topic(topic).exercises), default=10)
        with interrupts.handled(), _live_rows(topic, fmt, width) as live:
            result = check_mod.check_topic(
                course,
                topic,
                exercises,
                seed=seed,
                isolation=level,
                on_exercise=live,
                reuse=seed is None,
                worker_factory=spare,
            )
            progress = progress_mod.record(course.root, result, state, course.topic(topic).exercises)
    except KeyboardInterrupt:
        interrupted(f"nothing was recorded for {topic}")
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    finally:
        if spare is not None:
            spare.close()
    if fmt == "json":
        click.echo(reporters.to_json(Report([result]), course=course), nl=False)
    else:
        path = course.exercise_path(topic)
        terminal.echo(
            report_text.topic_report(course, result, exercise_path=path, verbose=verbose),
            "",
            report_text.next_step(course, result, path, progress_mod.suggest_next(course, progress)),
        )
        if result.random_inputs and not result.import_error:
            terminal.echo(report_text.seed_line(result))
    sys.exit(0 if standing(result, course.topic(topic).exercises).complete else 1)


def _early_worker(course, topic_id, level):
    """A worker started now, before this process imports torch, so that its `import torch` and
    ours run side by side; handed to the check's session (the worker it would start itself).
    None for an unknown topic (the check says why) or when nothing would run learner code."""
    from grader.sandbox import pool, process, proxy

    try:
        limits = course.topic(topic_id).limits
    except CourseError:
        return None
    if level == "none":
        return None
    spare = pool.SparePool()
    worker_limits = proxy.Session.worker_limits_for(limits)
    spare.expect(f"exercises/{topic_id}.py", worker_limits, process.choose_isolation(level), (course.root,))
    return spare


@contextlib.contextmanager
def _live_rows(topic, fmt, width):
    """Yields on_exercise for check_topic: rows as exercises finish (None for JSON output)."""
    if fmt != "text":
        yield None
        return
    with terminal.LiveRows(topic) as rows:

        def on_exercise(summary, done, total):
            rows.add(report_text.live_row(summary, done, total, width), done, total)

        yield on_exercise


@click.command()
def progress():
    """Your progress across the whole outline, and what to do next."""
    course = load_course()
    state = read_progress(course.root)
    terminal.echo(report_text.progress_report(course, state, progress_mod.suggest_next(course, state)))


@click.command()
@click.argument("topic")
@click.argument("exercise", required=False)
@click.option("--all", "show_all", is_flag=True, help="Show every hint of the exercise at once.")
def hint(topic, exercise, show_all):
    """One more hint for an exercise of TOPIC.

    The exercise defaults to the first one you have not passed. Each run reveals the next
    hint; how many you have seen is kept with your progress."""
    course = load_course()
    state = read_progress(course.root)
    try:
        topic_obj = course.topic(topic)
        if exercise is None:
            pending = [e for e in topic_obj.exercises if not progress_mod.passed(state, topic, e.id)]
            exercise = (pending or topic_obj.exercises)[0].id
        exercise_obj = topic_obj.exercise(exercise)
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    past_last = not show_all and progress_mod.hints_exhausted(state, topic_obj.id, exercise_obj)
    shown = progress_mod.reveal_hint(course.root, state, topic_obj.id, exercise_obj, everything=show_all)
    terminal.echo(report_text.hint_report(course, topic_obj, exercise_obj, shown, past_last=past_last))


@click.command()
@click.argument("topic", required=False)
@click.option(
    "--poll",
    is_flag=True,
    help="Poll the file for changes (for network drives and WSL, where file events may not arrive).",
)
def watch(topic, poll):
    """Re-check the exercise you are editing on every save (default TOPIC: the one in progress)."""
    import queue

    from grader.learner import keys
    from grader.learner import screen as watch_screen
    from grader.learner import watch as watch_mod

    course = load_course()
    if topic is None:
        topic = watch_mod.topic_in_progress(course, read_progress(course.root))
        if topic is None:
            raise CourseProblem(
                "every available topic is complete: name the topic to watch, e.g. `fmgrade watch attention`"
            )
    try:
        if not course.available(course.topic(topic).id):
            raise CourseProblem(f"topic '{topic}' is not available yet in this course")
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    commands = queue.Queue()
    with keys.reader(commands) as has_keys:
        show = watch_screen.Display(course, keys=has_keys, clear=sys.stdout.isatty())
        click.echo(f"watching exercises/{topic}.py: checking every exercise first…")
        try:
            watch_mod.run(course, topic, show, commands=commands, poll=poll)
        except CourseError as exc:
            raise CourseProblem(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("stopping…")


@click.command()
@click.argument("topic")
@click.argument("exercise", required=False)
@click.option("--undo", is_flag=True, help="Bring back the newest backup (the current file is backed up first).")
@click.option("--yes", "-y", is_flag=True, help="Reset the whole file without asking.")
def reset(topic, exercise, undo, yes):
    """Put the stub of EXERCISE (or of the whole file) back; your version is kept in .fmgrade/backups/."""
    from grader.learner import reset as reset_mod

    course = load_course()
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
                click.confirm(
                    f"Reset the whole of exercises/{topic}.py to the stub? (your version is backed up first)",
                    abort=True,
                )
            done = reset_mod.reset_file(course, topic)
    except (CourseError, reset_mod.ResetError) as exc:
        raise CourseProblem(str(exc)) from None
    click.echo(done.summary)
    if done.backup is not None:
        click.echo(
            f"your previous version is kept in {done.backup.relative_to(course.root).as_posix()} "
            f"(`fmgrade reset {topic} --undo` brings it back)"
        )


@click.command("list")
def list_topics():
    """The topics of the course and where you stand in each."""
    course = load_course()
    terminal.echo(report_text.list_report(course, read_progress(course.root)))


@click.command()
@click.option("--topics", help="Comma-separated topic ids (default: every available topic).")
def classroom(topics):
    """Visible checks of every topic, with points for GitHub Classroom.

    Prints each topic's checks and a "Points X/Y" notice, and, inside GitHub Actions, sets the
    step output `result` that Classroom's autograding reporter reads. Exit 0 whenever the checks
    ran (the reporter fails the job when some do not pass); 2 for usage or course errors."""
    from grader.learner import classroom as classroom_mod
    from grader.learner import rendering as report_text

    course = load_course()
    available = [t.id for t in course.topics if course.available(t.id)]
    selected = parse_topics(topics) or available
    unknown = [t for t in selected if t not in available]
    if unknown:  # (grade.py, which `grade` uses for this, is not in a student's release)
        raise CourseProblem(
            f"--topics: not a topic available here: {', '.join(unknown)} (topics: {', '.join(available)})"
        )
    report = classroom_mod.run_visible(course, selected)
    for topic in report.topics:
        click.echo(report_text.topic_report(course, topic))
        click.echo("")
    if report.problem:
        click.echo(click.style(f"The autograder failed: {report.problem}", fg="red"), err=True)
    click.echo(classroom_mod.points_notice(report))
    classroom_mod.write_step_output(report)
