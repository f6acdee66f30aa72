"""The reference solution of the llama topic, held against independent references: torch's own
RMSNorm and scaled_dot_product_attention, rotations written as 2x2 matrices, Hugging Face's
`rotate_half` convention (equal to Meta's only after permuting the q/k projection rows), the
paper's Tables 1 and 2, and the widths of the released checkpoints. These are the project's own
tests; they run the solution in this process."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "llama.py", "llama_solution")

TINY = dict(dim=32, n_layers=2, n_heads=4, vocab_size=50, multiple_of=16, max_batch_size=4, max_seq_len=32)


def close(a, b, atol=1e-5, rtol=1e-4):
    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"largest difference {(a - b).abs().max().item():.3g}"


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = sol.Transformer(sol.ModelArgs(**{**TINY, **overrides}))
    with torch.no_grad():  # norm weights away from 1, so that forgetting one would show
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
    return model.eval()


# --- ModelArgs and defaults ------------------------------------------------------------------


def test_model_args_defaults_are_metas():
    args = sol.ModelArgs()
    assert (args.dim, args.n_layers, args.n_heads, args.vocab_size) == (512, 8, 8, -1)
    assert (args.multiple_of, args.norm_eps, args.max_batch_size, args.max_seq_len) == (256, 1e-5, 32, 2048)
    assert args.ffn_dim_multiplier is None
    assert (
        sol.RMSNorm(4).eps == 1e-6
    )  # RMSNorm's own default; the model passes norm_eps (1e-5 in code, 1e-6 in params.json)


# --- RMSNorm ---------------------------------------------------------------------------------


def test_rms_norm_matches_torch():
    torch.manual_seed(1)
    norm = sol.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(16))
    x = torch.randn(3, 5, 16) * 4
    close(norm(x), F.rms_norm(x, (16,), norm.weight, eps=1e-5), atol=1e-6)
    torch_norm = nn.RMSNorm(16, eps=1e-5)
    torch_norm.load_state_dict(norm.state_dict())
    close(norm(x), torch_norm(x), atol=1e-6)
    assert [name for name, _ in norm.named_parameters()] == ["weight"]  # no bias
    assert not torch.allclose(norm(x), F.layer_norm(x, (16,), norm.weight, eps=1e-5), atol=1e-3)  # no centring


def test_rms_norm_hand_worked():
    # mean of squares of [1, 2, 3, 4] is 7.5; + eps 0.5 = 8; rsqrt(8) = 0.3535534
    out = sol.RMSNorm(4, eps=0.5)(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    close(out, torch.tensor([[1.0, 2.0, 3.0, 4.0]]) / math.sqrt(8), atol=1e-7)


def test_rms_norm_float16_computes_in_float32_and_casts_back():
    x = torch.tensor([[300.0, -200.0, 250.0, 180.0]]).half()  # squares overflow float16 (max 65504)
    assert not torch.isfinite(x.pow(2)).all()  # the reason for the float32 detour
    norm = sol.RMSNorm(4).half()
    out = norm(x)
    assert out.dtype == torch.float16
    x64 = x.double()
    close(out, x64 / x64.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt(), atol=2e-3, rtol=2e-3)
    assert sol.RMSNorm(4)(x).dtype == torch.float32  # float32 weight: float16 * float32 promotes, as in Meta's code


# --- rotary embeddings -------------------------------------------------------------------------


def test_freqs_cis_formula():
    dim, end = 8, 6
    freqs = sol.precompute_freqs_cis(dim, end)
    assert freqs.shape == (end, dim // 2) and freqs.dtype == torch.complex64
    close(freqs.abs(), torch.ones(end, dim // 2), atol=1e-6)
    for m in range(end):
        for j in range(dim // 2):
            angle = m / 10000 ** (2 * j / dim)
            assert freqs[m, j].real.item() == pytest.approx(math.cos(angle), abs=1e-6)
            assert freqs[m, j].imag.item() == pytest.approx(math.sin(angle), abs=1e-6)
    # theta changes the base: the last pair of a width-4 vector turns by m / theta^(2/4).
    assert torch.angle(sol.precompute_freqs_cis(4, 3, theta=100.0)[2, 1]).item() == pytest.approx(2 / 10, abs=1e-6)


def _rotation_matrices(angles):
    """(T, D/2) angles -> (T, D, D) block-diagonal rotation matrices for adjacent pairs."""
    T, half = angles.shape
    R = torch.zeros(T, 2 * half, 2 * half, dtype=torch.float64)
    for j in range(half):
        c, s = angles[:, j].cos(), angles[:, j].sin()
        R[:, 2 * j, 2 * j], R[:, 2 * j, 2 * j + 1] = c, -s
        R[:, 2 * j + 1, 2 * j], R[:, 2 * j + 1, 2 * j + 1] = s, c
    return R


def test_apply_rotary_is_a_block_rotation_of_adjacent_pairs():
    torch.manual_seed(2)
    B, T, H, D = 2, 5, 3, 8
    xq, xk = torch.randn(B, T, H, D), torch.randn(B, T, H, D)
    start = 3
    freqs_cis = sol.precompute_freqs_cis(D, 16)[start : start + T]
    angles = torch.tensor(
        [[(start + t) / 10000 ** (2 * j / D) for j in range(D // 2)] for t in range(T)], dtype=torch.float64
    )
    R = _rotation_matrices(angles)  # (T, D, D)
    q_out, k_out = sol.apply_rotary_emb(xq, xk, freqs_cis)
    assert q_out.dtype == xq.dtype and q_out.shape == xq.shape
    close(q_out, torch.einsum("tij,bthj->bthi", R, xq.double()), atol=1e-5)
    close(k_out, torch.einsum("tij,bthj->bthi", R, xk.double()), atol=1e-5)


def test_rotary_scores_depend_on_relative_position_and_norms_are_kept():
    torch.manual_seed(3)
    T, D = 12, 16
    q, k = torch.randn(D), torch.randn(D)
    xq, xk = q.expand(1, T, 1, D).contiguous(), k.expand(1, T, 1, D).contiguous()
    rq, rk = (t[0, :, 0].double() for t in sol.apply_rotary_emb(xq, xk, sol.precompute_freqs_cis(D, T)))
    close(rq.norm(dim=-1), q.double().norm().expand(T), atol=1e-5)
    scores = rq @ rk.T
    for offset in range(-T + 1, T):
        diagonal = torch.diagonal(scores, offset=offset)
        close(diagonal, diagonal[0].expand_as(diagonal), atol=1e-4)
    assert scores[0, 0].item() == pytest.approx((q.double() @ k.double()).item(), rel=1e-5)  # position 0: no rotation


def _rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def _hf_rotary(x, freqs_cis):
    """Hugging Face's convention: cos/sin repeated over both halves, x * cos + rotate_half(x) * sin."""
    cos = torch.cat([freqs_cis.real, freqs_cis.real], dim=-1)[None, :, None, :]
    sin = torch.cat([freqs_cis.imag, freqs_cis.imag], dim=-1)[None, :, None, :]
    return x * cos + _rotate_half(x) * sin


