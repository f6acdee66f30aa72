"""Each worker in a cgroup of its own, where the host lets the grader make one.

Resource limits (setrlimit) count per process or per user; a submission's fifty busy children,
each in a session of its own, still take CPU from the worker graded beside them. In a cgroup of
its own, everything a worker starts shares one CPU weight (the same as every other worker's),
one memory limit and one process count, and is found and killed at the end, wherever it went.

  cgroup v2   the grader's own cgroup must be delegated to it (cpu, memory and pids enabled in
              its cgroup.subtree_control, as systemd's Delegate=yes gives); a group per worker
              is made below it
  cgroup v1   the cpu, memory and pids hierarchies must be writable at the grader's own place in
              each (root on most hosts, or a container that mounts them read-write)

The worker's command starts with a tiny shell that moves itself into the group, then runs the
command: every process of the worker is in the group from its first instruction. Where no
cgroup can be made, `status()` says why (`grade` prints it, as it names the isolation level).
"""

import itertools
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpu", "memory", "pids")
RUNTIME_MB = 512  # beyond the learner's memory limit: the interpreter and torch themselves
TASKS_PER_PROCESS = 8  # pids.max counts threads too
ENTER = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
_names = itertools.count()
_plan = None


def _own_paths():
    """{controller or "": the grader's cgroup path} from /proc/self/cgroup."""
    paths = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    except (OSError, ValueError):
        pass
    return paths


def _probe(folder):
    """Whether a group can be made (and removed) in `folder`."""
    trial = folder / f"fmgrade-probe-{os.getpid()}"
    try:
        trial.mkdir()
        trial.rmdir()
        return True
    except OSError:
        return False


def _make_plan():
    """("v2", base) or ("v1", {controller: base}) or (None, why not)."""
    if not sys.platform.startswith("linux"):
        return None, "cgroups are a Linux feature"
    own = _own_paths()
    if (ROOT / "cgroup.controllers").is_file():
        base = ROOT / own.get("", "/").lstrip("/")
        enabled = (
            (base / "cgroup.subtree_control").read_text().split() if (base / "cgroup.subtree_control").is_file() else []
        )
        missing = [c for c in V1_CONTROLLERS if c not in enabled]
        if missing:
            return None, f"cgroup v2 is not delegated here ({', '.join(missing)} not enabled below {base})"
        return ("v2", base) if _probe(base) else (None, f"cgroup v2: cannot make a group in {base}")
    bases = {}
    for controller in V1_CONTROLLERS:
        base = ROOT / controller / own.get(controller, "/").lstrip("/")
        if not (base / "cgroup.procs").is_file() or not _probe(base):
            return None, f"no writable cgroup {controller} hierarchy at {base}"
        bases[controller] = base
    return "v1", bases


def plan():
    global _plan
    if _plan is None:
        _plan = _make_plan()
        if _plan[0] is not None:
            _remove_orphans(_plan[1] if _plan[0] == "v1" else {"": _plan[1]})
    return _plan


def _pid_namespace():
    """The inode of this process's PID namespace: a pid means something only inside one."""
    try:
        return "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit()) or "0"
    except OSError:
        return "0"


def _remove_orphans(bases):
    """Remove the groups a grader killed outright (SIGKILL, OOM) left behind, after killing
    anything still in them: those named for a grader process of this PID namespace that no
    longer runs. (A grader in another container that shares the hierarchy is left alone.)"""
    namespace = _pid_namespace()
    for base in dict.fromkeys(bases.values()):
        try:
            folders = [f for f in base.iterdir() if f.name.startswith(f"fmgrade-{namespace}-") and f.is_dir()]
        except OSError:
            continue
        for folder in folders:
            owner = folder.name.split("-")[2]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                Group([folder], "orphan").remove()


def status():
    """(True, what each worker gets) or (False, why no worker gets a cgroup)."""
    version, where = plan()
    if version is None:
        return False, where
    return True, f"cgroup {version}: a CPU weight, memory limit and process limit per worker"


def describe(group):
    """What one worker got, for its results: "cgroup v1" or "cgroup v2", or "no cgroup (why)"."""
    if group is not None:
        return f"cgroup {group.version}"
    return f"no cgroup ({status()[1]})"


class Group:
    """The cgroup(s) of one worker: `wrap(command)` starts it inside, `kill()` ends everything
    in it, `remove()` kills and removes it."""

    def __init__(self, folders, version):
        self.folders, self.version = folders, version

    @classmethod
    def create(cls, memory_mb, processes):
        """A new group with its limits, or None where cgroups are not available."""
        version, where = plan()
        if version is None:
            return None
        name = f"fmgrade-{_pid_namespace()}-{os.getpid()}-{next(_names)}"
        bases = {c: where for c in V1_CONTROLLERS} if version == "v2" else where
        folders = []
        try:
            for base in dict.fromkeys(bases.values()):
                (base / name).mkdir()
                folders.append(base / name)
        except OSError:
            Group(folders, version).remove()
            return None
        group = cls(folders, version)
        memory = (memory_mb + RUNTIME_MB) * 1024 * 1024
        tasks = max(processes, 16) * TASKS_PER_PROCESS
        if version == "v2":
            group._set(folders[0], {"cpu.weight": 100, "memory.max": memory, "memory.swap.max": 0, "pids.max": tasks})
        else:
            by = dict(zip(dict.fromkeys(bases.values()), folders))
            group._set(by[bases["cpu"]], {"cpu.shares": 1024})
            group._set(by[bases["memory"]], {"memory.limit_in_bytes": memory})
            group._set(by[bases["pids"]], {"pids.max": tasks})
        return group

    @staticmethod
    def _set(folder, settings):
        for key, value in settings.items():
            try:
                (folder / key).write_text(f"{value}\n")
            except OSError:
                pass  # a controller's file this kernel lacks: the others still apply

    def wrap(self, command):
        """`command`, run by a shell that first moves itself into every folder of the group."""
        return ["/bin/sh", "-c", ENTER, "sh", *(str(f / "cgroup.procs") for f in self.folders), "--", *command]

    def pids(self):
        found = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def kill(self):
        """SIGKILL everything in the group until it is empty (a fork bomb still forking)."""
        for folder in self.folders:
            try:
                (folder / "cgroup.kill").write_text("1\n")  # v2, Linux 5.14+: all at once
            except OSError:
                pass
        kill_until_gone(self.pids, rounds=100, pause=0.01)

    def remove(self):
        self.kill()
        for folder in self.folders:
            for _ in range(50):  # a killed process leaves its group a moment after SIGKILL
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def kill_until_gone(list_pids, rounds, pause=0.0):
    """SIGKILL whatever `list_pids()` names, again and again (a fork bomb keeps forking), until
    it names nothing or `rounds` are spent."""
    for _ in range(rounds):
        pids = list_pids()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if pause:
            time.sleep(pause)
