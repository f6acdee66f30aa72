HOSTILE = {
    "attack": "os.write(1, ...) 100 MB inside subsequent_mask() (below Python's sys.stdout)",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "printed more than",
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        chunk = b"x" * (1024 * 1024)
        for _ in range(100):
            os.write(1, chunk)
    return _honest_subsequent_mask(size)
