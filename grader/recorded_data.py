"""A JSON encoding of check data that loading can never turn into code.

Tensors and arrays keep dtype, shape and their little-endian bytes (base64); floats that JSON
cannot hold (nan, inf) are spelled out. The same value always gives the same text, so a
recording is deterministic and diffs only where the solution's answers changed.
"""

import base64
import hashlib
import json
import math

import numpy
import torch

_TORCH_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float64,
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
        torch.complex64,
        torch.complex128,
    )
}
_NUMPY_KINDS = "biufc"


class NotData(TypeError):
    """A value that a recording cannot hold (an object the solution returned, a proxy...)."""


def is_data(value):
    try:
        encode(value)
    except NotData:
        return False
    return True


def encode(value):
    """A JSON-able form of `value`; raises NotData for anything that is not plain data."""
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        if tensor.is_sparse or str(tensor.dtype).removeprefix("torch.") not in _TORCH_DTYPES:
            raise NotData(f"a tensor of dtype {tensor.dtype}")
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        return {
            "tensor": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
            "data": base64.b64encode(raw).decode("ascii"),
        }
    if isinstance(value, numpy.ndarray) and value.dtype.kind in _NUMPY_KINDS:
        array = numpy.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        return {
            "ndarray": array.dtype.str,
            "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode("ascii"),
        }
    if isinstance(value, numpy.generic) and value.dtype.kind in _NUMPY_KINDS:
        return encode(value.item())
    if type(value) is list:
        return [encode(v) for v in value]
    if isinstance(value, tuple):  # namedtuples and torch.Size too: recorded as plain tuples
        return {"tuple": [encode(v) for v in value]}
    if type(value) is dict:
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise NotData(f"a {type(value).__module__}.{type(value).__qualname__}")


def decode(form):
    """The value `encode` was given (tuples stay tuples, tensors come back as new tensors)."""
    if form is None or type(form) in (bool, int, float, str):
        return form
    if type(form) is list:
        return [decode(v) for v in form]
    if type(form) is not dict or len(form) not in (1, 3):
        raise ValueError(f"not a recorded value: {str(form)[:80]}")
    if "tensor" in form:
        dtype = _TORCH_DTYPES[form["tensor"]]
        raw = bytearray(base64.b64decode(form["data"]))
        if not raw:
            return torch.empty(form["shape"], dtype=dtype)
        return torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(form["shape"]).clone()
    if "ndarray" in form:
        array_dtype = numpy.dtype(form["ndarray"])
        if array_dtype.kind not in _NUMPY_KINDS:
            raise ValueError(f"not a recorded array dtype: {form['ndarray']}")
        return numpy.frombuffer(base64.b64decode(form["data"]), dtype=array_dtype).reshape(form["shape"]).copy()
    if "float" in form:
        return float(form["float"])
    if "tuple" in form:
        return tuple(decode(v) for v in form["tuple"])
    if "dict" in form:
        return {decode(k): decode(v) for k, v in form["dict"]}
    raise ValueError(f"not a recorded value: {str(form)[:80]}")


def _fingerprint(value):
    """Like `encode`, but tensors and arrays are named by a digest of their bytes (for keys)."""
    form = encode(value)
    return _digest_payloads(form)


def _digest_payloads(form):
    """Integer and bool data by a digest of its bytes; floating data by dtype and shape only, and
    Python floats to ten digits: float kernels differ in the last bit between CPUs (torch.randn
    on x86 and on ARM), and a learner's machine must find the answers recorded on another. Which
    values a recorded call gets is fixed by the check's code; `dev check` compares them."""
    if type(form) is list:
        return [_digest_payloads(v) for v in form]
    if type(form) is float:
        return {"f": format(form, ".10g")}
    if type(form) is dict:
        if "data" in form:
            kind = str(form.get("tensor") or form.get("ndarray"))
            if any(word in kind for word in ("float", "complex", "f", "c")) and not kind.startswith(
                ("int", "uint", "bool")
            ):
                return {k: v for k, v in form.items() if k != "data"}
            return {**form, "data": hashlib.sha256(form["data"].encode("ascii")).hexdigest()[:32]}
        return {k: _digest_payloads(v) for k, v in form.items()}
    return form


def call_key(parent, index, op, name, args=(), kwargs=None, node_key=lambda value: None):
    """The key of one operation: the `index`-th made on the node `parent` (a key itself).

    op is "getattr", "call" or "getitem". Arguments that are recorded objects appear by their
    key, which `node_key(value)` gives (None for data; grader.judge.replay passes its own);
    everything else must be data.
    """

    def part(value):
        key = node_key(value)
        if key is not None:
            return {"node": key}
        if isinstance(value, (list, tuple)) and any(node_key(v) is not None for v in value):
            return {"seq": [part(v) for v in value]}
        try:
            return _fingerprint(value)
        except NotData as exc:
            raise NotData(f"recorded calls take data or recorded objects, not {exc}") from None

    payload = [
        parent,
        index,
        op,
        name,
        [part(a) for a in args],
        sorted([k, part(v)] for k, v in (kwargs or {}).items()),
    ]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def leaves(value):
    """Every tensor, array and number inside a (decoded) value, depth first."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif value is not None:
        yield value
