"""Checking from Jupyter or IPython: `%load_ext grader`, then `%fmgrade check TOPIC [EXERCISE...]`
and `%fmgrade hint TOPIC [EXERCISE]`.

The magic runs the same check as `fmgrade check` (sandboxed worker, visible checks, progress
recorded) on the file as it is SAVED in exercises/, and shows the result as an HTML table.
Everything that comes from learner code or a check's message is escaped.
"""

import html
import inspect
import re
import shlex
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from grader import course as course_mod
from grader.course import CourseError
from grader.learner import progress as progress_mod
from grader.learner import rendering
from grader.learner.rendering import ISOLATION_NOTES
from grader.results import BLOCKED, NOT_STARTED, PASSED, standing

USAGE = (
    "usage: %fmgrade check TOPIC [EXERCISE...]   (checks the saved exercises/TOPIC.py)\n"
    "       %fmgrade hint TOPIC [EXERCISE]       (one more hint; the exercise defaults to the first not passed)\n"
    "       %fmgrade show TOPIC [EXERCISE]       (your results beside the expected ones, as pictures)"
)
COLOURS = {PASSED: "#1a7f37", NOT_STARTED: "#9a6700", BLOCKED: "#6e7781"}
FAILING_COLOUR = "#cf222e"
STATUS_WORDS = {NOT_STARTED: "not started", BLOCKED: "blocked"}


def _marked_up(text):
    """Escaped `text` with `code` shown as code (never a literal backtick pair)."""
    escaped = html.escape(text)
    return re.sub(r"`([^`\n]+)`", lambda m: f"<code>{m.group(1)}</code>", escaped)


def _when(timestamp):
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


class CheckedTopic:
    """A topic's result as a notebook shows it: an HTML table, or text in a terminal. Statuses
    and the score follow the rule every screen uses (grader.results.standing)."""

    def __init__(self, course, result, saved_at=None, checked_at=None, next_step=""):
        self.course, self.result = course, result
        topic = course.topic(result.id)
        self.title = f"{topic.id} · {topic.title}"
        self.standing = standing(result, topic.exercises)
        self.rows = self.standing.exercises
        self.module_file = f"exercises/{topic.id}.py"
        self.saved_at, self.checked_at = saved_at, checked_at if checked_at is not None else time.time()
        self.next_step = next_step

    @property
    def passed(self):
        return self.standing.complete

    @property
    def checked_line(self):
        """Which file was checked and when: the notebook's cells are not what runs."""
        saved = f", saved at {_when(self.saved_at)}" if self.saved_at is not None else ""
        return (
            f"checked the saved file {self.module_file}{saved}, at {_when(self.checked_at)} "
            "(save the notebook or file first: unsaved cells are not checked)"
        )

    def _repr_html_(self):
        e = html.escape
        rows = []
        for s in self.rows:
            colour = COLOURS.get(s.status, FAILING_COLOUR)
            message = "" if s.status == PASSED else s.message.strip()
            rows.append(
                f"<tr><td><code>{e(s.id)}</code></td>"
                f'<td style="color:{colour};font-weight:bold">{e(STATUS_WORDS.get(s.status, s.status))}</td>'
                f'<td style="text-align:right">{s.score:g}/{s.max_score:g}</td>'
                f'<td style="text-align:left;white-space:pre-wrap">{_marked_up(message)}</td></tr>'
            )
        note = ISOLATION_NOTES.get(self.result.isolation)
        problem = ""
        if self.result.import_error:
            problem = f'<p style="color:{FAILING_COLOUR}">{_marked_up(self.result.import_error.strip())}</p>'
        step = f"<p><strong>{_marked_up(self.next_step)}</strong></p>" if self.next_step else ""
        return (
            f"<div><strong>{e(self.title)}</strong> &nbsp; {self.standing.score:g}/{self.standing.max_score:g} points"
            f'<br><small style="color:#6e7781">{_marked_up(self.checked_line)}</small>{problem}'
            f"<table><thead><tr><th>exercise</th><th>status</th><th>points</th><th>first problem</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>" + step + (f"<p><em>{e(note)}</em></p>" if note else "") + "</div>"
        )

    def __repr__(self):
        lines = [f"{self.title}: {self.standing.score:g}/{self.standing.max_score:g} points", self.checked_line]
        for s in self.rows:
            first = s.message.strip().splitlines()[0] if s.status != PASSED and s.message.strip() else ""
            lines.append(f"  {s.status:<11} {s.id}  {s.score:g}/{s.max_score:g}  {first}".rstrip())
        if self.next_step:
            lines.append(self.next_step)
        return "\n".join(lines)


