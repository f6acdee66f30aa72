"""Time `fmgrade report` on a synthetic class (default 5,000 submissions) against its budget.

The results are made up but shaped like the real thing: every available topic and check of
this course (read from tests/checks/ without running them), statuses drawn per student skill,
wrong answers naming the topic's known mistakes (tests/mutants/), failure messages with
learner output, and JSON written as `fmgrade grade --format json --output DIR` writes it.
Prints the wall time of the whole command (start-up, matplotlib and writing included) and its
ratio to the 10 s budget. --screenshot PNG also renders the report with headless Chromium.

Usage: python bench/report_scale.py [--submissions 5000] [--keep DIR] [--screenshot OUT.png]
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import ROOT, fmgrade_command

from grader import catalog as checks_index
from grader import course as course_mod
from grader.formats import RESULTS_FORMAT, RESULTS_FORMAT_VERSION
from grader.instructor import mutants

BUDGET_SECONDS = 10.0


def outline(course):
    """[(topic id, [(exercise, check id, points, hidden)], {exercise: [mistake id]})] of the available topics."""
    topics = []
    for topic in course.topics:
        if not course.available(topic.id):
            continue
        index = checks_index.scan(course.checks_dir(topic.id))
        checks = [
            (e.id, f"{info.file}::{info.name}", float(info.points), info.hidden)
            for e in topic.exercises
            for info in index.get(e.id, [])
        ]
        exercise_of = {check_id: exercise for exercise, check_id, _, _ in checks}
        known = {}  # exercise -> the mistakes whose check belongs to it
        for mutant in mutants.load(course, topic.id):
            known.setdefault(exercise_of.get(mutant.check), []).append(mutant.id)
        topics.append((topic.id, checks, known))
    return topics


def synthetic_result(rng, student, topics, version, seed):
    skill = rng.betavariate(4, 2)  # most of a class does fairly well; a tail struggles
    data = {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_FORMAT_VERSION,
        "course_version": version,
        "student": student,
        "score": 0.0,
        "max_score": 0.0,
        "topics": [],
    }
    for topic_id, checks, known in topics:
        started = rng.random() < 0.2 + 0.8 * skill
        results = []
        for exercise, check_id, points, hidden in checks:
            roll = rng.random()
            if not started:
                status = "not_started"
            elif roll < skill:
                status = "passed"
            else:
                status = rng.choices(("failed", "error", "timeout", "blocked"), (70, 18, 4, 8))[0]
            mistakes = known.get(exercise)
            # a class's mistakes are skewed: the first known mistakes of an exercise are the common ones
            mistake = (
                rng.choices(mistakes, [1 / (k + 1) for k in range(len(mistakes))])[0]
                if status == "failed" and mistakes and rng.random() < 0.6
                else ""
            )
            message = {
                "passed": "",
                "not_started": f"not started: {exercise} still raises NotImplementedError",
                "failed": f"{exercise}: expected a tensor of shape (2, 5, 16), got values off by up to 0.{rng.randrange(10**6)}"
                + (" Your result matches what you get if you made the mistake " + mistake if mistake else ""),
                "error": f"your code raised RuntimeError: mat1 and mat2 shapes cannot be multiplied ({rng.randrange(99)}x16 and 32x16)",
                "timeout": "your code did not return within 10 s",
                "blocked": f"not run: fix {exercise}'s prerequisite first",
            }[status]
            output = (
                f"step {rng.randrange(1000)} loss {rng.random():.4f}\n"
                if status in ("failed", "error") and rng.random() < 0.3
                else ""
            )
            results.append(
                {
                    "id": check_id,
                    "exercise": exercise,
                    "status": status,
                    "score": points if status == "passed" else 0.0,
                    "max_score": points,
                    "hidden": hidden,
                    "message": message,
                    "output": output,
                    "mistake": mistake,
                }
            )
        score, top = sum(c["score"] for c in results), sum(c["max_score"] for c in results)
        data["topics"].append(
            {"id": topic_id, "score": score, "max_score": top, "isolation": "bwrap", "seed": seed, "checks": results}
        )
        data["score"] += score
        data["max_score"] += top
    return json.dumps(data, indent=2) + "\n"


def make_class(folder, count, course, seed=7):
    rng = random.Random(seed)
    topics, version = outline(course), course_mod.version_of(course)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(count):
        text = synthetic_result(rng, f"student{i:05d}", topics, version, seed=1234 + i // 1000)
        (folder / f"student{i:05d}.json").write_text(text, encoding="utf-8")
        total += len(text)
    return total


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=5000)
    parser.add_argument(
        "--keep",
        type=Path,
        help="Write the results and the report here and keep them (a second run reuses the results).",
    )
    parser.add_argument("--screenshot", type=Path, help="Also render report.html to this PNG with headless Chromium.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="fmgrade-report-scale-"))
    try:
        results, out = work / "results", work / "report"
        if args.keep and results.is_dir() and len(list(results.glob("*.json"))) == args.submissions:
            print(f"reusing the {args.submissions} results files in {results}")
        else:
            start = time.perf_counter()
            size = make_class(results, args.submissions, course_mod.load(ROOT))
            print(
                f"made {args.submissions} results files ({size / 2**20:.0f} MB) in {time.perf_counter() - start:.1f} s"
            )
        load_before, cpu_before = os.getloadavg()[0], _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(
            fmgrade_command() + ["report", str(results), "--output", str(out), "--course", str(ROOT)],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        cpu = _children_cpu() - cpu_before
        if done.returncode != 0:
            raise SystemExit(f"fmgrade report failed ({done.returncode}):\n{done.stderr}")
        print(done.stdout.rstrip())
        print(
            f"fmgrade report on {args.submissions} submissions: {elapsed:.2f} s "
            f"({elapsed / BUDGET_SECONDS:.2f}x the {BUDGET_SECONDS:g} s budget, "
            f"{args.submissions / elapsed:.0f} submissions/s)"
        )
        print(
            f"CPU time {cpu:.2f} s on {os.cpu_count()} CPU(s); load average before and after: "
            f"{load_before:.1f}, {os.getloadavg()[0]:.1f} (other work on the machine stretches the wall time)"
        )
        if args.screenshot:
            from report_screenshot import screenshot

            print(f"wrote {screenshot(out / 'report.html', args.screenshot)}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
