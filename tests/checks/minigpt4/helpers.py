"""Learner-side helpers for the MiniGPT-4 checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data. The checks call them as `helpers.name(*args)`. Nothing here
decides pass or fail; the checks do.

This file runs in the same process as learner code, which can replace any function here: what a
helper returns is learner-controlled data. A check may verify it against what it computes
itself (the weights after a training step, recomputed in the grader), never take it as a verdict
(a requires_grad flag is the learner's word, not a fact).
"""
from torch import nn


def _probe():
    """A body to freeze, nested (a freeze must reach the submodules' parameters and modes), with
    a dropout that only eval mode turns off, and a head that stays trainable."""
    body = nn.Sequential(nn.Sequential(nn.Linear(4, 6)), nn.Dropout(0.5), nn.Tanh())
    return body, nn.Linear(6, 3)


def freeze_step(module, body_weights, head_weights, x, c, lr):
    """Build the probe with the check's weights, `freeze(body)` with the learner's freeze, then
    train the whole probe (body, then head) one SGD step on loss = sum(c * probe(x)).

    Returns {"output": probe(x), "body": the body's state_dict after the step, "head": the head's}.
    The check recomputes both: with a frozen body in eval mode the body
    keeps its weights, dropout passes x through, and only the head moves, by lr * its gradient.
    """
    import torch

    body, head = _probe()
    body.load_state_dict(body_weights)
    head.load_state_dict(head_weights)
    module.freeze(body)
    probe = nn.Sequential(body, head)  # no probe.train(): that would undo the body's eval mode
    optimizer = torch.optim.SGD([p for p in probe.parameters() if p.requires_grad], lr=lr)
    output = probe(x)
    try:
        (c * output).sum().backward()
    except RuntimeError as exc:  # e.g. nothing requires a gradient any more: data for the check
        return {"error": f"{type(exc).__name__}: {exc}"}
    optimizer.step()
    return {"output": output.detach().clone(), "body": _plain_state(body), "head": _plain_state(head)}


def _plain_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


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


def projector_gradient(module, model, image, instruction, answers):
    """Runs `model.prepare_inputs` and asks whether the inputs it builds reach back to
    llama_proj, the one trained layer: {"requires_grad", "projector_gets_gradient"}. Tensors
    lose their graph on the way back from the worker, so this is asked here."""
    model.zero_grad(set_to_none=True)
    inputs_embeds = model.prepare_inputs(image, instruction, answers)[0]
    if not inputs_embeds.requires_grad:
        return {"requires_grad": False, "projector_gets_gradient": False}
    inputs_embeds.float().sum().backward()
    grad = model.llama_proj.weight.grad
    return {"requires_grad": True, "projector_gets_gradient": grad is not None and bool(grad.abs().sum() > 0)}
