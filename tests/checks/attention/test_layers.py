"""Checks for the positional encoding, LayerNorm, the residual sublayer connection and the
encoder and decoder layers.

Visible checks give the learner's modules weights chosen here (through load_state_dict) and
compare with the answers recorded from the reference solution on the same weights and inputs
(tests/checks/attention/recorded.json), with small hand-worked values and with properties of
dropout; a wrong answer is named after the known mistake it matches.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_shape, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

# --- weights, by the parameter names of the annotated transformer ---------------------------


def _linear(sd, name, n_out, n_in, g):
    sd[f"{name}.weight"] = torch.randn(n_out, n_in, generator=g) / math.sqrt(n_in)
    sd[f"{name}.bias"] = 0.1 * torch.randn(n_out, generator=g)


def _norm(sd, name, size, g):
    sd[f"{name}.a_2"] = 1 + 0.2 * torch.randn(size, generator=g)
    sd[f"{name}.b_2"] = 0.1 * torch.randn(size, generator=g)


def _feed_forward_state(g, size, d_ff, prefix=""):
    sd = {}
    _linear(sd, f"{prefix}w_1", d_ff, size, g)
    _linear(sd, f"{prefix}w_2", size, d_ff, g)
    return sd


def _layer_state(g, size, d_ff, attentions, n_sublayers):
    """A state dict for an EncoderLayer (attentions ["self_attn"], 2 sublayers) or a
    DecoderLayer (["self_attn", "src_attn"], 3 sublayers)."""
    sd = {}
    for attn in attentions:
        for i in range(4):
            _linear(sd, f"{attn}.linears.{i}", size, size, g)
    sd.update(_feed_forward_state(g, size, d_ff, "feed_forward."))
    for i in range(n_sublayers):
        _norm(sd, f"sublayer.{i}.norm", size, g)
    return sd


def _loaded(layer, sd):
    layer.load_state_dict(sd)
    layer.eval()
    return layer


def _feed_forward(module, size, d_ff, sd):
    return _loaded(module.PositionwiseFeedForward(size, d_ff, dropout=0.0), sd)


def _encoder_layer(module, size, h, d_ff, sd):
    """EncoderLayer of `module` (the learner's or the recorded solution) holding `sd`, without dropout."""
    return _loaded(module.EncoderLayer(size, module.MultiHeadedAttention(h, size, dropout=0.0),
                                       module.PositionwiseFeedForward(size, d_ff, dropout=0.0), 0.0), sd)


def _decoder_layer(module, size, h, d_ff, sd):
    return _loaded(module.DecoderLayer(size, module.MultiHeadedAttention(h, size, dropout=0.0),
                                       module.MultiHeadedAttention(h, size, dropout=0.0),
                                       module.PositionwiseFeedForward(size, d_ff, dropout=0.0), 0.0), sd)


# --- positional_encoding -------------------------------------------------------------------


@pytest.mark.exercise("positional_encoding")
@pytest.mark.points(2)
def test_pe_table_matches_sin_cos_formula(impl, recorded):
    d_model, max_len = 16, 60
    expected = recorded.PositionalEncoding(d_model, 0.0, max_len=max_len).pe
    pe = impl.PositionalEncoding(d_model, 0.0, max_len=max_len)
    what = f"`PositionalEncoding({d_model}, 0.0, max_len={max_len}).pe`"
    expect_close(pe.pe, expected, what, atol=1e-4,
                 hint="PE(pos, 2i) = sin(pos / 10000^(2i / d_model)), PE(pos, 2i+1) = cos(the same angle); "
                      "the buffer has shape (1, max_len, d_model).")


@pytest.mark.exercise("positional_encoding")
def test_pe_forward_adds_first_rows(impl, recorded):
    d_model, max_len = 16, 60
    x = torch.randn(2, 7, d_model, generator=_gen(10))
    expected = recorded.PositionalEncoding(d_model, 0.0, max_len=max_len)(x)
    pe = impl.PositionalEncoding(d_model, 0.0, max_len=max_len)
    expect_close(pe(x), expected, "`PositionalEncoding(16, 0.0)(x)` for x of shape (2, 7, 16)", atol=1e-4,
                 hint="Add the table's rows for the first T positions (T is the length of x's sequence), then apply dropout.")


@pytest.mark.exercise("positional_encoding")
@pytest.mark.hidden
def test_pe_random_sizes_match_reference(impl, ref, seed):
    g = _gen(seed)
    d_model, max_len = 2 * _randint(g, 1, 33), _randint(g, 20, 200)
    T = _randint(g, 1, max_len + 1)
    x = torch.randn(_randint(g, 1, 4), T, d_model, generator=g)
    pe = impl.PositionalEncoding(d_model, 0.0, max_len=max_len)
    reference = ref.PositionalEncoding(d_model, 0.0, max_len=max_len)
    what = f"`PositionalEncoding({d_model}, 0.0, max_len={max_len})`"
    expect_close(pe.pe, reference.pe, f"{what}.pe", atol=2e-4)
    expect_close(pe(x), reference(x), f"{what}(x) for x of shape {tuple(x.shape)}", atol=2e-4)


# --- layer_norm ----------------------------------------------------------------------------


@pytest.mark.exercise("layer_norm")
@pytest.mark.points(2)
def test_layer_norm_matches_annotated_formula(impl, recorded):
    g = _gen(20)
    x = torch.randn(2, 3, 6, generator=g) * 2 + 1
    x[1, 2] = 1e-3 * torch.randn(6, generator=g)  # a tiny row: std ~ 1e-3, where eps matters
    sd = {"a_2": 1 + 0.2 * torch.randn(6, generator=g), "b_2": 0.1 * torch.randn(6, generator=g)}
    expected = _loaded(recorded.LayerNorm(6), sd)(x)
    expect_close(
        _loaded(impl.LayerNorm(6), sd)(x), expected, "`LayerNorm(6)(x)` with learned a_2 and b_2", rtol=1e-4, atol=1e-4,
        hint="Normalise over the last dimension with the mean and the unbiased standard deviation, eps added to the "
             "standard deviation (not the variance), then scale by a_2 and shift by b_2.",
    )


@pytest.mark.exercise("layer_norm")
def test_layer_norm_hand_worked_with_large_eps(impl, recorded):
    # x = [1, 2, 3, 4]: mean 2.5, unbiased std sqrt(5/3) = 1.290994; with eps = 0.5 the
    # denominator is 1.790994, so the output is [-1.5, -0.5, 0.5, 1.5] / 1.790994.
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    recorded.LayerNorm(4, eps=0.5)(x)
    expect_close(
        impl.LayerNorm(4, eps=0.5)(x), torch.tensor([[-0.837524, -0.279175, 0.279175, 0.837524]]),
        "`LayerNorm(4, eps=0.5)([[1, 2, 3, 4]])`", atol=2e-6, rtol=0,
        hint="Work this row out by hand: the unbiased standard deviation divides by n - 1, and eps is added to it.",
    )


@pytest.mark.exercise("layer_norm")
@pytest.mark.hidden
def test_layer_norm_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    features = _randint(g, 2, 33)
    eps = [1e-6, 1e-5, 0.1][_randint(g, 0, 3)]
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 6), features, generator=g) * 3
    sd = {"a_2": 1 + 0.2 * torch.randn(features, generator=g), "b_2": 0.1 * torch.randn(features, generator=g)}
    with torch.no_grad():
        expected = _loaded(ref.LayerNorm(features, eps=eps), sd)(x)
    what = f"`LayerNorm({features}, eps={eps})(x)` for x of shape {tuple(x.shape)}"
    expect_close(_loaded(impl.LayerNorm(features, eps=eps), sd)(x), expected, what, atol=1e-4)


