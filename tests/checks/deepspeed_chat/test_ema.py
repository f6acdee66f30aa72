"""Checks for moving_average, the EMA of the actor: ema = beta * ema + (1 - beta) * param.

A helper builds two small models of the same architecture in the worker; the checks give them
weights with load_state_dict, call moving_average and read both back with state_dict. Visible
checks compare with the solution's recorded answer on twin models with the same weights.
"""
import pytest
import torch

from grader.checking import expect_close, fail

pytestmark = pytest.mark.exercise("moving_average")


def _state(sizes, g):
    """Weights for Linear layers of `sizes` with a Tanh between them (as helpers.twin_models builds)."""
    state = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        state[f"{2 * i}.weight"] = torch.randn(n_out, n_in, generator=g)
        state[f"{2 * i}.bias"] = torch.randn(n_out, generator=g)
    return state


def _recorded_twins(recorded, sizes):
    nn = recorded.torch.nn

    def build():
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [nn.Tanh(), nn.Linear(n_in, n_out)] if i else [nn.Linear(n_in, n_out)]
        return nn.Sequential(*layers)

    return build(), build()


def _average(module, twins, sizes, beta, seed):
    """Give the twins the weights of `seed`, call module.moving_average; (param, ema, model, model_ema)."""
    g = torch.Generator().manual_seed(seed)
    param, ema = _state(sizes, g), _state(sizes, g)
    model, model_ema = twins
    model.load_state_dict(param)
    model_ema.load_state_dict(ema)
    if beta is None:
        module.moving_average(model, model_ema)
    else:
        module.moving_average(model, model_ema, beta=beta)
    return param, ema, model, model_ema


def _expect_ema(impl, helpers, sizes, beta, seed, what, expected_ema):
    param, ema, model, model_ema = _average(impl, helpers.twin_models(sizes), sizes, beta, seed)
    got_param = {name: t.detach().clone() for name, t in model.state_dict().items()}
    got_ema = {name: t.detach().clone() for name, t in model_ema.state_dict().items()}
    changed = [name for name in param if not torch.equal(got_param[name], param[name])]
    if changed:
        fail(f"{what}: the model's own weights changed ({changed[0]}): only model_ema is updated; "
             "`model` is read, never written.")
    if all(torch.equal(got_ema[name], ema[name]) for name in ema):
        fail(f"{what}: model_ema did not change: write the average into model_ema's parameters in place, "
             "e.g. param_ema.copy_(...), under torch.no_grad().")
    shown = 0.992 if beta is None else beta
    for name in sorted(ema):
        expect_close(got_ema[name], expected_ema(name), f"{what}: model_ema's {name}", atol=1e-6,
                     hint=f"Expected ema = {shown} * ema + {1 - shown:.3g} * param, i.e. torch.lerp(param, ema, beta).")


def _recorded_ema(recorded, sizes, beta, seed):
    _, ema, _, model_ema = _average(recorded, _recorded_twins(recorded, sizes), sizes, beta, seed)
    after = model_ema.state_dict()
    answers = {name: after[name] for name in sorted(ema)}
    return answers.__getitem__


def test_moving_average_default_beta(impl, helpers, recorded):
    expected = _recorded_ema(recorded, [3, 4, 2], None, 0)
    _expect_ema(impl, helpers, [3, 4, 2], None, 0, "`moving_average(model, model_ema)` with the default beta 0.992",
                expected)


def test_moving_average_given_beta(impl, helpers, recorded):
    expected = _recorded_ema(recorded, [2, 3], 0.5, 1)
    _expect_ema(impl, helpers, [2, 3], 0.5, 1, "`moving_average(model, model_ema, beta=0.5)`", expected)


@pytest.mark.hidden
def test_moving_average_random(impl, helpers, ref, seed):
    g = torch.Generator().manual_seed(seed)
    sizes = [int(torch.randint(1, 7, (), generator=g)) for _ in range(int(torch.randint(2, 5, (), generator=g)))]
    beta = round(float(torch.rand((), generator=g)) * 0.9 + 0.05, 3)
    state_g = torch.Generator().manual_seed(seed + 1)
    param, ema = _state(sizes, state_g), _state(sizes, state_g)
    params = [torch.nn.Parameter(param[name].clone()) for name in sorted(param)]
    emas = [torch.nn.Parameter(ema[name].clone()) for name in sorted(ema)]
    ref.moving_average(_Holder(params), _Holder(emas), beta)
    expected = dict(zip(sorted(ema), (p.detach() for p in emas)))
    _expect_ema(impl, helpers, sizes, beta, seed + 1, f"`moving_average(model, model_ema, beta={beta})` "
                                                      f"for Linear layers {sizes}", expected.__getitem__)


class _Holder:
    """Just enough of a module for the reference: its parameters, in a fixed order."""

    def __init__(self, params):
        self._params = params

    def parameters(self):
        return iter(self._params)
