"""Each worker in a cgroup of its own (grader.sandbox.cgroups), where the host allows: the
processes a submission starts (also in sessions of their own, the CPU-starving attack) share the
one CPU weight of their worker's group, and are all killed with it. Where no cgroup can be made,
the tests say why and skip; `status()` gives the reason `grade` prints."""

import os
import subprocess
import sys

import pytest

from grader import course as course_mod
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
