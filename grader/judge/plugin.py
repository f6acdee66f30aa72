"""The pytest side of the check model: markers, the `impl`/`ref`/`helpers`/`seed` fixtures,
and the verdict of every check (status, points, a message for the learner).

Loaded with `-p grader.judge.plugin` by the runner, and by `tests/conftest.py` in the
instructor's own test run, where `impl` is the reference solution in this process.
"""

import random
from pathlib import Path

import pytest

from grader import checking
from grader import course as course_mod
from grader.course import COURSE_FILE
from grader.judge import inprocess, naming, verdict
from grader.judge import recordings as store
from grader.judge import replay as nodes
from grader.results import BLOCKED, PASSED, TIMEOUT, CheckResult

MARKERS = {
    "exercise(name)": "the exercise of the topic this check grades",
    "points(n)": "points the check is worth (default 1)",
    "hidden": "run only when grading; stripped from the student release",
    "builds_on(*checks)": "checks of the same exercise this one builds on: while one fails, this one names no mistake",
}


def pytest_addoption(parser):
    group = parser.getgroup("fmgrade")
    group.addoption("--fmgrade-impl", metavar="PATH", help="module under test (default: the topic's solution)")
    group.addoption("--fmgrade-visible-only", action="store_true", help="deselect hidden checks")
    group.addoption("--fmgrade-seed", type=int, metavar="N", help="seed for hidden checks' inputs")
    group.addoption(
        "--fmgrade-stand-ins",
        action="store_true",
        help="grading: a failing prerequisite is answered by the reference instead of blocking",
    )


def pytest_configure(config):
    for spec, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{spec}: {help_text}")
    seed = config.getoption("--fmgrade-seed")
    config.stash[SEED] = seed if seed is not None else random.SystemRandom().randrange(2**31)
    config.stash[MODULES] = {}
    config.stash[COURSES] = {}
    config.stash[OUTCOMES] = {}
    config.stash[CHECK_OUTCOMES] = {}


def pytest_report_header(config):
    return f"fmgrade: hidden checks draw inputs from seed {config.stash[SEED]} (replay with --fmgrade-seed)"


SEED = pytest.StashKey[int]()
MODULES = pytest.StashKey[dict]()
SESSION = pytest.StashKey[object]()  # a grader.sandbox.proxy.Session when learner code runs in a worker
RECORDER = pytest.StashKey[object]()  # a grader.judge.replay.Record during `fmgrade dev record`
LIVE_RECORDED = pytest.StashKey[object]()  # `grade`: (request, check id) -> `recorded` answered live
COURSES = pytest.StashKey[dict]()  # course root -> (Course, {topic: Recording})
OUTCOMES = pytest.StashKey[dict]()  # (topic, exercise) -> True, False (a check did not pass) or the blocker
CHECK_OUTCOMES = pytest.StashKey[dict]()  # (topic, check function name) -> whether it passed
# Grading with --fmgrade-stand-ins: (course root, topic) -> grader.instructor.standins.StandIns,
# made by the hidden checks' plugin (grader.instructor.live), which has the solutions.
STAND_INS = pytest.StashKey[object]()


class RecorderHolder:
    """Registered by `fmgrade dev record`: `recorded` then makes its calls on the solution."""

    def __init__(self, book):
        self.book = book

    def pytest_configure(self, config):
        config.stash[RECORDER] = self.book


class SessionHolder:
    """Registered by the runner: hands the worker session (started early) to the fixtures."""

    def __init__(self, session):
        self.session = session

    def pytest_configure(self, config):
        config.stash[SESSION] = self.session


class CourseHolder:
    """Registered by the runner: the course it has loaded already, so that the fixtures do not
    read course.yml a second time (it scans every check file: about 0.2 s a run)."""

    def __init__(self, course):
        self.course = course

    @pytest.hookimpl(trylast=True)  # after pytest_configure above made the empty table
    def pytest_configure(self, config):
        config.stash[COURSES][Path(self.course.root).resolve()] = (self.course, {})


