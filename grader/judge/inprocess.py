"""Load course modules in this process: for the instructor's own test run, where the code
under test is the trusted reference solution. Learner code goes through `grader.sandbox.worker`."""

import importlib.util
import itertools
from pathlib import Path

_counter = itertools.count()


def load_module(path, label):
    """Import the file at `path` under a fresh private name (never cached in sys.modules)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"fmgrade_{label}_{next(_counter)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Helpers:
    """`helpers.name(*args)` calls `name(module, *args)` from a topic's `helpers.py`."""

    def __init__(self, helpers_module, module):
        self._helpers, self._module = helpers_module, module

    def __getattr__(self, name):
        function = getattr(self._helpers, name)
        return lambda *args, **kwargs: function(self._module, *args, **kwargs)
