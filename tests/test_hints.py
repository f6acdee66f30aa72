"""Hints teach before they tell (issue 22): no hint, goal or mistake message a learner reads holds
an answer line of the solution, no hint or goal prints a value a check expects, and asking past
the last hint says so."""

import ast
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grader import cli, stubgen
from grader import course as course_model

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?(?:e-?\d+)?|\*\*|//|==|!=|<=|>=|[^\sA-Za-z_0-9]")
RUN = 8  # tokens in a row shared with a solution line make a hint the answer as code
NUMBER = re.compile(r"(?<![\w.])\d[\d,_]*(?:\.\d+)?(?:e-?\d+)?")
# Numbers a hint may print although a check file holds them too: facts of the number format, not answers.
FACTS = {"65504", "65536"}  # float16's largest value and 256^2


@pytest.fixture(scope="module")
def course():
    return course_model.load(ROOT)


def _texts(topic):
    """(where, text) of every goal and hint of a topic."""
    for exercise in topic.exercises:
        yield f"{topic.id}.{exercise.id} goal", exercise.goal
        for i, hint in enumerate(exercise.hints, start=1):
            yield f"{topic.id}.{exercise.id} hint {i}", hint


def _answer_runs(source):
    """Every run of RUN tokens of a code line inside the solution's answer regions."""
    lines = source.splitlines()
    runs = {}
    for region in stubgen.regions(source):
        for line in lines[region.begin : region.end - 1]:
            code = line.split("  #")[0].strip()
            tokens = TOKEN.findall(code)
            for i in range(len(tokens) - RUN + 1):
                runs.setdefault(tuple(tokens[i : i + RUN]), code)
    return runs


def _number(text):
    """(plain number, significant digits) of a number as written (65,285,660,672 -> 65285660672)."""
    plain = text.replace(",", "").replace("_", "").rstrip(".")
    return plain, len(plain.split("e")[0].replace(".", "").strip("0"))


def _messages(topic_id):
    """(where, message) of every known mistake of a topic: the release ships them to learners."""
    path = ROOT / "tests" / "mutants" / topic_id / "mutants.yml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else []
    return [(f"{topic_id} mistake {m['id']}", m["message"]) for m in entries or [] if m.get("message")]


def test_no_hint_goal_or_mistake_message_holds_an_answer_line_of_the_solution(course):
    found = []
    for topic in course.topics:
        path = course.solution_path(topic.id)
        if not path.is_file():
            continue
        runs = _answer_runs(path.read_text(encoding="utf-8"))
        for where, text in [*_texts(topic), *_messages(topic.id)]:
            tokens = TOKEN.findall(text)
            hit = next(
                (runs[r] for i in range(len(tokens) - RUN + 1) if (r := tuple(tokens[i : i + RUN])) in runs), None
            )
            if hit:
                found.append(f"{where} holds the solution's `{hit}`")
    assert not found, "\n".join(found)


# Strings in check files and stubs that share RUN tokens with an answer line and yet give no
# answer away: (file, the solution line they share) -> why.
NOT_ANSWERS = {
    ("tests/checks/attention/test_attention.py", "x = self.sublayer[0](x, lambda x: self.self_attn(x, x, x, mask))"): (
        "names the call the check made, MultiHeadedAttention(4, 16)(x, x, x, mask)"
    ),
    ("tests/checks/gpt3/test_decoding.py", 'raise ValueError(f"top_p must be in (0, 1], got {top_p}")'): (
        "the wording of the error the docstring asks for, not its logic"
    ),
    ("tests/checks/llama/test_layers.py", "xq, xk = apply_rotary_emb(xq, xk, freqs_cis)"): (
        "names the call the check made: the function's own signature"
    ),
    ("tests/checks/scaling/helpers.py", "scores = huber_objective(grid, N, D, L, delta)"): (
        "names the call the helper makes: the function's own signature"
    ),
    (
        "tests/checks/scaling/test_fitting.py",
        "optimizer.step(lbfgs_closure(optimizer, lambda: huber_objective(theta, N, D, L, delta)))",
    ): ("names the call the check made: the function's own signature"),
    ("tests/checks/scaling/test_fitting.py", "scores = huber_objective(grid, N, D, L, delta)"): (
        "names the call the check made: the function's own signature"
    ),
    ("tests/checks/scaling/test_fitting.py", '"loss": chinchilla_loss(N, D, **law),'): (
        "says how the check makes its synthetic runs from the law it fits"
    ),
    ("tests/checks/scaling/test_fitting.py", "a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))"): (
        "the order of theta's entries: the functions' interface, given in their docstrings"
    ),
    ("exercises/scaling.py", "a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))"): (
        "the order of theta's entries: the functions' interface"
    ),
    (
        "tests/checks/alpaca/test_validate.py",
        'return [f"records: expected a list of records, got {type(records).__name__}"]',
    ): ("the message format the docstring specifies and the checks read"),
    ("exercises/alpaca.py", 'return [f"records: expected a list of records, got {type(records).__name__}"]'): (
        "the message format the checks read, specified by the docstring"
    ),
}


