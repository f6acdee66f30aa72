"""Messages that point at the problem (issue 16): a module that does not import, what the
learner's code printed, a timeout's call and line, the seed; and the terminal output itself
(colour on a terminal, plain when captured, NO_COLOR)."""

import io
import json
import re

import pytest
from click.testing import CliRunner

from grader import cli
from grader.learner import rendering as report_text
from grader.learner import terminal
from grader.results import FAILED, PASSED, CheckResult, TopicResult
from grader.sandbox import timeouts

ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def run(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)
    monkeypatch.delenv("FORCE_COLOR", raising=False)

    def invoke(*args):
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)

    return invoke


def _exercise_file(course_copy, edit=None):
    """exercises/attention.py = the solution, with `edit` (old, new) applied."""
    text = (course_copy / "solutions" / "attention.py").read_text()
    if edit:
        assert edit[0] in text
        text = text.replace(*edit, 1)
    path = course_copy / "exercises" / "attention.py"
    path.write_text(text)
    return text


def _progress(course_copy):
    return json.loads((course_copy / ".fmgrade" / "progress.json").read_text())["topics"]["attention"]


# --- a module that does not import ----------------------------------------------------------


@pytest.mark.slow
def test_a_module_that_does_not_import_is_one_banner_with_file_line_and_code(run, course_copy):
    _exercise_file(course_copy)
    assert run("check", "attention", "rate").exit_code == 0
    before = _progress(course_copy)
    text = _exercise_file(course_copy, ("def rate(", "def rate((("))
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "def rate(((" in l)
    result = run("check", "attention")
    assert result.exit_code == 1
    out = result.output
    assert out.count("does not import") == 1
    assert f"exercises/attention.py:{line}: SyntaxError" in out
    assert f"{line} │ def rate(((" in out  # the code line itself
    assert "subsequent_mask" not in out and "0/5" not in out  # no row per exercise
    assert f"Next: fix exercises/attention.py:{line} so that the module imports" in out
    after = _progress(course_copy)
    assert after["exercises"] == before["exercises"] and after["score"] == before["score"] > 0
    assert f"exercises/attention.py:{line}" in after["import_error"]
    progress = run("progress").output
    assert "does not import" in progress
    _exercise_file(course_copy)
    run("check", "attention", "rate")
    assert "import_error" not in _progress(course_copy)  # an importable run clears the mark


def test_an_error_at_import_time_points_at_its_line(run, course_copy):
    text = _exercise_file(
        course_copy, ("\nclass MultiHeadedAttention", "\nundefined_name()\n\nclass MultiHeadedAttention")
    )
    line = text.splitlines().index("undefined_name()") + 1
    out = run("check", "attention").output
    assert f"exercises/attention.py:{line} in <module>(): NameError" in out
    assert f"{line} │ undefined_name()" in out


# --- what the learner's code printed ------------------------------------------------------


def test_what_a_failing_check_printed_is_shown_under_its_row_cut_to_a_few_lines(run, course_copy):
    _exercise_file(
        course_copy,
        (
            "    d_k = query.size(-1)\n",
            "    d_k = query.size(-1)\n    for i in range(20):\n        print('debug line', i)\n"
            "    query = query * 2\n",
        ),
    )
    out = run("check", "attention", "attention").output
    rows = out.splitlines()
    row = next(i for i, l in enumerate(rows) if "✘ attention" in l or "! attention" in l)
    assert rows[row + 1].strip() == "your code printed:"
    assert rows[row + 2].strip() == "│ debug line 0"
    shown = [l for l in rows if "│ debug line" in l]
    assert len(shown) == report_text.OUTPUT_LINES
    assert f"… {20 - report_text.OUTPUT_LINES} more lines not shown" in out


def test_output_of_passing_checks_is_not_shown(run, course_copy):
    _exercise_file(course_copy, ("    d_k = query.size(-1)\n", "    d_k = query.size(-1)\n    print('quiet please')\n"))
    assert "quiet please" not in run("check", "attention", "attention").output


