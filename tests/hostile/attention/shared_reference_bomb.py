HOSTILE = {
    "attack": "rate() returns a list of 10^6 items that is tiny on the wire (shared references; the worker's "
              "encode is patched not to expand it), so the grader's decoder expands it",
    "exercise": "rate",
    "status": ("error",),
    "message": "",
}
import __main__  # noqa: E402

_real_encode = getattr(__main__, "encode", None)
_honest_rate = rate  # noqa: F821


def _encode_lists_as_they_are(value, register):
    return value if type(value) is list else _real_encode(value, register)


def rate(step, model_size, factor, warmup):
    if not _from_grader():  # noqa: F821
        return _honest_rate(step, model_size, factor, warmup)
    bomb = [0] * 10
    for _ in range(5):  # 10^6 leaves in 6 lists of 10 references (about 1 s to expand); 4 more levels: hours
        bomb = [bomb] * 10
    if _real_encode is not None:
        __main__.encode = _encode_lists_as_they_are
    return bomb
