"""`fmgrade reset`: one exercise (or the whole file) back to the stub; the learner's version is
always kept first, and `--undo` brings it back."""

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.instructor import release
from grader.learner import regions, reset
from grader.learner.reset import ResetError


@pytest.fixture
def loaded(course_copy):
    return course.load(course_copy)


def backups(loaded, topic="attention"):
    folder = reset.backups_dir(loaded, topic)
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_one_exercise_goes_back_to_the_stub_and_the_rest_stays(loaded, solve_exercise):
    solve_exercise(loaded.root, "attention", "attention")
    path = solve_exercise(loaded.root, "attention", "subsequent_mask")
    before = path.read_bytes()

    done = reset.reset_exercise(loaded, "attention", "attention")

    after = path.read_text()
    stub = reset.original_stub(loaded, "attention")
    assert 'raise NotImplementedError("exercise `attention` is not done yet' in after
    assert "scores.softmax" not in after  # the learner's attention is gone from the file...
    assert "torch.triu" in after  # ...their subsequent_mask is not
    assert [b.read_bytes() for b in backups(loaded)] == [before]  # ...and the whole file is kept
    assert done.backup == backups(loaded)[0]
    # resetting the other one too gives exactly the stub
    reset.reset_exercise(loaded, "attention", "subsequent_mask")
    assert path.read_text() == stub


def test_an_exercise_with_two_regions_gets_both_back(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "positional_encoding")
    assert path.read_text().count("TODO(positional_encoding)") == 0
    reset.reset_exercise(loaded, "attention", "positional_encoding")
    assert path.read_text() == reset.original_stub(loaded, "attention")


@pytest.mark.slow
def test_every_exercise_of_every_topic_round_trips(loaded, solve_exercise):
    for topic in loaded.topics:
        if not loaded.solution_path(topic.id).is_file():
            continue
        for exercise in topic.exercises:
            solve_exercise(loaded.root, topic.id, exercise.id)
        path = loaded.exercise_path(topic.id)
        assert "NotImplementedError" not in path.read_text(), topic.id
        for exercise in topic.exercises:
            reset.reset_exercise(loaded, topic.id, exercise.id)
        assert path.read_text() == reset.original_stub(loaded, topic.id), topic.id


def test_a_region_still_the_stub_is_left_alone_without_a_backup(loaded):
    done = reset.reset_exercise(loaded, "attention", "attention")
    assert done.backup is None and "nothing changed" in done.summary
    assert backups(loaded) == []


def test_undo_brings_the_learners_version_back_after_keeping_the_current_one(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "attention")
    mine = path.read_bytes()
    reset.reset_exercise(loaded, "attention", "attention")
    stubbed = path.read_bytes()

    done = reset.undo(loaded, "attention")

    assert path.read_bytes() == mine
    assert done.backup.read_bytes() == stubbed  # the file undo replaced is kept as well
    assert len(backups(loaded)) == 2
    reset.undo(loaded, "attention")  # a second undo swaps back
    assert path.read_bytes() == stubbed


def test_undo_without_a_backup_says_so(loaded):
    with pytest.raises(ResetError, match=r"no backup of exercises/attention.py in \.fmgrade/backups/attention/"):
        reset.undo(loaded, "attention")


def test_a_file_with_a_syntax_error_is_refused_per_exercise_and_reset_whole(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "attention")
    broken = path.read_text().replace("def subsequent_mask(size):", "def subsequent_mask(size)")
    path.write_text(broken)
    line = broken.splitlines().index("def subsequent_mask(size)") + 1

    with pytest.raises(
        ResetError, match=rf"exercises/attention.py:{line}: .*fix that line, or `fmgrade reset attention`"
    ):
        reset.reset_exercise(loaded, "attention", "attention")
    assert path.read_text() == broken and backups(loaded) == []

    done = reset.reset_file(loaded, "attention")
    assert path.read_text() == reset.original_stub(loaded, "attention")
    assert done.backup.read_text() == broken
    reset.undo(loaded, "attention")
    assert path.read_text() == broken


def test_a_renamed_function_is_named_in_the_refusal(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "attention")
    path.write_text(path.read_text().replace("def attention(", "def my_attention("))
    with pytest.raises(ResetError, match=r"`attention`, which holds exercise `attention`, is not there any more"):
        reset.reset_exercise(loaded, "attention", "attention")
    assert backups(loaded) == []


def test_changed_scaffolding_around_a_region_is_refused(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "copy_task")
    path.write_text(path.read_text().replace("    cfg = COPY_TASK\n", "    cfg = dict(COPY_TASK)\n"))
    with pytest.raises(
        ResetError, match=r"`train_copy_model` no longer has the code the stub has around exercise `copy_task`"
    ):
        reset.reset_exercise(loaded, "attention", "copy_task")


def test_notes_in_a_docstring_or_a_deleted_docstring_are_fine(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "subsequent_mask")
    text = path.read_text()
    start = text.index('    """The decoder\'s causal mask')
    end = text.index("\n", start) + 1
    path.write_text(text[:start] + text[end:])  # docstring deleted
    reset.reset_exercise(loaded, "attention", "subsequent_mask")
    assert "TODO(subsequent_mask)" in path.read_text() and "torch.triu" not in path.read_text()


def test_windows_line_endings_stay_windows_line_endings(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "attention")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    reset.reset_exercise(loaded, "attention", "attention")
    data = path.read_bytes()
    assert b"\r\r" not in data and data.count(b"\n") == data.count(b"\r\n")
    assert data.replace(b"\r\n", b"\n").decode() == reset.original_stub(loaded, "attention")


