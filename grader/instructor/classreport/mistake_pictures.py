"""The picture of a named mistake's result beside the expected one, for the class report.

For an exercise that has a `fmgrade show` picture (grader.learner.pictures), the report shows
what its most frequent named mistake returns: the course's solution with that mistake applied
(tests/mutants/<topic>/mutants.yml), run in this process (it is the course's own code), drawn
against the recorded expected answers, inlined as a PNG data URL (the page's CSP allows only
`data:` images).
"""

import base64
import html
import tempfile
from pathlib import Path

from grader.course import CourseError
from grader.instructor import mutants
from grader.learner import pictures


def picture_html(course, topic_id, exercise_id, mistake_id):
    """A <figure> of the mistake's picture, or "" when there is none to draw (no picture for the
    exercise, no solutions here, an unknown mistake, no matplotlib, or its code raised)."""
    chosen = [p for p in pictures.PICTURES if p.topic == topic_id and p.exercise == exercise_id]
    if course is None or not chosen or not course.solution_path(topic_id).is_file():
        return ""
    try:
        pictures.require_matplotlib()
        known = [m for m in mutants.load(course, topic_id) if m.id == mistake_id]
    except (pictures.PicturesUnavailable, CourseError, OSError):
        return ""
    if not known:
        return ""
    expected = pictures.expected_answers(course, topic_id)
    with tempfile.TemporaryDirectory(prefix="fmgrade-mistake-") as scratch:
        path = mutants.write_mutant(course, topic_id, known[0], Path(scratch))
        try:
            module = pictures.TrustedModule.from_file(path, f"report_mistake_{topic_id}_{mistake_id}")
        except Exception:  # noqa: BLE001 - a mutant that does not import has no picture
            return ""
        figures = []
        for picture in chosen:
            drawn = pictures.gather(picture, module, expected)
            if drawn.problem:
                continue
            encoded = base64.b64encode(pictures.png(drawn, caption=f" (mistake {mistake_id})")).decode("ascii")
            caption = html.escape(f"What {mistake_id} returns (yours) beside the expected result: {picture.title}")
            figures.append(
                f'<figure><img src="data:image/png;base64,{encoded}" alt="{caption}" style="max-width:100%">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    return "".join(figures)
