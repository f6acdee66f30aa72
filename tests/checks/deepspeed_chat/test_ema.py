"""Checks for moving_average, the EMA of the actor: ema = beta * ema + (1 - beta) * param.

A helper builds two small models of the same architecture in the worker; the checks give them
weights with load_state_dict, call moving_average, read both back with state_dict and compare
with the formula computed here.
"""
import pytest
import torch

from grader.checking import expect_close, fail

pytestmark = pytest.mark.exercise("moving_average")


def _weights(model, g):
    state = {name: torch.randn(t.shape, generator=g) for name, t in sorted(model.state_dict().items())}
    model.load_state_dict(state)
    return state


def _clone(state):
    return {name: t.detach().clone() for name, t in state.items()}


def _expect_ema(impl, helpers, sizes, beta, seed, what):
    g = torch.Generator().manual_seed(seed)
    model, model_ema = helpers.twin_models(sizes)
    param, ema = _weights(model, g), _weights(model_ema, g)
    if beta is None:
        impl.moving_average(model, model_ema)
        beta = 0.992
    else:
        impl.moving_average(model, model_ema, beta=beta)
    got_param, got_ema = _clone(model.state_dict()), _clone(model_ema.state_dict())
    changed = [name for name in param if not torch.equal(got_param[name], param[name])]
    if changed:
        fail(f"{what}: the model's own weights changed ({changed[0]}): only model_ema is updated; "
             "`model` is read, never written.")
    if all(torch.equal(got_ema[name], ema[name]) for name in ema):
        fail(f"{what}: model_ema did not change: write the average into model_ema's parameters in place, "
             "e.g. param_ema.copy_(...), under torch.no_grad().")
    for name in sorted(ema):
        expected = beta * ema[name].double() + (1 - beta) * param[name].double()
        expect_close(got_ema[name], expected, f"{what}: model_ema's {name}", atol=1e-6, suspects={
            f"swapped the weights: the EMA keeps beta = {beta} of itself and takes {1 - beta:.3g} of the model":
                (1 - beta) * ema[name].double() + beta * param[name].double(),
            "copied the model's weights into the EMA instead of averaging": param[name],
        }, hint=f"Expected ema = {beta} * ema + {1 - beta:.3g} * param, i.e. torch.lerp(param, ema, beta).")


def test_moving_average_default_beta(impl, helpers):
    _expect_ema(impl, helpers, [3, 4, 2], None, 0, "`moving_average(model, model_ema)` with the default beta 0.992")


def test_moving_average_given_beta(impl, helpers):
    _expect_ema(impl, helpers, [2, 3], 0.5, 1, "`moving_average(model, model_ema, beta=0.5)`")


@pytest.mark.hidden
def test_moving_average_random(impl, helpers, seed):
    g = torch.Generator().manual_seed(seed)
    sizes = [int(torch.randint(1, 7, (), generator=g)) for _ in range(int(torch.randint(2, 5, (), generator=g)))]
    beta = round(float(torch.rand((), generator=g)) * 0.9 + 0.05, 3)
    _expect_ema(impl, helpers, sizes, beta, seed + 1, f"`moving_average(model, model_ema, beta={beta})` "
                                                      f"for Linear layers {sizes}")
