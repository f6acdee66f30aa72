"""`fmgrade dev check` passes on the course and names the problem on broken copies."""

import shutil

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.instructor import devcheck, mutants


def findings(course_copy):
    loaded = course.load(course_copy)
    return loaded, {f.what.split(" (")[0]: f for f in devcheck.prove_topic(loaded, loaded.topic("attention"))}


@pytest.mark.slow
def test_dev_check_passes_on_the_course(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)
    result = CliRunner().invoke(cli.main, ["dev", "check", "--topics", "attention"])
    assert result.exit_code == 0, result.output
    assert "The course is sound." in result.output


@pytest.mark.slow
def test_a_stub_replaced_by_its_solution_is_named(course_copy, monkeypatch):
    monkeypatch.setattr(devcheck, "_mutants", lambda course, topic: [])  # not what this test is about (30 s)
    shutil.copy(course_copy / "solutions" / "attention.py", course_copy / "exercises" / "attention.py")
    monkeypatch.chdir(course_copy)
    result = CliRunner().invoke(cli.main, ["dev", "check", "--topics", "attention"])
    assert result.exit_code == 1
    assert "attention: stub generated from solution: exercises/attention.py differs" in result.output
    assert "attention: stub fails every check: passes on the stub" in result.output


def test_a_weakened_check_lets_a_mutant_survive(course_copy, tmp_path):
    check = course_copy / "tests" / "checks" / "attention" / "test_training.py"
    text = check.read_text()
    # the rate check no longer compares values: the warm-up mutant survives it
    weakened = text.replace(
        "def test_rate_hand_worked_values(impl, recorded):",
        "def test_rate_hand_worked_values(impl, recorded):\n    return",
        1,
    )
    assert weakened != text
    check.write_text(weakened)
    loaded = course.load(course_copy)
    survivors = [
        m for m in mutants.load(loaded, "attention") if m.check == "test_training.py::test_rate_hand_worked_values"
    ]
    assert survivors
    problem = devcheck.mutant_problem(loaded, loaded.topic("attention"), survivors[0], tmp_path)
    assert problem.startswith("survives: test_training.py::test_rate_hand_worked_values passes")


def test_a_broken_solution_is_named(course_copy):
    solution = course_copy / "solutions" / "attention.py"
    solution.write_text(solution.read_text().replace("/ math.sqrt(d_k)", "/ d_k"))
    loaded = course.load(course_copy)
    from grader.judge import runner

    result = runner.run_topic(loaded, "attention", solution, hidden=True, isolation="none", seed=0)
    failing = [c.id for c in result.checks if c.status != "passed"]
    assert "test_attention.py::test_output_matches_sdpa" in failing
