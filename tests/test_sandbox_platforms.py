"""The worker on every learner platform, simulated on Linux: macOS (setrlimit(RLIMIT_AS) raises),
native Windows (no `resource`, no pass_fds: messages over stdin/stdout, no user ids), a Linux
user who is not root (no RLIMIT_NPROC: it would count every process of that user); and a
worker that dies before it runs learner code, which is a grader error, never the learner's.
The reference solution's full marks on the simulated platforms: tests/test_hostile.py."""

import json
import subprocess
import sys

import pytest

from grader import course
from grader.judge.verdict import WorkerLost
from grader.sandbox import isolation, proxy
from grader.sandbox import process as sandbox

LIMITS = course.Limits(call_timeout=20)

SOURCE = """
import os
import sys


def echo(x):
    return x


def shout(n):
    os.write(1, b"below python " * n)  # fd 1: with the stdio transport, the message pipe's old place
    print("through print")
    sys.stdout.flush()
    return n
"""


def _session(monkeypatch, platform, level="process"):
    monkeypatch.setattr(isolation, "PLATFORM", platform)
    return proxy.Session("exercises/probe.py", SOURCE, LIMITS, level)


@pytest.fixture
def simulated(monkeypatch, request):
    session = _session(monkeypatch, isolation.Platform.simulate(request.param))
    yield session
    session.close()


@pytest.mark.parametrize("simulated", ["windows"], indirect=True)
def test_windows_worker_talks_over_stdio_and_keeps_learner_output_apart(simulated):
    impl = simulated.module()
    worker = simulated._worker
    assert worker.proc.args[-1].count('"transport": "stdio"') == 1 and worker.uid is None
    assert worker.limits_applied == []  # no `resource` module on Windows
    assert impl.echo({"a": [1, 2.5, "s"]}) == {"a": [1, 2.5, "s"]}
    assert impl.shout(3) == 3 and impl.echo(7) == 7  # the protocol survived writes to fd 1
    output = simulated.take_output()
    assert "through print" in output and "below python" in output


@pytest.mark.parametrize("simulated", ["macos"], indirect=True)
def test_macos_worker_survives_the_refused_memory_limit(simulated):
    assert simulated.module().echo(5) == 5
    applied = simulated._worker.limits_applied
    assert "memory" not in applied and {"cpu", "file size"} <= set(applied)


def test_no_process_limit_without_a_user_id_of_its_own(monkeypatch):
    """RLIMIT_NPROC counts every process of the real user: a learner already running 64
    processes would see the worker fail at its first fork. Only an own user id gets it."""
    monkeypatch.setattr(isolation.Platform, "root", property(lambda self: False))
    session = _session(monkeypatch, isolation.Platform("linux", pass_fds=True, posix=True))
    try:
        assert session.module().echo(1) == 1
        assert session._worker.uid is None and "processes" not in session._worker.limits_applied
    finally:
        session.close()


@pytest.mark.skipif(not isolation.PLATFORM.root, reason="a user id of its own needs root")
def test_a_user_id_of_its_own_gets_the_process_limit(monkeypatch):
    session = _session(monkeypatch, isolation.Platform.current())
    try:
        assert session.module().echo(1) == 1
        if session._worker.uid is None:
            pytest.skip(f"no user id of its own here: {isolation.own_user_plan()[1]}")
        assert "processes" in session._worker.limits_applied
    finally:
        session.close()


@pytest.mark.parametrize(
    "breakage, shown",
    [
        ("raise ImportError('torch is broken here')", "ImportError: torch is broken here"),
        ("os._exit(3)", "exit status 3"),
    ],
)
def test_a_worker_that_dies_before_learner_code_is_a_grader_error(monkeypatch, breakage, shown):
    anchor = "    os.chdir(config['scratch'])\n"  # the step before the worker imports torch
    broken = sandbox.WORKER_SOURCE.replace(anchor, f"{anchor}    {breakage}\n", 1)
    assert broken != sandbox.WORKER_SOURCE
    monkeypatch.setattr(sandbox, "WORKER_SOURCE", broken)
    session = proxy.Session("exercises/probe.py", SOURCE, LIMITS, "process")
    try:
        for _ in range(2):  # remembered: one failed start, not one per check
            with pytest.raises(WorkerLost) as info:
                session.module()
            first = str(info.value).splitlines()[0]
            assert first.startswith("grader error, not a problem in your code") and shown in first
            assert "your code ended" not in str(info.value) and "does not import" not in str(info.value)
        if "ImportError" in shown:
            assert "Traceback" in str(info.value)  # the worker's traceback, for whoever runs the course
    finally:
        session.close()


def test_the_worker_command_fits_a_windows_command_line():
    """The worker's source travels on its command line (it sees no course files); Windows
    allows 32767 characters, quotes escaped."""
    config = {
        "uid": None,
        "scratch": "C:\\Users\\learner\\AppData\\Local\\Temp\\fmgrade-scratch-abcdefgh",
        "view": None,
        "transport": "stdio",
        "module_file": "exercises/attention.py",
    }
    command = [sys.executable, "-I", "-c", sandbox.WORKER_SOURCE, json.dumps(config) + " " * 600]
    assert len(subprocess.list2cmdline(command)) < 30000
