"""Grade a solved copy of the whole course through Gradescope's run_autograder, confined like
Gradescope's default container (768 MB of memory, half a CPU), and print peak memory and time.

Builds the kit and autograder.zip, lays out a folder like /autograder (source/ from the zip, a
venv as setup.sh makes it but offline, submission/exercises/ holding solutions/*.py), then runs
run_autograder in a cgroup: v2 where /sys/fs/cgroup is a writable cgroup2 tree, else v1's
memory, cpu and cpuacct hierarchies. Needs root. Prints the ratio of peak memory to the limit.
Usage: python bench/gradescope_limits.py [--memory-mb 768] [--cpu-share 0.5] [--topics a,b] [--submission hog]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _common import ROOT

CGROUP = Path("/sys/fs/cgroup")


class Cgroup:
    """A throwaway cgroup with a memory cap and a CPU quota; v2 or v1."""

    def __init__(self, memory_mb, cpu_share):
        name = f"fmgrade-bench-{os.getpid()}"
        period = 100_000
        quota = int(period * cpu_share)
        if (CGROUP / "cgroup.controllers").is_file():
            self.version = 2
            (CGROUP / "cgroup.subtree_control").write_text("+memory +cpu")
            self.dirs = [CGROUP / name]
            self.dirs[0].mkdir()
            (self.dirs[0] / "memory.max").write_text(str(memory_mb * 2**20))
            (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "cpu.max").write_text(f"{quota} {period}")
        elif (CGROUP / "memory").is_dir() and (CGROUP / "cpu").is_dir():
            self.version = 1
            self.dirs = [CGROUP / c / name for c in ("memory", "cpu", "cpuacct")]
            for folder in self.dirs:
                folder.mkdir()
            (self.dirs[0] / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
            (self.dirs[1] / "cpu.cfs_period_us").write_text(str(period))
            (self.dirs[1] / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            raise SystemExit("no writable cgroup (v2 or v1) here: run as root on a machine that has one")

    def enter(self):  # in the child, before exec
        for folder in self.dirs:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def numbers(self):
        if self.version == 2:
            folder = self.dirs[0]
            peak = int((folder / "memory.peak").read_text()) if (folder / "memory.peak").is_file() else None
            events = dict(line.split() for line in (folder / "memory.events").read_text().splitlines())
            cpu = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines())
            return peak, int(cpu["usage_usec"]) / 1e6, int(events.get("oom_kill", 0))
        memory, _, cpuacct = self.dirs
        oom = dict(line.split() for line in (memory / "memory.oom_control").read_text().splitlines())
        return (
            int((memory / "memory.max_usage_in_bytes").read_text()),
            int((cpuacct / "cpuacct.usage").read_text()) / 1e9,
            int(oom.get("oom_kill", 0)),
        )

    def remove(self):
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def autograder_root(topics, hog):
    from grader import course
    from grader.instructor import release
    from grader.instructor.platforms import gradescope

    work = Path(tempfile.mkdtemp(prefix="fmgrade-gradescope-"))
    kit = release.build_kit(course.load(ROOT), work / "kit")
    bundle = gradescope.build_bundle(kit, work / "autograder.zip", gradescope.Config(topics=tuple(topics)))
    root = work / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    venv = root / "fmgrade-venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [str(venv / "bin" / "python3"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "fmgrade-kit.pth").write_text(str(root / "source" / "kit") + "\n")
    exercises = root / "submission" / "exercises"
    shutil.copytree(ROOT / "solutions", exercises, ignore=shutil.ignore_patterns("__pycache__"))
    if hog:  # also fill every byte the worker may have, to see that the container survives it
        with open(exercises / "gpt3.py", "a", encoding="utf-8") as handle:
            handle.write(
                "\n_hoard = []\ntry:\n    while True:\n        _hoard.append(b'x' * (16 * 2**20))\n"
                "except MemoryError:\n    pass\n"
            )
    return work, root


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-mb", type=int, default=768)
    parser.add_argument("--cpu-share", type=float, default=0.5)
    parser.add_argument("--topics", default="", help="comma-separated (default: every topic)")
    parser.add_argument("--hog", action="store_true", help="the gpt3 file also allocates all it can")
    args = parser.parse_args()
    topics = [t for t in args.topics.split(",") if t]
    work, root = autograder_root(topics, args.hog)
    group = Cgroup(args.memory_mb, args.cpu_share)
    try:
        start = time.perf_counter()
        done = subprocess.run(
            [str(root / "source" / "run_autograder")],
            cwd=root,
            preexec_fn=group.enter,
            env={**os.environ, "AUTOGRADER_ROOT": str(root)},
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        peak, cpu, oom = group.numbers()
    finally:
        group.remove()
    results = json.loads((root / "results" / "results.json").read_text())
    failed = [t["name"] for t in results["tests"] if t["status"] != "passed"]
    print(
        f"cgroup v{group.version}: memory {args.memory_mb} MB, {args.cpu_share:g} CPU; "
        f"topics: {', '.join(topics) or 'all'}{'; with a memory hog in gpt3' if args.hog else ''}"
    )
    print(f"score {results.get('score', 0):g}/{results.get('max_score', 0):g}; failed: {failed[:5] or 'none'}")
    if peak is not None:
        print(f"peak memory {peak / 2**20:.0f} MB = {peak / 2**20 / args.memory_mb:.2f} of the limit; OOM kills: {oom}")
    print(
        f"wall {wall:.0f} s; CPU {cpu:.0f} s ({cpu / wall:.2f} CPU on average); "
        f"results.json execution_time {results.get('execution_time')} s; run_autograder exit {done.returncode}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
