"""Start, talk to and kill the worker process that runs learner code.

Isolation levels, strongest first (the report names the one in force):
  "bwrap"    bubblewrap: a filesystem view of only the system and Python (no course, no
             solutions, no checks, no kit, no home), no network, private PID/IPC/UTS
             namespaces, plus everything of "process"
  "process"  a separate process with resource limits (address space, CPU time, file size,
             processes), closed stdin, a scratch directory, an environment without secrets,
             and, when the grader runs as root, a user id of its own
"""
import itertools
import json
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader import worker as wire

WORKER_SOURCE = Path(wire.__file__).read_text(encoding="utf-8")
SCRATCH = "/scratch"
OUTPUT_KEEP = 4096  # bytes of learner output kept per check
_uids = itertools.count()


@dataclass(frozen=True)
class WorkerLimits:
    memory_mb: int = 2048
    cpu_seconds: int = 120
    file_mb: int = 64
    processes: int = 64
    output_mb: int = 8  # printing more than this in one call kills the worker
    scratch_mb: int = 256  # files the worker may leave in its scratch folder


class WorkerDied(Exception):
    """The worker is gone; `reason` is a plain sentence for the learner."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


class CallTimedOut(Exception):
    pass


def bwrap_available():
    """bwrap is installed and can actually make namespaces here (not every container allows it)."""
    path = shutil.which("bwrap")
    if not path:
        return False
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


_BWRAP = None


def choose_isolation(wanted="auto"):
    global _BWRAP
    if wanted == "process":
        return "process"
    if _BWRAP is None:
        _BWRAP = bwrap_available()
    if wanted == "bwrap" and not _BWRAP:
        raise RuntimeError("bubblewrap (bwrap) is not available here; install it or use --isolation process")
    return "bwrap" if _BWRAP else "process"


def python_dirs():
    """Folders the worker's Python needs (it runs with -I, so sys.path is not among them):
    the installation's prefixes, its standard library and its site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    paths |= {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    # Both spellings: a venv reached through a symlink runs as its unresolved path.
    return sorted({str(q) for p in paths if p and Path(p).is_dir() for q in (os.path.abspath(p), Path(p).resolve())})


def _others_can_read(path):
    """Whether a user other than the owner can reach `path` (every parent searchable)."""
    path = Path(path)
    for folder in (path, *path.parents):
        if not folder.stat().st_mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


