"""What the grading guards cost: the safe reader of a learner file (grader.submission) over a
plain read, and the kit fingerprint `grade` takes after every submission over the time the
cheapest real grading of a topic takes (a worker started, the module imported, one check).

Usage: python bench/grading_guards.py [--reads 2000]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT

from grader import course as course_mod
from grader import submission
from grader.instructor import kit
from grader.judge import runner


def per_call(function, count):
    start = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - start) / count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    path = ROOT / "solutions" / "attention.py"
    plain = per_call(lambda: path.read_bytes().decode("utf-8"), args.reads)
    safe = per_call(lambda: submission.read_source(ROOT, "solutions/attention.py"), args.reads)
    print(f"reading solutions/attention.py: plain {plain * 1e6:.0f} us, safe {safe * 1e6:.0f} us ({safe / plain:.1f}x)")

    fingerprint = statistics.median(per_call(lambda: kit.fingerprint(ROOT), 1) for _ in range(5))
    course = course_mod.load(ROOT)
    with tempfile.TemporaryDirectory() as folder:
        learner = Path(folder) / "exercises" / "attention.py"
        learner.parent.mkdir()
        learner.write_bytes(path.read_bytes())
        start = time.perf_counter()
        runner.run_topic(
            course, "attention", learner, root=folder, only=("test_attention.py::test_output_matches_sdpa",)
        )
        one_check = time.perf_counter() - start
    print(
        f"kit fingerprint of this course: {fingerprint * 1e3:.0f} ms; one-check grading of attention: "
        f"{one_check:.2f} s; fingerprint / grading = {fingerprint / one_check:.3f}"
    )


if __name__ == "__main__":
    main()
