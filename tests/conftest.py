"""The instructor's own run: checks under tests/checks/ use the reference solutions in-process."""
import shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny tensors everywhere; one thread is faster on a shared 2-core machine

pytest_plugins = ["grader.pytest_plugin"]

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
    from grader import course, regions, reset

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
            lines[mine.first - 1:mine.last] = regions.lines_of(regions.text_of(solution, answer))
        path.write_text("".join(lines), encoding="utf-8")
        return path

    return solve
