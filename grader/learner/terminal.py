"""Printing renderings (grader.learner.rendering) to the terminal through rich.

Colour and bars on a terminal that supports them; plain text when the output is piped or
captured (rich decides by isatty), when NO_COLOR is set, or on TERM=dumb.
"""

import sys

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text


def console(file=None):
    """A Console for the learner's output. No markup, highlighting or emoji codes: the text we
    print (check messages, learner output) is shown exactly as it is. On a terminal long lines
    wrap at word boundaries to its width; piped, they are never re-wrapped."""
    out = Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True)
    out.soft_wrap = not out.is_terminal
    return out


def echo(*renderables, file=None):
    out = console(file)
    for renderable in renderables:
        out.print(renderable)


class LiveRows:
    """`fmgrade check`'s rows as exercises finish: on a terminal, above a spinner that counts
    them, all replaced by the full report at the end; piped, one plain line each."""

    def __init__(self, topic_id, file=None):
        self.topic_id = topic_id
        # the stream of now: pytest's output is swallowed while the checks run (runner._quiet_pytest)
        self.console = console(file or sys.stdout)
        self.rows, self.live = [], None
        self.label = f"checking {topic_id}…"

    def __enter__(self):
        if self.console.is_terminal:
            self.live = Live(
                self._view(),
                console=self.console,
                transient=True,
                refresh_per_second=8,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.__enter__()
        else:
            self.console.print(self.label)
        return self

    def _view(self):
        return Group(*self.rows, Spinner("dots", Text(self.label)))

    def add(self, row, done, total):
        """Show one finished exercise's `row` (a rich Text)."""
        if self.live is None:
            self.console.print(row)
            return
        self.rows.append(row)
        self.label = f"checking {self.topic_id}… {done} of {total} exercises done"
        self.live.update(self._view(), refresh=True)

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False
