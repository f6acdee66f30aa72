"""Checks for the LLaMA model: the pre-norm block, the whole Transformer with its key/value
cache, greedy generation, and the parameter count.

Visible checks give the learner's modules weights chosen here (through load_state_dict) and
compare with a LLaMA written out below in float64 (einsum attention, real 2x2 rotations);
the cache is checked by feeding a sequence in chunks and comparing with one full pass, and
its cost by counting the positions that enter attention at every decoding step (a forward
pre-hook, in helpers.py). Hidden checks draw sizes, weights and chunks from the run's seed and
compare with the reference solution, here in the grader.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from grader.checking import expect_close, expect_equal, expect_shape, expect_tensor, fail


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


# A tiny LLaMA: head_dim 8, SwiGLU hidden width int(2 * 4 * 32 / 3) = 85 rounded up to 96.
CFG = dict(dim=32, n_layers=2, n_heads=4, vocab_size=50, multiple_of=16, norm_eps=1e-5, max_batch_size=4, max_seq_len=32)

_FIX_LAYERS_FIRST = " (If the rms_norm, rotary or swiglu checks fail, fix those first: the model is built from them.)"


def _hidden(cfg):
    hidden = int(2 * 4 * cfg["dim"] / 3)
    if cfg.get("ffn_dim_multiplier") is not None:
        hidden = int(cfg["ffn_dim_multiplier"] * hidden)
    m = cfg["multiple_of"]
    return m * ((hidden + m - 1) // m)


def _block_shapes(cfg, prefix=""):
    d, h = cfg["dim"], _hidden(cfg)
    shapes = {f"attention.{w}.weight": (d, d) for w in ("wq", "wk", "wv", "wo")}
    shapes.update({"feed_forward.w1.weight": (h, d), "feed_forward.w2.weight": (d, h), "feed_forward.w3.weight": (h, d),
                   "attention_norm.weight": (d,), "ffn_norm.weight": (d,)})
    return {prefix + name: shape for name, shape in shapes.items()}


def _model_shapes(cfg):
    shapes = {"tok_embeddings.weight": (cfg["vocab_size"], cfg["dim"])}
    for i in range(cfg["n_layers"]):
        shapes.update(_block_shapes(cfg, f"layers.{i}."))
    shapes.update({"norm.weight": (cfg["dim"],), "output.weight": (cfg["vocab_size"], cfg["dim"])})
    return shapes


def _random_weights(shapes, g):
    """Weights for Meta's parameter names: norms near 1, embeddings N(0, 1), matrices N(0, 1/fan_in)."""
    sd = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            sd[name] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif name == "tok_embeddings.weight":
            sd[name] = torch.randn(shape, generator=g)
        else:
            sd[name] = torch.randn(shape, generator=g) / math.sqrt(shape[1])
    return sd


def _load(handle, sd, what):
    """load_state_dict with a message that names the parameters when they do not fit."""
    have = {name: tuple(torch.as_tensor(t).shape) for name, t in handle.state_dict().items()}
    want = {name: tuple(t.shape) for name, t in sd.items()}
    if have != want:
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        wrong = sorted(n for n in set(want) & set(have) if want[n] != have[n])
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else []) + \
                ([f"wrong shapes for {[(n, have[n], want[n]) for n in wrong]} (yours, expected)"] if wrong else [])
        biases = [n for n in extra if n.endswith("bias")]
        fail(f"{what}: its parameters do not match Meta's LLaMA: {'; '.join(parts)}."
             + (" LLaMA has no biases: nn.Linear(..., bias=False)." if biases else ""))
    handle.load_state_dict(sd)
    return handle


def _learner_model(impl, cfg, sd):
    model = impl.Transformer(impl.ModelArgs(**cfg))
    return _load(model, sd, f"`Transformer(ModelArgs({_args_text(cfg)}))`")


def _args_text(cfg):
    return ", ".join(f"{k}={v}" for k, v in cfg.items())


# --- LLaMA written out in float64 -------------------------------------------------------------


def _rms(x, w, eps):
    return x * (x.pow(2).mean(-1, keepdim=True) + eps).rsqrt() * w


def _angles(positions, head_dim):
    freqs = 10000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    return torch.as_tensor(positions, dtype=torch.float64)[:, None] * freqs  # (T, D/2)


