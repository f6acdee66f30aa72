"""The worker: the only process that imports and runs learner code.

It is started by `grader.sandbox.process` as `python -I -c <this file's source> <config json>`, so it
needs nothing but the standard library and torch, and sees none of the course's files: the
learner module and the topic's helpers arrive as source text over the request pipe.

Only data crosses the pipes (`encode`/`decode`): tensors, numpy arrays, numbers, strings,
bools, None, dtypes and lists/tuples/dicts of them, serialised with torch.save and read back
with torch.load(weights_only=True), whose loader cannot run code. Every other object stays
here and travels as a handle: {HANDLE: id, "type": name}.

Protocol: each message is an 8-byte big-endian length and a torch.save payload.
  grader -> worker  {"op": ..., "target": id, "name": str, "args": [...], "kwargs": {...}}
  worker -> grader  {"value": ...} or {"error": {"type", "message", "where"}}
                    or, when a call with a "timeout" runs out of it, {"stopped": [[line, function], ...],
                    "limit": "cpu" or "wall", "usage": {...}}
                    Every reply to a timed call carries "usage": {"cpu": s, "wall": s, "busy": bool}.
  A call's "timeout" counts CPU seconds (this process and its reaped children); its
  "wall_timeout" is the backstop for code that sleeps or blocks, stretched once when the host
  was busy (see `overrun` and `extension`).
The worker's first message, {"booted": True, "limits": [...]}, comes before any learner code
runs: a worker that dies before it is a grader error. The second is {"ready": True,
"import_error": None or {...}}, once the learner module is imported.

Messages travel over two pipes handed over with pass_fds, or, where there is no pass_fds
(Windows), over the worker's stdin and stdout ("transport": "stdio").
"""

import inspect
import io
import json
import os
import select
import shutil
import signal
import struct
import sys
import threading
import time
import traceback

HANDLE = "__fmgrade_handle__"
NDARRAY = "__fmgrade_ndarray__"
METHOD = "__fmgrade_method__"
MODULE, HELPERS = 0, -1  # reserved handle ids
HEADER = struct.Struct(">Q")
OUTPUT_KEEP = 4096  # characters of learner output returned per call


# --- Codec (shared with the grader) -----------------------------------------------------


def encode(value, register):
    """Plain data for torch.save; `register(obj)` returns the handle dict for anything else."""
    import torch

    kind = type(value)
    if value is None or kind in (bool, int, float, str, complex):
        return value
    if isinstance(value, torch.Tensor):
        # Subclasses and Parameters become plain tensors: their own methods are never trusted.
        return torch.Tensor._make_subclass(torch.Tensor, value.detach().cpu(), False).clone()
    if isinstance(value, torch.dtype):
        return value
    if kind in (list, tuple) or isinstance(value, tuple) and hasattr(value, "_fields") or kind is torch.Size:
        items = [encode(v, register) for v in value]
        return items if kind is list else tuple(items)
    if isinstance(value, dict) and all(type(k) in (str, int) for k in value):
        return {k: encode(v, register) for k, v in value.items()}
    if _is_ndarray(value):
        return {NDARRAY: torch.from_numpy(value.copy())}
    if _is_numpy_scalar(value):
        return value.item()
    if type(value).__name__ == "Method" and type(value).__module__ == __name__:
        return {METHOD: value.name}
    return register(value)  # subclasses of plain types too: their __eq__ is never trusted


def _is_ndarray(value):
    numpy = sys.modules.get("numpy")
    return numpy is not None and type(value) is numpy.ndarray and value.dtype.kind in "biufc"


def _is_numpy_scalar(value):
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.generic) and value.dtype.kind in "biufc"


def dumps(message):
    import torch

    buffer = io.BytesIO()
    torch.save(message, buffer)
    return buffer.getvalue()


def loads(payload):
    import torch

    return torch.load(io.BytesIO(payload), weights_only=True)


def read_message(fd):
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    return _read_exactly(fd, size)


def _read_exactly(fd, size):
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_message(fd, payload):
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- The worker's side ------------------------------------------------------------------


