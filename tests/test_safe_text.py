"""Learner text made safe where it enters the grader (grader.safe_text), bounded reprs, and the
reply decoder's budget. The end-to-end attacks are in tests/test_hostile_reports.py and the bank."""

import csv
import io
import os
import subprocess
import sys
import xml.dom.minidom
import zipfile

import pytest
import torch

from grader import course as course_mod
from grader import formats
from grader.checking import as_number, expect_equal
from grader.errors import WorkerLost
from grader.judge import runner
from grader.results import CheckResult, Report, TopicResult
from grader.safe_text import MAX_TEXT, safe_id, safe_repr, safe_text
from grader.sandbox import ipc, proxy
from grader.sandbox import process as sandbox
from grader.sandbox import worker as wire

HOSTILE_TEXT = "a\ud800b\udfff\x1b[2K\x1b[32mPASSED\x1b[0m\x1b]52;c;ZXZpbA==\x07\x00\r\x9b31m\u202eevil\ufffe"


def is_safe(text):
    """Encodable, valid XML 1.0 character data, and no terminal control but newline and tab."""
    text.encode("utf-8")
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    return not bad and "\u202e" not in text and "\ufffe" not in text


# --- safe_text ----------------------------------------------------------------------------------


def test_unsafe_characters_are_shown_not_run():
    text = safe_text(HOSTILE_TEXT)
    assert is_safe(text)
    assert "\\ud800" in text and "\\udfff" in text and "\\x1b[32mPASSED" in text and "\\x07" in text
    assert "\\x0d" in text and "\\x9b" in text and "\\u202e" in text
    assert "\x00" not in text and "\\x00" not in text  # NUL is removed, not shown


def test_safe_text_keeps_plain_text_and_lines_as_they_are():
    plain = "rows of p_attn sum to 1.73, not 1:\n\tsoftmax over the wrong dimension? ü → ∑ 中文 \\x1b"
    assert safe_text(plain) == plain
    assert safe_text(safe_text(HOSTILE_TEXT)) == safe_text(HOSTILE_TEXT)  # idempotent: safe twice is safe once


def test_safe_text_caps_length_and_says_how_much_was_cut():
    text = safe_text("x" * (MAX_TEXT + 123))
    assert text.startswith("x" * 100) and text.endswith("(123 more characters not shown)")
    assert len(text) < MAX_TEXT + 50
    # the limit bounds what is shown, escapes included (each is four or six characters)
    assert safe_text("\x1b" * 10, limit=8) == "\\x1b" * 2 + "... (8 more characters not shown)"
    shown = safe_text("\ud800\x1b" * 5000, limit=2000)
    assert len(shown.split("... (")[0]) <= 2000 and shown.endswith("(9600 more characters not shown)")


def test_safe_text_of_non_text_never_raises():
    class Hostile:
        def __str__(self):
            raise RuntimeError("no")

    assert safe_text(Hostile()) == "<Hostile that cannot be shown>"
    assert safe_text(b"\xff\x1b ok") == "\\xff\\x1b ok"


def test_student_ids_are_one_safe_line_and_stay_distinct():
    assert safe_id("alice") == "alice"
    assert safe_id("bob\n\x1b[2J") == "bob\\n\\x1b[2J"
    assert safe_id("") == "(empty)"
    long_a, long_b = "a" * 300 + "1", "a" * 300 + "2"
    assert len(safe_id(long_a)) <= 120 and safe_id(long_a) != safe_id(long_b)
    assert safe_id("\udcff" * 200) != safe_id("\udcfe" * 200)


# --- bounded repr -------------------------------------------------------------------------------


def test_safe_repr_never_builds_a_large_repr():
    big = "x" * 10_000_000
    shared = [big] * 1000  # 10 MB on the wire, 10 GB as a full repr
    assert len(safe_repr(shared)) < 400
    assert safe_repr(10**100_000).startswith("<int of")
    assert len(safe_repr(torch.zeros(1).expand(10**6, 10**6))) < 400  # 10^12 elements, one stored
    assert len(safe_repr({"k": b"\x1b" * 10**6})) < 400 and is_safe(safe_repr({"k": b"\x1b" * 10**6}))
    assert is_safe(safe_repr([HOSTILE_TEXT]))


