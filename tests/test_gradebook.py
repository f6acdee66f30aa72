"""grader.instructor.gradebook: fmgrade scores in an nbgrader gradebook, read back through nbgrader itself.

SQLite tests always run. PostgreSQL tests use $FMGRADE_TEST_POSTGRES_URL (set by .ci/run);
without it they try the cluster .ci/run sets up on this machine and skip when none answers.
Each PostgreSQL test works in a schema of its own, dropped afterwards.
"""

import csv
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from grader.course import Course, Exercise, Topic
from grader.instructor import gradebook
from grader.instructor.gradebook import GradebookError
from grader.results import FAILED, NOT_STARTED, PASSED, CheckResult, Report, TopicResult

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "FMGRADE_TEST_POSTGRES_URL"
POSTGRES_LOCAL = "postgresql://fmgrade:fmgrade-ci@127.0.0.1:54329/fmgrade_test"  # what .ci/run sets up

# topic -> exercise -> max points; every exercise has a visible and a hidden check
OUTLINE = {
    "attention": {"softmax": 3.0, "mask": 2.0, "multihead": 5.0},
    "scaling": {"fit": 4.0, "chinchilla": 2.0},
}


def make_report(points):
    """A Report as the grader would build it: {topic: {exercise: points}} out of OUTLINE's maxima.
    Each exercise has two checks (visible 1/3, hidden 2/3 of its points)."""
    topics = []
    for topic_id, exercises in points.items():
        checks = []
        for exercise_id, score in exercises.items():
            top = OUTLINE[topic_id][exercise_id]
            visible = min(score, top / 3)
            status = PASSED if score == top else (NOT_STARTED if score == 0 else FAILED)
            checks.append(
                CheckResult(
                    f"test_{exercise_id}_shape", exercise_id, PASSED if visible == top / 3 else status, visible, top / 3
                )
            )
            checks.append(
                CheckResult(
                    f"test_{exercise_id}_values", exercise_id, status, score - visible, top * 2 / 3, hidden=True
                )
            )
        topics.append(TopicResult(topic_id, checks))
    return Report(topics)


def make_course():
    topics = tuple(
        Topic(id=t, title=t.title(), section="s", exercises=tuple(Exercise(e, f"do {e}") for e in exercises))
        for t, exercises in OUTLINE.items()
    )
    return Course(root=ROOT, title="test course", sections=(), topics=topics)


ALICE = {"attention": {"softmax": 3.0, "mask": 1.0, "multihead": 0.0}, "scaling": {"fit": 4.0, "chinchilla": 2.0}}
BOB = {"attention": {"softmax": 2.0, "mask": 2.0, "multihead": 5.0}, "scaling": {"fit": 0.0, "chinchilla": 1.0}}


def expected_rows(students):
    """{(assignment, student): (score, max_score)} as nbgrader's export should list them."""
    return {
        (topic, student): (sum(exercises.values()), sum(OUTLINE[topic].values()))
        for student, points in students.items()
        for topic, exercises in points.items()
    }


def export_rows(url, tmp_path):
    """The rows of nbgrader's CSV export (its CsvExportPlugin, in-process)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    dest = tmp_path / f"grades-{uuid.uuid4().hex[:6]}.csv"
    with Gradebook(url) as gb:
        CsvExportPlugin(to=str(dest)).export(gb)
    return list(csv.DictReader(dest.open()))


def as_scores(rows):
    return {(r["assignment"], r["student_id"]): (float(r["score"]), float(r["max_score"])) for r in rows}


def table_counts(url):
    from nbgrader import api

    with api.Gradebook(url) as gb:
        return {
            model.__name__: gb.db.query(model).count()
            for model in (
                api.Assignment,
                api.Notebook,
                api.GradeCell,
                api.Student,
                api.SubmittedAssignment,
                api.SubmittedNotebook,
                api.Grade,
            )
        }


def check_gradebook(url, students):
    """Every score, maximum and flag as nbgrader's API reports them."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        assert sorted(a.name for a in gb.assignments) == sorted(OUTLINE)
        assert sorted(s.id for s in gb.students) == sorted(students)
        for topic, exercises in OUTLINE.items():
            assignment = gb.find_assignment(topic)
            assert assignment.max_score == sum(exercises.values())
            assert [n.name for n in assignment.notebooks] == [topic]
            for exercise, top in exercises.items():
                cell = gb.find_grade_cell(exercise, topic, topic)
                assert (cell.max_score, cell.cell_type) == (top, "code")
        for student, points in students.items():
            assert gb.find_student(student).score == sum(sum(e.values()) for e in points.values())
            for topic, exercises in points.items():
                submission = gb.find_submission(topic, student)
                assert submission.score == sum(exercises.values())
                assert submission.max_score == sum(OUTLINE[topic].values())
                assert not submission.needs_manual_grade
                for exercise, score in exercises.items():
                    grade = gb.find_grade(exercise, topic, topic, student)
                    assert (grade.auto_score, grade.max_score, grade.needs_manual_grade) == (
                        score,
                        OUTLINE[topic][exercise],
                        False,
                    )


# --- SQLite ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'gradebook.db'}"


def test_record_reads_back_through_nbgrader(sqlite_url, tmp_path):
    gradebook.record(sqlite_url, "alice", make_report(ALICE), make_course())
    check_gradebook(sqlite_url, {"alice": ALICE})
    rows = export_rows(sqlite_url, tmp_path)
    assert as_scores(rows) == expected_rows({"alice": ALICE})
    # no collected time (timestamp.txt): unset, as nbgrader leaves it, so never late
    assert all(r["timestamp"] in ("", "None") and r["late_submission_penalty"] == "0.0" for r in rows)


def test_a_collected_time_is_a_fact_a_regrade_never_rewrites(sqlite_url):
    """An on-time student stays on time when graded again, with or without the time."""
    import datetime

    from nbgrader.api import Gradebook

    collected = datetime.datetime(2026, 3, 1, 16, 59)
    due = datetime.datetime(2026, 3, 1, 17, 0)
    course = make_course()
    gradebook.record(
        sqlite_url, "alice", make_report(ALICE), course, assignment="hw1", timestamp=collected, duedate=due
    )
    gradebook.record(sqlite_url, "alice", make_report(ALICE), course, assignment="hw1", duedate=due)  # a regrade
    gradebook.record(sqlite_url, "bob", make_report(BOB), course, assignment="hw1", duedate=due)  # no timestamp.txt
    with Gradebook(sqlite_url) as gb:
        alice, bob = gb.find_submission("hw1", "alice"), gb.find_submission("hw1", "bob")
        assert (alice.timestamp, alice.total_seconds_late) == (collected, 0)
        assert (bob.timestamp, bob.total_seconds_late) == (None, 0)
    later = datetime.datetime(2026, 3, 2, 17, 0)  # collected again, late this time: that is a fact too
    gradebook.record(sqlite_url, "alice", make_report(ALICE), course, assignment="hw1", timestamp=later, duedate=due)
    with Gradebook(sqlite_url) as gb:
        assert gb.find_submission("hw1", "alice").total_seconds_late == 24 * 3600


def test_check_opens_the_gradebook_or_says_why(sqlite_url, tmp_path):
    gradebook.check(sqlite_url)
    assert table_counts(sqlite_url)["Student"] == 0
    with pytest.raises(GradebookError, match="cannot open"):
        gradebook.check(f"sqlite:///{tmp_path / 'no' / 'such' / 'gradebook.db'}")


def test_regrading_updates_scores_and_adds_no_rows(sqlite_url, tmp_path):
    gradebook.record(sqlite_url, "alice", make_report(ALICE), make_course())
    before = table_counts(sqlite_url)
    assert before == {
        "Assignment": 2,
        "Notebook": 2,
        "GradeCell": 5,
        "Student": 1,
        "SubmittedAssignment": 2,
        "SubmittedNotebook": 2,
        "Grade": 5,
    }
    gradebook.record(sqlite_url, "alice", make_report(BOB), make_course())  # alice improved to BOB's points
    assert table_counts(sqlite_url) == before
    check_gradebook(sqlite_url, {"alice": BOB})
    assert as_scores(export_rows(sqlite_url, tmp_path)) == expected_rows({"alice": BOB})


def test_two_students_each_keep_their_scores(sqlite_url, tmp_path):
    gradebook.record(sqlite_url, "alice", make_report(ALICE), make_course())
    gradebook.record(sqlite_url, "bob", make_report(BOB), None)  # course is optional
    check_gradebook(sqlite_url, {"alice": ALICE, "bob": BOB})
    assert as_scores(export_rows(sqlite_url, tmp_path)) == expected_rows({"alice": ALICE, "bob": BOB})
    assert table_counts(sqlite_url)["Grade"] == 10


def test_a_topic_graded_later_joins_the_student_row(sqlite_url):
    """Grading one topic, then another: the second adds its assignment, the first is untouched."""
    gradebook.record(sqlite_url, "alice", make_report({"attention": ALICE["attention"]}), make_course())
    gradebook.record(sqlite_url, "alice", make_report({"scaling": ALICE["scaling"]}), make_course())
    check_gradebook(sqlite_url, {"alice": ALICE})


