"""Ctrl-C and SIGTERM during `check` and `grade`: "interrupted", exit 130, nothing recorded for
what was in flight, every finished result kept, and no worker, grading process or scratch
folder left behind.

The commands run as subprocesses on a tiny course; the signal is sent once learner code is
running, which the test sees as a `sleep <unique number>` process the learner module starts
at import (visible from here under either isolation level). Ctrl-C is SIGINT to the command's
whole process group, as a terminal sends it; SIGTERM goes to the command's process only.
"""

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from grader import course as course_mod
from grader import interrupts
from grader.judge import runner
from grader.sandbox import process as sandbox

WAIT = 180  # seconds to wait for an event (a loaded machine starts torch slowly); never a timing claim

HANGING = """import subprocess, time

_marker = subprocess.Popen(["sleep", "{mark}"])  # shows the test that learner code runs


def double(x):
    time.sleep(3600)
"""


# --- in-process: the pieces ------------------------------------------------------------------


def test_a_signal_inside_a_protected_section_is_raised_when_it_ends():
    order = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.handled():
            with interrupts.protected():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here, between bytecodes: it must only take note
                order.append("section finished")
            order.append("after the section")  # never reached
    assert order == ["section finished"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers are put back


def test_sigterm_raises_keyboard_interrupt_within_handled():
    with pytest.raises(KeyboardInterrupt):
        with interrupts.handled():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)


def test_a_second_signal_does_not_cut_the_clean_up_short_and_a_third_insists():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.handled():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                steps.append("first: stopping")
                os.kill(os.getpid(), signal.SIGTERM)  # e.g. the batch's parent, after the terminal's Ctrl-C
                time.sleep(0.05)
                steps.append("second: ignored, clean-up goes on")
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
    assert steps == ["first: stopping", "second: ignored, clean-up goes on"]


def test_an_interrupt_that_pytest_swallows_is_raised_again(make_tiny, tmp_path):
    """pytest turns KeyboardInterrupt into ExitCode.INTERRUPTED; the runner must not return
    a (partial, 0/0) result for it."""
    root = make_tiny(tmp_path / "course")
    check = root / "tests" / "checks" / "tiny" / "test_tiny.py"
    check.write_text(check.read_text() + "\n\ndef test_interrupted(impl):\n    raise KeyboardInterrupt\n")
    course = course_mod.load(root)
    with pytest.raises(KeyboardInterrupt):
        runner.run_topic(course, "tiny", root / "solutions" / "tiny.py", isolation="none")


def test_checks_that_fail_to_collect_are_a_course_error_not_an_interrupt(make_tiny, tmp_path):
    """pytest reports collection errors with the same exit code as Ctrl-C (Session.Interrupted
    is a KeyboardInterrupt); they must name the broken check file, not abort the command."""
    root = make_tiny(tmp_path / "course")
    (root / "tests" / "checks" / "tiny" / "test_broken.py").write_text("import no_such_module_anywhere\n")
    course = course_mod.load(root)
    with pytest.raises(course_mod.CourseError, match="test_broken.py.*no_such_module_anywhere"):
        runner.run_topic(course, "tiny", root / "solutions" / "tiny.py", isolation="none")


# --- the commands, as subprocesses ---------------------------------------------------------------


def _proc_entries():
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield entry


