HOSTILE = {
    "attack": "while True: pass inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("timeout",),
    "message": "did not return within",
    "call_timeout": 12,
}
_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        while True:
            pass
    return _honest_subsequent_mask(size)
