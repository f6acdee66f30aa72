"""Learner-side helpers for the llama checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data: numbers, tensors, and lists/dicts of them. The checks call
them as `helpers.name(*args)`. Nothing here decides pass or fail; the checks do.
"""
import torch


def generate_report(module, cfg, state_dict, prompt, max_new_tokens):
    """Run the learner's generate on Transformer(ModelArgs(**cfg)) with the given weights.

    Returns the tokens and the calls each layer's attention received, as [positions, start_pos]
    (recorded by forward pre-hooks: counting the work of every step instead of timing it).
    """
    model = module.Transformer(module.ModelArgs(**cfg))
    model.load_state_dict(state_dict)
    model.eval()
    prompt = torch.as_tensor(prompt, dtype=torch.long)
    calls = [[] for _ in model.layers]

    def recorder(i):
        def hook(attention, args, kwargs):
            x = args[0] if args else kwargs.get("x")
            start_pos = args[1] if len(args) > 1 else kwargs.get("start_pos")
            calls[i].append([int(x.shape[1]), int(start_pos)])

        return hook

    handles = [layer.attention.register_forward_pre_hook(recorder(i), with_kwargs=True)
               for i, layer in enumerate(model.layers)]
    try:
        tokens = module.generate(model, prompt, max_new_tokens)
    finally:
        for handle in handles:
            handle.remove()
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.detach().clone()
    return {"tokens": tokens, "calls": calls}
