"""Assertions for checks that explain themselves to a learner.

Every helper fails with an AssertionError whose message says what was expected, what came
back, where, and, when a `suspects` table is given, which known mistake the answer matches.
Tensors are compared with our own code (not torch.testing, which imports sympy on first use).

NaN and inf in learner output are wrong answers: every comparison and every shape/number/array
helper fails on them with a message that says so, unless the call says they are expected
(`finite=False`, or an expected tensor holding the same infinity at that place). A property
check (rows sum to 1, lengths are kept) would otherwise pass on NaN, which compares False with
everything.
"""

import hashlib
import math

import torch

from grader import errors
from grader.results import SUSPECT_MARK
from grader.safe_text import safe_repr, safe_text


class CheckFailed(AssertionError):
    """A check's verdict: the message is written for the learner; `mistake` is the id of the
    known mistake the answer matched ("" when none)."""

    def __init__(self, message, mistake="", matches=()):
        super().__init__(message)
        self.mistake = mistake
        # every known mistake the answer matched, `mistake` first: the plugin names `mistake`
        # only when no upstream exercise or check it builds on fails (grader.judge.naming)
        self.matches = tuple(matches) or ((mistake,) if mistake else ())


def fail(message, mistake="", matches=()):
    raise CheckFailed(message, mistake, matches)


# --- Inputs: reproducible random data for a check ------------------------------------------


_inputs: dict = {"salt": None}  # set only while `grade` runs (grader.instructor.live.GradeInputs)


def draw_inputs_from(salt):
    """From now on `generator(n)` draws from (salt, n) instead of n; None goes back to n.

    `grade` sets the submission's seed here, so that visible checks run on inputs that no
    recording holds (visible points are earned by code); the learner's `check` never does."""
    _inputs["salt"] = salt


def input_seed(seed):
    """The seed a check's `generator(seed)` really uses: `seed` itself, or mixed with the salt."""
    salt = _inputs["salt"]
    if salt is None:
        return seed
    digest = hashlib.sha256(f"fmgrade-inputs:{salt}:{seed}".encode("ascii")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed):
    """A torch.Generator of its own for one check's inputs: the same seed, the same tensors
    (at grade time, inputs drawn from the submission's seed: see `draw_inputs_from`)."""
    return torch.Generator().manual_seed(input_seed(seed))


def numpy_rng(seed):
    """A numpy Generator of its own for one check's inputs, drawn like `generator(seed)`."""
    import numpy

    return numpy.random.default_rng(input_seed(seed))


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


def _known_mistakes(matches):
    """[(id, message)] of every known mistake one of whose answers `matches(value)` accepts,
    in the order of the mutants file."""
    from grader import recorded_data as data

    seen = _seen["fingerprints"]
    for i, fingerprints in enumerate(seen):
        if callable(fingerprints):
            seen[i] = fingerprints() or {}
    found = []
    for mistake, message in _seen["messages"].items():
        for fingerprints in seen:
            form = fingerprints.get(mistake)
            if form is None:
                continue
            answer = data.decode(form)
            if any(_safe(matches, value) for value in (answer, *data.leaves(answer))):
                found.append((mistake, message))
                break
    return found


def _safe(matches, value):
    try:
        return bool(matches(value))
    except (TypeError, ValueError, RuntimeError, AssertionError):
        return False


def _fail_naming(message, matches, hint=None):
    """Fail with `message`, naming the known mistake whose answer `got` matches, if any."""
    known = _known_mistakes(matches)
    if known:
        fail(f"{message} {SUSPECT_MARK}{known[0][1]}.", known[0][0], [mistake for mistake, _ in known])
    fail(message + (f" {hint}" if hint else ""))


def shown(value, limit=200):
    """A learner value as a message shows it: a repr of at most about `limit` characters, built
    without the whole repr of anything large in it (use it, not `!r`, on what learner code returned)."""
    return safe_repr(value, limit)


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.6g}"
    return safe_repr(x)  # bounded: never the whole repr of a large learner value


NONFINITE_ADVICE = (
    "NaN and inf are never right answers here: NaN usually comes from 0/0, log(0), inf - inf or a "
    "softmax over a row that is all -inf; inf from an overflow (float16 stops at 65504) or a division by 0."
)


def _show_index(index):
    return list(index) if index else "()"


def nonfinite_message(what, value, index=()):
    """The learner's message for a NaN or an infinity at `index` (a tuple) of an answer."""
    return f"{what}: contains {_fmt(float(value))} at {_show_index(index)}, expected finite values. {NONFINITE_ADVICE}"


def _first_nonfinite(tensor, allowed=None):
    """(index tuple, value) of the first NaN or infinity of a real or complex tensor that `allowed`
    (a bool tensor of the same shape) does not excuse, else None."""
    values = torch.view_as_real(tensor) if tensor.is_complex() else tensor
    if not values.is_floating_point():
        return None
    bad = ~torch.isfinite(values)
    if allowed is not None:
        bad &= ~allowed
    if not bad.any():
        return None
    index = tuple(int(i) for i in bad.nonzero()[0].tolist())
    return index, values[index].item()


def expect_finite(got, what, hint=None):
    """`got` (a tensor, an array, a number, or a list/tuple/dict of them) must hold no NaN and no
    infinity; returns it unchanged. For property checks, whose comparisons NaN would slip past."""
    found = _nonfinite_in(got)
    if found is not None:
        message = nonfinite_message(what, found[1], found[0])
        fail(message + (f" {hint}" if hint else ""))
    return got


