"""nbgrader's course layout round trip, checked with nbgrader's own API: submitted/{student}/
{assignment}/ in (student id from the folder, timestamp.txt and a late flag), autograded/ and
feedback/ out where CourseDirectory, the gradebook, formgrader and release_feedback look."""

import datetime
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.instructor import gradebook
from grader.instructor.grade import Graded
from grader.instructor.platforms import nbgrader_layout
from grader.results import CheckResult, Report, TopicResult

ROOT = course.find_root(__file__)
COURSE = course.load(ROOT)
DUE = datetime.datetime(2026, 3, 1, 17, 0, 0)  # naive UTC, as nbgrader keeps it
SECRET = "5e" * 32


def submit(course_dir, student, assignment="survey", files=None, timestamp=None, secret=None):
    folder = course_dir / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp)
    if secret is not None:
        (folder / "submission_secret.txt").write_text(secret)
    return folder


@pytest.fixture
def course_dir(tmp_path):
    root = tmp_path / "course"
    submit(root, "alice", files={"survey.py": "A = 1\n"}, timestamp="2026-03-01 16:59:00.000000 UTC", secret=SECRET)
    submit(root, "bob", files={"exercises/survey.py": "B = 2\n"}, timestamp="2026-03-02 18:30:00 UTC")
    submit(root, "carol", timestamp="yesterday-ish")
    submit(root, "dave", assignment="gpt3", files={"gpt3.py": "D = 4\n"})
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    return root


def survey_report(score_first=2, message="fine", problem=""):
    checks = [
        CheckResult(
            "test_families.py::test_a",
            "model_families",
            "passed" if score_first else "failed",
            score_first,
            2,
            message=message,
            output="<b>printed</b>",
        ),
        CheckResult("test_families.py::test_h", "model_families", "passed", 1, 1, hidden=True),
        CheckResult(
            "test_labels.py::test_c",
            "causal_lm_labels",
            "failed",
            0,
            3,
            message="labels <script>alert(1)</script> are shifted the wrong way",
        ),
    ]
    return Report([TopicResult("survey", checks, isolation="bwrap", seed=5)], problem=problem)


def graded_batch(course_dir, due=DUE):
    batch = nbgrader_layout.open_batch(course_dir, "survey", ["survey"], due)
    results = [
        Graded(s.student, str(s.staged.folder), survey_report(2 if s.student == "alice" else 0))
        for s in batch.submissions
    ]
    return batch, results


def test_submissions_are_found_by_student_with_their_times(course_dir):
    batch = nbgrader_layout.open_batch(course_dir, "survey", ["survey"], DUE)
    try:
        by = batch.by_student()
        assert sorted(by) == ["alice", "bob", "carol"]  # dave submitted another assignment
        assert [f.name for f in batch.staged_folders] == ["alice", "bob", "carol"]  # `grade` names them so
        assert (by["bob"].staged.folder / "exercises" / "survey.py").read_text() == "B = 2\n"
        assert by["alice"].staged.found == {"survey": "survey.py"}
        assert by["alice"].timestamp == datetime.datetime(2026, 3, 1, 16, 59)
        assert by["alice"].seconds_late(DUE) == 0 and by["bob"].seconds_late(DUE) == 25.5 * 3600
        assert by["alice"].secret == SECRET and by["bob"].secret == ""
        assert (
            by["carol"].timestamp is None and "timestamp.txt: 'yesterday-ish' is not a date" in by["carol"].problems[0]
        )
        staging = batch.staging
    finally:
        batch.close()
    assert not staging.exists()


def test_times_are_read_as_nbgrader_reads_them():
    from nbgrader.utils import parse_utc

    for text in (
        "2026-03-01 16:59:00.000000 UTC",
        "2026-03-01 17:59:00 Europe/Paris",
        "2026-03-01T16:59:00",
        "2026-03-01 16:59:00",
        "2026-03-01 18:59:00+02:00",
    ):
        assert nbgrader_layout.parse_time(text) == parse_utc(text) == datetime.datetime(2026, 3, 1, 16, 59), text
    # nbgrader reads a numeric zone as seconds ("+0100" is 100 s); so do we, to agree with its gradebook
    assert nbgrader_layout.parse_time("2026-03-01 17:59:00 +0100") == parse_utc("2026-03-01 17:59:00 +0100")


