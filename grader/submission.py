"""Reading a learner's source file without trusting the folder it sits in.

A submission is hostile input. Under its root nothing is followed or waited for:
  - no symbolic link at any path component (`exercises/` itself, or the file): a link could
    submit the reference solution or reveal a secret file of the grader's machine;
  - only a regular file (a FIFO would block the grader, a device such as /dev/zero never ends),
    opened non-blocking, with one link only (a hard link is another file's content);
  - at most `max_bytes` are read, and the text must be UTF-8 without NUL bytes.
Every refusal is one sentence naming the file; the file's content never appears in it.

The walk opens one component at a time relative to the folder opened before it
(`os.open(name, O_NOFOLLOW, dir_fd=...)`), so a link swapped in between two steps is refused
too. Where the platform lacks `dir_fd` or O_NOFOLLOW (native Windows), each component is
checked with `lstat` and the opened file must be the very file that was checked.
"""

import errno
import os
import stat
from pathlib import Path

DEFAULT_MAX_BYTES = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = (
    os.O_RDONLY
    | _NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)
_DIR_FLAGS = _FILE_FLAGS | getattr(os, "O_DIRECTORY", 0)
OPENAT = bool(_NOFOLLOW) and os.open in os.supports_dir_fd and os.stat in os.supports_dir_fd
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)


class Unusable(Exception):
    """The file cannot be used as the learner's module; the message says why, for a person."""


class Missing(Unusable):
    """The file (or a folder on its way) is not there at all."""


def read_bytes(root, relative, max_bytes=DEFAULT_MAX_BYTES):
    """The bytes of `root/relative` under the rules above, or raise Unusable (Missing when absent).

    `root` itself is trusted (the instructor or the learner named it); below it nothing is."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise ValueError(f"{relative!r} is not a path inside the learner's folder")
    fd = _open_beneath(Path(root), parts) if OPENAT else _open_checked(Path(root), parts)
    try:
        return _read_capped(fd, "/".join(parts), max_bytes)
    finally:
        os.close(fd)


def read_source(root, relative, max_bytes=DEFAULT_MAX_BYTES):
    """The text of `root/relative` (e.g. "exercises/attention.py"), or raise Unusable."""
    data = read_bytes(root, relative, max_bytes)
    shown = "/".join(Path(relative).parts)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unusable(
            f"{shown} is not UTF-8 text ({exc.reason} at byte {exc.start}), so it is not Python source"
        ) from None
    if "\0" in text:
        raise Unusable(f"{shown} contains NUL bytes: it is binary data, not Python source")
    if not text.strip():
        raise Unusable(f"{shown} is empty")
    return text.removeprefix("\ufeff")  # a byte-order mark (Windows editors write one) is not code


def _kind(mode):
    kinds = (
        (stat.S_ISREG, "a file"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    for test, name in kinds:
        if test(mode):
            return name
    return "something other than a file"


def _require(st, shown, folder):
    """Refuse anything but a real folder (inner components) or a real, singly linked file."""
    if stat.S_ISLNK(st.st_mode) or getattr(st, "st_file_attributes", 0) & _REPARSE_POINT:
        raise Unusable(
            f"{shown.rstrip('/')} is a symbolic link; links are never followed, so submit the "
            f"{'folder' if folder else 'file'} itself"
        )
    if folder and not stat.S_ISDIR(st.st_mode):
        raise Unusable(f"{shown} is {_kind(st.st_mode)}, not a folder")
    if not folder:
        if not stat.S_ISREG(st.st_mode):
            raise Unusable(f"{shown} is {_kind(st.st_mode)}, not a regular file")
        if st.st_nlink > 1:
            raise Unusable(f"{shown} is a hard link to another file ({st.st_nlink} names); submit a plain copy")


def _shown(parts, i):
    """(how component i is named in messages, whether it must be a folder)."""
    folder = i < len(parts) - 1
    return "/".join(parts[: i + 1]) + ("/" if folder else ""), folder


def _missing(shown, exc):
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return Missing(f"{shown} is missing")
    if exc.errno == errno.ELOOP:
        return Unusable(f"{shown} is a symbolic link; links are never followed")
    return Unusable(f"{shown} could not be read ({exc.strerror})")


def _same(a, b):
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _open_beneath(root, parts):
    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise Unusable(f"the folder {root} could not be opened ({exc.strerror})") from None
    try:
        for i, name in enumerate(parts):
            shown, folder = _shown(parts, i)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                raise _missing(shown, exc) from None
            _require(st, shown, folder)  # before opening: a device is never opened at all
            try:
                child = os.open(name, _DIR_FLAGS if folder else _FILE_FLAGS, dir_fd=fd)
            except OSError as exc:  # swapped for a link or removed since the stat
                raise _missing(shown, exc) from None
            os.close(fd)
            fd = child
            opened = os.fstat(fd)
            if not _same(opened, st):
                raise Unusable(f"{shown} changed while it was being opened")
            _require(opened, shown, folder)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_checked(root, parts):
    """Without dir_fd/O_NOFOLLOW: lstat every component, open, then prove it was that file."""
    checked, path = [], root
    for i, name in enumerate(parts):
        path = path / name
        shown, folder = _shown(parts, i)
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise _missing(shown, exc) from None
        _require(st, shown, folder)
        checked.append((path, st))
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as exc:
        raise _missing("/".join(parts), exc) from None
    try:
        opened = os.fstat(fd)
        _require(opened, "/".join(parts), False)
        # Every component still the one checked: a folder swapped for a link in between shows here.
        still = [_lstat_or_none(p) for p, _ in checked]
        if not _same(opened, checked[-1][1]) or any(
            now is None or not _same(now, st) for now, (_, st) in zip(still, checked)
        ):
            raise Unusable(f"{'/'.join(parts)} changed while it was being opened")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _lstat_or_none(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _read_capped(fd, shown, max_bytes):
    size = os.fstat(fd).st_size
    if size > max_bytes:
        raise Unusable(f"{shown} is larger than the {_kb(max_bytes)} allowed ({_kb(size)})")
    chunks, total = [], 0
    while total <= max_bytes:
        try:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - total))
        except BlockingIOError:
            raise Unusable(f"{shown} did not deliver its content at once: not a regular file") from None
        except OSError as exc:
            raise Unusable(f"{shown} could not be read ({exc.strerror})") from None
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > max_bytes:  # it grew while being read
        raise Unusable(f"{shown} is larger than the {_kb(max_bytes)} allowed")
    return b"".join(chunks)


def _kb(n):
    return f"{n / 1024:g} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.3g} MB"
