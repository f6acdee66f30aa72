"""What `fmgrade watch` shows: one compact screen per re-check, notes (hints, problems) below it."""

import time

import click

from grader.learner.rendering import ISOLATION_NOTES, SYMBOL
from grader.learner.watch import Note, Rechecked
from grader.results import NOT_STARTED, PASSED, SUSPECT_MARK, standing

KEYS_LINE = "h hint · n next exercise · q quit"
NO_KEYS_LINE = "Ctrl-C to stop"
NOTE_COLOURS = {"problem": "red", "hint": "cyan", "focus": "yellow", "info": None}


def render(course, event, *, keys=True):
    """The text for one watch event (a Rechecked becomes a whole screen)."""
    if isinstance(event, Note):
        return click.style(event.text, fg=NOTE_COLOURS.get(event.kind))
    if isinstance(event, Rechecked):
        return _screen(course, event, keys)
    raise TypeError(f"not a watch event: {event!r}")


def _screen(course, event, keys):
    topic = course.topic(event.result.id)
    ruled = standing(event.result, topic.exercises)
    summaries = ruled.exercises
    width = max(len(s.id) for s in summaries)
    what = "every exercise" if len(event.ran) == len(summaries) else ", ".join(f"`{e}`" for e in event.ran)
    lines = [
        f"{click.style(f'{topic.id} · {topic.title}', bold=True)}   {ruled.score:g}/{ruled.max_score:g} points",
        click.style(f"checked {what} in {event.seconds:.2f} s at {time.strftime('%H:%M:%S')}", dim=True),
        "",
    ]
    for s in summaries:
        symbol, colour = SYMBOL.get(s.status, ("?", None))
        row = f"  {click.style(symbol, fg=colour)} {s.id.ljust(width)}  {s.score:>3g}/{s.max_score:<3g}"
        if s.status != PASSED:
            row += "  " + _first_line(s)
        if s.id not in event.ran:
            row = click.style(row, dim=True)
        lines.append(row + ("  ◀" if s.id == event.focus else ""))
    lines.append("")
    focus = next((s for s in summaries if s.id == event.focus), None)
    if focus is not None:
        lines.append(_focus(topic, focus))
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


def _first_line(summary):
    if summary.status == NOT_STARTED:
        return click.style("not started", fg="yellow")
    message = summary.message.strip().splitlines()[0] if summary.message.strip() else summary.status
    diagnosis = message.partition(SUSPECT_MARK)[2]
    if diagnosis:
        message = f"looks like you {diagnosis}"
    return message if len(message) <= 100 else message[:97] + "..."
