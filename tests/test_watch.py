"""`fmgrade watch`: a save re-checks the exercise being edited, in a fresh worker, and the
screen, the keys and the polling fallback behave. Results are awaited on a queue with a
generous deadline; no test sleeps for a fixed time."""

import os
import queue
import random
import shutil
import threading
import time

import click
import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.learner import keys, progress, reset, watch
from grader.learner import screen as watch_screen
from grader.results import BLOCKED, NOT_STARTED, PASSED, CheckResult, TopicResult
from grader.sandbox import pool as warm

DEADLINE = 300  # seconds; a busy 2-core machine can be slow, a broken watch never answers


def wait_for(events, wanted, seen=None):
    """The first event for which `wanted(event)` holds; fails naming what came instead."""
    seen = [] if seen is None else seen
    end = time.monotonic() + DEADLINE
    while True:
        try:
            event = events.get(timeout=max(0.1, end - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no such event within {DEADLINE} s; got: {seen}")
        seen.append(event)
        if isinstance(event, BaseException):
            raise event
        if wanted(event):
            return event


def start_watch(loaded, events, **options):
    """watch.run in a thread; an exception in it arrives on `events` (and fails the test there)."""

    def target():
        try:
            watch.run(loaded, "attention", events.put, **options)
        except BaseException as exc:  # noqa: B036 - handed to the test, which re-raises it
            events.put(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def status(event, exercise):
    return next(s.status for s in event.result.exercises() if s.id == exercise)


@pytest.fixture
def loaded(course_copy):
    return course.load(course_copy)


# --- the loop, end to end -------------------------------------------------------------------

LEAVE_STATE = "    import builtins\n    builtins.fmgrade_state_of_version_1 = True\n"
EXPECT_NO_STATE = (
    "    import builtins\n    if hasattr(builtins, 'fmgrade_state_of_version_1'):\n"
    "        raise RuntimeError('state of version 1 leaked into version 2')\n"
)


@pytest.mark.slow
def test_a_save_rechecks_the_edited_exercise_in_a_fresh_worker(loaded, solve_exercise):
    events, commands, stop, pool = queue.Queue(), queue.Queue(), threading.Event(), warm.SparePool()
    thread = start_watch(loaded, events, stop=stop, commands=commands, pool=pool)
    try:
        first = wait_for(events, lambda e: isinstance(e, watch.Rechecked))
        assert set(first.ran) == {e.id for e in loaded.topic("attention").exercises}
        assert status(first, "attention") == NOT_STARTED

        # version 1 passes and leaves state behind in its process
        path = solve_exercise(loaded.root, "attention", "attention")
        answer = "    d_k = query.size(-1)\n"
        path.write_text(path.read_text().replace(answer, LEAVE_STATE + answer))
        checking = wait_for(events, lambda e: isinstance(e, (watch.Checking, watch.Rechecked)))
        assert isinstance(checking, watch.Checking) and checking.exercises == ("attention", "multi_head_attention")
        v1 = wait_for(events, lambda e: isinstance(e, watch.Rechecked))
        assert v1.ran == ("attention", "multi_head_attention") and status(v1, "attention") == PASSED, v1
        assert status(first, "multi_head_attention") == BLOCKED  # it builds on attention: re-run now that it passes
        assert status(v1, "multi_head_attention") == NOT_STARTED
        assert status(v1, "subsequent_mask") == NOT_STARTED  # kept from the first run
        assert progress.load(loaded.root).topics["attention"]["exercises"]["attention"] == PASSED

        # version 2 fails if anything of version 1 is still around
        path.write_text(path.read_text().replace(LEAVE_STATE, EXPECT_NO_STATE))
        v2 = wait_for(events, lambda e: isinstance(e, watch.Rechecked))
        assert v2.ran == ("attention",) and status(v2, "attention") == PASSED, v2.result.checks
        assert pool.hits >= 1  # a spare worker, torch already imported, took the re-check

        commands.put("next")
        focus = wait_for(events, lambda e: isinstance(e, watch.Note))
        assert focus.kind == "focus" and "`subsequent_mask`" in focus.text and "exercises/attention.py:" in focus.text
        commands.put("hint")
        hint = wait_for(events, lambda e: isinstance(e, watch.Note))
        assert hint.kind == "hint" and loaded.topic("attention").exercise("subsequent_mask").hints[0] in hint.text
        assert (
            progress.hints_shown(progress.load(loaded.root), "attention", "subsequent_mask") == 1
        )  # `fmgrade hint` goes on from here
        commands.put("quit")
        thread.join(DEADLINE)
        assert not thread.is_alive()
    finally:
        stop.set()
        thread.join(DEADLINE)


# --- which exercises a save touched ----------------------------------------------------------


@pytest.fixture
def texts(loaded, solve_exercise):
    stub = reset.original_stub(loaded, "attention")
    ids = [e.id for e in loaded.topic("attention").exercises]
    solved = solve_exercise(loaded.root, "attention", "attention").read_text()
    return stub, ids, solved


def test_an_edit_inside_a_region_reruns_only_that_exercise(texts):
    stub, ids, solved = texts
    assert watch.changed_exercises(watch.fingerprint(stub, stub, ids), watch.fingerprint(stub, solved, ids), ids) == [
        "attention"
    ]


def test_an_edit_outside_every_region_reruns_everything(texts):
    stub, ids, solved = texts
    edited = solved.replace("import math\n", "import math\nSCALE = 2\n")
    assert (
        watch.changed_exercises(watch.fingerprint(stub, solved, ids), watch.fingerprint(stub, edited, ids), ids) == ids
    )


def test_a_file_that_does_not_parse_reruns_everything(texts):
    stub, ids, solved = texts
    broken = solved.replace("def subsequent_mask(size):", "def subsequent_mask(size)")
    assert watch.fingerprint(stub, broken, ids) is None
    assert watch.changed_exercises(watch.fingerprint(stub, solved, ids), None, ids) == ids


def test_comments_and_blank_lines_outside_the_regions_rerun_nothing(texts):
    stub, ids, solved = texts
    edited = solved.replace("import math\n", "import math\n\n# a note to myself\n")
    assert (
        watch.changed_exercises(watch.fingerprint(stub, solved, ids), watch.fingerprint(stub, edited, ids), ids) == []
    )


def test_blocked_exercises_run_again_once_what_they_build_on_is_rerun(loaded):
    state = watch.Watch(loaded, "attention")
    statuses = {
        "attention": "failed",
        "multi_head_attention": BLOCKED,
        "layer_norm": PASSED,
        "sublayer_connection": PASSED,
        "encoder_decoder_layers": BLOCKED,
        "subsequent_mask": BLOCKED,
    }
    state.result = TopicResult("attention", [CheckResult(f"t.py::{e}", e, s, 0, 1) for e, s in statuses.items()])
    assert state.with_blocked_dependents(["attention"]) == [
        "attention",
        "multi_head_attention",
        "encoder_decoder_layers",
    ]
    statuses["layer_norm"] = "failed"  # encoder_decoder_layers would still be blocked by it
    state.result = TopicResult("attention", [CheckResult(f"t.py::{e}", e, s, 0, 1) for e, s in statuses.items()])
    assert state.with_blocked_dependents(["attention"]) == ["attention", "multi_head_attention"]


def test_an_exercise_whose_function_is_gone_is_rerun(texts):
    stub, ids, solved = texts
    renamed = solved.replace("def rate(", "def my_rate(")
    after = watch.fingerprint(stub, renamed, ids)
    assert after.regions["rate"] is None
    assert "rate" in watch.changed_exercises(watch.fingerprint(stub, solved, ids), after, ids)


# --- polling ---------------------------------------------------------------------------------

MOUNTS = """\
/dev/sda1 / ext4 rw 0 0
server:/home /home nfs4 rw 0 0
C:\\134 /mnt/c 9p rw 0 0
/dev/sdb1 /home/local ext4 rw 0 0
"""


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/home/ada/course/exercises", "nfs4"),
        ("/mnt/c/Users/ada/course", "9p"),
        ("/home/local/course", None),
        ("/srv/course", None),
    ],
)
def test_network_file_systems_are_recognised_by_the_mount_that_holds_the_folder(path, expected):
    assert watch.network_file_system(path, MOUNTS) == expected


def test_a_change_that_no_file_event_reports_switches_to_polling(loaded, monkeypatch):
    import watchfiles

    calls = []

    events, stop = queue.Queue(), threading.Event()

    def silent_watch(*paths, stop_event, **options):  # a file system that never reports events
        calls.append(options)
        events.put(watch.Note(f"watching, time {len(calls)}"))
        while not stop_event.is_set():
            time.sleep(0.02)
            yield set()

    rechecks = []

    def fake_recheck(self, started=None, announce=None):
        rechecks.append(self.path.read_text())
        return watch.Note(f"rechecked {len(rechecks)}")

    monkeypatch.setattr(watchfiles, "watch", silent_watch)
    monkeypatch.setattr(watch.Watch, "recheck", fake_recheck)
    monkeypatch.setattr(watch, "network_file_system", lambda path, mounts=None: None)
    thread = start_watch(loaded, events, stop=stop)
    try:
        assert wait_for(events, lambda e: "rechecked" in e.text).text == "rechecked 1"
        path = loaded.exercise_path("attention")
        path.write_text(path.read_text() + "\n# edited\n")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a coarse clock must not hide the change
        assert "watching by polling" in wait_for(events, lambda e: "polling" in e.text).text
        assert wait_for(events, lambda e: "rechecked" in e.text).text == "rechecked 2"
        assert rechecks[-1].endswith("# edited\n")
        wait_for(events, lambda e: e.text == "watching, time 2")
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert calls[0]["force_polling"] is None and calls[-1]["force_polling"] is True  # None: watchfiles' own WSL check


def test_poll_option_and_network_folders_watch_by_polling(loaded, monkeypatch):
    import watchfiles

    calls = []

    def no_events(*paths, stop_event, **options):
        calls.append(options)
        stop_event.set()
        yield set()

    monkeypatch.setattr(watchfiles, "watch", no_events)
    monkeypatch.setattr(watch.Watch, "recheck", lambda self, started=None, announce=None: None)
    watch.run(loaded, "attention", lambda event: None, poll=True)
    assert calls[-1]["force_polling"] is True
    notes = []
    monkeypatch.setattr(watch, "network_file_system", lambda path, mounts=None: "nfs4")
    watch.run(loaded, "attention", notes.append)
    assert calls[-1]["force_polling"] is True and "nfs4 file system" in notes[0].text


# --- the topic, the screen, the keys, the command -------------------------------------------


def test_watch_without_a_topic_starts_where_progress_suggests(loaded):
    state = progress.Progress(
        {
            "attention": {"score": 34, "max_score": 34, "exercises": {}, "updated": "2025-01-03T10:00:00"},
            "gpt3": {"score": 1, "max_score": 9, "exercises": {}, "updated": "2025-01-02T10:00:00"},
            "llama": {"score": 1, "max_score": 9, "exercises": {}, "updated": "2025-01-01T10:00:00"},
        }
    )
    assert watch.topic_in_progress(loaded, state) == "gpt3" == progress.suggest_next(loaded, state).id
    assert watch.topic_in_progress(loaded, progress.Progress({})) == "attention"  # the suggested one
    state.topics["llama"]["updated"] = "2025-01-09T10:00:00"  # checked last, but progress suggests gpt3
    assert watch.topic_in_progress(loaded, state) == progress.suggest_next(loaded, state).id == "gpt3"


def _result():
    checks = [
        CheckResult("test_a.py::test_1", "attention", PASSED, 5, 5),
        CheckResult(
            "test_a.py::test_2",
            "subsequent_mask",
            "failed",
            0,
            1,
            message="mask[0, 0, 1] is True: the future is visible <script>\nsecond line",
        ),
        CheckResult("test_a.py::test_3", "multi_head_attention", NOT_STARTED, 0, 3, message="not done"),
    ]
    return TopicResult("attention", checks, isolation="bwrap")


def test_the_screen_shows_each_exercise_and_the_focus_in_full(loaded):
    event = watch.Rechecked(_result(), ("subsequent_mask",), 0.25, "subsequent_mask")
    text = watch_screen.render(loaded, event, keys=True)
    assert "attention · " in text and "5/9 points" in text and "checked `subsequent_mask` in 0.25 s" in text
    assert "subsequent_mask" in text and "not started" in text
    assert "`subsequent_mask` failed:\n  mask[0, 0, 1] is True" in text and "  second line" in text
    assert watch_screen.KEYS_LINE in text
    assert watch_screen.NO_KEYS_LINE in watch_screen.render(loaded, event, keys=False)
    assert click.unstyle(watch_screen.render(loaded, watch.Note("a hint", "hint"))) == "a hint"


@pytest.mark.skipif(os.name == "nt", reason="a pseudo-terminal is POSIX")
def test_keys_arrive_one_by_one_from_a_terminal_and_its_settings_come_back():
    import termios

    leader, follower = os.openpty()
    with open(follower, closefd=False) as stream:
        saved = termios.tcgetattr(follower)
        commands = queue.Queue()
        with keys.reader(commands, stream) as has_keys:
            assert has_keys
            # as pytest does in every check run: /dev/null over the descriptor, for a while
            kept, null = os.dup(follower), os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, follower)
            os.write(leader, b"hxnq")  # no Enter: cbreak mode
            got = [commands.get(timeout=DEADLINE) for _ in range(3)]
            os.dup2(kept, follower)
            os.close(kept)
            os.close(null)
        assert got == ["hint", "next", "quit"]
        assert termios.tcgetattr(follower) == saved
    os.close(leader)
    os.close(follower)


