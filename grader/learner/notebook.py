"""Checking from Jupyter or IPython: `%load_ext grader`, then `%fmgrade check TOPIC [EXERCISE...]`.

The magic runs the same check as `fmgrade check` (sandboxed worker, visible checks, progress
recorded) on the file as it is SAVED in exercises/, and shows the result as an HTML table.
Everything that comes from learner code or a check's message is escaped.
"""

import html
import inspect
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from grader import course as course_mod
from grader.course import CourseError
from grader.learner import progress as progress_mod
from grader.learner.rendering import ISOLATION_NOTES
from grader.results import NOT_STARTED, PASSED

USAGE = "usage: %fmgrade check TOPIC [EXERCISE...]   (checks the saved exercises/TOPIC.py)"
COLOURS = {PASSED: "#1a7f37", NOT_STARTED: "#9a6700"}
FAILING_COLOUR = "#cf222e"


class CheckedTopic:
    """A topic's result as a notebook shows it: an HTML table, or text in a terminal."""

    def __init__(self, course, result):
        self.course, self.result = course, result
        topic = course.topic(result.id)
        self.title = f"{topic.id} · {topic.title}"
        self.rows = result.exercises([e.id for e in topic.exercises])

    @property
    def passed(self):
        return bool(self.result.max_score) and self.result.score == self.result.max_score

    def _repr_html_(self):
        e = html.escape
        rows = []
        for s in self.rows:
            colour = COLOURS.get(s.status, FAILING_COLOUR)
            message = "" if s.status == PASSED else s.message.strip()
            rows.append(
                f"<tr><td><code>{e(s.id)}</code></td>"
                f'<td style="color:{colour};font-weight:bold">{e(s.status.replace("_", " "))}</td>'
                f'<td style="text-align:right">{s.score:g}/{s.max_score:g}</td>'
                f'<td style="text-align:left;white-space:pre-wrap">{e(message)}</td></tr>'
            )
        note = ISOLATION_NOTES.get(self.result.isolation)
        return (
            f"<div><strong>{e(self.title)}</strong> &nbsp; {self.result.score:g}/{self.result.max_score:g} points"
            f"<table><thead><tr><th>exercise</th><th>status</th><th>points</th><th>first problem</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>" + (f"<p><em>{e(note)}</em></p>" if note else "") + "</div>"
        )

    def __repr__(self):
        lines = [f"{self.title}: {self.result.score:g}/{self.result.max_score:g} points"]
        for s in self.rows:
            first = s.message.strip().splitlines()[0] if s.status != PASSED and s.message.strip() else ""
            lines.append(f"  {s.status:<11} {s.id}  {s.score:g}/{s.max_score:g}  {first}".rstrip())
        return "\n".join(lines)


def check(topic, exercises=(), root=None):
    """What `fmgrade check TOPIC [EXERCISE...]` does, returned as a CheckedTopic."""
    from grader.learner import check as check_mod  # pytest and torch: only when checking

    try:
        course = course_mod.load(root)
        state = progress_mod.load(course.root)  # read before learner code runs
        if not exercises:
            result = check_mod.check_topic(course, topic)
        elif "exercises" in inspect.signature(check_mod.check_topic).parameters:  # `fmgrade check TOPIC EXERCISE...`
            result = check_mod.check_topic(course, topic, tuple(exercises))
        else:
            raise UsageError("this fmgrade checks whole topics only: %fmgrade check TOPIC")
    except CourseError as exc:
        raise UsageError(str(exc)) from None
    progress_mod.record(course.root, result, state)
    return CheckedTopic(course, result)


@magics_class
class FmgradeMagics(Magics):
    @line_magic
    def fmgrade(self, line):
        """%fmgrade check TOPIC [EXERCISE...]: run the visible checks on the saved exercises/TOPIC.py."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{exc}; {USAGE}") from None
        if words[:1] == ["show"]:  # `%fmgrade show TOPIC [EXERCISE]`: pictures inline (grader.learner.pictures)
            from grader.learner import pictures

            try:
                return pictures.notebook_show(words[1:])
            except (CourseError, pictures.PicturesUnavailable) as exc:
                raise UsageError(str(exc)) from None
        if len(words) < 2 or words[0] != "check":
            raise UsageError(USAGE)
        return check(words[1], words[2:])


def load_ipython_extension(ipython):
    ipython.register_magics(FmgradeMagics)
