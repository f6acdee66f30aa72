"""The `fmgrade` command: a lazy Click group over thin commands.

Each command lives in the module of its audience (`grader.cli.learner`, `grader.cli.instructor`)
and is imported only when it runs or `--help` lists it, so `fmgrade check` pays for nothing
else. The student release has no `grader.instructor`: there the instructor's commands are not
listed, and naming one is a plain error.

Exit codes: 0 all checks pass, 1 some check fails, 2 usage or course errors.
"""

import importlib
import importlib.util

import click

from grader import course as course_mod
from grader.cli.common import CourseProblem
from grader.course import CourseError

# name -> "module:attribute", in the order a learner needs them, then the instructor's
LEARNER_COMMANDS = {
    "check": "grader.cli.learner:check",
    "watch": "grader.cli.learner:watch",
    "hint": "grader.cli.learner:hint",
    "reset": "grader.cli.learner:reset",
    "progress": "grader.cli.learner:progress",
    "list": "grader.cli.learner:list_topics",
    "classroom": "grader.cli.learner:classroom",
    "show": "grader.cli.show:show",
}
INSTRUCTOR_COMMANDS = {
    "dev": "grader.cli.instructor:dev",
    "export": "grader.cli.platforms:export",
    "grade": "grader.cli.instructor:grade",
    "gradebook": "grader.cli.instructor:gradebook_commands",
    "release": "grader.cli.instructor:release",
    "report": "grader.cli.instructor:report",
    "shards": "grader.cli.platforms:shards",
}


class LazyCommands(click.Group):
    """Imports a command's module only when the command is needed. Lists the learner's commands
    first, and the instructor's only where they can work: the student release ships neither
    solutions/ nor `grader.instructor`, so its `--help` shows what a learner uses."""

    def list_commands(self, ctx):
        names = list(LEARNER_COMMANDS)
        if instructor_side():
            names += sorted(INSTRUCTOR_COMMANDS)
        return names

    def get_command(self, ctx, name):
        target = LEARNER_COMMANDS.get(name) or INSTRUCTOR_COMMANDS.get(name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except ImportError as exc:  # `grader.instructor` where the student release leaves it out
            if not (exc.name or "").startswith("grader.instructor") or name not in INSTRUCTOR_COMMANDS:
                raise
            return _unavailable(name)


def _unavailable(name):
    @click.command(
        name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False
    )
    def command():
        raise CourseProblem(f"`fmgrade {name}` is an instructor command: the student release does not have it")

    return command


def instructor_side():
    """True where the instructor's commands can work: the package has them and the course has solutions."""
    if importlib.util.find_spec("grader.instructor") is None:
        return False  # the learner's package (grader.instructor.release.learner_package)
    try:
        return (course_mod.find_root() / "solutions").is_dir()
    except CourseError:
        return True  # outside any course: nothing to hide from


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """fmgrade: an auto-graded course on foundation models.

    \b
    Fill in the TODOs of exercises/TOPIC.py, then:
      fmgrade check attention     check your code (exit 0 when every check passes)
      fmgrade hint attention      one more hint for the exercise you are on
      fmgrade progress            where you stand in the whole course
    """