class WorkerProcess:
    """One worker: spawned at once (it imports torch while the grader does other work).

    With `source` None it is a spare: it imports torch and waits until `load(source)` sends
    the learner module (`fmgrade watch` keeps one ready while the learner edits)."""

    def __init__(self, module_file, source, limits, isolation, hidden_roots=(), warm_up=None):
        self.module_file, self.limits, self.isolation = module_file, limits, isolation
        self.scratch = tempfile.mkdtemp(prefix="fmgrade-scratch-")
        own_user = os.getuid() == 0 and (isolation == "bwrap" or all(_others_can_read(p) for p in python_dirs()))
        self.uid = 200000 + (os.getpid() % 10000) * 100 + next(_uids) % 100 if own_user else None
        if self.uid is not None:
            os.chown(self.scratch, self.uid, self.uid)
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        config = {
            "requests_fd": req_r, "replies_fd": rep_w, "uid": self.uid,
            "scratch": SCRATCH if isolation == "bwrap" else self.scratch,
            "module_file": module_file, "module_name": Path(module_file).stem,
            "memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds,
            "file_mb": limits.file_mb, "processes": limits.processes,
            # Code that builds a torch optimizer will import torch._dynamo (0.9 s): start early.
            "warm_up": ("optim" in (source or "")) if warm_up is None else bool(warm_up),
        }
        command = [os.path.abspath(sys.executable), "-I", "-c", WORKER_SOURCE, json.dumps(config)]
        if isolation == "bwrap":
            command = self._bwrap(hidden_roots) + command
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": config["scratch"], "TMPDIR": config["scratch"],
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(req_r, rep_w), env=env, cwd=self.scratch, start_new_session=True,
        )
        os.close(req_r)
        os.close(rep_w)
        self.killed_because = None
        self._output = bytearray()
        self._output_total = 0
        self._lock = threading.Lock()
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()
        if source is not None:
            self.load(source)

    def load(self, source):
        """Send the learner module's source; `wait_ready` then reports whether it imported."""
        self._send({"source": source})

    def _bwrap(self, hidden_roots):
        """Only the system and Python are visible; the course, kits, homes and /tmp are not."""
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
                "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "fmgrade-worker",
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for folder in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
            args += ["--ro-bind-try", folder, folder]
        made, bound = set(), python_dirs()
        for folder in bound:
            # bwrap makes missing parents with mode 0700, which the worker's user cannot enter
            for parent in reversed(Path(folder).parents[:-1]):
                if str(parent) not in made and not str(parent).startswith(("/usr", "/lib")):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            args += ["--ro-bind", folder, folder]
        for root in (Path(r).resolve() for r in hidden_roots):
            if any(Path(folder) in (root, *root.parents) for folder in bound):
                args += ["--tmpfs", str(root)]  # a course or kit inside a Python folder stays hidden
        # A size-limited scratch in memory: learner files cannot fill the host's disk.
        size = str(self.limits.scratch_mb * 1024 * 1024)
        return args + ["--size", size, "--perms", "1777", "--tmpfs", SCRATCH, "--chdir", SCRATCH]

    # output of learner code
    def _drain_output(self):
        stream = self.proc.stdout
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            with self._lock:
                self._output_total += len(chunk)
                room = OUTPUT_KEEP - len(self._output)
                if room > 0:
                    self._output += chunk[:room]
                flooded = self._output_total > self.limits.output_mb * 1024 * 1024
            if flooded and self.killed_because is None:
                self.kill(f"your code printed more than {self.limits.output_mb} MB")

    def add_output(self, text, total):
        """Output the worker captured at the Python level during one call."""
        with self._lock:
            room = OUTPUT_KEEP - len(self._output)
            if room > 0:
                self._output += text.encode("utf-8", "replace")[:room]
            self._output_total += total

    def take_output(self):
        """What learner code printed since the last call of this method (truncated)."""
        with self._lock:
            text = self._output.decode("utf-8", "replace")
            if self._output_total > len(self._output):
                text += f"\n... ({self._output_total - len(self._output)} more bytes not shown)"
            self._output.clear()
            self._output_total = 0
        return text

    # messages
    def _send(self, message):
        try:
            wire.write_message(self.req_w, wire.dumps(message))
        except (BrokenPipeError, OSError):
            raise WorkerDied(self.death_reason()) from None

    def _receive(self, timeout):
        deadline = time.monotonic() + timeout
        header = self._read(wire.HEADER.size, deadline)
        (size,) = wire.HEADER.unpack(header)
        if size > 512 * 1024 * 1024:
            self.kill("your code returned more than 512 MB of data")
            raise WorkerDied(self.killed_because)
        return wire.loads(self._read(size, deadline))

    def _read(self, size, deadline):
        chunks, left = [], size
        while left:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.rep_r], [], [], max(remaining, 0))
            if not ready:
                raise CallTimedOut()
            chunk = os.read(self.rep_r, min(left, 1 << 20))
            if not chunk:
                raise WorkerDied(self.death_reason())
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def wait_ready(self, timeout):
        """The import result: None, or the error dict of a module that does not import."""
        return self._checked(self._receive(timeout))["import_error"]

    def request(self, message, timeout):
        self._send(message)
        return self._checked(self._receive(timeout))

    def _checked(self, reply):
        self.add_output(reply.get("output", ""), reply.get("output_total", 0))
        if reply.get("output_total", 0) > self.limits.output_mb * 1024 * 1024:
            self.kill(f"your code printed more than {self.limits.output_mb} MB")
            raise WorkerDied(self.killed_because)
        if self.isolation != "bwrap" and _disk_usage(self.scratch) > self.limits.scratch_mb * 1024 * 1024:
            self.kill(f"your code wrote more than {self.limits.scratch_mb} MB of files")
            raise WorkerDied(self.killed_because)
        return reply

    # the end
    def death_reason(self):
        if self.killed_because:
            return self.killed_because
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill("the worker stopped answering")
            return self.killed_because
        signum = -code if code < 0 else code - 128 if code > 128 else 0
        if signum == signal.SIGXCPU:
            return f"your code used more than {self.limits.cpu_seconds} s of CPU time"
        if signum == signal.SIGKILL:
            return "the worker was killed by SIGKILL (it ran out of memory, or your code killed it)"
        if signum:
            return f"the worker crashed ({signal.Signals(signum).name})"
        return f"your code ended the worker process (exit status {code})"

    def kill(self, reason):
        if self.killed_because is None:
            self.killed_because = reason
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.uid is not None:
            _kill_uid(self.uid)  # children that left the process group (setsid) or the namespace

    def close(self):
        if self.proc.poll() is None:
            self.kill("closed")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.req_w, self.rep_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.scratch, ignore_errors=True)


def _disk_usage(folder):
    total = 0
    for path, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                pass
    return total


def _kill_uid(uid):
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
