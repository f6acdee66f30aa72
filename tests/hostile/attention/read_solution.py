HOSTILE = {
    "attack": "attention not implemented; it looks for solutions/attention.py (the real repo, the course root, "
              "relative guesses, other processes' cwd, a walk of the filesystem) and execs the reference",
    "exercise": "attention",
    "status": ("not_started",),
    "message": "not started",
    # it searches the whole filesystem, this checkout included: only a filesystem view hides that
    # ("user" hides the kit alone, see kit_read)
    "contained_by": ("bwrap", "namespaces"),
}
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

_honest_attention = attention  # noqa: F821


_FOUND = []  # the search runs once per worker


def _reference_source():
    if not _FOUND:
        _FOUND.append(_search())
    return _FOUND[0]


def _search():
    guesses = ["@COURSE_ROOT@/solutions/attention.py", "@REPO_ROOT@/solutions/attention.py",
               "solutions/attention.py", "../solutions/attention.py", "../../solutions/attention.py"]
    for base in (Path.cwd(), Path(__file__).resolve()):
        guesses += [str(parent / "solutions" / "attention.py") for parent in base.parents]
    for proc in Path("/proc").glob("[0-9]*"):
        guesses += [f"{proc}/cwd/solutions/attention.py", f"{proc}/root@REPO_ROOT@/solutions/attention.py"]
    for guess in guesses:
        try:
            return Path(guess).read_text()
        except OSError:
            pass
    deadline = time.monotonic() + 1.5
    for folder, subfolders, files in os.walk("/"):
        subfolders[:] = [s for s in subfolders if s not in ("proc", "sys", "dev", "usr")]
        if folder.endswith("solutions") and "attention.py" in files:
            try:
                return Path(folder, "attention.py").read_text()
            except OSError:
                pass
        if time.monotonic() > deadline:
            break
    return None


def attention(query, key, value, mask=None, dropout=None):
    if not _from_grader():  # noqa: F821
        return _honest_attention(query, key, value, mask, dropout)
    source = _reference_source()
    if source is None:
        raise NotImplementedError("exercise `attention`: TODO (and the reference solution was nowhere to be found)")
    print("hostile: found the reference solution")
    reference = {}
    exec(compile(source, "reference.py", "exec"), reference)
    return reference["attention"](query, key, value, mask, dropout)
