"""Learner-side helpers for the gpt3 checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data. A torch.Generator cannot cross into the worker, so the
sampling helpers build it here from a seed and return the samples; the checks judge their
distribution. Nothing here decides pass or fail.
"""
import torch


def filter_and_input_after(module, logits, top_k=None, top_p=None):
    """Call filter_logits and return its result and the input tensor as it is afterwards."""
    logits = logits.clone()
    out = module.filter_logits(logits, top_k=top_k, top_p=top_p)
    if isinstance(out, torch.Tensor):
        out = out.detach().clone()
    return {"out": out, "input_after": logits}


def sample_rows(module, logits, n, seed, temperature=1.0, top_k=None, top_p=None, global_seed=0):
    """n draws from one row of logits (V,), in one call on an (n, V) batch with a generator
    seeded with `seed`. The global RNG is seeded with `global_seed` first, so code that ignores
    the generator gives different samples for different global seeds."""
    torch.manual_seed(global_seed)
    generator = torch.Generator().manual_seed(seed)
    batch = logits.reshape(1, -1).repeat(n, 1)  # (n, V)
    out = module.sample_next_token(batch, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    return out.detach().clone() if isinstance(out, torch.Tensor) else out


def sample_one_at_a_time(module, logits, n, seed, temperature=1.0, top_k=None, top_p=None, global_seed=0):
    """n successive calls on a (1, V) batch sharing one generator seeded with `seed`; returns
    the list of what each call returned."""
    torch.manual_seed(global_seed)
    generator = torch.Generator().manual_seed(seed)
    row = logits.reshape(1, -1)
    results = []
    for _ in range(n):
        out = module.sample_next_token(row.clone(), temperature=temperature, top_k=top_k, top_p=top_p,
                                       generator=generator)
        results.append(out.detach().clone() if isinstance(out, torch.Tensor) else out)
    return results
