"""Which checks a topic has, read from the check files' source without importing them.

Used to validate course.yml (every exercise has checks) and by `dev check`, where importing
every topic's checks would cost seconds. `pytest.mark.exercise("x")`, `points(n)` and `hidden`
are read from decorators and from a module-level `pytestmark`.
"""

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CheckInfo:
    file: str
    name: str
    exercise: str
    points: float = 1
    hidden: bool = False


def scan(checks_dir):
    """{exercise id: [CheckInfo, ...]} for the test_*.py files of one topic's folder."""
    found: dict[str, list[CheckInfo]] = {}
    for path in sorted(Path(checks_dir).glob("test_*.py")):
        for info in scan_file(path):
            found.setdefault(info.exercise, []).append(info)
    return found


def scan_file(path):
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    module_marks = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            module_marks = _marks(values)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            marks = {**module_marks, **_marks(node.decorator_list)}
            if "exercise" in marks:
                yield CheckInfo(
                    Path(path).name, node.name, marks["exercise"], marks.get("points", 1), "hidden" in marks
                )


def _marks(nodes):
    """Read `pytest.mark.NAME` / `pytest.mark.NAME(literal)` expressions."""
    marks: dict[str, object] = {}
    for node in nodes:
        call_args = []
        if isinstance(node, ast.Call):
            call_args, node = node.args, node.func
        if isinstance(node, ast.Attribute) and getattr(node.value, "attr", None) == "mark":
            value: object = True
            if call_args and isinstance(call_args[0], ast.Constant):
                value = call_args[0].value
            marks[node.attr] = value
    return marks
