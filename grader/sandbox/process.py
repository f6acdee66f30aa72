"""Start, talk to and kill the worker process that runs learner code.

The isolation levels and the policy that picks one are in `grader.sandbox.isolation`. Here each level
becomes a command line and the worker's configuration:

  bwrap       bwrap (found on the grader's PATH) builds a view of only the system and Python
  namespaces  `unshare` makes the namespaces; the worker covers the filesystem itself
              (worker._make_view) and forks so that an init of its own reaps and ends it
  user        the worker runs as a user id of its own (as root), with a private mount
  process     namespace only if Python lives in a folder others cannot enter (a 0700 home)

The worker always gets resource limits where the platform has them, closed stdin, an
environment without secrets and a scratch working directory. At the end of every worker,
everything of its user id (and of its namespaces, which die with it) is killed.
"""

import ast
import io
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader.safe_text import safe_text
from grader.sandbox import cgroups, ipc
from grader.sandbox import isolation as policy
from grader.sandbox import worker as wire


def _compact(source):
    """The worker's source without docstrings and comments (the same code, by ast.unparse): it
    travels on the command line, which Windows caps at 32,767 characters."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


WORKER_SOURCE = _compact(Path(wire.__file__).read_text(encoding="utf-8"))
SCRATCH = "/scratch"  # in bwrap's view
NAMESPACE_SCRATCH = "/tmp"  # in the namespaces view: a size-limited tmpfs
OUTPUT_KEEP = 4096  # bytes of learner output kept per check
EARLY_KEEP = 16384  # bytes of the worker's own output kept until it has booted (a traceback)
MAX_MESSAGE = 512 * 1024 * 1024
# Worker user ids (as root): a block of WORKERS_PER_BLOCK per grading process, found from its
# pid, which no other live process has (pids stay below 2^22, so the ids below 2^31).
UID_BASE, WORKERS_PER_BLOCK = 1_000_000, 100
_uids = itertools.count()


def worker_uids(pid=None):
    """The user ids the workers of grading process `pid` (default: this one) may run as."""
    base = UID_BASE + (os.getpid() if pid is None else pid) * WORKERS_PER_BLOCK
    return range(base, base + WORKERS_PER_BLOCK)


python_dirs = policy.python_dirs  # kept here too: tests and benches import it from the sandbox


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


class WorkerFailedToStart(WorkerDied):
    """The worker died (or hung) before it could run any learner code: the grader's fault.
    `log` is what it printed (a traceback)."""

    def __init__(self, reason, log):
        self.log = log
        super().__init__(reason)


class CallTimedOut(Exception):
    pass


def choose_isolation(wanted="auto"):
    """The level for a learner's check (the strongest available); see grader.sandbox.isolation."""
    try:
        return policy.for_checking(wanted)
    except policy.IsolationUnavailable as exc:
        raise RuntimeError(str(exc)) from None


def bwrap_available():
    return policy.bwrap_path()[0] is not None


