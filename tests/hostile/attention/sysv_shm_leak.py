HOSTILE = {
    "attack": "at import, System V shared memory (shmget, touched so it is resident) and a POSIX "
              "/dev/shm file, never removed: memory no limit counts, outliving the worker",
    "exercise": None,
}
import ctypes  # noqa: E402
import os  # noqa: E402

_libc = ctypes.CDLL(None)
_libc.shmat.restype = ctypes.c_void_p
for _i in range(4):  # keys of this grading (the test tells them from other programs' by them)
    _id = _libc.shmget(0x46000000 + int("@PORT@") * 4 + _i, 16 << 20, 0o1000 | 0o666)  # IPC_CREAT
    if _id >= 0:
        _at = _libc.shmat(_id, None, 0)
        if _at not in (None, ctypes.c_void_p(-1).value):
            ctypes.memset(_at, 1, 16 << 20)
try:
    _fd = os.open("/dev/shm/@UNIX_NAME@", os.O_CREAT | os.O_RDWR, 0o666)
    os.ftruncate(_fd, 16 << 20)
    os.write(_fd, b"1" * 4096)
except OSError:
    pass
