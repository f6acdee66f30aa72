"""Checks for scaled dot-product attention, the causal mask and multi-head attention.

Visible checks compare with torch's own operators (scaled_dot_product_attention,
nn.MultiheadAttention) and with small hand-worked values; hidden checks draw random shapes
from the run's seed and compare with the reference solution.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from grader.checking import expect_close, expect_shape, expect_tensor, fail


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _pair(result, what):
    """Split the (output, p_attn) pair that attention returns."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        fail(f"{what}: expected a pair (output, p_attn), got {got}. Return `p_attn @ value, p_attn`.")
    return result


# --- attention -----------------------------------------------------------------------------


@pytest.mark.exercise("attention")
@pytest.mark.points(2)
def test_output_matches_sdpa(impl, recorded):
    g = _gen(0)
    q = torch.randn(2, 3, 4, 8, generator=g)  # (B, h, T_q, d_k)
    k = torch.randn(2, 3, 6, 8, generator=g)  # (B, h, T_k, d_k)
    v = torch.randn(2, 3, 6, 5, generator=g)  # (B, h, T_k, d_v)
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    _, expected_p = recorded.attention(q, k, v)
    out, p_attn = _pair(impl.attention(q, k, v), "`attention(q, k, v)`")
    expect_close(out, expected, "`attention(q, k, v)` output (compared with torch's scaled_dot_product_attention)",
                 hint="Expected softmax(q @ k^T / sqrt(d_k)) @ v.")
    expect_close(p_attn, expected_p, "`attention(q, k, v)` p_attn",
                 hint="Return the attention weights softmax(q @ k^T / sqrt(d_k)) as the second value.")


@pytest.mark.exercise("attention")
def test_p_attn_rows_are_distributions(impl):
    g = _gen(1)
    q, k, v = torch.randn(1, 5, 4, generator=g), torch.randn(1, 7, 4, generator=g), torch.randn(1, 7, 3, generator=g)
    _, p_attn = _pair(impl.attention(q, k, v), "`attention(q, k, v)`")
    p_attn = expect_shape(p_attn, (1, 5, 7), "p_attn for 5 queries and 7 keys",
                          hint="p_attn has one row per query and one column per key: (..., T_q, T_k).")
    if (p_attn < 0).any():
        fail(f"p_attn has negative weights (smallest {p_attn.min().item():.4g}): the weights come out of a softmax.")
    sums = p_attn.double().sum(-1)
    worst = int((sums - 1).abs().argmax())
    if abs(sums[0, worst].item() - 1) > 1e-4:
        fail(
            f"rows of p_attn must sum to 1 (each query spreads one unit of attention over the keys), "
            f"but row {worst} sums to {sums[0, worst].item():.4g}: softmax over the wrong dimension? "
            "Normalise over the keys, the last dimension (dim=-1)."
        )


@pytest.mark.exercise("attention")
@pytest.mark.points(2)
def test_mask_blocks_keys(impl, recorded):
    g = _gen(2)
    q = torch.randn(2, 2, 5, 8, generator=g)
    k = torch.randn(2, 2, 5, 8, generator=g)
    v = torch.randn(2, 2, 5, 4, generator=g)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]]).view(2, 1, 1, 5)
    mask = causal & padding  # (2, 1, 5, 5): True where a query may look at a key
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
    _, expected_p = recorded.attention(q, k, v, mask=mask)
    out, p_attn = _pair(impl.attention(q, k, v, mask=mask), "`attention(q, k, v, mask=mask)`")
    expect_close(out, expected, "`attention(q, k, v, mask=mask)` output (compared with scaled_dot_product_attention)",
                 hint="Where the mask is False/0 the score becomes -1e9 before the softmax: scores.masked_fill(mask == 0, -1e9).")
    expect_close(p_attn, expected_p, "`attention(q, k, v, mask=mask)` p_attn")


