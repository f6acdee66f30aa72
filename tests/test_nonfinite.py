"""NaN and inf are wrong answers (issue 21, item 4): every comparison and property helper of
grader.checking fails on them with a message that says so, unless the call says they are
expected; and the three property checks that NaN used to pass (attention's rows are
distributions, RoPE's scores depend on relative positions only, the fit of the paper's runs that
asked the learner's own huber_objective) fail on a submission that answers NaN."""

import math

import numpy
import pytest
import torch

from grader import course
from grader.checking import (
    CheckFailed,
    as_array,
    as_number,
    expect_close,
    expect_equal,
    expect_finite,
    expect_number,
    expect_shape,
)
from grader.judge import runner
from grader.results import FAILED, PASSED

ROOT = course.find_root(__file__)
COURSE = course.load(ROOT)
NAN, INF = float("nan"), float("inf")


def _fails(call):
    with pytest.raises(CheckFailed) as info:
        call()
    return str(info.value)


# --- the helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_expect_close_fails_on_a_non_finite_entry_and_says_where(bad):
    got = torch.tensor([[1.0, 2.0], [3.0, bad]])
    message = _fails(lambda: expect_close(got, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "`f(x)`"))
    assert f"contains {bad} at [1, 1]" in message
    assert "expected finite values" in message


def test_expect_close_fails_on_nan_even_where_nan_is_expected():
    got = torch.tensor([1.0, NAN])
    assert "contains nan" in _fails(lambda: expect_close(got, torch.tensor([1.0, NAN]), "`f(x)`"))


def test_expect_close_accepts_the_infinity_the_expected_answer_holds_and_no_other():
    expected = torch.tensor([0.5, -INF, 2.0])
    expect_close(torch.tensor([0.5, -INF, 2.0]), expected, "`filter(x)`")
    assert "contains inf at [1]" in _fails(lambda: expect_close(torch.tensor([0.5, INF, 2.0]), expected, "`filter(x)`"))
    message = _fails(lambda: expect_close(torch.tensor([0.5, -INF, 3.0]), expected, "`filter(x)`"))
    assert "differs at [2]: expected 2, got 3" in message


def test_expect_close_on_complex_tensors_sees_nan_in_the_imaginary_part():
    got = torch.tensor([1 + 1j, complex(1, NAN)])
    assert "contains nan at [1, 1]" in _fails(lambda: expect_close(got, torch.tensor([1 + 1j, 1 + 1j]), "`rope`"))


def test_expect_shape_fails_on_nan_unless_the_call_allows_it():
    got = torch.tensor([[0.2, NAN]])
    assert "contains nan at [0, 1]" in _fails(lambda: expect_shape(got, (1, 2), "p_attn"))
    assert expect_shape(got, (1, 2), "p_attn", finite=False).shape == (1, 2)
    assert expect_shape(torch.tensor([1, 2]), (2,), "ids").tolist() == [1, 2]  # integers are always finite


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_numbers_and_arrays_fail_on_non_finite_values(bad):
    assert "expected finite values" in _fails(lambda: as_number(torch.tensor(bad), "`loss`"))
    assert "expected finite values" in _fails(lambda: expect_number(bad, 1.0, "`rate(1)`"))
    assert "expected finite values" in _fails(lambda: as_array(numpy.array([1.0, bad]), (2,), "`objective`"))
    assert "expected finite values" in _fails(lambda: expect_equal(bad, 1.0, "`count`"))
    assert "expected finite values" in _fails(lambda: expect_equal(torch.tensor([bad]), torch.tensor([1.0]), "`x`"))
    assert math.isnan(as_number(NAN, "`x`", finite=False))
    assert as_array(numpy.array([bad]), (1,), "`x`", finite=False).shape == (1,)


def test_expect_number_accepts_an_infinity_that_is_expected():
    assert expect_number(INF, INF, "`limit`") == INF
    assert "expected finite values" in _fails(lambda: expect_number(-INF, INF, "`limit`"))


def test_expect_finite_looks_inside_lists_and_dicts():
    value = {"loss": 1.0, "grads": [torch.zeros(2), torch.tensor([0.0, INF])], "steps": 3}
    assert "contains inf at ['grads', 1, 1]" in _fails(lambda: expect_finite(value, "the report"))
    assert expect_finite({"a": [1.0, numpy.zeros(2)], "ok": True}, "the report")["ok"] is True
    assert "contains nan" in _fails(lambda: expect_finite(numpy.array([NAN]), "the array"))


# --- the three property checks NaN used to pass ----------------------------------------------


def _submission(tmp_path, topic, appended):
    """The solution of `topic` with `appended` (code that redefines one function) at the end."""
    path = tmp_path / "exercises" / f"{topic}.py"
    path.parent.mkdir()
    path.write_text(COURSE.solution_path(topic).read_text(encoding="utf-8") + "\n\n" + appended, encoding="utf-8")
    return path


def _check(path, topic, check_id):
    result = runner.run_topic(COURSE, topic, path, only=[check_id], isolation="none")
    return next(c for c in result.checks if c.id == check_id)


NAN_P_ATTN = """
_honest_attention = attention


def attention(query, key, value, mask=None, dropout=None):
    out, p_attn = _honest_attention(query, key, value, mask, dropout)
    return out, torch.full_like(p_attn, float("nan"))
"""

NAN_ROPE = """
def apply_rotary_emb(xq, xk, freqs_cis):
    return torch.full_like(xq, float("nan")), torch.full_like(xk, float("nan"))
"""

# The paper's published constants (a fit that stopped before the minimum on the digitised runs)
# and a huber_objective that calls every fit perfect-or-unknowable.
NAN_OBJECTIVE = """
def huber_objective(theta, N, D, L, delta=1e-3):
    theta = torch.as_tensor(theta, dtype=torch.float64)
    return torch.full(theta.shape[:-1], float("nan"), dtype=torch.float64)


def fit_parametric_loss(N, D, L, delta=1e-3):
    return {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
"""

CASES = [
    ("attention", "test_attention.py::test_p_attn_rows_are_distributions", NAN_P_ATTN, "contains nan"),
    ("llama", "test_layers.py::test_rotary_scores_depend_on_relative_position_only", NAN_ROPE, "contains nan"),
    ("scaling", "test_fitting.py::test_fit_on_the_papers_runs", NAN_OBJECTIVE, "the optimiser stopped"),
]


@pytest.mark.parametrize("topic, check_id, appended, phrase", CASES, ids=[c[0] for c in CASES])
def test_a_nan_answer_fails_the_property_check(tmp_path, topic, check_id, appended, phrase):
    check = _check(_submission(tmp_path, topic, appended), topic, check_id)
    assert check.status == FAILED, check
    assert phrase in check.message
    assert check.score == 0 < check.max_score


def test_the_solution_passes_the_same_checks(tmp_path):
    """The control: the cases above fail because of the NaN, not because the checks broke."""
    for topic, check_id, _, _ in CASES:
        check = _check(COURSE.solution_path(topic), topic, check_id)
        assert check.status == PASSED, check
