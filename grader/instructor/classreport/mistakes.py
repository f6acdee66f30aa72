"""What each known mistake means, from the course's mutants files (tests/mutants/<topic>/)."""

from grader.course import CourseError
from grader.instructor import mutants


def messages(course):
    """({(topic id, mistake id): text}, [problem, ...]). The text is the mutant's learner
    message when its file has one, else its one-line description. A topic whose mutants file
    cannot be read is named in the problems; the report then shows that topic's mistake ids."""
    found, problems = {}, []
    if course is None:
        return found, problems
    for topic in course.topics:
        try:
            known = mutants.load(course, topic.id)
        except (CourseError, OSError, UnicodeDecodeError) as exc:
            problems.append(f"{topic.id}: cannot read its known mistakes: {exc}")
            continue
        for mutant in known:
            found[(topic.id, mutant.id)] = getattr(mutant, "message", "") or mutant.mistake
    return found, problems