def test_no_keys_without_a_terminal():
    import io

    with keys.reader(queue.Queue(), io.StringIO()) as has_keys:
        assert not has_keys


def test_cli_watch_shows_each_event_and_names_bad_topics(loaded, monkeypatch):
    monkeypatch.chdir(loaded.root)

    def one_event(course_, topic, sink, **options):
        assert topic == "attention" and options["poll"] is True
        sink(watch.Rechecked(_result(), ("attention",), 0.5, "subsequent_mask"))
        sink(watch.Note("bye"))

    monkeypatch.setattr(watch, "run", one_event)
    result = CliRunner().invoke(cli.main, ["watch", "attention", "--poll"])
    assert result.exit_code == 0, result.output
    assert "watching exercises/attention.py" in result.output and "checked `attention` in 0.50 s" in result.output
    assert watch_screen.NO_KEYS_LINE in result.output and result.output.rstrip().endswith("bye")
    result = CliRunner().invoke(cli.main, ["watch", "nope"])
    assert result.exit_code == 2 and "no topic 'nope'" in result.output


@pytest.mark.slow
def test_the_spare_worker_is_handed_out_only_to_a_worker_like_the_last_one():
    from grader.sandbox import process as sandbox

    pool, limits = warm.SparePool(), sandbox.WorkerLimits()
    made = []
    try:
        made.append(pool("exercises/m.py", "x = 1\n", limits, "process"))
        assert (pool.hits, pool.misses) == (0, 1)
        pool.replenish()
        spare = pool._spare[1]
        made.append(pool("exercises/m.py", "x = 2\n", limits, "process"))
        assert made[-1] is spare and (pool.hits, pool.misses) == (1, 1)
        assert made[-1].wait_ready(DEADLINE) is None  # it imported the source it was given
        pool.replenish()
        other = pool._spare[1]
        made.append(pool("exercises/m.py", "x = 3\n", sandbox.WorkerLimits(memory_mb=1024), "process"))
        assert made[-1] is not other and other.proc.poll() is not None  # a spare unlike it is closed
    finally:
        pool.close()
        for worker in made:
            worker.close()


