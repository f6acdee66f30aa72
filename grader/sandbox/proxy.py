"""The grader's view of learner code: `impl` and `helpers` as proxies to the worker.

A Session owns the worker of one topic. It restarts the worker after a timeout or a crash
(the check in flight fails, the others run on), remembers a module that does not import
(every check then gets the same one-line error, without a restart each), and keeps what
learner code printed, per check.
"""

import time

from grader.errors import ImportFailed, LearnerCodeError, LearnerTimeout, WorkerLost
from grader.safe_text import MAX_ID, safe_id, safe_repr, safe_text
from grader.sandbox import cgroups, timeouts
from grader.sandbox import process as sandbox
from grader.sandbox import worker as wire

MEMORY_HINTS = ("can't allocate memory", "cannot allocate memory", "not enough memory")
STOP_GRACE = 1.0  # seconds the grader waits past a call's timeout for the worker's own "stopped" reply


class Session:
    def __init__(
        self,
        module_file,
        source,
        limits,
        isolation,
        helpers_source=None,
        hidden_roots=(),
        unreadable=None,
        worker_factory=None,
    ):
        """`limits` is the topic's course.Limits; `module_file` the name shown in messages;
        `source` None means the learner file could not be read (`unreadable` says why).
        `worker_factory` takes sandbox.WorkerProcess's arguments and returns a started worker
        (`fmgrade watch` hands out one that has already imported torch)."""
        self._worker_factory = worker_factory or sandbox.WorkerProcess
        self.module_file, self.source, self.limits = module_file, source, limits
        self.worker_limits = self.worker_limits_for(limits)
        self.isolation, self.helpers_source, self.hidden_roots = isolation, helpers_source, hidden_roots
        self.exercise = "?"
        self.generation = 0
        self.import_failure = None
        self.started = time.monotonic()
        self.cpu_used = 0.0  # CPU seconds of the topic's calls, as the worker measured them
        self._worker = None
        self.cgroup = ""  # what the worker's processes shared: "cgroup v1", or "no cgroup (why)"
        self._helpers_loaded = False
        self._ready = False
        if source is None:  # nothing to run: every check gets the same error, no worker starts
            self.import_failure = ImportFailed("FileNotFoundError", unreadable or f"{module_file} is missing")
        else:
            self._start()

    @staticmethod
    def worker_limits_for(limits):
        """The sandbox.WorkerLimits a topic's course.Limits give its worker."""
        return sandbox.WorkerLimits(memory_mb=limits.memory_mb, cpu_seconds=limits.cpu_seconds)

    # lifecycle
    def _start(self):
        self._helpers_loaded = self._ready = False
        self._worker = self._worker_factory(
            self.module_file, self.source, self.worker_limits, self.isolation, self.hidden_roots
        )
        if hasattr(self._worker, "cgroup"):  # a real worker process (tests pass fakes)
            self.cgroup = cgroups.describe(self._worker.cgroup)

    def _live_worker(self):
        if self.import_failure:
            raise self.import_failure
        if self._worker is None:
            self._start()
        if not self._ready:
            self._wait_ready()
        return self._worker

    def _wait_ready(self):
        # The first start includes `import torch` in the worker (about 1.4 s); be generous.
        try:
            error = self._worker.wait_ready(self.limits.call_timeout + 30)
        except sandbox.CallTimedOut:
            self._lose(f"importing {self.module_file} did not finish within {self.limits.call_timeout:g} s")
            self.import_failure = ImportFailed(
                "TimeoutError", f"your module does not import: importing {self.module_file} did not finish in time"
            )
            raise self.import_failure from None
        except sandbox.WorkerFailedToStart as failed:
            self._discard()
            self.import_failure = WorkerLost(grader_error(self.module_file, failed))
            raise self.import_failure from None
        except sandbox.WorkerDied as died:
            self._discard()
            self.import_failure = ImportFailed(
                "ImportError", f"your module does not import: while importing {self.module_file}, {died.reason}"
            )
            raise self.import_failure from None
        if error:
            kind, message, where = _error_fields(error)
            where = where or self.module_file
            self.import_failure = ImportFailed(kind, f"your module does not import: {where}: {kind}: {message}")
            raise self.import_failure
        self._ready = True

    def _lose(self, reason):
        self._worker.kill(reason)
        self._discard()

    def _discard(self):
        if self._worker is not None:
            self.last_output = self._worker.take_output()
            self._worker.close()
            self._worker = None
            self.generation += 1  # handles into the old worker are now stale

    def close(self):
        self._discard()

    def stop(self, reason):
        """From another thread (a grading budget ran out): the call in flight fails with `reason`."""
        worker = self._worker
        if worker is not None:
            worker.kill(reason)

    def module(self):
        """`impl`: raises ImportFailed when the learner module does not import."""
        self._live_worker()
        return ModuleProxy(self)

    def helpers(self):
        return HelpersProxy(self)

    # per check
    def begin_check(self, exercise):
        self.exercise = exercise
        if self._worker is not None:
            self._worker.take_output()
        self._check_topic_time()

    def _check_topic_time(self):
        """A topic's limit counts the CPU time of its calls; the clock is a backstop (WALL_FACTOR
        times as long) that only blames the learner when the host was not busy; on a busy host
        it stretches as a call's does (timeouts.topic_stretch), then it is the grader's problem."""
        limit = self.limits.topic_timeout
        if self.cpu_used > limit:
            raise LearnerTimeout(
                f"the checks of this topic took more than {limit:g} s in all ({self.cpu_used:.3g} s of CPU time)"
            )
        wall = time.monotonic() - self.started
        if wall > timeouts.wall_limit(limit):
            busy = timeouts.host_is_busy()
            if busy and wall <= timeouts.topic_stretch(limit):
                return  # a busy host slows the clock: each call is still bounded by its own limits
            if busy:
                raise timeouts.HostBusy(
                    f"grader error, not a problem in your code: the machine grading was too busy: the checks of this "
                    f"topic ran {wall:.3g} s on the clock for {self.cpu_used:.3g} s of CPU time, within their limit "
                    f"of {limit:g} s. They were not scored; grade again on a quieter machine."
                )
            raise LearnerTimeout(
                f"the checks of this topic took more than {limit:g} s in all ({wall:.3g} s on the clock)"
            )

    def take_output(self):
        return self._worker.take_output() if self._worker is not None else getattr(self, "last_output", "")

    # requests
    def request(self, op, target=wire.MODULE, name=None, args=(), kwargs=None, generation=None):
        if generation is not None and generation != self.generation:
            raise WorkerLost("this object was lost when the worker restarted after an earlier failure")
        worker = self._live_worker()
        if op == "call_helper" and not self._helpers_loaded:
            self._call(worker, {"op": "helpers", "name": "helpers.py", "args": [self.helpers_source]})
            self._helpers_loaded = True
        message = {
            "op": op,
            "target": target,
            "name": name,
            "timeout": self.limits.call_timeout,  # CPU seconds
            "wall_timeout": timeouts.wall_limit(self.limits.call_timeout),
            "args": _encode(list(args)),
            "kwargs": _encode(kwargs or {}),
        }
        return _decode(self._call(worker, message), self)

    def _call(self, worker, message):
        timed = "timeout" in message
        deadline = timeouts.grader_deadline(self.limits.call_timeout, STOP_GRACE) if timed else self.limits.call_timeout
        started = time.monotonic()
        try:
            reply = worker.request(message, deadline)
        except sandbox.CallTimedOut:  # not even the worker's watchdog answered
            self._lose("timeout")
            usage = {"cpu": 0.0, "wall": time.monotonic() - started, "busy": timeouts.host_is_busy(), "extended": True}
            if usage["busy"]:
                raise timeouts.HostBusy(
                    timeouts.host_busy_message(self.exercise, self._call_text(message), usage)
                ) from None
            raise LearnerTimeout(self._timed_out(message, [])) from None
        except sandbox.WorkerDied as died:
            self._discard()
            raise WorkerLost(f"{safe_text(died.reason, 2000)} during exercise `{self.exercise}`") from None
        if timed:
            self.cpu_used += timeouts.usage_of(reply)["cpu"]
        if "stopped" in reply:  # the worker's watchdog: the call ran out of time (see worker.Watchdog)
            self._lose("timeout")
            self._raise_stopped(message, reply)
        if "error" in reply:
            kind, text, where = _error_fields(reply["error"])
            if kind == "MemoryError" or any(h in text for h in MEMORY_HINTS):
                raise WorkerLost(
                    f"your code tried to use more than the {self.worker_limits.memory_mb} MiB "
                    f"of memory allowed (exercise `{self.exercise}`)"
                )
            frames = reply["error"].get("frames") if isinstance(reply["error"], dict) else None
            raise LearnerCodeError(kind, text, where, self._frames(frames))
        if "value" not in reply:
            self._lose("unreadable reply")
            raise WorkerLost(f"your code sent the grader a reply it cannot read (exercise `{self.exercise}`)")
        return reply["value"]

    def _frames(self, frames):
        """The worker's learner frames as (file, line, function, code), outermost first; the code
        is read from the learner's source the grader holds."""
        lines = (self.source or "").splitlines()
        return [  # names come from the worker (learner code can forge them): made safe like any text
            (self.module_file, line, safe_id(name), lines[line - 1][:400] if 0 < line <= len(lines) else "")
            for line, name in timeouts.learner_frames(frames)
        ]

    def _raise_stopped(self, message, reply):
        """The watchdog stopped a call: the learner's timeout (CPU limit, or a wall backstop on
        an idle host), or HostBusy (the backstop twice on a busy host)."""
        usage = timeouts.usage_of(reply)
        try:
            frames = timeouts.learner_frames(reply["stopped"])
            call = timeouts.describe_call(message, frames)
            at = timeouts.stopped_at(frames, self.module_file, self.source)
        except Exception:  # noqa: BLE001 - forged frames: say what is known
            call, at = "the call", ""
        text = timeouts.stopped_message(self.exercise, reply.get("limit"), self.limits.call_timeout, call, at, usage)
        if text is None:  # frames and call come from the worker: learner text, made safe
            raise timeouts.HostBusy(safe_text(timeouts.host_busy_message(self.exercise, call, usage), 4000))
        raise LearnerTimeout(safe_text(text, 4000))

    def _call_text(self, message):
        return timeouts.describe_call(message, ())

    def _timed_out(self, message, frames):
        """Which call did not return, and the learner's line it was stopped on (the frames come
        from the worker: names and lines learner code may have forged, so made safe)."""
        try:
            frames = timeouts.learner_frames(frames)
            text = (
                f"exercise `{self.exercise}` did not return within {self.limits.call_timeout:g} s: "
                f"{timeouts.describe_call(message, frames)} was stopped"
                f"{timeouts.stopped_at(frames, self.module_file, self.source)}"
            )
        except Exception:  # noqa: BLE001 - forged frames: say what is known
            text = f"exercise `{self.exercise}` did not return within {self.limits.call_timeout:g} s"
        return safe_text(text, 4000)


