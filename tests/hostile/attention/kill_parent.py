HOSTILE = {
    "attack": "os.kill(os.getppid(), SIGKILL) inside rate()",
    "exercise": "rate",
    "status": ("failed", "error"),  # PermissionError, reported as data by the rate helper
    "message": "permission",
    "needs_confinement": True,  # a plain same-user process could kill the grader: run only when confined
}
import os  # noqa: E402

_honest_rate = rate  # noqa: F821


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        parent = os.getppid()
        print(f"hostile: killing my parent, pid {parent}")
        os.kill(parent, 9)
    return _honest_rate(step, model_size, factor, warmup)