# --- sublayer_connection -------------------------------------------------------------------


def _sublayer(module, size, dropout, sd):
    sc = module.SublayerConnection(size, dropout)  # a fresh module is in training mode: dropout is active
    sc.load_state_dict(sd)
    return sc


def _sublayer_inputs(seed, size, d_ff, batch):
    g = _gen(seed)
    ff_sd = _feed_forward_state(g, size, d_ff)
    norm_sd = {}
    _norm(norm_sd, "norm", size, g)
    return ff_sd, norm_sd, torch.randn(batch, 5, size, generator=g)


@pytest.mark.exercise("sublayer_connection")
@pytest.mark.points(2)
def test_sublayer_connection_is_pre_norm_residual(impl, recorded):
    ff_sd, norm_sd, x = _sublayer_inputs(30, 8, 16, 2)
    expected = _sublayer(recorded, 8, 0.0, norm_sd)(x, _feed_forward(recorded, 8, 16, ff_sd))
    got = _sublayer(impl, 8, 0.0, norm_sd)(x, _feed_forward(impl, 8, 16, ff_sd))
    expect_close(got, expected, "`SublayerConnection(8, 0.0)(x, feed_forward)`", atol=1e-4,
                 hint="Expected x + dropout(sublayer(norm(x))).")


@pytest.mark.exercise("sublayer_connection")
def test_sublayer_dropout_only_on_sublayer_branch(impl, recorded):
    ff_sd, norm_sd, x = _sublayer_inputs(31, 8, 16, 4)
    # the sublayer's branch, sublayer(norm(x)), from the reference without dropout
    branch = _sublayer(recorded, 8, 0.0, norm_sd)(x, _feed_forward(recorded, 8, 16, ff_sd)).double() - x.double()
    out = _sublayer(impl, 8, 0.5, norm_sd)(x, _feed_forward(impl, 8, 16, ff_sd))
    x64 = x.double()
    out = expect_shape(out, x.shape, "`SublayerConnection(8, 0.5)(x, feed_forward)` in training mode").double()
    delta = out - x64

    def either(value, zero_or):
        return ((value.abs() < 1e-4) | ((value - zero_or).abs() < 1e-4)).all()

    if either(delta, 2 * branch):
        if (delta.abs() < 1e-4).all() or ((delta - 2 * branch).abs() < 1e-4).all():
            fail("`SublayerConnection(8, 0.5)` in training mode: no element was dropped (or all were); "
                 "self.dropout belongs on the sublayer's output, before it is added to x.")
        return
    if either(out, 2 * (x64 + branch)):
        fail("`SublayerConnection(8, 0.5)` in training mode zeroes whole outputs: you applied dropout to the residual "
             "sum. Dropout belongs on the sublayer's branch only, so that the residual path carries x unchanged.")
    if ((delta - branch).abs() < 1e-4).all():
        fail("`SublayerConnection(8, 0.5)` in training mode: nothing was dropped; self.dropout belongs on the "
             "sublayer's output, before it is added to x.")
    fail("`SublayerConnection(8, 0.5)` in training mode: with dropout p = 0.5 every entry of out - x should be either 0 "
         "(dropped) or twice the sublayer's branch (kept and scaled by 1 / (1 - p)); yours is neither.")


