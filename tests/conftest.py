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