MAX_ERROR = 2000  # characters of an exception's message (the worker cuts there too, unless bypassed)


def _error_fields(error):
    """(type name, message, where) of an error the worker reported, made safe: learner code
    chose all three (an exception's str, its class's name, a frame's function name), and may
    have sent something else than text in their place."""
    if not isinstance(error, dict):
        error = {}

    def text(key, limit):
        value = error.get(key) or ""
        return safe_text(value if isinstance(value, str) else safe_repr(value, limit), limit)

    return safe_id(text("type", MAX_ID) or "Exception"), text("message", MAX_ERROR), text("where", 400)


def grader_error(module_file, failed):
    """The message of a worker that failed before any learner code ran: a grader error, with
    the worker's traceback (the first line is what a terminal report shows)."""
    log = safe_text(failed.log.strip()[-20000:]).splitlines()
    last = next((line.strip() for line in reversed(log) if line.strip()), "")
    message = (
        f"grader error, not a problem in your code: the worker process {safe_text(failed.reason, 2000)}"
        + (f": {last}" if last else "")
        + ". Please report this to whoever runs the course."
    )
    if log:
        message += "\nworker output:\n" + "\n".join(log[-25:])
    return message


def _encode(value):
    if isinstance(value, Handle):
        return {wire.HANDLE: object.__getattribute__(value, "_id")}
    if isinstance(value, ModuleProxy):
        return {wire.HANDLE: wire.MODULE}
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if type(value).__module__ == "numpy":
        if type(value).__name__ == "ndarray":
            import torch

            return {wire.NDARRAY: torch.from_numpy(value.copy())}
        if hasattr(value, "item"):  # numpy scalars (np.float64, np.int64, np.bool_) as Python numbers
            return value.item()
    return value