class WorkerProcess:
    """One worker: spawned at once (it imports torch while the grader does other work).

    With `source` None it is a spare: it imports torch and waits until `load(source)` sends
    the learner module (`fmgrade watch` keeps one ready while the learner edits)."""

    def __init__(self, module_file, source, limits, isolation, hidden_roots=(), warm_up=None, platform=None):
        self.module_file, self.limits, self.isolation = module_file, limits, isolation
        self.platform = platform or policy.PLATFORM
        # bwrap and namespaces give the worker a tmpfs scratch that dies with it; the other levels
        # need a host folder, which the worker removes itself if the grader is killed outright.
        in_memory = {"bwrap": SCRATCH, "namespaces": NAMESPACE_SCRATCH}.get(isolation)
        self.scratch = None if in_memory else tempfile.mkdtemp(prefix="fmgrade-scratch-")
        hidden = [str(Path(r).resolve()) for r in hidden_roots]
        self.uid, view = self._user_and_view(isolation, hidden)
        # At user/process the worker shares the host's IPC namespace: what it leaves is removed at
        # its close (by its user id, or, without one, by what is new since now; see sandbox.ipc).
        shares_ipc = isolation not in ("bwrap", "namespaces") and self.platform.posix
        self._ipc_before = ipc.Snapshot() if shares_ipc and self.uid is None else None
        self._shares_ipc = shares_ipc
        if self.uid is not None and self.scratch is not None:
            os.chown(self.scratch, self.uid, self.uid)
        scratch = in_memory or self.scratch
        stdio = not self.platform.pass_fds
        config = {
            "uid": self.uid,
            "scratch": scratch,
            "view": view,
            "init": isolation == "namespaces",
            "host_scratch": self.scratch is not None,
            "transport": "stdio" if stdio else "fds",
            "simulate": self.platform.name if self.platform.simulated else None,
            "module_file": module_file,
            "module_name": Path(module_file).stem,
            "memory_mb": limits.memory_mb,
            "cpu_seconds": limits.cpu_seconds,
            "file_mb": limits.file_mb,
            "processes": limits.processes,
            # Code that builds a torch optimizer will import torch._dynamo (0.9 s): start early.
            "warm_up": ("optim" in (source or "")) if warm_up is None else bool(warm_up),
        }
        options = {"env": self._environment(scratch), "cwd": self.scratch or os.path.abspath(os.sep)}
        if self.platform.posix:
            options["start_new_session"] = True
        if stdio:
            options.update(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            req_r, req_w = os.pipe()
            rep_r, rep_w = os.pipe()
            config.update(requests_fd=req_r, replies_fd=rep_w)
            options.update(
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(req_r, rep_w)
            )
        command = [os.path.abspath(sys.executable), "-I", "-c", WORKER_SOURCE, json.dumps(config)]
        if isolation == "bwrap":
            command = self._bwrap(hidden) + command
        elif isolation == "namespaces":
            command = policy.unshare_command()[0] + command
        # A cgroup of its own where the host allows (sandbox.cgroups): whatever the worker starts,
        # in any session, shares one CPU weight, memory limit and process count, and dies with it.
        native = self.platform.posix and not self.platform.simulated
        self.cgroup = cgroups.Group.create(limits.memory_mb, limits.processes) if native else None
        if self.cgroup is not None:
            command = self.cgroup.wrap(command)
        self.proc = subprocess.Popen(command, **options)
        if stdio:
            self.req_w, rep_r, output = self.proc.stdin.fileno(), self.proc.stdout.fileno(), self.proc.stderr
        else:
            os.close(req_r)
            os.close(rep_w)
            self.req_w, output = req_w, self.proc.stdout
        self.killed_because = None
        self.booted = False
        self._early = bytearray()
        self._output = bytearray()
        self._output_total = self._output_lines = 0
        self._lock = threading.Lock()
        self._replies = queue.Queue()
        self._drain = threading.Thread(target=self._drain_output, args=(output,), daemon=True)
        self._drain.start()
        self.limits_applied = []
        threading.Thread(target=self._read_replies, args=(rep_r, not stdio), daemon=True).start()
        if source is not None:
            self.load(source)

    def load(self, source):
        """Send the learner module's source; `wait_ready` then reports whether it imported."""
        try:
            self._send({"source": source})
        except WorkerDied:
            pass  # it died at once: wait_ready reports why

    def _user_and_view(self, isolation, hidden):
        """(the worker's own user id or None, the filesystem view the worker makes or None)."""
        if not self.platform.root:
            return None, (self._namespace_view(hidden) if isolation == "namespaces" else None)
        uid = worker_uids()[next(_uids) % WORKERS_PER_BLOCK]  # the previous holder was killed at its close
        if isolation == "bwrap":
            return uid, None
        if isolation == "namespaces":
            return uid, self._namespace_view(hidden)
        ok, covers = policy.own_user_plan()
        if not ok:
            if isolation == "user":
                raise RuntimeError(f"isolation 'user' is not possible here: {covers}")
            return None, None  # "process" as root without a user of its own: the report says process
        if not covers:
            return uid, None
        python = [p for p in policy.outermost(policy.python_dirs()) if any(policy._inside(p, c) for c in covers)]
        return uid, {"unshare": True, "cover": [(c, "size=1m,mode=0755") for c in covers], "python": python, "hide": []}

    def _namespace_view(self, hidden):
        """What bwrap shows, made by the worker inside unshare's mount namespace: an empty tmpfs
        over every top-level folder but the system's (a sized one over /tmp, the scratch, and
        /dev/shm), Python bound back, and the kit covered wherever it is still visible."""
        size = f"size={self.limits.scratch_mb}m"
        covers = [(NAMESPACE_SCRATCH, f"{size},mode=1777"), ("/dev/shm", f"{size},mode=1777")]
        for entry in os.scandir("/"):
            if entry.name not in (*policy.SYSTEM_FOLDERS, "proc", "dev", "tmp") and entry.is_dir(follow_symlinks=False):
                covers.append((entry.path, "size=1m,mode=0755"))
        covered = [c for c, _ in covers]
        python = [p for p in policy.outermost(policy.python_dirs()) if any(policy._inside(p, c) for c in covered)]
        shown = python + [f"/{name}" for name in policy.SYSTEM_FOLDERS]
        hide = [
            r
            for r in hidden
            if not any(policy._inside(r, c) for c in covered) or any(policy._inside(r, p) for p in python)
        ]
        return {
            "cover": covers,
            "python": python,
            "hide": [r for r in hide if any(policy._inside(r, s) for s in shown)],
        }

    def _environment(self, scratch):
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": scratch,
            "TMPDIR": scratch,
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        # The float kernels torch picks (a CPU without AVX2 runs "default"): passed on, so that
        # tests/test_recordings_hold.py can prove the recordings for learners on other CPUs.
        env.update({k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY",) if k in os.environ})
        if os.name == "nt":  # Python on Windows needs these to start; the rest stays out
            env.update(
                {k: os.environ[k] for k in ("SYSTEMROOT", "PATH") if k in os.environ},
                TEMP=scratch,
                TMP=scratch,
                USERPROFILE=scratch,
            )
        return env

    def _bwrap(self, hidden):
        """Only the system and Python are visible; the course, kits, homes and /tmp are not."""
        args = [
            policy.bwrap_path()[0],
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "fmgrade-worker",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        system = [f"/{name}" for name in policy.SYSTEM_FOLDERS]
        for folder in system:
            args += ["--ro-bind-try", folder, folder]
        made, bound = set(), policy.python_dirs()
        for folder in bound:
            # bwrap makes missing parents with mode 0700, which the worker's user cannot enter
            for parent in reversed(Path(folder).parents[:-1]):
                if str(parent) not in made and not str(parent).startswith(("/usr", "/lib")):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            args += ["--ro-bind", folder, folder]
        for root in hidden:
            if any(policy._inside(root, folder) for folder in [*bound, *system]):
                args += ["--tmpfs", root]  # a course or kit inside a shown folder stays hidden
        # A size-limited scratch in memory: learner files cannot fill the host's disk.
        size = str(self.limits.scratch_mb * 1024 * 1024)
        return args + ["--size", size, "--perms", "1777", "--tmpfs", SCRATCH, "--chdir", SCRATCH]

    # output of learner code
    def _drain_output(self, stream):
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            with self._lock:
                if not self.booted:
                    self._early += chunk
                    del self._early[:-EARLY_KEEP]
                self._output_total += len(chunk)
                self._output_lines += chunk.count(b"\n")
                room = OUTPUT_KEEP - len(self._output)
                if room > 0:
                    self._output += chunk[:room]
                flooded = self._output_total > self.limits.output_mb * 1024 * 1024
            if flooded and self.killed_because is None:
                self.kill(f"your code printed more than {self.limits.output_mb} MB")

    def add_output(self, text, total, lines=None):
        """Output the worker captured at the Python level during one call: its start, and how
        many characters and lines there were (all from a process learner code runs in: anything
        else than text and counts is ignored)."""
        if not isinstance(text, str):
            text = ""
        if not isinstance(total, int) or isinstance(total, bool):
            total = len(text)
        if not isinstance(lines, int) or isinstance(lines, bool):
            lines = text.count("\n")
        with self._lock:
            room = OUTPUT_KEEP - len(self._output)
            if room > 0:
                self._output += text[:room].encode("utf-8", "backslashreplace")[:room]
            self._output_total += max(total, 0)
            self._output_lines += max(lines, 0)

    def take_output(self):
        """What learner code printed since the last call of this method (truncated, made safe),
        with a last line saying how much more there was, in bytes and lines, when it was cut."""
        with self._lock:
            kept = self._output.decode("utf-8", "replace")
            text = safe_text(kept)
            if self._output_total > len(self._output):
                # the kept part may end inside a line: that line's newline is past the cut
                hidden_lines = max(self._output_lines - kept.count("\n") - (not kept.endswith("\n")), 0)
                text += (
                    f"\n... ({self._output_total - len(self._output)} more bytes not shown, {hidden_lines} more lines)"
                )
            self._output.clear()
            self._output_total = self._output_lines = 0
        return text

    # messages
    def _send(self, message):
        try:
            wire.write_message(self.req_w, wire.dumps(message))
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def _read_replies(self, fd, owned):
        """A thread: every reply as it arrives (a pipe cannot be waited on with a timeout on
        every platform, a queue can). End of file or an oversized reply ends it."""
        try:
            while True:
                header = wire._read_exactly(fd, wire.HEADER.size)
                if header is None:
                    break
                (size,) = wire.HEADER.unpack(header)
                if size > MAX_MESSAGE:
                    self._replies.put(("too big", size))
                    return
                payload = wire._read_exactly(fd, size)
                if payload is None:
                    break
                self._replies.put(("message", payload))
        except OSError:
            pass
        finally:
            if owned:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._replies.put(("end", None))

    def _receive(self, timeout):
        try:
            kind, value = self._replies.get(timeout=max(timeout, 0))
        except queue.Empty:
            raise CallTimedOut() from None
        if kind == "too big":
            self.kill("your code returned more than 512 MB of data")
            raise WorkerDied(self.killed_because)
        if kind == "end":
            self._replies.put((kind, value))  # every later receive sees the end too
            raise self._died()
        try:
            return load_reply(value)
        except UnreadableReply as exc:
            self.kill(str(exc))
            raise WorkerDied(self.killed_because) from None

    def _died(self):
        if self.booted:
            return WorkerDied(self.death_reason())
        return WorkerFailedToStart(
            f"it stopped before loading {self.module_file} ({self.death_reason(blame=False)})", self.early_output()
        )

    def early_output(self):
        with self._lock:
            return self._early.decode("utf-8", "replace")

    def _boot(self, timeout):
        """Wait for the worker's "booted" message: until then, nothing is the learner's fault."""
        if self.booted:
            return
        try:
            reply = self._receive(timeout)
        except CallTimedOut:
            self.kill("the worker did not start")
            raise WorkerFailedToStart(f"it did not start within {timeout:g} s", self.early_output()) from None
        self.booted = True
        limits = reply.get("limits", []) if isinstance(reply, dict) else []
        self.limits_applied = [safe_text(str(x), 200) for x in limits] if isinstance(limits, list) else []

    def wait_ready(self, timeout):
        """The import result: None, or the error dict of a module that does not import.
        Raises WorkerFailedToStart when the worker dies before learner code could run."""
        self._boot(timeout)
        return self._checked(self._receive(timeout)).get("import_error")

    def request(self, message, timeout):
        self._send(message)
        return self._checked(self._receive(timeout))

    def _checked(self, reply):
        if not isinstance(reply, dict):
            self.kill("your code sent the grader a reply it cannot read")
            raise WorkerDied(self.killed_because)
        self.add_output(reply.get("output", ""), reply.get("output_total", 0), reply.get("output_lines"))
        total = reply.get("output_total", 0)
        if isinstance(total, int) and total > self.limits.output_mb * 1024 * 1024:
            self.kill(f"your code printed more than {self.limits.output_mb} MB")
            raise WorkerDied(self.killed_because)
        if (
            self.isolation not in ("bwrap", "namespaces")
            and _disk_usage(self.scratch) > self.limits.scratch_mb * 1024 * 1024
        ):
            self.kill(f"your code wrote more than {self.limits.scratch_mb} MB of files")
            raise WorkerDied(self.killed_because)
        return reply

    # the end
    def death_reason(self, blame=True):
        if self.killed_because:
            return self.killed_because
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill("the worker stopped answering")
            return self.killed_because
        signum = -code if code < 0 else code - 128 if code > 128 and self.platform.posix else 0
        if not blame:
            return f"killed by {_signal_name(signum)}" if signum else f"exit status {code}"
        if signum and signum == getattr(signal, "SIGXCPU", None):
            return f"your code used more than {self.limits.cpu_seconds} s of CPU time"
        if signum and signum == getattr(signal, "SIGKILL", None):
            return "the worker was killed by SIGKILL (it ran out of memory, or your code killed it)"
        if signum:
            return f"the worker crashed ({_signal_name(signum)})"
        return f"your code ended the worker process (exit status {code})"

    def kill(self, reason):
        if self.killed_because is None:
            self.killed_because = reason
        try:
            if self.platform.posix:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass
        if self.uid is not None:
            kill_user(self.uid)  # children that left the process group (setsid) or the namespace
        if self.cgroup is not None:
            self.cgroup.kill()  # the same, found by their group (also without a user id of their own)

    def close(self):
        if self.proc.poll() is None:
            self.kill("closed")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.uid is not None:
            kill_user(self.uid)  # a daemon of a worker that ended normally too
        if self._shares_ipc:
            ipc.remove_left_by(self.uid, self._ipc_before)
        if self.cgroup is not None:
            self.cgroup.remove()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            else:
                os.close(self.req_w)
        except OSError:
            pass
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


class UnreadableReply(Exception):
    """A reply the grader refuses to decode; the message is a plain sentence for the learner."""


def load_reply(payload, budget=MAX_MESSAGE):
    """Decode one reply of the worker (a torch.save zip read back with weights_only).

    The worker runs in the process learner code runs in, so the reply may be hand-made: only a
    zip whose records are all stored uncompressed (as torch.save writes them) is read, so what
    torch.load inflates is never more than what crossed the pipe (a DEFLATE record of 14 kB
    would inflate to 8 GiB), and at most `budget` bytes in all."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError, NotImplementedError):
        raise UnreadableReply("your code sent the grader a reply that is not the worker's format") from None
    if any(r.compress_type != zipfile.ZIP_STORED or r.file_size != r.compress_size for r in records):
        raise UnreadableReply("your code sent the grader a compressed reply, which is refused")
    if sum(r.file_size for r in records) > budget:
        raise UnreadableReply(f"your code returned more than {budget // (1024 * 1024)} MB of data")
    try:
        return wire.loads(payload)
    except Exception as exc:  # noqa: BLE001 - whatever a hand-made payload makes torch.load raise
        raise UnreadableReply(
            f"your code sent the grader a reply it cannot read ({safe_text(type(exc).__name__, 80)})"
        ) from None


def _signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _disk_usage(folder):
    total = 0
    for path, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                pass
    return total


def kill_user(uid):
    """Kill every process of user id `uid`: daemons that left the worker's session, a fork
    bomb still forking. A process of that user sends kill(-1, SIGKILL), which reaches all of
    them in one go (no new process can be made meanwhile); /proc is the fallback."""
    try:
        subprocess.run(
            ["/bin/sh", "-c", "kill -9 -1"],
            user=uid,
            group=uid,
            extra_groups=[],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    cgroups.kill_until_gone(lambda: processes_of(uid), rounds=20)


def processes_of(uid):
    """Pids whose real user id is `uid` (from /proc/<pid>/status: after setuid a process is
    not dumpable, and its /proc folder then belongs to root)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except (OSError, ValueError, IndexError):
            pass
    return found
