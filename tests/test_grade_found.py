"""No silent zeros: a submission one folder down is found (or refused naming the folders), and
a missing topic file names the files that are there."""

import pytest

from grader import course as course_mod
from grader.instructor import grade

SOLVED = "def double(x):\n    return 2 * x\n"


@pytest.fixture
def tiny(make_tiny, tmp_path):
    return course_mod.load(make_tiny(tmp_path / "kit"))


def put(folder, files):
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def test_exercises_one_folder_down_are_found_and_graded(tiny, tmp_path):
    alice = put(tmp_path / "alice", {"course-alice/exercises/tiny.py": SOLVED, "course-alice/README.md": "hi"})
    assert grade.exercises_root(alice) == (alice / "course-alice", "")
    graded = grade.grade_submission(tiny, alice, ["tiny"], 3)
    assert (graded.student, graded.submission, graded.problem) == ("alice", str(alice), "")
    assert graded.report.score == graded.report.max_score == 2


def test_two_candidate_folders_are_refused_naming_both(tiny, tmp_path):
    bob = put(tmp_path / "bob", {"v1/exercises/tiny.py": SOLVED, "v2/exercises/tiny.py": SOLVED})
    graded = grade.grade_submission(tiny, bob, ["tiny"], 3)
    assert "v1/exercises/" in graded.problem and "v2/exercises/" in graded.problem
    assert graded.report.score == 0


def test_a_link_one_folder_down_is_not_followed(tiny, tmp_path):
    elsewhere = put(tmp_path / "elsewhere", {"exercises/tiny.py": SOLVED})
    carol = tmp_path / "carol"
    carol.mkdir()
    (carol / "repo").symlink_to(elsewhere)
    assert grade.exercises_root(carol) == (carol, "")
    assert grade.grade_submission(tiny, carol, ["tiny"], 3).report.score == 0


def test_a_missing_topic_file_names_the_files_that_are_there(tiny, tmp_path):
    dave = put(tmp_path / "dave", {"exercises/tiny (1).py": SOLVED, "exercises/GPT3.py": "x = 1\n"})
    graded = grade.grade_submission(tiny, dave, ["tiny"], 3)
    (message,) = {c.message for c in graded.report.topics[0].checks}
    assert message.startswith("exercises/tiny.py is missing; exercises/ holds 'GPT3.py', 'tiny (1).py'")
    assert "rename 'tiny (1).py' to tiny.py" in message
    assert graded.report.score == 0
    assert grade.missing_file_note(put(tmp_path / "erin", {"exercises/tiny.py": SOLVED}), "tiny") is None