MAX_ITEMS = 1_000_000  # values in one reply; shared references could otherwise expand without bound
MAX_BYTES = sandbox.MAX_MESSAGE  # bytes of strings, bytes and tensors in one reply, each reference counted
# Characters of strings and bytes (and digits' worth of ints) in one reply, each reference counted. No
# exercise returns more than kilobytes of text; the bound is what keeps every message a check builds
# from a learner value (a repr, an f-string) small, wherever its author did not cut it.
MAX_TEXT = 4 * 1024 * 1024


def _size(item):
    """Bytes `item` stands for once decoded: a tensor sharing one stored element across a huge
    shape (stride 0) costs its full size as soon as a check computes with it."""
    if isinstance(item, (str, bytes, bytearray)):
        return len(item)
    numel, element_size = getattr(item, "numel", None), getattr(item, "element_size", None)
    if callable(numel) and callable(element_size) and type(item).__module__.startswith("torch"):
        return int(numel()) * int(element_size())
    return 0


def _text_size(item):
    """Characters `item` can print as: strings and bytes, and an int's digits (a learner's
    int of a billion bits is a few bytes of pickle and a gigabyte of text)."""
    if isinstance(item, (str, bytes, bytearray)):
        return len(item)
    if isinstance(item, int):
        return item.bit_length() // 3
    return 0


