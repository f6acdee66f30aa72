"""Recorded expectations, known mistakes named from fingerprints, and blocked checks, on a toy
course built in a temporary folder (fast, and independent of the real topics)."""

import json
import re

import numpy
import pytest
import torch

from grader import course, stubgen
from grader import recorded_data as data
from grader.instructor import devcheck, mutants, record
from grader.judge import recordings as store
from grader.judge import runner
from grader.judge.replay import Node, Record, RecordingMissing, Replay

COURSE = """\
format_version: 1
title: Toy
sections:
  - id: basics
    title: Basics
    topics:
      - id: toy
        title: Toy topic
        exercises:
          - id: scale
            goal: Scale a tensor.
          - id: counter
            goal: Count calls.
          - id: combine
            depends: [scale]
            goal: Combine.
"""

SOLUTION = '''\
"""A toy topic."""
import torch


def scale(x, factor):
    """x times factor."""
    ### BEGIN SOLUTION scale
    return x * factor
    ### END SOLUTION


class Counter:
    """Counts how often it is called."""

    def __init__(self, start):
        ### BEGIN SOLUTION counter
        self.count = start
        ### END SOLUTION

    def __call__(self, step):
        ### BEGIN SOLUTION counter
        self.count = self.count + step
        return torch.tensor([self.count, self.count * 2.0])
        ### END SOLUTION


def combine(x):
    """scale(x, 2) + 1."""
    ### BEGIN SOLUTION combine
    return scale(x, 2) + 1
    ### END SOLUTION
'''

CHECKS = """\
import pytest
import torch

from grader.checking import expect_close, expect_number

X = torch.arange(6.0).reshape(2, 3)


@pytest.mark.exercise("scale")
def test_scale(impl, recorded):
    expect_close(impl.scale(X, 3.0), recorded.scale(X, 3.0), "scale(X, 3)")


@pytest.mark.exercise("scale")
@pytest.mark.hidden
def test_scale_hidden(impl, ref, seed):
    x = torch.randn(4, generator=torch.Generator().manual_seed(seed))
    expect_close(impl.scale(x, 5.0), ref.scale(x, 5.0), "scale(x, 5)")


@pytest.mark.exercise("counter")
def test_counter(impl, recorded):
    mine, theirs = impl.Counter(1), recorded.Counter(1)
    for step in (1, 2):
        expect_close(mine(step), theirs(step), f"call with step {step}")
    expect_number(mine.count, theirs.count, "count")


@pytest.mark.exercise("counter")
@pytest.mark.hidden
def test_counter_hidden(impl):
    expect_number(impl.Counter(0)(3)[0], 3.0, "count after a step of 3")


@pytest.mark.exercise("combine")
def test_combine(impl, recorded):
    expect_close(impl.combine(X), recorded.combine(X), "combine(X)")


@pytest.mark.exercise("combine")
@pytest.mark.hidden
def test_combine_hidden(impl):
    expect_close(impl.combine(torch.ones(2)), torch.full((2,), 3.0), "combine(ones)")
"""

MUTANTS = """\
- id: added_factor
  mistake: adds the factor instead of multiplying
  replace:
    - old: "return x * factor"
      new: "return x + factor"
  check: test_toy.py::test_scale
  message: added the factor instead of multiplying by it
- id: squared_factor
  mistake: multiplies by the factor squared
  replace:
    - old: "return x * factor"
      new: "return x * factor * factor"
  check: test_toy.py::test_scale_hidden
  message: multiplied by the factor twice
- id: count_reset
  mistake: forgets the running count
  replace:
    - old: "self.count = self.count + step"
      new: "self.count = step"
  check: test_toy.py::test_counter
  message: replaced the count by the step instead of adding the step to it
"""


@pytest.fixture(scope="module")
def recorded_toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("course") / "toy"
    (root / "solutions").mkdir(parents=True)
    (root / "tests" / "checks" / "toy").mkdir(parents=True)
    (root / "tests" / "mutants" / "toy").mkdir(parents=True)
    (root / "course.yml").write_text(COURSE)
    (root / "solutions" / "toy.py").write_text(SOLUTION)
    (root / "tests" / "checks" / "toy" / "test_toy.py").write_text(CHECKS)
    (root / "tests" / "mutants" / "toy" / "mutants.yml").write_text(MUTANTS)
    (root / "exercises").mkdir()
    loaded = course.load(root)
    stubgen.write_stubs(loaded, ["toy"])
    record.record(loaded, ["toy"])
    return root


@pytest.fixture
def toy(recorded_toy, tmp_path):
    """A fresh copy of the recorded toy course for each test."""
    import shutil

    shutil.copytree(recorded_toy, tmp_path / "toy")
    return course.load(tmp_path / "toy")


def _write(toy, source):
    path = toy.root / "submission.py"
    path.write_text(source)
    return path


def _run(toy, source, **kwargs):
    return runner.run_topic(toy, "toy", _write(toy, source), **{"hidden": False, "isolation": "none", **kwargs})


