"""The pytest side of the check model: markers, the `impl`/`ref`/`helpers`/`seed` fixtures,
and the verdict of every check (status, points, a message for the learner).

Loaded with `-p grader.pytest_plugin` by the runner, and by `tests/conftest.py` in the
instructor's own test run, where `impl` is the reference solution in this process.
"""
import random
from pathlib import Path

import pytest

from grader import inprocess, verdict
from grader.course import COURSE_FILE

MARKERS = {
    "exercise(name)": "the exercise of the topic this check grades",
    "points(n)": "points the check is worth (default 1)",
    "hidden": "run only when grading; stripped from the student release",
}


def pytest_addoption(parser):
    group = parser.getgroup("fmgrade")
    group.addoption("--fmgrade-impl", metavar="PATH", help="module under test (default: the topic's solution)")
    group.addoption("--fmgrade-visible-only", action="store_true", help="deselect hidden checks")
    group.addoption("--fmgrade-seed", type=int, metavar="N", help="seed for hidden checks' inputs")


def pytest_configure(config):
    for spec, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{spec}: {help_text}")
    seed = config.getoption("--fmgrade-seed")
    config.stash[SEED] = seed if seed is not None else random.SystemRandom().randrange(2**31)
    config.stash[MODULES] = {}


def pytest_report_header(config):
    return f"fmgrade: hidden checks draw inputs from seed {config.stash[SEED]} (replay with --fmgrade-seed)"


SEED = pytest.StashKey[int]()
MODULES = pytest.StashKey[dict]()
SESSION = pytest.StashKey[object]()  # a grader.proxy.Session when learner code runs in a worker


class SessionHolder:
    """Registered by the runner: hands the worker session (started early) to the fixtures."""

    def __init__(self, session):
        self.session = session

    def pytest_configure(self, config):
        config.stash[SESSION] = self.session


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
    keep, drop = [], []
    for item in items:
        if topic_of(item.path) is None:
            keep.append(item)
            continue
        exercise, points, hidden = check_marks(item)
        if "ref" in item.fixturenames and not hidden:
            raise pytest.UsageError(f"{item.nodeid}: only hidden checks may use the `ref` fixture")
        item.stash[CHECK] = (exercise, points, hidden)
        (drop if hidden and visible_only else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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


@pytest.fixture
def ref(request):
    """The reference solution; hidden checks only (the student release has no solutions)."""
    root, topic = _topic(request)
    path = root / "solutions" / f"{topic}.py"
    return _module(request.config, ("ref", str(path)), path)


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
    session = item.config.stash.get(SESSION, None)
    if session is not None and CHECK in item.stash:
        session.begin_check(item.stash[CHECK][0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if CHECK in item.stash and (report.when == "call" or report.failed):
        impl_path = item.config.getoption("--fmgrade-impl")
        status, message = verdict.classify(call.excinfo, impl_path)
        report.fmgrade = (status, message)
        report.fmgrade_check = item.stash[CHECK]
        session = item.config.stash.get(SESSION, None)
        report.fmgrade_output = session.take_output() if session is not None else ""
        if report.failed and message:
            report.longrepr = f"[{status}] {message}"
    return report
