HOSTILE = {
    "attack": "inside rate(): double-fork a daemon in a session of its own (it outlives the call and tries to "
              "outlive the grading), then return the honest value",
    "exercise": None,  # nothing to gain in points: the test checks that no process survives the grading
}
import os  # noqa: E402
import time  # noqa: E402

_honest_rate = rate  # noqa: F821


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        child = os.fork()
        if child == 0:
            os.setsid()
            if os.fork() == 0:
                deadline = time.monotonic() + 60  # bounded, in case nothing kills it
                while time.monotonic() < deadline:
                    time.sleep(0.2)
            os._exit(0)
        print(f"hostile: forked {child}, which left the session and forked a daemon")
    return _honest_rate(step, model_size, factor, warmup)