def _rotate(x, angles, layout="pairs"):
    """(B, T, H, D) vectors, pair j of position t turned by angles[t, j] (real arithmetic)."""
    cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
    if layout == "pairs":  # Meta: features (2j, 2j + 1)
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    if layout == "halves":  # Hugging Face's rotate_half: features (j, j + D/2)
        half = x.size(-1) // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return x


def _attention(p, pre, x, n_heads, angles, allowed, layout="pairs"):
    B, T, dim = x.shape
    D = dim // n_heads

    def heads(name):
        return (x @ p[f"{pre}attention.{name}.weight"].T).view(B, T, n_heads, D)

    q, k, v = _rotate(heads("wq"), angles, layout), _rotate(heads("wk"), angles, layout), heads("wv")
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(D)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    out = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(B, T, dim)
    return out @ p[f"{pre}attention.wo.weight"].T


def _swiglu(p, pre, x):
    f = lambda name: x @ p[f"{pre}feed_forward.{name}.weight"].T  # noqa: E731
    return (F.silu(f("w1")) * f("w3")) @ p[f"{pre}feed_forward.w2.weight"].T


def _block(p, pre, x, cfg, angles, allowed, variant="ok"):
    """One LLaMA block in float64; `variant` reproduces known mistakes."""
    eps, H = cfg["norm_eps"], cfg["n_heads"]
    layout = {"halves": "halves", "no_rope": "none"}.get(variant, "pairs")
    n1 = lambda y: _rms(y, p[f"{pre}attention_norm.weight"], eps)  # noqa: E731
    n2 = lambda y: _rms(y, p[f"{pre}ffn_norm.weight"], eps)  # noqa: E731
    attn = lambda y: _attention(p, pre, y, H, angles, allowed, layout)  # noqa: E731
    ff = lambda y: _swiglu(p, pre, y)  # noqa: E731
    if variant == "post_norm":
        h = n1(x + attn(x))
        return n2(h + ff(h))
    if variant == "parallel":
        return x + attn(n1(x)) + ff(n2(x))
    if variant == "same_norm":
        h = x + attn(n1(x))
        return h + ff(n1(h))
    if variant == "no_ffn_residual":
        return ff(n2(x + attn(n1(x))))
    h = x + attn(n1(x))
    return h + ff(n2(h))


