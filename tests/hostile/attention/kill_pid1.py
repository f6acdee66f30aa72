HOSTILE = {
    "attack": "os.kill(1, SIGKILL) inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "permission",
    "needs_confinement": True,
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        os.kill(1, 9)
    return _honest_subsequent_mask(size)