def _interleaved_to_halves(D):
    """Feature order that puts Meta's pair j = (2j, 2j+1) at positions (j, j + D/2)."""
    return torch.cat([torch.arange(0, D, 2), torch.arange(1, D, 2)])


def test_meta_and_rotate_half_conventions_differ_until_the_features_are_permuted():
    torch.manual_seed(4)
    B, T, H, D = 1, 6, 2, 8
    x = torch.randn(B, T, H, D)
    freqs_cis = sol.precompute_freqs_cis(D, T)
    meta, _ = sol.apply_rotary_emb(x, x, freqs_cis)
    hf = _hf_rotary(x, freqs_cis)
    assert not torch.allclose(meta, hf, atol=1e-3)  # same frequencies, different pairs
    perm = _interleaved_to_halves(D)
    close(_hf_rotary(x[..., perm], freqs_cis), meta[..., perm], atol=1e-5)  # equal once the layout is permuted


def _hf_style_logits(model, tokens):
    """The same LLaMA computed the Hugging Face way: q/k projection rows permuted per head (as
    HF's conversion script does), rotate_half, F.rms_norm and scaled_dot_product_attention."""
    args = model.params
    H, D = args.n_heads, args.dim // args.n_heads
    rows = torch.cat([h * D + _interleaved_to_halves(D) for h in range(H)])
    B, T = tokens.shape
    freqs_cis = sol.precompute_freqs_cis(D, T)
    h = model.tok_embeddings.weight[tokens]
    for layer in model.layers:
        a = layer.attention
        x = F.rms_norm(h, (args.dim,), layer.attention_norm.weight, eps=args.norm_eps)
        q = (x @ a.wq.weight[rows].T).view(B, T, H, D)
        k = (x @ a.wk.weight[rows].T).view(B, T, H, D)
        v = (x @ a.wv.weight.T).view(B, T, H, D)
        q, k = _hf_rotary(q, freqs_cis), _hf_rotary(k, freqs_cis)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        h = h + out.transpose(1, 2).reshape(B, T, -1) @ a.wo.weight.T
        x = F.rms_norm(h, (args.dim,), layer.ffn_norm.weight, eps=args.norm_eps)
        ff = layer.feed_forward
        h = h + (F.silu(x @ ff.w1.weight.T) * (x @ ff.w3.weight.T)) @ ff.w2.weight.T
    return F.rms_norm(h, (args.dim,), model.norm.weight, eps=args.norm_eps) @ model.output.weight.T


