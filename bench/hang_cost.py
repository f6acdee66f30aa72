"""What one infinite loop costs: `fmgrade check attention` with a loop in `LayerNorm.forward`.

On a copy of the course with the solutions dropped in, `LayerNorm.forward` loops forever.
Each exercise has its own time budget (grader.judge.plugin.TopicClock): the first check of an
exercise that times out ends that exercise, what builds on it is blocked, and the topic's
budget never takes points from exercises that returned. Prints the wall time against the
topic's limits, the points kept, and which exercises lost theirs.
Usage: python bench/hang_cost.py
"""

import json
import subprocess
import time

from _common import fmgrade_command, solved_copy

from grader import course as course_mod

LOOP = "        while True:  # the learner's slip\n            x = x + 0\n"


def hanging_copy():
    root = solved_copy()
    path = root / "exercises" / "attention.py"
    text = path.read_text()
    answer = "        mean = x.mean(-1, keepdim=True)\n"
    if answer not in text:
        raise SystemExit("LayerNorm.forward of the solution changed: update bench/hang_cost.py")
    path.write_text(text.replace(answer, LOOP + answer, 1))
    return root


def main():
    root = hanging_copy()
    limits = course_mod.load(root).topic("attention").limits
    start = time.perf_counter()
    done = subprocess.run(
        [*fmgrade_command(), "check", "attention", "--format", "json"], cwd=root, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    topic = json.loads(done.stdout)["topics"][0]
    lost, kept = {}, {}
    for check in topic["checks"]:
        book = kept if check["status"] == "passed" else lost
        book.setdefault(check["exercise"], set()).add(check["status"])
    print(f"check attention with a loop in LayerNorm.forward: {seconds:.1f} s")
    print(
        f"  topic limit {limits.topic_timeout:g} s (ratio {seconds / limits.topic_timeout:.2f}); "
        f"call timeout {limits.call_timeout:g} s"
    )
    print(f"  points kept: {topic['score']:g}/{topic['max_score']:g}")
    for exercise, statuses in lost.items():
        print(f"  lost: {exercise} ({', '.join(sorted(statuses))})")
    print(f"  exercises that kept every point: {', '.join(e for e in kept if e not in lost)}")


if __name__ == "__main__":
    main()
