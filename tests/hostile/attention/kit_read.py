HOSTILE = {
    "attack": "attention not implemented; it reads the kit's solutions/attention.py by absolute path, through "
              "the grader's /proc/<pid>/cwd, /proc/<pid>/root and open files, and execs the reference",
    "exercise": "attention",
    "status": ("not_started",),
    "message": "not started",
    "contained_by": ("bwrap", "namespaces", "user"),  # process isolation does not hide a kit others can read
    "grader_cwd": "course",  # the grader runs from the kit's folder, as `fmgrade grade` often does
}
import os  # noqa: E402
from pathlib import Path  # noqa: E402

_honest_attention = attention  # noqa: F821
_FOUND = []


def _paths():
    kit = "@COURSE_ROOT@"
    yield f"{kit}/solutions/attention.py"
    pids = [os.getppid()] + [int(p) for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids:
        yield f"/proc/{pid}/cwd/solutions/attention.py"
        yield f"/proc/{pid}/root{kit}/solutions/attention.py"
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if "/solutions/" in target or target.endswith("/solutions"):
                    yield f"/proc/{pid}/fd/{fd}"
        except OSError:
            pass


def _reference():
    if not _FOUND:
        found = None
        for path in _paths():
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            if "def attention" in text:
                found = text
                print(f"hostile: read the kit through {path}")
                break
        _FOUND.append(found)
    return _FOUND[0]


def attention(query, key, value, mask=None, dropout=None):
    if not _from_grader():  # noqa: F821
        return _honest_attention(query, key, value, mask, dropout)
    source = _reference()
    if source is None:
        raise NotImplementedError("exercise `attention`: TODO (and the kit could not be read)")
    reference = {}
    exec(compile(source, "reference.py", "exec"), reference)
    return reference["attention"](query, key, value, mask, dropout)
