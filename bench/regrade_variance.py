"""Is a grade a fact? Grades one submission with some known mistakes (the reference solutions,
with one mutant of each chosen topic applied) N times with the kit, through `fmgrade grade
--format json` as an instructor would, and prints each run's score, how many distinct result
files the runs wrote (1 means byte-identical), and the load average beside each run.

The submission's seed is derived from the kit's secret and the student id, so every run must
give the same score; at grade time the visible checks draw their inputs from that seed too.

Usage: python bench/regrade_variance.py [--runs 10] [--topics attention,gpt3,scaling]
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

from grader import course as course_mod
from grader.instructor import mutants, release


def _submission(course, topics, folder):
    """folder/exercises/: the reference, with the first mutant that has a message in each topic."""
    exercises = folder / "exercises"
    shutil.copytree(course.root / "solutions", exercises)
    applied = []
    for topic in topics:
        mutant = next(m for m in mutants.load(course, topic) if m.message)
        mutants.write_mutant(course, topic, mutant, exercises)
        applied.append(f"{topic}:{mutant.id}")
    return applied


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--topics", default="attention,gpt3,scaling")
    args = parser.parse_args()
    topics = args.topics.split(",")
    work = Path(tempfile.mkdtemp(prefix="fmgrade-regrade-"))
    fmgrade = Path(sys.executable).parent / "fmgrade"
    try:
        course = course_mod.load(ROOT)
        release.build_kit(course, work / "kit")
        applied = _submission(course, topics, work / "alice")
        print(f"submission: the reference with mistakes {', '.join(applied)}")
        digests = set()
        for run in range(args.runs):
            out = work / f"run{run}.json"
            start = time.perf_counter()
            command = [str(fmgrade), "grade", "--kit", str(work / "kit"), "--topics", args.topics]
            command += ["--format", "json", "--output", str(out), str(work / "alice")]
            subprocess.run(command, check=False, capture_output=True, text=True)
            body = json.loads(out.read_text())
            digests.add(hashlib.md5(out.read_bytes()).hexdigest())
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"run {run + 1}: {body['score']:g}/{body['max_score']:g} (seed {body.get('seed')}) "
                f"in {time.perf_counter() - start:.0f} s, load {load}",
                flush=True,
            )
        print(f"distinct result files: {len(digests)} of {args.runs}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
