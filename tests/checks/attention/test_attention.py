"""Checks for scaled dot-product attention, the causal mask and multi-head attention.

Visible checks compare with torch's own operators (scaled_dot_product_attention,
nn.MultiheadAttention, nn.Transformer's causal mask), with small hand-worked values and with the
answers recorded from the reference solution (tests/checks/attention/recorded.json), which also
let a wrong answer be named after the known mistake it matches.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from grader.checking import expect_close, expect_equal, expect_finite, expect_shape, expect_tensor, fail
from grader.checking import generator as _gen


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
                 hint="Where the mask is False/0 the score must be pushed to a very large negative number (the annotated transformer uses -1e9) before the softmax, so that those keys get no weight.")
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


def _expect_mask(got, expected, what):
    got = expect_shape(got, expected.shape, what, hint="The mask has a leading batch dimension of 1: (1, size, size).")
    if got.dtype != torch.bool:
        fail(f"{what}: expected a bool tensor, got dtype {got.dtype}. Compare with 0 (`== 0`) to get True/False.")
    expect_equal(got, expected, f"{what} (rows are query positions i, columns key positions j; True where j <= i)")


@pytest.mark.exercise("subsequent_mask")
def test_subsequent_mask_size_4(impl, recorded):
    recorded.subsequent_mask(4)  # lets a wrong mask be named after the known mistake it matches
    T, F_ = True, False
    expected = torch.tensor([[[T, F_, F_, F_],
                              [T, T, F_, F_],
                              [T, T, T, F_],
                              [T, T, T, T]]])
    _expect_mask(impl.subsequent_mask(4), expected, "`subsequent_mask(4)`")
    # torch's own causal mask for nn.Transformer: 0 where attention is allowed, -inf where not
    allowed = torch.nn.Transformer.generate_square_subsequent_mask(9) == 0
    _expect_mask(impl.subsequent_mask(9), allowed.unsqueeze(0), "`subsequent_mask(9)` (compared with "
                 "nn.Transformer.generate_square_subsequent_mask(9) == 0)")


@pytest.mark.exercise("subsequent_mask")
@pytest.mark.hidden
def test_subsequent_mask_random_sizes(impl, ref, seed):
    g = _gen(seed)
    for size in (1, int(torch.randint(2, 40, (), generator=g))):
        _expect_mask(impl.subsequent_mask(size), ref.subsequent_mask(size), f"`subsequent_mask({size})`")


# --- multi_head_attention ------------------------------------------------------------------


def _random_linears(g, d_model):
    """A state dict for MultiHeadedAttention's four linears (q, k, v, output)."""
    sd = {}
    for i in range(4):
        sd[f"linears.{i}.weight"] = torch.randn(d_model, d_model, generator=g) / math.sqrt(d_model)
        sd[f"linears.{i}.bias"] = torch.randn(d_model, generator=g) * 0.1
    return sd


def _torch_mha(sd, h, d_model):
    """torch.nn.MultiheadAttention (float64) holding the same weights: q, k, v stacked in in_proj."""
    torch_mha = torch.nn.MultiheadAttention(d_model, h, batch_first=True).double()
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([sd[f"linears.{i}.weight"] for i in range(3)]))
        torch_mha.in_proj_bias.copy_(torch.cat([sd[f"linears.{i}.bias"] for i in range(3)]))
        torch_mha.out_proj.weight.copy_(sd["linears.3.weight"])
        torch_mha.out_proj.bias.copy_(sd["linears.3.bias"])
    return torch_mha


def _new_mha(module, h, d_model, sd):
    """MultiHeadedAttention(h, d_model) of `module` (the learner's or the recorded solution) holding `sd`."""
    mha = module.MultiHeadedAttention(h, d_model, dropout=0.0)
    mha.load_state_dict(sd)
    mha.eval()
    return mha


@pytest.mark.exercise("multi_head_attention")
@pytest.mark.points(2)
def test_mha_matches_torch_multihead_attention(impl, recorded):
    g = _gen(3)
    h, d_model, B, T_q, T_k = 4, 32, 2, 3, 5
    sd = _random_linears(g, d_model)
    query = torch.randn(B, T_q, d_model, generator=g)
    key = torch.randn(B, T_k, d_model, generator=g)
    value = torch.randn(B, T_k, d_model, generator=g)
    with torch.no_grad():
        expected, expected_attn = _torch_mha(sd, h, d_model)(query.double(), key.double(), value.double(),
                                                              need_weights=True, average_attn_weights=False)
    known = _new_mha(recorded, h, d_model, sd)  # its recorded answers name known mistakes
    known(query, key, value)
    _ = known.attn
    mha = _new_mha(impl, h, d_model, sd)
    out = mha(query, key, value)
    expect_close(out, expected, "`MultiHeadedAttention(4, 32)(query, key, value)` output "
                 "(compared with torch.nn.MultiheadAttention holding the same weights)")
    attn = mha.attn
    if attn is None:
        fail("`mha.attn` is still None after a forward pass: the module must keep the attention weights that attention() returns, in self.attn.")
    expect_close(attn, expected_attn, "`mha.attn` after a forward pass",
                 hint=f"It holds every head's weights, shape (B, h, T_q, T_k) = {(B, h, T_q, T_k)}.")


@pytest.mark.exercise("multi_head_attention")
def test_mha_padding_mask_for_every_head(impl, recorded):
    g = _gen(4)
    h, d_model, B, T = 4, 16, 4, 5
    sd = _random_linears(g, d_model)
    x = torch.randn(B, T, d_model, generator=g)
    lengths = torch.tensor([5, 4, 3, 2])
    mask = (torch.arange(T) < lengths[:, None]).unsqueeze(1)  # (B, 1, T): padding at the end
    with torch.no_grad():
        # attn_mask: True where attention is NOT allowed, one (T, T) mask per batch element and head
        blocked = (~mask).unsqueeze(1).expand(B, h, T, T).reshape(B * h, T, T)
        expected, _ = _torch_mha(sd, h, d_model)(x.double(), x.double(), x.double(), attn_mask=blocked)
    _new_mha(recorded, h, d_model, sd)(x, x, x, mask)
    mha = _new_mha(impl, h, d_model, sd)
    out = mha(x, x, x, mask)
    expect_close(out, expected, "`MultiHeadedAttention(4, 16)(x, x, x, mask)` output with a padding mask "
                 "of shape (B, 1, T) (compared with torch.nn.MultiheadAttention)",
                 hint="The same (B, 1, T_k) mask must hide the padded keys in every head: mask.unsqueeze(1).")
    attn = expect_finite(expect_tensor(mha.attn, "`mha.attn`"), "`mha.attn`")
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
    reference = _new_mha(ref, h, d_model, sd)
    cases = [("cross-attention, padding mask", (query, memory, memory, padding)),
             ("self-attention, causal mask", (query, query, query, causal))]
    for name, args in cases:
        what = f"`MultiHeadedAttention({h}, {d_model})`, {name}, B={B} T_q={T_q} T_k={args[1].size(1)}"
        with torch.no_grad():
            expected = reference(*args)
        expect_close(mha(*args), expected, f"{what}: output")
        expect_close(mha.attn, reference.attn, f"{what}: `mha.attn`")
