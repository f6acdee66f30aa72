"""The `recorded` fixture: `recorded.attention(q, k, v)` is what the reference solution returned.

A check uses `recorded` like the solution module: call functions, build objects, call their
methods, read attributes, index. Each operation is keyed by what it was made on, its position
among the operations on that object, and its arguments (data, or other recorded objects).
Data results come back as data; anything else (a model, a generator) as another recorded object.

- `Replay` answers from a topic's recording (the student release, `fmgrade check`, `grade`).
- `Record` makes the operations on the solution and stores the answers (`fmgrade dev record`);
  given a known mistake's module too, it makes each operation on both and keeps, as that
  mistake's fingerprint, every answer in which the two differ.
"""

import copy
import random

import numpy
import torch

from grader import recorded_data as data


class RecordingMissing(Exception):
    """A check asked for an answer the recording does not hold: the course needs re-recording."""


def node_key(value):
    return object.__getattribute__(value, "_key") if isinstance(value, Node) else None


class Node:
    """A recorded object (the solution module, or something the solution returned)."""

    def __init__(self, book, key):
        object.__setattr__(self, "_book", book)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_ops", 0)

    def _next_key(self, op, name, args=(), kwargs=None):
        index = object.__getattribute__(self, "_ops")
        object.__setattr__(self, "_ops", index + 1)
        return data.call_key(object.__getattribute__(self, "_key"), index, op, name, args, kwargs, node_key)

    def _op(self, op, name, args=(), kwargs=None):
        key = self._next_key(op, name, args, kwargs)
        return object.__getattribute__(self, "_book").answer(self, key, op, name, args, kwargs or {})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._op("getattr", name)

    def __call__(self, *args, **kwargs):
        return self._op("call", "", args, kwargs)

    def __getitem__(self, index):
        return self._op("getitem", "", (index,))

    def __setattr__(self, name, value):
        raise TypeError("recorded objects are read-only: build inputs, then call")

    def __iter__(self):
        raise TypeError("recorded objects cannot be iterated; index them or call a method")

    def __repr__(self):
        return f"<recorded {object.__getattribute__(self, '_key')[:8]}>"


class Replay:
    """Answers from a recording. `on_answer(key)` is told every data answer given."""

    def __init__(self, recording, check_id, on_answer=None):
        self.recording, self.check_id, self.on_answer = recording, check_id, on_answer

    def root(self):
        return Node(self, self.check_id)

    def answer(self, node, key, op, name, args, kwargs):
        entry = self.recording.calls.get(key)
        if entry is None:
            what = f".{name}" if op == "getattr" else "(...)" if op == "call" else "[...]"
            raise RecordingMissing(
                f"the course's recording of {self.check_id} has no answer for `recorded{what}` "
                f"(topic {self.recording.topic}: the instructor must run `fmgrade dev record`)"
            )
        if "object" in entry:
            return Node(self, key)
        if self.on_answer is not None:
            self.on_answer(key)
        return data.decode(entry["value"])


_GONE = object()  # the mistake's side raised, or returned data where the solution returned an object


class Record:
    """Makes every operation on the solution (and on a mistake's module) and records the answers."""

    def __init__(self, recording, solution, mistake=None):
        """`mistake`: (mistake id, module) whose differing answers become its fingerprint."""
        self.recording, self.mistake = recording, mistake
        self.objects = {}  # key -> (solution's object, the mistake's object or _GONE)
        self.solution = solution
        self.checks = set()  # checks that used `recorded`

    def root(self, check_id):
        self.checks.add(check_id)
        self.objects[check_id] = (self.solution, self.mistake[1] if self.mistake else _GONE)
        self.recording.labels[check_id] = f"{check_id}: recorded"
        return Node(self, check_id)

    def answer(self, node, key, op, name, args, kwargs):
        parent = self.recording.labels.get(node_key(node), "recorded")
        self.recording.labels[key] = parent + (f".{name}" if op == "getattr" else "(...)" if op == "call" else "[...]")
        ours, theirs = self.objects[node_key(node)]
        their_args = _real(copy.deepcopy(_strip(args)), args, self, 1)
        their_kwargs = {k: _real(copy.deepcopy(_strip(v)), v, self, 1) for k, v in kwargs.items()}
        before = _rng_state()
        result = _apply(
            ours, op, name, _real(args, args, self, 0), {k: _real(v, v, self, 0) for k, v in kwargs.items()}
        )
        after = _rng_state()
        other = _GONE
        if theirs is not _GONE:
            _set_rng_state(before)
            try:
                other = _apply(theirs, op, name, their_args, their_kwargs)
            except Exception:  # noqa: BLE001 - a mistake may raise where the solution does not
                other = _GONE
            _set_rng_state(after)
        if not data.is_data(result):
            self.recording.calls[key] = {"object": True}
            self.objects[key] = (result, other if other is not _GONE and not data.is_data(other) else _GONE)
            return Node(self, key)
        form = data.encode(result)
        self.recording.calls[key] = {"value": form}
        if self.mistake and other is not _GONE and data.is_data(other) and _differ(result, other):
            self.recording.fingerprints.setdefault(key, {})[self.mistake[0]] = data.encode(other)
        return data.decode(form)


def _strip(value):
    """`value` with recorded objects replaced by None (so deepcopy never copies a model)."""
    if node_key(value) is not None:
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_strip(v) for v in value) if type(value) in (list, tuple) else value
    return value


def _real(copied, original, book, side):
    """Arguments for one side: recorded objects become that side's real objects."""
    key = node_key(original)
    if key is not None:
        return book.objects[key][side]
    if type(original) in (list, tuple):
        return type(original)(_real(c, o, book, side) for c, o in zip(copied, original))
    return copied


def _apply(target, op, name, args, kwargs):
    if op == "getattr":
        return getattr(target, name)
    if op == "call":
        return target(*args, **kwargs)
    return target[args[0]]


def _rng_state():
    return torch.get_rng_state(), random.getstate(), numpy.random.get_state()


def _set_rng_state(state):
    torch.set_rng_state(state[0])
    random.setstate(state[1])
    numpy.random.set_state(state[2])


def _differ(a, b):
    """Whether the mistake's answer differs from the solution's beyond float noise."""
    left, right = list(data.leaves(a)), list(data.leaves(b))
    if len(left) != len(right):
        return True
    for x, y in zip(left, right):
        if isinstance(x, (torch.Tensor, numpy.ndarray)) or isinstance(y, (torch.Tensor, numpy.ndarray)):
            tx, ty = (_real_view(torch.as_tensor(v)) for v in (x, y))
            if tx.shape != ty.shape or tx.dtype.is_floating_point != ty.dtype.is_floating_point:
                return True
            if not torch.allclose(tx.double(), ty.double(), rtol=1e-7, atol=1e-10, equal_nan=True):
                return True
        elif isinstance(x, float) or isinstance(y, float):
            if not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
                return True
            if abs(x - y) > 1e-10 + 1e-7 * abs(x) and not (x != x and y != y):
                return True
        elif x != y:
            return True
    return False


def _real_view(tensor):
    """A complex tensor as its (..., 2) real and imaginary parts (casting would drop the latter)."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor
