"""Record fmgrade scores in an nbgrader gradebook (`fmgrade ... --gradebook URL --student ID`).

The gradebook is nbgrader's own database, opened through `nbgrader.api.Gradebook(url)`, so
nbgrader's formgrader and `nbgrader export` see fmgrade's scores like any autograded ones.
URL is an SQLAlchemy database URL: `sqlite:///gradebook.db` (the default, relative to the
current folder) or `postgresql://user:password@host:port/db` for a gradebook shared by many
graders.

Mapping, for one `record(url, student, report, course)`:

    fmgrade                      nbgrader
    topic `attention`       ->   assignment `attention`, with one notebook `attention`
    exercise `softmax`      ->   autograded code grade cell `softmax` in that notebook,
                                 max_score = the exercise's max points in the report
    the learner (--student) ->   student (created when new)
    the learner's points    ->   Grade.auto_score of that cell in the student's submission
                                 of the assignment (needs_manual_grade False)

So `nbgrader export` writes one row per topic and student: assignment = topic id,
student_id, raw_score = score = the points on the topic, max_score = the topic's maximum.
Re-grading a student updates the same rows (scores, a cell's max_score when the checks
changed) and never adds new ones. The submission's timestamp is the collected one
(timestamp.txt) and only that: a regrade without one keeps what is there, and a submission
never collected with one stays unset (nbgrader's "not late"), never "now". A score an instructor entered by
hand in formgrader (manual_score) still takes precedence, as with `nbgrader autograde`.
Grade cells are never removed (other students' grades hang off them).

Concurrency: many graders may share one PostgreSQL gradebook. Each call creates any missing
tables under a lock (a PostgreSQL advisory lock; SQLite's exclusive lock), then writes all of
the student's topics in ONE transaction, taking rows in sorted order. When two graders create
the same assignment, cell or student at once, the loser's transaction fails on the unique
constraint, is rolled back and retried (it then finds the winner's rows). Deadlocks,
serialisation failures and SQLite's "database is locked" are retried the same way; each retry
is logged at DEBUG on the `grader.instructor.gradebook` logger.

A bare `postgresql://` URL uses the installed driver (psycopg 3, else psycopg2).

Importing nbgrader costs about 2.4 s, so it (and SQLAlchemy) is imported only inside `record`.
"""

import logging
import random
import re
import time

DEFAULT_URL = "sqlite:///gradebook.db"
ATTEMPTS = 8  # tries of each step before giving up on conflicts
CONNECT_TIMEOUT = 10  # seconds, for PostgreSQL
NAME_LIMIT = 128  # nbgrader's String(128) columns: student id, assignment, notebook, cell names
_LOCK_KEY = 0x666D6772  # "fmgr": the advisory lock that serialises creating the tables

log = logging.getLogger(__name__)


class GradebookError(Exception):
    """The gradebook cannot be opened or written; the message is one line for a person."""


def record(url: str, student: str, report, course, *, assignment=None, timestamp=None, duedate=None) -> None:
    """Record each topic of `report` for `student` in the nbgrader gradebook at `url`.

    With `assignment` (nbgrader's course layout, `grade --nbgrader`), the topics are the
    notebooks of that one nbgrader assignment instead of an assignment each. `timestamp` (naive
    UTC, from the submission's timestamp.txt) is the submission's time, so nbgrader computes
    lateness against the assignment's due date; `duedate` sets that due date.

    Topic ids, exercise ids, points and maxima all come from the report; `course` (a
    grader.course.Course, or None) is not needed for them and is accepted for the CLI's
    convenience. Raises GradebookError (one line, password masked) when the gradebook cannot
    be opened or written.
    """
    url = url or DEFAULT_URL
    shown = mask_url(url)
    student = _check_name(student, "student id", shown)
    if assignment is not None:
        assignment = _check_name(assignment, "assignment", shown)
    topics = _plan(report, shown)
    try:
        from nbgrader import api
        from sqlalchemy import exc as sa_exc
    except ImportError as exc:  # `grade` checks first (grader.instructor.extras); this is for other callers
        raise GradebookError(
            f"gradebook {shown}: nbgrader is not installed ({exc}): pip install 'fmgrade[instructor]'"
        ) from None

    gradebook = _retry(url, "open", lambda: _open(url, api), api, sa_exc)
    try:
        _retry(
            url,
            f"record the scores of '{student}'",
            lambda: _write(gradebook, api, student, topics, assignment, timestamp, duedate),
            api,
            sa_exc,
            undo=gradebook.db.rollback,
        )
    finally:
        try:
            gradebook.close()
        except Exception:  # closing a broken connection must not hide the real error
            pass


