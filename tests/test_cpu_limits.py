"""Limits that do not depend on the machine's load (issue 21, item 2): a call is judged by the CPU
time it uses; wall time is a backstop (timeouts.WALL_FACTOR times the limit) for code that
sleeps or blocks; a backstop that comes while the host is busy gives the call one more, and a
call that still cannot finish is the grader's problem (HostBusy, an error), never a timeout.

No timed assertions: the watchdog's logic runs on fake clocks; the real worker is only asked
whether a call that sleeps (wall time without CPU) and one that spins are told apart.
"""

import os
import subprocess
import sys

import pytest

from grader import course
from grader.judge import verdict
from grader.judge.verdict import LearnerTimeout
from grader.results import ERROR, TIMEOUT
from grader.sandbox import process as sandbox
from grader.sandbox import proxy, timeouts
from grader.sandbox import worker as wire

# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cpu, wall, deadline, busy, extended, verdict_",
    [
        (0.5, 1.0, 3.0, False, False, None),  # within both limits
        (1.2, 1.3, 3.0, False, False, "cpu"),  # spins: the CPU limit
        (1.2, 1.3, 3.0, True, False, "cpu"),  # the CPU limit holds on a busy host too
        (0.01, 3.1, 3.0, False, False, "wall"),  # sleeps on an idle host: the backstop is the learner's
        (0.6, 3.1, 3.0, True, False, "extend"),  # starved by a busy host: more time, once
        (0.6, 5.9, 6.0, True, True, None),  # ... which it is still within
        (0.7, 6.1, 6.0, True, True, "wall"),  # ... and ran out of (the grader's problem, see below)
    ],
)
def test_overrun_counts_cpu_time_and_uses_the_clock_as_a_backstop(cpu, wall, deadline, busy, extended, verdict_):
    assert wire.overrun(cpu, wall, cpu_limit=1.0, deadline=deadline, busy=busy, extended=extended) == verdict_


def test_a_starved_call_is_given_time_for_the_rest_of_its_cpu_at_the_share_it_gets():
    assert wire.extension(cpu=0.7, wall=3.0, cpu_limit=1.0, wall_limit=3.0) == 6.0  # at least a second backstop
    # a sixth of a CPU, 0.5 s of CPU to go: 3 s more at that share, with a margin of 1.5
    assert wire.extension(cpu=0.5, wall=3.0, cpu_limit=1.0, wall_limit=3.0) == pytest.approx(7.5)
    assert wire.extension(cpu=0.01, wall=3.0, cpu_limit=1.0, wall_limit=3.0) == 12.0  # at most MAX_STRETCH backstops


def test_a_call_that_waited_for_a_cpu_ran_on_a_busy_host_and_one_that_slept_did_not():
    assert wire.host_busy(wall=3.0, waited=1.5)
    assert not wire.host_busy(wall=3.0, waited=0.01)
    assert not wire.host_busy(wall=3.0, waited=1.5, own=2.0)  # its own children made the load (a fork bomb)


# --- the watchdog, on fake clocks -----------------------------------------------------------


class Clocks:
    def __init__(self):
        self.cpu = self.wall = self.waited = self.tree = 0.0

    def advance(self, wall, cpu=0.0, waited=0.0, tree=0.0):
        self.wall += wall
        self.cpu += cpu
        self.waited += waited
        self.tree += tree


@pytest.fixture
def watched():
    """(watchdog on fake clocks, the clocks, read the watchdog's reply)."""
    read_fd, write_fd = os.pipe()
    clocks = Clocks()
    dog = wire.Watchdog(
        "exercises/x.py",
        write_fd,
        cpu_clock=lambda: clocks.cpu,
        wall_clock=lambda: clocks.wall,
        waited_clock=lambda: clocks.waited,
        tree_clock=lambda: clocks.tree,
        threaded=False,
    )
    yield dog, clocks, lambda: wire.loads(wire.read_message(read_fd))
    os.close(read_fd)
    os.close(write_fd)


def test_a_spinning_call_is_stopped_by_its_cpu_time(watched):
    dog, clocks, reply = watched
    dog.arm(1.0, 3.0)
    clocks.advance(wall=0.9, cpu=0.9)
    assert dog.check() is None
    clocks.advance(wall=0.2, cpu=0.2)
    assert dog.check() == "cpu"
    stopped = reply()
    assert stopped["limit"] == "cpu" and stopped["usage"]["cpu"] == pytest.approx(1.1)
    assert dog.disarm() is None  # the watchdog already answered for that call


