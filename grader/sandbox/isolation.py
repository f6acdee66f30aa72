"""Which isolation the worker gets, and whether it is enough for the command that asks.

Levels, strongest first. Every report names the level used (`isolation` in JSON, JUnit and
Gradescope; a note in the text report for the weak ones).

  bwrap       bubblewrap: the worker sees only the system folders and Python (no course, no kit,
              no homes, an empty /tmp), has no network and private PID/IPC/UTS namespaces.
  namespaces  util-linux `unshare`: private PID, mount, network, IPC and UTS namespaces (plus a
              user namespace when not root); every top-level folder but the system's is covered
              by an empty tmpfs and Python is bound back, so the worker sees what bwrap shows.
  user        root only, no sandbox: a separate process running as a user id of its own that
              cannot read the kit (checked on the kit's permissions) nor signal the grader, but
              can read whatever else on the machine others may read (an instructor's checkout,
              a clone of the course in /tmp): like process, only on an explicit choice.
  process     a separate process with resource limits and nothing more; as root it still gets
              a user id of its own whenever Python can be run as one.

In bwrap and namespaces the worker also gets a user id of its own when the grader is root.
RLIMIT_NPROC is set only for a worker with a user id of its own: it counts every process of
the real user id (a learner already running 64 processes could not start a worker) and does
nothing for root. Without one, the PID namespace (bwrap, namespaces) ends every process of the
worker with it, and at process level nothing bounds their number (the report says process).
Python in a folder others cannot enter (a 0700 home) does not cost the user id of its own:
the worker covers that folder with a tmpfs in a private mount namespace and binds Python back,
the way bwrap shows it; the alternatives (a group or an ACL that opens the home) would change
the machine's permissions, which the grader must not do on its own.
Policy: `grade` runs learner code only at bwrap or namespaces, which hide the file system, unless
the instructor passes `--isolation user` or `--isolation process` (every report then says so); a learner's `check` takes the
strongest level available and falls back to process with one quiet note.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("bwrap", "namespaces", "user", "process")
SANDBOXES = ("bwrap", "namespaces")  # what `grade` accepts without an explicit choice: no course in view
SYSTEM_FOLDERS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")  # shown as they are


class IsolationUnavailable(Exception):
    """One line: which level is missing, why, and how to fix it."""


@dataclass(frozen=True)
class Platform:
    """What the operating system offers the grader and its worker. Tests inject the profiles
    of macOS and native Windows (`simulated`) to run those code paths on Linux."""

    name: str  # "linux", "macos", "windows"
    pass_fds: bool  # subprocess can hand the worker extra pipes (POSIX)
    posix: bool  # sessions, process groups, signals, user ids
    simulated: bool = False

    @classmethod
    def current(cls):
        name = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
        return cls(name, pass_fds=os.name == "posix", posix=os.name == "posix")

    @classmethod
    def simulate(cls, name):
        """macOS: setrlimit(RLIMIT_AS) raises in the worker. Windows: no `resource` module, no
        pass_fds, no sessions, signals or user ids."""
        if name == "macos":
            return cls("macos", pass_fds=True, posix=True, simulated=True)
        if name == "windows":
            return cls("windows", pass_fds=False, posix=False, simulated=True)
        raise ValueError(f"no platform profile {name!r}")

    @property
    def linux(self):
        return self.name == "linux"

    @property
    def root(self):
        return self.posix and os.getuid() == 0


PLATFORM = Platform.current()


# --- what this machine offers (probed once per process) ----------------------------------

_probes = {}


def _probe(key, run):
    if key not in _probes:
        _probes[key] = run()
    return _probes[key]


def _try(command, timeout=20):
    """None when `command` ran and exited 0, else a short reason."""
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def bwrap_path():
    """bwrap's absolute path as found on the grader's PATH (the worker's PATH is fixed and
    may not have it), if bwrap can make namespaces here. Not every container allows it."""

    def run():
        path = shutil.which("bwrap")
        if not path or not sys.platform.startswith("linux"):
            return None, "bwrap is not installed"
        path = os.path.abspath(path)
        why = _try([path, "--ro-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--unshare-net", "true"])
        return (None, f"bwrap cannot make namespaces here ({why})") if why else (path, None)

    return _probe("bwrap", run)


def unshare_command():
    """The util-linux `unshare` command line that gives the worker its namespaces, if they work
    here (a user namespace when not root; a container may forbid both)."""

    def run():
        path = shutil.which("unshare")
        if not path or not sys.platform.startswith("linux"):
            return None, "unshare (util-linux) is not installed"
        command = [
            os.path.abspath(path),
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--mount-proc",
            "--net",
            "--ipc",
            "--uts",
        ]
        if os.getuid() != 0:
            command += ["--user", "--map-root-user"]
        why = _try([*command, sys.executable, "-I", "-c", _MOUNT_PROBE])
        return (None, f"unshare cannot make namespaces here ({why})") if why else (command, None)

    return _probe("unshare", run)


def private_mounts_work():
    """As root: the worker can make a mount namespace of its own (to show Python to its own
    user id when Python lives in a folder others cannot enter, such as a 0700 home)."""
    if not (PLATFORM.linux and PLATFORM.root):
        return False
    return _probe(
        "mounts", lambda: _try([sys.executable, "-I", "-c", _MOUNT_PROBE.replace("# UNSHARE", "unshare()")]) is None
    )


# Mounts a tmpfs in a private mount namespace: what the worker's filesystem view needs.
_MOUNT_PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def unshare():
    if libc.unshare(0x00020000):
        raise OSError(ctypes.get_errno(), "unshare")
# UNSHARE
if libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None) or libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 6, b"size=1m"):
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
"""