def test_changed_maximum_updates_the_grade_cell(sqlite_url):
    from nbgrader.api import Gradebook

    gradebook.record(sqlite_url, "alice", make_report(ALICE), make_course())
    report = make_report(ALICE)
    report.topics[0].checks.append(CheckResult("test_softmax_extra", "softmax", PASSED, 1.0, 1.0))
    gradebook.record(sqlite_url, "alice", report, make_course())
    with Gradebook(sqlite_url) as gb:
        assert gb.find_grade_cell("softmax", "attention", "attention").max_score == 4.0
        assert gb.find_grade("softmax", "attention", "attention", "alice").auto_score == 4.0
        assert gb.find_assignment("attention").max_score == 11.0


def test_fresh_gradebook_is_stamped_for_nbgrader_db_upgrade(sqlite_url):
    """A new database gets nbgrader's alembic revision, as `Gradebook(url)` itself would do."""
    from sqlalchemy import create_engine, text

    gradebook.record(sqlite_url, "alice", make_report(ALICE), None)
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            gradebook._alembic_head()
        ]
    engine.dispose()


def test_nbgrader_export_command_lists_the_scores(sqlite_url, tmp_path):
    """`nbgrader export --db URL` as an instructor runs it (about 3 s: nbgrader's start-up)."""
    gradebook.record(sqlite_url, "alice", make_report(ALICE), make_course())
    gradebook.record(sqlite_url, "bob", make_report(BOB), make_course())
    out = tmp_path / "export.csv"
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--db={sqlite_url}", f"--to={out}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == [
        "assignment",
        "duedate",
        "timestamp",
        "student_id",
        "last_name",
        "first_name",
        "email",
        "raw_score",
        "late_submission_penalty",
        "score",
        "max_score",
    ]
    assert as_scores(rows) == expected_rows({"alice": ALICE, "bob": BOB})


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:////no/such/folder/gradebook.db", "cannot open: unable to open database file"),
        ("not a url", "cannot open: not a database URL"),
        ("mysqlx://user:pw@localhost/db", "cannot open: not a database SQLAlchemy knows"),
        ("postgresql://fmgrade:s3cret-pw@127.0.0.1:1/grades", "cannot open: connection failed"),
    ],
)
def test_bad_url_is_one_line_without_the_password(url, expected):
    with pytest.raises(GradebookError) as caught:
        gradebook.record(url, "alice", make_report(ALICE), None)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message and "Traceback" not in message
    assert "s3cret-pw" not in message and "pw@" not in message
    assert gradebook.mask_url(url) in message
    if "@" in url:
        assert ":***@" in message


def test_empty_student_is_refused(sqlite_url):
    with pytest.raises(GradebookError, match="student id is empty"):
        gradebook.record(sqlite_url, "  ", make_report(ALICE), None)


def test_importing_the_module_imports_neither_nbgrader_nor_sqlalchemy():
    code = "import sys, grader.instructor.gradebook; print(sorted(m for m in ('nbgrader', 'sqlalchemy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- PostgreSQL ------------------------------------------------------------------------


def _connect(url, timeout):
    """A SQLAlchemy engine and an autocommit connection to `url`."""
    from sqlalchemy import create_engine

    engine = create_engine(
        gradebook.with_driver(url), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": timeout}
    )
    return engine, engine.connect()