def test_a_sleeping_call_is_stopped_by_the_backstop_and_it_is_the_learners(watched):
    dog, clocks, reply = watched
    dog.arm(1.0, 3.0)
    clocks.advance(wall=3.1, cpu=0.01)
    assert dog.check() == "wall"
    stopped = reply()
    assert stopped["limit"] == "wall" and stopped["usage"]["busy"] is False


def test_a_call_starved_by_a_busy_host_gets_one_more_backstop_and_may_finish(watched):
    dog, clocks, _ = watched
    dog.arm(1.0, 3.0)
    clocks.advance(wall=3.1, cpu=0.7, waited=2.2)
    assert dog.check() == "extend"
    clocks.advance(wall=1.0, cpu=0.2, waited=0.7)
    assert dog.check() is None
    usage = dog.disarm()
    assert usage["extended"] is True and usage["busy"] is True and usage["cpu"] == pytest.approx(0.9)


def test_a_call_still_starved_after_its_second_backstop_is_stopped_as_busy(watched):
    dog, clocks, reply = watched
    dog.arm(1.0, 3.0)
    clocks.advance(wall=3.1, cpu=0.7, waited=2.2)
    assert dog.check() == "extend"
    clocks.advance(wall=3.0, cpu=0.2, waited=2.5)
    assert dog.check() == "wall"
    stopped = reply()
    assert stopped["usage"]["busy"] is True and stopped["usage"]["extended"] is True


def test_the_cpu_time_of_live_child_processes_counts_too(watched):
    """A fork bomb's children spin; their CPU is the call's (read from the first look on)."""
    dog, clocks, reply = watched
    clocks.tree = 40.0  # children of earlier calls: not this call's
    dog.arm(1.0, 3.0)
    clocks.advance(wall=0.05, cpu=0.01)
    assert dog.check() is None
    clocks.advance(wall=0.5, cpu=0.05, tree=1.0)
    assert dog.check() == "cpu"
    assert reply()["usage"]["cpu"] == pytest.approx(1.06)


SPIN_THEN_SLEEP = """
import time
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("spun", flush=True)
time.sleep(60)
"""


