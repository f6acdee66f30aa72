HOSTILE = {
    "attack": "os.kill(-1, SIGKILL) inside subsequent_mask() (every process the worker may signal), then the "
              "honest mask",
    "exercise": None,  # the test checks that the grader, a canary process and every other check survive
    "needs_confinement": True,  # unconfined, as root, this would kill the whole machine: never run it then
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        try:
            os.kill(-1, 9)
            print("hostile: kill(-1, SIGKILL) returned")
        except OSError as exc:
            print(f"hostile: kill(-1, SIGKILL) failed: {exc}")
    return _honest_subsequent_mask(size)
