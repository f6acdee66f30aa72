"""Assertions for checks that explain themselves to a learner.

Every helper fails with an AssertionError whose message says what was expected, what came
back, where, and, when a `suspects` table is given, which known mistake the answer matches.
Tensors are compared with our own code (not torch.testing, which imports sympy on first use).
"""

import math

import torch

from grader import errors
from grader.results import SUSPECT_MARK
from grader.safe_text import safe_repr, safe_text


class CheckFailed(AssertionError):
    """A check's verdict: the message is written for the learner; `mistake` is the id of the
    known mistake the answer matched ("" when none)."""

    def __init__(self, message, mistake=""):
        super().__init__(message)
        self.mistake = mistake


def fail(message, mistake=""):
    raise CheckFailed(message, mistake)


# --- Inputs: reproducible random data for a check ------------------------------------------


def generator(seed):
    """A torch.Generator of its own for one check's inputs: the same seed, the same tensors."""
    return torch.Generator().manual_seed(seed)


def randint(g, lo, hi):
    """One int in [lo, hi) drawn from the generator `g`."""
    return int(torch.randint(lo, hi, (), generator=g))


# --- Known mistakes: fingerprints of the recorded answers a check has seen ---------------------

_seen: dict = {"fingerprints": [], "messages": {}}


def begin_check(messages=None):
    """Forget the previous check's fingerprints; `messages` maps mistake id -> learner message."""
    _seen["fingerprints"] = []
    _seen["messages"] = dict(messages or {})


def saw_fingerprints(fingerprints):
    """A recorded answer was used: {mistake id: encoded answer of that mistake}, or a function
    that makes that mapping when it is first needed (live mistakes in hidden checks)."""
    if fingerprints:
        _seen["fingerprints"].append(fingerprints)


def new_comparison():
    """Forget the answers the check has used so far (keeping the known mistakes' messages):
    for a check that compares many small answers one after another, so that a wrong answer is
    named only from the answers of its own comparison."""
    _seen["fingerprints"] = []


def fail_naming(message, matches, hint=None):
    """Fail with `message` (a check's own comparison failed), naming the known mistake one of
    whose answers `matches(answer)` accepts; `matches` is given each whole answer and every
    tensor, array and number inside it, and may raise for answers of another kind."""
    _fail_naming(message, matches, hint)


def _known_mistake(matches):
    """(id, message) of the first known mistake one of whose answers `matches(value)` accepts."""
    from grader import recorded_data as data

    seen = _seen["fingerprints"]
    for i, fingerprints in enumerate(seen):
        if callable(fingerprints):
            seen[i] = fingerprints() or {}
    for mistake, message in _seen["messages"].items():
        for fingerprints in seen:
            form = fingerprints.get(mistake)
            if form is None:
                continue
            answer = data.decode(form)
            if any(_safe(matches, value) for value in (answer, *data.leaves(answer))):
                return mistake, message
    return None


def _safe(matches, value):
    try:
        return bool(matches(value))
    except (TypeError, ValueError, RuntimeError, AssertionError):
        return False


def _fail_naming(message, matches, hint=None):
    """Fail with `message`, naming the known mistake whose answer `got` matches, if any."""
    known = _known_mistake(matches)
    if known:
        fail(f"{message} {SUSPECT_MARK}{known[1]}.", known[0])
    fail(message + (f" {hint}" if hint else ""))


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.6g}"
    return safe_repr(x)  # bounded: never the whole repr of a large learner value


def expect_tensor(got, what):
    """`got` must be a torch.Tensor (a plain one: subclasses are converted, never trusted)."""
    if not isinstance(got, torch.Tensor):
        fail(f"{what}: expected a torch.Tensor, got {type(got).__name__}.")
    return got.detach().as_subclass(torch.Tensor)


def expect_shape(got, shape, what, hint=None):
    got = expect_tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        message = f"{what}: expected shape {tuple(shape)}, got {tuple(got.shape)}."
        fail(message + (f" {hint}" if hint else ""))
    return got


def _close(a, b, atol, rtol):
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol, equal_nan=False))


def _where(diff):
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    return list(index) if index else "()"


def _float64(value):
    """A float64 tensor; a complex one as its (..., 2) real and imaginary parts."""
    value = torch.as_tensor(value).detach()
    return (torch.view_as_real(value) if value.is_complex() else value).double()