def test_live_descendants_are_found_through_proc():
    """A live child that used 0.3 s of CPU (by its own clock, whatever the load) is counted."""
    if not os.path.exists(f"/proc/{os.getpid()}/task"):
        pytest.skip("no /proc here")
    before = wire.live_descendants_cpu()
    child = subprocess.Popen([sys.executable, "-c", SPIN_THEN_SLEEP], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "spun"
        assert wire.live_descendants_cpu() - before >= 0.25
    finally:
        child.kill()
        child.wait()


def test_a_finished_call_reports_its_usage(watched):
    dog, clocks, _ = watched
    dog.arm(1.0, 3.0)
    clocks.advance(wall=0.4, cpu=0.3)
    assert dog.disarm() == {"cpu": pytest.approx(0.3), "wall": pytest.approx(0.4), "busy": False, "extended": False}


# --- what the grader makes of it --------------------------------------------------------------

IDLE = {"cpu": 0.01, "wall": 3.1, "busy": False, "extended": False}
BUSY = {"cpu": 0.8, "wall": 6.2, "busy": True, "extended": True}


def test_messages_say_which_limit_ran_out():
    cpu = timeouts.stopped_message("x", "cpu", 1.0, "f()", "", {**IDLE, "cpu": 1.1})
    assert "did not return within 1 s: f() was stopped after 1.1 s of CPU time" in cpu
    assert "waiting for something" in timeouts.stopped_message("x", "wall", 1.0, "f()", "", IDLE)
    assert timeouts.stopped_message("x", "wall", 1.0, "f()", "", BUSY) is None  # the grader's problem


def test_a_malformed_usage_counts_as_nothing():
    assert timeouts.usage_of({"usage": {"cpu": -5, "wall": "x", "busy": 1}}) == {
        "cpu": 0.0,
        "wall": 0.0,
        "busy": False,
        "extended": False,
    }
    assert timeouts.usage_of({"value": 1})["cpu"] == 0.0


class FakeWorker:
    """Stands in for sandbox.WorkerProcess: answers every call with `reply`."""

    def __init__(self, reply):
        self.reply, self.killed = reply, None

    def wait_ready(self, timeout):
        return None

    def request(self, message, timeout):
        return dict(self.reply)

    def kill(self, reason):
        self.killed = reason

    def take_output(self):
        return ""

    def close(self):
        pass


def _session(reply, **limits):
    worker = FakeWorker(reply)
    session = proxy.Session(
        "exercises/x.py",
        "def f(): pass\n",
        course.Limits(**{"call_timeout": 1.0, **limits}),
        "process",
        worker_factory=lambda *args: worker,
    )
    session.begin_check("f")
    return session


def test_a_busy_host_is_a_grader_error_never_the_learners_timeout():
    session = _session({"stopped": [], "limit": "wall", "usage": BUSY, "output": "", "output_total": 0})
    with pytest.raises(timeouts.HostBusy) as info:
        session.request("call_attr", name="f")
    status, message = verdict.classify(info)
    assert status == ERROR != TIMEOUT
    assert message.startswith("grader error, not a problem in your code: the machine grading was too busy")


def test_a_sleeping_call_on_an_idle_host_is_the_learners_timeout():
    session = _session({"stopped": [], "limit": "wall", "usage": IDLE, "output": "", "output_total": 0})
    with pytest.raises(LearnerTimeout) as info:
        session.request("call_attr", name="f")
    assert verdict.classify(info)[0] == TIMEOUT


def test_the_topic_limit_counts_the_cpu_time_of_its_calls():
    session = _session({"value": None, "usage": {"cpu": 0.6, "wall": 5.0, "busy": True}}, topic_timeout=1.0)
    session.request("call_attr", name="f")  # 0.6 s of CPU: within the topic's 1 s
    session.begin_check("f")
    session.request("call_attr", name="f")  # 1.2 s
    with pytest.raises(LearnerTimeout, match=r"took more than 1 s in all \(1.2 s of CPU time\)"):
        session.begin_check("f")


@pytest.mark.parametrize(
    "seconds_ago, busy, outcome",
    [
        (2.0, False, None),  # within the topic's wall backstop (3 x 1 s)
        (4.0, False, LearnerTimeout),  # past it on an idle host: the learner's
        (4.0, True, None),  # past it on a busy host: stretched as a call's is
        (13.0, True, timeouts.HostBusy),  # past the stretch (4 backstops): the grader's problem
    ],
)
def test_the_topics_wall_backstop_stretches_on_a_busy_host(monkeypatch, seconds_ago, busy, outcome):
    session = _session({"value": None}, topic_timeout=1.0)
    monkeypatch.setattr(timeouts, "host_is_busy", lambda: busy)
    session.started = proxy.time.monotonic() - seconds_ago  # a fake start, not a measured time
    if outcome is None:
        session.begin_check("f")
    else:
        with pytest.raises(outcome):
            session.begin_check("f")


# --- the real worker: a call that sleeps vs a call that spins ------------------------------

SOURCE = """
import time


def sleep():
    time.sleep(60)


def spin():
    while True:
        pass
"""


@pytest.fixture
def worker_session(monkeypatch):
    sessions = []

    def start(call_timeout):
        s = proxy.Session(
            "exercises/probe.py", SOURCE, course.Limits(call_timeout=call_timeout), sandbox.choose_isolation("auto")
        )
        sessions.append(s)
        s.begin_check("probe")
        return s

    yield start
    for s in sessions:
        s.close()


def test_the_worker_tells_a_sleeping_call_from_a_spinning_one(worker_session, monkeypatch):
    """The spin gets a wall backstop long enough for any load (so only its CPU time can stop it);
    the sleep uses no CPU and waits for none, so its backstop is the learner's on any host."""
    monkeypatch.setattr(timeouts, "WALL_FACTOR", 100.0)
    with pytest.raises(LearnerTimeout, match="of CPU time"):
        worker_session(0.3).module().spin()
    monkeypatch.setattr(timeouts, "WALL_FACTOR", 3.0)
    with pytest.raises(LearnerTimeout, match="waiting for something"):
        worker_session(0.3).module().sleep()