def test_safe_repr_of_an_object_whose_repr_raises():
    class Broken:
        def __repr__(self):
            raise ValueError("boom")

    assert safe_repr(Broken()).startswith("<Broken ")  # reprlib names it; nothing raises


def test_checking_messages_show_learner_values_bounded():
    big = ["y" * 10_000_000] * 1000
    with pytest.raises(AssertionError) as failed:
        as_number(big, "loss")
    assert len(str(failed.value)) < 400 and "expected a number, got list" in str(failed.value)
    with pytest.raises(AssertionError) as failed:
        expect_equal("z" * 10_000_000 + "\x1b", "ok", "the token")
    assert len(str(failed.value)) < 600 and is_safe(str(failed.value))


# --- reports ------------------------------------------------------------------------------------


def hostile_report():
    check = CheckResult("test_x.py::test_y", "double", "error", 0, 1, message=HOSTILE_TEXT, output=HOSTILE_TEXT)
    return Report([TopicResult("tiny", [check], "process", 1)], problem="")


def test_junit_stays_valid_xml_with_control_characters():
    text = formats.to_junit(hostile_report())
    xml.dom.minidom.parseString(text.encode("utf-8"))  # raises on an invalid character
    assert "\\x1b[32mPASSED" in text and "\x1b" not in text


@pytest.mark.parametrize("fmt", ["json", "gradescope"])
def test_json_formats_hold_no_surrogate_or_control_character(fmt):
    text = formats.FORMATS[fmt](hostile_report())
    text.encode("utf-8")
    assert "\\\\x1b" in text and "\\u001b" not in text and "\\ud800" not in text.replace("\\\\ud800", "")


def test_summary_csv_neutralises_a_formula_student_id():
    from grader.instructor import grade

    graded = grade.Graded('=HYPERLINK("http://evil","x")', "sub", hostile_report())
    rows = list(csv.reader(io.StringIO(grade.summary_csv([graded]))))
    assert rows[1][0].startswith("'=")


def test_student_id_of_a_folder_with_invalid_utf8_is_safe(tmp_path):
    from grader.instructor import grade

    folder = os.fsdecode(bytes(tmp_path) + b"/caf\xe9\x1b[2J")
    os.mkdir(folder)
    assert grade.student_id(folder) == "caf\\udce9\\x1b[2J"


# --- what comes back from the worker -----------------------------------------------------------


