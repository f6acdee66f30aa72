"""Checks for the positional encoding, LayerNorm, the residual sublayer connection and the
encoder and decoder layers.

Visible checks hold the learner's modules against the formulas of the annotated transformer
written out here (in float64), with weights the check chooses through load_state_dict;
hidden checks draw sizes and weights from the run's seed and compare with the reference.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_shape, fail


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


def _randomize(handle, g):
    """Give a module (a handle from the learner's code) random weights through load_state_dict;
    return the state dict it now holds. Buffers such as `pe` keep their values."""
    sd = {}
    current = handle.state_dict()
    for name in sorted(current):
        t = current[name]
        if name.endswith("a_2"):
            sd[name] = 1 + 0.2 * torch.randn(t.shape, generator=g)
        elif name.endswith("b_2") or name.endswith("bias"):
            sd[name] = 0.1 * torch.randn(t.shape, generator=g)
        elif name.endswith("weight"):
            sd[name] = torch.randn(t.shape, generator=g) / math.sqrt(t.shape[-1])
        else:
            sd[name] = t.detach().clone()
    handle.load_state_dict(sd)
    return sd


# --- formulas, in float64 ------------------------------------------------------------------


def _ln(x, a, b, eps=1e-6, variant="ok"):
    """LayerNorm of the annotated transformer; `variant` reproduces known mistakes."""
    x, a, b = x.double(), a.double(), b.double()
    mean = x.mean(-1, keepdim=True)
    if variant == "biased":
        denom = x.std(-1, keepdim=True, unbiased=False) + eps
    elif variant == "eps_in_var":
        denom = (x.var(-1, keepdim=True) + eps).sqrt()
    elif variant == "torch":
        denom = (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt()
    else:
        denom = x.std(-1, keepdim=True) + eps
    if variant == "no_center":
        return a * x / denom + b
    if variant == "no_affine":
        return (x - mean) / denom
    return a * (x - mean) / denom + b


_LN_MISTAKES = {
    "used the biased std (dividing by n): the annotated transformer uses x.std(-1), which divides by n - 1": "biased",
    "added eps to the variance inside the square root; here eps is added to the std: (x - mean) / (std + eps)": "eps_in_var",
    "used torch's nn.LayerNorm formula (biased variance, eps inside the square root); this one uses "
    "the unbiased std with eps added to it": "torch",
    "forgot to subtract the mean": "no_center",
    "forgot the learned gain a_2 and bias b_2": "no_affine",
}


def _ln_suspects(x, a, b, eps=1e-6):
    return {label: _ln(x, a, b, eps, variant) for label, variant in _LN_MISTAKES.items()}


def _ff(p, prefix, x):
    hidden = (x @ p[prefix + "w_1.weight"].T + p[prefix + "w_1.bias"]).relu()
    return hidden @ p[prefix + "w_2.weight"].T + p[prefix + "w_2.bias"]


def _mha(p, prefix, h, query, key, value, mask):
    B, d_model = query.size(0), query.size(-1)
    d_k = d_model // h

    def lin(i, x):
        return x @ p[f"{prefix}linears.{i}.weight"].T + p[f"{prefix}linears.{i}.bias"]

    q, k, v = (lin(i, x).reshape(B, -1, h, d_k).transpose(1, 2) for i, x in enumerate((query, key, value)))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e9)
    x = scores.softmax(-1) @ v
    return lin(3, x.transpose(1, 2).reshape(B, -1, d_model))


def _double(sd):
    return {name: t.double() for name, t in sd.items()}


def _norm(p, i):
    return lambda y: _ln(y, p[f"sublayer.{i}.norm.a_2"], p[f"sublayer.{i}.norm.b_2"])


def _encoder_layer(sd, h, x, mask, variant="ok"):
    p, x = _double(sd), x.double()
    n0, n1 = _norm(p, 0), _norm(p, 1)
    if variant == "same_norm":
        n1 = n0
    attn_mask = None if variant == "no_mask" else mask

    def attn(y):
        return _mha(p, "self_attn.", h, y, y, y, attn_mask)

    def ff(y):
        return _ff(p, "feed_forward.", y)

    if variant == "post_norm":
        x = n0(x + attn(x))
        return n1(x + ff(x))
    if variant == "parallel":
        return x + attn(n0(x)) + ff(n1(x))
    x = x + attn(n0(x))
    return x + ff(n1(x))


_ENCODER_MISTAKES = {
    "normalised after the residual sum (post-norm): the annotated transformer is pre-norm, x + sublayer(norm(x))": "post_norm",
    "did not pass the mask to the self-attention": "no_mask",
    "applied both sublayers to the layer's input x instead of chaining them: the feed-forward sublayer "
    "takes the output of the attention sublayer": "parallel",
    "used sublayer[0] for both sublayers: self-attention goes through sublayer[0], the feed-forward "
    "network through sublayer[1]": "same_norm",
}


def _decoder_layer(sd, h, x, memory, src_mask, tgt_mask, variant="ok"):
    p, x, m = _double(sd), x.double(), memory.double()
    n0, n1, n2 = _norm(p, 0), _norm(p, 1), _norm(p, 2)
    self_mask = {"self_src_mask": src_mask, "no_tgt_mask": None}.get(variant, tgt_mask)
    cross_mask = {"cross_tgt_mask": tgt_mask, "no_src_mask": None}.get(variant, src_mask)
    cross_prefix = "self_attn." if variant == "self_attn_twice" else "src_attn."

    def self_attn(y):
        return _mha(p, "self_attn.", h, y, y, y, self_mask)

    def src_attn(y):
        if variant == "kv_from_x":
            return _mha(p, cross_prefix, h, y, y, y, cross_mask)
        if variant == "norm_memory":
            return _mha(p, cross_prefix, h, y, n1(m), n1(m), cross_mask)
        return _mha(p, cross_prefix, h, y, m, m, cross_mask)

    def ff(y):
        return _ff(p, "feed_forward.", y)

    if variant == "post_norm":
        x = n0(x + self_attn(x))
        x = n1(x + src_attn(x))
        return n2(x + ff(x))
    x = x + self_attn(n0(x))
    x = x + src_attn(n1(x))
    return x + ff(n2(x))


_DECODER_MISTAKES = {
    "used tgt_mask in the source attention; attention over the memory takes src_mask": "cross_tgt_mask",
    "used src_mask in the self-attention; the decoder's self-attention takes tgt_mask": "self_src_mask",
    "did not mask the self-attention: it needs tgt_mask, or positions see the future": "no_tgt_mask",
    "did not pass src_mask to the source attention": "no_src_mask",
    "took keys and values from x in the source attention; they come from the encoder's output, "
    "src_attn(x, memory, memory, src_mask)": "kv_from_x",
    "normalised the memory too; only x goes through the sublayer's norm, memory is used as it is": "norm_memory",
    "used self_attn for the source attention too; the second sublayer uses src_attn": "self_attn_twice",
    "normalised after the residual sum (post-norm): the annotated transformer is pre-norm, x + sublayer(norm(x))": "post_norm",
}


# --- positional_encoding -------------------------------------------------------------------


def _pe_table(d_model, max_len, variant="ok"):
    """The sinusoid table (max_len, d_model) in float64; `variant` reproduces known mistakes."""
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    if variant == "i_not_2i":
        two_i = two_i / 2
    if variant == "positive_exponent":
        angle = pos * 10000.0 ** (two_i / d_model)
    else:
        angle = pos / 10000.0 ** (two_i / d_model)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    if variant == "swapped":
        pe[:, 0::2], pe[:, 1::2] = angle.cos(), angle.sin()
    elif variant == "halves":
        pe[:, : d_model // 2], pe[:, d_model // 2:] = angle.sin(), angle.cos()
    elif variant == "column_index":
        odd = pos / 10000.0 ** ((two_i + 1) / d_model)
        pe[:, 0::2], pe[:, 1::2] = angle.sin(), odd.cos()
    else:
        pe[:, 0::2], pe[:, 1::2] = angle.sin(), angle.cos()
    return pe


_PE_MISTAKES = {
    "swapped sin and cos: sin goes to the even columns (0::2), cos to the odd ones (1::2)": "swapped",
    "used i instead of 2i in the exponent: the frequencies are 1 / 10000^(2i / d_model)": "i_not_2i",
    "put sin in the first half of the columns and cos in the second; they alternate, pe[:, 0::2] and pe[:, 1::2]": "halves",
    "gave the odd column its own exponent; columns 2i and 2i+1 share the frequency 1 / 10000^(2i / d_model)": "column_index",
    "multiplied the position by 10000^(2i / d_model) instead of dividing (a sign lost in the log-space exponent)": "positive_exponent",
}


def _pe_suspects(d_model, max_len):
    return {label: _pe_table(d_model, max_len, v).unsqueeze(0) for label, v in _PE_MISTAKES.items()}


@pytest.mark.exercise("positional_encoding")
@pytest.mark.points(2)
def test_pe_table_matches_sin_cos_formula(impl):
    d_model, max_len = 16, 60
    pe = impl.PositionalEncoding(d_model, 0.0, max_len=max_len)
    what = f"`PositionalEncoding({d_model}, 0.0, max_len={max_len}).pe`"
    expect_close(pe.pe, _pe_table(d_model, max_len).unsqueeze(0), what, atol=1e-4,
                 suspects=_pe_suspects(d_model, max_len),
                 hint="PE(pos, 2i) = sin(pos / 10000^(2i / d_model)), PE(pos, 2i+1) = cos(the same angle); "
                      "the buffer has shape (1, max_len, d_model).")


@pytest.mark.exercise("positional_encoding")
def test_pe_forward_adds_first_rows(impl):
    d_model, max_len = 16, 60
    g = _gen(10)
    x = torch.randn(2, 7, d_model, generator=g)
    pe = impl.PositionalEncoding(d_model, 0.0, max_len=max_len)
    table = _pe_table(d_model, max_len).unsqueeze(0)
    x64 = x.double()
    expect_close(
        pe(x), x64 + table[:, :7], "`PositionalEncoding(16, 0.0)(x)` for x of shape (2, 7, 16)", atol=1e-4,
        suspects={
            "returned the encoding without adding x": table[:, :7].expand(2, 7, d_model),
            "multiplied x by sqrt(d_model) here; that scaling belongs to Embeddings": x64 * math.sqrt(d_model) + table[:, :7],
            "added the last T rows of the table instead of the first T, pe[:, :x.size(1)]": x64 + table[:, -7:],
        },
        hint="Add the first T rows of the table, x + pe[:, :x.size(1)], then apply dropout.",
    )


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
    expected = reference(x)
    expect_close(pe.pe, reference.pe, f"{what}.pe", atol=2e-4, suspects=_pe_suspects(d_model, max_len))
    expect_close(pe(x), expected, f"{what}(x) for x of shape {tuple(x.shape)}", atol=2e-4)


# --- layer_norm ----------------------------------------------------------------------------


@pytest.mark.exercise("layer_norm")
@pytest.mark.points(2)
def test_layer_norm_matches_annotated_formula(impl):
    g = _gen(20)
    x = torch.randn(2, 3, 6, generator=g) * 2 + 1
    x[1, 2] = 1e-3 * torch.randn(6, generator=g)  # a tiny row: std ~ 1e-3, where eps matters
    ln = impl.LayerNorm(6)
    sd = _randomize(ln, g)
    expected, suspects = _ln(x, sd["a_2"], sd["b_2"]), _ln_suspects(x, sd["a_2"], sd["b_2"])
    expect_close(
        ln(x), expected, "`LayerNorm(6)(x)` with learned a_2 and b_2", rtol=1e-4, atol=1e-4, suspects=suspects,
        hint="Expected a_2 * (x - mean) / (std + eps) + b_2 over the last dimension, with x.std(-1) and eps = 1e-6.",
    )


@pytest.mark.exercise("layer_norm")
def test_layer_norm_hand_worked_with_large_eps(impl):
    # x = [1, 2, 3, 4]: mean 2.5, unbiased std sqrt(5/3) = 1.290994; with eps = 0.5 the
    # denominator is 1.790994, so the output is [-1.5, -0.5, 0.5, 1.5] / 1.790994.
    ln = impl.LayerNorm(4, eps=0.5)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    ones, zeros = torch.ones(4), torch.zeros(4)
    expect_close(
        ln(x), torch.tensor([[-0.837524, -0.279175, 0.279175, 0.837524]]), "`LayerNorm(4, eps=0.5)([[1, 2, 3, 4]])`",
        atol=2e-6, rtol=0,
        suspects={
            "ignored self.eps (here 0.5) and used a fixed small eps": _ln(x, ones, zeros, 1e-6),
            "ignored self.eps and used none": _ln(x, ones, zeros, 0.0),
            **_ln_suspects(x, ones, zeros, 0.5),
        },
        hint="(x - mean) / (std + eps) with the unbiased std sqrt(5/3) and eps = 0.5 gives [-0.8375, -0.2792, 0.2792, 0.8375].",
    )


@pytest.mark.exercise("layer_norm")
@pytest.mark.hidden
def test_layer_norm_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    features = _randint(g, 2, 33)
    eps = [1e-6, 1e-5, 0.1][_randint(g, 0, 3)]
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 6), features, generator=g) * 3
    ln = impl.LayerNorm(features, eps=eps)
    sd = _randomize(ln, g)
    reference = ref.LayerNorm(features, eps=eps)
    reference.load_state_dict(sd)
    with torch.no_grad():
        expected = reference(x)
    what = f"`LayerNorm({features}, eps={eps})(x)` for x of shape {tuple(x.shape)}"
    suspects = _ln_suspects(x, sd["a_2"], sd["b_2"], eps)
    expect_close(ln(x), expected, what, atol=1e-4, suspects=suspects)


# --- sublayer_connection -------------------------------------------------------------------


def _ff_handle(impl, g, size, d_ff):
    ff = impl.PositionwiseFeedForward(size, d_ff, dropout=0.0)
    sd = _randomize(ff, g)
    ff.eval()
    return ff, _double(sd)


@pytest.mark.exercise("sublayer_connection")
@pytest.mark.points(2)
def test_sublayer_connection_is_pre_norm_residual(impl):
    g = _gen(30)
    size = 8
    ff, p = _ff_handle(impl, g, size, 16)
    sc = impl.SublayerConnection(size, 0.0)
    n = _double(_randomize(sc, g))
    x = torch.randn(2, 5, size, generator=g)
    x64 = x.double()

    def norm(y):
        return _ln(y, n["norm.a_2"], n["norm.b_2"])

    def sub(y):
        return _ff(p, "", y)

    expected = x64 + sub(norm(x64))
    suspects = {
            "normalised after the residual sum, norm(x + sublayer(x)) (post-norm); this one is pre-norm, "
            "x + sublayer(norm(x))": norm(x64 + sub(x64)),
            "normalised the sublayer's output, x + norm(sublayer(x)); normalise its input": x64 + norm(sub(x64)),
            "forgot the residual connection: add x back, x + sublayer(norm(x))": sub(norm(x64)),
            "forgot the norm: x + sublayer(norm(x))": x64 + sub(x64),
            "added the normalised x back instead of x itself: the residual path carries x unchanged": norm(x64) + sub(norm(x64)),
    }
    expect_close(sc(x, ff), expected, "`SublayerConnection(8, 0.0)(x, feed_forward)`", atol=1e-4, suspects=suspects,
                 hint="Expected x + dropout(sublayer(norm(x))).")


@pytest.mark.exercise("sublayer_connection")
def test_sublayer_dropout_only_on_sublayer_branch(impl):
    g = _gen(31)
    size = 8
    ff, p = _ff_handle(impl, g, size, 16)
    sc = impl.SublayerConnection(size, 0.5)  # a fresh module is in training mode: dropout is active
    n = _double(_randomize(sc, g))
    x = torch.randn(4, 5, size, generator=g)
    x64 = x.double()
    branch = _ff(p, "", _ln(x64, n["norm.a_2"], n["norm.b_2"]))
    out = expect_shape(sc(x, ff), x.shape, "`SublayerConnection(8, 0.5)(x, feed_forward)` in training mode").double()
    delta = out - x64

    def either(value, zero_or):
        return ((value.abs() < 1e-4) | ((value - zero_or).abs() < 1e-4)).all()

    if either(delta, 2 * branch):
        if (delta.abs() < 1e-4).all() or ((delta - 2 * branch).abs() < 1e-4).all():
            fail("`SublayerConnection(8, 0.5)` in training mode: no element was dropped (or all were); "
                 "apply self.dropout to the sublayer's output, x + self.dropout(sublayer(self.norm(x))).")
        return
    if either(out, 2 * (x64 + branch)):
        fail("`SublayerConnection(8, 0.5)` in training mode zeroes whole outputs: you applied dropout to the residual "
             "sum, dropout(x + sublayer(norm(x))). Dropout belongs on the sublayer's branch only, so the residual "
             "path carries x unchanged: x + dropout(sublayer(norm(x))).")
    if ((delta - branch).abs() < 1e-4).all():
        fail("`SublayerConnection(8, 0.5)` in training mode: nothing was dropped; apply self.dropout to the "
             "sublayer's output, x + self.dropout(sublayer(self.norm(x))).")
    fail("`SublayerConnection(8, 0.5)` in training mode: with dropout p = 0.5 every entry of out - x should be either 0 "
         "(dropped) or 2 * sublayer(norm(x)) (kept and scaled by 1 / (1 - p)); yours is neither. "
         "Expected x + dropout(sublayer(norm(x))).")


@pytest.mark.exercise("sublayer_connection")
@pytest.mark.hidden
def test_sublayer_connection_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    size, d_ff = _randint(g, 2, 17), _randint(g, 2, 33)
    ff, p = _ff_handle(impl, g, size, d_ff)
    sc = impl.SublayerConnection(size, 0.0)
    sd = _randomize(sc, g)
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 7), size, generator=g)
    ref_ff = ref.PositionwiseFeedForward(size, d_ff, 0.0)
    ref_ff.load_state_dict({name: t.float() for name, t in p.items()})
    ref_sc = ref.SublayerConnection(size, 0.0)
    ref_sc.load_state_dict(sd)
    with torch.no_grad():
        expected = ref_sc(x, ref_ff)
    n = _double(sd)
    x64 = x.double()

    def norm(y):
        return _ln(y, n["norm.a_2"], n["norm.b_2"])

    suspects = {"normalised after the residual sum, norm(x + sublayer(x)) (post-norm); this one is pre-norm, "
                "x + sublayer(norm(x))": norm(x64 + _ff(p, "", x64))}
    expect_close(sc(x, ff), expected, f"`SublayerConnection({size}, 0.0)(x, feed_forward)` for x of shape {tuple(x.shape)}",
                 atol=1e-4, suspects=suspects)


# --- encoder_decoder_layers ----------------------------------------------------------------


def _encoder_handle(impl, g, size, h, d_ff):
    layer = impl.EncoderLayer(size, impl.MultiHeadedAttention(h, size, dropout=0.0),
                              impl.PositionwiseFeedForward(size, d_ff, dropout=0.0), 0.0)
    sd = _randomize(layer, g)
    layer.eval()
    return layer, sd


def _decoder_handle(impl, g, size, h, d_ff):
    layer = impl.DecoderLayer(size, impl.MultiHeadedAttention(h, size, dropout=0.0),
                              impl.MultiHeadedAttention(h, size, dropout=0.0),
                              impl.PositionwiseFeedForward(size, d_ff, dropout=0.0), 0.0)
    sd = _randomize(layer, g)
    layer.eval()
    return layer, sd


def _padding_mask(lengths, T):
    return (torch.arange(T) < torch.as_tensor(lengths)[:, None]).unsqueeze(1)  # (B, 1, T)


@pytest.mark.exercise("encoder_decoder_layers")
@pytest.mark.points(2)
def test_encoder_layer_matches_formula(impl):
    g = _gen(40)
    size, h, B, T = 8, 2, 2, 5
    layer, sd = _encoder_handle(impl, g, size, h, 16)
    x = torch.randn(B, T, size, generator=g)
    mask = _padding_mask([5, 3], T)
    expected = _encoder_layer(sd, h, x, mask)
    suspects = {label: _encoder_layer(sd, h, x, mask, v) for label, v in _ENCODER_MISTAKES.items()}
    expect_close(
        layer(x, mask), expected, "`EncoderLayer(8, ...)(x, mask)` with a padding mask", atol=1e-4, suspects=suspects,
        hint="Expected x = sublayer[0](x, lambda x: self_attn(x, x, x, mask)), then sublayer[1](x, feed_forward).",
    )


@pytest.mark.exercise("encoder_decoder_layers")
@pytest.mark.points(2)
def test_decoder_layer_matches_formula(impl):
    g = _gen(41)
    size, h, B, T = 8, 2, 2, 5  # source and target of the same length, so every mix-up of masks still runs
    layer, sd = _decoder_handle(impl, g, size, h, 16)
    x = torch.randn(B, T, size, generator=g)
    memory = torch.randn(B, T, size, generator=g)
    src_mask = _padding_mask([5, 3], T)
    tgt_mask = _padding_mask([5, 4], T) & torch.ones(1, T, T).tril().bool()  # (B, T, T)
    expected = _decoder_layer(sd, h, x, memory, src_mask, tgt_mask)
    suspects = {label: _decoder_layer(sd, h, x, memory, src_mask, tgt_mask, v) for label, v in _DECODER_MISTAKES.items()}
    expect_close(
        layer(x, memory, src_mask, tgt_mask), expected, "`DecoderLayer(8, ...)(x, memory, src_mask, tgt_mask)`",
        atol=1e-4, suspects=suspects,
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

    enc, enc_sd = _encoder_handle(impl, g, size, h, d_ff)
    ref_enc = ref.EncoderLayer(size, ref.MultiHeadedAttention(h, size, 0.0), ref.PositionwiseFeedForward(size, d_ff, 0.0), 0.0)
    ref_enc.load_state_dict(enc_sd)
    ref_enc.eval()
    with torch.no_grad():
        memory = ref_enc(x_src, src_mask)
    suspects = {label: _encoder_layer(enc_sd, h, x_src, src_mask, v) for label, v in _ENCODER_MISTAKES.items()}
    expect_close(enc(x_src, src_mask), memory, f"`EncoderLayer({size}, ...)(x, mask)`, h={h}, x {tuple(x_src.shape)}",
                 atol=1e-4, suspects=suspects)

    dec, dec_sd = _decoder_handle(impl, g, size, h, d_ff)
    ref_dec = ref.DecoderLayer(size, ref.MultiHeadedAttention(h, size, 0.0), ref.MultiHeadedAttention(h, size, 0.0),
                               ref.PositionwiseFeedForward(size, d_ff, 0.0), 0.0)
    ref_dec.load_state_dict(dec_sd)
    ref_dec.eval()
    with torch.no_grad():
        expected = ref_dec(x_tgt, memory, src_mask, tgt_mask)
    suspects = {}
    for label, v in _DECODER_MISTAKES.items():
        try:
            suspects[label] = _decoder_layer(dec_sd, h, x_tgt, memory, src_mask, tgt_mask, v)
        except RuntimeError:  # this mistake would not even run when T_src != T_tgt
            pass
    expect_close(dec(x_tgt, memory, src_mask, tgt_mask), expected,
                 f"`DecoderLayer({size}, ...)(x, memory, src_mask, tgt_mask)`, h={h}, T_tgt={T_tgt}, T_src={T_src}",
                 atol=1e-4, suspects=suspects)
