"""Cost of one call through the worker proxy, against the same call in-process.

Prints microseconds per call for a tiny function (`subsequent_mask(4)`) and for
`attention` on (2, 4, 8, 16) tensors, and the per-call overhead of the sandbox.
Usage: python bench/call_overhead.py [--calls N]
"""

import argparse
import shutil
import time

import torch
from _common import solved_copy

from grader import course as course_mod
from grader.judge import inprocess
from grader.sandbox import process as sandbox
from grader.sandbox import proxy


def per_call(fn, calls):
    fn()  # warm up
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main():
    torch.set_num_threads(1)  # as in the grader and the worker
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    root = solved_copy()
    try:
        course = course_mod.load(root)
        topic = course.topic("attention")
        path = course.exercise_path("attention")
        local = inprocess.load_module(path, "bench")
        isolation = sandbox.choose_isolation("auto")
        session = proxy.Session("exercises/attention.py", path.read_text(), topic.limits, isolation)
        remote = session.module()
        time.sleep(3)  # let the worker finish warming torch's lazy imports in the background
        q = torch.randn(2, 4, 8, 16)
        rows = [
            ("subsequent_mask(4)", lambda m: m.subsequent_mask(4)),
            ("attention(q, q, q) (2,4,8,16)", lambda m: m.attention(q, q, q)),
        ]
        print(f"isolation: {isolation}")
        for label, call in rows:
            inside = per_call(lambda: call(local), args.calls)
            through = per_call(lambda: call(remote), args.calls)
            print(
                f"{label:<32} in-process {inside:8.1f} us   worker {through:8.1f} us   overhead {through - inside:8.1f} us"
            )
        session.close()
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
