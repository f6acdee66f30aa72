"""Run one topic's checks with pytest and collect a TopicResult.

pytest runs in this process with only the plugins we name: third-party plugin autoload is
off (it costs ~0.4 s), and the project's own pytest configuration is not read.
"""

import contextlib
import dataclasses
import io
import os
import random
import sys
from pathlib import Path

import pytest

from grader import interrupts, submission
from grader.course import CourseError
from grader.results import ERROR, PASSED, TIMEOUT, TopicResult
from grader.sandbox import process as sandbox
from grader.sandbox import proxy


class _Collector:
    """Receives every check's report and turns it into CheckResults."""

    def __init__(self, topic, checks_dir, budget=None, on_check=None):
        self.topic, self.checks_dir, self.budget, self.on_check = topic, checks_dir, budget, on_check
        self.results, self.problems, self.seeded = {}, [], set()
        self.interrupted = False

    def pytest_runtest_logreport(self, report):
        result = getattr(report, "fmgrade", None)  # the plugin's verdict (grader.judge.plugin._result)
        if result is None:
            return
        if result.id in self.results and self.results[result.id].status != PASSED:
            return  # keep the first problem (setup) rather than a later teardown one
        if result.status in (ERROR, TIMEOUT) and self.budget is not None and self.budget.spent():
            # cut short by the submission's budget, not by this check
            result = dataclasses.replace(result, status=TIMEOUT, message=self.budget.reason)
        self.results[result.id] = result
        if self.on_check is not None:  # live output: the learner sees each check as it ends
            self.on_check(result, report.duration)

    def pytest_collection_modifyitems(self, items):
        self.seeded = {item.nodeid.split("/")[-1] for item in items if "seed" in item.fixturenames}

    def pytest_keyboard_interrupt(self, excinfo):
        # collection errors reach this hook too, as Session.Interrupted; only a real Ctrl-C counts
        self.interrupted = not isinstance(excinfo.value, pytest.Session.Interrupted)

    def pytest_collectreport(self, report):
        if report.failed:
            self.problems.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1]}")


# Named for pytest, not imported here: the judge runs hidden checks only for `grade` and `dev`,
# which the student release (grader/ minus instructor/) does not have.
HIDDEN_CHECKS_PLUGIN = "grader.instructor.live"


def run_topic(
    course,
    topic_id,
    impl_path,
    *,
    hidden=False,
    seed=None,
    isolation="auto",
    hidden_roots=(),
    only=(),
    plugins=(),
    root=None,
    budget=None,
    unusable=None,
    worker_factory=None,
    on_check=None,
):
    """Run the checks of `topic_id` against the module file `impl_path`.

    isolation: "none" imports the module in this process (trusted solutions only); "auto",
    "bwrap" or "process" run it in a worker (see grader.sandbox.process).
    only: check ids ("test_x.py::test_y") to run instead of all of them.
    plugins: more pytest plugin objects (`fmgrade dev record` passes its recorder).
    worker_factory: starts the worker (see proxy.Session); default a new sandbox.WorkerProcess.
    root: the learner's folder (default: the one holding exercises/); nothing under it is
    trusted (see grader.submission).
    budget: a grader.instructor.budget.Budget the run must end within (checks cut short get a timeout).
    unusable: a reason not to run learner code at all; every check gets it, 0 points.
    on_check: called with each CheckResult as its check ends, and the seconds of that phase
    (a check's teardown may call it again with a worse result for the same id).

    A Ctrl-C or SIGTERM (see grader.interrupts) raises KeyboardInterrupt: nothing is returned.
    """
    topic = course.topic(topic_id)
    checks_dir = course.checks_dir(topic_id)
    if not checks_dir.is_dir():
        raise CourseError(f"topic '{topic_id}' is not available yet: no checks in {checks_dir}")
    limits = topic.limits
    topic_seconds = limits.topic_timeout
    # The topic's own budget is the clock's (it leaves out time lost to timeouts); the worker
    # session's wall-clock limit is only the submission's budget, when there is one.
    limits = dataclasses.replace(limits, topic_timeout=float("inf"))
    if budget is not None:
        unusable = unusable or (budget.reason if budget.spent() else None)
        limits = dataclasses.replace(limits, topic_timeout=budget.remaining())
    session = watchdog = None
    with interrupts.protected():  # a worker is never left half-started
        if unusable is not None:
            session = proxy.Session(f"exercises/{topic.id}.py", None, limits, _level(isolation), unreadable=unusable)
        elif isolation != "none":
            session = _start_session(course, topic, limits, impl_path, isolation, hidden_roots, root, worker_factory)
            if budget is not None:
                watchdog = budget.watch(session)
    try:
        return _run(course, topic, impl_path, hidden, seed, session, only, plugins, budget, topic_seconds, on_check)
    finally:
        with interrupts.protected():
            if watchdog is not None:
                watchdog.cancel()
            if session is not None:
                session.close()


def _level(isolation):
    return "in-process" if isolation == "none" else sandbox.choose_isolation(isolation)


def _start_session(course, topic, limits, impl_path, isolation, hidden_roots, root=None, worker_factory=None):
    """Start the worker now: it imports torch while pytest starts and collects here."""
    module_file = f"exercises/{topic.id}.py"
    source, unreadable = read_learner_file(impl_path, module_file, root, int(limits.source_kb * 1024))
    helpers_path = course.checks_dir(topic.id) / "helpers.py"
    helpers_source = helpers_path.read_text(encoding="utf-8") if helpers_path.is_file() else None
    return proxy.Session(
        module_file,
        source,
        limits,
        _level(isolation),
        helpers_source,
        hidden_roots=(course.root, *hidden_roots),
        unreadable=unreadable,
        worker_factory=worker_factory,
    )


