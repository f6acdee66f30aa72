"""Submissions read back from an nbgrader gradebook that `fmgrade grade --gradebook` wrote.

grader.instructor.gradebook records one assignment per topic and one autograded cell per exercise, so a
gradebook holds each student's points per exercise and nothing else: no check results, named
mistakes, time-outs, isolation level or seed. An exercise counts as passed when it has all its
points, otherwise failed. A score entered by hand in formgrader takes precedence, as in nbgrader.

The gradebook is only read: it is queried with nbgrader's table definitions over a plain
SQLAlchemy connection (nbgrader's Gradebook class would create missing tables and run
migrations), and a SQLite file that does not exist is an error, not a new empty database.
"""

from pathlib import Path

from grader.instructor.classreport.load import ExerciseOutcome, Submission, TopicOutcome
from grader.instructor.gradebook import GradebookError, mask_url, with_driver
from grader.results import FAILED, PASSED

VERSION = "gradebook"  # a gradebook does not record the course version


def read(url):
    """One Submission per student, with a topic per assignment they have grades in."""
    shown = mask_url(url)
    try:
        from nbgrader import api
        from sqlalchemy import create_engine, inspect, select
        from sqlalchemy import exc as sa_exc
        from sqlalchemy.engine import make_url
    except ImportError as exc:  # pragma: no cover - nbgrader is a dependency
        raise GradebookError(f"gradebook {shown}: nbgrader is not installed ({exc}): pip install nbgrader") from None
    try:
        parsed = make_url(url)
        if (
            parsed.get_backend_name() == "sqlite"
            and parsed.database not in (None, "", ":memory:")
            and not Path(parsed.database).is_file()
        ):
            raise GradebookError(f"gradebook {shown}: no such file {parsed.database}")
        engine = create_engine(with_driver(url))
        try:
            with engine.connect() as conn:
                if "grade" not in inspect(conn).get_table_names():
                    raise GradebookError(f"gradebook {shown}: not an nbgrader gradebook (it has no grade table)")
                query = (
                    select(
                        api.SubmittedAssignment.student_id,
                        api.Assignment.name,
                        api.GradeCell.name,
                        api.Grade.auto_score,
                        api.Grade.manual_score,
                        api.GradeCell.max_score,
                    )
                    .select_from(api.Grade)
                    .join(api.GradeCell, api.GradeCell.id == api.Grade.cell_id)
                    .join(api.SubmittedNotebook, api.SubmittedNotebook.id == api.Grade.notebook_id)
                    .join(api.SubmittedAssignment, api.SubmittedAssignment.id == api.SubmittedNotebook.assignment_id)
                    .join(api.Assignment, api.Assignment.id == api.SubmittedAssignment.assignment_id)
                    .order_by(api.SubmittedAssignment.student_id, api.Assignment.name, api.GradeCell.name)
                )
                rows = conn.execute(query).all()
        finally:
            engine.dispose()
    except sa_exc.SQLAlchemyError as exc:
        raise GradebookError(
            f"gradebook {shown}: cannot read: {' '.join(str(exc).split('[SQL:')[0].split())}"
        ) from None
    return _submissions(rows, shown)


def _submissions(rows, shown):
    students = {}  # student -> topic -> [ExerciseOutcome]
    for student, topic, exercise, auto, manual, top in rows:
        score = manual if manual is not None else (auto or 0.0)
        top = top or 0.0
        status = PASSED if top > 0 and score >= top else FAILED
        students.setdefault(student, {}).setdefault(topic, []).append(
            ExerciseOutcome(exercise, status, float(score), float(top))
        )
    return [
        Submission(
            student,
            f"{shown} (student {student})",
            VERSION,
            [
                TopicOutcome(topic, sum(e.score for e in ex), sum(e.max_score for e in ex), ex, [])
                for topic, ex in topics.items()
            ],
        )
        for student, topics in students.items()
    ]