@pytest.mark.exercise("attention")
@pytest.mark.hidden
def test_attention_random_shapes_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, h, T_q, T_k, d_k, d_v = (int(torch.randint(lo, hi, (), generator=g)) for lo, hi in
                                ((1, 4), (1, 5), (1, 9), (1, 9), (2, 17), (1, 9)))
    q = torch.randn(B, h, T_q, d_k, generator=g)
    k = torch.randn(B, h, T_k, d_k, generator=g)
    v = torch.randn(B, h, T_k, d_v, generator=g)
    mask = torch.rand(B, 1, T_q, T_k, generator=g) < 0.7
    mask[..., 0] = True  # every query sees at least one key
    mask = mask.int() if seed % 2 else mask  # masks may hold 1/0 as well as True/False
    for m in (None, mask):
        what = f"`attention(q, k, v{', mask=mask' if m is not None else ''})` with q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        want_out, want_p = ref.attention(q, k, v, mask=m)
        out, p_attn = _pair(impl.attention(q, k, v, mask=m), what)
        expect_close(out, want_out, f"{what}: output")
        expect_close(p_attn, want_p, f"{what}: p_attn")


# --- subsequent_mask -----------------------------------------------------------------------


def _mask_suspects(size):
    lower = torch.tril(torch.ones(1, size, size, dtype=torch.bool))
    return {
        "kept the future (the upper triangle) instead of the past: position i may see j <= i": lower.transpose(-2, -1),
        "hid the diagonal too (triu with diagonal=0): a position must see itself, use diagonal=1 for the future": torch.tril(
            torch.ones(1, size, size, dtype=torch.bool), diagonal=-1),
        "returned the future itself (triu(..., diagonal=1)); the mask is where that is 0": ~lower,
    }


def _expect_mask(got, expected, what):
    got = expect_shape(got, expected.shape, what, hint="The mask has a leading batch dimension of 1: (1, size, size).")
    if got.dtype != torch.bool:
        fail(f"{what}: expected a bool tensor, got dtype {got.dtype}. Compare with 0 (`== 0`) to get True/False.")
    if torch.equal(got, expected):
        return
    for label, value in _mask_suspects(expected.size(-1)).items():
        if torch.equal(got, value):
            fail(f"{what}: rows are query positions i, columns key positions j; expected True where j <= i. "
                 f"Your mask matches what you get if you {label}.")
    i, j = (got != expected).nonzero()[0].tolist()[1:]
    fail(f"{what}: at query {i}, key {j} expected {bool(expected[0, i, j])}, got {bool(got[0, i, j])} "
         "(True where key j <= query i).")


@pytest.mark.exercise("subsequent_mask")
def test_subsequent_mask_size_4(impl):
    T, F_ = True, False
    expected = torch.tensor([[[T, F_, F_, F_],
                              [T, T, F_, F_],
                              [T, T, T, F_],
                              [T, T, T, T]]])
    _expect_mask(impl.subsequent_mask(4), expected, "`subsequent_mask(4)`")


@pytest.mark.exercise("subsequent_mask")
@pytest.mark.hidden
def test_subsequent_mask_random_sizes(impl, seed):
    g = _gen(seed)
    for size in (1, int(torch.randint(2, 40, (), generator=g))):
        expected = torch.ones(size, size).tril().bool().unsqueeze(0)
        _expect_mask(impl.subsequent_mask(size), expected, f"`subsequent_mask({size})`")


# --- multi_head_attention ------------------------------------------------------------------


def _random_linears(g, d_model):
    """A state dict for MultiHeadedAttention's four linears (q, k, v, output)."""
    sd = {}
    for i in range(4):
        sd[f"linears.{i}.weight"] = torch.randn(d_model, d_model, generator=g) / math.sqrt(d_model)
        sd[f"linears.{i}.bias"] = torch.randn(d_model, generator=g) * 0.1
    return sd