class TopicClock:
    """Registered by the runner: the topic's time budget, with one timeout per exercise.

    A check whose call times out ends its exercise: the exercise's other checks are reported
    as not run because of it. The topic's clock counts only the checks that returned (their
    calls into learner code; starting a worker has its own limit, and time lost to a timeout is
    the exercise's own budget), so a hang in one exercise never takes points from exercises
    that return in time; checks that would begin after those used up `seconds` are not run."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.used = 0.0  # seconds of checks that returned
        self.timed_out: dict[str, str] = {}  # exercise -> the check that timed out

    def not_run(self, exercise):
        """(status, message) for a check of `exercise` that must not start, else None."""
        if exercise in self.timed_out:
            return TIMEOUT, (
                f"not run: `{exercise}` already timed out in {self.timed_out[exercise]} "
                "(one timeout ends an exercise's checks)"
            )
        if self.used > self.seconds:
            return TIMEOUT, f"not run: the checks of this topic that returned took more than {self.seconds:g} s in all"
        return None

    def note(self, check_id, exercise, status, seconds):
        if status != TIMEOUT:
            self.used += seconds
        elif exercise not in self.timed_out:
            self.timed_out[exercise] = check_id.split("::")[-1]

    def pytest_configure(self, config):
        config.stash[CLOCK] = self


CLOCK = pytest.StashKey[TopicClock]()


def topic_of(path):
    """tests/checks/<topic>/test_x.py -> (course root, topic id); None outside tests/checks."""
    path = Path(path).resolve()
    if path.parent.parent.name != "checks":
        return None
    for folder in path.parents:
        if (folder / COURSE_FILE).is_file():
            return folder, path.parent.name
    return None


def check_marks(item):
    """(exercise, points, hidden) of a check, or raise a UsageError naming the check."""
    mark = item.get_closest_marker("exercise")
    if mark is None or len(mark.args) != 1 or not isinstance(mark.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: a check needs @pytest.mark.exercise('<exercise id>')")
    points_mark = item.get_closest_marker("points")
    points = points_mark.args[0] if points_mark else 1
    if not isinstance(points, (int, float)) or points <= 0:
        raise pytest.UsageError(f"{item.nodeid}: points must be a positive number, not {points!r}")
    return mark.args[0], points, item.get_closest_marker("hidden") is not None


def pytest_collection_modifyitems(config, items):
    visible_only = config.getoption("--fmgrade-visible-only")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    _check_builds_on(items)
    for item in items:
        if topic_of(item.path) is None:
            keep.append(item)
            continue
        exercise, points, hidden = check_marks(item)
        if "ref" in item.fixturenames and not hidden:
            raise pytest.UsageError(f"{item.nodeid}: only hidden checks may use the `ref` fixture")
        if "recorded" in item.fixturenames and hidden:
            raise pytest.UsageError(
                f"{item.nodeid}: hidden checks compare with `ref`; `recorded` holds only the visible checks' answers"
            )
        item.stash[CHECK] = (exercise, points, hidden)
        (drop if hidden and visible_only else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    _order_by_exercise(config, items)


def _check_builds_on(items):
    """Every `builds_on` mark names checks of the same topic and exercise (a typo would silently
    let a downstream check name a neighbour's mistake)."""
    by_topic: dict = {}
    for item in items:
        where = topic_of(item.path)
        if where is not None:
            by_topic.setdefault(where, {})[item.originalname] = item
    for item in items:
        where = topic_of(item.path)
        for mark in item.iter_markers("builds_on") if where is not None else ():
            for name in mark.args:
                other = by_topic[where].get(name)
                if other is None or _marks(other)[0] != _marks(item)[0] or _marks(other)[1] > _marks(item)[1]:
                    raise pytest.UsageError(
                        f"{item.nodeid}: builds_on names '{name}', not a check of the same topic and exercise "
                        "(a visible check builds only on visible checks: the release has no hidden ones)"
                    )


def _marks(item):
    """(exercise args, hidden) of a check, for comparing two checks' marks."""
    exercise = item.get_closest_marker("exercise")
    return (exercise.args if exercise else None, item.get_closest_marker("hidden") is not None)


def _order_by_exercise(config, items):
    """Within each topic, checks run in the course's exercise order: what an exercise builds on
    is known before its own checks start. Everything else keeps its place."""
    groups: dict[str, int] = {}  # topic -> the position of its first check
    keys: list = []
    for index, item in enumerate(items):
        where = topic_of(item.path) if CHECK in item.stash else None
        group = groups.setdefault(where, index) if where is not None else index
        keys.append((group, _exercise_position(config, item), index))
    order = sorted(range(len(items)), key=keys.__getitem__)
    items[:] = [items[i] for i in order]


def _course_of(config, root):
    courses = config.stash[COURSES]
    if root not in courses:
        courses[root] = (course_mod.load(root), {})
    return courses[root]


def _exercise_position(config, item):
    where = topic_of(item.path) if CHECK in item.stash else None
    if where is None:
        return 0
    topic = _course_of(config, where[0])[0].topic(where[1])
    ids = [e.id for e in topic.exercises]
    exercise = item.stash[CHECK][0]
    return ids.index(exercise) if exercise in ids else len(ids)


def _blocker(config, item):
    """The first exercise this check's exercise builds on (transitively) that has not passed."""
    failing = _failing(config, item)
    if not failing:
        return None
    dep, outcome = failing[0]
    return dep if outcome is False else outcome  # a blocked exercise names its own blocker


def _failing(config, item):
    """[(exercise, its outcome)] of every exercise this check's exercise builds on (transitively)
    that has not passed, nearest first."""
    root, topic_id = topic_of(item.path)
    topic = _course_of(config, root)[0].topic(topic_id)
    by_id = {e.id: e for e in topic.exercises}
    outcomes = config.stash[OUTCOMES]
    todo, seen = list(by_id[item.stash[CHECK][0]].depends) if item.stash[CHECK][0] in by_id else [], set()
    found = []
    while todo:
        dep = todo.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        outcome = outcomes.get((topic_id, dep), True)
        if outcome is not True:
            found.append((dep, outcome))
        todo += list(by_id[dep].depends)
    return found


def _stand_in_plan(config, item, session):
    """Grading with stand-ins: (blocker or None, names to stand in, the exercises they stand in
    for). Every failing prerequisite is answered by the reference, unless one cannot be
    (grader.instructor.standins): that one blocks, as in a learner's check."""
    factory = config.stash.get(STAND_INS, None)
    if factory is None or session is None:  # stand-ins answer calls from a worker only
        return _blocker(config, item), (), ()
    failing = _failing(config, item)
    if not failing:
        return None, (), ()
    stand_ins = factory(*topic_of(item.path))
    names, exercises = [], []
    for dep, outcome in failing:
        if outcome is not False:
            return outcome, (), ()  # blocked by one that cannot stand in
        found = stand_ins.names(dep)
        if found is None:
            return dep, (), ()
        names += found
        exercises.append(dep)
    session.stand_in = stand_ins
    return None, names, exercises


CHECK = pytest.StashKey[tuple]()


def _topic(request):
    where = topic_of(request.node.path)
    if where is None:
        pytest.fail("the fmgrade fixtures work only in checks under tests/checks/<topic>/")
    return where


def _module(config, key, path):
    modules = config.stash[MODULES]
    if key not in modules:
        modules[key] = inprocess.load_module(path, key[0])
    return modules[key]


@pytest.fixture
def impl(request):
    """The module under test: the learner's (a proxy to the worker) or the reference solution."""
    session = request.config.stash.get(SESSION, None)
    if session is not None:
        return session.module()
    root, topic = _topic(request)
    path = request.config.getoption("--fmgrade-impl") or root / "solutions" / f"{topic}.py"
    return _module(request.config, ("impl", str(path)), path)


def _recording(config, root, topic):
    recordings = _course_of(config, root)[1]
    if topic not in recordings:
        recordings[topic] = store.load(root / "tests" / "checks" / topic, topic)
    return recordings[topic]


@pytest.fixture
def recorded(request):
    """What the reference solution returned, replayed from the topic's recording
    (`recorded.attention(q, k, v)`); `fmgrade dev record` writes it, `dev check` keeps it true."""
    root, topic = _topic(request)
    check_id = request.node.nodeid.split("/")[-1]
    book = request.config.stash.get(RECORDER, None)
    if book is not None:
        return book.root(check_id)
    live = request.config.stash.get(LIVE_RECORDED, None)
    if live is not None:  # `grade`: inputs drawn from the submission's seed, answered by the solution
        return live(request, check_id)
    recording = _recording(request.config, root, topic)
    checking.begin_check(recording.mistakes)
    return nodes.Replay(
        recording, check_id, lambda key: checking.saw_fingerprints(recording.fingerprints.get(key))
    ).root()


@pytest.fixture
def helpers(request, impl):
    """Learner-side helpers from the topic's `helpers.py`, run with the module under test."""
    session = request.config.stash.get(SESSION, None)
    if session is not None:
        return session.helpers()
    root, topic = _topic(request)
    path = root / "tests" / "checks" / topic / "helpers.py"
    return inprocess.Helpers(_module(request.config, ("helpers", str(path)), path), impl)


@pytest.fixture
def seed(request):
    """The run's seed: hidden checks draw their inputs from it, so answers can't be precomputed."""
    return request.config.stash[SEED]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if CHECK not in item.stash:
        return
    checking.begin_check()
    session = item.config.stash.get(SESSION, None)
    # A module that does not import blocks nothing: every check reports that one error instead.
    blocker, names, exercises = None, (), ()
    if session is None or not session.import_failure:
        blocker, names, exercises = _stand_in_plan(item.config, item, session)
    if session is not None:
        session.substitute(names)
    item.stash[SUBSTITUTED] = list(exercises)
    if blocker is not None:
        item.stash[BLOCKED_BY] = blocker
        pytest.skip(f"blocked: this builds on `{blocker}`, which does not pass yet; fix `{blocker}` first")
    clock = item.config.stash.get(CLOCK, None)
    not_run = clock.not_run(item.stash[CHECK][0]) if clock is not None else None
    if not_run is not None:
        item.stash[NOT_RUN] = not_run
        pytest.skip(not_run[1])
    if session is not None:
        session.begin_check(item.stash[CHECK][0])


BLOCKED_BY = pytest.StashKey[str]()
SUBSTITUTED = pytest.StashKey[list]()  # the prerequisites the reference answers for in this check
NOT_RUN = pytest.StashKey[tuple]()  # (status, message) of a check the topic's clock did not start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if CHECK in item.stash and BLOCKED_BY in item.stash and report.when == "setup":
        blocker = item.stash[BLOCKED_BY]
        report.fmgrade = _result(item, report, BLOCKED, f"blocked: fix `{blocker}` first (this exercise builds on it)")
        where = topic_of(item.path)
        item.config.stash[OUTCOMES][(where[1], item.stash[CHECK][0])] = blocker
        return report
    if CHECK in item.stash and NOT_RUN in item.stash and report.when == "setup":
        report.fmgrade = _result(item, report, *item.stash[NOT_RUN])
        return report
    if CHECK in item.stash and (report.when == "call" or report.failed):
        impl_path = item.config.getoption("--fmgrade-impl")
        status, message = verdict.classify(call.excinfo, impl_path)
        if not (call.excinfo and isinstance(call.excinfo.value, verdict.ImportFailed)):
            _note_outcome(item, status)  # a module that does not import blocks nothing: every check says so itself
        clock = item.config.stash.get(CLOCK, None)
        if clock is not None:
            seconds = report.duration if report.when == "call" else 0.0  # setup: starting the worker
            clock.note(item.nodeid.split("/")[-1], item.stash[CHECK][0], status, seconds)
        session = item.config.stash.get(SESSION, None)
        _note_check_outcome(item, status)
        mistake = getattr(call.excinfo.value, "mistake", "") if call.excinfo else ""
        if mistake:
            mistake, message = _attributed(item, call.excinfo.value, message)
        report.fmgrade = _result(
            item,
            report,
            status,
            message,
            output=session.take_output() if session is not None else "",
            mistake=mistake,
            substituted=item.stash.get(SUBSTITUTED, []),
        )
        if report.failed and message:
            report.longrepr = f"[{status}] {message}"
    return report


def _result(item, report, status, message, output="", mistake="", substituted=()):
    """The verdict of one check, made once: the runner only collects it (`report.fmgrade`)."""
    exercise, points, hidden = item.stash[CHECK]
    return CheckResult(
        id=report.nodeid.split("/")[-1],
        exercise=exercise,
        status=status,
        score=points if status == PASSED else 0,
        max_score=points,
        hidden=hidden,
        message=message,
        output=output,
        mistake=mistake,
        substituted=list(substituted),
    )


def _note_check_outcome(item, status):
    where = topic_of(item.path)
    if where is not None:
        key = (where[1], item.originalname)
        outcomes = item.config.stash[CHECK_OUTCOMES]
        outcomes[key] = outcomes.get(key, True) and status == PASSED


def _attributed(item, failure, message):
    """(mistake, message) once grader.judge.naming has asked whether the mistake the check
    matched is the learner's, or something it builds on fails first."""
    root, topic_id = topic_of(item.path)
    exercise = item.stash[CHECK][0]
    checks = item.config.stash[CHECK_OUTCOMES]
    outcomes = item.config.stash[OUTCOMES]
    built_on = [name for mark in item.iter_markers("builds_on") for name in mark.args]
    topic = _course_of(item.config, root)[0].topic(topic_id)
    by_id = {e.id: e for e in topic.exercises}
    upstream = naming.Upstream(
        exercise,
        failing_checks=tuple(name for name in built_on if checks.get((topic_id, name)) is False),
        failing_exercises=tuple(
            e for e in _prerequisites(by_id, exercise) if outcomes.get((topic_id, e), True) is not True
        ),
        exercise_failed=lambda e: outcomes.get((topic_id, e), True) is not True,
    )
    recording = _recording(item.config, root, topic_id)
    matches = getattr(failure, "matches", ()) or (failure.mistake,)
    mistake, advice = naming.decide(matches, recording.exercises, upstream)
    if mistake == failure.mistake:
        return mistake, message
    if mistake:  # another mistake the answer matched, one of this exercise's own
        return mistake, naming.rename(message, recording.mistakes.get(mistake, mistake))
    return mistake, naming.rewrite(message, advice)


def _prerequisites(by_id, exercise):
    """The exercises `exercise` builds on (course.yml `depends`, transitively), nearest first."""
    todo, seen = list(by_id[exercise].depends) if exercise in by_id else [], []
    while todo:
        dep = todo.pop(0)
        if dep not in seen and dep in by_id:
            seen.append(dep)
            todo += list(by_id[dep].depends)
    return seen


def _note_outcome(item, status):
    where = topic_of(item.path)
    if where is not None:
        key = (where[1], item.stash[CHECK][0])
        if item.config.stash[OUTCOMES].get(key, True) is True:
            item.config.stash[OUTCOMES][key] = status == PASSED
