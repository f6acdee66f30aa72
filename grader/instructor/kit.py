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


# --- the kit's secret: reproducible seeds ----------------------------------------------------

SECRET_FILE = ".fmgrade-secret"  # at the kit's root; `fmgrade release --kit` writes it, 0600
SEED_RANGE = 2**31  # the seeds the pytest plugin draws itself


class KitError(Exception):
    """The kit cannot grade as asked; one line for a person."""


def secret_path(root):
    return Path(root) / SECRET_FILE


def read_secret(root):
    """The secret's bytes, or None when the kit has none; KitError when it is unusable."""
    path = secret_path(root)
    if not os.path.lexists(path):
        return None
    if os.path.islink(path) or not path.is_file():
        raise KitError(f"{path} is not a regular file (the kit's secret is never read through a link)")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if len(text) < 32 or any(c not in "0123456789abcdef" for c in text):
        raise KitError(f"{path} is not a kit secret (64 hexadecimal digits); delete it to make a new one")
    return text.encode("ascii")


def make_secret(root):
    """The kit's secret, created (0600, race-free: the first writer wins) when it has none. A
    kit rebuilt into the same folder keeps its secret, so its grades stay the same."""
    import secrets

    existing = read_secret(root)
    if existing is not None:
        return existing
    path = secret_path(root)
    tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)  # fails when another grader made one meanwhile: theirs is used
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return read_secret(root)


def seed_for(secret, student):
    """The hidden checks' seed of `student`: HMAC-SHA256(secret, student id) reduced to an int in
    [0, 2**31). Nobody without the secret can precompute it; every run, shard and platform that
    has the kit gets the same one."""
    import hmac

    digest = hmac.new(secret, str(student).encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE


# --- which kit graded: its hash, and whether it can grade at all ------------------------------

HASHED = ("course.yml", "solutions", "tests/checks")  # what decides a grade: outline, solutions, checks


def kit_hash(root):
    """A short hash of the kit's outline, solutions and checks (contents only, not permissions, so
    the instructor's checkout and the 0600 kit built from it agree). Results carry it, and
    `report`, `shards merge` and `grade --resume` never mix results of two kits."""
    root = Path(root)
    digest = hashlib.sha256()
    for name in HASHED:
        base = root / name
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for path in paths:
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts or path.suffix == ".pyc":
                continue
            digest.update(relative.as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def grading_problem(course, topics):
    """Why `course` cannot serve as a grading kit for `topics` ("" when it can): a kit has the
    solutions (hidden checks compare with them) and hidden checks. The student release has
    neither, and graded as a kit it would score visible checks only, without a word."""
    missing = [f"solutions/{t}.py" for t in topics if not course.solution_path(t).is_file()]
    if missing:
        return (
            f"{course.root} is not a grading kit: it has no {', '.join(missing)} (the student release?); "
            "give the kit that `fmgrade release OUT --kit KIT` wrote"
        )
    if topics and not any(_has_hidden_checks(course.checks_dir(t)) for t in topics):
        return (
            f"{course.root} is not a grading kit: no check of {', '.join(topics)} is hidden (the student release?); "
            "give the kit that `fmgrade release OUT --kit KIT` wrote"
        )
    return ""


def _has_hidden_checks(folder):
    import re

    marker = re.compile(r"mark\.hidden\b")
    return any(marker.search(p.read_text(encoding="utf-8", errors="replace")) for p in Path(folder).glob("test_*.py"))