@pytest.mark.exercise("sublayer_connection")
@pytest.mark.hidden
def test_sublayer_connection_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    size, d_ff = _randint(g, 2, 17), _randint(g, 2, 33)
    ff_sd = _feed_forward_state(g, size, d_ff)
    norm_sd = {}
    _norm(norm_sd, "norm", size, g)
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 7), size, generator=g)
    with torch.no_grad():
        expected = _sublayer(ref, size, 0.0, norm_sd)(x, _feed_forward(ref, size, d_ff, ff_sd))
    got = _sublayer(impl, size, 0.0, norm_sd)(x, _feed_forward(impl, size, d_ff, ff_sd))
    expect_close(got, expected, f"`SublayerConnection({size}, 0.0)(x, feed_forward)` for x of shape {tuple(x.shape)}",
                 atol=1e-4)


# --- encoder_decoder_layers ----------------------------------------------------------------


def _padding_mask(lengths, T):
    return (torch.arange(T) < torch.as_tensor(lengths)[:, None]).unsqueeze(1)  # (B, 1, T)


@pytest.mark.exercise("encoder_decoder_layers")
@pytest.mark.points(2)
def test_encoder_layer_matches_formula(impl, recorded):
    g = _gen(40)
    size, h, d_ff, B, T = 8, 2, 16, 2, 5
    sd = _layer_state(g, size, d_ff, ["self_attn"], 2)
    x = torch.randn(B, T, size, generator=g)
    mask = _padding_mask([5, 3], T)
    expected = _encoder_layer(recorded, size, h, d_ff, sd)(x, mask)
    expect_close(
        _encoder_layer(impl, size, h, d_ff, sd)(x, mask), expected, "`EncoderLayer(8, ...)(x, mask)` with a padding mask",
        atol=1e-4, hint="The first sublayer connection wraps self-attention (x is the query, the key and the value, with "
                  "the mask); the second wraps the feed-forward network.",
    )


