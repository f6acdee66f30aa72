HOSTILE = {
    "attack": "subsequent_mask prints terminal escapes, lone surrogates and control characters (the check's "
              "output), then answers wrongly",
    "exercise": "subsequent_mask",
    "status": ("failed", "error"),
}
import sys  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        print("\x1b[2J\x1b[H\x1b]52;c;ZXZpbA==\x07 all checks \x1b[32mPASSED\x1b[0m \ud800 \x00\x0c\x08\x08\r\u202e")
        sys.stderr.write("\x1b]8;;file:///etc/passwd\x1b\\click\x1b]8;;\x1b\\\n")
        return ~_honest_subsequent_mask(size)
    return _honest_subsequent_mask(size)
