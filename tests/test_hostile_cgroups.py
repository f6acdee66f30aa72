"""Each worker in a cgroup of its own (grader.sandbox.cgroups), where the host allows: the
processes a submission starts (also in sessions of their own, the CPU-starving attack) share the
one CPU weight of their worker's group, and are all killed with it. Where no cgroup can be made,
the tests say why and skip; `status()` gives the reason `grade` prints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import course as course_mod
from grader import formats
from grader.results import PASSED, CheckResult, Report, TopicResult
from grader.sandbox import cgroups, proxy
from grader.sandbox import process as sandbox

AVAILABLE, WHY = cgroups.status()
needs_cgroups = pytest.mark.skipif(not AVAILABLE, reason=f"no cgroup for workers here: {WHY}")
LEVELS = [level for level in os.environ.get("FMGRADE_HOSTILE_ISOLATION", "bwrap,process").split(",") if level]

HOGS = """
import os, subprocess, sys

def spawn(n):
    '''n busy children, each in a session of its own (setsid), as the CPU-starving attack does.'''
    pids = []
    for _ in range(n):
        pids.append(subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True).pid)
    return pids

def double(x):
    return 2 * x
"""


def test_status_names_what_workers_get_or_why_not():
    ok, text = cgroups.status()
    assert isinstance(ok, bool) and text
    assert ("cgroup v" in text) if ok else ("cgroup" in text or "Linux" in text)


@needs_cgroups
def test_a_group_holds_every_process_started_in_it_and_is_removed_with_them():
    group = cgroups.Group.create(memory_mb=256, processes=16)
    script = "import subprocess, sys; [subprocess.Popen(['sleep', '300'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(3)]; print('ok')"
    done = subprocess.run(group.wrap([sys.executable, "-c", script]), capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
    left = group.pids()
    assert len(left) == 3  # the sleeps left the session, not the group
    group.remove()
    assert not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in left)
    assert not any(folder.exists() for folder in group.folders)


def _state(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@needs_cgroups
@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS)
def test_a_workers_setsid_children_share_its_group_and_die_with_it(level):
    if level == "bwrap" and not sandbox.bwrap_available():
        pytest.skip("bubblewrap is not available here")
    session = proxy.Session("exercises/hogs.py", HOGS, course_mod.Limits(call_timeout=60), level)
    try:
        module = session.module()
        assert module.double(2) == 4
        worker = session._worker
        group = worker.cgroup
        assert group is not None and worker.proc.pid in group.pids()
        assert session.cgroup == f"cgroup {group.version}"  # what the topic's results carry
        module.spawn(4)
        members = group.pids()
        assert len(members) >= 5, members  # the worker and its four hogs, whatever session they are in
        honest = cgroups.Group.create(memory_mb=256, processes=16)  # a worker beside it has a group of its own
        assert not set(honest.pids()) & members
        honest.remove()
    finally:
        session.close()
    assert not [p for p in members if os.path.exists(f"/proc/{p}") and _state(p) != "Z"]
    assert not any(folder.exists() for folder in group.folders)


def test_results_say_when_workers_got_no_cgroup(monkeypatch):
    """Where no cgroup can be made, every format of the results says so, as for isolation levels."""
    monkeypatch.setattr(cgroups, "_plan", (None, "cgroup v2 is not delegated here"))
    session = proxy.Session("exercises/hogs.py", HOGS, course_mod.Limits(call_timeout=60), "process")
    try:
        assert session.module().double(2) == 4
        assert session._worker.cgroup is None
        said = session.cgroup
    finally:
        session.close()
    assert said == "no cgroup (cgroup v2 is not delegated here)"
    report = Report(
        [TopicResult("t", [CheckResult("c.py::t", "e", PASSED, 1, 1, False, "", "")], "process", cgroup=said)]
    )
    assert json.loads(formats.to_json(report))["topics"][0]["cgroup"] == said
    assert f'name="cgroup" value="{said}"' in formats.to_junit(report)
    assert said in json.loads(formats.to_gradescope(report))["output"]


@needs_cgroups
def test_groups_left_by_a_grader_killed_outright_are_removed_by_the_next(monkeypatch):
    """A grader killed with SIGKILL cannot remove its workers' groups; the next grader removes
    the groups of graders that no longer run (and only those)."""
    script = (
        "import os, sys, time\n"
        "from grader.sandbox import cgroups\n"
        "group = cgroups.Group.create(memory_mb=256, processes=16)\n"
        "print(*group.folders, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    left = [Path(p) for p in done.stdout.split()]
    assert left and all(folder.is_dir() for folder in left), done.stderr
    mine = cgroups.Group.create(memory_mb=256, processes=16)  # a live grader's group is kept
    elsewhere = [f.parent / f.name.replace(f"fmgrade-{cgroups._pid_namespace()}-", "fmgrade-1-") for f in left]
    for folder in elsewhere:  # a dead pid of another PID namespace (a container sharing the hierarchy)
        folder.mkdir()
    monkeypatch.setattr(cgroups, "_plan", None)
    cgroups.plan()
    assert not any(folder.exists() for folder in left)
    assert all(folder.exists() for folder in mine.folders + elsewhere)
    mine.remove()
    cgroups.Group(elsewhere, "test").remove()