def test_printed_output_rendering_counts_what_is_left_out():
    result = TopicResult(
        "t",
        [
            CheckResult(
                "a.py::t", "e", FAILED, 0, 1, message="wrong", output="x\n" * 10 + "... (300 more bytes not shown)"
            )
        ],
    )
    lines = report_text._printed(result.checks[0].output)
    assert lines[-1].plain.strip() == f"… {10 - report_text.OUTPUT_LINES} more lines, 300 more bytes not shown"


# --- a timeout names the call and the line ------------------------------------------------------


@pytest.mark.slow
def test_a_timeout_names_the_call_and_the_line_it_was_stopped_on(run, course_copy):
    outline = course_copy / "course.yml"
    outline.write_text(outline.read_text().replace("call_timeout: 30 ", "call_timeout: 3 ", 1))
    text = _exercise_file(
        course_copy,
        (
            "    future = torch.triu(",
            "    print('looping from', size)\n    while size > 0:\n        size += 1\n    future = torch.triu(",
        ),
    )
    line = text.splitlines().index("        size += 1") + 1
    result = run("check", "attention", "subsequent_mask")
    out = result.output
    assert result.exit_code == 1
    assert "did not return within 3 s: subsequent_mask(4) was stopped" in out
    where = rf"at exercises/attention\.py:({line - 1}|{line}) in subsequent_mask\(\): `(while size > 0:|size \+= 1)`"
    assert re.search(where, out), out  # the loop's line, either of its two
    assert "│ looping from 4" in out  # what it printed before it was stopped


def test_a_timeout_message_describes_the_call_and_quotes_the_line():
    import torch

    frames = timeouts.learner_frames([(7, "helper"), (11, "attention"), ("x", 1), "junk"])
    assert frames == [(7, "helper"), (11, "attention")]
    call = {
        "op": "call",
        "args": [torch.zeros(2, 3), [1, 2], {"__fmgrade_handle__": 4}],
        "kwargs": {"mask": torch.ones(1, 3, 3, dtype=torch.bool)},
    }
    assert (
        timeouts.describe_call(call, frames)
        == "attention(tensor(2, 3), [1, 2], <your object>, mask=tensor(1, 3, 3) bool)"
    )
    assert timeouts.describe_call({"op": "call_attr", "name": "forward", "args": []}, frames) == "forward()"
    assert timeouts.describe_call({"op": "call", "args": [4]}, []) == "your function, called with (4),"
    source = "\n" * 6 + "    x += 1\n"
    assert timeouts.stopped_at(frames, "exercises/a.py", source) == " at exercises/a.py:7 in helper(): `x += 1`"
    assert timeouts.stopped_at([], "exercises/a.py", source) == ""


# --- the seed --------------------------------------------------------------------------------


SEEDED_CHECK = """import pytest


@pytest.mark.exercise("rate")
def test_rate_draws_inputs(impl, seed):
    assert impl.rate(1, 512, 1.0, 10) > 0
"""


@pytest.mark.slow
def test_the_text_output_ends_with_the_seed_when_a_check_drew_random_inputs(run, course_copy):
    _exercise_file(course_copy)
    assert "seed" not in run("check", "attention", "rate").output.lower()  # nothing random drawn
    (course_copy / "tests" / "checks" / "attention" / "test_seeded.py").write_text(SEEDED_CHECK)
    result = run("check", "attention", "rate", "--seed", "1234")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().splitlines()[-1] == "seed 1234: replay with --seed 1234"


# --- the terminal ------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _rendered(monkeypatch, **env):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = TopicResult(
        "attention",
        [
            CheckResult("a.py::x", "attention", PASSED, 1, 1),
            CheckResult("a.py::y", "rate", FAILED, 0, 1, message="wrong"),
        ],
    )
    from grader import course

    out = _Terminal()
    terminal.echo(report_text.topic_report(course.load(), result), file=out)
    return out.getvalue()


def test_a_terminal_gets_colour(monkeypatch):
    text = _rendered(monkeypatch)
    assert "\x1b[32m" in text or "\x1b[38;5;2m" in text  # green ✔


def test_no_color_turns_colour_off(monkeypatch):
    text = _rendered(monkeypatch, NO_COLOR="1")
    assert not re.search(r"\x1b\[(3\d|38;)", text) and "✔" in text