class Worker:
    def __init__(self, config):
        self.config = config
        self.objects = {}
        self.ids = {}
        self.next_id = 1
        self.module = None
        self.helpers = None
        self.watchdog = Watchdog(config["module_file"], config["replies_fd"])

    # objects <-> handles
    def register(self, obj):
        handle_id = self.ids.get(id(obj))  # `objects` keeps obj alive, so its id stays its own
        if handle_id is None:
            handle_id = self.ids[id(obj)] = self.next_id
            self.next_id += 1
            self.objects[handle_id] = obj
        return {HANDLE: handle_id, "type": type(obj).__name__, "function": _is_function(obj)}

    def resolve(self, value):
        import torch

        if isinstance(value, dict):
            if HANDLE in value:
                return self.target(value[HANDLE])
            if NDARRAY in value:
                return value[NDARRAY].numpy()
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, torch.Tensor):
            return value
        return value

    def target(self, handle_id):
        if handle_id == MODULE:
            return self.module
        if handle_id == HELPERS:
            return self.helpers
        if handle_id not in self.objects:
            raise LookupError(f"no object with handle {handle_id}")
        return self.objects[handle_id]

    # requests
    def handle(self, request):
        op = request["op"]
        if op == "helpers":
            self.helpers = _load_source(request["args"][0], request["name"], "fmgrade_helpers")
            return None
        obj = self.target(request["target"])
        args = self.resolve(request.get("args", []))
        kwargs = self.resolve(request.get("kwargs", {}))
        name = request.get("name")
        if op == "getattr":
            value = getattr(obj, name)
            if inspect.ismethod(value) or inspect.isbuiltin(value) and getattr(value, "__self__", None) is obj:
                return Method(name)  # called through "call_attr": no handle per bound method
            return value
        if op == "call_attr":
            return getattr(obj, name)(*args, **kwargs)
        if op == "call":
            return obj(*args, **kwargs)
        if op == "call_helper":
            return getattr(self.helpers, name)(self.module, *args, **kwargs)
        if op == "getitem":
            return obj[args[0]]
        if op == "len":
            return len(obj)
        if op == "iter":
            return list(iter(obj))
        if op == "repr":
            return repr(obj)
        raise ValueError(f"unknown operation {op!r}")

    def serve(self, requests_fd, replies_fd):
        while True:
            payload = read_message(requests_fd)
            if payload is None:
                return
            request = loads(payload)
            capture = _Capture.install()
            timed = request.get("timeout") and request["op"] in ("call", "call_attr", "call_helper")
            if timed:
                self.watchdog.arm(request["timeout"], request.get("wall_timeout") or 3 * request["timeout"])
            try:
                reply = {"value": encode(self.handle(request), self.register)}
            except BaseException as exc:  # SystemExit and KeyboardInterrupt from learner code too
                reply = {"error": describe(exc, self.config["module_file"])}
            usage = self.watchdog.disarm()
            if timed and usage is not None:
                reply["usage"] = usage
            reply["output"], reply["output_total"] = capture.collect()
            reply["output_lines"] = capture.lines
            try:
                message = dumps(reply)
            except BaseException as exc:
                message = dumps({"error": describe(exc, self.config["module_file"]), "output": "", "output_total": 0})
            write_message(replies_fd, message)


BUSY_WAIT_SHARE = 0.25  # a call that spent this share of its wall time waiting for a CPU ran on a busy host
TICK = 0.05  # seconds between two looks at a running call's CPU time
TREE_EVERY = 0.5  # seconds between two looks at its live descendants' (see Watchdog.check)


def cpu_seconds():
    """CPU time of this process (all its threads) and of its children that have ended. The
    watchdog adds its live descendants' (`live_descendants_cpu`) while a call runs long."""
    used = time.process_time()
    try:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used += children.ru_utime + children.ru_stime
    except (ImportError, OSError):  # Windows: no resource module
        pass
    return used