def _mha_manual(sd, h, query, key, value, mask=None, *, split="ok", join="ok", scale="sqrt_dk",
                unsqueeze_mask=True, out_proj=True):
    """Multi-head attention written out in float64; the keywords reproduce known mistakes."""
    B, d_model = query.size(0), query.size(-1)
    d_k = d_model // h
    p = {name: t.double() for name, t in sd.items()}

    def lin(i, x):
        return x.double() @ p[f"linears.{i}.weight"].T + p[f"linears.{i}.bias"]

    def heads(x):
        if split == "view":
            return x.reshape(B, h, -1, d_k)
        return x.reshape(B, -1, h, d_k).transpose(1, 2)

    q, k, v = heads(lin(0, query)), heads(lin(1, key)), heads(lin(2, value))
    if mask is not None:
        mask = mask.unsqueeze(1) if unsqueeze_mask else mask
    scores = q @ k.transpose(-2, -1) / {"sqrt_dk": math.sqrt(d_k), "sqrt_dmodel": math.sqrt(d_model), "none": 1.0}[scale]
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    attn = scores.softmax(-1)
    x = attn @ v  # (B, h, T_q, d_k)
    x = x.reshape(B, -1, h * d_k) if join == "view" else x.transpose(1, 2).reshape(B, -1, h * d_k)
    return (lin(3, x) if out_proj else x), attn


def _mha_suspects(sd, h, q, k, v, mask=None):
    variants = {
        "split the heads with view(B, h, T, d_k) and no transpose; view(B, T, h, d_k).transpose(1, 2) "
        "keeps each position's features together": dict(split="view"),
        "split the heads with a view but no transpose, and joined them again the same way; "
        "view(B, T, h, d_k).transpose(1, 2) keeps each position's features together": dict(split="view", join="view"),
        "joined the heads with view(B, -1, h * d_k) without transposing back first: "
        "transpose(1, 2).contiguous().view(B, -1, h * d_k)": dict(join="view"),
        "forgot to divide the scores by sqrt(d_k)": dict(scale="none"),
        "divided the scores by sqrt(d_model) instead of sqrt(d_k) = sqrt(d_model / h)": dict(scale="sqrt_dmodel"),
        "forgot the output projection linears[-1] after joining the heads": dict(out_proj=False),
    }
    if mask is not None:
        variants["did not give the mask a head dimension (mask.unsqueeze(1)), so head j of every batch "
                 "element used the mask of batch element j"] = dict(unsqueeze_mask=False)
    found = {}
    for label, kw in variants.items():
        try:
            found[label] = _mha_manual(sd, h, q, k, v, mask, **kw)
        except RuntimeError:  # this mistake would not even run on these shapes
            pass
    return found


def _torch_mha(sd, h, d_model):
    """torch.nn.MultiheadAttention (float64) holding the same weights: q, k, v stacked in in_proj."""
    torch_mha = torch.nn.MultiheadAttention(d_model, h, batch_first=True).double()
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([sd[f"linears.{i}.weight"] for i in range(3)]))
        torch_mha.in_proj_bias.copy_(torch.cat([sd[f"linears.{i}.bias"] for i in range(3)]))
        torch_mha.out_proj.weight.copy_(sd["linears.3.weight"])
        torch_mha.out_proj.bias.copy_(sd["linears.3.bias"])
    return torch_mha


def _new_mha(impl, h, d_model, sd):
    mha = impl.MultiHeadedAttention(h, d_model, dropout=0.0)
    mha.load_state_dict(sd)
    mha.eval()
    return mha


@pytest.mark.exercise("multi_head_attention")
@pytest.mark.points(2)
def test_mha_matches_torch_multihead_attention(impl):
    g = _gen(3)
    h, d_model, B, T_q, T_k = 4, 32, 2, 3, 5
    sd = _random_linears(g, d_model)
    query = torch.randn(B, T_q, d_model, generator=g)
    key = torch.randn(B, T_k, d_model, generator=g)
    value = torch.randn(B, T_k, d_model, generator=g)
    torch_mha = _torch_mha(sd, h, d_model)
    with torch.no_grad():
        expected, expected_attn = torch_mha(query.double(), key.double(), value.double(),
                                            need_weights=True, average_attn_weights=False)
    suspects = _mha_suspects(sd, h, query, key, value)
    mha = _new_mha(impl, h, d_model, sd)
    out = mha(query, key, value)
    expect_close(out, expected, "`MultiHeadedAttention(4, 32)(query, key, value)` output "
                 "(compared with torch.nn.MultiheadAttention holding the same weights)",
                 suspects={label: o for label, (o, _) in suspects.items()})
    attn = mha.attn
    if attn is None:
        fail("`mha.attn` is still None after a forward pass: keep the attention weights, `x, self.attn = attention(...)`.")
    expect_close(attn, expected_attn, "`mha.attn` after a forward pass", suspects={label: a for label, (_, a) in suspects.items()},
                 hint=f"It holds every head's weights, shape (B, h, T_q, T_k) = {(B, h, T_q, T_k)}.")