def check(url):
    """Open the gradebook at `url` (creating its tables when new) and close it: a batch calls
    this before grading, so an unreachable or wrong URL fails at once, not after the grading.
    Raises GradebookError."""
    url = url or DEFAULT_URL
    try:
        from nbgrader import api
        from sqlalchemy import exc as sa_exc
    except ImportError as exc:
        raise GradebookError(
            f"gradebook {mask_url(url)}: nbgrader is not installed ({exc}): pip install 'fmgrade[instructor]'"
        ) from None
    gradebook = _retry(url, "open", lambda: _open(url, api), api, sa_exc)
    try:
        gradebook.close()
    except Exception:
        pass


def mask_url(url):
    """`url` with any password replaced by ***, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", str(url))


# --- What to write ---------------------------------------------------------------------


def _plan(report, shown):
    """[(topic id, [(exercise id, score, max_score), ...]), ...], in a fixed (sorted) order so
    that concurrent graders take row locks in the same order and cannot deadlock."""
    topics = {}
    for topic in report.topics:
        name = _check_name(topic.id, "topic id", shown)
        topics[name] = [
            (_check_name(s.id, "exercise id", shown), float(s.score), float(s.max_score)) for s in topic.exercises()
        ]
    return [(name, sorted(topics[name])) for name in sorted(topics)]


def _check_name(value, what, shown):
    text = str(value).strip() if value is not None else ""
    if not text:
        raise GradebookError(f"gradebook {shown}: the {what} is empty")
    if len(text) > NAME_LIMIT:
        raise GradebookError(f"gradebook {shown}: the {what} '{text[:40]}...' is longer than {NAME_LIMIT} characters")
    return text


# --- Opening ---------------------------------------------------------------------------


def _open(url, api):
    """Create missing tables (once, race-free), then open nbgrader's Gradebook."""
    url = with_driver(url)
    _prepare(url, api, "default_course")
    return api.Gradebook(url)  # finds tables, alembic version and course: only reads