def test_detect_reads_the_course_and_assignment_from_the_paths(course_dir):
    paths = [course_dir / "submitted" / s / "survey" for s in ("alice", "bob")]
    assert nbgrader_layout.detect(paths) == (course_dir, "survey")
    assert nbgrader_layout.detect([course_dir / "x"]) is None
    (course_dir / "nbgrader_config.py").unlink()  # a folder merely called submitted/ is not nbgrader's
    assert nbgrader_layout.detect(paths) is None
    (course_dir / "source").mkdir()
    with pytest.raises(nbgrader_layout.LayoutError, match="one assignment of one course"):
        nbgrader_layout.detect([*paths, course_dir / "submitted" / "dave" / "gpt3"])
    with pytest.raises(nbgrader_layout.LayoutError, match="no submitted/"):
        nbgrader_layout.find(course_dir / "submitted", "survey")


def test_outputs_are_where_nbgrader_looks(course_dir):
    from nbgrader.coursedir import CourseDirectory

    batch, results = graded_batch(course_dir)
    nbgrader_layout.write_outputs(batch, COURSE, results)
    batch.close()
    coursedir = CourseDirectory(root=str(course_dir))
    for student in ("alice", "bob", "carol"):
        autograded = coursedir.format_path(coursedir.autograded_directory, student, "survey")
        feedback = coursedir.format_path(coursedir.feedback_directory, student, "survey")
        assert os.path.isfile(os.path.join(autograded, "survey.ipynb")), student
        assert os.path.isfile(os.path.join(feedback, "survey.html")), student
    alice = course_dir / "autograded" / "alice" / "survey"
    assert (alice / "survey.py").read_text() == "A = 1\n"  # the graded file, where it was submitted
    assert (course_dir / "autograded" / "bob" / "survey" / "exercises" / "survey.py").read_text() == "B = 2\n"
    assert (alice / "timestamp.txt").read_text().strip() == "2026-03-01 16:59:00.000000 UTC"
    assert (course_dir / "feedback" / "alice" / "survey" / "submission_secret.txt").read_text() == SECRET
    record = json.loads((course_dir / "autograded" / "bob" / "survey" / nbgrader_layout.RESULTS_FILE).read_text())
    assert record["late"] is True and record["seconds_late"] == 25.5 * 3600 and record["student"] == "bob"
    assert record["report"]["topics"][0]["id"] == "survey"
    assert json.loads((alice / nbgrader_layout.RESULTS_FILE).read_text())["late"] is False


def test_feedback_escapes_everything_the_learner_wrote(course_dir):
    (course_dir / "submitted" / "alice" / "survey" / "survey.py").write_text("x = '</pre><script>steal()</script>'\n")
    batch, results = graded_batch(course_dir)
    nbgrader_layout.write_outputs(batch, COURSE, results)
    batch.close()
    page = (course_dir / "feedback" / "alice" / "survey" / "survey.html").read_text()
    assert "<script>" not in page and "<b>printed</b>" not in page
    assert "&lt;script&gt;steal()&lt;/script&gt;" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "3 / 6 points" in page and "(hidden)" in page
    late = (course_dir / "feedback" / "bob" / "survey" / "survey.html").read_text()
    assert "after the due date" in late and "after the due date" not in page


