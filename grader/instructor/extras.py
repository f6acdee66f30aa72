"""Optional features that need the `instructor` extra (`pip install 'fmgrade[instructor]'`).

A learner's install leaves out nbgrader and the PostgreSQL driver; asking for a feature that
needs them is a one-line error naming the install command, never an ImportError traceback.
"""

import importlib.util

INSTALL = "pip install 'fmgrade[instructor]'"


class MissingExtra(Exception):
    """An instructor feature was asked for in an install without the `instructor` extra."""


def installed(module):
    """Whether `module` can be imported (looked up, not imported: nbgrader takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(feature, module, *alternatives):
    """Raise MissingExtra unless `module` (or one of `alternatives`) is installed."""
    if not any(installed(m) for m in (module, *alternatives)):
        raise MissingExtra(
            f"{feature} needs {module}, which is not installed here: {INSTALL} "
            "(in a clone of the course: pip install -e '.[instructor]')"
        )
