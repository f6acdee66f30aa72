"""`fmgrade reset TOPIC [EXERCISE]`: put the stub back, keeping what the learner wrote.

Before anything is written, the learner's whole file is copied byte for byte to
`.fmgrade/backups/<topic>/<timestamp>.py`; `--undo` brings the newest backup back, after
backing up the current file the same way. Nothing the learner wrote is ever lost.

The original stub comes from `solutions/<topic>.py` through the stub generator (the
instructor's repository) or from `exercises/.original/<topic>.py`, which the student release
ships (it has no solutions).
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

from grader import files, stubgen
from grader.learner import regions
from grader.learner.progress import PROGRESS_DIR

BACKUPS = "backups"
ORIGINALS = Path("exercises") / ".original"


class ResetError(Exception):
    """A reset that cannot be done; one sentence for the learner. Nothing was written."""


@dataclass(frozen=True)
class ResetDone:
    path: Path  # the learner's file
    backup: Path | None  # where its previous version is kept (None: there was nothing to keep)
    summary: str  # one line for the learner


def original_stub(course, topic_id):
    """The stub of `topic_id` as released."""
    if course.solution_path(topic_id).is_file():
        try:
            return stubgen.stub_for(course, topic_id)
        except (stubgen.StubError, SyntaxError) as exc:
            raise ResetError(f"the stub of {topic_id} cannot be generated: {exc}") from None
    shipped = course.root / ORIGINALS / f"{topic_id}.py"
    try:
        return shipped.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResetError(
            f"there is no original of exercises/{topic_id}.py to restore from "
            f"(neither solutions/{topic_id}.py nor {ORIGINALS.as_posix()}/{topic_id}.py)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResetError(f"{shipped} cannot be read: {exc}") from None


def save_originals(course, out):
    """Write `exercises/.original/<topic>.py` into the release folder `out`."""
    for topic in course.topics:
        if course.solution_path(topic.id).is_file():
            files.write_atomically(Path(out) / ORIGINALS / f"{topic.id}.py", stubgen.stub_for(course, topic.id))


def backups_dir(course, topic_id):
    return course.root / PROGRESS_DIR / BACKUPS / topic_id


def backup(course, topic_id):
    """Copy the learner's file, byte for byte, to a new timestamped backup; None if it is missing."""
    try:
        data = course.exercise_path(topic_id).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResetError(f"exercises/{topic_id}.py cannot be read, so it was not touched: {exc.strerror}") from None
    folder = backups_dir(course, topic_id)
    folder.mkdir(parents=True, exist_ok=True)
    while True:  # microseconds keep names unique and sorted; O_EXCL never overwrites one
        now = time.time()
        name = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1e6) % 1_000_000:06d}.py"
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return folder / name


def reset_exercise(course, topic_id, exercise_id):
    """Restore the stub's region(s) of one exercise; the rest of the file stays as it is."""
    topic = course.topic(topic_id)
    topic.exercise(exercise_id)  # a CourseError naming the exercises when unknown
    path = course.exercise_path(topic_id)
    shown = f"exercises/{topic_id}.py"
    stub = original_stub(course, topic_id)
    try:
        learner = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ResetError(f"{shown} is missing: `fmgrade reset {topic_id}` brings the whole stub back") from None
    except UnicodeDecodeError:
        raise ResetError(
            f"{shown} is not UTF-8 text, so one exercise cannot be picked out of it: "
            f"`fmgrade reset {topic_id}` resets the whole file (your version is backed up first)"
        ) from None
    if exercise_id not in regions.stub_exercises(stub):
        raise ResetError(f"exercise `{exercise_id}` has no TODO in the stub of {shown}")
    new = _with_stub_regions(stub, learner, exercise_id, shown, topic_id)
    if new == learner:
        return ResetDone(path, None, f"`{exercise_id}` in {shown} is already the stub: nothing changed")
    saved = backup(course, topic_id)
    files.write_atomically(path, new.encode("utf-8"))
    return ResetDone(path, saved, f"`{exercise_id}` in {shown} is the stub again")


def _with_stub_regions(stub, learner, exercise_id, shown, topic_id):
    whole = f"`fmgrade reset {topic_id}` resets the whole file (your version is backed up first)"
    try:
        mine = regions.locate(stub, learner, exercise_id, filename=shown)
    except SyntaxError as exc:
        raise ResetError(
            f"{shown}:{exc.lineno}: {exc.msg}: one exercise can only be reset in a file that "
            f"Python can read; fix that line, or {whole}"
        ) from None
    except regions.LocateError as exc:
        raise ResetError(f"{exc}; or {whole}") from None
    originals = regions.stub_spans(stub, exercise_id)
    lines = regions.lines_of(learner)
    newline = "\r\n" if "\r\n" in learner else "\n"
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    stub_lines = regions.lines_of(stub)
    for span, original in sorted(zip(mine, originals), key=lambda pair: -pair[0].first):
        replacement = stub_lines[original.first - 1 : original.last]
        lines[span.first - 1 : span.last] = [
            _reindent(line, original.indent, span.indent).replace("\n", newline) for line in replacement
        ]
    new = "".join(lines)
    return learner if new == learner + newline else new


def _reindent(line, old, new):
    if old == new or not line.startswith(old):
        return line
    return new + line[len(old) :]


def reset_file(course, topic_id):
    """Restore the whole stub of `topic_id`."""
    course.topic(topic_id)
    path = course.exercise_path(topic_id)
    stub = original_stub(course, topic_id)
    try:
        if path.read_bytes() == stub.encode("utf-8"):
            return ResetDone(path, None, f"exercises/{topic_id}.py is already the stub: nothing changed")
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ResetError(f"exercises/{topic_id}.py cannot be read, so it was not touched: {exc.strerror}") from None
    saved = backup(course, topic_id)
    files.write_atomically(path, stub.encode("utf-8"))
    return ResetDone(path, saved, f"exercises/{topic_id}.py is the stub again")


def newest_backup(course, topic_id):
    folder = backups_dir(course, topic_id)
    found = sorted(p for p in folder.glob("*.py") if p.is_file()) if folder.is_dir() else []
    return found[-1] if found else None


def undo(course, topic_id):
    """Bring the newest backup back, after backing up the current file."""
    course.topic(topic_id)
    last = newest_backup(course, topic_id)
    if last is None:
        raise ResetError(
            f"there is no backup of exercises/{topic_id}.py in "
            f"{backups_dir(course, topic_id).relative_to(course.root).as_posix()}/ to bring back"
        )
    data = last.read_bytes()
    path = course.exercise_path(topic_id)
    try:
        if path.read_bytes() == data:
            return ResetDone(path, None, f"exercises/{topic_id}.py already equals its newest backup {last.name}")
    except FileNotFoundError:
        pass
    saved = backup(course, topic_id)
    files.write_atomically(path, data)
    return ResetDone(path, saved, f"exercises/{topic_id}.py is back to the backup {last.name}")