@pytest.mark.exercise("encoder_decoder_layers")
@pytest.mark.points(2)
def test_decoder_layer_matches_formula(impl, recorded):
    g = _gen(41)
    size, h, d_ff, B, T = 8, 2, 16, 2, 5  # source and target of the same length, so every mix-up of masks still runs
    sd = _layer_state(g, size, d_ff, ["self_attn", "src_attn"], 3)
    x = torch.randn(B, T, size, generator=g)
    memory = torch.randn(B, T, size, generator=g)
    src_mask = _padding_mask([5, 3], T)
    tgt_mask = _padding_mask([5, 4], T) & torch.ones(1, T, T).tril().bool()  # (B, T, T)
    expected = _decoder_layer(recorded, size, h, d_ff, sd)(x, memory, src_mask, tgt_mask)
    expect_close(
        _decoder_layer(impl, size, h, d_ff, sd)(x, memory, src_mask, tgt_mask), expected,
        "`DecoderLayer(8, ...)(x, memory, src_mask, tgt_mask)`", atol=1e-4,
        hint="Expected masked self-attention (tgt_mask), then src_attn(x, memory, memory, src_mask), then the "
             "feed-forward network, each as sublayer[i](x, ...).",
    )


@pytest.mark.exercise("encoder_decoder_layers")
@pytest.mark.hidden
def test_encoder_decoder_layers_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    h, d_k, d_ff = _randint(g, 1, 4), _randint(g, 2, 6), _randint(g, 4, 33)
    size, B, T_src, T_tgt = h * d_k, _randint(g, 1, 4), _randint(g, 2, 8), _randint(g, 2, 8)
    src_mask = _padding_mask(torch.randint(1, T_src + 1, (B,), generator=g), T_src)
    tgt_mask = _padding_mask(torch.randint(1, T_tgt + 1, (B,), generator=g), T_tgt) & torch.ones(1, T_tgt, T_tgt).tril().bool()
    x_src = torch.randn(B, T_src, size, generator=g)
    x_tgt = torch.randn(B, T_tgt, size, generator=g)

    enc_sd = _layer_state(g, size, d_ff, ["self_attn"], 2)
    with torch.no_grad():
        memory = _encoder_layer(ref, size, h, d_ff, enc_sd)(x_src, src_mask)
    expect_close(_encoder_layer(impl, size, h, d_ff, enc_sd)(x_src, src_mask), memory,
                 f"`EncoderLayer({size}, ...)(x, mask)`, h={h}, x {tuple(x_src.shape)}", atol=1e-4)

    dec_sd = _layer_state(g, size, d_ff, ["self_attn", "src_attn"], 3)
    with torch.no_grad():
        expected = _decoder_layer(ref, size, h, d_ff, dec_sd)(x_tgt, memory, src_mask, tgt_mask)
    expect_close(_decoder_layer(impl, size, h, d_ff, dec_sd)(x_tgt, memory, src_mask, tgt_mask), expected,
                 f"`DecoderLayer({size}, ...)(x, memory, src_mask, tgt_mask)`, h={h}, T_tgt={T_tgt}, T_src={T_src}",
                 atol=1e-4)