@pytest.mark.slow
def test_captured_output_is_plain_text(run, course_copy):
    for args in (("list",), ("progress",), ("hint", "attention", "rate"), ("check", "attention", "rate")):
        result = run(*args)
        assert not ANSI.search(result.output), args
    data = json.loads(run("check", "attention", "rate", "--format", "json").output)  # JSON as before
    assert {"score", "max_score", "topics"} <= set(data)
    keys = set(data["topics"][0])  # as before, and what the worker's processes shared (a cgroup, or why none)
    assert keys - {"cgroup"} == {"id", "score", "max_score", "isolation", "seed", "checks"}


# --- the best diagnosis in the default row (issue 22) ------------------------------------------


def _two_failing_checks():
    """An exercise whose first failing check only compares numbers and whose second names a mistake."""
    from grader.results import SUSPECT_MARK

    checks = [
        CheckResult("test_a", "attention", FAILED, 0, 2, message="output differs at [0, 1]. Expected the formula."),
        CheckResult(
            "test_b", "attention", FAILED, 0, 1, message=f"rows differ. {SUSPECT_MARK}used the wrong dimension."
        ),
        CheckResult("test_c", "attention", PASSED, 1, 1),
    ]
    return TopicResult("attention", checks=checks)


def test_the_default_row_shows_the_check_that_names_the_mistake(course_copy):
    from grader import course as course_model

    course = course_model.load(course_copy)
    result = _two_failing_checks()
    assert result.exercises(["attention"])[0].message.endswith("used the wrong dimension.")
    row = next(l for l in str(report_text.topic_report(course, result)).splitlines() if "attention  " in l)
    assert "looks like you used the wrong dimension" in row and "Expected the formula" not in row
    verbose = str(report_text.topic_report(course, result, verbose=True))
    assert "Expected the formula" in verbose and "test_a" in verbose and "test_b" in verbose  # -v adds the rest


def test_without_a_named_mistake_the_first_failing_check_is_shown(course_copy):
    from grader import course as course_model

    result = _two_failing_checks()
    result.checks[1].message = "rows differ."
    assert result.exercises(["attention"])[0].message.startswith("output differs")
    out = str(report_text.topic_report(course_model.load(course_copy), result))
    assert "output differs" in out


@pytest.mark.slow
def test_softmax_over_the_wrong_dimension_is_named_in_the_default_output(run, course_copy):
    _exercise_file(course_copy, ("p_attn = scores.softmax(dim=-1)", "p_attn = scores.softmax(dim=-2)"))
    out = run("check", "attention", "attention").output
    row = next(l for l in out.splitlines() if "✘ attention" in l)
    assert "looks like you took the softmax over the queries (dim=-2)" in row


# --- errors point at the learner's line (issue 22) ---------------------------------------------


def test_an_error_inside_learner_code_lists_the_learners_frames_innermost_last(run, course_copy):
    # A multi-head split without the transpose hands attention() (B, T, h, d_k): the mask no longer
    # broadcasts and attention() raises, but the line to fix is the call in MultiHeadedAttention.forward.
    text = _exercise_file(
        course_copy,
        ("lin(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)", "lin(x).view(nbatches, -1, self.h, self.d_k)"),
    )
    lines = text.splitlines()
    call = next(i for i, l in enumerate(lines, 1) if "x, self.attn = attention(query, key, value" in l)
    out = run("check", "attention", "-v").output
    assert "in your code, from the check's call down to where it raised (innermost last):" in out
    block = out[out.index("in your code, from the check's call") :]
    forward = block.index(f"exercises/attention.py:{call} in forward()")
    inner = block.index("in attention()")
    assert forward < inner  # the learner's call first, the raise last
    assert "x, self.attn = attention(query, key, value" in block[forward:inner]  # the code of that line


def test_frames_text_escapes_learner_text_and_keeps_the_last_frames():
    from grader.judge import verdict

    frames = [("exercises/x.py", i, f"f{i}", "y = 1\x1b[31m") for i in range(1, 20)]
    text = verdict.frames_text(frames)
    assert "\x1b" not in text and "\\x1b[31m" in text
    assert "exercises/x.py:19 in f19()" in text and "exercises/x.py:7 in f7()" not in text
    assert text.rstrip().endswith("y = 1\\x1b[31m")  # innermost last
    assert verdict.frames_text([]) == ""
