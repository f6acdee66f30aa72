"""The instructor's own run: checks under tests/checks/ use the reference solutions in-process."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny tensors everywhere; one thread is faster on a shared 2-core machine

pytest_plugins = ["grader.judge.plugin", "grader.instructor.live"]  # `ref` for hidden checks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def course_copy(tmp_path):
    """A throwaway copy of the course (outline, stubs, solutions, checks) to run commands in."""
    dest = tmp_path / "course"
    dest.mkdir()
    shutil.copy(ROOT / "course.yml", dest / "course.yml")
    for folder in ("exercises", "solutions", "tests/checks", "tests/mutants"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def solve_exercise():
    """`solve(root, topic, exercise)`: write the solution's answer for one exercise into the
    course copy's exercises/<topic>.py, where the learner would (the rest of the file stays)."""
    from grader import course
    from grader.learner import regions, reset

    loaded_courses = {}  # loading course.yml scans every check file: once per course copy

    def solve(root, topic, exercise):
        loaded = loaded_courses.get(root) or loaded_courses.setdefault(root, course.load(root))
        stub = reset.original_stub(loaded, topic)
        solution = loaded.solution_path(topic).read_text(encoding="utf-8")
        path = loaded.exercise_path(topic)
        current = path.read_text(encoding="utf-8")
        lines = regions.lines_of(current)
        pairs = zip(regions.locate(stub, current, exercise), regions.locate(stub, solution, exercise))
        for mine, answer in sorted(pairs, key=lambda pair: -pair[0].first):
            lines[mine.first - 1 : mine.last] = regions.lines_of(regions.text_of(solution, answer))
        path.write_text("".join(lines), encoding="utf-8")
        return path

    return solve


TINY_COURSE = {
    "course.yml": """\
format_version: 1
title: A tiny course for the grader's own tests
limits:
  call_timeout: {call_timeout}
  topic_timeout: {topic_timeout}
sections:
  - id: basics
    title: Basics
    topics:
      - id: tiny
        title: Doubling
        exercises:
          - id: double
            goal: Return twice x.
""",
    "solutions/tiny.py": '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
''',
    "exercises/tiny.py": '''def double(x):
    """Twice x."""
    # TODO(double): return twice x
    raise NotImplementedError("double: return twice x")
''',
    "tests/checks/tiny/test_tiny.py": """import pytest

pytestmark = pytest.mark.exercise("double")


def test_double_of_three(impl):
    assert impl.double(3) == 6, "double(3) should be 6"


@pytest.mark.hidden
def test_double_of_a_seeded_number(impl, ref, seed):
    assert impl.double(seed) == ref.double(seed), f"double({seed}) is wrong"
""",
}


def make_tiny_course(folder, call_timeout=20, topic_timeout=60):
    """A one-topic course (`tiny`: double(x), one visible and one hidden check) in `folder`:
    grading it costs little more than starting a worker."""
    folder = Path(folder)
    for name, text in TINY_COURSE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(
            text.format(call_timeout=call_timeout, topic_timeout=topic_timeout) if name == "course.yml" else text
        )
    return folder


def clone_with_committed_link(clone, relative, target):
    """A git clone at `clone` of a repository whose `relative` is a committed symbolic link to
    `target`: what a student pushes to make the checkout itself hold the link."""
    git = shutil.which("git")
    if not git:
        pytest.skip("git is not installed")
    repo = clone.with_name(clone.name + "-repo")
    (repo / relative).parent.mkdir(parents=True)
    (repo / relative).symlink_to(target)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "m",
        "GIT_AUTHOR_EMAIL": "m@x",
        "GIT_COMMITTER_NAME": "m",
        "GIT_COMMITTER_EMAIL": "m@x",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "solve"]):
        subprocess.run([git, *args], cwd=repo, check=True, env=env)
    subprocess.run([git, "clone", "-q", str(repo), str(clone)], check=True, env=env)
    return clone


@pytest.fixture(scope="session")
def committed_link():
    """clone_with_committed_link, for tests and fixtures."""
    return clone_with_committed_link


@pytest.fixture(scope="session")
def make_tiny():
    """make_tiny_course, for fixtures and tests that build several or set limits."""
    return make_tiny_course


@pytest.fixture
def tiny_course(tmp_path):
    return make_tiny_course(tmp_path / "tiny")


@pytest.fixture
def release_and_kit(course_copy, tmp_path):
    """(the student release, the instructor's kit) built from a course copy, as Course objects:
    for attacks that may use only what the release ships, graded with the kit."""
    from grader import course
    from grader.instructor import release

    shutil.copytree(ROOT / "grader", course_copy / "grader", ignore=release.IGNORED)
    shutil.copy(ROOT / "pyproject.toml", course_copy / "pyproject.toml")
    loaded = course.load(course_copy)
    release.build_release(loaded, tmp_path / "release")
    return course.load(tmp_path / "release"), course.load(release.build_kit(loaded, tmp_path / "kit"))
