"""Run one topic's checks with pytest and collect a TopicResult.

pytest runs in this process with only the plugins we name: third-party plugin autoload is
off (it costs ~0.4 s), and the project's own pytest configuration is not read.
"""
import contextlib
import io
import os
import sys

from pathlib import Path

import pytest

from grader import proxy, pytest_plugin, sandbox
from grader.course import CourseError
from grader.results import PASSED, CheckResult, TopicResult


class _Collector:
    """Receives every check's report and turns it into CheckResults."""

    def __init__(self, topic, checks_dir):
        self.topic, self.checks_dir = topic, checks_dir
        self.results, self.problems = {}, []

    def pytest_runtest_logreport(self, report):
        status_message = getattr(report, "fmgrade", None)
        if status_message is None:
            return
        check_id = report.nodeid.split("/")[-1]
        if check_id in self.results and self.results[check_id].status != PASSED:
            return  # keep the first problem (setup) rather than a later teardown one
        exercise, points, hidden = report.fmgrade_check
        status, message = status_message
        self.results[check_id] = CheckResult(
            id=check_id, exercise=exercise, status=status,
            score=points if status == PASSED else 0, max_score=points, hidden=hidden,
            message=message, output=getattr(report, "fmgrade_output", ""),
            mistake=getattr(report, "fmgrade_mistake", ""),
        )

    def pytest_collectreport(self, report):
        if report.failed:
            self.problems.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1]}")


def run_topic(course, topic_id, impl_path, *, hidden=False, seed=None, isolation="auto", hidden_roots=(), only=(),
              plugins=()):
    """Run the checks of `topic_id` against the module file `impl_path`.

    isolation: "none" imports the module in this process (trusted solutions only); "auto",
    "bwrap" or "process" run it in a worker (see grader.sandbox).
    only: check ids ("test_x.py::test_y") to run instead of all of them.
    plugins: more pytest plugin objects (`fmgrade dev record` passes its recorder).
    """
    topic = course.topic(topic_id)
    checks_dir = course.checks_dir(topic_id)
    if not checks_dir.is_dir():
        raise CourseError(f"topic '{topic_id}' is not available yet: no checks in {checks_dir}")
    session = None
    if isolation != "none":
        session = _start_session(course, topic, impl_path, isolation, hidden_roots)
    try:
        return _run(course, topic, impl_path, hidden, seed, session, only, plugins)
    finally:
        if session is not None:
            session.close()


def _start_session(course, topic, impl_path, isolation, hidden_roots):
    """Start the worker now: it imports torch while pytest starts and collects here."""
    module_file = f"exercises/{topic.id}.py"
    source, unreadable = read_learner_file(impl_path, module_file)
    helpers_path = course.checks_dir(topic.id) / "helpers.py"
    helpers_source = helpers_path.read_text(encoding="utf-8") if helpers_path.is_file() else None
    return proxy.Session(module_file, source, topic.limits, sandbox.choose_isolation(isolation),
                         helpers_source, hidden_roots=(course.root, *hidden_roots), unreadable=unreadable)


def read_learner_file(path, module_file):
    """(source, None) or (None, why it cannot be used), for a file shown as `module_file`."""
    try:
        source = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, f"{module_file} is missing"
    except OSError as exc:
        return None, f"{module_file} could not be read ({exc.strerror})"
    except UnicodeDecodeError as exc:
        return None, f"{module_file} is not UTF-8 text ({exc.reason} at byte {exc.start})"
    if not source.strip():
        return None, f"{module_file} is empty"
    return source, None


def _run(course, topic, impl_path, hidden, seed, session, only, extra_plugins=()):
    topic_id, checks_dir = topic.id, course.checks_dir(topic.id)
    collector = _Collector(topic_id, checks_dir)
    targets = [str(checks_dir / check_id.split("[")[0]) for check_id in only] or [str(checks_dir)]
    args = [
        *targets, "-c", os.devnull, "--rootdir", str(course.root), "--confcutdir", str(checks_dir),
        "-p", "grader.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:terminal",
        "--import-mode", "importlib", "--fmgrade-impl", str(impl_path),
    ]
    if not hidden:
        args.append("--fmgrade-visible-only")
    if seed is not None:
        args += ["--fmgrade-seed", str(seed)]
    seed_box = {}

    class _SeedReader:
        def pytest_sessionstart(self, session):
            seed_box["seed"] = session.config.stash[pytest_plugin.SEED]

    import torch  # here, not at the top: the worker must start before this 1.4 s import

    torch.set_num_threads(1)  # checks use tiny tensors; a second thread only fights the worker
    plugins = [collector, _SeedReader(), *extra_plugins]
    if session is not None:
        plugins.append(pytest_plugin.SessionHolder(session))
    with _quiet_pytest(), _fresh_check_modules():
        code = pytest.main(args, plugins=plugins)
    if collector.problems or code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        detail = "; ".join(collector.problems) or f"pytest exited with {code!r}"
        raise CourseError(f"the checks of topic '{topic_id}' could not be collected: {detail}")
    known = {e.id for e in topic.exercises}
    for result in collector.results.values():
        if result.exercise not in known:
            raise CourseError(f"{checks_dir.name}/{result.id}: exercise '{result.exercise}' is not in course.yml's topic '{topic_id}'")
    checks = sorted(collector.results.values(), key=lambda c: _order(topic, c))
    isolation = session.isolation if session is not None else "in-process"
    return TopicResult(topic_id, checks, isolation=isolation, seed=seed_box.get("seed", seed or 0))


@contextlib.contextmanager
def _fresh_check_modules():
    """Check modules are imported afresh for every run and put back afterwards: another course's
    (or another run's) `tests.checks.<topic>.test_x` must not stand in for this one's, and this
    run's module state (caches filled for one submission) must not leak into the next."""
    def check_modules():
        return {name: module for name, module in sys.modules.items()
                if f"{os.sep}tests{os.sep}checks{os.sep}" in (getattr(module, "__file__", None) or "")}

    saved = check_modules()
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in check_modules():
            del sys.modules[name]
        sys.modules.update(saved)


def _order(topic, check):
    ids = [e.id for e in topic.exercises]
    return (ids.index(check.exercise) if check.exercise in ids else len(ids), check.hidden)


@contextlib.contextmanager
def _quiet_pytest():
    """No third-party plugins, and whatever pytest itself prints goes nowhere."""
    saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved

