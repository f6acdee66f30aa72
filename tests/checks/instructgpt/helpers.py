"""Learner-side helpers for the instructgpt checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data. Nothing here decides pass or fail: the checks score the
returned weights themselves.
"""

_TRAINED = {}  # (id(module), steps, seed) -> (module, state_dict)


def reward_model_weights(module, steps, seed):
    """Train with the learner's train_reward_model once per (steps, seed); return its state_dict
    as plain tensors."""
    key = (id(module), steps, seed)
    hit = _TRAINED.get(key)
    if hit is None or hit[0] is not module:
        model = module.train_reward_model(steps=steps, seed=seed)
        state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        hit = _TRAINED[key] = (module, state)
    return hit[1]
