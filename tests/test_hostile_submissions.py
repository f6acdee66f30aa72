"""Hostile submissions made of files rather than code: links to the reference solution or to a
secret, a FIFO, /dev/zero, a device, an oversized or binary file. Each is graded under both
isolation levels ("process" and "bwrap") in a grader subprocess with a time guard (a reader
that blocked on a FIFO would hang it), and must score 0 with a message naming what is wrong;
the secret's token must appear nowhere. An honest copy of the solution is graded alongside and
keeps full marks, so the refusals are not a grader that refuses everything.

(The bank of hostile learner *modules* is tests/test_hostile.py.)
"""

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner

from grader import cli
from grader.sandbox import process as sandbox

TOKEN = "FMGRADE_SECRET_TOKEN_7f3a9c"  # a valid Python name: read as code, a NameError would echo it
FILE = "exercises/tiny.py"
GRADING_TIMEOUT = 300


# case -> (how the submission is made from (sub, kit, secret, committed_link), a phrase every message contains)
CASES = {
    "honest_copy": (lambda s, k, x, git: shutil.copy(k / "solutions" / "tiny.py", s / FILE), None),
    "link_absolute": (lambda s, k, x, git: (s / FILE).symlink_to(k / "solutions" / "tiny.py"), "is a symbolic link"),
    "link_relative": (
        lambda s, k, x, git: (s / FILE).symlink_to(os.path.relpath(k / "solutions" / "tiny.py", s / "exercises")),
        "is a symbolic link",
    ),
    "link_folder": (
        lambda s, k, x, git: (os.rmdir(s / "exercises"), (s / "exercises").symlink_to(k / "solutions")),
        "exercises is a symbolic link",
    ),
    "link_committed": (
        lambda s, k, x, git: (shutil.rmtree(s), git(s, FILE, k / "solutions" / "tiny.py")),
        "is a symbolic link",
    ),
    "link_dev_zero": (lambda s, k, x, git: (s / FILE).symlink_to("/dev/zero"), "is a symbolic link"),
    "link_secret": (lambda s, k, x, git: (s / FILE).symlink_to(x), "is a symbolic link"),
    "hard_link_secret": (lambda s, k, x, git: os.link(x, s / FILE), "hard link"),
    "fifo": (lambda s, k, x, git: os.mkfifo(s / FILE), "FIFO"),
    "device": (lambda s, k, x, git: os.mknod(s / FILE, stat.S_IFCHR | 0o600, os.makedev(1, 5)), "character device"),
    "oversized": (
        lambda s, k, x, git: (s / FILE).write_text("def double(x):\n    return 2 * x\n" + "#" * 2048 * 1024),
        "larger than the 1 MB allowed",
    ),
    "not_utf8": (lambda s, k, x, git: (s / FILE).write_bytes(b"def double(x):\n    return '\xff'\n"), "not UTF-8 text"),
    "binary": (lambda s, k, x, git: (s / FILE).write_bytes(b"\x7fELF\x00\x00" + TOKEN.encode()), "binary data"),
}
NEEDS = {"link_committed": shutil.which("git") is not None, "device": hasattr(os, "getuid") and os.getuid() == 0}
LEVELS = ["process", "bwrap"]

GRADER = """
import json, sys
from grader import course
from grader.instructor import grade
kit, level, subs = sys.argv[1], sys.argv[2], sys.argv[3:]
results = grade.grade_many(course.load(kit), subs, ["tiny"], 11, isolation=level)
print(json.dumps({g.student: {"problem": g.problem, **g.report.to_dict()} for g in results}))
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory, make_tiny, committed_link):
    root = tmp_path_factory.mktemp("hostile-files")
    kit = make_tiny(root / "kit")
    secret = root / "secret.txt"
    secret.write_text(f"{TOKEN}\n")
    subs = {}
    for name, (make, _) in CASES.items():
        if not NEEDS.get(name, True):
            continue
        sub = root / "subs" / name
        (sub / "exercises").mkdir(parents=True)
        make(sub, kit, secret, committed_link)
        subs[name] = sub
    return kit, subs


@pytest.fixture(scope="module", params=LEVELS)
def graded(request, bank):
    level = request.param
    if level == "bwrap" and not sandbox.bwrap_available():
        pytest.skip("bubblewrap is not available here")
    kit, subs = bank
    done = subprocess.run(
        [sys.executable, "-c", GRADER, str(kit), level, *map(str, subs.values())],
        capture_output=True,
        text=True,
        timeout=GRADING_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert TOKEN not in done.stdout + done.stderr
    return level, json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_each_hostile_file_scores_zero_with_a_message_and_leaks_nothing(graded, case):
    level, results = graded
    if not NEEDS.get(case, True):
        pytest.skip("needs git" if case == "link_committed" else "needs root")
    result = results[case]
    (topic,) = result["topics"]
    assert topic["isolation"] == level
    assert result["max_score"] == 2
    if CASES[case][1] is None:
        assert result["score"] == 2, result
        return
    assert result["score"] == 0, result
    for check in topic["checks"]:
        assert check["status"] == "error" and CASES[case][1] in check["message"], check
    assert TOKEN not in json.dumps(result)


# --- the learner's `check` and the CLI's outputs never show the secret -----------------------


@pytest.fixture
def linked_to_secret(tmp_path, make_tiny):
    kit = make_tiny(tmp_path / "course")
    (tmp_path / "secret.txt").write_text(f"{TOKEN}\n")
    (kit / FILE).unlink()
    (kit / FILE).symlink_to(tmp_path / "secret.txt")
    return kit


def test_check_refuses_a_linked_secret_and_never_shows_it(linked_to_secret, monkeypatch):
    monkeypatch.chdir(linked_to_secret)
    for fmt in ("text", "json"):
        result = CliRunner().invoke(cli.main, ["check", "tiny", "--format", fmt], catch_exceptions=False)
        assert result.exit_code == 1
        assert "exercises/tiny.py is a symbolic link" in result.output
        assert TOKEN not in result.output and "Traceback" not in result.output
    assert TOKEN not in (linked_to_secret / ".fmgrade" / "progress.json").read_text()


def test_grade_refuses_a_linked_exercises_folder_and_never_shows_the_secret(linked_to_secret, tmp_path):
    sub = tmp_path / "mallory"
    sub.mkdir()
    (sub / "exercises").symlink_to(linked_to_secret / "exercises")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli.main,
        ["grade", str(sub), "--kit", str(linked_to_secret), "--format", "json", "--output", str(out / "m.json")],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    data = json.loads((out / "m.json").read_text())
    assert data["score"] == 0 and data["max_score"] == 2
    assert {c["message"] for c in data["topics"][0]["checks"]} == {
        "exercises is a symbolic link; links are never followed, so submit the folder itself"
    }
    assert TOKEN not in result.output + (out / "m.json").read_text()


def test_check_on_a_fifo_answers_at_once(tmp_path, make_tiny):
    """`fmgrade check` in a subprocess with a time guard: a reader that opened the FIFO (here,
    or to find the TODO line to point at) would wait for a writer for ever."""
    course = make_tiny(tmp_path / "course")
    (course / FILE).unlink()
    os.mkfifo(course / FILE)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", "tiny"],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=GRADING_TIMEOUT,
    )
    assert done.returncode == 1, done.stderr
    assert "exercises/tiny.py is a FIFO (named pipe), not a regular file" in done.stdout
