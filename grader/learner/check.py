"""`fmgrade check TOPIC [EXERCISE...]`: the learner's own code against the topic's visible checks."""

import importlib.util
import os
import site
import sys

from grader import catalog as checks_index
from grader.course import CourseError
from grader.judge import runner
from grader.learner import reuse as reuse_mod
from grader.results import TopicResult

IMPORT_PREFIX = "your module does not import"


def check_topic(
    course, topic_id, exercises=(), *, seed=None, isolation="auto", on_exercise=None, reuse=False, worker_factory=None
):
    """Run the visible checks of `topic_id` (only those of `exercises` when given) on the
    learner's file. The result's `not_run` names the exercises left out, with their points.
    on_exercise(summary, done, total): called as each exercise's checks end (live output).
    reuse: show the remembered passing result of a slow exercise (grader.learner.reuse) while
    the file and the checks are unchanged; the result's `reused` names them, with when.
    worker_factory: where the worker comes from (watch passes its warm pool)."""
    topic = course.topic(topic_id)
    problem = interpreter_problem()
    if problem:
        raise CourseError(problem)
    if not course.available(topic.id):
        raise CourseError(f"topic '{topic.id}' ({topic.title}) is not available yet in this course")
    only, not_run = select(course, topic, exercises)
    chosen = [e.id for e in topic.exercises if e.id not in not_run]
    digest = _reuse_key(course, topic.id) if reuse and seed is None else None
    reused = reuse_mod.lookup(course.root, topic.id, digest, chosen) if digest else {}
    to_run = [e for e in chosen if e not in reused]
    if reused and to_run:
        only = select(course, topic, to_run)[0]
    visible = {
        e: sum(not c.hidden for c in infos) for e, infos in checks_index.scan(course.checks_dir(topic.id)).items()
    }
    feed = ExerciseFeed(on_exercise or (lambda *_: None), {e: visible.get(e, 0) for e in to_run})
    if to_run:
        result = runner.run_topic(
            course,
            topic.id,
            course.exercise_path(topic.id),
            hidden=False,
            seed=seed,
            only=only,
            root=course.root,
            isolation=isolation,
            on_check=feed,
            worker_factory=worker_factory,
        )
        feed.finish()
    else:
        result = TopicResult(topic.id, [], isolation=reuse_mod.ISOLATION_REUSED)
    if reused:
        order = {e: i for i, e in enumerate(chosen)}
        checks = result.checks + [c for checks, _ in reused.values() for c in checks]
        result.checks = sorted(checks, key=lambda c: (order.get(c.exercise, len(order)), c.hidden))
        result.reused = {e: when for e, (_, when) in reused.items()}
    result.not_run = not_run
    if digest and not result.import_error and _reuse_key(course, topic.id) == digest:  # unchanged while it ran
        reuse_mod.remember(course.root, topic.id, digest, result, feed.seconds, reused)
    return result


def _reuse_key(course, topic_id):
    source, _ = runner.read_learner_file(course.exercise_path(topic_id), f"exercises/{topic_id}.py", course.root)
    return reuse_mod.key(course, topic_id, source) if source is not None else None


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


_find_spec = importlib.util.find_spec  # (tests stand in a Python without torch)
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def interpreter_problem():
    """Why this Python cannot check (its worker could not start), or None.

    The worker runs this same interpreter isolated (`python -I`: no user site-packages, no
    PYTHONPATH), so torch must be installed into the interpreter's own environment; a
    notebook's kernel is often another Python than the one fmgrade was installed for."""
    python = os.path.abspath(sys.executable)
    try:
        spec = _find_spec("torch")
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


class ExerciseFeed:
    """Turns check results, which arrive in the course's exercise order, into one call per
    finished exercise: `on_exercise(summary, done, total)`. Nothing for a module that does not
    import (its banner comes at once, from the whole result)."""

    def __init__(self, on_exercise, expected):
        """`expected`: exercise -> how many checks it has in this run (an exercise is shown as
        soon as its last check ends, not when the next one's first check ends)."""
        self.on_exercise, self.expected = on_exercise, expected
        self.total = sum(1 for n in expected.values() if n)
        self.current, self.checks, self.done = None, {}, 0
        self.shown = set()
        self.seconds = {}  # exercise -> seconds its checks took (not starting the worker)

    def __call__(self, check, seconds=0.0):
        if check.message.startswith(IMPORT_PREFIX):
            self.current, self.checks = None, {}
            return
        if self.current is not None and check.exercise != self.current:
            self._flush()
        if check.id in self.shown:  # a teardown's later, worse report of a check already shown
            return
        self.current = check.exercise
        self.checks[check.id] = check
        self.seconds[check.exercise] = self.seconds.get(check.exercise, 0.0) + seconds
        if len(self.checks) >= self.expected.get(check.exercise, 1 << 30):
            self._flush()

    def finish(self):
        if self.current is not None:
            self._flush()

    def _flush(self):
        (summary,) = TopicResult("", list(self.checks.values())).exercises()
        self.shown.update(self.checks)
        self.current, self.checks = None, {}
        self.done += 1
        self.on_exercise(summary, self.done, self.total)
