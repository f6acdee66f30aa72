HOSTILE = {
    "attack": "rate()'s reply is hand-made: an error that is a list, an output count that is text, an "
              "output that is a number, limits that are not a list; the grader must trust none of it",
    "exercise": "rate",
    "status": ("error",),
}
import __main__  # noqa: E402

_real_dumps = getattr(__main__, "dumps", None)
_honest_rate = rate  # noqa: F821


def _forged_dumps(message):
    __main__.dumps = _real_dumps  # one forged reply per call
    return _real_dumps({"error": ["\x1b[2J"] * 10, "output": 12, "output_total": "lots", "limits": 3})


def rate(step, model_size, factor, warmup):
    if _from_grader() and _real_dumps is not None:  # noqa: F821
        __main__.dumps = _forged_dumps
    return _honest_rate(step, model_size, factor, warmup)
