"""`ref` in hidden checks: the live solution, which also names known mistakes; and, at grade
time, `recorded` in visible checks answered by the same live solution (`GradeInputs`).

A call of one of the solution's functions (`ref.attention(q, k, v)`) is made on the solution
at once. Only if a comparison then fails are the topic's mutants (tests/mutants/<topic>) run on
the same arguments, from the same random state, so that the failure can say which known mistake
the learner's answer matches. Classes and constants are the solution's own.

Visible points are earned by code. The student release holds every visible check and its
recorded answers, so a submission could answer each visible call from recorded.json (its
floating inputs are keyed by dtype and shape). `grade` therefore runs the visible checks on
inputs drawn from the submission's seed: `grader.checking.generator(n)` (and `numpy_rng(n)`),
which every visible check draws its random inputs from, then seeds from a hash of (seed, n),
and `recorded` answers from the live solution instead of the recording. A lookup keyed by the
recorded inputs misses every one of them; correct code passes on any draw. Hand-worked checks
use fixed inputs, so each call such a check makes on a learner function also gets a twin on
varied inputs, compared with the solution (grader.instructor.twins). The learner's
`check` (and `dev record`, `dev check`) never registers `GradeInputs`: same recorded inputs,
offline and fast. The seed is HMAC(kit secret, student id) and stays in the grader process;
learner code sees only inputs drawn from a SHA-256 of it, which it cannot invert.
"""

import copy
import tempfile
import types
from pathlib import Path

import pytest
import torch

from grader import checking
from grader import recorded_data as data
from grader.instructor import mutants, standins, twins
from grader.judge import inprocess, plugin
from grader.judge.replay import Node, _differ, _real, _rng_state, _set_rng_state, node_key


class LiveSolution:
    def __init__(self, module, course, topic_id, cache):
        self._module, self._course, self._topic, self._cache = module, course, topic_id, cache

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if not isinstance(value, types.FunctionType):
            return value
        return lambda *args, **kwargs: self._call(name, value, args, kwargs)

    def _call(self, name, function, args, kwargs):
        try:
            saved = copy.deepcopy((args, kwargs))
        except Exception:  # noqa: BLE001 - arguments that cannot be copied: no naming for this call
            return function(*args, **kwargs)
        state = _rng_state()
        result = function(*args, **kwargs)
        if data.is_data(result):
            checking.saw_fingerprints(lambda: self._fingerprints(name, saved, state, result))
        return result

    def _fingerprints(self, name, saved, state, result):
        """{mistake id: encoded answer} of every mutant whose answer differs from the solution's."""
        found = {}
        with torch.random.fork_rng():
            for mutant_id, module in self._mutant_modules():
                function = getattr(module, name, None)
                if function is None:
                    continue
                _set_rng_state(state)
                args, kwargs = copy.deepcopy(saved)
                try:
                    answer = function(*args, **kwargs)
                except Exception:  # noqa: BLE001 - a mistake may raise where the solution does not
                    continue
                if data.is_data(answer) and _differ(result, answer):
                    found[mutant_id] = data.encode(answer)
        return found

    def _mutant_modules(self):
        key = ("mutants", self._topic)
        if key not in self._cache:
            modules = []
            with tempfile.TemporaryDirectory(prefix="fmgrade-live-") as folder:
                for mutant in mutants.load(self._course, self._topic):
                    if not mutant.message:
                        continue
                    try:
                        path = mutants.write_mutant(self._course, self._topic, mutant, Path(folder) / mutant.id)
                        modules.append((mutant.id, inprocess.load_module(path, "mistake")))
                    except Exception:  # noqa: BLE001 - a mutant that no longer applies or imports names nothing
                        continue
            self._cache[key] = modules
        return self._cache[key]


class LiveBook:
    """`recorded` answered by the live solution, operation by operation: data comes back as a
    copy (as from a recording), anything else as another recorded object, so a check behaves
    as it does on recorded answers; calls of the solution's functions name known mistakes."""

    def __init__(self, solution, check_id):
        self.objects = {check_id: (solution,)}  # key -> (the solution's object,)
        self.check_id = check_id

    def root(self):
        return Node(self, self.check_id)

    def answer(self, node, key, op, name, args, kwargs):
        target = self.objects[node_key(node)][0]
        real_args = _real(args, args, self, 0)
        real_kwargs = {k: _real(v, v, self, 0) for k, v in kwargs.items()}
        if op == "getattr":
            result = getattr(target, name)
        elif op == "call":
            result = target(*real_args, **real_kwargs)
        else:
            result = target[real_args[0]]
        try:
            form = data.encode(result)
        except data.NotData:
            self.objects[key] = (result,)
            return Node(self, key)
        return data.decode(form)


class GradeInputs:
    """Registered by `grade` only: visible checks draw their inputs from the submission's seed
    and `recorded` answers from the live solution, and each call a visible check makes on one of
    the learner's functions has a twin on varied inputs (see the module's docstring)."""

    @pytest.hookimpl(trylast=True)  # after grader.judge.plugin has set the run's seed
    def pytest_configure(self, config):
        checking.draw_inputs_from(config.stash[plugin.SEED])
        config.stash[plugin.LIVE_RECORDED] = _live_recorded

    def pytest_unconfigure(self, config):
        checking.draw_inputs_from(None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        marks = item.stash.get(plugin.CHECK, None)
        if marks is None or marks[2] or "recorded" not in item.fixturenames:
            return (yield)
        root, topic = plugin.topic_of(item.path)
        path = root / "solutions" / f"{topic}.py"
        solution = plugin._module(item.config, ("ref", str(path)), path)
        impl, helpers, calls = item.funcargs.get("impl"), item.funcargs.get("helpers"), []
        if impl is not None:
            item.funcargs["impl"] = twins.Watched(impl, solution, calls)
        if helpers is not None:
            item.funcargs["helpers"] = twins.Watched(helpers, solution, calls, helpers=True)
        result = yield  # the check itself; a failure ends here
        twins.verify(impl, helpers, solution, calls, item.nodeid.split("/")[-1])
        return result


def _live_recorded(request, check_id):
    return LiveBook(_live_solution(request), check_id).root()


def _live_solution(request):
    root, topic = plugin._topic(request)
    path = root / "solutions" / f"{topic}.py"
    checking.begin_check(plugin._recording(request.config, root, topic).mistakes)
    course = plugin._course_of(request.config, root)[0]
    return LiveSolution(
        plugin._module(request.config, ("ref", str(path)), path), course, topic, request.config.stash[plugin.MODULES]
    )


@pytest.fixture
def ref(request):
    """The reference solution; hidden checks only (the student release has no solutions). A wrong
    answer compared with one of its functions' answers is named after the mutant it matches."""
    return _live_solution(request)


def pytest_configure(config):
    """With --fmgrade-stand-ins (`fmgrade grade`): a failing prerequisite is answered by the
    reference, through the grader (grader.instructor.standins), instead of blocking."""
    if config.getoption("--fmgrade-stand-ins", False):
        config.stash[plugin.STAND_INS] = lambda root, topic: _stand_ins(config, root, topic)


def _stand_ins(config, root, topic):
    modules = config.stash[plugin.MODULES]
    key = ("stand-ins", str(root), topic)
    if key not in modules:
        path = root / "solutions" / f"{topic}.py"
        module = plugin._module(config, ("ref", str(path)), path)
        modules[key] = standins.StandIns(module, path.read_text(encoding="utf-8"), str(path))
    return modules[key]
