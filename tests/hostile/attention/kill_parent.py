HOSTILE = {
    "attack": "os.kill(os.getppid(), SIGKILL) and the same to the grader found in /proc (a python process "
              "whose command line names pytest or fmgrade) inside rate(), then the honest value",
    "exercise": None,  # the test checks that the grader survives and every check keeps its points
    "needs_confinement": True,  # a plain same-user process could kill the grader: run only when confined
}
import os  # noqa: E402

_honest_rate = rate  # noqa: F821


def _graders():
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if b"test_hostile" in handle.read() and int(name) != os.getpid():
                    yield int(name)
        except (OSError, ValueError):
            pass


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        for pid in [os.getppid(), *_graders()]:
            try:
                os.kill(pid, 9)
                print(f"hostile: SIGKILL sent to {pid}")
            except OSError as exc:
                print(f"hostile: could not kill {pid}: {exc}")
    return _honest_rate(step, model_size, factor, warmup)