@pytest.fixture(scope="session")
def postgres_server():
    url = os.environ.get(POSTGRES_ENV)
    if url:  # in CI: a missing driver or a dead server fails, never skips
        engine, conn = _connect(url, 10)
    else:
        try:
            engine, conn = _connect(POSTGRES_LOCAL, 3)
        except Exception:
            pytest.skip(f"no PostgreSQL: set {POSTGRES_ENV} (.ci/run sets up a local server)")
        url = POSTGRES_LOCAL
    conn.close()
    engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server):
    """The server's URL with a fresh, empty schema first on the search path."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    schema = f"fmgrade_test_{uuid.uuid4().hex[:10]}"
    engine, conn = _connect(postgres_server, 10)
    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.close()
        engine.dispose()


def test_postgres_record_reads_back(postgres_url, tmp_path):
    gradebook.record(postgres_url, "alice", make_report(ALICE), make_course())
    gradebook.record(postgres_url, "bob", make_report(BOB), make_course())
    before = table_counts(postgres_url)
    gradebook.record(postgres_url, "alice", make_report(BOB), make_course())
    assert table_counts(postgres_url) == before
    check_gradebook(postgres_url, {"alice": BOB, "bob": BOB})
    assert as_scores(export_rows(postgres_url, tmp_path)) == expected_rows({"alice": BOB, "bob": BOB})


def test_postgres_wrong_password_is_one_line(postgres_server):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server).set(password="wrong-s3cret").render_as_string(hide_password=False)
    with pytest.raises(GradebookError) as caught:
        gradebook.record(url, "alice", make_report(ALICE), None)
    message = str(caught.value)
    assert "password authentication failed" in message
    assert "wrong-s3cret" not in message and "\n" not in message


def test_postgres_unique_conflict_is_rolled_back_and_retried(postgres_url, caplog):
    """Deterministic race: another grader has inserted assignment `attention` but not committed.
    record() blocks on the unique index, fails when the other commits, rolls back, retries and
    then completes the other grader's assignment instead of duplicating it."""
    from nbgrader import api
    from sqlalchemy import text

    caplog.set_level(logging.DEBUG, logger="grader.instructor.gradebook")
    gradebook.record(postgres_url, "bob", make_report({"scaling": BOB["scaling"]}), None)  # tables exist
    other = api.Gradebook(gradebook.with_driver(postgres_url))
    assignment = api.Assignment(name="attention", course_id=other.course_id)
    other.db.add_all([assignment, api.Notebook(name="attention", assignment=assignment)])
    other.db.flush()  # inserted, not committed: holds the unique key

    outcome = []

    def grade_alice():
        try:
            gradebook.record(postgres_url, "alice", make_report(ALICE), make_course())
            outcome.append("ok")
        except Exception as exc:  # reported by the assertion below
            outcome.append(repr(exc))

    thread = threading.Thread(target=grade_alice)
    thread.start()
    engine, conn = _connect(postgres_url, 10)
    deadline = time.monotonic() + 30
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    while conn.execute(text(waiting)).scalar() == 0:  # until record() is blocked on our row
        assert time.monotonic() < deadline and thread.is_alive(), outcome
        time.sleep(0.02)
    conn.close()
    engine.dispose()
    other.db.commit()
    other.close()
    thread.join(60)

    assert outcome == ["ok"]
    assert any("conflict with another writer" in r.getMessage() for r in caplog.records)
    check_gradebook(postgres_url, {"alice": ALICE, "bob": {"scaling": BOB["scaling"]}})
    assert table_counts(postgres_url)["Assignment"] == 2


WORKER = textwrap.dedent("""
    import json, logging, os, sys, time
    sys.path.insert(0, sys.argv[1])
    import test_gradebook as t
    from grader.instructor import gradebook
    import nbgrader.api, sqlalchemy  # the slow imports, before the start line

    conflicts = []
    class Count(logging.Handler):
        def emit(self, record):
            conflicts.append(record.getMessage())
    logging.getLogger("grader.instructor.gradebook").addHandler(Count())
    logging.getLogger("grader.instructor.gradebook").setLevel(logging.DEBUG)

    url, ready, go, jobs = sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
    open(ready, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.001)
    for student, points in jobs:
        gradebook.record(url, student, t.make_report(points), t.make_course())
    print(json.dumps({"conflicts": len(conflicts)}))
""")


def _points(n):
    """Distinct, valid points for student number n."""
    return {
        topic: {e: float((n + i) % (int(top) + 1)) for i, (e, top) in enumerate(exercises.items())}
        for topic, exercises in OUTLINE.items()
    }


@pytest.mark.slow
def test_sqlite_two_graders_at_once(sqlite_url, tmp_path):
    two_graders_at_once(sqlite_url, tmp_path)


@pytest.mark.slow
def test_postgres_two_graders_at_once(postgres_url, tmp_path):
    two_graders_at_once(postgres_url, tmp_path)


def two_graders_at_once(url, tmp_path):
    """Two grader processes start together on an EMPTY gradebook: both create the tables, the
    same assignments and grade cells, and write the same shared student, at the same moment.
    Afterwards every row is there exactly once, with the right scores."""
    shared = ("shared", _points(99))
    jobs = [
        [("a0", _points(0)), shared, ("a1", _points(1)), ("a2", _points(2))],
        [("b0", _points(5)), shared, ("b1", _points(6)), ("b2", _points(7))],
    ]
    go = tmp_path / "go"
    procs, readies = [], []
    for i, job in enumerate(jobs):
        ready = tmp_path / f"ready{i}"
        readies.append(ready)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(Path(__file__).parent), url, str(ready), str(go), json.dumps(job)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        )
    deadline = time.monotonic() + 90
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
            p.communicate() for p in procs if p.poll() is not None
        ]
        time.sleep(0.01)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    print("conflicts retried by each grader:", [r["conflicts"] for r in results])

    students = dict(s for job in jobs for s in job)
    check_gradebook(url, students)
    counts = table_counts(url)
    assert counts == {
        "Assignment": 2,
        "Notebook": 2,
        "GradeCell": 5,
        "Student": 7,
        "SubmittedAssignment": 14,
        "SubmittedNotebook": 14,
        "Grade": 35,
    }
    assert as_scores(export_rows(url, tmp_path)) == expected_rows(students)