def test_regrading_replaces_the_folders_whole(course_dir):
    batch, results = graded_batch(course_dir)
    nbgrader_layout.write_outputs(batch, COURSE, results)
    stale = course_dir / "feedback" / "alice" / "survey" / "gpt3.html"
    stale.write_text("from an earlier grading")
    results[0].report.problem = "the kit's checks could not be collected"
    results[0].report.topics = []
    nbgrader_layout.write_outputs(batch, COURSE, results)
    batch.close()
    folder = course_dir / "feedback" / "alice" / "survey"
    assert sorted(p.name for p in folder.iterdir()) == ["submission_secret.txt", "survey.html", "timestamp.txt"]
    assert "The autograder failed: the kit&#x27;s checks could not be collected" in (folder / "survey.html").read_text()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_round_trip_through_nbgrader(course_dir, tmp_path, monkeypatch):
    """The gradebook (timestamps, lateness, a notebook per topic), GetGrades on the autograded
    notebook (what generate_feedback runs), formgrader's template, and release_feedback."""
    import nbformat
    from nbconvert.exporters import HTMLExporter
    from nbgrader import api
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
    from nbgrader.preprocessors import GetGrades
    from nbgrader.server_extensions.formgrader import handlers
    from nbgrader.utils import notebook_hash
    from traitlets.config import Config

    # nbconvert's templates live in the share/ of the Python that installed nbconvert
    monkeypatch.setenv("JUPYTER_PATH", str(Path(sys.base_prefix) / "share" / "jupyter"))
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    batch, results = graded_batch(course_dir)
    nbgrader_layout.write_outputs(batch, COURSE, results)
    for graded in results:
        submission = batch.by_student()[graded.student]
        gradebook.record(
            url, graded.student, graded.report, COURSE, assignment="survey", timestamp=submission.timestamp, duedate=DUE
        )
    batch.close()

    with api.Gradebook(url) as gb:
        assert sorted(s.id for s in gb.students) == ["alice", "bob", "carol"]  # never "survey"
        assignment = gb.find_assignment("survey")
        assert assignment.duedate == DUE and [n.name for n in assignment.notebooks] == ["survey"]
        assert gb.find_submission("survey", "alice").total_seconds_late == 0
        assert gb.find_submission("survey", "bob").total_seconds_late == 25.5 * 3600
        assert gb.find_submission("survey", "alice").timestamp == datetime.datetime(2026, 3, 1, 16, 59)
        assert gb.find_submission_notebook("survey", "survey", "alice").score == 3
        notebook_id = gb.find_submission_notebook("survey", "survey", "alice").id

    path = course_dir / "autograded" / "alice" / "survey" / "survey.ipynb"
    notebook = nbformat.read(path, as_version=4)
    resources = {"nbgrader": {"notebook": "survey", "assignment": "survey", "student": "alice", "db_url": url}}
    notebook, resources = GetGrades().preprocess(notebook, resources)
    scores = {
        c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["score"]
        for c in notebook.cells
        if "nbgrader" in c.metadata
    }
    assert scores == {"model_families": 3.0, "causal_lm_labels": 0.0}
    assert resources["nbgrader"]["score"] == 3 and resources["nbgrader"]["max_score"] == 6

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    page, _ = HTMLExporter(config=config).from_filename(
        str(path),
        resources={
            "assignment_id": "survey",
            "notebook_id": "survey",
            "submission_id": notebook_id,
            "index": 0,
            "total": 3,
            "base_url": "",
            "student": "alice",
            "last_name": None,
            "first_name": None,
            "notebook_path": str(path),
        },
    )
    assert "model_families" in page and "causal_lm_labels" in page

    config = Config()
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.course_id = "fm"
    config.CourseDirectory.assignment_id = "survey"
    config.Exchange.root = str(tmp_path / "exchange")
    (tmp_path / "exchange").mkdir()
    # every student, though bob and carol came without a secret and carol's time is unreadable
    ExchangeReleaseFeedback(coursedir=CourseDirectory(config=config), config=config).start()
    exchange = tmp_path / "exchange" / "fm" / "feedback"
    released = exchange / f"{notebook_hash(secret=SECRET, notebook_id='survey')}.html"
    assert released.read_text() == (course_dir / "feedback" / "alice" / "survey" / "survey.html").read_text()
    assert len(list(exchange.glob("*.html"))) == 3  # one page each: none overwrote another


