"""Learner-side helpers for the survey checks: they run next to your module and return data.

Nothing here decides pass or fail; the checks do.
"""


def masked_lm_and_tokens_after(module, tokens, mask_positions, mask_id):
    """Call masked_lm_labels on a fresh list and return the result and that list afterwards."""
    tokens = list(tokens)
    result = module.masked_lm_labels(tokens, list(mask_positions), mask_id)
    return {"result": result, "tokens_after": tokens}
