"""`fmgrade check TOPIC [EXERCISE...]`: the learner's own code against the topic's visible checks."""

from grader import catalog as checks_index
from grader.course import CourseError
from grader.judge import runner


def check_topic(course, topic_id, exercises=(), *, seed=None, isolation="auto"):
    """Run the visible checks of `topic_id` (only those of `exercises` when given) on the
    learner's file. The result's `not_run` names the exercises left out, with their points."""
    topic = course.topic(topic_id)
    if not course.available(topic.id):
        raise CourseError(f"topic '{topic.id}' ({topic.title}) is not available yet in this course")
    only, not_run = select(course, topic, exercises)
    result = runner.run_topic(
        course,
        topic.id,
        course.exercise_path(topic.id),
        hidden=False,
        seed=seed,
        only=only,
        root=course.root,
        isolation=isolation,
    )
    result.not_run = not_run
    return result


def select(course, topic, exercise_ids):
    """(check ids to run, {exercise id: visible points} of the exercises left out); ((), {})
    for the whole topic. An unknown exercise is a CourseError naming the topic's exercises."""
    chosen = list(dict.fromkeys(exercise_ids))
    if not chosen or set(chosen) == {e.id for e in topic.exercises}:
        return (), {}
    for exercise_id in chosen:
        topic.exercise(exercise_id)
    visible = {
        exercise: [c for c in infos if not c.hidden]
        for exercise, infos in checks_index.scan(course.checks_dir(topic.id)).items()
    }
    only = tuple(f"{c.file}::{c.name}" for exercise_id in chosen for c in visible.get(exercise_id, []))
    if not only:
        raise CourseError(f"topic '{topic.id}': exercise(s) {', '.join(chosen)} have no visible checks to run")
    not_run = {e.id: sum(c.points for c in visible.get(e.id, [])) for e in topic.exercises if e.id not in chosen}
    return only, not_run
