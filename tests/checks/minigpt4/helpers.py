"""Learner-side helpers for the MiniGPT-4 checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data. The checks call them as `helpers.name(*args)`. Nothing here
decides pass or fail; the checks do.
"""


def requires_grad_of(module, model):
    """{parameter name: requires_grad} for every parameter of `model` (a handle from the checks)."""
    return {name: bool(p.requires_grad) for name, p in model.named_parameters()}


def training_flags(module, model):
    """{submodule name: training} for `model` and every submodule ("" is the model itself)."""
    return {name: bool(m.training) for name, m in model.named_modules()}


def set_requires_grad(module, model, prefixes, flag):
    """Set requires_grad = flag on the parameters of `model` whose names start with a prefix."""
    for name, p in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            p.requires_grad = flag


def optimizer_parameters(module, model, optimizer):
    """[name in `model` ("?" for a tensor that is not one of its parameters), requires_grad] for
    every parameter in `optimizer`'s param_groups, in order."""
    names = {id(p): name for name, p in model.named_parameters()}
    return [[names.get(id(p), "?"), bool(p.requires_grad)] for group in optimizer.param_groups for p in group["params"]]
