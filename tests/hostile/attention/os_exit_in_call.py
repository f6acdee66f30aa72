HOSTILE = {
    "attack": "os._exit(0) inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "exit",
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        os._exit(0)
    return _honest_subsequent_mask(size)
