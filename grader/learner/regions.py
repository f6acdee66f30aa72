"""Where each exercise's answer lives in a learner's file.

In the original stub an answer region is two lines, at the indentation of the code around it:

    # TODO(<exercise>): <goal>
    raise NotImplementedError("exercise `<exercise>` is not done yet: ...")

Once the learner has written code there, both lines are gone, so a region is found through
the function (or class body, or module) that holds it: the statements of that body that the
stub has before and after the region (its anchors) must still be there, and whatever lies
between them is the learner's version of the region. A docstring anchors as any docstring
(notes in it are fine); other anchors must be the same code (ast.dump, so layout and comments
may differ). When an anchor or the function itself is gone, `LocateError` says which.
"""

import ast
import io
import re
import tokenize
from dataclasses import dataclass

TODO = re.compile(r"^(?P<indent>[ \t]*)# TODO\((?P<exercise>[A-Za-z_]\w*)\)")
RAISE = re.compile(r'^[ \t]*raise NotImplementedError\("exercise `(?P<exercise>[A-Za-z_]\w*)` is not done yet')


class LocateError(ValueError):
    """The learner's file no longer has the structure needed to find a region."""


@dataclass(frozen=True)
class Span:
    """Lines first..last (1-based, inclusive; last == first - 1 when empty) of one region."""

    exercise: str
    first: int
    last: int
    indent: str  # the indentation of the body holding the region


@dataclass(frozen=True)
class _StubRegion:
    exercise: str
    scope: tuple  # names of the classes/functions around it; () is the module
    index: int  # which region of that scope, in order
    runs: tuple  # the scope's anchor statements: before the first region, between regions, after the last
    span: Span  # where it is in the stub


def stub_exercises(stub_source):
    """The exercises that have a region in the stub, in order of appearance."""
    return list(dict.fromkeys(r.exercise for r in _stub_regions(stub_source)))


def locate(stub_source, learner_source, exercise=None, filename="exercises/<topic>.py"):
    """[Span, ...] of the learner's version of each region (of `exercise`, or all), stub order.

    Raises LocateError (naming the function and what is missing) when one cannot be found,
    SyntaxError when the learner's file does not parse."""
    tree = ast.parse(learner_source, filename=filename)
    spans = []
    for region in _stub_regions(stub_source):
        if exercise is None or region.exercise == exercise:
            spans.append(_find(region, tree, learner_source, filename))
    return spans


def stub_spans(stub_source, exercise=None):
    return [r.span for r in _stub_regions(stub_source) if exercise is None or r.exercise == exercise]


def text_of(source, span):
    return "".join(lines_of(source)[span.first - 1 : span.last])


def lines_of(source):
    """Lines with their ends, split where Python's parser splits them (not at form feeds or
    other characters that str.splitlines also takes for line ends)."""
    return io.StringIO(source, newline="").readlines()


# --- the stub's side -------------------------------------------------------------------


def _stub_regions(stub_source):
    ended = lines_of(stub_source)
    lines = [line.rstrip("\r\n") for line in ended]
    tree = ast.parse(stub_source)
    raises = {}  # line of the raise -> exercise
    for number, line in enumerate(lines, start=1):
        todo = TODO.match(line)
        if todo and number < len(lines):
            follow = RAISE.match(lines[number])
            if follow and follow["exercise"] == todo["exercise"]:
                raises[number + 1] = todo["exercise"]
    found = []
    for scope, owner, body in _bodies(tree):
        positions = [i for i, stmt in enumerate(body) if isinstance(stmt, ast.Raise) and stmt.lineno in raises]
        if not positions:
            continue
        bounds = [-1, *positions, len(body)]
        runs = tuple(tuple(body[bounds[k] + 1 : bounds[k + 1]]) for k in range(len(bounds) - 1))
        header_end = _header_end(ended, owner)
        for k, i in enumerate(positions):
            first = body[i - 1].end_lineno + 1 if i > 0 else header_end + 1
            last = (
                _first_line(body[i + 1]) - 1
                if i + 1 < len(body)
                else _trailing_comments(lines, body[i].end_lineno, _indent(lines[body[i].lineno - 1]))
            )
            span = Span(raises[body[i].lineno], first, last, _indent(lines[body[i].lineno - 1]))
            found.append(_StubRegion(span.exercise, scope, k, runs, span))
    return sorted(found, key=lambda r: r.span.first)