def deflated(payload, extra=0):
    """`payload` (a torch.save zip) with every record DEFLATE-compressed, plus `extra` zero bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for record in source.infolist():
            target.writestr(record.filename, source.read(record))
        if extra:
            target.writestr("archive/data/99", bytes(extra))
    return out.getvalue()


def test_the_reply_decoder_reads_what_the_worker_writes():
    assert sandbox.load_reply(wire.dumps({"value": [1, "two", torch.ones(3)]}))["value"][1] == "two"


def test_the_reply_decoder_refuses_compressed_records_before_inflating_them():
    payload = deflated(wire.dumps({"value": 1}), extra=64 * 1024 * 1024)
    assert len(payload) < 1024 * 1024
    with pytest.raises(sandbox.UnreadableReply, match="compressed"):
        sandbox.load_reply(payload)


@pytest.mark.parametrize("payload", [b"", b"\x80\x04not a zip", b"PK\x03\x04" + b"\x00" * 40])
def test_the_reply_decoder_refuses_what_is_not_the_workers_format(payload):
    with pytest.raises(sandbox.UnreadableReply):
        sandbox.load_reply(payload)


def test_the_reply_decoder_counts_stored_bytes_against_its_budget():
    with pytest.raises(sandbox.UnreadableReply, match="more than 0 MB"):
        sandbox.load_reply(wire.dumps({"value": torch.ones(1000)}), budget=1000)


class _Session:
    exercise, generation = "rate", 0


def test_decoding_counts_every_reference_to_a_shared_tensor():
    big = torch.zeros(sandbox.MAX_MESSAGE // 64, dtype=torch.uint8)
    assert proxy._decode([big] * 63, _Session())[0] is big
    with pytest.raises(WorkerLost, match="counting every reference"):
        proxy._decode([big] * 65, _Session())


def test_decoding_bounds_text_so_that_any_message_built_from_it_is_small():
    """A check may format a learner value in full (a repr, an f-string): every string and int
    of a reply, each reference counted, stays within a few million characters."""
    line = "s" * (proxy.MAX_TEXT // 64)
    assert proxy._decode([line] * 63, _Session())[0] is line
    for swollen in ([line] * 65, [b"b" * (proxy.MAX_TEXT + 1)], {"n": 1 << (3 * proxy.MAX_TEXT + 3)}):
        with pytest.raises(WorkerLost, match="characters of text"):
            proxy._decode(swollen, _Session())


def test_decoding_counts_a_tensor_at_its_full_size_not_its_storage():
    with pytest.raises(WorkerLost, match="MB of data"):
        proxy._decode({"value": torch.zeros(1).expand(10**6, 10**6)}, _Session())


def test_error_fields_from_the_worker_are_made_safe_whatever_their_type():
    kind, message, where = proxy._error_fields({"type": "\x1b[2J" * 100, "message": ["m" * 10**7] * 100, "where": 3})
    assert len(kind) <= 120 and is_safe(kind)
    assert len(message) < 2100 and is_safe(message)
    assert where == "3"
    assert proxy._error_fields("not a dict") == ("Exception", "", "")


# --- a worker lost while importing ---------------------------------------------------------------


class _LostAtStart:
    """A worker that dies before learner code runs (a loaded machine: it did not start in time)."""

    def __init__(self, *args, **kwargs):
        pass

    def wait_ready(self, timeout):
        raise sandbox.WorkerFailedToStart("it did not start within 30 s", "worker log\n")

    def take_output(self):
        return ""

    def kill(self, reason):
        pass

    def close(self):
        pass


def test_a_worker_lost_while_importing_gives_results_not_an_attribute_error(tiny_course):
    course = course_mod.load(tiny_course)
    path = course.solution_path("tiny")
    result = runner.run_topic(course, "tiny", path, isolation="process", worker_factory=_LostAtStart)
    assert result.checks and all(c.status == "error" for c in result.checks)
    assert "grader error, not a problem in your code" in result.import_error


# --- IPC objects a worker leaves (at user/process isolation) ------------------------------------

LEAVE_IPC = """
import ctypes, os, sys
libc = ctypes.CDLL(None)
print(libc.shmget(0, 1 << 20, 0o1000 | 0o600))  # IPC_PRIVATE, IPC_CREAT
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(fd, 1 << 20)
"""


@pytest.mark.skipif(not ipc.supported(), reason="needs Linux's /proc/sysvipc")
def test_ipc_objects_left_by_processes_that_are_gone_are_removed(tmp_path):
    name = f"/dev/shm/fmgrade-test-{os.getpid()}"
    before = ipc.Snapshot()
    kept = os.open(f"{name}-kept", os.O_CREAT | os.O_RDWR, 0o600)  # made since, but still held open: kept
    try:
        done = subprocess.run([sys.executable, "-c", LEAVE_IPC, name], capture_output=True, text=True, check=True)
        ident = int(done.stdout)
        assert ident >= 0 and ("shm", ident) in {(k, i) for k, i, _ in ipc.sysv_objects()}
        assert ipc.remove_left_by(None, before) >= 2
        assert ("shm", ident) not in {(k, i) for k, i, _ in ipc.sysv_objects()}
        assert not os.path.exists(name) and os.path.exists(f"{name}-kept")
    finally:
        os.close(kept)
        os.unlink(f"{name}-kept")


def test_worker_uids_of_two_grading_processes_never_collide():
    assert set(sandbox.worker_uids(1234)).isdisjoint(sandbox.worker_uids(11234))
    assert max(sandbox.worker_uids(4 * 1024 * 1024)) < 2**31 - 1
