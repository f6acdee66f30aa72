"""A submission's exercise files, wherever a platform put them, copied into a folder `grade` reads.

Platforms lay submissions out differently: Gradescope unpacks an upload of `attention.py` flat
into /autograder/submission/, a GitHub upload keeps `exercises/attention.py`, a zip of a folder
adds one more level, and an nbgrader assignment folder holds `attention.py` or
`exercises/attention.py`. `stage` finds each topic's file among those places and copies it to
STAGED/exercises/TOPIC.py, so grading sees one layout and nothing else of the submission.

The submission is hostile: no symbolic link is followed at any level (a link to the kit's
solutions must not be graded), only regular files are read (not a FIFO or /dev/zero), opened
non-blocking, and at most MAX_BYTES of each.
"""
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 1_000_000  # a learner's exercise file is a few kB; more is a mistake or an attack


@dataclass
class Staged:
    folder: Path  # holds exercises/<topic>.py for every topic found
    found: dict = field(default_factory=dict)  # topic -> where it was found, relative to the submission
    problems: list = field(default_factory=list)  # one line per file that could not be used


def candidates(topic):
    """Where a topic's file may be, relative to the submission, most specific first."""
    return [Path("exercises") / f"{topic}.py", Path(f"{topic}.py")]


def stage(submission, topics, dest):
    """Copy the exercise file of each topic found in `submission` to DEST/exercises/."""
    submission, dest = Path(submission), Path(dest)
    (dest / "exercises").mkdir(parents=True, exist_ok=True)
    staged = Staged(dest)
    roots = [Path(".")]
    nested = _single_folder(submission)
    if nested is not None:  # an upload of one folder (a zipped repository): look inside it too
        roots.append(Path(nested))
    for topic in topics:
        for root in roots:
            found = None
            for relative in candidates(topic):
                try:
                    data = read_regular(submission, root / relative)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    staged.problems.append(f"{root / relative}: {exc.strerror or exc}")
                    found = False
                    break
                (dest / "exercises" / f"{topic}.py").write_bytes(data)
                staged.found[topic] = str(root / relative)
                found = True
                break
            if found is not None:
                break
    return staged


def read_regular(base, relative, limit=MAX_BYTES):
    """The bytes of BASE/RELATIVE, refusing symbolic links at every level, anything but a regular
    file, and files over `limit` bytes (OSError with a plain strerror)."""
    parts = Path(relative).parts
    if not parts or any(p in ("..", "") or os.sep in p for p in parts):
        raise OSError(errno.EINVAL, f"{relative} is not a path inside the submission")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    directory = os.open(base, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow, dir_fd=directory)
            except OSError as exc:
                raise _plain(exc, part) from None
            os.close(directory)
            directory = inner
        try:
            fd = os.open(parts[-1], os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=directory)
        except OSError as exc:
            raise _plain(exc, parts[-1]) from None
    finally:
        os.close(directory)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // 1000} kB")
    return data


def _plain(exc, part):
    if exc.errno == errno.ENOENT:
        return FileNotFoundError(errno.ENOENT, "missing")
    if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
        # O_NOFOLLOW reports a link as ELOOP (EMLINK on FreeBSD); O_DIRECTORY a non-folder as ENOTDIR
        return OSError(exc.errno, f"{part} is a symbolic link or not what was expected; links are not followed")
    return OSError(exc.errno, exc.strerror)


def _single_folder(submission):
    """The name of the only entry of `submission` when it is a real folder (not a link)."""
    try:
        entries = [e for e in os.scandir(submission) if not e.name.startswith((".", "__MACOSX"))]
    except OSError:
        return None
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):
        return entries[0].name
    return None
