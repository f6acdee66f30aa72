"""Printing renderings (grader.learner.rendering) to the terminal through rich.

Colour and bars on a terminal that supports them; plain text when the output is piped or
captured (rich decides by isatty), when NO_COLOR is set, or on TERM=dumb.
"""

from rich.console import Console


def console(file=None):
    """A Console for the learner's output. No markup, highlighting or emoji codes: the text we
    print (check messages, learner output) is shown exactly as it is, and never re-wrapped."""
    return Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True)


def echo(*renderables, file=None):
    out = console(file)
    for renderable in renderables:
        out.print(renderable)