def _by_id(result):
    return {c.id.split("::")[1]: c for c in result.checks}


# --- data --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        float("inf"),
        "text",
        torch.tensor(2.5),
        torch.tensor(7),
        [1, (2.0, "x")],
        {"a": 1, 2: [3]},
        torch.arange(6, dtype=torch.float64).reshape(2, 3),
        torch.tensor([True, False]),
        torch.zeros(0, 4),
        torch.tensor([1.5], dtype=torch.bfloat16),
        numpy.arange(4, dtype=numpy.int32).reshape(2, 2),
    ],
)
def test_data_round_trips_exactly(value):
    form = data.encode(value)
    again = data.decode(json.loads(json.dumps(form)))
    assert data.encode(again) == form
    assert type(again) is type(value) or isinstance(value, tuple)


def test_data_refuses_objects_and_loads_no_code():
    with pytest.raises(data.NotData):
        data.encode(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError):
        data.decode({"__reduce__": "os.system"})
    with pytest.raises(ValueError):
        data.decode({"ndarray": "|O8", "shape": [1], "data": ""})


def test_call_keys_depend_on_arguments_and_position():
    x = torch.arange(3)
    assert data.call_key("c", 0, "call", "", (x,)) == data.call_key("c", 0, "call", "", (torch.arange(3),))
    assert data.call_key("c", 0, "call", "", (x,)) != data.call_key("c", 0, "call", "", (x * 2,))
    assert data.call_key("c", 0, "call", "", (x,)) != data.call_key("c", 1, "call", "", (x,))
    assert data.call_key("c", 0, "call", "", ("a",)) != data.call_key("c", 0, "call", "", ("b",))
    assert data.call_key("c", 0, "call", "", (torch.ones(2),)) != data.call_key("c", 0, "call", "", (torch.ones(3),))


def test_call_keys_ignore_the_last_bits_of_floating_inputs():
    """torch.randn may differ in the last bit between CPUs: the learner's machine must still find
    the answers recorded on the instructor's."""
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert data.call_key("c", 0, "call", "", (x,)) == data.call_key("c", 0, "call", "", (x.nextafter(x + 1),))
    assert data.call_key("c", 0, "call", "", (0.1 + 0.2,)) == data.call_key("c", 0, "call", "", (0.3,))
    with pytest.raises(data.NotData):
        data.call_key("c", 0, "call", "", (object(),))


# --- recording and replay ------------------------------------------------------------------------


def test_recording_is_deterministic_and_holds_answers_and_fingerprints(toy):
    path = store.path_for(toy.checks_dir("toy"))
    first = path.read_text()
    record.record(toy, ["toy"])
    assert path.read_text() == first
    saved = store.load(toy.checks_dir("toy"), "toy")
    assert saved.mistakes == {
        "added_factor": "added the factor instead of multiplying by it",
        "squared_factor": "multiplied by the factor twice",
        "count_reset": "replaced the count by the step instead of adding the step to it",
    }
    named = {m for fingerprints in saved.fingerprints.values() for m in fingerprints}
    assert {"added_factor", "squared_factor", "count_reset"} <= named
    assert "def scale" not in first and "x * factor" not in first


def test_replay_answers_like_the_solution_and_objects_keep_state(toy):
    saved = store.load(toy.checks_dir("toy"), "toy")
    root = Replay(saved, "test_toy.py::test_counter").root()
    counter = root.Counter(1)
    assert isinstance(counter, Node)
    assert counter(1).tolist() == [2.0, 4.0] and counter(2).tolist() == [4.0, 8.0]
    assert counter.count == 4


def test_replay_of_an_unrecorded_call_is_a_course_problem(toy):
    saved = store.load(toy.checks_dir("toy"), "toy")
    with pytest.raises(RecordingMissing, match="fmgrade dev record"):
        Replay(saved, "test_toy.py::test_scale").root().scale(torch.ones(1), 7.0)


def test_record_keeps_the_mistakes_answer_only_where_it_differs():
    import types

    solution = types.SimpleNamespace(f=lambda x: x * 2, g=lambda x: x + 0)
    mistake = types.SimpleNamespace(f=lambda x: x * 3, g=lambda x: x + 0)
    recording = store.Recording("t")
    root = Record(recording, solution, ("times_three", mistake)).root("c")
    assert root.f(torch.ones(1)).item() == 2.0  # the check always sees the solution's answer
    root.g(torch.ones(1))
    fingerprints = list(recording.fingerprints.values())
    assert len(fingerprints) == 1 and data.decode(fingerprints[0]["times_three"]).item() == 3.0


# --- learners' results ---------------------------------------------------------------------------


def test_solution_passes_and_stub_is_not_started(toy):
    solved = _run(toy, SOLUTION, hidden=True, seed=1)
    assert all(c.status == "passed" for c in solved.checks), [(c.id, c.message) for c in solved.checks]
    stub = _run(toy, toy.exercise_path("toy").read_text())
    assert {c.status for c in stub.checks} <= {"not_started", "blocked"}


