HOSTILE = {
    "attack": "print() 100 MB inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "printed more than",
}
_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        line = "x" * (1024 * 1024 - 1)
        for _ in range(100):
            print(line)
    return _honest_subsequent_mask(size)