def test_transformer_equals_the_hugging_face_computation_with_permuted_projections():
    model = tiny_model(5)
    tokens = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        close(model(tokens), _hf_style_logits(model, tokens), atol=1e-4)


# --- SwiGLU ------------------------------------------------------------------------------------


def test_ffn_hidden_dim_of_released_checkpoints():
    # LLaMA 7B / 13B / 33B / 65B intermediate sizes, and Llama 2 70B (multiple_of 4096, ffn_dim_multiplier 1.3)
    assert [sol.ffn_hidden_dim(d) for d in (4096, 5120, 6656, 8192)] == [11008, 13824, 17920, 22016]
    assert sol.ffn_hidden_dim(8192, 4096, 1.3) == 28672
    assert sol.ffn_hidden_dim(32, 16) == 96  # int(256 / 3) = 85, rounded up
    assert sol.ffn_hidden_dim(48, 16) == 128  # already a multiple: unchanged
    assert sol.ffn_hidden_dim(10, 1) == int(80 / 3)


def test_feed_forward_is_swiglu_without_biases():
    torch.manual_seed(6)
    ff = sol.FeedForward(16, 40)
    assert {n: tuple(p.shape) for n, p in ff.named_parameters()} == {
        "w1.weight": (40, 16),
        "w2.weight": (16, 40),
        "w3.weight": (40, 16),
    }
    x = torch.randn(3, 16)
    gate = x @ ff.w1.weight.T
    close(ff(x), (gate * torch.sigmoid(gate) * (x @ ff.w3.weight.T)) @ ff.w2.weight.T, atol=1e-6)


# --- the model ----------------------------------------------------------------------------------


def test_no_biases_and_an_untied_head():
    model = tiny_model(7)
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert model.output.weight is not model.tok_embeddings.weight
    assert model.output.weight.data_ptr() != model.tok_embeddings.weight.data_ptr()
    assert not [n for n in model.state_dict() if "cache" in n or "freqs" in n]  # working memory, not weights


def test_the_model_is_causal():
    model = tiny_model(8)
    tokens = torch.randint(0, 50, (1, 8), generator=torch.Generator().manual_seed(8))
    changed = tokens.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 50
    close(model(tokens)[:, :5], model(changed)[:, :5], atol=1e-6)
    assert not torch.allclose(model(tokens)[:, 5:], model(changed)[:, 5:], atol=1e-3)


@pytest.mark.parametrize("chunks", [[1] * 9, [3, 1, 2, 3], [5, 4], [2, 2, 2, 2, 1]])
def test_cached_chunks_equal_one_full_pass(chunks):
    model = tiny_model(9)
    tokens = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(9))
    full = model(tokens)
    parts, start = [], 0
    for n in chunks:
        parts.append(model(tokens[:, start : start + n], start_pos=start))
        start += n
    close(torch.cat(parts, dim=1), full, atol=1e-5)


