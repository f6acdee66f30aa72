HOSTILE = {
    "attack": "inside subsequent_mask(): write 0.5 GiB into the scratch directory in 48 MiB files (each under the "
              "64 MiB file-size limit), then return the honest mask",
    "exercise": "subsequent_mask",
    "status": ("error",),
    "message": "",
    # bwrap and namespaces give a size-limited tmpfs; at process and user level the scratch is on the
    # host's disk, measured between calls, so a call that writes and deletes within itself is not seen
    "contained_by": ("bwrap", "namespaces"),
}
import os  # noqa: E402

_honest_subsequent_mask = subsequent_mask  # noqa: F821


def subsequent_mask(size):
    if _from_grader():  # noqa: F821
        chunk = b"\0" * (48 * 1024 * 1024)
        written = 0
        try:
            for i in range(11):  # 11 * 48 MiB > 0.5 GiB, 8 times the file-size limit
                with open(f"fill-{i}", "wb") as handle:
                    handle.write(chunk)
                written += len(chunk)
        finally:
            print(f"hostile: wrote {written / 2**30:.2f} GiB into {os.getcwd()}")
            for i in range(11):
                try:
                    os.unlink(f"fill-{i}")
                except OSError:
                    pass
    return _honest_subsequent_mask(size)