def read_learner_file(path, module_file, root=None, max_bytes=submission.DEFAULT_MAX_BYTES):
    """(source, None) or (None, why it cannot be used), for a file shown as `module_file`.

    `root` is the learner's folder: below it no link is followed (see grader.submission).
    Default: the folder `path` is `module_file` of, else the file's own folder."""
    path, relative = Path(path), Path(module_file)
    if root is None:
        root = (
            path.parents[len(relative.parts) - 1]
            if path.parts[-len(relative.parts) :] == relative.parts
            else path.parent
        )
    try:
        inside = path.relative_to(root)
    except ValueError:
        root, inside = path.parent, Path(path.name)
    try:
        return submission.read_source(root, inside, max_bytes), None
    except submission.Unusable as exc:
        return None, str(exc)


def _run(
    course,
    topic,
    impl_path,
    hidden,
    seed,
    session,
    only,
    extra_plugins=(),
    budget=None,
    topic_seconds=None,
    on_check=None,
):
    # here, not at the top: the worker (started by run_topic) imports torch side by side with this
    # 1.4 s import (the plugin imports torch)
    import torch

    from grader.judge import plugin as pytest_plugin

    topic_id, checks_dir = topic.id, course.checks_dir(topic.id)
    collector = _Collector(topic_id, checks_dir, budget, on_check)
    targets = [str(checks_dir / check_id.split("[")[0]) for check_id in only] or [str(checks_dir)]
    args = [
        *targets,
        "-c",
        os.devnull,
        "--rootdir",
        str(course.root),
        "--confcutdir",
        str(checks_dir),
        "-p",
        "grader.judge.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:unraisableexception",  # its 5 gc.collect() over torch's heap cost 0.1-0.6 s a run
        "--import-mode",
        "importlib",
        "--fmgrade-impl",
        str(impl_path),
    ]
    if hidden:  # hidden checks take `ref`, the live solution: only the instructor's side has it
        args += ["-p", HIDDEN_CHECKS_PLUGIN]
    else:
        args.append("--fmgrade-visible-only")
    if seed is None:  # drawn here, handed to pytest, and written into the result: never read back
        seed = random.SystemRandom().randrange(2**31)
    args += ["--fmgrade-seed", str(seed)]

    torch.set_num_threads(1)  # checks use tiny tensors; a second thread only fights the worker
    plugins = [collector, _PlainTracebacks(), *extra_plugins]
    plugins.append(pytest_plugin.CourseHolder(course))
    if topic_seconds is not None:  # each exercise's one timeout, and the topic's clock
        plugins.append(pytest_plugin.TopicClock(topic_seconds))
    if session is not None:
        plugins.append(pytest_plugin.SessionHolder(session))
    with _quiet_pytest(), _fresh_check_modules():
        code = pytest.main(args, plugins=plugins)
    if (
        collector.interrupted
    ):  # pytest swallows a KeyboardInterrupt (and reports collection errors with the same exit code)
        raise KeyboardInterrupt
    if collector.problems or code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        detail = "; ".join(collector.problems) or f"pytest exited with {code!r}"
        raise CourseError(f"the checks of topic '{topic_id}' could not be collected: {detail}")
    known = {e.id for e in topic.exercises}
    for result in collector.results.values():
        if result.exercise not in known:
            raise CourseError(
                f"{checks_dir.name}/{result.id}: exercise '{result.exercise}' is not in course.yml's topic '{topic_id}'"
            )
    checks = sorted(collector.results.values(), key=lambda c: _order(topic, c))
    isolation = session.isolation if session is not None else "in-process"
    import_failure = session.import_failure if session is not None else None
    return TopicResult(
        topic_id,
        checks,
        isolation=isolation,
        seed=seed,
        cgroup=getattr(session, "cgroup", ""),
        # a worker that died while importing leaves a WorkerLost, which has no `.message`
        import_error=getattr(import_failure, "message", str(import_failure)) if import_failure else "",
        random_inputs=any(c.id in collector.seeded for c in checks),
    )


class _PlainTracebacks:
    """pytest's default traceback style parses each failing check's source to show it (0.5 s
    on the stubs), for a text the grader replaces with its own message. Python's plain
    traceback is what stays when a check has none. (The option belongs to the terminal
    plugin, which the runner leaves out, so it is set here.)"""

    def pytest_configure(self, config):
        config.option.tbstyle = "native"


@contextlib.contextmanager
def _fresh_check_modules():
    """Check modules are imported afresh for every run and put back afterwards: another course's
    (or another run's) `tests.checks.<topic>.test_x` must not stand in for this one's, and this
    run's module state (caches filled for one submission) must not leak into the next."""

    def check_modules():
        return {
            name: module
            for name, module in sys.modules.items()
            if f"{os.sep}tests{os.sep}checks{os.sep}" in (getattr(module, "__file__", None) or "")
        }

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
    """No third-party plugins, none of the caller's pytest options (PYTEST_ADDOPTS would reach
    this run too: `--durations` in a shell's environment made every topic a usage error), and
    whatever pytest itself prints goes nowhere."""
    names = ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_PLUGINS", None)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
