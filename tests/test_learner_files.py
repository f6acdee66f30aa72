"""grader.submission: a learner's file is read without following links, only as a regular file,
size-capped and as UTF-8; every refusal names the file and never shows its content.

Each reader test runs twice: with the openat-style walk (Linux, macOS) and with the lstat
fallback that native Windows uses."""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from grader import course as course_mod
from grader import submission
from grader.judge import runner

FILE = "exercises/attention.py"
TOKEN = "FMGRADE-SECRET-TOKEN-7f3a9c"


@pytest.fixture(params=["openat", "lstat"])
def read(request, monkeypatch):
    if request.param == "openat" and not submission.OPENAT:
        pytest.skip("this platform has no dir_fd/O_NOFOLLOW")
    monkeypatch.setattr(submission, "OPENAT", request.param == "openat")

    def read(root, relative=FILE, max_bytes=submission.DEFAULT_MAX_BYTES):
        return submission.read_source(root, relative, max_bytes)

    return read


@pytest.fixture
def sub(tmp_path):
    (tmp_path / "sub" / "exercises").mkdir(parents=True)
    return tmp_path / "sub"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(f"{TOKEN}\n")
    return path


def refusal(read, root, *args):
    with pytest.raises(submission.Unusable) as caught:
        read(root, *args)
    message = str(caught.value)
    assert TOKEN not in message
    return message


def test_a_regular_file_is_read(read, sub):
    (sub / FILE).write_text("def f():\n    return 1\n")
    assert read(sub) == "def f():\n    return 1\n"


def test_a_byte_order_mark_is_dropped(read, sub):
    (sub / FILE).write_bytes(b"\xef\xbb\xbfx = 1\n")
    assert read(sub) == "x = 1\n"


def test_the_root_itself_may_be_reached_through_a_link(read, sub, tmp_path):
    (sub / FILE).write_text("x = 1\n")
    (tmp_path / "via").symlink_to(sub)
    assert read(tmp_path / "via") == "x = 1\n"


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_a_linked_file_is_refused(read, sub, secret, how):
    target = secret if how == "absolute" else os.path.relpath(secret, sub / "exercises")
    (sub / FILE).symlink_to(target)
    message = refusal(read, sub)
    assert message.startswith(f"{FILE} is a symbolic link")


def test_a_link_to_the_reference_solution_is_refused(read, sub):
    (sub / FILE).symlink_to(course_mod.find_root(__file__) / "solutions" / "attention.py")
    assert "symbolic link" in refusal(read, sub)


def test_a_linked_exercises_folder_is_refused(read, tmp_path, secret):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "attention.py").write_text(f"x = '{TOKEN}'\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "exercises").symlink_to(real)
    message = refusal(read, tmp_path / "sub")
    assert message.startswith("exercises is a symbolic link") and "folder itself" in message


def test_a_link_to_dev_zero_is_refused_without_reading(read, sub):
    (sub / FILE).symlink_to("/dev/zero")
    assert "symbolic link" in refusal(read, sub)


def test_a_link_committed_to_git_is_refused_after_checkout(read, tmp_path, secret, committed_link):
    committed_link(tmp_path / "clone", FILE, secret)
    assert (tmp_path / "clone" / FILE).is_symlink()
    assert "symbolic link" in refusal(read, tmp_path / "clone")


def test_a_fifo_is_refused(read, sub):
    os.mkfifo(sub / FILE)
    assert refusal(read, sub) == f"{FILE} is a FIFO (named pipe), not a regular file"


def test_a_fifo_never_blocks_the_reader(sub):
    """In a subprocess with a time guard: a reader that opened the FIFO would wait forever."""
    os.mkfifo(sub / FILE)
    code = (
        "import sys; from grader.judge import runner\n"
        "print(runner.read_learner_file(sys.argv[1] + '/exercises/attention.py', 'exercises/attention.py', sys.argv[1])[1])"
    )
    done = subprocess.run([sys.executable, "-c", code, str(sub)], capture_output=True, text=True, timeout=120)
    assert "FIFO" in done.stdout, done.stderr


def test_a_socket_is_refused(read, tmp_path):
    short = Path("/tmp") / f"fmgrade-sock-{os.getpid()}"  # unix socket paths are short
    (short / "exercises").mkdir(parents=True, exist_ok=True)
    try:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(short / FILE))
        assert "a socket, not a regular file" in refusal(read, short)
        server.close()
    finally:
        shutil.rmtree(short)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_refused_without_being_opened(read, sub):
    os.mknod(sub / FILE, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers
    assert "a character device, not a regular file" in refusal(read, sub)


def test_a_folder_in_place_of_the_file_is_refused(read, sub):
    (sub / FILE).mkdir()
    assert "a folder, not a regular file" in refusal(read, sub)


def test_a_file_in_place_of_the_folder_is_refused(read, tmp_path):
    (tmp_path / "exercises").write_text("x")
    assert refusal(read, tmp_path) == "exercises/ is a file, not a folder"


def test_a_hard_link_is_refused(read, sub, secret):
    os.link(secret, sub / FILE)
    assert "hard link" in refusal(read, sub)


def test_missing_file_and_folder(read, sub, tmp_path):
    assert refusal(read, sub) == f"{FILE} is missing"
    assert refusal(read, tmp_path) == "exercises/ is missing"


def test_an_oversized_file_is_refused_unread(read, sub):
    (sub / FILE).write_text("x = 1\n" * 400)  # 2400 bytes
    message = refusal(read, sub, FILE, 1024)
    assert message == f"{FILE} is larger than the 1 KB allowed (2.34375 KB)"
    assert read(sub, FILE, 4096).startswith("x = 1")


def test_non_utf8_text_is_not_python(read, sub):
    (sub / FILE).write_bytes(b"x = '\xff\xfe'\n")
    message = refusal(read, sub)
    assert message.startswith(f"{FILE} is not UTF-8 text") and "not Python source" in message


def test_binary_data_is_reported_as_such_and_never_shown(read, sub):
    (sub / FILE).write_bytes(b"\x00\x01" + TOKEN.encode() + b"\x00")
    assert refusal(read, sub) == f"{FILE} contains NUL bytes: it is binary data, not Python source"


def test_an_empty_file(read, sub):
    (sub / FILE).write_text("  \n")
    assert refusal(read, sub) == f"{FILE} is empty"


def test_read_learner_file_names_the_module_and_takes_the_cap(sub):
    (sub / FILE).write_text("y = 2\n" * 300)
    assert runner.read_learner_file(sub / FILE, FILE, sub)[0].startswith("y = 2")
    source, why = runner.read_learner_file(sub / FILE, FILE, sub, max_bytes=100)
    assert source is None and why.startswith(f"{FILE} is larger than")
    (sub / FILE).unlink()
    (sub / FILE).symlink_to("/etc/hostname")
    assert runner.read_learner_file(sub / FILE, FILE)[1].startswith(f"{FILE} is a symbolic link")  # root by default


# --- the cap in course.yml ------------------------------------------------------------------


def test_source_kb_is_a_course_limit(tiny_course):
    text = (tiny_course / "course.yml").read_text().replace("limits:\n", "limits:\n  source_kb: 64\n", 1)
    assert course_mod.parse(text, tiny_course).topic("tiny").limits.source_kb == 64
    assert course_mod.Limits().source_kb == 1024


@pytest.mark.parametrize("value", ["big", "0", "-5", "true"])
def test_a_bad_source_kb_is_named_with_its_line(tiny_course, value):
    text = (tiny_course / "course.yml").read_text().replace("limits:\n", f"limits:\n  source_kb: {value}\n", 1)
    line = text.splitlines().index(f"  source_kb: {value}") + 1
    with pytest.raises(course_mod.CourseError) as caught:
        course_mod.parse(text, tiny_course, "course.yml")
    assert str(caught.value).startswith(f"course.yml:{line}: limits.source_kb: expected a positive number")


def test_the_cap_of_course_yml_is_applied_when_checking(tiny_course, monkeypatch):
    from click.testing import CliRunner

    from grader import cli

    yml = tiny_course / "course.yml"
    yml.write_text(yml.read_text().replace("limits:\n", "limits:\n  source_kb: 0.5\n", 1))
    (tiny_course / "exercises" / "tiny.py").write_text("def double(x):\n    return 2 * x\n" + "# padding\n" * 100)
    monkeypatch.chdir(tiny_course)
    result = CliRunner().invoke(cli.main, ["check", "tiny", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 1
    (message,) = {c["message"] for c in json.loads(result.output)["topics"][0]["checks"]}
    assert message == "exercises/tiny.py is larger than the 0.5 KB allowed (1.00781 KB)"


@pytest.mark.parametrize("relative", ["../secret.txt", "/etc/hostname", ""])
def test_a_path_leaving_the_folder_is_a_programming_error(read, sub, relative):
    with pytest.raises(ValueError):
        read(sub, relative)