def _decode(value, session):
    budget = [MAX_ITEMS, MAX_BYTES, MAX_TEXT]

    def walk(item):
        budget[0] -= 1
        budget[1] -= _size(item)
        budget[2] -= _text_size(item)
        if budget[2] < 0:
            raise WorkerLost(
                f"your code returned more than {MAX_TEXT // (1024 * 1024)} M characters of text in one result, "
                f"counting every reference to a shared string (exercise `{session.exercise}`)"
            )
        if budget[0] < 0:
            raise WorkerLost(
                f"your code returned more than {MAX_ITEMS} values in one result (exercise `{session.exercise}`)"
            )
        if budget[1] < 0:
            raise WorkerLost(
                f"your code returned more than {MAX_BYTES // (1024 * 1024)} MB of data in one result, "
                f"counting every reference to a shared string or tensor (exercise `{session.exercise}`)"
            )
        if isinstance(item, dict):
            if wire.HANDLE in item:
                return Handle(
                    session,
                    item[wire.HANDLE],
                    str(item.get("type", "object")),
                    session.generation,
                    bool(item.get("function")),
                )
            if wire.METHOD in item:
                return item  # resolved by Handle.__getattr__ into a RemoteMethod
            if wire.NDARRAY in item:
                return walk(item[wire.NDARRAY]).numpy()
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, tuple):
            return tuple(walk(v) for v in item)
        return item

    return walk(value)


class ModuleProxy:
    """`impl`: attribute access and calls go to the learner module in the worker. Functions
    and classes are looked up once per worker; data attributes are read every time."""

    def __init__(self, session):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_callables", {})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        session, cache = object.__getattribute__(self, "_session"), object.__getattribute__(self, "_callables")
        cached = cache.get(name)
        if cached is not None and object.__getattribute__(cached, "_gen") == session.generation:
            return cached
        value = session.request("getattr", wire.MODULE, name)
        if isinstance(value, Handle) and (
            object.__getattribute__(value, "_function") or object.__getattribute__(value, "_type") == "type"
        ):
            cache[name] = value
        return value

    def __repr__(self):
        return f"<learner module {object.__getattribute__(self, '_session').module_file}>"


class RemoteMethod:
    """A method of an object in the worker: one round trip per call."""

    def __init__(self, owner, name):
        self._owner, self._name = owner, name

    def __call__(self, *args, **kwargs):
        return self._owner._request("call_attr", self._name, args, kwargs)

    def __repr__(self):
        return f"<method {self._name} of {self._owner!r}>"


class HelpersProxy:
    """`helpers.name(*args)` runs `name(learner_module, *args)` from the topic's helpers.py."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._session.request("call_helper", wire.HELPERS, name, args, kwargs)


class Handle:
    """An object that lives in the worker. Supports attribute reads, calls, indexing,
    iteration and len; can be passed back into learner code as an argument."""

    def __init__(self, session, handle_id, type_name, generation, function=False):
        for key, value in (
            ("_session", session),
            ("_id", handle_id),
            ("_type", type_name),
            ("_gen", generation),
            ("_function", function),
            ("_methods", {}),
        ):
            object.__setattr__(self, key, value)

    def _request(self, op, name=None, args=(), kwargs=None):
        get = object.__getattribute__
        return get(self, "_session").request(op, get(self, "_id"), name, args, kwargs, generation=get(self, "_gen"))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        methods = object.__getattribute__(self, "_methods")
        if name in methods:
            return methods[name]
        value = self._request("getattr", name)
        if isinstance(value, dict) and set(value) == {wire.METHOD}:
            value = methods[name] = RemoteMethod(self, name)
        return value

    def __setattr__(self, name, value):
        raise TypeError("objects from your code are read-only in checks; call their methods instead")

    def __call__(self, *args, **kwargs):
        return self._request("call", args=args, kwargs=kwargs)

    def __getitem__(self, key):
        return self._request("getitem", args=(key,))

    def __len__(self):
        return self._request("len")

    def __iter__(self):
        return iter(self._request("iter"))

    def __repr__(self):
        return f"<{object.__getattribute__(self, '_type')} object from your code>"

    def __bool__(self):
        return True