def _nonfinite_in(value, prefix=()):
    """(index, value) of the first NaN or infinity anywhere in `value`, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if math.isfinite(value) else (prefix, value)
    if isinstance(value, torch.Tensor):
        found = _first_nonfinite(value.detach())
        return None if found is None else (prefix + found[0], found[1])
    if hasattr(value, "dtype") and hasattr(value, "shape") and hasattr(value, "tolist"):  # numpy
        if getattr(value.dtype, "kind", "") not in "fc":
            return None
        import numpy

        return _nonfinite_in(torch.from_numpy(numpy.ascontiguousarray(value)), prefix)
    if isinstance(value, dict):
        items: list = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        found = _nonfinite_in(item, (*prefix, key))
        if found is not None:
            return found
    return None


def expect_tensor(got, what):
    """`got` must be a torch.Tensor (a plain one: subclasses are converted, never trusted)."""
    if not isinstance(got, torch.Tensor):
        fail(f"{what}: expected a torch.Tensor, got {type(got).__name__}.")
    return got.detach().as_subclass(torch.Tensor)


def expect_shape(got, shape, what, hint=None, *, finite=True):
    """`got` must be a tensor of `shape` and, unless `finite=False` (an answer that may hold
    -inf, such as filtered logits), hold no NaN or infinity."""
    got = expect_tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        message = f"{what}: expected shape {tuple(shape)}, got {tuple(got.shape)}."
        fail(message + (f" {hint}" if hint else ""))
    if finite:
        found = _first_nonfinite(got)
        if found is not None:
            fail(nonfinite_message(what, found[1], found[0]))
    return got


def _close(a, b, atol, rtol):
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol, equal_nan=False))


def _where(diff):
    return _show_index(tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape)))


def _float64(value):
    """A float64 tensor; a complex one as its (..., 2) real and imaginary parts."""
    value = torch.as_tensor(value).detach()
    return (torch.view_as_real(value) if value.is_complex() else value).double()


def expect_close(got, expected, what, *, atol=1e-5, rtol=1e-4, suspects=None, hint=None):
    """`got` must match `expected` elementwise; otherwise name the worst entry and any
    suspect (label -> tensor a known mistake would produce) that `got` matches instead.
    Complex tensors are compared as their real and imaginary parts. NaN in `got` is always
    wrong, an infinity wherever `expected` does not hold the same one."""
    expected = _float64(expected)
    got = expect_tensor(got, what)
    got = expect_shape(torch.view_as_real(got) if got.is_complex() else got, expected.shape, what, hint, finite=False)
    got = got.double()
    found = _first_nonfinite(got, allowed=torch.isinf(expected) & (got == expected))
    if found is not None:
        fail(nonfinite_message(what, found[1], found[0]) + (f" {hint}" if hint else ""))
    if _close(got, expected, atol, rtol):
        return got
    if not torch.isfinite(expected).all():  # the infinities agree (above): compare the rest
        diff = torch.where(torch.isfinite(expected), (got - expected).abs(), torch.zeros_like(got))
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
        found = _first_nonfinite(
            got, allowed=torch.isinf(expected) & (got == expected) if got.is_floating_point() else None
        )
        if found is not None:
            fail(nonfinite_message(what, found[1], found[0]) + (f" {hint}" if hint else ""))
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
    if isinstance(got, float) and not math.isfinite(got) and got != expected:
        fail(nonfinite_message(what, got) + (f" {hint}" if hint else ""))
    if got != expected:
        _fail_naming(
            f"{what}: expected {_fmt(expected)}, got {_fmt(got)}.", lambda v: type(v) is type(got) and v == got, hint
        )
    return got


def as_number(got, what, *, finite=True):
    """A float from a number or a one-element tensor/array; otherwise fail. NaN and infinities
    fail too, unless `finite=False`."""
    if hasattr(got, "shape") and hasattr(got, "tolist") and math.prod(got.shape) == 1:
        got = got.tolist()
        while isinstance(got, list):
            got = got[0]
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        fail(f"{what}: expected a number, got {safe_text(type(got).__name__, 80)} {safe_repr(got, 120)}.")
    if finite and not math.isfinite(got):
        fail(nonfinite_message(what, got))
    return float(got)


def as_array(got, shape, what, hint=None, *, finite=True):
    """A float64 numpy array of `shape` from an array or a tensor; otherwise fail. NaN and
    infinities fail too, unless `finite=False`."""
    import numpy

    if not (hasattr(got, "shape") and hasattr(got, "tolist")):
        fail(
            f"{what}: expected an array of shape {tuple(shape)}, got {type(got).__name__}."
            + (f" {hint}" if hint else "")
        )
    array = numpy.asarray(got.tolist(), dtype=numpy.float64)
    if array.shape != tuple(shape):
        fail(f"{what}: expected shape {tuple(shape)}, got {array.shape}.")
    if finite:
        found = _first_nonfinite(torch.from_numpy(array))
        if found is not None:
            fail(nonfinite_message(what, found[1], found[0]) + (f" {hint}" if hint else ""))
    return array


def expect_number(got, expected, what, *, rel=1e-6, abs_tol=0.0, suspects=None, hint=None):
    """A real number within `rel` relative (or `abs_tol` absolute) tolerance; otherwise name the
    suspect (label -> number a known mistake gives) that it matches. NaN is always wrong, an
    infinity unless `expected` is that infinity."""
    got = as_number(got, what, finite=False)
    if not math.isfinite(got) and got != expected:
        fail(nonfinite_message(what, got) + (f" {hint}" if hint else ""))
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
