"""The GitHub Actions workflows: the student repository's runs visible checks only and holds no
secret; the instructor's (in the kit) grades in shards. Each parses as YAML and passes actionlint."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader import course
from grader.instructor import release

ROOT = course.find_root(__file__)
TEMPLATES = ROOT / "grader" / "instructor" / "templates"
STUDENT = TEMPLATES / "classroom.yml"
INSTRUCTOR = TEMPLATES / "grade-classroom.yml"
# What must never reach anything a student can edit or read: secrets, tokens, fetching the kit.
FORBIDDEN = (
    "secrets.",
    "${{ secrets",
    "token",
    "git clone",
    "gh repo clone",
    "x-access-token",
    "FMGRADE_KIT",
    "pull_request_target",
    "solutions/",
)


def load(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def triggers(workflow):
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(job):
    return job["steps"]


def actionlint():
    """The actionlint binary (the `instructor` extra installs it), or None. In CI its absence fails."""
    here = Path(sys.executable).parent
    found = shutil.which("actionlint", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    if found is None and os.environ.get("CI"):
        pytest.fail("actionlint is not installed: pip install -e '.[instructor]' (CI must validate the workflows)")
    return found


@pytest.mark.parametrize("path", [STUDENT, INSTRUCTOR], ids=lambda p: p.name)
def test_workflow_passes_actionlint(path):
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint not installed (pip install -e '.[instructor]')")
    done = subprocess.run([binary, "-no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The validation can fail: an unknown expression context is an error."""
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint not installed (pip install -e '.[instructor]')")
    broken = tmp_path / "broken.yml"
    broken.write_text(STUDENT.read_text().replace("${{ matrix.os }}", "${{ matrx.os }}"))
    done = subprocess.run([binary, "-no-color", str(broken)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "matrx" in done.stdout


def test_student_workflow_runs_visible_checks_on_three_systems_and_reports_points():
    workflow = load(STUDENT)
    assert workflow["name"] == "Autograding Tests"
    assert {"push", "workflow_dispatch", "repository_dispatch"} <= set(triggers(workflow))
    ((job_id, job),) = workflow["jobs"].items()
    assert job_id == "run-autograding-tests"
    assert job["strategy"]["matrix"]["os"] == ["ubuntu-latest", "macos-latest", "windows-latest"]
    # Classroom's reporter finds its check run by this exact name: only the ubuntu job has it.
    assert "matrix.os == 'ubuntu-latest' && 'run-autograding-tests'" in job["name"]
    text = STUDENT.read_text()
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" not in text  # split by OS below
    install = next(s for s in steps(job) if "torch" in s.get("name", "").lower() and "run" in s)["run"]
    assert "https://download.pytorch.org/whl/cpu" in install and "torch==2.13.0" in install
    assert 'RUNNER_OS" != macOS' in install  # macOS wheels come from PyPI; Linux and Windows use the CPU index
    cache = next(s for s in steps(job) if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] in install and "torch-2.13.0" in cache["with"]["key"]
    check = next(s for s in steps(job) if s.get("id") == "fmgrade")
    assert check["run"].strip() == "fmgrade classroom"
    reporter = next(s for s in steps(job) if "autograding-grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"] == "fmgrade"
    assert reporter["env"]["FMGRADE_RESULTS"] == "${{ steps.fmgrade.outputs.result }}"
    assert reporter["if"] == "matrix.os == 'ubuntu-latest'"


def test_student_workflow_holds_no_secret_and_fetches_nothing_private():
    text = STUDENT.read_text().lower()
    for word in FORBIDDEN:
        assert word.lower() not in text, word
    workflow = load(STUDENT)
    assert workflow["permissions"] == {"checks": "write", "actions": "read", "contents": "read"}
    for step in steps(workflow["jobs"]["run-autograding-tests"]):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"] == {"persist-credentials": False}  # this repository only


def test_instructor_workflow_lists_repositories_shards_and_merges():
    workflow = load(INSTRUCTOR)
    assert set(triggers(workflow)) == {"workflow_dispatch"}  # nothing a student does can start it
    jobs = workflow["jobs"]
    assert list(jobs) == ["plan", "grade", "merge"]
    plan = "\n".join(s.get("run", "") for s in steps(jobs["plan"]))
    assert 'gh api --paginate "/orgs/$ORGANIZATION/repos' in plan and "index($0, prefix) == 1" in plan
    assert jobs["grade"]["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    grade_runs = "\n".join(s.get("run", "") for s in steps(jobs["grade"]))
    assert 'fmgrade shards pick "$SHARD"' in grade_runs
    assert 'fmgrade grade submissions/* --kit kit --shard "$SHARD"' in grade_runs
    assert '--gradebook "$FMGRADE_GRADEBOOK_URL"' in grade_runs
    assert jobs["grade"]["env"]["SHARD"] == "${{ matrix.shard }}/${{ needs.plan.outputs.count }}"
    merge_runs = "\n".join(s.get("run", "") for s in steps(jobs["merge"]))
    assert (
        "fmgrade shards merge results/shard-*/summary.csv --expect plan/students.txt --output summary.csv" in merge_runs
    )
    assert "fmgrade report results/shard-*/ --course kit --output report" in merge_runs
    # The token reaches only the steps that list and clone; grading gets the gradebook URL only.
    for job in jobs.values():
        for step in steps(job):
            env = step.get("env", {})
            if "GH_TOKEN" in env:
                assert "fmgrade grade" not in step.get("run", "")
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False and "repository" not in step["with"]


def test_release_mentions_no_secret_token_or_kit_clone_anywhere(course_copy, tmp_path):
    shutil.copytree(ROOT / "grader", course_copy / "grader", ignore=release.IGNORED)
    shutil.copy(ROOT / "pyproject.toml", course_copy / "pyproject.toml")
    loaded = course.load(course_copy)
    out = tmp_path / "release"
    release.build_release(loaded, out)  # (its leak report is test_release.py's business)
    workflows = sorted(p.name for p in (out / ".github" / "workflows").iterdir())
    assert workflows == ["classroom.yml"]
    assert not list(out.rglob("grade-classroom.yml")) and not list(out.rglob("gradescope_*"))
    offenders = []
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".yaml", ".md", ".sh", ""):
            text = path.read_text(encoding="utf-8", errors="replace").lower()
            offenders += [
                f"{path.relative_to(out)}: {word}"
                for word in ("secrets.", "git clone", "x-access-token", "fmgrade_kit_token", "classroom_token")
                if word in text
            ]
    assert offenders == []
    # The learner's side of the platforms ships (fmgrade classroom); the instructor's does not.
    shipped = {q.relative_to(out / "grader").as_posix() for q in (out / "grader").rglob("*.py")}
    assert {"learner/classroom.py", "cli/learner.py"} <= shipped
    assert not any(name.startswith("instructor/") for name in shipped)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "classroom", "--help"],
        cwd=out,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(out)},
        timeout=120,
    )
    assert done.returncode == 0 and "GitHub Classroom" in done.stdout, done.stderr

    kit = release.build_kit(loaded, tmp_path / "kit")
    assert (kit / ".github" / "workflows" / "grade-classroom.yml").read_text() == INSTRUCTOR.read_text()
