"""Time limits that do not depend on the machine's load, and what a call that ran out of time
was doing: the call with its arguments' shapes, and the line of learner code it was on.

A call's limit counts the CPU time it uses (grader.sandbox.worker.Watchdog measures the worker's
own CPU clock): a busy host slows a call's wall clock, not its CPU clock. Wall time is only a
backstop, WALL_FACTOR times the limit, for code that sleeps or blocks. When the backstop comes
while the host is busy (the call spent a good share of it waiting for a CPU), the call is given
once the time to get the rest of its CPU limit at the share of a CPU it has been getting (at most
MAX_STRETCH backstops, grader.sandbox.worker.extension); if it still cannot finish, that is the grader's problem (HostBusy: an error that
says so), never the learner's timeout. A topic's limit counts the CPU time of all its calls,
with the same wall backstop.
"""

import os

from grader.errors import WorkerLost
from grader.sandbox import worker as wire

WALL_FACTOR = 3.0  # the wall-clock backstop of a call or a topic, as a multiple of its CPU limit


class HostBusy(WorkerLost):
    """The grading machine was too busy for a call (or a topic) to finish within its wall-clock
    backstop, twice, although it stayed within its CPU limit: a grader-side error, not a timeout."""


def wall_limit(cpu_limit):
    return WALL_FACTOR * cpu_limit


def grader_deadline(cpu_limit, grace):
    """How long the grader itself waits for a call's reply: past the worker's own stop, even
    after its one extension for a busy host (the worker's watchdog needs the GIL to stop a call)."""
    return wire.MAX_STRETCH * wall_limit(cpu_limit) + grace


def topic_stretch(cpu_limit):
    """The wall-clock backstop of a topic on a busy host: as far as a call's may stretch."""
    return wire.MAX_STRETCH * wall_limit(cpu_limit)


def host_is_busy():
    """The grader's own view, for a worker that did not answer at all: the load average
    exceeds the CPUs."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return False


def usage_of(reply):
    """A reply's {"cpu", "wall", "busy", "extended"}, numbers checked (the worker runs learner code,
    which can write to the pipe: anything malformed counts as nothing)."""
    usage = reply.get("usage") if isinstance(reply, dict) else None
    if not isinstance(usage, dict):
        return {"cpu": 0.0, "wall": 0.0, "busy": False, "extended": False}

    def seconds(key):
        value = usage.get(key)
        return float(value) if type(value) in (int, float) and 0 <= value < 1e9 else 0.0

    return {
        "cpu": seconds("cpu"),
        "wall": seconds("wall"),
        "busy": usage.get("busy") is True,
        "extended": usage.get("extended") is True,
    }


def stopped_message(exercise, limit, cpu_limit, call, at, usage):
    """The learner's message for a call the watchdog stopped (`limit` "cpu" or "wall"), or None
    when it is a grader-side problem (the wall backstop twice, on a busy host)."""
    head = f"exercise `{exercise}` did not return within {cpu_limit:g} s: {call} was stopped{at}"
    if limit == "cpu":
        return head + f" after {usage['cpu']:.3g} s of CPU time (the limit counts CPU time, not the clock)."
    if usage["busy"]:
        return None
    return (
        head + f" after {usage['wall']:.3g} s on the clock, in which it used only {usage['cpu']:.3g} s of CPU: "
        "is it waiting for something (a sleep, a lock, input, another process)?"
    )


def host_busy_message(exercise, call, usage):
    return (
        f"grader error, not a problem in your code: the machine grading was too busy for exercise `{exercise}`: "
        f"{call} ran {usage['wall']:.3g} s on the clock but got only {usage['cpu']:.3g} s of CPU, "
        "within its limit, even with extra time. This check was not scored; grade again on a quieter machine."
    )


def learner_frames(value):
    """The worker's report as (line, function) pairs, innermost first; anything malformed (the
    learner's code can write to the pipe too) is dropped."""
    if not isinstance(value, (list, tuple)):
        return []
    return [
        (frame[0], frame[1][:80])
        for frame in value[:100]
        if isinstance(frame, (list, tuple)) and len(frame) == 2 and type(frame[0]) is int and isinstance(frame[1], str)
    ]


def describe_call(message, frames=()):
    """'attention(tensor(2, 4, 8), tensor(2, 4, 8), mask=None)' for a request to the worker;
    the function name comes from the learner's outermost frame when the request names none."""
    name = message.get("name")
    if message.get("op") == "call" or not name:
        name = frames[-1][1] if frames else None
    if message.get("op") == "call_helper":
        name = f"the check's helper {name}"
    args = [describe_value(v) for v in message.get("args") or ()]
    args += [f"{k}={describe_value(v)}" for k, v in (message.get("kwargs") or {}).items()]
    text = f"{name}({', '.join(args)})" if name else f"your function, called with ({', '.join(args)}),"
    return text if len(text) <= 200 else text[:197] + "..."


def describe_value(value, depth=0):
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        dtype = str(value.dtype).replace("torch.", "")
        kind = "tensor" if type(value).__module__.startswith("torch") else "array"
        shape = ", ".join(str(n) for n in value.shape)
        return f"{kind}({shape})" + ("" if dtype in ("float32", "float64") else f" {dtype}")
    if isinstance(value, dict):
        if wire.NDARRAY in value:
            return describe_value(value[wire.NDARRAY], depth).replace("tensor(", "array(", 1)
        if wire.HANDLE in value:
            return "<your object>"
        return f"dict of {len(value)}"
    if isinstance(value, (list, tuple)):
        if len(value) <= 3 and depth < 2:
            inner = ", ".join(describe_value(v, depth + 1) for v in value)
            return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def stopped_at(frames, module_file, source):
    """' at exercises/x.py:12 in f(): `while True:`' for the innermost learner frame, or ''."""
    if not frames:
        return ""
    line, name = frames[0]
    where = f" at {module_file}:{line} in {name}()"
    lines = (source or "").splitlines()
    if 0 < line <= len(lines) and lines[line - 1].strip():
        where += f": `{lines[line - 1].strip()[:120]}`"
    return where