@pytest.mark.exercise("multi_head_attention")
def test_mha_padding_mask_for_every_head(impl):
    g = _gen(4)
    h, d_model, B, T = 4, 16, 4, 5
    sd = _random_linears(g, d_model)
    x = torch.randn(B, T, d_model, generator=g)
    lengths = torch.tensor([5, 4, 3, 2])
    mask = (torch.arange(T) < lengths[:, None]).unsqueeze(1)  # (B, 1, T): padding at the end
    torch_mha = _torch_mha(sd, h, d_model)
    with torch.no_grad():
        # attn_mask: True where attention is NOT allowed, one (T, T) mask per batch element and head
        blocked = (~mask).unsqueeze(1).expand(B, h, T, T).reshape(B * h, T, T)
        expected, _ = torch_mha(x.double(), x.double(), x.double(), attn_mask=blocked)
    suspects = _mha_suspects(sd, h, x, x, x, mask)
    mha = _new_mha(impl, h, d_model, sd)
    out = mha(x, x, x, mask)
    expect_close(out, expected, "`MultiHeadedAttention(4, 16)(x, x, x, mask)` output with a padding mask "
                 "of shape (B, 1, T) (compared with torch.nn.MultiheadAttention)",
                 suspects={label: o for label, (o, _) in suspects.items()},
                 hint="The same (B, 1, T_k) mask must hide the padded keys in every head: mask.unsqueeze(1).")
    attn = expect_tensor(mha.attn, "`mha.attn`")
    hidden = ~mask.unsqueeze(1).expand(B, h, T, T)
    if attn.shape == hidden.shape and attn[hidden].abs().max() > 1e-6:
        b, head, i, j = (hidden & (attn.abs() > 1e-6)).nonzero()[0].tolist()
        fail(f"`mha.attn`: batch {b}, head {head}, query {i} gives weight {attn[b, head, i, j].item():.3g} to key {j}, "
             "which is padding; every head must use the mask (mask.unsqueeze(1)).")


@pytest.mark.exercise("multi_head_attention")
@pytest.mark.hidden
def test_mha_random_against_reference(impl, ref, seed):
    g = _gen(seed)
    h, d_k, B, T_q, T_k = (int(torch.randint(lo, hi, (), generator=g)) for lo, hi in ((1, 5), (1, 9), (1, 4), (1, 7), (1, 7)))
    d_model = h * d_k
    sd = _random_linears(g, d_model)
    query = torch.randn(B, T_q, d_model, generator=g)
    memory = torch.randn(B, T_k, d_model, generator=g)
    lengths = torch.randint(1, T_k + 1, (B,), generator=g)
    padding = (torch.arange(T_k) < lengths[:, None]).unsqueeze(1)  # (B, 1, T_k)
    causal = torch.ones(B, T_q, T_q).tril().bool()  # (B, T_q, T_q) for self-attention
    mha = _new_mha(impl, h, d_model, sd)
    reference = ref.MultiHeadedAttention(h, d_model, dropout=0.0)
    reference.load_state_dict(sd)
    reference.eval()
    cases = [("cross-attention, padding mask", (query, memory, memory, padding)),
             ("self-attention, causal mask", (query, query, query, causal))]
    for name, args in cases:
        what = f"`MultiHeadedAttention({h}, {d_model})`, {name}, B={B} T_q={T_q} T_k={args[1].size(1)}"
        with torch.no_grad():
            expected = reference(*args)
        suspects = _mha_suspects(sd, h, *args)
        out = mha(*args)
        expect_close(out, expected, f"{what}: output", suspects={label: o for label, (o, _) in suspects.items()})
        expect_close(mha.attn, reference.attn, f"{what}: `mha.attn`",
                     suspects={label: a for label, (_, a) in suspects.items()})
