"""Twin calls at grade time: a visible check's call of a learner function, made again on varied
inputs and compared with the live solution on the same inputs.

Drawing inputs from the submission's seed (grader.checking.draw_inputs_from) covers checks that
draw random inputs; hand-worked checks call the learner on fixed values, which a lookup of the
release's recordings answers. So at grade time every call a visible check (one that compares
with `recorded`) makes on one of the learner's module functions is remembered, and once the
check has passed each is made again on a twin of its arguments: floats scaled by a factor near
1 from below (zeros, signs, infinities and the range [0, 1] stay), ints other than -1, 0 and 1
moved up by 1 or 2, text (strings with a space) given a drawn word, everything else kept. The twin counts only where the solution answers it, the same
way twice (no twins of sampling); the learner's answer must then match the solution's.
Correct code agrees on any input; a lookup keyed by the check's inputs cannot. The variation is
drawn from the run's input seed (grader.checking.input_seed), never shown to learner code.
"""

import copy
import types

import torch

from grader import checking
from grader import recorded_data as data
from grader.errors import LearnerTimeout, WorkerLost
from grader.safe_text import safe_repr

MAX_TWINS = 6  # twins per check: enough to defeat a lookup, cheap next to the check itself
_WORDS = ("amber", "basalt", "cobalt", "delta", "ember", "fjord", "garnet", "harbor")


class Watched:
    """The learner's module as a check sees it (or the topic's helpers, whose `call(name, *args)`
    calls a learner function and answers {"value": ...} or {"error": ...}), remembering the
    calls of the solution's module functions."""

    def __init__(self, impl, solution, calls, helpers=False):
        object.__setattr__(self, "_impl", impl)
        object.__setattr__(self, "_solution", solution)
        object.__setattr__(self, "_calls", calls)  # shared by the module's and the helpers' view
        object.__setattr__(self, "_helpers", helpers)

    def __getattr__(self, name):
        value = getattr(object.__getattribute__(self, "_impl"), name)
        if object.__getattribute__(self, "_helpers"):
            if name != "call":
                return value
            return lambda function, *args, **kwargs: self._remember(value, function, True, args, kwargs)
        if not _is_function(object.__getattribute__(self, "_solution"), name):
            return value
        return lambda *args, **kwargs: self._remember(value, name, False, args, kwargs)

    def _remember(self, value, name, through_helpers, args, kwargs):
        calls = object.__getattribute__(self, "_calls")
        solution = object.__getattribute__(self, "_solution")
        if _is_function(solution, name) and data.is_data((args, kwargs)) and len(calls) < 4 * MAX_TWINS:
            calls.append((name, through_helpers, copy.deepcopy(args), copy.deepcopy(kwargs)))
        return value(name, *args, **kwargs) if through_helpers else value(*args, **kwargs)

    def __setattr__(self, name, value):
        setattr(object.__getattribute__(self, "_impl"), name, value)


def _is_function(module, name):
    return isinstance(name, str) and isinstance(getattr(module, name, None), types.FunctionType)


def verify(impl, helpers, solution, calls, check_id):
    """Make the twins of `calls` (what Watched saw); fail the check on the first disagreement."""
    done = 0
    for number, (name, through_helpers, args, kwargs) in enumerate(calls):
        if done >= MAX_TWINS:
            break
        made = [_twin(getattr(solution, name), args, kwargs, f"{check_id}#{number}", ints) for ints in (True, False)]
        made = [twin for twin in made if twin is not None]
        if not made:
            continue
        done += 1
        function = _through(helpers, name) if through_helpers or impl is None else getattr(impl, name)
        _expect_agreement(name, function, made)


def _twin(function, args, kwargs, label, ints):
    """(args, kwargs, the solution's answer) of a twin of one call, or None when the twin is the
    call itself or the solution does not answer it. `ints`: vary ints too."""
    g = checking.generator(_stable_hash(label))  # drawn from the run's input seed
    twin_args, twin_kwargs = vary((args, kwargs), g, ints)
    if data.encode((twin_args, twin_kwargs)) == data.encode((args, kwargs)):
        return None
    expected = _solution_answer(function, twin_args, twin_kwargs)
    return None if expected is _NO_TWIN else (twin_args, twin_kwargs, expected)


def _through(helpers, name):
    """The learner's `name` called through the helpers' `call`: its errors raise again here."""

    def call(*args, **kwargs):
        out = helpers.call(name, *args, **kwargs)
        if isinstance(out, dict) and "error" in out:
            raise RuntimeError(str(out["error"])[:200])
        return out.get("value") if isinstance(out, dict) else out

    return call


_NO_TWIN = object()


def _solution_answer(function, args, kwargs):
    """The solution's answer to the twin, or _NO_TWIN when it raises, returns an object or
    answers differently from another random state (sampling)."""
    answers = []
    with torch.random.fork_rng():
        for state in (0, 1):
            torch.manual_seed(state)
            try:
                answer = function(*copy.deepcopy(args), **copy.deepcopy(kwargs))
                answers.append(data.encode(answer))
            except Exception:  # noqa: BLE001 - a twin outside the function's domain: no twin
                return _NO_TWIN
    if answers[0] != answers[1]:
        return _NO_TWIN
    return data.decode(answers[0])


