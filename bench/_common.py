"""Shared bits of the benchmarks: a course copy with the solutions dropped in, and timing."""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def solved_copy():
    """A temporary copy of the course whose exercises/ are the reference solutions."""
    dest = Path(tempfile.mkdtemp(prefix="fmgrade-bench-")) / "course"
    dest.mkdir()
    shutil.copy(ROOT / "course.yml", dest)
    for folder in ("solutions", "tests/checks"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "solutions", dest / "exercises")
    return dest


def median_wall(command, runs, cwd=None):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fmgrade_command():
    return [str(Path(sys.executable).with_name("fmgrade"))]