def expect_close(got, expected, what, *, atol=1e-5, rtol=1e-4, suspects=None, hint=None):
    """`got` must match `expected` elementwise; otherwise name the worst entry and any
    suspect (label -> tensor a known mistake would produce) that `got` matches instead.
    Complex tensors are compared as their real and imaginary parts."""
    expected = _float64(expected)
    got = expect_tensor(got, what)
    got = expect_shape(torch.view_as_real(got) if got.is_complex() else got, expected.shape, what, hint)
    got = got.double()
    if _close(got, expected, atol, rtol):
        return got
    if not torch.isfinite(got).all():
        bad = (~torch.isfinite(got)).nonzero()[0].tolist()
        message = f"{what}: contains {got[tuple(bad)].item()} at {bad} (expected finite values)."
    else:
        diff = (got - expected).abs()
        at = _where(diff)
        index = tuple(at) if isinstance(at, list) else ()
        message = (
            f"{what}: differs at {at}: expected {expected[index].item():.6g}, "
            f"got {got[index].item():.6g} (largest difference {diff.max().item():.3g})."
        )
    for label, value in (suspects or {}).items():
        value = _float64(value)
        if _close(got, value, atol, rtol):
            fail(f"{message} {SUSPECT_MARK}{label}.")
    _fail_naming(message, lambda v: _close(got, _float64(v), atol, rtol), hint)


def expect_equal(got, expected, what, hint=None):
    """Exact equality for numbers, strings, bools and integer/bool tensors."""
    if isinstance(expected, torch.Tensor):
        got = expect_shape(got, expected.shape, what, hint)
        if got.dtype != expected.dtype and (got.dtype == torch.bool) != (expected.dtype == torch.bool):
            fail(f"{what}: expected dtype {expected.dtype}, got {got.dtype}.")
        if not torch.equal(got.to(expected.dtype), expected):
            wrong = (got.to(expected.dtype) != expected).nonzero()[0].tolist()
            at = tuple(wrong)
            message = f"{what}: differs at {wrong}: expected {expected[at].tolist()}, got {got[at].tolist()}."
            _fail_naming(
                message, lambda v: torch.equal(got.to(expected.dtype), torch.as_tensor(v).to(expected.dtype)), hint
            )
        return got
    if type(got) is not type(expected) and not (isinstance(expected, (int, float)) and type(got) in (int, float)):
        fail(f"{what}: expected a {type(expected).__name__}, got {type(got).__name__}.")
    if got != expected:
        _fail_naming(
            f"{what}: expected {_fmt(expected)}, got {_fmt(got)}.", lambda v: type(v) is type(got) and v == got, hint
        )
    return got


def as_number(got, what):
    """A float from a number or a one-element tensor/array; otherwise fail."""
    if hasattr(got, "shape") and hasattr(got, "tolist") and math.prod(got.shape) == 1:
        got = got.tolist()
        while isinstance(got, list):
            got = got[0]
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        fail(f"{what}: expected a number, got {safe_text(type(got).__name__, 80)} {safe_repr(got, 120)}.")
    return float(got)


def as_array(got, shape, what, hint=None):
    """A float64 numpy array of `shape` from an array or a tensor; otherwise fail."""
    import numpy

    if not (hasattr(got, "shape") and hasattr(got, "tolist")):
        fail(
            f"{what}: expected an array of shape {tuple(shape)}, got {type(got).__name__}."
            + (f" {hint}" if hint else "")
        )
    array = numpy.asarray(got.tolist(), dtype=numpy.float64)
    if array.shape != tuple(shape):
        fail(f"{what}: expected shape {tuple(shape)}, got {array.shape}.")
    return array


def expect_number(got, expected, what, *, rel=1e-6, abs_tol=0.0, suspects=None, hint=None):
    """A real number within `rel` relative (or `abs_tol` absolute) tolerance; otherwise name the
    suspect (label -> number a known mistake gives) that it matches."""
    got = as_number(got, what)
    if math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol):
        return got
    message = f"{what}: expected {_fmt(float(expected))}, got {_fmt(got)}."
    for label, value in (suspects or {}).items():
        if math.isclose(got, value, rel_tol=max(rel, 1e-6), abs_tol=abs_tol):
            fail(f"{message} {SUSPECT_MARK}{label}.")
    _fail_naming(message, lambda v: math.isclose(got, as_number(v, ""), rel_tol=max(rel, 1e-6), abs_tol=abs_tol), hint)


def outcome(call):
    """("ok", value), or (exception type name, message) when the learner's code raised.

    Works the same in-process and through the worker. "Not started", timeouts, a lost worker
    and a module that does not import are not outcomes: they propagate, so the check gets that
    status.
    """
    try:
        return "ok", call()
    except (errors.ImportFailed, errors.LearnerTimeout, errors.WorkerLost):
        raise
    except errors.LearnerCodeError as exc:
        if exc.type_name == "NotImplementedError":
            raise
        return exc.type_name, exc.message
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - in-process (the instructor's run): the module's own exception
        return type(exc).__name__, str(exc)


def expect_raises(call, what, advice, exception="ValueError"):
    """`call()` must raise `exception` (a type name); `advice` says why it should."""
    kind, message = outcome(call)
    if kind != exception:
        got = "returned a value" if kind == "ok" else f"raised {kind}: {safe_text(message, 2000)}"
        fail(f"{what}: expected a {exception} ({advice}), but it {got}.")
