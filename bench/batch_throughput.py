"""Throughput of `fmgrade grade` on a batch of submissions at --jobs 1 and --jobs 2.

Builds N submissions (alternating solved and untouched attention exercises), grades them on
visible and hidden checks, and prints wall time, submissions per minute and the speed-up.
Usage: python bench/batch_throughput.py [--submissions 20] [--topics attention]
"""

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import ROOT, fmgrade_command


def make_batch(folder, count, topics):
    paths = []
    for i in range(count):
        sub = folder / f"student{i:02d}" / "exercises"
        sub.mkdir(parents=True)
        for topic in topics:
            source = ROOT / ("solutions" if i % 2 == 0 else "exercises") / f"{topic}.py"
            shutil.copy(source, sub / f"{topic}.py")
        paths.append(str(sub.parent))
    return paths


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--topics", default="attention")
    args = parser.parse_args()
    topics = args.topics.split(",")
    folder = Path(tempfile.mkdtemp(prefix="fmgrade-batch-"))
    try:
        batch = make_batch(folder, args.submissions, topics)
        times = {}
        for jobs in (1, 2):
            out = folder / f"out{jobs}"
            start = time.perf_counter()
            subprocess.run(
                fmgrade_command()
                + [
                    "grade",
                    *batch,
                    "--kit",
                    str(ROOT),
                    "--topics",
                    args.topics,
                    "--seed",
                    "1",
                    "--format",
                    "json",
                    "--output",
                    str(out),
                    "--jobs",
                    str(jobs),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            times[jobs] = time.perf_counter() - start
            print(
                f"--jobs {jobs}: {times[jobs]:6.1f} s for {args.submissions} submissions "
                f"({args.submissions / times[jobs] * 60:5.1f} per minute, {times[jobs] / args.submissions:.2f} s each)"
            )
        print(f"speed-up with --jobs 2: {times[1] / times[2]:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