def live_descendants_cpu(most=32, budget=0.2):
    """CPU seconds of this process's live descendants, from Linux's /proc (children lists and
    stat's utime and stime); 0 where there is no /proc. A fork bomb's CPU is the learner's too.
    About 0.1 ms even without children. At most `most` processes and `budget` seconds: every
    file read gives up the GIL, which a starved worker may get back only slowly (a lower bound
    is enough to stop a fork bomb)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 0.0
    total, seen, todo = 0, set(), [os.getpid()]
    give_up = time.monotonic() + budget
    while todo and len(seen) < most and time.monotonic() < give_up:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    children = [int(child) for child in f.read().split()]
            except (OSError, ValueError):
                continue
            for child in children[: max(0, most - len(seen))]:
                if child in seen:
                    continue
                seen.add(child)
                todo.append(child)
                try:
                    with open(f"/proc/{child}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
                except (OSError, ValueError, IndexError):
                    continue
    return total / ticks


def runqueue_seconds():
    """Seconds the main thread spent runnable but waiting for a CPU (Linux's schedstat), or None
    where the system does not say."""
    try:
        with open(f"/proc/self/task/{threading.main_thread().native_id}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def host_busy(wall, waited, own=0.0):
    """Whether a call that took `wall` seconds ran on a busy host: it waited for a CPU
    (`waited` seconds on the run queue) a good share of the time, or, where that is not known,
    the load average exceeds the CPUs. A call that sleeps or blocks does not wait for a CPU;
    a call whose own child processes used the CPUs (`own` seconds) made the load itself."""
    if own > BUSY_WAIT_SHARE * wall:
        return False
    if waited is not None:
        return wall > 0 and waited >= BUSY_WAIT_SHARE * wall
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return False


MAX_STRETCH = 4.0  # on a busy host, a call's wall time may stretch to this many backstops


def extension(cpu, wall, cpu_limit, wall_limit):
    """The new wall deadline of a call starved by a busy host: time to get the rest of its CPU
    limit at the share of a CPU it has been getting, with a margin; at least a second backstop,
    at most MAX_STRETCH backstops. So correct code gets its CPU, and a loop meets its CPU limit."""
    share = cpu / wall if wall > 0 else 0.0
    needed = wall + 1.5 * (cpu_limit - cpu) / share if share > 0 else float("inf")
    return min(max(needed, 2 * wall_limit), MAX_STRETCH * wall_limit)


def overrun(cpu, wall, cpu_limit, deadline, busy, extended):
    """What to do with a running call: None (let it run), "extend" (its wall deadline came while
    the host was busy: once, see `extension`), "cpu" or "wall" (stop it: that limit ran out).
    CPU time decides; wall time is only a backstop for code that sleeps or blocks."""
    if cpu > cpu_limit:
        return "cpu"
    if wall <= deadline:
        return None
    return "extend" if busy and not extended else "wall"


class Watchdog:
    """When a call into learner code runs out of time, replies {"stopped": the learner's frames,
    innermost first, "limit", "usage", "output"}; the grader takes that as the timeout and says
    which line the code was on (grader.sandbox.timeouts). Time is CPU time: a busy machine slows
    a call's wall clock, not its CPU clock. One thread for the worker's life, started at the
    first call, looking every TICK while a call runs; the grader keeps its own, later deadline
    for code that never lets this thread run. The clocks are arguments, for tests."""

    def __init__(
        self,
        module_file,
        replies_fd,
        cpu_clock=cpu_seconds,
        wall_clock=time.monotonic,
        waited_clock=runqueue_seconds,
        tree_clock=live_descendants_cpu,
        threaded=True,
    ):
        self.module_file, self.replies_fd = module_file, replies_fd
        self.cpu_clock, self.wall_clock, self.waited_clock = cpu_clock, wall_clock, waited_clock
        self.tree_clock = tree_clock
        self.cond = threading.Condition()
        self.call, self.idle, self.thread = None, False, None
        self.threaded = threaded  # False: nothing looks at the call but `check` (tests, with fake clocks)

    def arm(self, cpu_limit, wall_limit):
        with self.cond:
            self.call = {
                "cpu_limit": cpu_limit,
                "wall_limit": wall_limit,
                "deadline": wall_limit,
                "extended": False,
                "cpu0": self.cpu_clock(),
                "tree0": None,  # live descendants' CPU, first read at the first look (a call's start stays cheap)
                "tree": 0.0,
                "tree_at": None,
                "wall0": self.wall_clock(),
                "waited0": self.waited_clock(),
            }
            if self.thread is None and self.threaded:
                self.thread = threading.Thread(target=self._watch, daemon=True)
                try:
                    self.thread.start()
                except RuntimeError:  # no thread to spare: the grader's deadline still holds
                    pass
            elif self.idle:
                self.cond.notify()

    def disarm(self):
        """The usage of the call that ended ({"cpu", "wall", "busy", "extended"}), or None when
        the watchdog already stopped it."""
        with self.cond:
            call, self.call = self.call, None
            return None if call is None else self.usage(call)

    def usage(self, call):
        wall = self.wall_clock() - call["wall0"]
        waited = self.waited_clock()
        waited = None if waited is None or call["waited0"] is None else waited - call["waited0"]
        return {
            "cpu": self.cpu_clock() - call["cpu0"] + call["tree"],
            "wall": wall,
            "busy": host_busy(wall, waited, call["tree"]),
            "extended": call["extended"],
        }

    def check(self):
        """One look at the running call: stop it (reply) when a limit ran out. Returns the
        verdict of `overrun`."""
        call = self.call
        wall = self.wall_clock() - call["wall0"]
        # The walk over /proc takes the GIL for every file: under a fork bomb it could take longer
        # than the call's backstop. So at most every TREE_EVERY, and never once the deadline passed.
        if wall <= call["deadline"] and (call["tree_at"] is None or wall - call["tree_at"] >= TREE_EVERY):
            tree = self.tree_clock()
            if call["tree0"] is None:
                call["tree0"] = tree
            call["tree"], call["tree_at"] = max(0.0, tree - call["tree0"]), wall
        used = self.usage(call)
        verdict = overrun(
            used["cpu"], used["wall"], call["cpu_limit"], call["deadline"], used["busy"], call["extended"]
        )
        if verdict == "extend":
            call["extended"] = True
            call["deadline"] = extension(used["cpu"], used["wall"], call["cpu_limit"], call["wall_limit"])
        elif verdict in ("cpu", "wall"):
            self.call = None  # the call in flight cannot reply now: this is its reply
            used["extended"] = call["extended"]
            self._report(sys._current_frames().get(threading.main_thread().ident), verdict, used)
        return verdict

    def _watch(self):
        with self.cond:
            while True:
                if self.call is None:
                    self.idle = True
                    self.cond.wait()
                    self.idle = False
                else:
                    self.cond.wait(TICK)
                    if self.call is not None:
                        self.check()

    def _report(self, frame, limit, usage):
        stack = traceback.extract_stack(frame) if frame is not None else []
        frames = [(f.lineno, f.name) for f in reversed(stack) if f.filename == self.module_file]
        capture = sys.stdout if isinstance(sys.stdout, _Capture) else None
        output, total = ("".join(capture.kept), capture.total) if capture else ("", 0)
        reply = {"stopped": frames, "limit": limit, "usage": usage, "output": output, "output_total": total}
        try:
            write_message(self.replies_fd, dumps(reply))
        except BaseException:
            pass


class _Capture:
    """sys.stdout/sys.stderr during one call: keeps the start, counts the rest."""

    def __init__(self):
        self.kept, self.total, self.lines = [], 0, 0

    def write(self, text):
        text = str(text)
        if self.total < OUTPUT_KEEP:
            self.kept.append(text[: OUTPUT_KEEP - self.total])
        self.total += len(text)
        self.lines += text.count("\n")
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    @classmethod
    def install(cls):
        capture = cls()
        sys.stdout = sys.stderr = capture
        return capture

    def collect(self):
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        return "".join(self.kept), self.total


class Method:
    """A bound method, sent as {METHOD: name}; the grader calls it with "call_attr"."""

    def __init__(self, name):
        self.name = name


def _is_function(obj):
    return inspect.isfunction(obj) or inspect.isbuiltin(obj)


def describe(exc, module_file):
    """{"type", "message", "where", "frames"}: `where` is the deepest frame in learner code,
    `frames` every learner frame as [line, function], outermost first (at most 12)."""
    where, frames = "", []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == module_file:
            where = f"{module_file}:{frame.lineno} in {frame.name}()"
            frames.append([frame.lineno, frame.name])
    if isinstance(exc, SyntaxError) and exc.filename == module_file:
        where = f"{module_file}:{exc.lineno}"
    try:
        message = str(exc.msg if isinstance(exc, SyntaxError) else exc)
    except BaseException:
        message = "(the exception could not be printed)"
    if isinstance(exc, SystemExit):
        message = f"your code called exit({exc.code!r})"
    return {"type": str(type(exc).__name__), "message": message[:2000], "where": where, "frames": frames[-12:]}


def _load_source(source, filename, name):
    import types

    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def _confine(config):
    """Resource limits, each where the platform has it, then (as root) a user of its own:
    learner code can then neither write the grader's files nor signal its processes.
    Returns the limits applied, for the grader to know what held."""
    resource = _resource_module(config)
    applied = []
    if resource is not None:
        mib = 1024 * 1024
        wanted = [
            ("memory", "RLIMIT_AS", config["memory_mb"] * mib),
            ("cpu", "RLIMIT_CPU", config["cpu_seconds"]),
            ("file size", "RLIMIT_FSIZE", config["file_mb"] * mib),
            ("core", "RLIMIT_CORE", 0),
        ]
        if config.get("uid"):
            # RLIMIT_NPROC counts every process of the real user id: it bounds a worker only
            # when that id is the worker's own (for root it does nothing at all).
            wanted.append(("processes", "RLIMIT_NPROC", config["processes"]))
        for label, name, value in wanted:
            which = getattr(resource, name, None)
            if which is None:
                continue
            try:
                _, hard = resource.getrlimit(which)
                if hard != resource.RLIM_INFINITY:
                    value = min(value, hard)
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):  # macOS refuses RLIMIT_AS, for one
                continue
            applied.append(label)
    if config.get("uid"):
        os.setgroups([])
        os.setgid(config["uid"])
        os.setuid(config["uid"])
    return applied


def _resource_module(config):
    """`resource`, or None where there is none (Windows); `simulate` gives the profiles of
    other platforms (tests)."""
    if config.get("simulate") == "windows":
        return None
    try:
        import resource
    except ImportError:
        return None
    if config.get("simulate") == "macos":
        return _MacOSResource(resource)
    return resource


class _MacOSResource:
    """`resource` as on macOS, where setrlimit(RLIMIT_AS, ...) raises ValueError."""

    def __init__(self, resource):
        self._resource = resource

    def __getattr__(self, name):
        return getattr(self._resource, name)

    def setrlimit(self, which, limits):
        if which == self._resource.RLIMIT_AS:
            raise ValueError("current limit exceeds maximum limit")
        return self._resource.setrlimit(which, limits)


# --- Linux namespaces: the worker's own view of the filesystem, and an init -------------

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
CLONE_NEWNS = 0x00020000


def _make_view(view):
    """As root of a mount namespace (our own, or unshare's): an empty tmpfs over each
    `cover` folder, the `python` folders bound back, then a tmpfs over each `hide` folder.
    The folders are opened first, so they can be bound back once covered."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source, target, fstype, flags, data=None):
        args = [s.encode() if s else None for s in (source, target, fstype)]
        if libc.mount(*args, flags, data.encode() if data else None) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"mount {target}: {os.strerror(errno)}")

    if view.get("unshare") and libc.unshare(CLONE_NEWNS) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNS): {os.strerror(errno)}")
    os.umask(0o022)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount reaches the host
    python = [(folder, os.open(folder, os.O_RDONLY | os.O_DIRECTORY)) for folder in view["python"]]
    for folder, options in view["cover"]:
        if os.path.isdir(folder) and not os.path.islink(folder):
            mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, options)
    for folder, fd in python:
        os.makedirs(folder, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", folder, None, MS_BIND | MS_REC)
        os.close(fd)
    for folder in view["hide"]:
        if os.path.isdir(folder):
            mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")


def _become_init(channel_fds):
    """Under `unshare --pid --fork` the worker starts as PID 1 of its namespace. Fork: the
    child works on, this process stays as init (it reaps orphans and, by exiting when the
    worker exits, takes every process of the namespace with it). Returns in the child only."""
    child = os.fork()
    if child == 0:
        return
    for fd in channel_fds:
        os.close(fd)  # the grader must see end-of-file as soon as the worker is gone
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _end_with_the_grader(requests_fd, config):
    """A grader killed outright (SIGKILL, a crash) cannot stop its worker or remove the scratch
    folder. A small helper forked here, before any learner code, does it instead: it waits
    until the requests pipe, which only the grader writes to, hangs up, then removes a host
    scratch folder and kills the worker's process group or, when the worker has a user of its
    own, every process of that user. It stays root where the grader is (the worker gives that
    up later), so learner code can neither signal it nor stop the removal; it holds none of the
    pipes the grader reads, so a worker that dies is still seen dying at once."""
    if not hasattr(os, "fork") or not hasattr(select, "poll"):  # native Windows
        return
    leader = os.getsid(0) == os.getpid()  # a session (and group) of its own, never the grader's
    if os.fork() != 0:
        return
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, requests_fd)
        os.closerange(requests_fd + 1, 1 << 16)
        poller = select.poll()
        poller.register(requests_fd, 0)  # mask 0: only hang-up and errors are reported
        while not any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll()):
            time.sleep(0.2)
        if config.get("host_scratch"):
            shutil.rmtree(config["scratch"], ignore_errors=True)
        if config.get("uid"):
            os.setgroups([])
            os.setgid(config["uid"])
            os.setuid(config["uid"])
            _kill_quietly(-1)  # as that user only: everything it runs, this helper too
        if leader:
            _kill_quietly(-os.getpgrp())
    finally:
        os._exit(0)