class Hint:
    """`%fmgrade hint`: the same text as `fmgrade hint`, as HTML in a notebook."""

    def __init__(self, text):
        self.text = text

    def _repr_html_(self):
        return f'<div style="white-space:pre-wrap">{_marked_up(self.text)}</div>'

    def __repr__(self):
        return self.text


def check(topic, exercises=(), root=None):
    """What `fmgrade check TOPIC [EXERCISE...]` does, returned as a CheckedTopic."""
    from grader.learner import check as check_mod  # pytest and torch: only when checking

    try:
        course = course_mod.load(root)
        problem = check_mod.interpreter_problem()
        if problem:
            raise UsageError(problem)
        state = progress_mod.load(course.root)  # read before learner code runs
        path = course.exercise_path(course.topic(topic).id)
        saved_at = path.stat().st_mtime if path.is_file() else None
        if not exercises:
            result = check_mod.check_topic(course, topic)
        elif "exercises" in inspect.signature(check_mod.check_topic).parameters:  # `fmgrade check TOPIC EXERCISE...`
            result = check_mod.check_topic(course, topic, tuple(exercises))
        else:
            raise UsageError("this fmgrade checks whole topics only: %fmgrade check TOPIC")
    except CourseError as exc:
        raise UsageError(str(exc)) from None
    state = progress_mod.record(course.root, result, state, course.topic(result.id).exercises)
    step = str(rendering.next_step(course, result, path, progress_mod.suggest_next(course, state)))
    step = re.sub(r"fmgrade (check|hint) ", r"%fmgrade \1 ", step)  # what to type here
    return CheckedTopic(course, result, saved_at=saved_at, next_step=step)


def hint(topic, exercise=None, root=None):
    """What `fmgrade hint TOPIC [EXERCISE]` does: one more hint, kept with the progress."""
    try:
        course = course_mod.load(root)
        state = progress_mod.load(course.root)
        topic_obj = course.topic(topic)
        if exercise is None:
            pending = [e for e in topic_obj.exercises if not progress_mod.passed(state, topic_obj.id, e.id)]
            exercise = (pending or topic_obj.exercises)[0].id
        exercise_obj = topic_obj.exercise(exercise)
    except CourseError as exc:
        raise UsageError(str(exc)) from None
    shown = progress_mod.reveal_hint(course.root, state, topic_obj.id, exercise_obj)
    text = str(rendering.hint_report(course, topic_obj, exercise_obj, shown))
    return Hint(text.replace(f"`fmgrade hint {topic_obj.id}", f"`%fmgrade hint {topic_obj.id}"))


@magics_class
class FmgradeMagics(Magics):
    @line_magic
    def fmgrade(self, line):
        """%fmgrade check TOPIC [EXERCISE...]: run the visible checks on the saved exercises/TOPIC.py;
        %fmgrade hint TOPIC [EXERCISE]: one more hint."""
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
        if len(words) >= 2 and words[0] == "check":
            return check(words[1], words[2:])
        if 2 <= len(words) <= 3 and words[0] == "hint":
            return hint(*words[1:])
        raise UsageError(USAGE)


def load_ipython_extension(ipython):
    ipython.register_magics(FmgradeMagics)
