HOSTILE = {
    "attack": "while True: pass inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("timeout",),
    "message": "did not return within",
    # the course's own call timeout (30 s): a shorter one would also cut the honest copy_task's
    # training short on a busy machine
}
_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        while True:
            pass
    return _honest_subsequent_mask(size)
