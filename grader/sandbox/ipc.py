"""System V and POSIX IPC objects a worker leaves behind, removed when it ends.

bwrap and `namespaces` give the worker an IPC namespace of its own, which the kernel empties
when its last process dies. At `user` and `process` isolation the worker shares the host's: a
shared memory segment it creates (shmget, shm_open) outlives it, holding memory that no limit
of the worker counts. When the worker ends, the grader removes

  - with a user id of its own: every System V object that user owns or created, and every
    file of /dev/shm and /dev/mqueue it owns;
  - without one (the grader's own user): the System V objects created since the worker
    started whose creator is no longer alive, and the /dev/shm files created since then that
    no live process holds open or mapped (another worker's are still in use: kept).

Linux only; elsewhere (and where /proc/sysvipc is missing) nothing is done.
"""

import ctypes
import ctypes.util
import os
import sys

IPC_RMID = 0
KINDS = ("shm", "sem", "msg")
POSIX_FOLDERS = ("/dev/shm", "/dev/mqueue")


def supported():
    return sys.platform.startswith("linux") and os.path.isdir("/proc/sysvipc")


def sysv_objects():
    """[(kind, id, {column: value})] of every System V IPC object of the host (this namespace)."""
    found = []
    for kind in KINDS:
        try:
            with open(f"/proc/sysvipc/{kind}", encoding="ascii", errors="replace") as table:
                header = table.readline().split()
                for line in table:
                    row = dict(zip(header, line.split()))
                    ident = row.get("shmid") or row.get("semid") or row.get("msqid")
                    if ident is not None:
                        found.append((kind, int(ident), row))
        except (OSError, ValueError):
            pass
    return found


def posix_objects():
    """{path: (owner uid, inode)} of the POSIX shared memory, semaphores and message queues."""
    found = {}
    for folder in POSIX_FOLDERS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            found[entry.path] = (info.st_uid, info.st_ino)
    return found


class Snapshot:
    """What existed when a worker started (only needed for a worker without a user id of its own)."""

    def __init__(self):
        self.sysv = {(kind, ident) for kind, ident, _ in sysv_objects()} if supported() else set()
        self.posix = posix_objects() if supported() else {}


def remove_left_by(uid=None, before=None):
    """Remove the IPC objects a finished worker left: those of user `uid`, or (uid None) those
    made since `before` (a Snapshot) by processes that are gone. Returns how many were removed."""
    if not supported():
        return 0
    removed = 0
    for kind, ident, row in sysv_objects():
        if uid is not None:
            mine = str(uid) in (row.get("uid"), row.get("cuid"))
        else:
            mine = (
                before is not None
                and (kind, ident) not in before.sysv
                and row.get("cuid") == str(os.getuid())
                and not _alive(row.get("cpid"))
            )
        if mine and _remove_sysv(kind, ident):
            removed += 1
    held = None
    for path, (owner, inode) in posix_objects().items():
        if uid is not None:
            mine = owner == uid
        else:
            if before is None or before.posix.get(path) == (owner, inode) or owner != os.getuid():
                continue
            held = _held_open() if held is None else held
            mine = inode not in held
        if mine:
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
    return removed


def _alive(pid):
    """Whether `pid` (sem has no creator column: then assumed alive, and kept) still runs."""
    if not pid or not pid.isdigit():
        return True
    return os.path.exists(f"/proc/{pid}")


def _held_open():
    """Inodes of /dev/shm and /dev/mqueue files some live process has open or mapped."""
    inodes = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                try:
                    if os.readlink(fd.path).startswith(POSIX_FOLDERS):
                        inodes.add(os.stat(fd.path).st_ino)
                except OSError:
                    pass
            with open(f"/proc/{entry.name}/maps", encoding="ascii", errors="replace") as maps:
                for line in maps:
                    fields = line.split(maxsplit=5)
                    if len(fields) == 6 and fields[5].startswith(POSIX_FOLDERS):
                        inodes.add(int(fields[4]))
        except (OSError, ValueError):
            pass
    return inodes


_libc = None


def _remove_sysv(kind, ident):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if kind == "shm":
        result = _libc.shmctl(ctypes.c_int(ident), IPC_RMID, None)
    elif kind == "sem":
        result = _libc.semctl(ctypes.c_int(ident), 0, IPC_RMID)
    else:
        result = _libc.msgctl(ctypes.c_int(ident), IPC_RMID, None)
    return result == 0