def test_a_file_that_is_not_utf8_comes_back_byte_for_byte(loaded):
    path = loaded.exercise_path("attention")
    garbage = b"# caf\xe9\n" + path.read_bytes()
    path.write_bytes(garbage)
    with pytest.raises(ResetError, match="not UTF-8 text"):
        reset.reset_exercise(loaded, "attention", "attention")
    reset.reset_file(loaded, "attention")
    reset.undo(loaded, "attention")
    assert path.read_bytes() == garbage


def test_without_solutions_the_released_originals_are_used(loaded, solve_exercise, tmp_path):
    path = solve_exercise(loaded.root, "attention", "attention")
    reset.save_originals(loaded, loaded.root)
    for solution in (loaded.root / "solutions").iterdir():
        solution.unlink()
    assert (loaded.root / "exercises" / ".original" / "attention.py").is_file()
    reset.reset_exercise(loaded, "attention", "attention")
    assert path.read_text() == (loaded.root / "exercises" / ".original" / "attention.py").read_text()
    (loaded.root / "exercises" / ".original" / "attention.py").unlink()
    with pytest.raises(ResetError, match="no original of exercises/attention.py"):
        reset.reset_file(loaded, "attention")


def test_a_missing_file_is_brought_back_whole(loaded):
    path = loaded.exercise_path("attention")
    path.unlink()
    with pytest.raises(ResetError, match="is missing: `fmgrade reset attention` brings the whole stub back"):
        reset.reset_exercise(loaded, "attention", "attention")
    done = reset.reset_file(loaded, "attention")
    assert done.backup is None and path.read_text() == reset.original_stub(loaded, "attention")


def test_reset_works_in_the_student_release(course_copy, tmp_path, solve_exercise):
    import os
    import shutil
    import subprocess
    import sys

    loaded = course.load(course_copy)
    shutil.copytree(course.find_root(__file__) / "grader", course_copy / "grader", ignore=release.IGNORED)
    shutil.copy(course.find_root(__file__) / "pyproject.toml", course_copy / "pyproject.toml")
    out = tmp_path / "release"
    leaks = release.build_release(loaded, out)
    assert [leak for leak in leaks if leak.startswith("exercises/")] == []  # the originals are stubs: no answers
    original = out / "exercises" / ".original" / "attention.py"
    assert original.read_text() == reset.original_stub(loaded, "attention")
    mine = out / "exercises" / "attention.py"
    shutil.copy(solve_exercise(course_copy, "attention", "attention"), mine)
    env = {**os.environ, "PYTHONPATH": str(out)}  # the release's own grader: no stubgen, no solutions
    done = subprocess.run(
        [sys.executable, "-m", "grader", "reset", "attention", "attention"],
        cwd=out / "exercises",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert mine.read_text() == original.read_text()
    assert len(list((out / ".fmgrade" / "backups" / "attention").iterdir())) == 1


# --- the command --------------------------------------------------------------------------


def test_cli_resets_one_exercise_and_says_where_the_backup_is(loaded, solve_exercise, monkeypatch):
    solve_exercise(loaded.root, "attention", "attention")
    monkeypatch.chdir(loaded.root)
    result = CliRunner().invoke(cli.main, ["reset", "attention", "attention"])
    assert result.exit_code == 0, result.output
    assert "`attention` in exercises/attention.py is the stub again" in result.output
    assert "kept in .fmgrade/backups/attention/" in result.output and "--undo" in result.output
    result = CliRunner().invoke(cli.main, ["reset", "attention", "--undo"])
    assert result.exit_code == 0 and "back to the backup" in result.output
    assert "scores.softmax" in loaded.exercise_path("attention").read_text()


def test_cli_asks_before_resetting_the_whole_file(loaded, solve_exercise, monkeypatch):
    path = solve_exercise(loaded.root, "attention", "attention")
    mine = path.read_text()
    monkeypatch.chdir(loaded.root)
    result = CliRunner().invoke(cli.main, ["reset", "attention"], input="n\n")
    assert result.exit_code == 1 and "Reset the whole of exercises/attention.py" in result.output
    assert path.read_text() == mine and backups(loaded) == []
    result = CliRunner().invoke(cli.main, ["reset", "attention", "--yes"])
    assert result.exit_code == 0 and path.read_text() == reset.original_stub(loaded, "attention")
    assert backups(loaded)[0].read_text() == mine


@pytest.mark.parametrize(
    "args, message",
    [
        (["reset", "nope"], "no topic 'nope'"),
        (["reset", "attention", "nope"], "topic 'attention' has no exercise 'nope'"),
        (["reset", "attention", "attention", "--undo"], "--undo brings back the whole file"),
        (["reset", "attention", "--undo"], "no backup of exercises/attention.py"),
    ],
)
def test_cli_user_errors_exit_2_without_a_traceback(loaded, monkeypatch, args, message):
    monkeypatch.chdir(loaded.root)
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_regions_report_where_each_exercise_is_in_the_learners_file(loaded, solve_exercise):
    path = solve_exercise(loaded.root, "attention", "attention")
    stub = reset.original_stub(loaded, "attention")
    (span,) = regions.locate(stub, path.read_text(), "attention")
    text = regions.text_of(path.read_text(), span)
    assert "scores.softmax" in text and "def attention" not in text and '"""' not in text
