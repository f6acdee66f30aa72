"""Each exercise has its own time budget: one hang costs one exercise, never the others.

A small course built from the tiny one (tests/conftest.py TINY_COURSE): `double` plus two more
exercises, one of which loops forever in the learner's file.
"""

from pathlib import Path

import pytest

from grader import course as course_mod
from grader.judge import runner
from grader.results import BLOCKED, PASSED, TIMEOUT

pytestmark = pytest.mark.slow  # starts real workers and waits out real timeouts

OUTLINE = """\
format_version: 1
title: Three exercises, one of which hangs
limits:
  call_timeout: {call_timeout}
  topic_timeout: {topic_timeout}
sections:
  - id: basics
    title: Basics
    topics:
      - id: tiny
        title: Arithmetic
        exercises:
          - id: double
            goal: Return twice x.
          - id: triple
            goal: Return three times x.
          - id: sextuple
            depends: [triple]
            goal: Six times x, from triple.
          - id: square
            goal: Return x squared.
"""

SOLUTION = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


def triple(x):
    """Three times x."""
    ### BEGIN SOLUTION
    return 3 * x
    ### END SOLUTION


def sextuple(x):
    """Six times x."""
    ### BEGIN SOLUTION
    return 2 * triple(x)
    ### END SOLUTION


