"""`fmgrade check TOPIC [EXERCISE...]`: the learner's own code against the topic's visible checks."""

import importlib.util
import os
import site
import sys

from grader import catalog as checks_index
from grader.course import CourseError
from grader.judge import runner


def check_topic(course, topic_id, exercises=(), *, seed=None, isolation="auto"):
    """Run the visible checks of `topic_id` (only those of `exercises` when given) on the
    learner's file. The result's `not_run` names the exercises left out, with their points."""
    topic = course.topic(topic_id)
    problem = interpreter_problem()
    if problem:
        raise CourseError(problem)
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


CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def interpreter_problem(find_spec=importlib.util.find_spec):
    """Why this Python cannot check (its worker could not start), or None.

    The worker runs this same interpreter isolated (`python -I`: no user site-packages, no
    PYTHONPATH), so torch must be installed into the interpreter's own environment; a
    notebook's kernel is often another Python than the one fmgrade was installed for."""
    python = os.path.abspath(sys.executable)
    try:
        spec = find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    fix = (
        f"install it for this Python ({python} -m {CPU_TORCH}), or use the Python where you "
        "installed fmgrade and torch (in Jupyter: that environment's kernel)"
    )
    if spec is None:
        return f"no torch in this interpreter ({python}): the checks and your code need it; {fix}"
    origin = os.path.abspath(spec.origin or "")
    hidden = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    hidden += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if any(origin.startswith(os.path.abspath(folder) + os.sep) for folder in hidden):
        return (
            f"torch is found only through your user site-packages or PYTHONPATH ({os.path.dirname(os.path.dirname(origin))}), "
            f"which the sandboxed worker (`{python} -I`) does not read; {fix}"
        )
    return None
