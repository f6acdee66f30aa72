"""The student release leaks nothing, works on its own, and is reproducible; the kit grades."""

import os
import shutil
import subprocess
import sys

import pytest

from grader import course
from grader.instructor import release
from grader.judge import recordings as store
from grader.judge import runner
from grader.results import BLOCKED, NOT_STARTED, PASSED

HIDDEN_SOURCE = """\
import pytest


def _shared():
    return 1


def _only_for_hidden():
    return 2


@pytest.mark.exercise("e")
def test_visible(impl):
    assert _shared() == 1


# the hidden one
@pytest.mark.exercise("e")
@pytest.mark.hidden
def test_hidden(impl, ref):
    assert _only_for_hidden() == 2
"""


def test_strip_hidden_drops_hidden_checks_and_their_private_helpers():
    stripped = release.strip_hidden(HIDDEN_SOURCE)
    assert "test_visible" in stripped and "_shared" in stripped
    assert "test_hidden" not in stripped and "_only_for_hidden" not in stripped and "the hidden one" not in stripped
    compile(stripped, "x.py", "exec")


def test_strip_hidden_drops_a_file_of_hidden_checks():
    assert (
        release.strip_hidden(
            "import pytest\npytestmark = [pytest.mark.exercise('e'), pytest.mark.hidden]\n\ndef test_a(impl):\n    pass\n"
        )
        is None
    )


@pytest.fixture
def built(course_copy, tmp_path):
    loaded = course.load(course_copy)
    shutil.copytree(course.find_root(__file__) / "grader", course_copy / "grader", ignore=release.IGNORED)
    shutil.copy(course.find_root(__file__) / "pyproject.toml", course_copy / "pyproject.toml")
    out = tmp_path / "release"
    leaks = release.build_release(loaded, out)
    return loaded, out, leaks


def test_release_has_no_solutions_hidden_checks_mutants_or_leaks(built):
    loaded, out, leaks = built
    assert leaks == []
    files = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert not [f for f in files if f.startswith(("solutions/", "tests/mutants/")) or "__pycache__" in f]
    assert (out / "exercises" / "attention.py").read_text() == (loaded.root / "exercises" / "attention.py").read_text()
    for path in (out / "tests" / "checks").rglob("*.py"):
        text = path.read_text()
        assert "mark.hidden" not in text and "ref)" not in text, path
    assert [p.name for p in (out / ".github" / "workflows").iterdir()] == ["classroom.yml"]
    assert "fmgrade check attention" in (out / "README.md").read_text()


def test_leak_finder_catches_solution_code_even_in_a_comment(built):
    loaded, out, _ = built
    solution = (loaded.root / "solutions" / "attention.py").read_text().splitlines()
    begin = next(i for i, line in enumerate(solution) if "BEGIN SOLUTION attention" in line)
    pasted = "\n".join("# " + line for line in solution[begin + 1 : begin + 5])
    check = out / "tests" / "checks" / "attention" / "test_attention.py"
    check.write_text(check.read_text() + "\n" + pasted + "\n")
    leaks = release.find_leaks(loaded, out)
    assert leaks and all("test_attention.py" in leak for leak in leaks)


@pytest.mark.slow
def test_release_visible_checks_pass_on_the_solutions_and_fail_on_the_stubs(built):
    loaded, out, _ = built
    released = course.load(out)
    stub = runner.run_topic(released, "attention", out / "exercises" / "attention.py")
    assert stub.score == 0 and {c.status for c in stub.checks} == {NOT_STARTED, BLOCKED}
    assert not any(c.hidden for c in stub.checks)
    solved = runner.run_topic(released, "attention", loaded.solution_path("attention"))
    assert [c.id for c in solved.checks if c.status != PASSED] == []


@pytest.mark.slow
def test_fmgrade_check_runs_inside_the_release(built):
    loaded, out, _ = built
    shutil.copy(loaded.solution_path("attention"), out / "exercises" / "attention.py")
    env = {**os.environ, "PYTHONPATH": str(out)}  # the release's own grader package
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", "attention"],
        cwd=out / "exercises",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All visible checks of attention pass" in done.stdout


def test_archives_are_byte_identical(built, tmp_path):
    loaded, out, _ = built
    first = release.write_archive(out, tmp_path / "a.tar.gz").read_bytes()
    again = tmp_path / "again" / "release"
    release.build_release(loaded, again)
    second = release.write_archive(again, tmp_path / "b.tar.gz").read_bytes()
    assert first == second


