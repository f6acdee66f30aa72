HOSTILE = {
    "attack": "bytearray(50 GiB) inside rate()",
    "exercise": "rate",
    "status": ("failed", "error"),  # the rate checks' helper reports exceptions as data
    "message": "memory",
}
_honest_rate = rate  # noqa: F821


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        hog = bytearray(50 * 1024**3)
        hog[-1] = 1
    return _honest_rate(step, model_size, factor, warmup)
