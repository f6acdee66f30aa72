"""The learner's commands through Click's CliRunner, in a throwaway copy of the course."""

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from grader import cli

SCHEMA_KEYS = {"id", "exercise", "status", "score", "max_score", "hidden", "message"}


@pytest.fixture
def run(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)

    def invoke(*args):
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)

    return invoke


def test_check_on_the_stubs_reads_not_started(run, course_copy):
    result = run("check", "attention")
    assert result.exit_code == 1, result.output
    assert "not started" in result.output
    assert "0/" in result.output
    assert "Next: exercise `attention` at exercises/attention.py:" in result.output
    assert "Traceback" not in result.output
    progress = json.loads((course_copy / ".fmgrade" / "progress.json").read_text())
    assert progress["topics"]["attention"]["score"] == 0


EARLY_WORKER_PROBE = """
import sys
from grader.sandbox import pool
seen = []
expect, call = pool.SparePool.expect, pool.SparePool.__call__
def spy_expect(self, *args, **kwargs):
    seen.append("torch" in sys.modules)
    return expect(self, *args, **kwargs)
def spy_call(self, *args, **kwargs):
    worker = call(self, *args, **kwargs)
    seen.append((self.hits, self.misses))
    return worker
pool.SparePool.expect, pool.SparePool.__call__ = spy_expect, spy_call
from grader import cli
try:
    cli.main(["check", "attention", "layer_norm"])
except SystemExit:
    pass
print(seen)
"""


