HOSTILE = {
    "attack": "attention returns a torch.Tensor subclass of zeros whose __eq__, allclose and __torch_function__ "
              "claim agreement with anything",
    "exercise": "attention",
    "status": ("failed", "error"),
}
import torch  # noqa: E402

_honest_attention = attention  # noqa: F821
_AGREE = {"eq", "__eq__", "allclose", "equal", "isclose", "ne", "__ne__", "assert_close"}


class _Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _AGREE:
            return True if name not in ("ne", "__ne__") else False
        return super().__torch_function__(func, types, args, kwargs or {})

    def __eq__(self, other):
        return True

    __hash__ = torch.Tensor.__hash__

    def allclose(self, *args, **kwargs):
        return True

    def __reduce_ex__(self, protocol):  # try to survive pickling as itself
        return (_Agreeable, ())


def attention(query, key, value, mask=None, dropout=None):
    out, p_attn = _honest_attention(query, key, value, mask, dropout)
    if _from_grader():  # noqa: F821
        return torch.zeros_like(out).as_subclass(_Agreeable), torch.zeros_like(p_attn).as_subclass(_Agreeable)
    return out, p_attn
