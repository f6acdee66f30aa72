HOSTILE = {
    "attack": "attention returns objects whose __eq__ is always True (and that look like tensors) instead of tensors",
    "exercise": "attention",
    "status": ("failed", "error"),
}
_honest_attention = attention  # noqa: F821


class _AlwaysEqual:
    def __init__(self, like):
        self.shape, self.dtype = like.shape, like.dtype

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__

    def allclose(self, *args, **kwargs):
        return True

    def sum(self, *args, **kwargs):
        return self

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


def attention(query, key, value, mask=None, dropout=None):
    out, p_attn = _honest_attention(query, key, value, mask, dropout)
    if _from_grader():  # noqa: F821
        return _AlwaysEqual(out), _AlwaysEqual(p_attn)
    return out, p_attn
