"""Make a learner's stub from a reference solution.

Each answer region

    ### BEGIN SOLUTION <exercise>
    ...
    ### END SOLUTION

becomes, at the same indentation,

    # TODO(<exercise>): <the exercise's goal from course.yml>
    raise NotImplementedError("exercise `<exercise>` is not done yet: ...")

Everything else (signatures, docstrings, scaffolding) is kept byte for byte, so generation is
deterministic and `exercises/` can be compared with what this produces.

The stub is also a notebook in the percent format (VS Code runs its cells; Jupyter opens it
through jupytext): `add_cells` puts a `# %%` line before each top-level function and class and
before the imports, and makes the module docstring a markdown cell. Solutions stay without them.
"""

import ast
import re
from dataclasses import dataclass

from grader.course import CourseError

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:[ \t]+(?P<exercise>\S+))?[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")


class StubError(CourseError, ValueError):
    """A malformed solution file; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    exercise: str
    begin: int  # 1-based line of the BEGIN marker
    end: int  # 1-based line of the END marker


def regions(source, filename="<solution>"):
    """The answer regions of a solution, checked for pairing and a named exercise."""
    found: list[Region] = []
    open_at: int | None = None
    exercise = ""
    for number, line in enumerate(source.splitlines(), start=1):
        begin = BEGIN.match(line)
        if begin:
            if open_at is not None:
                raise StubError(f"{filename}:{number}: BEGIN SOLUTION inside the region opened at line {open_at}")
            if not begin["exercise"]:
                raise StubError(
                    f"{filename}:{number}: BEGIN SOLUTION must name its exercise: ### BEGIN SOLUTION <exercise>"
                )
            open_at, exercise = number, begin["exercise"]
        elif END.match(line):
            if open_at is None:
                raise StubError(f"{filename}:{number}: END SOLUTION without a BEGIN SOLUTION")
            found.append(Region(exercise, open_at, number))
            open_at = None
        elif "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            raise StubError(f"{filename}:{number}: a solution marker must stand alone on its line")
    if open_at is not None:
        raise StubError(f"{filename}:{open_at}: BEGIN SOLUTION is never closed by ### END SOLUTION")
    return found


def make_stub(source, module, goals=None, filename="<solution>"):
    """The stub text for `source`; `goals` maps exercise id -> one-line goal for the TODO."""
    goals = goals or {}
    lines = source.splitlines(keepends=True)
    out, position = [], 0
    for region in regions(source, filename):
        out.extend(lines[position : region.begin - 1])
        begin = BEGIN.match(lines[region.begin - 1].rstrip("\r\n"))
        assert begin is not None  # regions() found this line by the same pattern
        indent = begin["indent"]
        goal = goals.get(region.exercise)
        out.append(f"{indent}# TODO({region.exercise}): {goal}\n" if goal else f"{indent}# TODO({region.exercise})\n")
        out.append(
            f'{indent}raise NotImplementedError("exercise `{region.exercise}` is not done yet: '
            f'fill in this TODO in exercises/{module}.py")\n'
        )
        position = region.end
    out.extend(lines[position:])
    return add_cells("".join(out), filename)


# jupytext keeps a markdown cell that is a docstring as a docstring when it writes the file back
NOTEBOOK_HEADER = '# ---\n# jupyter:\n#   jupytext:\n#     cell_markers: \'"""\'\n# ---\n'
CODE_CELL, MARKDOWN_CELL = "# %%", "# %% [markdown]"


def add_cells(source, filename="<stub>"):
    """`source` with percent-format cell markers (unchanged if it already has some)."""
    if any(line.startswith(CODE_CELL) for line in source.splitlines()):
        return source
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise StubError(f"{filename}:{exc.lineno}: the stub is not valid Python ({exc.msg})") from None
    lines = source.splitlines(keepends=True)
    body, markers = tree.body, {}
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0].value, "value", None), str):
        markers[body[0].lineno] = MARKDOWN_CELL
        body = body[1:]
    after_definition = True  # the first statement after the docstring opens a cell
    for node in body:
        definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if definition or after_definition:
            markers[_cell_start(lines, node)] = CODE_CELL
        after_definition = definition
    out = [NOTEBOOK_HEADER]
    for number, line in enumerate(lines, start=1):
        if number in markers:
            if out[-1].strip():
                out.append("\n")  # a marker right under code (the docstring) gets air above it
            out.append(markers[number] + "\n")
        out.append(line)
    return "".join(out)


def _cell_start(lines, node):
    """The first line of a top-level statement, with its decorators and the comments just above it."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    while first > 1 and lines[first - 2].startswith("#"):
        first -= 1
    return first


def stub_for(course, topic_id):
    """The stub text for one topic of a loaded course."""
    path = course.solution_path(topic_id)
    goals = {e.id: e.goal for e in course.topic(topic_id).exercises}
    source = path.read_text(encoding="utf-8")
    known = set(goals)
    for region in regions(source, str(path)):
        if region.exercise not in known:
            raise StubError(
                f"{path}:{region.begin}: unknown exercise '{region.exercise}' (course.yml has: {', '.join(goals)})"
            )
    return make_stub(source, topic_id, goals, str(path))


def drifted(course):
    """Topics whose committed stub differs from the generated one (or is missing)."""
    stale = []
    for topic in course.topics:
        if not course.solution_path(topic.id).is_file():
            continue
        stub = course.exercise_path(topic.id)
        if not stub.is_file() or stub.read_text(encoding="utf-8") != stub_for(course, topic.id):
            stale.append(topic.id)
    return stale


def write_stubs(course, topics=None):
    """Regenerate exercises/<topic>.py for each topic that has a solution; returns the written paths."""
    written = []
    for topic in course.topics:
        if topics and topic.id not in topics or not course.solution_path(topic.id).is_file():
            continue
        path = course.exercise_path(topic.id)
        path.parent.mkdir(exist_ok=True)
        path.write_text(stub_for(course, topic.id), encoding="utf-8")
        written.append(path)
    return written
