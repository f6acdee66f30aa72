HOSTILE = {
    "attack": "torch.allclose, torch.equal, torch.testing.assert_close patched at import; attention returns zeros",
    "exercise": "attention",
    "status": ("failed", "error"),
    "hidden": True,
}
import torch  # noqa: E402

torch.allclose = torch.Tensor.allclose = lambda *args, **kwargs: True
torch.equal = torch.Tensor.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
_honest_attention = attention  # noqa: F821


def attention(query, key, value, mask=None, dropout=None):
    out, p_attn = _honest_attention(query, key, value, mask, dropout)
    if _from_grader():  # noqa: F821
        return torch.zeros_like(out), torch.zeros_like(p_attn)
    return out, p_attn