@pytest.mark.slow
def test_one_ctrl_c_during_a_recheck_stops_watch(make_tiny, tmp_path):
    """pytest absorbs the first KeyboardInterrupt of a run; the runner raises it again, so one
    Ctrl-C in the middle of a re-check ends `fmgrade watch` at once, as it does when idle."""
    import signal
    import subprocess
    import sys

    root = make_tiny(tmp_path / "course")
    exercise = root / "exercises" / "tiny.py"
    exercise.write_text('def double(x):\n    """Twice x."""\n    return 2 * x\n')
    fmgrade = [sys.executable, "-c", "from grader.cli import main; main()", "watch", "tiny", "--poll"]
    proc = subprocess.Popen(fmgrade, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        progress_file = root / ".fmgrade" / "progress.json"
        deadline = time.monotonic() + 120
        while not progress_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # the first check is done once its result is recorded
        assert progress_file.exists(), "watch never finished its first check"
        mark = str(random.randrange(10**6, 10**7))  # learner code is sandboxed: seen from here as `sleep <mark>`
        exercise.write_text(
            'import subprocess, time\n\n\ndef double(x):\n    """Twice x."""\n'
            f"    subprocess.Popen(['sleep', '{mark}'])\n    time.sleep(60)\n    return 2 * x\n"
        )
        while not _running(f"sleep {mark}") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert _running(f"sleep {mark}"), "the re-check never ran the learner's code"
        os.killpg(proc.pid, signal.SIGINT)  # one Ctrl-C, as a terminal sends it to the foreground group
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert b"Traceback" not in output, output.decode()


def _running(command_line):
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    if handle.read().replace(b"\0", b" ").strip() == command_line.encode():
                        return True
            except OSError:
                continue
    return False


# --- keys and the screen on a terminal -------------------------------------------------------


def _watching(loaded, statuses, focus):
    state = watch.Watch(loaded, "attention", pool=warm.SparePool())
    state.result = TopicResult(
        "attention", [CheckResult(f"t.py::{e}", e, s, 1 if s == PASSED else 0, 1) for e, s in statuses.items()]
    )
    state.focus = focus
    return state


def test_n_goes_to_the_next_unfinished_exercise_then_the_next_topic(loaded, tmp_path):
    ids = [e.id for e in loaded.topic("attention").exercises]
    statuses = dict.fromkeys(ids, PASSED)
    statuses.update(attention="failed", rate=NOT_STARTED)
    state = _watching(loaded, statuses, "attention")
    try:
        assert "`rate`" in state.next_exercise().text and state.focus == "rate"
        assert "`attention`" in state.next_exercise().text and state.focus == "attention"  # round the topic
        statuses["rate"] = PASSED
        state.result = TopicResult("attention", [CheckResult(f"t.py::{e}", e, s, 0, 1) for e, s in statuses.items()])
        assert "`attention` is the only exercise" in state.next_exercise().text  # never the same one again
        statuses["attention"] = PASSED
        state.result = TopicResult("attention", [CheckResult(f"t.py::{e}", e, s, 1, 1) for e, s in statuses.items()])
        state.progress = progress.Progress({"attention": {"score": 11, "max_score": 11, "exercises": {}}})
        following = state.next_exercise()
        assert isinstance(following, watch.SwitchTopic)
        assert following.topic_id == progress.suggest_next(loaded, state.progress).id != "attention"
    finally:
        state.close()


def test_q_says_it_is_stopping(loaded):
    state = _watching(loaded, {"attention": PASSED}, "attention")
    commands, sink, stop = queue.Queue(), [], threading.Event()
    commands.put("quit")
    try:
        assert watch._handle_commands(state, commands, sink.append, stop) is True
    finally:
        state.close()
    assert stop.is_set() and "stopping" in sink[-1].text


class Terminal:
    """What a Display wrote since the screen was last cleared."""

    def __init__(self):
        self.lines, self.clears = [], 0

    def echo(self, text):
        self.lines.append(click.unstyle(text))

    def wipe(self):
        self.lines, self.clears = [], self.clears + 1

    @property
    def text(self):
        return "\n".join(self.lines)


def test_h_replaces_the_previous_hint_and_a_save_marks_the_screen_stale_at_once(loaded):
    term = Terminal()
    show = watch_screen.Display(loaded, keys=True, clear=True, echo=term.echo, wipe=term.wipe, width=80)
    show(watch.Rechecked(_result(), ("attention",), 0.5, "subsequent_mask"))
    show(watch.Note("Hints for `subsequent_mask`:\n  1. first hint", "hint"))
    show(watch.Note("Hints for `subsequent_mask`:\n  1. first hint\n  2. second hint", "hint"))
    assert term.text.count("Hints for") == 1 and "2. second hint" in term.text
    assert "5/9 points" in term.text  # the table stays above it
    show(watch.Checking(("layer_norm",), False))
    assert "stale" in term.text and term.text.rstrip().endswith("checking `layer_norm`…")
    assert "Hints for" not in term.text
    show(watch.Rechecked(_result(), ("layer_norm",), 0.5, "subsequent_mask"))
    assert "stale" not in term.text and "checking `layer_norm`" not in term.text


@pytest.mark.slow
def test_p_draws_the_focused_exercises_picture_in_the_terminal(loaded, monkeypatch):
    """`p` runs the saved file for the focused exercise's picture (grader.learner.pictures) and, in
    a terminal that shows images, draws it under the table; with no picture it says why."""
    pytest.importorskip("matplotlib")
    shutil.copy(loaded.solution_path("attention"), loaded.exercise_path("attention"))
    state = watch.Watch(loaded, "attention")
    try:
        state.focus = "rate"
        note = state.picture()
        state.focus = "layer_norm"
        none = state.picture()
    finally:
        state.close()
    assert note.kind == "picture" and ".fmgrade/pictures/attention-rate.png" in note.text
    assert [p.name for p in note.images] == ["attention-rate.png"]
    assert "has no picture" in none.text and not none.images
    monkeypatch.setenv("FMGRADE_IMAGES", "kitty")
    sent = []
    show = watch_screen.Display(loaded, keys=True, clear=True, echo=lambda t, nl=True: sent.append(t), wipe=list)
    show(watch.Rechecked(_result(), ("attention",), 0.5, "rate"))
    show(note)
    assert sent[-1].startswith("\x1b_Gf=100,a=T") and sent[-2].startswith("Picture of `rate`")


def test_piped_watch_output_only_appends(loaded):
    term = Terminal()
    show = watch_screen.Display(loaded, keys=False, clear=False, echo=term.echo, wipe=term.wipe)
    show(watch.Rechecked(_result(), ("attention",), 0.5, "subsequent_mask"))
    show(watch.Checking(("layer_norm",), False))
    show(watch.Note("one", "hint"))
    show(watch.Note("two", "hint"))
    assert term.clears == 0 and "checking `layer_norm`…" in term.text and "one" in term.text and "two" in term.text


@pytest.mark.parametrize("width", [60, 80, 110])
def test_the_screen_fits_the_terminal(loaded, width):
    long = "x " * 200
    result = _result()
    result.checks[0].message = long
    event = watch.Rechecked(result, ("attention",), 0.5, "attention")
    for text in (
        watch_screen.render(loaded, event, width=width),
        watch_screen.render(loaded, event, width=width, stale=True),
        watch_screen.render(loaded, watch.Note("word " * 100, "hint"), width=width),
    ):
        for line in click.unstyle(text).splitlines():
            assert len(line) <= width, line


class _Pty:
    """A command on a pseudo-terminal of 100 columns: read what it shows, type keys."""

    def __init__(self, command, cwd):
        import fcntl
        import struct
        import subprocess
        import termios

        self.leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
        self.proc = subprocess.Popen(
            command, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True
        )
        os.close(follower)
        self.text = ""

    def wait_for(self, wanted):
        """Read until `wanted` (a string) has appeared after what was waited for before."""
        import select

        start = len(self.text)
        end = time.monotonic() + DEADLINE
        while wanted not in self.text[start:]:
            if time.monotonic() > end:
                pytest.fail(f"{wanted!r} never appeared; the terminal shows:\n{self.text[-3000:]}")
            ready, _, _ = select.select([self.leader], [], [], 0.5)
            if ready:
                try:
                    data = os.read(self.leader, 65536)
                except OSError:
                    data = b""
                if not data and self.proc.poll() is not None:
                    pytest.fail(f"exited before {wanted!r}:\n{self.text[-3000:]}")
                self.text += data.decode("utf-8", "replace")

    def type(self, keys):
        os.write(self.leader, keys.encode())

    def since_last_clear(self):
        return self.text.rsplit("\x1b[2J", 1)[-1]

    def close(self):
        if self.proc.poll() is None:
            import signal

            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        os.close(self.leader)


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="a pseudo-terminal is POSIX")
def test_on_a_terminal_watch_marks_a_save_at_once_replaces_hints_and_says_it_stops(make_tiny, tmp_path):
    import sys

    root = make_tiny(tmp_path / "course")
    exercise = root / "exercises" / "tiny.py"
    exercise.write_text('def double(x):\n    """Twice x."""\n    return 2 * x\n')
    term = _Pty([sys.executable, "-m", "grader", "watch", "tiny", "--poll"], root)
    try:
        term.wait_for("checking every exercise first")
        term.wait_for("1/1 points")
        exercise.write_text('def double(x):\n    """Twice x."""\n    return x + x + 0\n')
        term.wait_for("checking `double`…")
        shown = term.since_last_clear()
        assert "stale" in shown and "1/1 points" in shown  # the old screen, marked, at once
        term.wait_for("checked every exercise")
        term.type("h")
        term.wait_for("has no hints yet")
        term.type("h")
        term.wait_for("has no hints yet")
        assert term.since_last_clear().count("has no hints yet") == 1  # the second replaced the first
        term.type("q")
        term.wait_for("stopping")
        assert term.proc.wait(timeout=DEADLINE) == 0
    finally:
        term.close()


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="a pseudo-terminal is POSIX")
def test_on_a_terminal_asking_past_the_last_hint_says_there_are_no_more(make_tiny, tmp_path):
    import sys

    root = make_tiny(tmp_path / "course")
    course_file = root / "course.yml"
    course_file.write_text(
        course_file.read_text().replace(
            "goal: Return twice x.\n",
            "goal: Return twice x.\n            hints:\n              - the idea\n              - the approach\n",
        )
    )
    term = _Pty([sys.executable, "-m", "grader", "watch", "tiny", "--poll"], root)
    try:
        term.wait_for("checking every exercise first")
        term.wait_for("checked every exercise")
        term.type("h")
        term.wait_for("h again for hint 2 of 2")
        term.type("h")
        term.wait_for("2. the approach")
        assert "No more hints" not in term.since_last_clear()
        term.type("h")
        term.wait_for("No more hints for `double`")  # not a silent repeat of every hint
        assert "you have seen all 2" in term.since_last_clear()
        term.type("q")
        term.wait_for("stopping")
        assert term.proc.wait(timeout=DEADLINE) == 0
    finally:
        term.close()


