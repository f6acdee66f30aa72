"""Turn the outcome of one check into a status and a message a learner can act on."""

import traceback
from pathlib import Path

from grader.errors import ImportFailed, LearnerCodeError, LearnerTimeout, WorkerLost
from grader.results import ERROR, FAILED, NOT_STARTED, PASSED, SUSPECT_MARK, TIMEOUT

MAX_FRAMES = 12  # learner frames shown under an error (a deep recursion shows its last ones)

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
        return ERROR, f"your code raised {exc}" + frames_text(exc.frames)
    if type(exc).__name__ == "RecordingMissing":
        return ERROR, f"course problem, not yours: {exc}"
    if isinstance(exc, AssertionError):
        return FAILED, str(exc).split("\nassert ")[0].strip() or "check failed"
    where = _learner_frame(excinfo, impl_path)
    if where:
        frames = frames_text(_learner_frames(excinfo, impl_path))
        return ERROR, f"your code raised {type(exc).__name__}: {exc} ({where})" + frames
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


def _learner_frames(excinfo, impl_path):
    """(file, line, function, code) of every frame in learner code, outermost first (in-process)."""
    path = Path(impl_path)
    shown = f"{path.parent.name}/{path.name}"
    return [
        (shown, frame.lineno, frame.name, frame.line or "")
        for frame in traceback.extract_tb(excinfo.tb)
        if frame.filename == str(impl_path)
    ][-MAX_FRAMES:]


def frames_text(frames):
    """The learner's frames under an error's first line: each file:line and function with its
    code, from the check's call down to the raise, innermost last. '' when there are none."""
    if not frames:
        return ""
    lines = ["", "in your code, from the check's call down to where it raised (innermost last):"]
    for file, line, name, code in frames[-MAX_FRAMES:]:
        lines.append(f"  {file}:{line} in {_shown(name, 80)}()")
        if code.strip():
            lines.append(f"      {_shown(code.strip(), 160)}")
    return "\n".join(lines)


def _shown(text, limit):
    """Learner text on one line: unprintable characters escaped, at most `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
