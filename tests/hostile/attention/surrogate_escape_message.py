HOSTILE = {
    "attack": "subsequent_mask raises with a message of lone surrogates, terminal escapes (a row redrawn as "
              "passed, OSC 52 to the clipboard), NUL and a bidi override, past the worker's 2000-character cut",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "\\x1b",
}
import __main__  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821
_real_describe = getattr(__main__, "describe", None)
_SCARY = "\ud800\udfff \x1b[2K\x1b[1G\x1b[32mPASSED\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x00\r\x9b2J \u202eevil "


def _describe_in_full(exc, module_file):
    """The worker's describe() without its cut, so the grader gets 200 kB of this."""
    found = _real_describe(exc, module_file)
    return {**found, "message": str(exc), "type": "Value\x1b[31mError\ud800"}


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        if _real_describe is not None:
            __main__.describe = _describe_in_full
        raise ValueError(_SCARY * 4000)
    return _honest_subsequent_mask(size)
