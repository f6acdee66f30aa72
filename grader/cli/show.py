"""`fmgrade show TOPIC [EXERCISE]`: pictures of the learner's results beside the expected ones."""

import sys

import click

from grader import interrupts
from grader.cli.common import CourseProblem, interrupted, isolation_for, isolation_option, load_course
from grader.course import CourseError
from grader.learner import inline_images


@click.command()
@click.argument("topic")
@click.argument("exercise", required=False)
@click.option(
    "--images",
    type=click.Choice(["auto", "kitty", "iterm2", "sixel", "off"]),
    default="auto",
    show_default=True,
    help="Draw each picture in the terminal too (auto: when the terminal says it can; FMGRADE_IMAGES sets it).",
)
@isolation_option("How your code is isolated (auto: the strongest this machine offers).")
def show(topic, exercise, images, isolation):
    """Draw what your code returns beside the expected result, and their difference.

    Runs exercises/TOPIC.py in the sandbox on the checks' visible inputs and writes one PNG per
    picture under .fmgrade/pictures/, printing each path. Needs matplotlib:
    pip install 'fmgrade[pictures]'. Exit 0 when every picture was drawn, 1 when your code
    gave none for some, 2 for usage errors."""
    from grader.learner import pictures  # numpy and the judge: only when drawing

    course = load_course()
    try:
        pictures.require_matplotlib()
        level = isolation_for(isolation)
        with interrupts.handled():
            drawn = pictures.show(course, topic, exercise, isolation=level)
    except pictures.PicturesUnavailable as exc:
        raise CourseProblem(str(exc)) from None
    except CourseError as exc:
        raise CourseProblem(str(exc)) from None
    except KeyboardInterrupt:
        interrupted("no pictures were drawn")
    protocol = _image_protocol(images)
    for item in drawn:
        text = pictures.line(item)
        if item.path is not None:
            text = item.path.relative_to(course.root).as_posix() if item.path.is_relative_to(course.root) else text
        click.echo(text)
        if protocol and item.path is not None:
            click.echo(inline_images.encode(item.path.read_bytes(), protocol, width=800), nl=False)
    sys.exit(0 if all(item.path is not None for item in drawn) else 1)


def _image_protocol(images):
    if images == "off":
        return None
    if images != "auto":
        return images
    return inline_images.detect(is_tty=sys.stdout.isatty())
