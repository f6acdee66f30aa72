HOSTILE = {
    "attack": "builtins.isinstance/len patched at import to vouch for a fake result; attention returns the fake",
    "exercise": "attention",
    "status": ("failed", "error"),
}
import builtins  # noqa: E402

_real_isinstance, _real_len = builtins.isinstance, builtins.len


class _Liar:
    """Claims to be anything, equal to anything, of any length and shape."""

    shape = property(lambda self: _AnyShape())
    dtype = property(lambda self: self)

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

    def __getattr__(self, name):
        return lambda *args, **kwargs: self

    def __bool__(self):
        return True


class _AnyShape(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


builtins.isinstance = lambda obj, cls: type(obj) is _Liar or _real_isinstance(obj, cls)
builtins.len = lambda obj: 2 if type(obj) is _Liar else _real_len(obj)
_honest_attention = attention  # noqa: F821


def attention(query, key, value, mask=None, dropout=None):
    if _from_grader():  # noqa: F821
        return _Liar(), _Liar()
    return _honest_attention(query, key, value, mask, dropout)
