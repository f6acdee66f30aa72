"""`fmgrade watch`: from saving the file to the re-check's result, against `python -c "import torch"`.

A course copy with the stubs is watched (grader.learner.watch.run in a thread, as the command runs
it); the bench writes the solution's answer for one exercise, then alternates two versions of
it (a comment in the region changes, so the exercise counts as edited), and times each save up
to the result. Between saves it waits until the spare worker has finished importing torch, as
it would have while a learner types. Budget: 0.4.
Usage: python bench/watch_latency.py [--runs N] [--topic attention --exercise attention]
"""

import argparse
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, median_wall

from grader import course as course_mod
from grader.learner import regions, reset, watch
from grader.sandbox import pool as warm


def course_copy():
    dest = Path(tempfile.mkdtemp(prefix="fmgrade-watch-bench-")) / "course"
    dest.mkdir()
    shutil.copy(ROOT / "course.yml", dest)
    for folder in ("exercises", "solutions", "tests/checks"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def answered(course, topic, exercise, source, mark):
    """`source` with the solution's answer for `exercise` in its region(s), tagged with `mark`."""
    stub = reset.original_stub(course, topic)
    solution = course.solution_path(topic).read_text()
    lines = regions.lines_of(source)
    pairs = zip(regions.locate(stub, source, exercise), regions.locate(stub, solution, exercise))
    for mine, answer in sorted(pairs, key=lambda pair: -pair[0].first):
        text = regions.text_of(solution, answer)
        lines[mine.first - 1 : mine.last] = regions.lines_of(f"{mine.indent}# edit {mark}\n{text}")
    return "".join(lines)


def tree_cpu_ticks(pid):
    """CPU ticks used so far by process `pid` and all its descendants (Linux)."""
    ticks, children = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += ticks.get(current, 0)
        pending += children.get(current, [])
    return total


def wait_for_spare(pool, fallback):
    """Until the spare worker has stopped using CPU (its `import torch` is done)."""
    spare = pool._spare[1] if pool._spare else None
    if spare is None or not Path("/proc").is_dir():
        time.sleep(fallback)
        return
    last, still = -1, 0
    while still < 3:
        time.sleep(0.2)
        now = tree_cpu_ticks(spare.proc.pid)
        still = still + 1 if now == last else 0
        last = now


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--topic", default="attention")
    parser.add_argument("--exercise", default="attention")
    args = parser.parse_args()
    torch_import = median_wall([sys.executable, "-c", "import torch"], args.runs)
    root = course_copy()
    course = course_mod.load(root)
    path = course.exercise_path(args.topic)
    events, stop, pool = queue.Queue(), threading.Event(), warm.SparePool()
    thread = threading.Thread(
        target=watch.run, args=(course, args.topic, events.put), kwargs=dict(stop=stop, pool=pool), daemon=True
    )
    thread.start()
    saves, inside, statuses = [], [], []
    try:
        first = next_recheck(events)
        stub = path.read_text()
        for run in range(args.runs + 1):  # the first save only warms the grader's side
            wait_for_spare(pool, 3 * torch_import)
            text = answered(course, args.topic, args.exercise, stub, run)
            start = time.perf_counter()
            path.write_text(text)
            event = next_recheck(events)
            took = time.perf_counter() - start
            if run:
                saves.append(took)
                inside.append(event.seconds)
            statuses.append(next(s.status for s in event.result.exercises() if s.id == args.exercise))
    finally:
        stop.set()
        thread.join(60)
        shutil.rmtree(root.parent, ignore_errors=True)
    save = statistics.median(saves)
    print(f"python -c 'import torch'              median {torch_import:.2f} s over {args.runs} runs")
    print(f"first full check of {args.topic:<17} {first.seconds:.2f} s")
    print(
        f"save -> result, `{args.exercise}`{' ' * max(0, 14 - len(args.exercise))} median {save:.2f} s   "
        f"ratio {save / torch_import:.2f} (budget 0.4)   [{', '.join(f'{s:.2f}' for s in saves)}]"
    )
    print(
        f"  of which the re-check itself         median {statistics.median(inside):.2f} s "
        f"(the rest: noticing the save); spare workers used {pool.hits} of {pool.hits + pool.misses}"
    )
    print(f"  exercise status after each save: {sorted(set(statuses))}   (cores: {os.cpu_count()})")


def next_recheck(events, deadline=600):
    end = time.monotonic() + deadline
    while True:
        event = events.get(timeout=max(0.1, end - time.monotonic()))
        if isinstance(event, watch.Rechecked):
            return event
        print(f"  note: {event.text}", file=sys.stderr)


if __name__ == "__main__":
    main()