def _greedy_without_cache(model, prompt, n):
    ys = prompt
    for _ in range(n):
        ys = torch.cat([ys, model(ys)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ys


def test_generate_equals_greedy_decoding_without_the_cache_and_feeds_one_token_per_step():
    model = tiny_model(10)
    prompt = torch.randint(0, 50, (2, 4), generator=torch.Generator().manual_seed(10))
    seen = []
    handle = model.layers[0].attention.register_forward_pre_hook(
        lambda m, args: seen.append((args[0].shape[1], args[1]))
    )
    try:
        ys = sol.generate(model, prompt, 12)
    finally:
        handle.remove()
    assert ys.shape == (2, 16) and torch.equal(ys[:, :4], prompt)
    assert torch.equal(ys, _greedy_without_cache(model, prompt, 12))
    assert seen == [(4, 0)] + [(1, 4 + k) for k in range(11)]  # the prompt once, then one position per step


# --- parameter count -----------------------------------------------------------------------------


TABLE2 = {"6.7B": 6_738_415_616, "13.0B": 13_015_864_320, "32.5B": 32_528_943_616, "65.2B": 65_285_660_672}


def test_parameter_count_against_table2():
    for name, expected in TABLE2.items():
        count = sol.llama_parameter_count(sol.ModelArgs(vocab_size=32000, **sol.LLAMA_TABLE2[name]))
        assert count == expected
        assert f"{math.floor(count / 1e8) / 10:.1f}B" == name  # Table 2 truncates to 0.1B (65.29B is "65.2B")


def test_parameter_count_of_the_7b_architecture_built_on_the_meta_device():
    args = sol.ModelArgs(vocab_size=32000, max_batch_size=1, max_seq_len=8, **sol.LLAMA_TABLE2["6.7B"])
    with torch.device("meta"):  # shapes only, no memory
        model = sol.Transformer(args)
    assert sum(p.numel() for p in model.parameters()) == TABLE2["6.7B"] == sol.llama_parameter_count(args)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(dim=40, n_heads=5, ffn_dim_multiplier=1.3, n_layers=3, vocab_size=37),
        dict(dim=24, n_heads=2, multiple_of=1, n_layers=1, vocab_size=7),
    ],
)
def test_parameter_count_equals_a_tiny_models(overrides):
    args = sol.ModelArgs(**{**TINY, **overrides})
    assert sol.llama_parameter_count(args) == sum(p.numel() for p in sol.Transformer(args).parameters())
    if not overrides:
        assert sol.llama_parameter_count(args) == 29984  # 2 * 50 * 32 + 2 * (4 * 32^2 + 3 * 32 * 96 + 2 * 32) + 32


# --- data mixture ----------------------------------------------------------------------------------


def test_table1_proportions_sum_to_one_and_tokens_seen():
    proportions = {s: p for s, (p, _) in sol.LLAMA_DATA_MIX.items()}
    assert sum(proportions.values()) == pytest.approx(1.0, abs=1e-12)
    seen = sol.tokens_seen(1.4e12, proportions)
    assert seen["CommonCrawl"] == pytest.approx(938e9) and seen["Wikipedia"] == pytest.approx(63e9)
    assert seen["StackExchange"] == pytest.approx(28e9)
    assert sum(seen.values()) == pytest.approx(1.4e12)
    with pytest.raises(ValueError):
        sol.tokens_seen(1e12, {"a": 0.5, "b": 0.4})
    with pytest.raises(ValueError):
        sol.tokens_seen(1e12, {"a": 1.2, "b": -0.2})


def test_epochs_reproduce_table1_and_scale_to_one_trillion_tokens():
    proportions = {s: p for s, (p, _) in sol.LLAMA_DATA_MIX.items()}
    sizes = {s: 1.4e12 * p / e for s, (p, e) in sol.LLAMA_DATA_MIX.items()}  # implied sizes of the sources
    assert sizes["Wikipedia"] == pytest.approx(25.714e9, rel=1e-4)
    at_14 = sol.epochs(1.4e12, proportions, sizes)
    assert {s: round(e, 2) for s, e in at_14.items()} == {s: e for s, (_, e) in sol.LLAMA_DATA_MIX.items()}
    at_10 = sol.epochs(1.0e12, proportions, sizes)
    assert at_10["Wikipedia"] == pytest.approx(1.75) and at_10["Books"] == pytest.approx(2.23 / 1.4)
    assert sorted(s for s, e in at_10.items() if e > 1) == ["Books", "Wikipedia"]
    assert sorted(s for s, e in at_14.items() if e > 1) == [
        "ArXiv",
        "Books",
        "C4",
        "CommonCrawl",
        "StackExchange",
        "Wikipedia",
    ]
