HOSTILE = {
    "attack": "fork bomb inside subsequent_mask(): every process forks until the process limit (RLIMIT_NPROC) stops it",
    "exercise": "subsequent_mask",
    "status": ("timeout",),
    "message": "did not return within",
    "solo": True,  # 64 processes spinning: grade it alone
    "needs_confinement": True,  # as root without a user id of its own, RLIMIT_NPROC would not hold
    "needs_process_limit": True,
    "call_timeout": 10,  # the bomb is stopped by the timeout; the honest training runs after it, alone
}
import os  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft == resource.RLIM_INFINITY or soft > 1024:
            # Safety catch for this test bank: never bomb a machine the worker does not confine.
            raise RuntimeError(f"hostile fork bomb refused: RLIMIT_NPROC is {soft}, the worker is not confined")
        deadline = time.monotonic() + 45  # beyond the call's wall backstop (3 x 10 s); a bound even if nobody kills us
        while time.monotonic() < deadline:
            try:
                os.fork()
            except OSError:
                pass
        os._exit(0)
    return _honest_subsequent_mask(size)
