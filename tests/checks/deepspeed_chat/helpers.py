"""Learner-side helpers for the DeepSpeed-Chat checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data or handles. The checks call them as `helpers.name(*args)`.
Nothing here decides pass or fail; the checks do.
"""
from torch import nn


def twin_models(module, sizes):
    """Two models of the same architecture (an actor and its EMA copy): Linear layers of the
    given sizes with a Tanh between them. Returned as handles; the checks set their weights
    with load_state_dict and read them back with state_dict."""
    def build():
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(nn.Tanh())
            layers.append(nn.Linear(n_in, n_out))
        return nn.Sequential(*layers)

    return build(), build()


def advantages_graph(module, values, rewards, start):
    """Runs get_advantages_and_returns on `values` that require a gradient (as a critic's output
    does) and reports whether the advantages came back attached to a graph. Tensors lose their
    graph on the way back from the worker, so this is asked here."""
    values = values.clone().requires_grad_(True)
    advantages, _ = module.get_advantages_and_returns(values, rewards, start)
    return {"requires_grad": bool(advantages.requires_grad), "has_grad_fn": advantages.grad_fn is not None}
