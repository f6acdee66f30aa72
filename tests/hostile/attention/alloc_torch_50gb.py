HOSTILE = {
    "attack": "torch.empty(50 GiB) inside subsequent_mask()",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "memory",
}
import torch  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        hog = torch.empty(50 * 1024**3, dtype=torch.uint8)
        hog.fill_(1)
    return _honest_subsequent_mask(size)