def _bodies(tree):
    """(scope names, node, body) for the module and every class and function in it."""
    pending = [((), tree)]
    while pending:
        scope, node = pending.pop()
        yield scope, node, node.body
        for child in node.body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                pending.append((scope + (child.name,), child))


# --- the learner's side ----------------------------------------------------------------


def _find(region, tree, source, filename):
    where = ".".join(region.scope) or "the module"
    what = f"exercise `{region.exercise}`"
    owner = tree
    for name in region.scope:
        matches = [
            n
            for n in owner.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
        ]
        if not matches:
            raise LocateError(f"{filename}: `{where}`, which holds {what}, is not there any more (renamed or removed?)")
        owner = matches[-1]  # as Python does: the last definition wins
    body = owner.body
    bounds = _match_runs(region.runs, body)
    if bounds is None:
        raise LocateError(
            f"{filename}: `{where}` no longer has the code the stub has around {what}: "
            f"put it back, or reset the whole file"
        )
    start, stop = bounds[region.index]  # body[start:stop] are the learner's statements of the region
    ended = lines_of(source)
    header_end = _header_end(ended, owner)
    if start == 0 and body and body[0].lineno <= header_end:
        raise LocateError(f"{filename}: `{where}` has its body on the line of its header; put it on lines of its own")
    first = body[start - 1].end_lineno + 1 if start > 0 else header_end + 1
    lines = [line.rstrip("\r\n") for line in ended]
    indent = _indent(lines[body[0].lineno - 1]) if body else region.span.indent
    last = _first_line(body[stop]) - 1 if stop < len(body) else _trailing_comments(lines, body[-1].end_lineno, indent)
    return Span(region.exercise, first, max(last, first - 1), indent)


def _match_runs(runs, body):
    """[(start, stop), ...]: the learner's statements between consecutive anchor runs, or None.

    The first run must open the body and the last one close it; runs between regions are
    searched in order."""
    head, *middle, tail = runs
    if head and _is_docstring(head[0]) and not (body and _is_docstring(body[0])):
        head = head[1:]  # a deleted docstring is no reason to refuse
    if not _same_run(body[: len(head)], head):
        return None
    tail_start = len(body) - len(tail)
    if tail_start < len(head) or not _same_run(body[tail_start:], tail):
        return None
    bounds, position = [], len(head)
    for run in middle:
        found = _search(body[:tail_start], run, position)
        if found is None:
            return None
        bounds.append((position, found))
        position = found + len(run)
    bounds.append((position, tail_start))
    return bounds


def _search(body, run, start):
    for i in range(start, len(body) - len(run) + 1):
        if _same_run(body[i : i + len(run)], run):
            return i
    return None


def _same_run(got, want):
    return len(got) == len(want) and all(_same(a, b) for a, b in zip(got, want))


def _same(a, b):
    if _is_docstring(a) and _is_docstring(b):
        return True
    return ast.dump(a) == ast.dump(b)


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


# --- lines -------------------------------------------------------------------------------


def _first_line(node):
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _trailing_comments(lines, last, indent):
    """`last`, moved down over the comment lines (indented like the body) that end a body."""
    end = last
    for number in range(last + 1, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            continue
        if line.lstrip().startswith("#") and line.startswith(indent) and len(_indent(line)) >= len(indent):
            end = number
        else:
            break
    return end


def _indent(line):
    return line[: len(line) - len(line.lstrip(" \t"))]


def _header_end(lines, node):
    """The line of the colon that ends a def/class header (0 for the module); `lines` keep their ends."""
    if isinstance(node, ast.Module):
        return 0
    text = "".join(lines[node.lineno - 1 : node.body[0].lineno])
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.OP:
                if token.string in "([{":
                    depth += 1
                elif token.string in ")]}":
                    depth -= 1
                elif token.string == ":" and depth == 0:
                    return node.lineno + token.start[0] - 1
    except (tokenize.TokenError, IndentationError):
        pass
    return node.body[0].lineno - 1
