"""Known wrong implementations: `tests/mutants/<topic>/mutants.yml`.

A mutant is the reference solution with exact text replacements: one realistic mistake.
It names the check it must fail and a fragment of the diagnostic that check must show.

    - id: no_scaling
      mistake: forgets to divide the scores by sqrt(d_k)
      replace:
        - old: "scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)"
          new: "scores = query @ key.transpose(-2, -1)"
      check: test_attention.py::test_output_matches_sdpa
      diagnostic: "sqrt(d_k)"
"""

from dataclasses import dataclass

from grader import yaml_lines
from grader.course import CourseError

MUTANTS_FILE = "mutants.yml"
_REQUIRED = {"id", "mistake", "replace", "check"}
_OPTIONAL = {"message", "diagnostic"}


@dataclass(frozen=True)
class Mutant:
    id: str
    mistake: str
    replace: tuple  # ((old, new), ...)
    check: str
    diagnostic: str = ""
    message: str = ""

    def apply(self, source, filename="<solution>"):
        for old, new in self.replace:
            count = source.count(old)
            if count != 1:
                raise CourseError(f"mutant '{self.id}': {old!r} occurs {count} times in {filename}, not once")
            source = source.replace(old, new)
        return source


def load(course, topic_id):
    """The mutants of a topic ([] when it has none)."""
    path = course.mutants_dir(topic_id) / MUTANTS_FILE
    if not path.is_file():
        return []
    name = str(path.relative_to(course.root))
    try:
        data, lines = yaml_lines.load(path.read_text(encoding="utf-8"))
    except yaml_lines.YamlError as exc:
        raise CourseError(f"{name}:{exc.line}: {exc}") from None
    if not isinstance(data, list):
        raise CourseError(f"{name}: expected a list of mutants")
    found, seen = [], set()
    for i, raw in enumerate(data):
        where = f"{name}:{lines.get((i,), '?')}: mutant {i}"
        if not isinstance(raw, dict) or not _REQUIRED <= set(raw) <= _REQUIRED | _OPTIONAL or not _OPTIONAL & set(raw):
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise CourseError(
                f"{where}: needs the fields {sorted(_REQUIRED)} and `message` or `diagnostic` (or both), has {keys}"
            )
        if raw["id"] in seen:
            raise CourseError(f"{where}: duplicate mutant id '{raw['id']}'")
        seen.add(raw["id"])
        replace = raw["replace"]
        if (
            not isinstance(replace, list)
            or not replace
            or not all(
                isinstance(r, dict) and set(r) == {"old", "new"} and all(isinstance(v, str) for v in r.values())
                for r in replace
            )
        ):
            raise CourseError(f"{where}: replace must be a list of {{old: text, new: text}}")
        found.append(
            Mutant(
                str(raw["id"]),
                str(raw["mistake"]),
                tuple((r["old"], r["new"]) for r in replace),
                str(raw["check"]),
                str(raw.get("diagnostic", "")),
                str(raw.get("message", "")),
            )
        )
    return found


def write_mutant(course, topic_id, mutant, folder):
    """Write the mutated solution as `folder/<topic>.py` and return its path."""
    solution = course.solution_path(topic_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{topic_id}.py"
    path.write_text(mutant.apply(solution.read_text(encoding="utf-8"), str(solution)), encoding="utf-8")
    return path


def exercise_of(course, topic_id, mutant):
    """The exercise the mistake belongs to: that of the answer region holding the mutant's first
    replaced text, or, for text outside every region (a default value, a constant), the
    exercise of the check that catches it."""
    from grader import stubgen

    source = course.solution_path(topic_id).read_text(encoding="utf-8")
    at = source.find(mutant.replace[0][0])
    line = source.count("\n", 0, at) + 1 if at >= 0 else 0
    inside = next((r.exercise for r in stubgen.regions(source) if r.begin < line < r.end), "")
    return inside or check_exercise(course, topic_id, mutant.check)


def check_exercise(course, topic_id, check_id):
    """The exercise a check's marks give it (`@pytest.mark.exercise("x")` on the function, else
    the module's `pytestmark`), read without importing the check file; "" when none is found."""
    import ast

    file_name, _, name = check_id.partition("::")
    path = course.checks_dir(topic_id) / file_name
    if not path.is_file():
        return ""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name.split("[")[0]), None)
    module_marks = [n.value for n in tree.body if isinstance(n, ast.Assign) and _names(n) == ["pytestmark"]]
    for node in [*(function.decorator_list if function else []), *module_marks]:
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and getattr(call.func, "attr", "") == "exercise"
                and call.args
                and isinstance(call.args[0], ast.Constant)
            ):
                return str(call.args[0].value)
    return ""


def _names(assign):
    return [t.id for t in assign.targets if hasattr(t, "id")]
