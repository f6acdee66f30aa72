"""Turn the outcome of one check into a status and a message a learner can act on."""

import traceback

from grader.errors import ImportFailed, LearnerCodeError, LearnerTimeout, WorkerLost
from grader.results import ERROR, FAILED, NOT_STARTED, PASSED, SUSPECT_MARK, TIMEOUT

__all__ = ["ImportFailed", "LearnerCodeError", "LearnerTimeout", "WorkerLost", "SUSPECT_MARK", "classify"]


def classify(excinfo, impl_path=None):
    """(status, message) for a check that raised `excinfo` (None when it passed)."""
    if excinfo is None:
        return PASSED, ""
    exc = excinfo.value
    if isinstance(exc, NotImplementedError) or (
        isinstance(exc, LearnerCodeError) and exc.type_name == "NotImplementedError"
    ):
        return NOT_STARTED, "not started: " + _not_implemented_text(exc)
    if isinstance(exc, ImportFailed):
        return ERROR, exc.message
    if isinstance(exc, LearnerTimeout):
        return TIMEOUT, str(exc)
    if isinstance(exc, WorkerLost):
        return ERROR, str(exc)
    if isinstance(exc, LearnerCodeError):
        return ERROR, f"your code raised {exc}"
    if type(exc).__name__ == "RecordingMissing":
        return ERROR, f"course problem, not yours: {exc}"
    if isinstance(exc, AssertionError):
        return FAILED, str(exc).split("\nassert ")[0].strip() or "check failed"
    where = _learner_frame(excinfo, impl_path)
    if where:
        return ERROR, f"your code raised {type(exc).__name__}: {exc} ({where})"
    return ERROR, f"the check could not use what your code returned: {type(exc).__name__}: {exc}"


def _not_implemented_text(exc):
    text = exc.message if isinstance(exc, LearnerCodeError) else str(exc)
    return text or "this exercise still raises NotImplementedError"


def _learner_frame(excinfo, impl_path):
    """'exercises/attention.py:57 in attention()' for the deepest frame in learner code."""
    if not impl_path:
        return ""
    found = ""
    for frame in traceback.extract_tb(excinfo.tb):
        if frame.filename == str(impl_path):
            found = f"line {frame.lineno} in {frame.name}()"
    return found