def _expect_agreement(name, function, made):
    """The learner's answer to the first twin must match the solution's. If it raises, and a
    twin that keeps the ints exists, that one judges instead: a correct function may reject ints
    moved away from the sizes of the tensors beside them."""
    for position, (args, kwargs, expected) in enumerate(made):
        shown = f"`{name}` on the check's inputs varied at grade time ({_args_text(args, kwargs)})"
        try:
            got = function(*args, **kwargs)
        except (LearnerTimeout, WorkerLost, AssertionError):
            raise
        except Exception as exc:  # noqa: BLE001 - learner code raised where the reference answers
            if position + 1 < len(made):
                continue
            checking.fail(
                f"{shown} raised {type(exc).__name__} where the reference answers: visible checks at grade "
                "time call your functions on inputs of their own, not only the check's."
            )
        problem = disagreement(got, expected)
        if problem:
            checking.fail(
                f"{shown}: {problem}. Visible checks at grade time also call your functions on varied "
                "inputs: code that computes the answer passes them all."
            )
        return


def disagreement(got, expected, where="the answer"):
    """'' when `got` matches `expected` (floats within tolerance), else what differs."""
    if isinstance(expected, (torch.Tensor,)) or type(expected).__module__ == "numpy":
        return _tensor_disagreement(got, expected, where)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{where} is {safe_repr(got, 80)}, not a sequence of {len(expected)} like the reference's"
        for i, (a, b) in enumerate(zip(got, expected)):
            problem = disagreement(a, b, f"{where}[{i}]")
            if problem:
                return problem
        return ""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where} has keys {safe_repr(sorted(map(str, got)) if isinstance(got, dict) else got, 80)}"
        for key in expected:
            problem = disagreement(got[key], expected[key], f"{where}[{key!r}]")
            if problem:
                return problem
        return ""
    if isinstance(expected, float) and not isinstance(expected, bool):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"{where} is {safe_repr(got, 80)}, not a number"
        return "" if _numbers_close(float(got), expected) else f"{where} is {got:.6g}, the reference's {expected:.6g}"
    if got != expected or type(got) is not type(expected) and not isinstance(expected, int):
        return f"{where} is {safe_repr(got, 80)}, the reference's {safe_repr(expected, 80)}"
    return ""


def _tensor_disagreement(got, expected, where):
    try:
        a, b = torch.as_tensor(got), torch.as_tensor(expected)
    except (TypeError, ValueError, RuntimeError):
        return f"{where} is {safe_repr(got, 80)}, not a tensor"
    if a.shape != b.shape:
        return f"{where} has shape {tuple(a.shape)}, the reference's {tuple(b.shape)}"
    if a.is_complex() or b.is_complex():
        a, b = torch.view_as_real(a.to(torch.complex128)), torch.view_as_real(b.to(torch.complex128))
    a, b = a.double(), b.double()
    same_inf = (a == b) | (a.isnan() & b.isnan())
    close = (a - b).abs() <= 1e-4 + 1e-3 * b.abs()
    if bool((same_inf | close).all()):
        return ""
    index = tuple(int(i) for i in torch.nonzero(~(same_inf | close))[0])
    return f"{where}{list(index) if index else ''} is {a[index].item():.6g}, the reference's {b[index].item():.6g}"


def _numbers_close(a, b):
    if a == b or (a != a and b != b):
        return True
    return abs(a - b) <= 1e-4 + 1e-3 * abs(b)


def vary(value, g, ints=True):
    """A twin of `value`: floats scaled by 1 - u (0 <= u < 0.05), ints outside {-1, 0, 1} moved
    away from 0 by 1 or 2, text given a word; bools, None, names and the structure kept."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return value * (1 - 0.05 * float(torch.rand((), generator=g)))
    if isinstance(value, int):
        return value if -1 <= value <= 1 or not ints else value + (1 if value > 0 else -1) * checking.randint(g, 1, 3)
    if isinstance(value, str):  # text, not a name (reduction="sum", method="calibrated")
        return f"{value} {_WORDS[checking.randint(g, 0, len(_WORDS))]}" if " " in value.strip() else value
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point:
            factor = 1 - 0.05 * torch.rand(value.shape, generator=g, dtype=torch.float64)
            return (value.double() * factor).to(value.dtype)
        return value
    if type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
        factor = 1 - 0.05 * torch.rand(value.shape, generator=g, dtype=torch.float64).numpy()
        return (value * factor).astype(value.dtype)
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(vary(v, g, ints) for v in value)
    if type(value) is list:
        return [vary(v, g, ints) for v in value]
    if type(value) is dict:
        return {k: vary(v, g, ints) for k, v in value.items()}
    return value


def _args_text(args, kwargs):
    parts = [safe_repr(a, 60) for a in args] + [f"{k}={safe_repr(v, 60)}" for k, v in kwargs.items()]
    return ", ".join(parts)[:240]


def _stable_hash(text):
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:6], "little")