def test_a_visible_check_names_the_recorded_mistake_and_its_id(toy):
    result = _by_id(_run(toy, SOLUTION.replace("return x * factor", "return x + factor")))
    assert result["test_scale"].status == "failed"
    assert result["test_scale"].mistake == "added_factor"
    assert (
        "Your result matches what you get if you added the factor instead of multiplying"
        in result["test_scale"].message
    )


def test_an_unknown_mistake_is_failed_without_a_name(toy):
    result = _by_id(_run(toy, SOLUTION.replace("return x * factor", "return x - factor")))
    assert result["test_scale"].status == "failed" and result["test_scale"].mistake == ""


def test_a_stateful_mistake_is_named(toy):
    result = _by_id(_run(toy, SOLUTION.replace("self.count = self.count + step", "self.count = step")))
    assert result["test_counter"].mistake == "count_reset"


def test_a_hidden_check_names_a_mistake_live_from_the_mutants(toy):
    result = _by_id(_run(toy, SOLUTION.replace("return x * factor", "return x * factor * factor"), hidden=True, seed=3))
    assert result["test_scale_hidden"].mistake == "squared_factor"
    assert "multiplied by the factor twice" in result["test_scale_hidden"].message


def test_mistake_ids_reach_the_json_result(toy):
    from grader import formats as reporters
    from grader.results import Report

    result = _run(toy, SOLUTION.replace("return x * factor", "return x + factor"))
    checks = json.loads(reporters.to_json(Report([result])))["topics"][0]["checks"]
    assert {c["id"].split("::")[1]: c["mistake"] for c in checks}["test_scale"] == "added_factor"


def test_checks_of_an_exercise_whose_dependency_fails_are_blocked_and_not_run(toy):
    broken = SOLUTION.replace("return x * factor", "return x + factor").replace(
        "return scale(x, 2) + 1", "raise SystemExit('combine ran')"
    )
    result = _by_id(_run(toy, broken, hidden=True, seed=1))
    for name in ("test_combine", "test_combine_hidden"):
        assert result[name].status == "blocked", result[name].message
        assert "fix `scale` first" in result[name].message
    assert result["test_counter"].status == "passed"  # no dependency on scale


def test_depends_must_name_an_earlier_exercise(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "course.yml").write_text(COURSE.replace("depends: [scale]", "depends: [later]"))
    with pytest.raises(course.CourseError, match=r"course.yml:\d+: .*depends.*'later' is not an earlier exercise"):
        course.load(root)


# --- the instructor's side -------------------------------------------------------------------------


def test_dev_check_reports_a_stale_recording_and_a_mutant_that_is_not_named(toy, tmp_path):
    assert record.drift(toy, "toy") == []
    solution = toy.solution_path("toy")
    solution.write_text(SOLUTION.replace("self.count = start", "self.count = start + 0.5"))
    drifted = [p for p in record.drift(toy, "toy") if "no longer match" in p]
    assert len(drifted) == 1
    assert re.search(r"test_\w+\.py::test_\w+: recorded\.\w+\(\.\.\.\)\S* differs by up to 0\.5\b", drifted[0]), (
        drifted[0]
    )
    solution.write_text(SOLUTION)
    mutants_file = toy.mutants_dir("toy") / "mutants.yml"
    mutants_file.write_text(
        MUTANTS.replace("check: test_toy.py::test_scale\n", "check: test_toy.py::test_counter\n", 1)
    )
    added = next(m for m in mutants.load(toy, "toy") if m.id == "added_factor")
    assert devcheck.mutant_problem(toy, toy.topic("toy"), added, tmp_path).startswith("survives")
    mutants_file.write_text(MUTANTS)
    added = next(m for m in mutants.load(toy, "toy") if m.id == "added_factor")
    assert devcheck.mutant_problem(toy, toy.topic("toy"), added, tmp_path) == ""


def test_a_check_names_a_mistake_with_its_own_comparison_and_forgets_earlier_answers():
    from grader import checking

    checking.begin_check({"off_by_one": "added one"})
    try:
        checking.saw_fingerprints({"off_by_one": data.encode([1, 2, 4])})
        with pytest.raises(checking.CheckFailed) as failed:
            checking.fail_naming("kept {1, 2, 4}.", lambda answer: answer == [1, 2, 4], hint="Keep k.")
        assert failed.value.mistake == "off_by_one" and "added one" in str(failed.value)
        checking.new_comparison()  # the next comparison knows only its own answers
        with pytest.raises(checking.CheckFailed) as failed:
            checking.fail_naming("kept {1, 2, 4}.", lambda answer: answer == [1, 2, 4], hint="Keep k.")
        assert failed.value.mistake == "" and str(failed.value) == "kept {1, 2, 4}. Keep k."
    finally:
        checking.begin_check()
