HOSTILE = {
    "attack": "inside rate(): double-fork a daemon that waits until the worker is gone, then rewrites the "
              "learner's progress.json and the grader's results with full marks (as in a check whose grader "
              "has already finished); rate returns the honest value",
    "exercise": None,  # nothing to gain in points: no process may survive, no file may change
    "forges": ["@COURSE_ROOT@/.fmgrade/progress.json", "@GRADER_CWD@/.fmgrade/progress.json",
               "@GRADER_CWD@/results.json", "@DROPBOX@/daemon-was-here"],
}
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

_honest_rate = rate  # noqa: F821


def _daemon(worker):
    deadline = time.monotonic() + 60  # bounded, in case nothing kills it
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except OSError:
            break  # the worker is gone: the grader thinks it is done
        time.sleep(0.05)
    time.sleep(0.2)
    forged = {"format_version": 1, "topics": {"attention": {"score": 999, "max_score": 999,
                                                            "updated": "FMGRADE-HOSTILE-FORGERY"}}}
    for target in HOSTILE["forges"]:
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as handle:
                json.dump(forged, handle)
        except OSError:
            pass


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        worker = os.getpid()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                try:
                    _daemon(worker)
                finally:
                    os._exit(0)
            os._exit(0)
        print("hostile: a daemon waits for the worker to end")
    return _honest_rate(step, model_size, factor, warmup)
