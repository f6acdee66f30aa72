"""Does a busy machine dock correct code? Grades the reference solution of one topic (visible and
hidden checks, through the sandboxed worker, as `grade` does) on a quiet machine, then with
every core busy with other work (one busy-loop process per core), and prints the score of each
run, how many checks were a timeout or a grader-side "too busy" error, and the ratio of the
busy run's wall time to the quiet run's.

Limits count the CPU time learner code uses (grader.sandbox.timeouts), so the reference should
keep full marks under load; the wall-clock ratio shows what the load costs in time.
"Quiet" means no hogs of this script's own: on a shared machine other work may be running too
(the load average before each run is printed).

--scale-limits F grades with every call and topic limit times F: the course's limits are generous,
so a tighter one shows sooner what a busy machine does to them.

--topic all grades the whole course (every available topic), as `fmgrade grade` grades one
submission whose exercises/ are the reference solutions.

Usage: python bench/cpu_load_grading.py [--topic scaling|all] [--hogs N (default: one per core)] [--scale-limits F]
"""

import argparse
import dataclasses
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import ROOT

from grader import course as course_mod
from grader.instructor import grade as grade_mod
from grader.results import ERROR, PASSED, TIMEOUT


def spin():
    """A busy loop: one core's worth of other work."""
    while True:
        pass


class _Whole:
    """Every topic's checks as one result (what describe() reads)."""

    def __init__(self, topics):
        self.checks = [c for t in topics for c in t.checks]
        self.score = sum(t.score for t in topics)
        self.max_score = sum(t.max_score for t in topics)


def grade(course, topic):
    """(seconds on the clock, the result) for the reference solution of `topic`, or of every
    available topic for "all", graded as `fmgrade grade` grades a submission (the visible
    checks on inputs drawn from the seed included)."""
    topics = [t.id for t in course.topics if course.available(t.id)] if topic == "all" else [topic]
    with tempfile.TemporaryDirectory(prefix="fmgrade-cpu-load-") as folder:
        shutil.copytree(course.root / "solutions", Path(folder) / "reference" / "exercises")
        start = time.perf_counter()
        graded = grade_mod.grade_submission(course, Path(folder) / "reference", topics, seed=1)
        wall = time.perf_counter() - start
    return wall, _Whole(graded.report.topics)


def describe(label, wall, result):
    timeouts = sum(c.status == TIMEOUT for c in result.checks)
    busy = sum(c.status == ERROR and "too busy" in c.message for c in result.checks)
    other = [
        f"{c.id}: {c.status}"
        for c in result.checks
        if c.status not in (PASSED, TIMEOUT) and "too busy" not in c.message
    ]
    print(
        f"{label:>5}: {result.score:g}/{result.max_score:g} points in {wall:.1f} s "
        f"({timeouts} timeouts, {busy} 'machine too busy' errors{', ' + '; '.join(other) if other else ''})"
    )
    for check in result.checks:
        if check.status == TIMEOUT or "too busy" in check.message:
            print(f"       {check.id}: {check.message[:160]}")


def scaled(course, factor):
    """`course` with every topic's call and topic limits times `factor`."""

    def topic(t):
        limits = dataclasses.replace(
            t.limits, call_timeout=t.limits.call_timeout * factor, topic_timeout=t.limits.topic_timeout * factor
        )
        return dataclasses.replace(t, limits=limits)

    topics = {t.id: topic(t) for t in course.topics}
    sections = tuple(dataclasses.replace(s, topics=tuple(topics[t.id] for t in s.topics)) for s in course.sections)
    return dataclasses.replace(course, topics=tuple(topics[t.id] for t in course.topics), sections=sections)


def load_average():
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "?"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", default="scaling")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--scale-limits", type=float, default=1.0)
    args = parser.parse_args()
    course = scaled(course_mod.load(ROOT), args.scale_limits)
    shown = course.topics[0].id if args.topic == "all" else args.topic
    limits = course.topic(shown).limits
    print(f"limits of {shown}: {limits.call_timeout:g} s a call, {limits.topic_timeout:g} s a topic")

    print(f"topic {args.topic}, {os.cpu_count()} cores; load average before the quiet run: {load_average()}")
    quiet_wall, quiet = grade(course, args.topic)
    describe("quiet", quiet_wall, quiet)

    hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(1.0)  # let the load settle
        print(f"{args.hogs} busy-loop processes running; load average: {load_average()}")
        busy_wall, busy = grade(course, args.topic)
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join()
    describe("busy", busy_wall, busy)
    print(
        f"busy / quiet wall time: {busy_wall / quiet_wall:.2f}x; full marks under load: {busy.score == busy.max_score}"
    )


if __name__ == "__main__":
    main()