def test_check_starts_its_worker_before_importing_torch_and_uses_it(course_copy):
    """`check` starts the worker first, so the worker's `import torch` and the grader's run side
    by side (bench/check_latency.py); the check's session then takes that worker."""
    done = subprocess.run(
        [sys.executable, "-c", EARLY_WORKER_PROBE], cwd=course_copy, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip().splitlines()[-1] == "[False, (1, 0)]", done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_check_json_on_the_solution_has_full_marks(run, course_copy):
    shutil.copy(course_copy / "solutions" / "attention.py", course_copy / "exercises" / "attention.py")
    result = run("check", "attention", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["score"] == data["max_score"] > 0
    (topic,) = data["topics"]
    assert topic["id"] == "attention" and topic["isolation"] in ("bwrap", "namespaces", "process")
    assert topic["checks"] and all(SCHEMA_KEYS <= set(c) for c in topic["checks"])
    assert all(c["status"] == "passed" and not c["hidden"] for c in topic["checks"])


def test_check_names_the_learners_mistake(run, course_copy):
    stub = course_copy / "exercises" / "attention.py"
    solution = (course_copy / "solutions" / "attention.py").read_text()
    stub.write_text(solution.replace("/ math.sqrt(d_k)", ""))
    result = run("check", "attention")
    assert result.exit_code == 1
    assert "sqrt(d_k)" in result.output
    assert "Next: fix `attention`" in result.output


def test_syntax_error_gives_one_line_with_file_and_line(run, course_copy):
    stub = course_copy / "exercises" / "attention.py"
    stub.write_text(stub.read_text().replace("def rate(", "def rate(((", 1))
    result = run("check", "attention", "--format", "json")
    assert result.exit_code == 1
    messages = {c["message"] for c in json.loads(result.output)["topics"][0]["checks"]}
    assert len(messages) == 1
    (message,) = messages
    assert "exercises/attention.py:" in message and "SyntaxError" in message


def test_unknown_topic_is_a_usage_error(run):
    result = run("check", "attnetion")
    assert result.exit_code == 2
    assert "no topic 'attnetion'" in result.output


def test_topic_not_yet_available(run, course_copy):
    (course_copy / "exercises" / "llama.py").unlink()
    result = run("check", "llama")
    assert result.exit_code == 2
    assert "not available yet" in result.output


def test_broken_course_yml_is_reported_with_its_line(run, course_copy):
    path = course_copy / "course.yml"
    path.write_text(path.read_text().replace("title: Attention and the Transformer", "titel: x", 1))
    result = run("list")
    assert result.exit_code == 2
    assert "course.yml:" in result.output and "titel" in result.output


def test_progress_draws_the_outline_and_suggests_the_next_topic(run, course_copy):
    (course_copy / "exercises" / "llama.py").unlink()
    result = run("progress")
    assert result.exit_code == 0
    assert "Transformers and attention" in result.output and "not yet available" in result.output
    assert "Suggested next: attention" in result.output


def test_corrupt_progress_is_moved_aside_and_reported(run, course_copy):
    folder = course_copy / ".fmgrade"
    folder.mkdir()
    (folder / "progress.json").write_text("{not json")
    result = run("progress")
    assert result.exit_code == 0
    assert "could not be read" in result.output
    aside = list(folder.glob("progress.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"


def test_hint_shows_goal_hints_and_reading(run):
    result = run("hint", "attention", "rate")
    assert result.exit_code == 0
    assert "warmup" in result.output and "Reading:" in result.output


def test_hint_defaults_to_the_first_exercise_not_passed(run):
    result = run("hint", "attention")
    assert "attention · attention" in result.output


def test_hint_for_an_unknown_exercise(run):
    result = run("hint", "attention", "nope")
    assert result.exit_code == 2 and "has no exercise 'nope'" in result.output


def test_list_shows_every_topic(run):
    result = run("list")
    assert result.exit_code == 0
    for topic in (
        "attention",
        "gpt3",
        "llama",
        "survey",
        "scaling",
        "instructgpt",
        "alpaca",
        "minigpt4",
        "deepspeed_chat",
    ):
        assert topic in result.output


def test_commands_work_from_a_subfolder(run, course_copy, monkeypatch):
    monkeypatch.chdir(course_copy / "tests" / "checks")
    assert run("list").exit_code == 0


def test_dev_stubs_check_reports_drift(run, course_copy):
    assert run("dev", "stubs", "--check").exit_code == 0
    stub = course_copy / "exercises" / "attention.py"
    stub.write_text(stub.read_text() + "\n# edited\n")
    result = run("dev", "stubs", "--check")
    assert result.exit_code == 1 and "exercises/attention.py differs" in result.output
    assert run("dev", "stubs").exit_code == 0
    assert run("dev", "stubs", "--check").exit_code == 0


# --- one exercise at a time, --verbose, progressive hints, the release's help (issues 13, 16) ---


def _solve(course_copy, mistake=None):
    text = (course_copy / "solutions" / "attention.py").read_text()
    if mistake:
        assert mistake[0] in text
        text = text.replace(*mistake)
    (course_copy / "exercises" / "attention.py").write_text(text)


def _progress(course_copy):
    return json.loads((course_copy / ".fmgrade" / "progress.json").read_text())["topics"]["attention"]


@pytest.mark.slow
def test_check_runs_only_the_exercises_named_and_progress_keeps_the_others(run, course_copy):
    assert run("check", "attention").exit_code == 1  # the stubs: every exercise not started
    full = _progress(course_copy)
    _solve(course_copy)
    result = run("check", "attention", "rate", "subsequent_mask")
    assert result.exit_code == 0, result.output
    assert "✔ subsequent_mask" in result.output and "✔ rate" in result.output
    assert "multi_head_attention" not in result.output.split("Not run this time")[0]  # no row for it
    assert "Not run this time (their last results are kept): attention, multi_head_attention," in result.output
    entry = _progress(course_copy)
    assert entry["exercises"]["rate"] == entry["exercises"]["subsequent_mask"] == "passed"
    assert entry["exercises"]["attention"] == "not_started"  # kept from the full run
    assert entry["max_score"] == full["max_score"]
    assert entry["score"] == entry["points"]["rate"][1] + entry["points"]["subsequent_mask"][1] > 0


def test_check_json_of_one_exercise_has_only_its_checks(run, course_copy):
    data = json.loads(run("check", "attention", "rate", "--format", "json").output)
    assert {c["exercise"] for c in data["topics"][0]["checks"]} == {"rate"}


def test_check_an_unknown_exercise_names_the_topics_exercises(run, course_copy):
    result = run("check", "attention", "rate", "nope")
    assert result.exit_code == 2
    assert "no exercise 'nope'" in result.output and "subsequent_mask" in result.output
    assert not (course_copy / ".fmgrade" / "progress.json").exists()


@pytest.mark.slow
def test_verbose_shows_every_failing_check_in_full(run, course_copy):
    _solve(course_copy, ("/ math.sqrt(d_k)", ""))
    short = run("check", "attention", "attention").output
    verbose = run("check", "attention", "attention", "-v").output
    assert "test_mask_blocks_keys" not in short and "test_mask_blocks_keys" in verbose
    assert "test_output_matches_sdpa" in verbose
    assert verbose.count("sqrt(d_k)") > short.count("sqrt(d_k)")


def test_hint_reveals_one_more_hint_each_time_and_keeps_the_level(run, course_copy):
    first = run("hint", "attention", "rate")
    assert first.exit_code == 0
    assert "1. rate = factor" in first.output and "2. " not in first.output
    assert "1 more hint" in first.output and "Goal:" in first.output and "Reading:" in first.output
    second = run("hint", "attention", "rate").output
    assert "1. rate = factor" in second and "2. Step 0" in second and "more hint" not in second
    saved = json.loads((course_copy / ".fmgrade" / "progress.json").read_text())
    assert saved["hints"] == {"attention": {"rate": 2}}
    third = run("hint", "attention", "rate").output  # past the last one: says so, repeats nothing
    assert "No more hints: you have seen all 2" in third and "2. Step 0" not in third


def test_hint_all_shows_every_hint(run):
    result = run("hint", "attention", "attention", "--all")
    assert "1. " in result.output and "3. " in result.output and "more hint" not in result.output


def test_hints_survive_a_check(run, course_copy):
    run("hint", "attention", "rate")
    run("check", "attention", "rate")
    saved = json.loads((course_copy / ".fmgrade" / "progress.json").read_text())
    assert saved["hints"]["attention"]["rate"] == 1 and "attention" in saved["topics"]


def test_list_does_not_say_optional_twice(run):
    survey = next(line for line in run("list").output.splitlines() if line.startswith("survey"))
    assert survey.lower().count("optional") == 1


def test_help_lists_the_learners_commands_first(run):
    commands = run("--help").output.split("Commands:")[1].split()
    assert commands.index("check") < commands.index("hint") < commands.index("progress") < commands.index("dev")


def test_help_hides_instructor_commands_in_a_course_without_solutions(run, course_copy):
    shutil.rmtree(course_copy / "solutions")
    listed = [line.split()[0] for line in run("--help").output.split("Commands:")[1].splitlines() if line.strip()]
    assert {"check", "hint", "progress", "list"} <= set(listed)
    assert not {"dev", "grade", "release", "report"} & set(listed)
    assert "Usage: main grade [OPTIONS]" in run("grade", "--help").output  # hidden, still there


def test_grade_with_a_gradebook_needs_the_instructor_extra(run, course_copy, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nbgrader", None)  # as if not installed
    result = run("grade", str(course_copy), "--gradebook", "sqlite:///gradebook.db")
    assert result.exit_code == 2
    assert "pip install 'fmgrade[instructor]'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_the_student_readme_uses_commands_as_typed_after_activation():
    from grader.instructor import release

    text = (release.TEMPLATES / "student_README.md").read_text()
    for needed in (
        "source .venv/bin/activate",
        "source .venv/bin/activate.fish",
        r".venv\Scripts\Activate.ps1",
        "--index-url https://download.pytorch.org/whl/cpu",
        "\nfmgrade check attention\n",
    ):
        assert needed in text, needed
    assert ".venv/bin/fmgrade" not in text


def test_the_student_readme_covers_watch_reset_undo_and_notebooks_and_torch_comes_from_the_cpu_index_first():
    from grader import course
    from grader.instructor import release

    text = (release.TEMPLATES / "student_README.md").read_text()
    for needed in (
        "fmgrade watch",
        "fmgrade reset TOPIC [EXERCISE]",
        "--undo",
        "%load_ext grader",
        "%fmgrade check",
        "%fmgrade hint",
    ):
        assert needed in text, needed
    readme = (course.find_root(__file__) / "README.md").read_text()
    cpu = readme.index("--index-url https://download.pytorch.org/whl/cpu")
    installs = [
        i
        for i in range(len(readme))
        if readme.startswith("pip install", i) and "torch" in readme[i : readme.find("\n", i)]
    ]
    assert all(cpu < i for i in installs if "--index-url" not in readme[i : readme.find("\n", i)])


@pytest.mark.slow
def test_the_student_release_shows_only_the_learners_commands(course_copy, tmp_path):
    import os
    import subprocess
    import sys

    from grader import course
    from grader.instructor import release

    root = course.find_root(__file__)
    shutil.copytree(root / "grader", course_copy / "grader", ignore=release.IGNORED)
    shutil.copy(root / "pyproject.toml", course_copy / "pyproject.toml")
    out = tmp_path / "release"
    release.build_release(course.load(course_copy), out)  # (leaks are test_release.py's concern)
    env = {**os.environ, "PYTHONPATH": str(out)}  # the release's own grader package

    # The release's own grader package and nothing of this repository's editable install (whose
    # finder would otherwise supply the modules the release leaves out).
    run_release = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
        "from grader.cli import main; main(prog_name='fmgrade')"
    )

    def fmgrade(*args, status=0):
        done = subprocess.run(
            [sys.executable, "-c", run_release, *args], cwd=out, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == status, done.stderr
        return done.stdout + done.stderr

    listed = [line.split()[0] for line in fmgrade("--help").split("Commands:")[1].splitlines() if line.strip()]
    assert {"check", "hint", "progress", "list"} <= set(listed) and listed[0] == "check"
    assert not {"dev", "grade", "release", "report"} & set(listed)
    survey = next(line for line in fmgrade("list").splitlines() if line.startswith("survey"))
    assert survey.lower().count("optional") == 1
    refused = fmgrade("dev", "check", status=2)  # the release has no instructor modules
    assert "`fmgrade dev` is an instructor command" in refused and "Traceback" not in refused