def _forward(p, cfg, tokens, positions=None, allowed=None, variant="ok"):
    """Logits (B, T, vocab) of a full pass in float64. positions: the rotary position of each
    token (default 0..T-1); allowed: (T, T) bool, which keys each query sees (default causal)."""
    p = {name: t.double() for name, t in p.items()}
    T = tokens.size(1)
    positions = torch.arange(T) if positions is None else positions
    if allowed is None and variant != "no_mask":
        allowed = torch.ones(T, T, dtype=torch.bool).tril()
    angles = _angles(positions, cfg["dim"] // cfg["n_heads"])
    h = p["tok_embeddings.weight"][tokens]
    for i in range(cfg["n_layers"]):
        h = _block(p, f"layers.{i}.", h, cfg, angles, allowed, variant)
    if variant != "no_final_norm":
        h = _rms(h, p["norm.weight"], cfg["norm_eps"])
    return h @ p["output.weight"].T


_FORWARD_MISTAKES = {
    "left out the causal mask: with T > 1 new positions, a query at position i may only see keys 0..i "
    "(-inf above the diagonal, torch.triu(..., diagonal=start_pos + 1))": "no_mask",
    "forgot the final RMSNorm before the output head, h = self.norm(h)": "no_final_norm",
    "normalised after the residual sums (post-norm); LLaMA is pre-norm, h = x + attention(attention_norm(x))": "post_norm",
    "rotated with Hugging Face's rotate_half layout (feature j with j + D/2); Meta pairs adjacent features": "halves",
    "did not apply the rotary embeddings to the queries and keys": "no_rope",
}


def _chunk_variants(T, chunks):
    """(positions, allowed) over the full sequence that reproduce known cache mistakes when the
    sequence goes through the model in `chunks` (lengths) with start_pos = tokens before."""
    starts = [sum(chunks[:i]) for i in range(len(chunks))]
    chunk_of = torch.tensor([c for c, n in enumerate(chunks) for _ in range(n)])
    local = torch.tensor([t - starts[c] for t, c in enumerate(chunk_of.tolist())])
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    key = torch.arange(T)[None, :]
    same_chunk = chunk_of[:, None] == chunk_of[None, :]
    no_offset = torch.where(torch.tensor([chunks[c] > 1 for c in chunk_of.tolist()])[:, None],
                            key <= local[:, None], causal)
    return {
        "did not use the cache: each call attends only to its own new positions; write xk, xv into cache_k, "
        "cache_v at start_pos and attend over cache[:B, :start_pos + T]": (None, causal & same_chunk),
        "restarted the rotary positions at 0 in every call; the new tokens sit at start_pos .. start_pos + T - 1, "
        "so take freqs_cis[start_pos : start_pos + T]": (local, causal),
        "built the causal mask without the start_pos offset: with a cache the mask is (T, start_pos + T) and "
        "the query at position start_pos + i sees keys 0 .. start_pos + i, torch.triu(..., diagonal=start_pos + 1)":
            (None, no_offset),
    }


def _chunked_suspects(p, cfg, tokens, chunks):
    T = tokens.size(1)
    suspects = {}
    for label, (positions, allowed) in _chunk_variants(T, chunks).items():
        suspects[label] = _forward(p, cfg, tokens, positions=positions, allowed=allowed)
    return suspects


def _run_chunks(model, tokens, chunks, vocab):
    """Feed tokens to the learner's model in chunks (start_pos = tokens already fed); (B, T, vocab)."""
    outs, start = [], 0
    for n in chunks:
        what = f"`model(tokens[:, {start}:{start + n}], start_pos={start})`"
        outs.append(expect_shape(model(tokens[:, start:start + n], start_pos=start), (tokens.size(0), n, vocab),
                                 what, hint="forward returns the logits of every new position, (B, T, vocab_size)."))
        start += n
    return torch.cat(outs, dim=1)


# --- transformer ---------------------------------------------------------------------------------


@pytest.mark.exercise("transformer")
@pytest.mark.points(2)
def test_block_is_pre_norm(impl):
    g = _gen(10)
    T = 6
    block = impl.TransformerBlock(0, impl.ModelArgs(**CFG))
    p = _random_weights(_block_shapes(CFG), g)
    _load(block, p, "`TransformerBlock(0, args)`")
    x = torch.randn(2, T, CFG["dim"], generator=g)
    angles = _angles(torch.arange(T), CFG["dim"] // CFG["n_heads"])
    freqs_cis = torch.polar(torch.ones_like(angles), angles).to(torch.complex64)
    mask = torch.full((T, T), float("-inf")).triu(1)  # additive causal mask, as Transformer.forward makes it
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    p64, x64 = {k: v.double() for k, v in p.items()}, x.double()
    suspects = {
        "normalised after the residual sums (post-norm); LLaMA is pre-norm: h = x + attention(attention_norm(x)), "
        "out = h + feed_forward(ffn_norm(h))": _block(p64, "", x64, CFG, angles, allowed, "post_norm"),
        "fed x, not h = x + attention(...), to the feed-forward network: the sublayers run one after the other":
            _block(p64, "", x64, CFG, angles, allowed, "parallel"),
        "used attention_norm twice; the feed-forward network takes ffn_norm(h)": _block(p64, "", x64, CFG, angles, allowed, "same_norm"),
        "forgot the residual around the feed-forward network: out = h + feed_forward(ffn_norm(h))":
            _block(p64, "", x64, CFG, angles, allowed, "no_ffn_residual"),
        "ignored the mask in the attention: add it to the scores before the softmax": _block(p64, "", x64, CFG, angles, None),
        "rotated with Hugging Face's rotate_half layout (feature j with j + D/2); Meta pairs adjacent features":
            _block(p64, "", x64, CFG, angles, allowed, "halves"),
    }
    expect_close(block(x, 0, freqs_cis, mask), _block(p64, "", x64, CFG, angles, allowed),
                 "`TransformerBlock(0, args)(x, 0, freqs_cis, mask)` for x of shape (2, 6, 32)", atol=1e-4,
                 suspects=suspects,
                 hint="Expected h = x + attention(attention_norm(x), start_pos, freqs_cis, mask), then "
                      "h + feed_forward(ffn_norm(h))." + _FIX_LAYERS_FIRST)


@pytest.mark.exercise("transformer")
@pytest.mark.points(2)
def test_forward_matches_llama_written_out(impl):
    g = _gen(11)
    p = _random_weights(_model_shapes(CFG), g)
    model = _learner_model(impl, CFG, p)
    tokens = torch.randint(0, CFG["vocab_size"], (2, 7), generator=g)
    expected = _forward(p, CFG, tokens)
    suspects = {label: _forward(p, CFG, tokens, variant=v) for label, v in _FORWARD_MISTAKES.items()}
    expect_close(model(tokens, start_pos=0), expected, "`Transformer(args)(tokens, start_pos=0)` logits for 2 x 7 tokens",
                 atol=1e-4, suspects=suspects,
                 hint="Embed, run every block with freqs_cis[start_pos : start_pos + T] and the causal mask, apply the "
                      "final norm and the output head; return float logits (B, T, vocab_size)." + _FIX_LAYERS_FIRST)


@pytest.mark.exercise("transformer")
@pytest.mark.points(2)
def test_cached_chunks_match_one_full_pass(impl):
    # The same 8 tokens in one pass, and in chunks of 3, 1, 2, 2 (start_pos 0, 3, 4, 6): every
    # chunk after the first must take the earlier positions from the cache.
    g = _gen(12)
    p = _random_weights(_model_shapes(CFG), g)
    tokens = torch.randint(0, CFG["vocab_size"], (2, 8), generator=g)
    chunks = [3, 1, 2, 2]
    expected = _forward(p, CFG, tokens)
    model = _learner_model(impl, CFG, p)
    got = _run_chunks(model, tokens, chunks, CFG["vocab_size"])
    expect_close(got, expected, "logits of 2 x 8 tokens fed in chunks of 3, 1, 2, 2 (start_pos 0, 3, 4, 6), "
                 "compared with one full pass", atol=1e-4, suspects=_chunked_suspects(p, CFG, tokens, chunks),
                 hint="Each call writes its keys and values into the cache at start_pos and attends over "
                      "cache[:B, :start_pos + T]; its rotary positions are start_pos .. start_pos + T - 1, and the "
                      "mask (T, start_pos + T) hides only the keys after each query.")


def _random_cfg(g):
    n_heads = _randint(g, 1, 5)
    head_dim = 2 * _randint(g, 1, 7)
    return dict(dim=n_heads * head_dim, n_layers=_randint(g, 1, 4), n_heads=n_heads, vocab_size=_randint(g, 10, 70),
                multiple_of=[4, 8, 16, 32][_randint(g, 0, 4)], ffn_dim_multiplier=[None, 1.3][_randint(g, 0, 2)],
                norm_eps=[1e-5, 1e-6, 0.01][_randint(g, 0, 3)], max_batch_size=_randint(g, 3, 6),
                max_seq_len=_randint(g, 16, 40))


def _random_chunks(g, T):
    chunks, left = [], T
    while left:
        chunks.append(min(left, _randint(g, 1, 5)))
        left -= chunks[-1]
    return chunks


def _ref_model(ref, cfg, sd):
    model = ref.Transformer(ref.ModelArgs(**cfg))
    model.load_state_dict(sd)
    return model.eval()


@pytest.mark.exercise("transformer")
@pytest.mark.hidden
@pytest.mark.points(2)
def test_transformer_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    cfg = _random_cfg(g)
    p = _random_weights(_model_shapes(cfg), g)
    B, T = _randint(g, 1, cfg["max_batch_size"] + 1), _randint(g, 2, 14)
    tokens = torch.randint(0, cfg["vocab_size"], (B, T), generator=g)
    chunks = _random_chunks(g, T)
    reference = _ref_model(ref, cfg, p)
    expected = reference(tokens, start_pos=0).clone()
    model = _learner_model(impl, cfg, p)
    what = f"`Transformer(ModelArgs({_args_text(cfg)}))`"
    expect_close(model(tokens, start_pos=0), expected, f"{what}(tokens, start_pos=0) for {B} x {T} tokens", atol=1e-4,
                 suspects={label: _forward(p, cfg, tokens, variant=v) for label, v in _FORWARD_MISTAKES.items()})
    fresh = _learner_model(impl, cfg, p)
    expect_close(_run_chunks(fresh, tokens, chunks, cfg["vocab_size"]), expected, f"{what}: logits of {B} x {T} tokens fed in chunks of "
                 f"{chunks}, compared with one full pass", atol=1e-4, suspects=_chunked_suspects(p, cfg, tokens, chunks))


# --- generate ------------------------------------------------------------------------------------


def _expect_greedy(tokens, prompt, max_new_tokens, logits_of, what, own_without_cache=None):
    """`tokens` must be the prompt then, at every step, a most likely next token under `logits_of`
    (a function of the full token tensor -> (B, T, vocab) logits of one pass without a cache).
    own_without_cache: the learner's model decoded without the cache, to tell a wrong generate
    from a wrong model."""
    B, T0 = prompt.shape
    tokens = expect_shape(tokens, (B, T0 + max_new_tokens), what,
                          hint="generate returns the prompt followed by max_new_tokens new tokens.")
    if tokens.is_floating_point():
        fail(f"{what}: expected integer token ids, got dtype {tokens.dtype}.")
    tokens = tokens.long()
    if not torch.equal(tokens[:, :T0], prompt):
        fail(f"{what}: the first {T0} tokens must be the prompt {prompt.tolist()}, got {tokens[:, :T0].tolist()}.")
    if ((tokens < 0) | (tokens >= logits_of.vocab)).any():
        fail(f"{what}: token ids must lie in 0 .. {logits_of.vocab - 1}, got {tokens.tolist()}.")
    logits = logits_of(tokens)  # (B, T, vocab), one pass over what was generated
    for t in range(T0, T0 + max_new_tokens):
        step = logits[:, t - 1]  # the prediction for position t
        chosen = step.gather(1, tokens[:, t:t + 1]).squeeze(1)
        best = step.max(dim=-1)
        bad = (chosen < best.values - 1e-4).nonzero()
        if len(bad):
            b = int(bad[0])
            if own_without_cache is not None and torch.equal(tokens, own_without_cache.long()):
                advice = ("Your model decoded without the cache gives these same tokens, so generate is not the problem: "
                          "the model's predictions are. Fix the transformer checks first (and rms_norm, rotary, swiglu).")
            else:
                advice = ("Take the argmax of the last position's logits, feed that token alone at start_pos = its "
                          "position, and repeat.")
            fail(f"{what}: new token {t - T0 + 1} of sequence {b} is {int(tokens[b, t])}, but LLaMA decoding greedily "
                 f"without a cache (one full pass over the {t} tokens before it) gives {int(best.indices[b])}. "
                 f"Generated: {tokens[b].tolist()}. {advice}")
    return tokens


class _Float64Logits:
    def __init__(self, p, cfg):
        self.p, self.cfg, self.vocab = p, cfg, cfg["vocab_size"]

    def __call__(self, tokens):
        return _forward(self.p, self.cfg, tokens)


_PROMPT = torch.tensor([[3, 14, 15, 9, 2], [26, 5, 35, 8, 9]])
_NEW = 8


def _generate_report(helpers, seed_offset=0):
    g = _gen(20 + seed_offset)
    p = _random_weights(_model_shapes(CFG), g)
    return p, helpers.generate_report(CFG, p, _PROMPT, _NEW)


@pytest.mark.exercise("generate")
@pytest.mark.points(2)
def test_generate_with_cache_equals_decoding_without_it(helpers):
    p, report = _generate_report(helpers)
    what = f"`generate(model, prompt_tokens, {_NEW})` for a 2 x 5 prompt"
    without = expect_tensor(report["tokens_without_cache"], "greedy decoding of your model without the cache").long()
    tokens = _expect_greedy(report["tokens"], _PROMPT, _NEW, _Float64Logits(p, CFG), what, own_without_cache=without)
    if not torch.equal(tokens, without):
        fail(f"{what}: with the cache it produced {tokens.tolist()}, but your model decoding the same prompt without "
             f"the cache (a full pass every step) produces {without.tolist()}: the cached path is not equivalent.")


@pytest.mark.exercise("generate")
@pytest.mark.points(2)
def test_generate_processes_one_new_position_per_step(helpers):
    # Counted, not timed: a forward pre-hook on every layer's attention records how many
    # positions enter it (x.shape[1]) and at which start_pos, call by call.
    _, report = _generate_report(helpers, 1)
    T0 = _PROMPT.size(1)
    calls = report["calls"][0]  # the first layer; the others see the same calls
    seen = ", ".join(f"{n} at start_pos {s}" for n, s in calls)
    what = f"`generate(model, prompt_tokens, {_NEW})` with a {T0}-token prompt"
    if not calls:
        fail(f"{what}: the model's attention was never called; generate must run the model, model(tokens, start_pos).")
    covered, prompt_calls = 0, 0  # the prompt may go in at once (best) or in pieces, in order
    while covered < T0 and prompt_calls < len(calls):
        n, start = calls[prompt_calls]
        if start != covered or n < 1 or covered + n > T0:
            fail(f"{what}: call {prompt_calls + 1} to attention got {n} positions at start_pos {start} while feeding the "
                 f"prompt; expected the prompt's positions 0..{T0 - 1} in order, best all at once at start_pos 0. "
                 f"(Attention calls: {seen}.)")
        covered, prompt_calls = covered + n, prompt_calls + 1
    if covered < T0:
        fail(f"{what}: the model saw only {covered} of the {T0} prompt positions. (Attention calls: {seen}.)")
    later = calls[prompt_calls:]
    if len(later) not in (_NEW - 1, _NEW):
        fail(f"{what}: after the prompt, attention ran {len(later)} times for {_NEW} new tokens; expected one call per "
             f"new token ({_NEW - 1}, as the last token needs no forward pass). (Attention calls: {seen}.)")
    for k, (n, start) in enumerate(later, start=1):
        if n != 1:
            fail(f"{what}: decoding step {k} sent {n} positions through attention (start_pos {start}), expected 1: "
                 "with a key/value cache only the new token goes through the model, "
                 "model(next_token, start_pos=its position), so a step costs the same however long the prefix is. "
                 f"(Attention calls: {seen}.)")
        if start != T0 + k - 1:
            fail(f"{what}: decoding step {k} passed start_pos {start}, expected {T0 + k - 1}, the position of the token "
                 f"it feeds (the prompt holds positions 0..{T0 - 1}). (Attention calls: {seen}.)")


@pytest.mark.exercise("generate")
@pytest.mark.hidden
@pytest.mark.points(2)
def test_generate_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    cfg = _random_cfg(g)
    p = _random_weights(_model_shapes(cfg), g)
    B, T0 = _randint(g, 1, cfg["max_batch_size"] + 1), _randint(g, 1, 7)
    N = _randint(g, 1, min(10, cfg["max_seq_len"] - T0) + 1)
    prompt = torch.randint(0, cfg["vocab_size"], (B, T0), generator=g)
    reference = _ref_model(ref, cfg, p)

    class RefLogits:
        vocab = cfg["vocab_size"]

        def __call__(self, tokens):
            return reference(tokens, start_pos=0).clone()

    model = _learner_model(impl, cfg, p)
    _expect_greedy(impl.generate(model, prompt, N), prompt, N, RefLogits(),
                   f"`generate(model, prompt_tokens, {N})` for a {B} x {T0} prompt, model "
                   f"ModelArgs({_args_text(cfg)})")


# --- parameter_count -----------------------------------------------------------------------------

# Exact sizes of the four LLaMA models (vocabulary 32000), counted by hand from Meta's layers:
# 2 * vocab * dim + n_layers * (4 dim^2 + 3 dim * hidden + 2 dim) + dim. Table 2 prints them
# truncated to 0.1B: 6.7B, 13.0B, 32.5B, 65.2B (65.29B is printed as 65.2B).
_TABLE2 = {
    "6.7B": (dict(dim=4096, n_heads=32, n_layers=32), 11008, 6_738_415_616),
    "13.0B": (dict(dim=5120, n_heads=40, n_layers=40), 13824, 13_015_864_320),
    "32.5B": (dict(dim=6656, n_heads=52, n_layers=60), 17920, 32_528_943_616),
    "65.2B": (dict(dim=8192, n_heads=64, n_layers=80), 22016, 65_285_660_672),
}


def _count_suspects(cfg, hidden, vocab, hidden_without_multiplier=None):
    d, L, V = cfg["dim"], cfg["n_layers"], vocab

    def total(per_layer_extra=0, head=V * d, final=d, ffn=hidden, layer_norms=2 * d):
        return V * d + head + final + L * (4 * d * d + 3 * d * ffn + layer_norms + per_layer_extra)

    return {
        "tied the output head to the embeddings; LLaMA's head is a separate vocab_size x dim matrix": total(head=0),
        "forgot the final RMSNorm (dim weights)": total(final=0),
        "forgot the two RMSNorm weights of every layer": total(layer_norms=0),
        "forgot every RMSNorm weight": total(final=0, layer_norms=0),
        "used 4 * dim as the feed-forward width; it is ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier)": total(ffn=4 * d),
        "used int(2 * 4 * dim / 3) without rounding up to multiple_of: use ffn_hidden_dim": total(ffn=int(8 * d / 3)),
        "counted two feed-forward matrices; SwiGLU has three (w1, w2, w3)": total(per_layer_extra=-d * hidden),
        "counted biases; LLaMA has none": total(per_layer_extra=4 * d + 2 * hidden + d) + V,
        "forgot the embeddings": total() - V * d,
        **({"ignored ffn_dim_multiplier: pass it on to ffn_hidden_dim": total(ffn=hidden_without_multiplier)}
           if hidden_without_multiplier not in (None, hidden) else {}),
    }


def _expect_count(got, expected, what, suspects):
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int, the exact number of parameters, got {type(got).__name__} {got!r}.")
    if got == expected:
        return
    for label, value in suspects.items():
        if got == value:
            fail(f"{what}: expected {expected:,}, got {got:,}. Your result matches what you get if you {label}.")
    fail(f"{what}: expected {expected:,}, got {got:,} (off by {got - expected:+,}). Count the embeddings and the untied "
         "head, 4 attention and 3 feed-forward matrices plus 2 norm weights per layer, and the final norm.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.points(2)
def test_parameter_count_of_table2_models(impl):
    for name, (cfg, hidden, expected) in _TABLE2.items():
        what = f"`llama_parameter_count(ModelArgs({_args_text(cfg)}, vocab_size=32000))` (LLaMA {name})"
        got = impl.llama_parameter_count(impl.ModelArgs(vocab_size=32000, **cfg))
        _expect_count(got, expected, what, _count_suspects(cfg, hidden, 32000))


@pytest.mark.exercise("parameter_count")
def test_parameter_count_matches_a_tiny_model(impl):
    for cfg in (CFG, dict(CFG, dim=40, n_heads=5, vocab_size=37, ffn_dim_multiplier=1.3, n_layers=3)):
        args = impl.ModelArgs(**cfg)
        model = impl.Transformer(args)
        actual = sum(expect_tensor(t, "a parameter of your Transformer").numel() for t in model.parameters())
        what = f"`llama_parameter_count(ModelArgs({_args_text(cfg)}))`"
        _expect_count(impl.llama_parameter_count(args), actual, what + f", compared with the {actual:,} parameters of "
                      "Transformer(args)", _count_suspects(cfg, _hidden(cfg), cfg["vocab_size"],
                                                            _hidden(dict(cfg, ffn_dim_multiplier=None))))


@pytest.mark.exercise("parameter_count")
@pytest.mark.hidden
def test_parameter_count_random_args_match_reference(impl, ref, seed):
    g = _gen(seed)
    for _ in range(4):
        n_heads = _randint(g, 1, 65)
        cfg = dict(dim=n_heads * 2 * _randint(g, 1, 129), n_layers=_randint(g, 1, 97), n_heads=n_heads,
                   vocab_size=_randint(g, 2, 260000), multiple_of=[1, 16, 64, 256, 1024, 4096][_randint(g, 0, 6)],
                   ffn_dim_multiplier=[None, None, 1.3, 1.5][_randint(g, 0, 4)])
        expected = ref.llama_parameter_count(ref.ModelArgs(**cfg))
        got = impl.llama_parameter_count(impl.ModelArgs(**cfg))
        _expect_count(got, expected, f"`llama_parameter_count(ModelArgs({_args_text(cfg)}))`",
                      _count_suspects(cfg, ref.ffn_hidden_dim(cfg["dim"], cfg["multiple_of"], cfg["ffn_dim_multiplier"]),
                                      cfg["vocab_size"]))
