"""What `fmgrade watch` shows: one compact screen per re-check, notes (hints, problems) below it.

Everything is cut or wrapped to the terminal's width. On a terminal (`Display` with `clear`),
a save redraws the last screen marked stale with "checking `x`…" under it at once, and a hint
or the next exercise replaces the previous note instead of piling up under the table.
"""

import shutil
import textwrap
import time

import click

from grader.learner import inline_images
from grader.learner.rendering import ISOLATION_NOTES, SYMBOL
from grader.learner.watch import Checking, Note, Rechecked
from grader.results import NOT_STARTED, PASSED, SUSPECT_MARK, standing

KEYS_LINE = "h hint · n next exercise · p picture · q quit"
NO_KEYS_LINE = "Ctrl-C to stop"
NOTE_COLOURS = {"problem": "red", "hint": "cyan", "focus": "yellow", "info": None}


def terminal_width():
    return max(shutil.get_terminal_size((100, 24)).columns, 40)


def render(course, event, *, keys=True, stale=False, width=None):
    """The text for one watch event (a Rechecked becomes a whole screen; `stale`: the results
    of the previous save, shown while the new ones are computed)."""
    width = width or terminal_width()
    if isinstance(event, Note):
        return click.style(_wrap(event.text, width), fg=NOTE_COLOURS.get(event.kind))
    if isinstance(event, Checking):
        named = ", ".join(f"`{e}`" for e in event.exercises)
        what = "every exercise" if event.every and len(event.exercises) > 1 else named
        return click.style(_wrap(f"checking {what}…", width), fg="yellow")
    if isinstance(event, Rechecked):
        return _screen(course, event, keys, stale, width)
    raise TypeError(f"not a watch event: {event!r}")


def _wrap(text, width):
    """Each line of `text` wrapped at word boundaries to `width`, keeping its indent."""
    out = []
    for line in text.splitlines() or [""]:
        indent = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_long_words=True) or [""]
    return "\n".join(out)


def _cut(text, room):
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def _screen(course, event, keys, stale=False, columns=100):
    topic = course.topic(event.result.id)
    ruled = standing(event.result, topic.exercises)
    summaries = ruled.exercises
    width = max(len(s.id) for s in summaries)
    columns = max(columns, width + 20)
    what = "every exercise" if len(event.ran) == len(summaries) else ", ".join(f"`{e}`" for e in event.ran)
    checked = f"checked {what} in {event.seconds:.2f} s at {time.strftime('%H:%M:%S')}"
    if stale:
        checked = "stale: these are the results of the previous save (checking the new one now)"
    lines = [
        f"{click.style(f'{topic.id} · {topic.title}', bold=True)}   {ruled.score:g}/{ruled.max_score:g} points",
        click.style(_cut(checked, columns), dim=True, fg="yellow" if stale else None),
        "",
    ]
    for s in summaries:
        symbol, colour = SYMBOL.get(s.status, ("?", None))
        start = f"  {symbol} {s.id.ljust(width)}  {s.score:>3g}/{s.max_score:<3g}"
        mark = "  ◀" if s.id == event.focus else ""
        row = f"  {click.style(symbol, fg=colour)} {s.id.ljust(width)}  {s.score:>3g}/{s.max_score:<3g}"
        if s.status != PASSED:
            row += "  " + _first_line(s, columns - len(start) - len(mark) - 2)
        if stale or s.id not in event.ran:
            row = click.style(row, dim=True)
        lines.append(row + mark)
    lines.append("")
    focus = next((s for s in summaries if s.id == event.focus), None)
    if focus is not None:
        lines.append(_wrap(_focus(topic, focus), columns))
    if event.result.isolation in ISOLATION_NOTES:
        lines += ["", click.style(ISOLATION_NOTES[event.result.isolation], fg="yellow")]
    lines += ["", click.style(KEYS_LINE if keys else NO_KEYS_LINE, dim=True)]
    return "\n".join(lines)


def _focus(topic, summary):
    if summary.status == PASSED:
        return click.style(f"`{summary.id}` passes.", fg="green")
    if summary.status == NOT_STARTED:
        return f"`{summary.id}`: {topic.exercise(summary.id).goal}"
    message = summary.message.strip() or summary.status
    return f"`{summary.id}` {summary.status}:\n" + "\n".join(f"  {line}" for line in message.splitlines()[:12])


def _first_line(summary, room=100):
    if summary.status == NOT_STARTED:
        return click.style("not started", fg="yellow")
    message = summary.message.strip().splitlines()[0] if summary.message.strip() else summary.status
    diagnosis = message.partition(SUSPECT_MARK)[2]
    if diagnosis:
        message = f"looks like you {diagnosis}"
    return _cut(message, max(min(room, 100), 12))


class Display:
    """Shows watch events through `echo`. With `clear` (a terminal) the screen is redrawn:
    a save shows the last screen marked stale and what is being checked at once; a hint or
    the next exercise replaces the previous note under the table instead of piling up."""

    def __init__(self, course, *, keys=True, clear=False, echo=click.echo, wipe=click.clear, width=None):
        self.course, self.keys, self.clear = course, keys, clear
        self.echo, self.wipe, self.width = echo, wipe, width
        self.screen = None  # the last Rechecked

    def __call__(self, event):
        if isinstance(event, Rechecked):
            self.screen = event
            self._redraw()
        elif isinstance(event, Checking) and self.clear and self.screen is not None:
            self._redraw(stale=True)
            self.echo(render(self.course, event, width=self.width))
        elif (
            isinstance(event, Note)
            and event.kind in ("hint", "focus", "picture")
            and self.clear
            and self.screen is not None
        ):
            self._redraw()
            self.echo(render(self.course, event, width=self.width))
            self._draw_images(event)
        else:
            self.echo(render(self.course, event, keys=self.keys, width=self.width))

    def _draw_images(self, note):
        """A picture note's PNGs, drawn in the terminal where it shows images (inline_images)."""
        protocol = inline_images.detect(is_tty=self.clear) if note.images else None
        for path in note.images if protocol else ():
            try:
                self.echo(inline_images.encode(path.read_bytes(), protocol, width=800), nl=False)
            except (OSError, ValueError):
                continue

    def _redraw(self, stale=False):
        if self.clear:
            self.wipe()
        self.echo(render(self.course, self.screen, keys=self.keys, stale=stale, width=self.width))
