"""`ref` in hidden checks: the live solution, which also names known mistakes.

A call of one of the solution's functions (`ref.attention(q, k, v)`) is made on the solution
at once. Only if a comparison then fails are the topic's mutants (tests/mutants/<topic>) run on
the same arguments, from the same random state, so that the failure can say which known mistake
the learner's answer matches. Classes and constants are the solution's own.
"""

import copy
import tempfile
import types
from pathlib import Path

import pytest
import torch

from grader import checking
from grader import recorded_data as data
from grader.instructor import mutants, standins
from grader.judge import inprocess, plugin
from grader.judge.replay import _differ, _rng_state, _set_rng_state


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


@pytest.fixture
def ref(request):
    """The reference solution; hidden checks only (the student release has no solutions). A wrong
    answer compared with one of its functions' answers is named after the mutant it matches."""
    root, topic = plugin._topic(request)
    path = root / "solutions" / f"{topic}.py"
    checking.begin_check(plugin._recording(request.config, root, topic).mistakes)
    course = plugin._course_of(request.config, root)[0]
    return LiveSolution(
        plugin._module(request.config, ("ref", str(path)), path), course, topic, request.config.stash[plugin.MODULES]
    )


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
