"""`fmgrade check TOPIC`: the learner's own code against the topic's visible checks."""
from grader import runner
from grader.course import CourseError


def check_topic(course, topic_id, *, seed=None, isolation="auto"):
    topic = course.topic(topic_id)
    if not course.available(topic.id):
        raise CourseError(f"topic '{topic.id}' ({topic.title}) is not available yet in this course")
    return runner.run_topic(course, topic.id, course.exercise_path(topic.id), hidden=False, seed=seed, root=course.root,
                           isolation=isolation)