def square(x):
    """x squared."""
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION
'''

CHECKS = """import pytest


@pytest.mark.exercise("double")
def test_double(impl):
    assert impl.double(3) == 6, "double(3) should be 6"


@pytest.mark.exercise("triple")
@pytest.mark.points(2)
def test_triple_of_one(impl):
    assert impl.triple(1) == 3, "triple(1) should be 3"


@pytest.mark.exercise("triple")
def test_triple_of_two(impl):
    assert impl.triple(2) == 6, "triple(2) should be 6"


@pytest.mark.exercise("triple")
def test_triple_of_zero(impl):
    assert impl.triple(0) == 0, "triple(0) should be 0"


@pytest.mark.exercise("sextuple")
def test_sextuple(impl):
    assert impl.sextuple(1) == 6, "sextuple(1) should be 6"


@pytest.mark.exercise("square")
@pytest.mark.points(3)
def test_square(impl):
    assert impl.square(4) == 16, "square(4) should be 16"
"""


def make_course(folder, learner_source, call_timeout=2, topic_timeout=3):
    """The course in `folder` with `learner_source` as exercises/tiny.py."""
    folder = Path(folder)
    files = {
        "course.yml": OUTLINE.format(call_timeout=call_timeout, topic_timeout=topic_timeout),
        "solutions/tiny.py": SOLUTION,
        "exercises/tiny.py": learner_source,
        "tests/checks/tiny/test_tiny.py": CHECKS,
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return course_mod.load(folder)


def hanging_triple():
    """The solution with an endless loop in `triple`."""
    return SOLUTION.replace("    return 3 * x\n", "    while True:\n        x = x + 0\n", 1)


def by_id(result):
    return {check.id.split("::")[-1]: check for check in result.checks}


def test_a_hang_costs_only_its_exercise_and_what_builds_on_it(tmp_path):
    # topic_timeout 3 s is less than the 2 s x 3 the three hanging checks of `triple` would take:
    # before, the topic's budget ran out and `square` (correct, 3 points) scored 0.
    course = make_course(tmp_path / "course", hanging_triple())
    result = runner.run_topic(course, "tiny", course.exercise_path("tiny"), isolation="process", root=course.root)
    checks = by_id(result)

    assert checks["test_triple_of_one"].status == TIMEOUT
    assert "did not return within 2 s" in checks["test_triple_of_one"].message
    for name in ("test_triple_of_two", "test_triple_of_zero"):
        assert checks[name].status == TIMEOUT and checks[name].score == 0
        assert checks[name].message.startswith("not run: `triple` already timed out in test_triple_of_one"), checks[
            name
        ].message
    assert checks["test_sextuple"].status == BLOCKED
    assert (checks["test_double"].status, checks["test_double"].score) == (PASSED, 1)
    assert (checks["test_square"].status, checks["test_square"].score) == (PASSED, 3)
    assert (result.score, result.max_score) == (4, 9)
    summaries = {s.id: s for s in result.exercises()}
    assert summaries["triple"].status == TIMEOUT and "did not return" in summaries["triple"].message


def test_the_solution_still_gets_every_point(tmp_path):
    course = make_course(tmp_path / "course", SOLUTION)
    result = runner.run_topic(course, "tiny", course.exercise_path("tiny"), isolation="process", root=course.root)
    assert (result.score, result.max_score) == (9, 9)
    assert {c.status for c in result.checks} == {PASSED}


SLOW_CHECKS = CHECKS.replace(
    """def test_double(impl):
    assert impl.double(3) == 6, "double(3) should be 6"
""",
    """def test_slow_first(impl):
    assert impl.slow(1.5) == 1.5


@pytest.mark.exercise("double")
def test_slow_second(impl):
    assert impl.slow(1.5) == 1.5
""",
)


def test_the_topic_clock_still_stops_code_that_is_slow_everywhere(tmp_path):
    # Calls that return but together take more than the topic's 2 s: the checks after that are
    # not run, and say why.
    source = SOLUTION + "\n\ndef slow(seconds):\n    import time\n    time.sleep(seconds)\n    return seconds\n"
    course = make_course(tmp_path / "course", source, call_timeout=10, topic_timeout=2)
    (course.root / "tests/checks/tiny/test_tiny.py").write_text(SLOW_CHECKS)
    course = course_mod.load(course.root)
    result = runner.run_topic(course, "tiny", course.exercise_path("tiny"), isolation="process", root=course.root)
    checks = by_id(result)
    assert checks["test_slow_first"].status == PASSED
    last = checks["test_square"]
    assert last.status == TIMEOUT and last.message.startswith("not run: the checks of this topic"), last.message


# --- live output: rows appear as exercises finish ---------------------------------------------


def _fmgrade(cwd, *args, tty):
    """`fmgrade ARGS` in `cwd`, its output as text; on a pseudo-terminal of 100 columns with `tty`."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "grader", *args]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    if not tty:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
        return done.stdout
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen(command, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        proc.wait(timeout=300)
    return b"".join(chunks).decode("utf-8", "replace")


def test_piped_check_prints_a_plain_line_as_each_exercise_finishes(tmp_path):
    course = make_course(tmp_path / "course", hanging_triple())
    out = _fmgrade(course.root, "check", "tiny", tty=False)
    assert "\x1b[" not in out  # plain text in a pipe
    lines = out.splitlines()
    assert lines[0] == "checking tiny…"
    live = [line for line in lines if line.startswith("[")]
    assert [line.split()[1] for line in live] == ["double", "triple", "sextuple", "square"]
    assert live[0].split()[1:] == ["double", "✔", "passed", "1/1"] and "timeout" in live[1]
    assert lines.index(live[-1]) < next(i for i, line in enumerate(lines) if line.startswith("tiny · "))
    assert "4/9 points" in out


@pytest.mark.skipif(__import__("os").name == "nt", reason="a pseudo-terminal is POSIX")
def test_on_a_terminal_check_counts_the_exercises_as_they_finish_then_shows_the_report(tmp_path):
    course = make_course(tmp_path / "course", hanging_triple())
    out = _fmgrade(course.root, "check", "tiny", tty=True)
    assert "checking tiny…" in out
    assert "1 of 4 exercises done" in out and "[1/4]" in out
    assert out.index("1 of 4 exercises done") < out.index("4/9 points")  # live before the report
    assert "4 of 4 exercises done" in out or "3 of 4 exercises done" in out


@pytest.mark.skipif(__import__("os").name == "nt", reason="a pseudo-terminal is POSIX")
def test_on_a_terminal_long_messages_wrap_at_words_to_its_width(tmp_path):
    import re

    course = make_course(tmp_path / "course", hanging_triple())
    out = _fmgrade(course.root, "check", "tiny", tty=True)
    report = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.split("tiny · Arithmetic")[-1])
    lines = report.replace("\r", "").splitlines()
    assert lines and all(len(line) <= 100 for line in lines), max(lines, key=len)
    message = "exercise `triple` did not return within 2 s: triple(1) was stopped at exercises/tiny.py:11"
    tokens = [token for line in lines for token in line.split()]
    for word in message.split():  # wrapped between words, never inside one
        assert word in tokens, word