def _strings(path):
    """Every string a learner may read in a Python file (messages, hints, docstrings), with the
    placeholders of an f-string as a gap that no token run crosses."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else " \x00 " for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def _check_and_stub_hits(course):
    """{(file, solution line): text} of strings in check files and stubs holding an answer line."""
    hits = {}
    for topic in course.topics:
        path = course.solution_path(topic.id)
        if not path.is_file() or not course.checks_dir(topic.id).is_dir():
            continue
        runs = _answer_runs(path.read_text(encoding="utf-8"))
        for file in [*sorted(course.checks_dir(topic.id).glob("*.py")), course.exercise_path(topic.id)]:
            for text in _strings(file):
                tokens = TOKEN.findall(text)
                for i in range(len(tokens) - RUN + 1):
                    if (run := tuple(tokens[i : i + RUN])) in runs:
                        hits.setdefault((file.relative_to(ROOT).as_posix(), runs[run]), text)
    return hits


def test_no_message_hint_or_docstring_in_checks_and_stubs_holds_an_answer_line(course):
    hits = _check_and_stub_hits(course)
    found = [
        f"{file}: {text[:90]!r} holds the solution's `{line}`"
        for (file, line), text in hits.items()
        if (file, line) not in NOT_ANSWERS
    ]
    assert not found, "\n".join(found)
    unused = sorted(set(NOT_ANSWERS) - set(hits))
    assert not unused, f"entries of NOT_ANSWERS that no text needs any more: {unused}"


def test_no_hint_or_goal_prints_a_value_a_check_holds(course):
    found = []
    for topic in course.topics:
        folder = course.checks_dir(topic.id)
        if not folder.is_dir():
            continue
        checks = " ".join(p.read_text(encoding="utf-8") for p in folder.glob("*.py"))
        checked = {_number(n)[0] for n in NUMBER.findall(checks.replace("_", ""))}
        for where, text in _texts(topic):
            for written in NUMBER.findall(text):
                plain, digits = _number(written)
                if digits >= 4 and plain in checked and plain not in FACTS:
                    found.append(f"{where} prints {written}, a value in tests/checks/{topic.id}/")
    assert not found, "\n".join(found)


def test_the_scans_catch_what_they_are_for():
    runs = _answer_runs(
        "def f(x):\n    ### BEGIN SOLUTION f\n    return torch.lerp(param, ema, beta)\n    ### END SOLUTION\n"
    )
    tokens = TOKEN.findall("Use torch.lerp(param, ema, beta) here.")
    assert any(tuple(tokens[i : i + RUN]) in runs for i in range(len(tokens) - RUN + 1))
    assert _number("65,285,660,672") == ("65285660672", 11)
    assert _number("0.992")[1] == 3


def test_asking_past_the_last_hint_says_there_are_no_more(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)
    loaded = course_model.load(course_copy)
    exercise = loaded.topic("attention").exercise("attention")
    total = len(exercise.hints)
    runner = CliRunner()
    outputs = [runner.invoke(cli.main, ["hint", "attention", "attention"]).output for _ in range(total + 1)]
    assert exercise.hints[total - 1] in outputs[total - 1]
    last = outputs[total]
    assert "no more hints" in last.lower()
    assert all(hint not in last for hint in exercise.hints)  # not a silent repeat
    again = runner.invoke(cli.main, ["hint", "attention", "attention", "--all"]).output
    assert all(hint in again for hint in exercise.hints) and "no more hints" not in again.lower()