def test_usage_errors_exit_2(course_dir, tmp_path):
    runner = CliRunner()
    base = ["grade", "--kit", str(ROOT)]
    cases = [
        (["--nbgrader", str(course_dir)], "--nbgrader needs --assignment"),
        ([str(tmp_path), "--assignment", "survey"], "--assignment and --due are for nbgrader"),
        ([], "give SUBMISSIONS"),
        ([str(course_dir / "submitted" / "alice" / "survey"), str(tmp_path)], "one assignment of one course"),
        (["--nbgrader", str(tmp_path), "--assignment", "survey"], "no submitted/ folder"),
        (["--nbgrader", str(course_dir), "--assignment", "survey", "--due", "next week"], "not a date"),
    ]
    for args, message in cases:
        result = runner.invoke(cli.main, base + args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


@pytest.mark.slow
def test_grade_command_on_nbgrader_layout(course_dir, tmp_path):
    (course_dir / "submitted" / "alice" / "survey" / "survey.py").write_text(
        (ROOT / "solutions" / "survey.py").read_text()
    )
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    result = CliRunner().invoke(
        cli.main,
        [
            "grade",
            "--nbgrader",
            str(course_dir),
            "--assignment",
            "survey",
            "--kit",
            str(ROOT),
            "--seed",
            "3",
            "--gradebook",
            url,
            "--due",
            "2026-03-01 17:00:00 UTC",
            "--format",
            "json",
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1, result.output
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in summary] == ["student", "alice", "bob", "carol"]
    alice = json.loads((tmp_path / "out" / "alice.json").read_text())
    assert alice["score"] == alice["max_score"] > 0
    assert (course_dir / "feedback" / "carol" / "survey" / "survey.html").is_file()
    from nbgrader import api

    with api.Gradebook(url) as gb:
        assert gb.find_submission("survey", "bob").total_seconds_late > 0
        assert gb.find_submission_notebook("survey", "survey", "alice").score == alice["score"]
    # The same submissions named by path are recognised as nbgrader's layout.
    again = CliRunner().invoke(
        cli.main,
        [
            "grade",
            str(course_dir / "submitted" / "alice" / "survey"),
            "--kit",
            str(ROOT),
            "--seed",
            "3",
            "--format",
            "json",
            "--output",
            str(tmp_path / "again"),
        ],
    )
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["alice.json", "summary.csv"]  # not "survey"


def test_a_submission_without_timestamp_or_secret_gets_what_release_feedback_opens(tmp_path):
    """nbgrader's release_feedback opens timestamp.txt and submission_secret.txt in every
    feedback folder: a student collected without them must not crash it (nor be stamped late)."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
    from traitlets.config import Config

    root = tmp_path / "course"
    submit(root, "erin", files={"survey.py": "E = 5\n"})
    submit(root, "finn", files={"survey.py": "F = 6\n"})
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    batch, results = graded_batch(root)
    assert [s.seconds_late(DUE) for s in batch.submissions] == [0.0, 0.0]
    nbgrader_layout.write_outputs(batch, COURSE, results)
    batch.close()
    folders = [root / "feedback" / student / "survey" for student in ("erin", "finn")]
    assert [(f / "timestamp.txt").read_text() for f in folders] == ["", ""]
    secrets = [(f / "submission_secret.txt").read_text() for f in folders]
    assert all(len(s) == 32 for s in secrets) and secrets[0] != secrets[1]
    assert not (root / "autograded" / "erin" / "survey" / "timestamp.txt").exists()  # unset stays unset

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "fm"
    config.CourseDirectory.assignment_id = "survey"
    config.Exchange.root = str(tmp_path / "exchange")
    (tmp_path / "exchange").mkdir()
    ExchangeReleaseFeedback(coursedir=CourseDirectory(config=config), config=config).start()
    assert len(list((tmp_path / "exchange" / "fm" / "feedback").glob("*.html"))) == 2
