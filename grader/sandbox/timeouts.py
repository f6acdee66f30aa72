"""What a call that timed out was doing: the call with its arguments' shapes, and the line of
learner code it was on when it was stopped.

The request for a call carries its timeout; when it runs out, the worker's watchdog replies
with the learner's frames instead of a value (grader.sandbox.worker.Watchdog), and the grader turns
them and the request into a message.
"""

from grader.sandbox import worker as wire


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
