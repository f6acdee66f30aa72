"""The grading kit is private and must not change while it grades.

`protect` makes a kit readable by its owner only (folders 0700, files 0600): learner code
running under another user id cannot read the solutions or hidden checks, nor write into them.
`fingerprint` hashes what grading relies on (outline, grader, solutions, checks, their helpers
and any conftest.py), so `grade` can prove afterwards that no submission changed it: a planted
conftest.py or .pyc would otherwise grade every later student. The grader itself writes no
bytecode while grading (`no_bytecode`), so any change is someone else's.
"""

import contextlib
import hashlib
import os
import stat
import sys
from pathlib import Path

# What grading reads (hidden checks name known mistakes from tests/mutants): these folders, hashed whole, and these files.
FOLDERS = ("grader", "exercises", "solutions", "tests/checks", "tests/mutants")
FILES = ("course.yml", "pyproject.toml", "conftest.py", "tests/conftest.py", "tests/__init__.py")


class KitChanged(Exception):
    def __init__(self, changed):
        self.changed = changed
        super().__init__("the grading kit changed: " + ", ".join(changed))


def protect(folder):
    """Folders 0700, files 0600 (executables 0700), the folder itself included."""
    folder = Path(folder)
    for path, _dirs, names in os.walk(folder):
        os.chmod(path, 0o700)
        for name in names:
            target = os.path.join(path, name)
            if not os.path.islink(target):
                os.chmod(target, 0o700 if os.stat(target).st_mode & 0o100 else 0o600)
    return folder


def fingerprint(root, skip=()):
    """{relative path: digest} for everything grading relies on under `root`; `skip` lists
    paths left out (e.g. an --output folder inside the kit)."""
    root = Path(root).resolve()
    skipped = {Path(s).resolve() for s in skip}
    found = {}
    for name in FILES:
        if os.path.lexists(root / name):
            found[name] = _digest(root / name)
    for name in FOLDERS:
        for path, dirs, names in os.walk(root / name):
            for entry in [*dirs, *names]:
                full = os.path.join(path, entry)
                if Path(full).resolve() not in skipped and (entry in names or os.path.islink(full)):
                    found[_relative(root, full)] = _digest(full)
            dirs[:] = [
                d for d in dirs if not os.path.islink(os.path.join(path, d)) and Path(path, d).resolve() not in skipped
            ]
    return found


class Guard:
    """Raise KitChanged from `check()` once anything `fingerprint` covers differs from the start."""

    def __init__(self, root, skip=()):
        self.root, self.skip = root, skip
        self.before = fingerprint(root, skip)

    def check(self):
        changed = changes(self.before, fingerprint(self.root, self.skip))
        if changed:
            raise KitChanged(changed)


def _relative(root, path):
    return Path(path).relative_to(root).as_posix()


def _digest(path):
    """Type, permissions and content (a link's target): a chmod is a change too."""
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    head = f"{kind:o} {stat.S_IMODE(st.st_mode):o} "
    if stat.S_ISLNK(st.st_mode):
        return head + os.readlink(path)
    if not stat.S_ISREG(st.st_mode):
        return head
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return head + digest.hexdigest()


def changes(before, after):
    """['tests/checks/attention/conftest.py (added)', ...], sorted."""
    lines = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            lines.append(f"{path} (removed)")
        elif path not in before:
            lines.append(f"{path} (added)")
        elif before[path] != after[path]:
            lines.append(f"{path} (changed)")
    return lines


@contextlib.contextmanager
def no_bytecode():
    """The grader writes no .pyc files (into the kit's __pycache__ folders) within the block."""
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = saved