def _kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


# --- start-up ------------------------------------------------------------------------------


def _open_channel(config):
    """(requests_fd, replies_fd). With "stdio" (no pass_fds, e.g. Windows) the messages use
    the worker's stdin and stdout; fd 1 then points at stderr, so whatever learner code writes
    to its stdout, even below Python, lands with its other output and never in a message."""
    if config.get("transport") != "stdio":
        return config["requests_fd"], config["replies_fd"]
    requests_fd, replies_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    if sys.platform == "win32":
        import msvcrt

        for fd in (requests_fd, replies_fd):
            msvcrt.setmode(fd, os.O_BINARY)
    return requests_fd, replies_fd


def main(argv):
    config = json.loads(argv[1])
    requests_fd, replies_fd = _open_channel(config)
    config["requests_fd"], config["replies_fd"] = requests_fd, replies_fd  # the watchdog replies too
    # Everything up to the "booted" message is the grader's business: a failure here is
    # reported as a grader error (with this traceback on stderr), never as the learner's.
    if config.get("view"):
        _make_view(config["view"])
    if config.get("init") and os.getpid() == 1:
        _become_init((requests_fd, replies_fd))
    _end_with_the_grader(requests_fd, config)
    os.chdir(config["scratch"])
    import torch  # before the limits: the import itself is trusted and memory-hungry

    torch.set_num_threads(1)
    applied = _confine(config)
    write_message(replies_fd, dumps({"booted": True, "limits": applied}))
    worker = Worker(config)
    payload = read_message(requests_fd)  # the learner module's source
    if payload is None:
        return
    source = loads(payload)["source"]
    import_error = None
    capture = _Capture.install()
    try:
        worker.module = _load_source(source, config["module_file"], config["module_name"])
    except BaseException as exc:
        import_error = describe(exc, config["module_file"])
    output, total = capture.collect()
    write_message(
        replies_fd, dumps({"ready": True, "import_error": import_error, "output": output, "output_total": total})
    )
    if config.get("warm_up"):
        _warm_up_lazy_imports()
    worker.serve(requests_fd, replies_fd)


def _warm_up_lazy_imports():
    """torch imports torch._dynamo (about 0.9 s) the first time an optimizer is built. Do it in
    the background while the first, cheap checks run, not inside a timed training call."""
    import threading

    def warm():
        try:
            import torch._dynamo  # noqa: F401
        except Exception:
            pass

    threading.Thread(target=warm, daemon=True).start()


if __name__ == "__main__":
    main(sys.argv)
