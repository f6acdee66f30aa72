"""Does a submission's swarm of busy children take CPU from the worker graded beside it?

Two workers run side by side, as at `grade --jobs 2`: a hostile one whose learner code starts N
busy children, each in a session of its own (setsid, the CPU-starving attack), and an honest one
that spins for a few seconds of wall time and reports the CPU time it got. Run once with each
worker in a cgroup of its own (grader.sandbox.cgroups: one CPU weight per worker) and once with
cgroups turned off, and print the honest worker's CPU share (CPU seconds per wall second) in
each, with the ratio. Without cgroups the honest worker gets about 1/(N+1) of the machine; with
them, its group's weight equals the hostile group's, whatever N is.

Other work on the machine competes too: the load average before each run is printed.

Usage: python bench/cgroup_cpu_share.py [--children 50] [--seconds 5] [--isolation process]
"""

import argparse
import os

from grader import course as course_mod
from grader.sandbox import cgroups, proxy

HOSTILE = """
import subprocess, sys

def swarm(n):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True).pid for _ in range(n)]
"""

HONEST = """
import time

def spin(seconds):
    '''Busy for `seconds` of wall time; returns the CPU seconds this process got meanwhile.'''
    start, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - start < seconds:
        pass
    return time.process_time() - cpu
"""


def honest_share(children, seconds, isolation):
    limits = course_mod.Limits(call_timeout=10 * seconds + 60)
    hostile = proxy.Session("exercises/hostile.py", HOSTILE, limits, isolation)
    honest = proxy.Session("exercises/honest.py", HONEST, limits, isolation)
    try:
        honest.module().spin(0.1)  # started and imported before the swarm
        hostile.module().swarm(children)
        return honest.module().spin(seconds) / seconds
    finally:
        hostile.close()
        honest.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--isolation", default="process", choices=["process", "user", "bwrap", "namespaces"])
    args = parser.parse_args()
    available, why = cgroups.status()
    if not available:
        print(f"no cgroups here ({why}): nothing to compare")
        return
    shares = {}
    for label in ("cgroups", "no cgroups"):
        cgroups._plan = cgroups.plan() if label == "cgroups" else (None, "turned off by the bench")
        print(f"{label:>10}: load average {os.getloadavg()[0]:.1f} before", end=", ", flush=True)
        shares[label] = honest_share(args.children, args.seconds, args.isolation)
        print(f"the honest worker got {shares[label]:.2f} CPU s per s beside {args.children} busy children")
    ratio = shares["cgroups"] / max(shares["no cgroups"], 1e-6)
    print(f"ratio (cgroups / no cgroups): {ratio:.1f}x")


if __name__ == "__main__":
    main()