def _alive(entry):
    try:
        status = (entry / "status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def pids_with_cmdline(needle):
    found = []
    for entry in _proc_entries():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and _alive(entry):
            found.append(int(entry.name))
    return found


def pids_with_env(tag):
    found = []
    for entry in _proc_entries():
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if tag.encode() in environ and _alive(entry):
            found.append(int(entry.name))
    return found


def wait_for(condition, proc, what):
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}:\n{out[-2000:]}\n{err[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def gone(find):
    """True once `find()` is empty (a killed process may take a moment to leave)."""
    end = time.monotonic() + 30
    while find() and time.monotonic() < end:
        time.sleep(0.1)
    return not find()


LEVELS = ["process", "bwrap"]


@pytest.fixture(params=LEVELS)
def level(request):
    if request.param == "bwrap" and not sandbox.bwrap_available():
        pytest.skip("bubblewrap is not available here")
    return request.param


class Command:
    def __init__(self, tmp_path, args, cwd, level):
        self.tag = f"FMGRADE_TEST_TAG_{uuid.uuid4().hex}"
        # short: multiprocessing puts its forkserver's unix socket (at most 107 bytes) in TMPDIR
        self.tmp = Path(tempfile.mkdtemp(prefix="fmgrade-test-", dir="/tmp"))
        env = {**os.environ, "TMPDIR": str(self.tmp), self.tag: "1"}
        args = [*args, "--isolation", level]  # grade runs without a sandbox only when asked to
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader", *args],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def send(self, signum):
        if signum == signal.SIGINT:
            os.killpg(self.proc.pid, signum)  # Ctrl-C: the terminal signals the whole foreground group
        else:
            self.proc.send_signal(signum)
        self.out, self.err = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode

    def assert_clean(self, mark):
        assert gone(lambda: pids_with_cmdline(f"sleep {mark}")), "learner code outlived the command"
        assert gone(lambda: pids_with_env(self.tag)), "a grading process outlived the command"
        assert not list(self.tmp.glob("fmgrade-scratch-*")), "a scratch folder was left behind" + self.err
        shutil.rmtree(self.tmp)


def _hanging_course(make_tiny, tmp_path):
    return make_tiny(tmp_path / "course", call_timeout=600, topic_timeout=1200)


def _mark():
    return str(random.randrange(10**6, 10**7))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_check_interrupted_records_nothing(make_tiny, tmp_path, signum, level):
    course = _hanging_course(make_tiny, tmp_path)
    mark = _mark()
    (course / "exercises" / "tiny.py").write_text(HANGING.format(mark=mark))
    progress = course / ".fmgrade" / "progress.json"
    progress.parent.mkdir()
    earlier = json.dumps(
        {
            "format_version": 1,
            "topics": {
                "tiny": {
                    "score": 1,
                    "max_score": 2,
                    "exercises": {"double": "failed"},
                    "updated": "2024-01-01T00:00:00",
                }
            },
        },
        indent=2,
    )
    progress.write_text(earlier)

    command = Command(tmp_path, ["check", "tiny", "--format", "json"], course, level)
    wait_for(lambda: pids_with_cmdline(f"sleep {mark}"), command.proc, "learner code to run")
    assert command.send(signum) == 130, command.out + command.err
    assert "interrupted" in command.err
    assert command.out == ""  # no result at all, not "0/0 points"
    assert progress.read_text() == earlier
    assert sorted(p.name for p in progress.parent.iterdir()) == ["progress.json"]
    command.assert_clean(mark)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_grade_interrupted_keeps_finished_results_and_records_nothing_else(make_tiny, tmp_path, signum, jobs, level):
    kit = _hanging_course(make_tiny, tmp_path)
    mark = _mark()
    subs = tmp_path / "subs"
    for name, source in (("alice", (kit / "solutions" / "tiny.py").read_text()), ("bob", HANGING.format(mark=mark))):
        (subs / name / "exercises").mkdir(parents=True)
        (subs / name / "exercises" / "tiny.py").write_text(source)
    out = tmp_path / "out"
    command = Command(
        tmp_path,
        [
            "grade",
            str(subs / "alice"),
            str(subs / "bob"),
            "--kit",
            str(kit),
            "--format",
            "json",
            "--output",
            str(out),
            "--jobs",
            str(jobs),
        ],
        tmp_path,
        level,
    )
    wait_for(
        lambda: (out / "alice.json").exists() and pids_with_cmdline(f"sleep {mark}"),
        command.proc,
        "alice's result and bob's learner code",
    )
    assert command.send(signum) == 130, command.out + command.err
    assert "interrupted" in command.err and "1 finished result(s) kept" in command.err
    assert sorted(p.name for p in out.iterdir()) == ["alice.json", "summary.csv"]
    alice = json.loads((out / "alice.json").read_text())
    assert alice["score"] == 2 and alice["topics"][0]["isolation"] == level
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["student"], r["total"], r["max_total"]) for r in rows] == [("alice", "2", "2")]
    command.assert_clean(mark)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_grade_killed_outright_still_leaves_nothing_behind(make_tiny, tmp_path, level, jobs):
    """SIGKILL cannot be handled by the grader. With --jobs 2 its grading processes notice its
    death (PR_SET_PDEATHSIG via the forkserver) and clean up; with --jobs 1 the workers see
    their requests pipe hang up and end their learner code and scratch folders themselves."""
    if not sys.platform.startswith("linux") and jobs > 1:
        pytest.skip("parent-death signals are Linux's")
    kit = _hanging_course(make_tiny, tmp_path)
    marks = [_mark(), _mark()]
    for name, mark in zip(("bob", "carol"), marks):
        (tmp_path / "subs" / name / "exercises").mkdir(parents=True)
        (tmp_path / "subs" / name / "exercises" / "tiny.py").write_text(HANGING.format(mark=mark))
    command = Command(
        tmp_path,
        [
            "grade",
            str(tmp_path / "subs" / "bob"),
            str(tmp_path / "subs" / "carol"),
            "--kit",
            str(kit),
            "--jobs",
            str(jobs),
            "--output",
            str(tmp_path / "out"),
        ],
        tmp_path,
        level,
    )
    running = marks if jobs > 1 else marks[:1]  # one at a time: bob's code hangs, carol waits
    wait_for(
        lambda: all(pids_with_cmdline(f"sleep {m}") for m in running), command.proc, "the submissions' learner code"
    )
    assert command.send(signal.SIGKILL) == -signal.SIGKILL  # returns once the grading processes closed its pipes
    assert gone(lambda: pids_with_cmdline(f"sleep {marks[0]}"))
    command.assert_clean(marks[1])