# --- who can read what --------------------------------------------------------------------


def python_dirs():
    """Folders the worker's Python needs (it runs with -I, so sys.path is not among them):
    the installation's prefixes, its standard library and its site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    paths |= {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    # Both spellings: a venv reached through a symlink runs as its unresolved path.
    return sorted({str(q) for p in paths if p and Path(p).is_dir() for q in (os.path.abspath(p), Path(p).resolve())})


def outermost(folders):
    """`folders` without those inside another of them."""
    folders = sorted({str(f) for f in folders}, key=len)
    kept = []
    for folder in folders:
        if not any(_inside(folder, k) for k in kept):
            kept.append(folder)
    return kept


def _inside(path, folder):
    path, folder = Path(path), Path(folder)
    return path == folder or folder in path.parents


def others_can_reach(path, stubs=()):
    """Whether a user id of its own (no groups) can read `path`: every folder above it lets
    others search, and `path` lets others read (and search, if a folder). Folders inside
    `stubs` are tmpfs stubs of mode 0755 in the worker's view, so they always let it pass."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not mode & 0o004 or (path.is_dir() and not mode & 0o001):
        return False
    for folder in path.parents:
        if any(_inside(folder, s) for s in stubs):
            continue
        try:
            if not folder.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def blocking_folders(paths):
    """For each of `paths` others cannot reach, the outermost folder above it that others
    cannot enter (a 0700 home): covered by a tmpfs, it becomes passable in the worker's view."""
    found = []
    for path in paths:
        for folder in reversed(Path(path).parents):
            try:
                if not folder.stat().st_mode & 0o001:
                    found.append(str(folder))
                    break
            except OSError:
                break
    return outermost(found)


def kit_hidden_from_own_user(roots):
    """A user id of its own can read nothing of the kit (`roots`: the course or kit folders)."""
    return all(not others_can_reach(Path(root) / part) for root in roots for part in ("solutions", "tests"))


# --- the policy -----------------------------------------------------------------------------


def own_user_plan():
    """(True, covers) when a worker outside bwrap/namespaces can run as a user id of its own:
    the grader is root and Python is readable by others, or becomes so once `covers` (the
    folders that block it) are covered in a private mount namespace. (False, why) otherwise."""
    if not PLATFORM.root:
        return False, "the grader is not root"
    blocked = [p for p in python_dirs() if not others_can_reach(p)]
    if not blocked:
        return True, []
    covers = blocking_folders(blocked)
    if all(others_can_reach(p, stubs=covers) for p in python_dirs()) and private_mounts_work():
        return True, covers
    return False, f"Python ({blocked[0]}) is not readable by other users and no private mount namespace is possible"


def unavailable_reason(level, kit_roots=()):
    """None when `level` can run here (for `kit_roots`, for "user"), else why not."""
    if level in ("bwrap", "namespaces") and not PLATFORM.linux:
        return f"{level} needs Linux"
    if level == "bwrap":
        return bwrap_path()[1]
    if level == "namespaces":
        return unshare_command()[1]
    if level == "user":
        ok, why = own_user_plan()
        if not ok:
            return f"no user id of its own for the worker ({why})"
        if not kit_hidden_from_own_user(kit_roots):
            return "the kit is readable by other users (make it 0700)"
        return None
    if level == "process":
        return None
    raise IsolationUnavailable(f"--isolation: unknown level {level!r} (choose from {', '.join(LEVELS)})")


def for_grading(wanted, kit_roots):
    """The level `grade` uses: the one asked for, or the strongest sandbox available. Only a
    level that hides the file system (SANDBOXES) is taken without being asked for: `user` can
    read any copy of the solutions others may read, so it needs `--isolation user`, as `process`
    needs `--isolation process`. Raises IsolationUnavailable with one line saying why and how
    to fix it."""
    if wanted != "auto":
        why = unavailable_reason(wanted, kit_roots)
        if why:
            raise IsolationUnavailable(f"--isolation {wanted} is not possible here: {why}. {_fix()}")
        return wanted
    reasons = []
    for level in SANDBOXES:
        why = unavailable_reason(level, kit_roots)
        if why is None:
            return level
        reasons.append(why)
    raise IsolationUnavailable(
        f"grading needs a sandbox for learner code and none works here ({'; '.join(reasons)}). {_fix()}"
    )


def _fix():
    """How to get a sandbox here: install bubblewrap, or let it make namespaces."""
    if bwrap_path()[0] is None and not shutil.which("bwrap"):
        first = "Install bubblewrap (apt-get install bubblewrap)"
    else:  # installed but refused: Ubuntu 23.10+ forbids unprivileged user namespaces
        first = (
            "Run the grader as root, or let bubblewrap make user namespaces "
            "(sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 23.10+)"
        )
    return (
        f"{first}, or pass --isolation user (as root: a user id of its own, no sandbox) or --isolation process "
        "to grade without a sandbox (every report will say so)"
    )


def for_checking(wanted="auto"):
    """The level a learner's `check` uses: the strongest available, at worst process."""
    if wanted != "auto":
        why = unavailable_reason(wanted)
        if why:
            raise IsolationUnavailable(f"--isolation {wanted} is not possible here: {why}")
        return wanted
    for level in ("bwrap", "namespaces"):
        if unavailable_reason(level) is None:
            return level
    return "process"