def test_n_after_the_last_exercise_moves_the_watch_to_the_next_topic(loaded, monkeypatch):
    import watchfiles

    events, commands, stop = queue.Queue(), queue.Queue(), threading.Event()

    def quiet_watch(*paths, stop_event, **options):
        while not stop_event.is_set():
            time.sleep(0.02)
            yield set()

    monkeypatch.setattr(watchfiles, "watch", quiet_watch)
    monkeypatch.setattr(watch, "network_file_system", lambda path, mounts=None: None)
    monkeypatch.setattr(
        watch.Watch, "recheck", lambda self, started=None, announce=None: watch.Note(f"rechecked {self.topic.id}")
    )
    monkeypatch.setattr(watch.Watch, "next_exercise", lambda self: watch.SwitchTopic("gpt3"))
    thread = start_watch(loaded, events, stop=stop, commands=commands)
    try:
        wait_for(events, lambda e: e.text == "rechecked attention")
        commands.put("next")
        moved = wait_for(events, lambda e: "Next topic" in e.text)
        assert "Next topic: gpt3" in moved.text
        wait_for(events, lambda e: e.text == "rechecked gpt3")  # its first check runs at once
        commands.put("quit")
        assert "stopping" in wait_for(events, lambda e: "stopping" in e.text).text
        thread.join(DEADLINE)
        assert not thread.is_alive()
    finally:
        stop.set()
        thread.join(DEADLINE)
