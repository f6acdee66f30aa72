"""The reference solution of the attention topic, held against independent references:
torch's own operators, the formulas of the annotated transformer written out, and hand-worked
values. These are the project's own tests; they run the solution in this process."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "attention.py", "attention_solution")


def close(a, b, atol=1e-5, rtol=1e-4):
    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"largest difference {(a - b).abs().max().item():.3g}"


# --- attention and masks -------------------------------------------------------------------


def test_attention_matches_sdpa_without_mask():
    g = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(2, 3, 4, 8, generator=g),
        torch.randn(2, 3, 6, 8, generator=g),
        torch.randn(2, 3, 6, 5, generator=g),
    )
    out, p_attn = sol.attention(q, k, v)
    close(out, F.scaled_dot_product_attention(q, k, v))
    close(p_attn, (q @ k.transpose(-2, -1) / math.sqrt(8)).softmax(-1))
    close(p_attn.sum(-1), torch.ones(2, 3, 4))


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.uint8])
def test_attention_matches_sdpa_with_mask(dtype):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 5, 4, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 5, 5, generator=g) < 0.6
    mask[..., 0] = True
    out, p_attn = sol.attention(q, k, v, mask=mask.to(dtype))
    close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert p_attn[~mask.expand_as(p_attn)].abs().max() < 1e-6


def test_attention_applies_dropout_to_the_weights():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 6, 4, generator=g) for _ in range(3))
    torch.manual_seed(0)
    _, p_attn = sol.attention(q, k, v, dropout=nn.Dropout(0.5))
    clean = (q @ k.transpose(-2, -1) / 2).softmax(-1)
    kept = p_attn != 0
    assert 0 < kept.sum() < kept.numel()
    close(p_attn[kept], 2 * clean[kept])


def test_subsequent_mask_matches_torch_causal_mask():
    for size in (1, 2, 7):
        mask = sol.subsequent_mask(size)
        assert mask.dtype == torch.bool and mask.shape == (1, size, size)
        torch_mask = nn.Transformer.generate_square_subsequent_mask(size)  # 0 allowed, -inf hidden
        assert torch.equal(mask[0], torch_mask == 0)
    assert sol.subsequent_mask(3).int().tolist() == [[[1, 0, 0], [1, 1, 0], [1, 1, 1]]]


# --- multi-head attention -------------------------------------------------------------------


def _torch_mha_like(mha, d_model, h):
    """torch.nn.MultiheadAttention holding the four linears of `mha` (q, k, v stacked)."""
    torch_mha = nn.MultiheadAttention(d_model, h, batch_first=True)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([lin.weight for lin in mha.linears[:3]]))
        torch_mha.in_proj_bias.copy_(torch.cat([lin.bias for lin in mha.linears[:3]]))
        torch_mha.out_proj.weight.copy_(mha.linears[3].weight)
        torch_mha.out_proj.bias.copy_(mha.linears[3].bias)
    return torch_mha.eval()


def test_mha_matches_torch_without_mask():
    torch.manual_seed(3)
    h, d_model = 4, 32
    mha = sol.MultiHeadedAttention(h, d_model, dropout=0.0).eval()
    query, memory = torch.randn(2, 3, d_model), torch.randn(2, 5, d_model)
    out = mha(query, memory, memory)
    expected, weights = _torch_mha_like(mha, d_model, h)(query, memory, memory, average_attn_weights=False)
    close(out, expected)
    assert mha.attn.shape == (2, h, 3, 5)
    close(mha.attn, weights)


def test_mha_matches_torch_with_padding_and_causal_masks():
    torch.manual_seed(4)
    h, d_model, B, T = 2, 16, 3, 5
    mha = sol.MultiHeadedAttention(h, d_model, dropout=0.0).eval()
    torch_mha = _torch_mha_like(mha, d_model, h)
    x = torch.randn(B, T, d_model)
    padding = (torch.arange(T) < torch.tensor([5, 3, 1])[:, None]).unsqueeze(1)  # (B, 1, T)
    blocked = (~padding).unsqueeze(1).expand(B, h, T, T).reshape(B * h, T, T)
    close(mha(x, x, x, padding), torch_mha(x, x, x, attn_mask=blocked)[0])
    causal = padding & sol.subsequent_mask(T)  # (B, T, T)
    blocked = (~causal).unsqueeze(1).expand(B, h, T, T).reshape(B * h, T, T)
    close(mha(x, x, x, causal), torch_mha(x, x, x, attn_mask=blocked)[0])


# --- position-wise pieces ------------------------------------------------------------------


def test_positional_encoding_values():
    d_model, max_len = 6, 20
    pe = sol.PositionalEncoding(d_model, 0.0, max_len=max_len)
    assert pe.pe.shape == (1, max_len, d_model)
    for pos in (0, 1, 7, 19):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert pe.pe[0, pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe.pe[0, pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    x = torch.randn(2, 4, d_model)
    close(pe(x), x + pe.pe[:, :4])
    assert not pe.pe.requires_grad and "pe" in dict(pe.named_buffers())


def test_layer_norm_is_the_annotated_formula_not_torchs():
    torch.manual_seed(5)
    ln = sol.LayerNorm(6)
    with torch.no_grad():
        ln.a_2.copy_(torch.randn(6))
        ln.b_2.copy_(torch.randn(6))
    x = torch.randn(3, 6)
    x[2] *= 1e-3  # a row whose std is close to eps
    mean = x.mean(-1, keepdim=True)
    std = ((x - mean) ** 2).sum(-1, keepdim=True).div(6 - 1).sqrt()  # unbiased
    close(ln(x), ln.a_2 * (x - mean) / (std + 1e-6) + ln.b_2)
    torchs = F.layer_norm(x, (6,), ln.a_2, ln.b_2, eps=1e-6)
    assert not torch.allclose(ln(x), torchs, atol=1e-3)  # the difference the course teaches
    # hand-worked: [1, 2, 3, 4], unbiased std sqrt(5/3), eps 0.5 -> [-1.5, -0.5, 0.5, 1.5] / 1.790994
    close(
        sol.LayerNorm(4, eps=0.5)(torch.tensor([[1.0, 2, 3, 4]])),
        torch.tensor([[-1.5, -0.5, 0.5, 1.5]]) / (math.sqrt(5 / 3) + 0.5),
        atol=1e-6,
    )


def test_sublayer_connection_is_pre_norm():
    torch.manual_seed(6)
    sc = sol.SublayerConnection(8, 0.0)
    ff = sol.PositionwiseFeedForward(8, 16, 0.0)
    x = torch.randn(2, 3, 8)
    close(sc(x, ff), x + ff(sc.norm(x)))
    close(sc(x, lambda y: 2 * y), x + 2 * sc.norm(x))


def test_encoder_and_decoder_layers_wire_their_sublayers():
    torch.manual_seed(7)
    d, h, T = 8, 2, 4
    enc = sol.EncoderLayer(d, sol.MultiHeadedAttention(h, d, 0.0), sol.PositionwiseFeedForward(d, 16, 0.0), 0.0)
    x, mask = torch.randn(2, T, d), torch.ones(2, 1, T, dtype=torch.bool)
    n0, n1 = enc.sublayer[0].norm, enc.sublayer[1].norm
    y = x + enc.self_attn(n0(x), n0(x), n0(x), mask)
    close(enc(x, mask), y + enc.feed_forward(n1(y)))

    dec = sol.DecoderLayer(
        d,
        sol.MultiHeadedAttention(h, d, 0.0),
        sol.MultiHeadedAttention(h, d, 0.0),
        sol.PositionwiseFeedForward(d, 16, 0.0),
        0.0,
    )
    memory, tgt = torch.randn(2, T + 1, d), torch.randn(2, T, d)
    src_mask, tgt_mask = torch.ones(2, 1, T + 1, dtype=torch.bool), sol.subsequent_mask(T)
    n = [s.norm for s in dec.sublayer]
    a = tgt + dec.self_attn(n[0](tgt), n[0](tgt), n[0](tgt), tgt_mask)
    b = a + dec.src_attn(n[1](a), memory, memory, src_mask)
    close(dec(tgt, memory, src_mask, tgt_mask), b + dec.feed_forward(n[2](b)))


# --- training pieces -----------------------------------------------------------------------


def test_rate_hand_worked_values():
    first = 512**-0.5 * 4000**-1.5
    assert sol.rate(0, 512, 1.0, 4000) == pytest.approx(first, rel=1e-12)
    assert sol.rate(1, 512, 1.0, 4000) == pytest.approx(first, rel=1e-12)
    peak = sol.rate(4000, 512, 1.0, 4000)
    assert peak == pytest.approx(6.98771e-4, rel=1e-5)  # 1 / sqrt(512 * 4000): the paper's peak
    assert sol.rate(3999, 512, 1.0, 4000) < peak > sol.rate(4001, 512, 1.0, 4000)
    assert sol.rate(16000, 512, 2.0, 4000) == pytest.approx(
        peak, rel=1e-12
    )  # factor 2 times 1/sqrt(4) after 4x the steps


def test_rate_drives_lambda_lr_from_step_zero():
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: sol.rate(step, 32, 1.0, 40))
    seen = []
    for _ in range(50):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(32**-0.5 * 40**-1.5)
    assert max(range(50), key=seen.__getitem__) == 40


def test_label_smoothing_hand_worked():
    # size 5, padding 0, smoothing 0.4: 0.6 on the true class, 0.4 / 3 on the 3 others, 0 on padding.
    crit = sol.LabelSmoothing(5, 0, 0.4)
    x = torch.tensor([[0, 0.2, 0.7, 0.1, 0]] * 4).clamp_min(1e-9).log()
    target = torch.tensor([2, 1, 0, 3])
    loss = crit(x, target)
    s = 0.4 / 3
    expected = torch.tensor([[0, s, 0.6, s, s], [0, 0.6, s, s, s], [0, 0, 0, 0, 0], [0, s, s, 0.6, s]])
    close(crit.true_dist, expected, atol=1e-7)
    close(crit.true_dist.sum(-1), torch.tensor([1.0, 1.0, 0.0, 1.0]))
    by_hand = sum(
        p * (math.log(p) - x[r, c].item()) for r in range(4) for c in range(5) if (p := expected[r, c].item()) > 0
    )
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert loss.item() == pytest.approx(nn.KLDivLoss(reduction="sum")(x, expected).item(), rel=1e-6)


def test_label_smoothing_without_smoothing_is_cross_entropy():
    torch.manual_seed(8)
    x = torch.randn(6, 7).log_softmax(-1)
    target = torch.tensor([1, 2, 0, 6, 3, 0])
    loss = sol.LabelSmoothing(7, 0, 0.0)(x, target)
    keep = target != 0
    close(loss, F.nll_loss(x[keep], target[keep], reduction="sum"))


def test_batch_masks():
    src = torch.tensor([[1, 4, 5, 0, 0]])
    batch = sol.Batch(src, src.clone(), pad=0)
    assert batch.src_mask.tolist() == [[[True, True, True, False, False]]]
    assert batch.tgt.tolist() == [[1, 4, 5, 0]] and batch.tgt_y.tolist() == [[4, 5, 0, 0]]
    assert batch.tgt_mask.shape == (1, 4, 4)
    assert batch.tgt_mask[0].int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]]
    assert batch.ntokens.item() == 2


def test_greedy_decode_on_a_model_whose_output_is_known():
    torch.manual_seed(9)
    V = 7
    model = sol.make_model(V, V, N=1, d_model=16, d_ff=32, h=2, dropout=0.0).eval()
    with torch.no_grad():  # the generator ignores its input and always prefers token 3
        model.generator.proj.weight.zero_()
        model.generator.proj.bias.copy_(torch.arange(V) == 3)
    src = torch.tensor([[1, 2, 4, 5]])
    ys = sol.greedy_decode(model, src, torch.ones(1, 1, 4, dtype=torch.bool), max_len=5, start_symbol=1)
    assert ys.tolist() == [[1, 3, 3, 3, 3]]
    assert ys.dtype == src.dtype


def test_greedy_decode_matches_a_decoder_written_out():
    torch.manual_seed(10)
    V = 9
    model = sol.make_model(V, V, N=1, d_model=16, d_ff=32, h=2, dropout=0.0).eval()
    src = torch.tensor([[1, 3, 8, 2, 6, 5]])
    src_mask = torch.ones(1, 1, 6, dtype=torch.bool)
    with torch.no_grad():
        ys = src[:, :1]
        for _ in range(5):
            T = ys.size(1)
            out = model(src, ys, src_mask, torch.ones(1, T, T).tril().bool())
            ys = torch.cat([ys, model.generator(out[:, -1]).argmax(-1, keepdim=True)], dim=1)
        assert sol.greedy_decode(model, src, src_mask, 6, 1).tolist() == ys.tolist()


def _copy_accuracy(model, n=64, seed=123):
    g = torch.Generator().manual_seed(seed)
    V, T = sol.COPY_TASK["V"], sol.COPY_TASK["seq_len"]
    src = torch.randint(1, V, (n, T), generator=g)
    src[:, 0] = 1
    mask = torch.ones(n, 1, T, dtype=torch.bool)
    with torch.no_grad():
        memory, ys = model.encode(src, mask), src[:, :1]
        for _ in range(T - 1):
            t = ys.size(1)
            out = model.decode(memory, mask, ys, torch.ones(1, t, t).tril().bool())
            ys = torch.cat([ys, model.generator(out[:, -1]).argmax(-1, keepdim=True)], dim=1)
    return (ys[:, 1:] == src[:, 1:]).float().mean().item(), src, mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copy_task_reaches_90_percent(seed):
    model = sol.train_copy_model(steps=200, seed=seed)  # the steps the copy_task checks use
    accuracy, src, mask = _copy_accuracy(model)
    assert accuracy >= 0.9, f"seed {seed}: {accuracy:.1%}"
    with torch.no_grad():  # the solution's own greedy_decode agrees with the batched decoder above
        copied = [sol.greedy_decode(model, src[i : i + 1], mask[i : i + 1], 10, 1) for i in range(4)]
    assert sum((c == src[i : i + 1]).float().mean().item() for i, c in enumerate(copied)) / 4 >= 0.8


def test_copy_task_check_runs_the_trained_weights_in_torch_transformer():
    # The visible copy_task check measures the trained weights in torch's nn.Transformer; that
    # must compute what make_model computes with the same weights (LayerNorm's gain rescaled).
    check = load_module(ROOT / "tests" / "checks" / "attention" / "test_training.py", "attention_training_check")
    torch.manual_seed(11)
    sizes = check._COPY_SIZES
    model = sol.make_model(
        sizes["V"], sizes["V"], N=2, d_model=sizes["d_model"], d_ff=sizes["d_ff"], h=sizes["h"], dropout=0.0
    ).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("a_2", "b_2", "bias")):
                p.add_(0.3 * torch.randn_like(p))  # norms and biases away from their initial values
    state = {name: t.double() for name, t in model.state_dict().items()}
    src = torch.randint(1, sizes["V"], (5, sizes["seq_len"]))
    tgt = src[:, :-1]
    ours = check._TorchCopyModel(state, **dict(sizes, N=2))(src, tgt)
    with torch.no_grad():
        src_mask = torch.ones(5, 1, src.size(1), dtype=torch.bool)
        theirs = model.generator(model(src, tgt, src_mask, sol.subsequent_mask(tgt.size(1))))
    close(ours, theirs, atol=1e-4, rtol=1e-4)
