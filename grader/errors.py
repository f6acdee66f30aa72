"""What learner code can do to a check instead of answering: raise, fail to import, run out of
time, or lose its worker. The sandbox raises these in the grader; verdicts turn them into statuses."""


class LearnerCodeError(Exception):
    """Learner code raised (in the worker); carries the type name and where it happened."""

    def __init__(self, type_name, message, where="", frames=()):
        self.type_name, self.message, self.where = type_name, message, where
        self.frames = list(frames)  # (file, line, function, code) of each learner frame, outermost first
        super().__init__(f"{type_name}: {message}" + (f" ({where})" if where else ""))


class ImportFailed(LearnerCodeError):
    """The learner module does not import; the message names the file and line."""


class LearnerTimeout(Exception):
    """A call into learner code did not return in time."""


class WorkerLost(Exception):
    """The worker died (crash, exit, memory, output flood); the message says which."""
