"""`fmgrade check` reuses a slow exercise's passing result while the learner's file and the
checks are unchanged (grader.learner.reuse), says so, and runs it again after any edit."""

import pytest
from click.testing import CliRunner

from grader import cli
from grader import course as course_mod
from grader.judge import runner
from grader.learner import check as check_mod
from grader.learner import reuse
from grader.results import PASSED

pytestmark = pytest.mark.slow  # starts real workers

SOLVED = 'def double(x):\n    """Twice x."""\n    return 2 * x\n'


@pytest.fixture
def solved(make_tiny, tmp_path, monkeypatch):
    root = make_tiny(tmp_path / "course")
    (root / "exercises" / "tiny.py").write_text(SOLVED)
    monkeypatch.setattr(reuse, "REUSE_SECONDS", 0.0)  # every passing exercise counts as slow here
    return course_mod.load(root)


def _no_run(*args, **kwargs):
    raise AssertionError("the checks ran although their remembered result was reusable")


def test_an_unchanged_file_reuses_the_passing_result_and_an_edit_runs_it_again(solved, monkeypatch):
    first = check_mod.check_topic(solved, "tiny", isolation="process", reuse=True)
    assert first.reused == {} and first.score == first.max_score == 1

    with monkeypatch.context() as patched:
        patched.setattr(runner, "run_topic", _no_run)
        again = check_mod.check_topic(solved, "tiny", isolation="process", reuse=True)
    assert set(again.reused) == {"double"} and [c.status for c in again.checks] == [PASSED]
    assert again.score == again.max_score == 1

    path = solved.exercise_path("tiny")
    path.write_text(path.read_text().replace("2 * x", "x * 2"))  # any edit: the result is not reused
    edited = check_mod.check_topic(solved, "tiny", isolation="process", reuse=True)
    assert edited.reused == {}

    checks = solved.checks_dir("tiny") / "test_tiny.py"
    checks.write_text(checks.read_text() + "\n# the checks changed\n")
    assert check_mod.check_topic(solved, "tiny", isolation="process", reuse=True).reused == {}


def test_a_failing_exercise_a_seed_or_no_reuse_never_reuses(solved, monkeypatch):
    check_mod.check_topic(solved, "tiny", isolation="process", reuse=True)
    assert check_mod.check_topic(solved, "tiny", isolation="process", reuse=True, seed=3).reused == {}
    assert check_mod.check_topic(solved, "tiny", isolation="process").reused == {}
    path = solved.exercise_path("tiny")
    path.write_text(SOLVED.replace("2 * x", "3 * x"))
    assert check_mod.check_topic(solved, "tiny", isolation="process", reuse=True).score == 0
    assert check_mod.check_topic(solved, "tiny", isolation="process", reuse=True).reused == {}


def test_check_says_when_a_result_was_reused(solved, monkeypatch):
    monkeypatch.chdir(solved.root)
    first = CliRunner().invoke(cli.main, ["check", "tiny", "--isolation", "process"], catch_exceptions=False)
    assert first.exit_code == 0 and "Reused" not in first.output
    second = CliRunner().invoke(cli.main, ["check", "tiny", "--isolation", "process"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "Reused the passing result of `double`: your file and the checks are unchanged" in second.output
    assert "1/1 points" in second.output
