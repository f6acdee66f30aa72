"""Learner-side helpers for the llama checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data: numbers, tensors, and lists/dicts of them. The checks call
them as `helpers.name(*args)`. Nothing here decides pass or fail; the checks do.
"""
import torch


def generate_report(module, cfg, state_dict, prompt, max_new_tokens):
    """Run the learner's generate on Transformer(ModelArgs(**cfg)) with the given weights.

    Returns the tokens generate returned, the calls each layer's attention received, as
    [positions, start_pos], and the token ids each call embedded ("fed"), all recorded by forward
    pre-hooks: counting the work of every step instead of timing it. The check verifies the
    tokens and the ids fed against greedy decoding's answer, which it knows, so a report made up
    without running generate does not pass.
    """
    model = module.Transformer(module.ModelArgs(**cfg))
    model.load_state_dict(state_dict)
    model.eval()
    prompt = torch.as_tensor(prompt, dtype=torch.long)
    calls = [[] for _ in model.layers]
    fed = []

    def recorder(i):
        def hook(attention, args, kwargs):
            x = args[0] if args else kwargs.get("x")
            start_pos = args[1] if len(args) > 1 else kwargs.get("start_pos")
            calls[i].append([int(x.shape[1]), int(start_pos)])

        return hook

    def embedded(embedding, args):
        fed.append(torch.as_tensor(args[0]).detach().clone())

    handles = [layer.attention.register_forward_pre_hook(recorder(i), with_kwargs=True)
               for i, layer in enumerate(model.layers)]
    embeddings = getattr(model, "tok_embeddings", None)
    if isinstance(embeddings, torch.nn.Module):
        handles.append(embeddings.register_forward_pre_hook(embedded))
    try:
        tokens = module.generate(model, prompt, max_new_tokens)
    finally:
        for handle in handles:
            handle.remove()
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.detach().clone()
    return {"tokens": tokens, "calls": calls, "fed": fed}