def test_kit_holds_what_grading_needs(built, tmp_path):
    loaded, _, _ = built
    kit = release.build_kit(loaded, tmp_path / "kit")
    assert (kit / "solutions" / "attention.py").is_file()
    assert "mark.hidden" in "".join(p.read_text() for p in (kit / "tests" / "checks" / "attention").glob("test_*.py"))
    assert (kit / "grader" / "instructor" / "grade.py").is_file() and (kit / "pyproject.toml").is_file()
    course.load(kit)


def test_release_ships_no_instructor_modules(built):
    _, out, _ = built
    shipped = {p.relative_to(out / "grader").as_posix() for p in (out / "grader").rglob("*.py")}
    assert not any(module.startswith("instructor/") for module in shipped)
    assert {
        "cli/__init__.py",
        "cli/learner.py",
        "judge/runner.py",
        "sandbox/worker.py",
        "judge/replay.py",
        "recorded_data.py",
    } <= shipped


def test_leak_finder_catches_solution_code_with_other_names(built):
    loaded, out, _ = built
    solution = (loaded.root / "solutions" / "attention.py").read_text()
    begin = solution.index("### BEGIN SOLUTION attention")
    body = solution[begin : solution.index("### END SOLUTION", begin)].splitlines()[1:]
    renamed = (
        "\n".join(body).replace("query", "q_").replace("key", "k_").replace("scores", "s_").replace("p_attn", "w_")
    )
    helper = "def _my_attention(q_, k_, value, mask=None, dropout=None):\n" + renamed + "\n"
    check = out / "tests" / "checks" / "attention" / "test_attention.py"
    check.write_text(check.read_text() + "\n\n" + helper)
    leaks = release.find_leaks(loaded, out)
    assert any("test_attention.py" in leak and "other names" in leak for leak in leaks), leaks


def test_release_recordings_name_only_the_mistakes_visible_checks_can_catch(built, tmp_path):
    """A mistake message no visible answer leads to would tell what a hidden check asks
    (survey's "took BERT for a model that continues text"): the release leaves it out, the kit keeps it."""
    loaded, out, _ = built
    kit = release.build_kit(loaded, tmp_path / "kit")
    for topic in loaded.topics:
        shipped = store.load(out / "tests" / "checks" / topic.id, topic.id)
        full = store.load(kit / "tests" / "checks" / topic.id, topic.id)
        named = {m for fingerprints in full.fingerprints.values() for m in fingerprints}
        assert set(shipped.mistakes) == named & set(full.mistakes), topic.id
        assert shipped.calls == full.calls and shipped.fingerprints == full.fingerprints
    survey = store.load(out / "tests" / "checks" / "survey", "survey")
    assert "bert_as_decoder" not in survey.mistakes
    assert "bert_as_decoder" in store.load(kit / "tests" / "checks" / "survey", "survey").mistakes
    assert "BERT for a model" not in (out / "tests" / "checks" / "survey" / "recorded.json").read_text()


def test_the_kit_has_a_private_secret_that_a_rebuild_keeps_and_the_release_never_holds(built, tmp_path):
    from grader.instructor import kit as kit_mod

    loaded, out, _ = built
    kit = release.build_kit(loaded, tmp_path / "kit")
    secret = kit_mod.read_secret(kit)
    assert secret and kit_mod.secret_path(kit).stat().st_mode & 0o777 == 0o600
    assert kit_mod.read_secret(release.build_kit(loaded, kit)) == secret  # rebuilt: same seeds, same grades
    assert kit_mod.read_secret(release.build_kit(loaded, tmp_path / "other")) != secret
    assert not [p for p in out.rglob("*") if p.name == kit_mod.SECRET_FILE]
    assert not [p for p in out.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_leak_finder_catches_the_kit_secret_by_name_and_by_content(built):
    from grader.instructor import kit as kit_mod

    loaded, out, _ = built
    secret = kit_mod.make_secret(loaded.root)  # `grade` in the instructor's checkout makes one
    (out / "tests" / "checks" / kit_mod.SECRET_FILE).write_bytes(b"anything\n")
    (out / "notes.txt").write_bytes(b"seed key: " + secret + b"\n")
    found = release.find_leaks(loaded, out)
    assert any(f.startswith(f"tests/checks/{kit_mod.SECRET_FILE}: the grading kit's secret") for f in found)
    assert "notes.txt: contains the grading kit's secret" in found
