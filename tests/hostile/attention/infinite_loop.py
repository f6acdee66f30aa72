HOSTILE = {
    "attack": "while True: pass inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("timeout",),
    "message": "did not return within",
    # 10 s instead of the course's 30: the honest copy_task's training (about 1 s, a few on a busy
    # machine) still fits, and the bank does not wait half a minute per level
    "call_timeout": 10,
}
_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        while True:
            pass
    return _honest_subsequent_mask(size)
