"""What does a replay of the release's recordings earn? Builds the student release and the kit of
a course, writes the replay submission of tests/test_replay_attack.py (every visible call
answered from recorded.json, no solution logic), and prints its score on the learner's `check`
(visible checks, recorded inputs) and graded with the kit (`grade`, hidden checks included),
as a share of each total.

Usage: python bench/replay_share.py [--root COURSE (default: this checkout)] [--seed N]
Run it with PYTHONPATH pointing at the grader to measure (e.g. another checkout's, for "before").
"""

import argparse
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import ROOT

from grader import course as course_mod
from grader.instructor import grade, release
from grader.judge import runner


def _attack():
    spec = importlib.util.spec_from_file_location("replay_attack", ROOT / "tests" / "test_replay_attack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--show", action="store_true", help="name the checks the replay passes with the kit")
    parser.add_argument("--grade-only", action="store_true", help="skip the learner's check")
    args = parser.parse_args()
    attack = _attack()
    work = Path(tempfile.mkdtemp(prefix="fmgrade-replay-"))
    try:
        course = course_mod.load(args.root)
        release.build_release(course, work / "release")
        released = course_mod.load(work / "release")
        kit = course_mod.load(release.build_kit(course, work / "kit"))
        topics = [t.id for t in kit.topics if kit.available(t.id)]
        folder = work / "replay" / "exercises"
        folder.mkdir(parents=True)
        checked = checked_max = 0.0
        for topic in topics:
            path = folder / f"{topic}.py"
            path.write_text(attack.replay_submission(released, topic))
            if args.grade_only:
                continue
            start = time.perf_counter()
            result = runner.run_topic(released, topic, path)
            checked, checked_max = checked + result.score, checked_max + result.max_score
            print(f"  check {topic}: {result.score:g}/{result.max_score:g} in {time.perf_counter() - start:.1f} s")
        report = grade.grade_submission(kit, work / "replay", topics, args.seed).report
        for topic in report.topics:
            visible = sum(c.score for c in topic.checks if not c.hidden)
            print(f"  {topic.id:>15}: {topic.score:g}/{topic.max_score:g} ({visible:g} from visible checks)")
            for check in topic.checks if args.show else ():
                if check.score:
                    print(f"      passes {check.id} ({check.score:g})")
        score = sum(t.score for t in report.topics)
        total = sum(t.max_score for t in report.topics)
        if checked_max:
            print(f"check (visible checks, recorded inputs): {checked:g}/{checked_max:g} = {checked / checked_max:.1%}")
        print(f"grade with the kit (seed {args.seed}): {score:g}/{total:g} = {score / total:.1%}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