def with_driver(url):
    """`url`, with a bare `postgresql://` pinned to the PostgreSQL driver that is installed
    (psycopg 3, else psycopg2): SQLAlchemy's default for it differs between 2.0 and 2.1."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername != "postgresql":
        return url
    for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        try:
            __import__(module)
        except ImportError:
            continue
        return parsed.set(drivername=driver).render_as_string(hide_password=False)
    return url  # SQLAlchemy's own error then names the missing driver


def _prepare(url, api, course_id):
    """What `Gradebook(url)` does on a new database, but safe against a concurrent grader (under
    a PostgreSQL advisory lock, or SQLite's exclusive lock), and without running the `alembic`
    command (which need not be on PATH)."""
    from sqlalchemy import create_engine, inspect, select, text
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    engine = _engine(url, create_engine)
    if backend == "sqlite":  # the driver then sends no BEGIN of its own: ours holds the lock
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if _ready(conn, inspect, select, api, course_id):
                return
        with engine.connect() as conn:
            if backend == "sqlite":
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            elif backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            fresh = not inspect(conn).get_table_names()
            api.Base.metadata.create_all(conn)
            if fresh:
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": _alembic_head()})
            if conn.execute(select(api.Course.id).where(api.Course.id == course_id)).first() is None:
                conn.execute(api.Course.__table__.insert().values(id=course_id))
            if backend == "sqlite":
                conn.exec_driver_sql("COMMIT")
            else:
                conn.commit()
    finally:
        engine.dispose()


def _engine(url, create_engine):
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    options = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return create_engine(parsed, **options)


def _ready(conn, inspect, select, api, course_id):
    tables = set(inspect(conn).get_table_names())
    if not set(api.Base.metadata.tables) <= tables or "alembic_version" not in tables:
        return False
    return conn.execute(select(api.Course.id).where(api.Course.id == course_id)).first() is not None


def _alembic_head():
    """The revision `nbgrader db upgrade` expects a current database to be stamped with."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


# --- Writing ---------------------------------------------------------------------------


def _write(gb, api, student_id, topics, assignment=None, timestamp=None, duedate=None):
    """Everything for one student in one transaction; rolled back on any error."""
    db = gb.db
    try:
        student = db.get(api.Student, student_id)
        if student is None:
            student = api.Student(id=student_id)
            db.add(student)
        for topic_id, exercises in topics:
            _write_topic(gb, api, student, assignment or topic_id, topic_id, exercises, timestamp, duedate)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _write_topic(gb, api, student, assignment_id, topic_id, exercises, timestamp, duedate=None):
    db = gb.db
    try:
        assignment = gb.find_assignment(assignment_id)
    except api.MissingEntry:
        assignment = api.Assignment(name=assignment_id, course_id=gb.course_id)
        db.add(assignment)
    if duedate is not None and assignment.duedate != duedate:
        assignment.duedate = duedate
    notebook = next((n for n in assignment.notebooks if n.name == topic_id), None)
    if notebook is None:
        notebook = api.Notebook(name=topic_id, assignment=assignment)
        db.add(notebook)
    cells = {c.name: c for c in notebook.grade_cells}
    for exercise_id, _, max_score in exercises:
        cell = cells.get(exercise_id)
        if cell is None:
            cells[exercise_id] = cell = api.GradeCell(
                name=exercise_id, notebook=notebook, max_score=max_score, cell_type="code"
            )
            db.add(cell)
        elif cell.max_score != max_score:
            cell.max_score = max_score

    try:
        submission = gb.find_submission(assignment_id, student.id)
        if timestamp is not None:  # a collected time is a fact: a regrade without one keeps it
            submission.timestamp = timestamp
    except api.MissingEntry:  # no timestamp: unset, as nbgrader leaves it (not late)
        submission = api.SubmittedAssignment(assignment=assignment, student=student, timestamp=timestamp)
        db.add(submission)
    submitted = next((n for n in submission.notebooks if n.notebook is notebook), None)
    if submitted is None:
        submitted = api.SubmittedNotebook(notebook=notebook, assignment=submission)
        db.add(submitted)
    db.flush()  # ids for the new cells, so grades can be matched to cells by id

    grades = {g.cell_id: g for g in submitted.grades}
    scores = {exercise_id: score for exercise_id, score, _ in exercises}
    for name, cell in sorted(cells.items()):
        grade = grades.get(cell.id)
        if grade is None:  # as add_submission does: a grade for every cell of the notebook
            grade = api.Grade(cell_id=cell.id, notebook=submitted, auto_score=0.0, needs_manual_grade=False)
            db.add(grade)
        if name in scores:
            grade.auto_score = scores[name]
            grade.needs_manual_grade = grade.manual_score is not None  # as nbgrader's SaveAutoGrades


# --- Errors and retries ----------------------------------------------------------------


def _retry(url, doing, step, api, sa_exc, undo=None):
    """Run `step`, retrying conflicts with a concurrent grader; database errors become one line
    ("gradebook URL: cannot DOING: why"), anything else (a bug) keeps its traceback."""
    shown = mask_url(url)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return step()
        except Exception as exc:
            if not isinstance(exc, (sa_exc.SQLAlchemyError, ImportError, api.InvalidEntry)):
                raise  # a bug, not the database: keep its traceback
            if not _conflict(exc, api, sa_exc) or attempt == ATTEMPTS:
                problem = _describe(exc, sa_exc, url)
                if _conflict(exc, api, sa_exc):
                    problem = f"still conflicting with other writers after {ATTEMPTS} attempts: {problem}"
                raise GradebookError(f"gradebook {shown}: cannot {doing}: {problem}") from None
            log.debug(
                "gradebook %s: conflict with another writer (attempt %d/%d), retrying: %s",
                shown,
                attempt,
                ATTEMPTS,
                _first_line(exc),
            )
            if undo is not None:
                try:
                    undo()
                except Exception:
                    pass
            time.sleep(random.uniform(0.02, 0.1) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _conflict(exc, api, sa_exc):
    """A failure that another writer caused and that succeeds when tried again."""
    if isinstance(exc, (sa_exc.IntegrityError, api.InvalidEntry)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
        if code in ("40001", "40P01"):  # serialization failure, deadlock detected
            return True
        if "database is locked" in str(orig):  # SQLite, another writer holds the file
            return True
    return False


def _describe(exc, sa_exc, url):
    if isinstance(exc, sa_exc.NoSuchModuleError):
        text = f"not a database SQLAlchemy knows ({_first_line(exc)})"
    elif isinstance(exc, sa_exc.ArgumentError):
        text = f"not a database URL ({_first_line(exc)}); expected e.g. {DEFAULT_URL} or postgresql://user:password@host:5432/db"
    elif isinstance(exc, ImportError):
        text = f"no driver for this database ({exc}); for PostgreSQL: pip install 'psycopg[binary]'"
    elif isinstance(exc, sa_exc.OperationalError):
        text = _first_line(exc.orig)
    elif isinstance(exc, sa_exc.DBAPIError):
        text = f"{type(exc.orig).__name__}: {_first_line(exc.orig)}"
    else:
        text = f"database error: {_first_line(exc)}"
    return _hide_password(text, url)


def _first_line(exc):
    """The message of `exc` on one line, without SQLAlchemy's SQL and background-link noise."""
    text = str(exc)
    text = text.split("\n[SQL:")[0].split("\n(Background on this error")[0]
    return " ".join(text.split()) or type(exc).__name__


def _hide_password(text, url):
    """Defensive: a driver's message never repeats the password, but if one did, mask it."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        match = re.search(r"://[^/@:]*:([^@/]*)@", str(url))
        password = match.group(1) if match else None
    return text.replace(str(password), "***") if password else text
