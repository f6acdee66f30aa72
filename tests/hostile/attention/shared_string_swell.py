HOSTILE = {
    "attack": "rate() returns one 10 MB string referenced 1000 times: 10 MB on the wire, 10 GB for any "
              "message that shows it in full",
    "exercise": "rate",
    "status": ("error", "failed"),
}
_honest_rate = rate  # noqa: F821


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        return ["\x1b[2J" + "x" * 10_000_000] * 1000
    return _honest_rate(step, model_size, factor, warmup)
