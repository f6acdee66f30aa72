"""Visible checks at grade time: inputs drawn from the submission's seed, and twin calls.

The whole-course attack (a replay of the release's recordings) is tests/test_replay_attack.py;
these are the pieces, fast: the salt of `grader.checking.generator`, and `twins.verify`
against a lookup that knows the check's inputs.
"""

import types

import pytest
import torch

from grader import checking
from grader.instructor import twins


@pytest.fixture
def salted():
    checking.draw_inputs_from(12345)
    yield
    checking.draw_inputs_from(None)


def test_without_a_salt_inputs_are_the_recorded_ones():
    assert checking.input_seed(7) == 7
    assert torch.equal(
        torch.randn(3, generator=checking.generator(7)), torch.randn(3, generator=torch.Generator().manual_seed(7))
    )


def test_with_a_salt_inputs_change_and_stay_reproducible(salted):
    recorded = torch.randn(3, generator=torch.Generator().manual_seed(7))
    drawn = torch.randn(3, generator=checking.generator(7))
    assert not torch.equal(drawn, recorded)
    assert torch.equal(drawn, torch.randn(3, generator=checking.generator(7)))
    assert checking.numpy_rng(7).random() == checking.numpy_rng(7).random()
    checking.draw_inputs_from(54321)
    assert not torch.equal(drawn, torch.randn(3, generator=checking.generator(7)))


def _module(**functions):
    return types.SimpleNamespace(**functions)


def _solution():
    def rate(step, size, factor=1.0):
        return factor * size**-0.5 * step**-0.5

    def words(text):
        return len(text.split())

    module = types.ModuleType("solution")
    module.rate, module.words = rate, words
    return module


def _lookup():
    """Answers exactly the calls the check makes, and nothing else."""
    table = {(100, 512, 2.0): 2.0 * 512**-0.5 * 100**-0.5}

    def rate(step, size, factor=1.0):
        return table[(step, size, factor)]

    return _module(rate=rate, words=lambda text: {"a b c": 3}[text])


def _run_check(impl, solution, call):
    calls = []
    watched = twins.Watched(impl, solution, calls)
    call(watched)
    twins.verify(impl, None, solution, calls, "test_x.py::test_y")


def test_a_lookup_of_the_checks_inputs_fails_its_twin(salted):
    solution = _solution()
    with pytest.raises(checking.CheckFailed, match="varied at grade time"):
        _run_check(_lookup(), solution, lambda m: m.rate(100, 512, factor=2.0))
    with pytest.raises(checking.CheckFailed, match="varied at grade time"):
        _run_check(_lookup(), solution, lambda m: m.words("a b c"))


def test_correct_code_passes_its_twins(salted):
    solution = _solution()
    other = _module(rate=lambda step, size, factor=1.0: factor / (size * step) ** 0.5, words=lambda t: len(t.split()))
    _run_check(other, solution, lambda m: (m.rate(100, 512, factor=2.0), m.words("a b c")))


def test_twins_of_calls_the_solution_rejects_or_of_names_are_not_made(salted):
    def pick(values, method):
        if method not in ("max", "min"):
            raise ValueError(method)
        return max(values) if method == "max" else min(values)

    solution = types.ModuleType("solution")
    solution.pick = pick
    # the lookup answers only [0, 1] (ints -1..1 are never varied) and "max" (a name, kept): nothing to twin
    _run_check(_module(pick=lambda values, method: 1), solution, lambda m: m.pick([0, 1], "max"))


def test_vary_keeps_zeros_signs_range_and_structure():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([0.0, 0.5, -2.0, float("-inf"), 1.0])
    twin = twins.vary((x, {"p": 1.0, "flag": True, "n": 0, "mode": "sum"}), g)
    assert twin[0][0] == 0 and twin[0][3] == float("-inf") and bool((twin[0][1:3].sign() == x[1:3].sign()).all())
    assert 0.94 < twin[1]["p"] <= 1.0
    assert twin[1]["flag"] is True and twin[1]["n"] == 0 and twin[1]["mode"] == "sum"


def test_a_function_that_rejects_ints_moved_apart_from_its_tensors_is_judged_on_its_floats(salted):
    def head(x, n):
        return x[:n].sum()

    def strict_head(x, n):
        if n > x.shape[0]:
            raise ValueError("n is larger than the rows of x")
        return x[:n].sum()

    solution = types.ModuleType("solution")
    solution.head = head
    x = torch.arange(12.0).reshape(4, 3) + 1
    _run_check(_module(head=strict_head), solution, lambda m: m.head(x, 4))
    table = {4: x.sum()}  # a lookup still fails the float-only twin
    with pytest.raises(checking.CheckFailed, match="varied at grade time"):
        _run_check(_module(head=lambda x, n: table[n] if n in table else 1 / 0), solution, lambda m: m.head(x, 4))
