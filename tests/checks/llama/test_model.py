"""Checks for the LLaMA model: the pre-norm block, the whole Transformer with its key/value
cache, greedy generation, and the parameter count.

Visible checks give the learner's modules weights chosen here (through load_state_dict) and
compare with the answers recorded from the reference solution on the same weights and inputs
(tests/checks/llama/recorded.json); a wrong answer is named after the known mistake it matches.
The cache is checked by feeding a sequence in chunks and comparing with one full pass, and its
cost by counting the positions that enter attention at every decoding step (a forward pre-hook,
in helpers.py). The parameter counts are those of the paper's Table 2.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

# A tiny LLaMA: head_dim 8, SwiGLU hidden width int(2 * 4 * 32 / 3) = 85 rounded up to 96.
CFG = dict(dim=32, n_layers=2, n_heads=4, vocab_size=50, multiple_of=16, norm_eps=1e-5, max_batch_size=4, max_seq_len=32)
CFG_HIDDEN = 96

_FIX_LAYERS_FIRST = " (If the rms_norm, rotary or swiglu checks fail, fix those first: the model is built from them.)"


def _block_shapes(cfg, hidden, prefix=""):
    d = cfg["dim"]
    shapes = {f"attention.{w}.weight": (d, d) for w in ("wq", "wk", "wv", "wo")}
    shapes.update({"feed_forward.w1.weight": (hidden, d), "feed_forward.w2.weight": (d, hidden),
                   "feed_forward.w3.weight": (hidden, d), "attention_norm.weight": (d,), "ffn_norm.weight": (d,)})
    return {prefix + name: shape for name, shape in shapes.items()}


def _model_shapes(cfg, hidden):
    shapes = {"tok_embeddings.weight": (cfg["vocab_size"], cfg["dim"])}
    for i in range(cfg["n_layers"]):
        shapes.update(_block_shapes(cfg, hidden, f"layers.{i}."))
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


def _args_text(cfg):
    return ", ".join(f"{k}={v}" for k, v in cfg.items())


def _learner_model(impl, cfg, sd):
    model = impl.Transformer(impl.ModelArgs(**cfg))
    return _load(model, sd, f"`Transformer(ModelArgs({_args_text(cfg)}))`")


def _model(module, cfg, sd):
    """Transformer(ModelArgs(**cfg)) of `recorded` or `ref`, holding `sd`."""
    model = module.Transformer(module.ModelArgs(**cfg))
    model.load_state_dict(sd)
    return model


# --- transformer ---------------------------------------------------------------------------------


@pytest.mark.exercise("transformer")
@pytest.mark.points(2)
def test_block_is_pre_norm(impl, recorded):
    g = _gen(10)
    T = 6
    p = _random_weights(_block_shapes(CFG, CFG_HIDDEN), g)
    x = torch.randn(2, T, CFG["dim"], generator=g)
    freqs_cis = recorded.precompute_freqs_cis(CFG["dim"] // CFG["n_heads"], T)  # the reference's rotations
    mask = torch.full((T, T), float("-inf")).triu(1)  # additive causal mask, as Transformer.forward makes it
    known = recorded.TransformerBlock(0, recorded.ModelArgs(**CFG))
    known.load_state_dict(p)
    expected = known(x, 0, freqs_cis, mask)
    block = _load(impl.TransformerBlock(0, impl.ModelArgs(**CFG)), p, "`TransformerBlock(0, args)`")
    expect_close(block(x, 0, freqs_cis, mask), expected,
                 "`TransformerBlock(0, args)(x, 0, freqs_cis, mask)` for x of shape (2, 6, 32)", atol=1e-4,
                 hint="Pre-norm residual blocks: attention reads the normalised x and its output is added to x; the "
                      "feed-forward network then does the same on that sum, with its own norm." + _FIX_LAYERS_FIRST)


@pytest.mark.exercise("transformer")
@pytest.mark.points(2)
def test_forward_logits(impl, recorded):
    g = _gen(11)
    p = _random_weights(_model_shapes(CFG, CFG_HIDDEN), g)
    tokens = torch.randint(0, CFG["vocab_size"], (2, 7), generator=g)
    expected = _model(recorded, CFG, p)(tokens, start_pos=0)
    model = _learner_model(impl, CFG, p)
    expect_close(model(tokens, start_pos=0), expected, "`Transformer(args)(tokens, start_pos=0)` logits for 2 x 7 tokens",
                 atol=1e-4,
                 hint="Embed, run every block with the rotations of positions start_pos .. start_pos + T - 1 and the causal mask, apply the "
                      "final norm and the output head; return float logits (B, T, vocab_size)." + _FIX_LAYERS_FIRST)


@pytest.mark.exercise("transformer")
@pytest.mark.points(2)
def test_cached_chunks_match_one_full_pass(impl, recorded):
    # The same 8 tokens in one pass, and in chunks of 3, 1, 2, 2 (start_pos 0, 3, 4, 6): every
    # chunk after the first must take the earlier positions from the cache.
    g = _gen(12)
    p = _random_weights(_model_shapes(CFG, CFG_HIDDEN), g)
    tokens = torch.randint(0, CFG["vocab_size"], (2, 8), generator=g)
    known = _model(recorded, CFG, p)  # the reference fed the same chunks: its logits are those of one full pass
    model = _learner_model(impl, CFG, p)
    start = 0
    for n in (3, 1, 2, 2):
        expected = known(tokens[:, start:start + n], start_pos=start)
        what = f"`model(tokens[:, {start}:{start + n}], start_pos={start})`"
        got = expect_shape(model(tokens[:, start:start + n], start_pos=start), (2, n, CFG["vocab_size"]), what,
                           hint="forward returns the logits of every new position, (B, T, vocab_size).")
        expect_close(got, expected, f"{what}, after the chunks before it (the logits of one full pass over all 8 "
                     "tokens at these positions)", atol=1e-4,
                     hint="Each call writes its keys and values into the cache at start_pos and attends over every "
                          "cached position up to its own last one; its rotary positions are start_pos .. start_pos + T - 1, and the "
                          "mask (T, start_pos + T) hides only the keys after each query.")
        start += n


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


def _ref_weights(ref, cfg, g):
    return _random_weights(_model_shapes(cfg, ref.ffn_hidden_dim(cfg["dim"], cfg["multiple_of"], cfg["ffn_dim_multiplier"])), g)


@pytest.mark.exercise("transformer")
@pytest.mark.hidden
@pytest.mark.points(2)
def test_transformer_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    cfg = _random_cfg(g)
    p = _ref_weights(ref, cfg, g)
    B, T = _randint(g, 1, cfg["max_batch_size"] + 1), _randint(g, 2, 14)
    tokens = torch.randint(0, cfg["vocab_size"], (B, T), generator=g)
    chunks = _random_chunks(g, T)
    expected = _model(ref, cfg, p)(tokens, start_pos=0).clone()
    what = f"`Transformer(ModelArgs({_args_text(cfg)}))`"
    expect_close(_learner_model(impl, cfg, p)(tokens, start_pos=0), expected,
                 f"{what}(tokens, start_pos=0) for {B} x {T} tokens", atol=1e-4)
    fresh, start = _learner_model(impl, cfg, p), 0
    for n in chunks:
        expect_close(fresh(tokens[:, start:start + n], start_pos=start), expected[:, start:start + n],
                     f"{what}: logits of tokens {start}..{start + n - 1} of {B} x {T} fed in chunks of {chunks}, "
                     "compared with one full pass", atol=1e-4)
        start += n


# --- generate ------------------------------------------------------------------------------------

_PROMPT = torch.tensor([[3, 14, 15, 9, 2], [26, 5, 35, 8, 9]])
_NEW = 8


def _expect_generated(tokens, expected, prompt, what):
    B, T0 = prompt.shape
    tokens = expect_shape(tokens, expected.shape, what,
                          hint="generate returns the prompt followed by max_new_tokens new tokens.")
    if tokens.is_floating_point():
        fail(f"{what}: expected integer token ids, got dtype {tokens.dtype}.")
    if not torch.equal(tokens[:, :T0].long(), prompt):
        fail(f"{what}: the first {T0} tokens must be the prompt {prompt.tolist()}, got {tokens[:, :T0].tolist()}.")
    expect_equal(tokens.long(), expected.long(), what,
                 hint="Take the argmax of the last position's logits, feed that token alone at start_pos = its "
                      "position, and repeat.")


@pytest.mark.exercise("generate")
@pytest.mark.points(2)
def test_generate_matches_greedy_decoding(impl, recorded):
    p = _random_weights(_model_shapes(CFG, CFG_HIDDEN), _gen(20))
    expected = recorded.generate(_model(recorded, CFG, p), _PROMPT, _NEW)
    tokens = impl.generate(_learner_model(impl, CFG, p), _PROMPT, _NEW)
    _expect_generated(tokens, expected, _PROMPT, f"`generate(model, prompt_tokens, {_NEW})` for a 2 x 5 prompt")


def _calls_of(layers, what):
    """The first layer's attention calls, [[positions, start_pos], ...], checked to be data."""
    calls = layers[0] if isinstance(layers, (list, tuple)) and layers else None
    if not isinstance(calls, (list, tuple)) or not all(
            isinstance(c, (list, tuple)) and len(c) == 2 and all(type(v) is int for v in c) for c in calls):
        fail(f"{what}: the record of the attention calls is not a list of [positions, start_pos] pairs.")
    return [list(c) for c in calls]  # the first layer; the others see the same calls


def _expect_fed(fed, calls, expected, what, seen):
    """Call by call, the token ids embedded must be the ones at those positions of the expected
    sequence (the prompt, then greedy decoding's tokens)."""
    if not isinstance(fed, (list, tuple)) or len(fed) != len(calls):
        count = len(fed) if isinstance(fed, (list, tuple)) else "no"
        fail(f"{what}: the token embedding ran {count} times but attention {len(calls)} times; generate must run "
             f"the model, model(tokens, start_pos), which embeds the tokens it is given. (Attention calls: {seen}.)")
    for k, (ids, (n, start)) in enumerate(zip(fed, calls), start=1):
        want = expected[:, start:start + n]
        ids = expect_shape(ids, want.shape, f"{what}: the token ids of model call {k} (start_pos {start})")
        if not torch.equal(ids.long(), want.long()):
            fail(f"{what}: model call {k} (start_pos {start}) fed the tokens {ids.tolist()}, but positions "
                 f"{start}..{start + n - 1} of the sequence hold {want.tolist()}: feed each new token at its own "
                 f"position. (Attention calls: {seen}.)")


@pytest.mark.exercise("generate")
@pytest.mark.points(2)
def test_generate_processes_one_new_position_per_step(helpers, recorded):
    # Counted, not timed: a forward pre-hook on every layer's attention records how many
    # positions enter it (x.shape[1]) and at which start_pos, call by call.
    # The report comes from the worker, where learner code runs and could rewrite the helper: so
    # its tokens, and the ids each call fed in, must be greedy decoding's (known here, recorded),
    # which no report made up without running the model has.
    p = _random_weights(_model_shapes(CFG, CFG_HIDDEN), _gen(20))
    expected = recorded.generate(_model(recorded, CFG, p), _PROMPT, _NEW)
    report = helpers.generate_report(CFG, p, _PROMPT, _NEW)
    T0 = _PROMPT.size(1)
    what = f"`generate(model, prompt_tokens, {_NEW})` with a {T0}-token prompt"
    if not isinstance(report, dict) or not {"tokens", "calls", "fed"} <= set(report):
        fail(f"{what}: the worker sent back no report of the run (got {type(report).__name__}).")
    calls = _calls_of(report["calls"], what)
    seen = ", ".join(f"{n} at start_pos {s}" for n, s in calls)
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
    _expect_generated(report["tokens"], expected, _PROMPT, what)  # the report is of generate's own run
    _expect_fed(report["fed"], calls, expected, what, seen)


@pytest.mark.exercise("generate")
@pytest.mark.hidden
@pytest.mark.points(2)
def test_generate_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    cfg = _random_cfg(g)
    p = _ref_weights(ref, cfg, g)
    B, T0 = _randint(g, 1, cfg["max_batch_size"] + 1), _randint(g, 1, 7)
    N = _randint(g, 1, min(10, cfg["max_seq_len"] - T0) + 1)
    prompt = torch.randint(0, cfg["vocab_size"], (B, T0), generator=g)
    expected = ref.generate(_model(ref, cfg, p), prompt, N)
    _expect_generated(impl.generate(_learner_model(impl, cfg, p), prompt, N), expected, prompt,
                      f"`generate(model, prompt_tokens, {N})` for a {B} x {T0} prompt, model ModelArgs({_args_text(cfg)})")


# --- parameter_count -----------------------------------------------------------------------------

# Exact sizes of the four LLaMA models (vocabulary 32000), counted from Meta's released weights.
# Table 2 prints them truncated to 0.1B: 6.7B, 13.0B, 32.5B, 65.2B (65.29B is printed as 65.2B).
_TABLE2 = {
    "6.7B": (dict(dim=4096, n_heads=32, n_layers=32), 6_738_415_616),
    "13.0B": (dict(dim=5120, n_heads=40, n_layers=40), 13_015_864_320),
    "32.5B": (dict(dim=6656, n_heads=52, n_layers=60), 32_528_943_616),
    "65.2B": (dict(dim=8192, n_heads=64, n_layers=80), 65_285_660_672),
}


def _expect_count(got, expected, what):
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int, the exact number of parameters, got {type(got).__name__} {got!r}.")
    expect_equal(got, expected, what,
                 hint=f"(Off by {got - expected:+,}.) Count the embeddings and the untied head, 4 attention and 3 "
                      "feed-forward matrices plus 2 norm weights per layer, and the final norm.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.points(2)
def test_parameter_count_of_table2_models(impl, recorded):
    for name, (cfg, expected) in _TABLE2.items():
        what = f"`llama_parameter_count(ModelArgs({_args_text(cfg)}, vocab_size=32000))` (LLaMA {name})"
        recorded.llama_parameter_count(recorded.ModelArgs(vocab_size=32000, **cfg))
        _expect_count(impl.llama_parameter_count(impl.ModelArgs(vocab_size=32000, **cfg)), expected, what)


@pytest.mark.exercise("parameter_count")
def test_parameter_count_of_tiny_models(impl, recorded):
    for cfg in (CFG, dict(CFG, dim=40, n_heads=5, vocab_size=37, ffn_dim_multiplier=1.3, n_layers=3)):
        expected = recorded.llama_parameter_count(recorded.ModelArgs(**cfg))
        _expect_count(impl.llama_parameter_count(impl.ModelArgs(**cfg)), expected,
                      f"`llama_parameter_count(ModelArgs({_args_text(cfg)}))`")


@pytest.mark.exercise("parameter_count")
@pytest.mark.hidden
def test_parameter_count_random_args_match_reference(impl, ref, seed):
    g = _gen(seed)
    for _ in range(4):
        n_heads = _randint(g, 1, 65)
        cfg = dict(dim=n_heads * 2 * _randint(g, 1, 129), n_layers=_randint(g, 1, 97), n_heads=n_heads,
                   vocab_size=_randint(g, 2, 260000), multiple_of=[1, 16, 64, 256, 1024, 4096][_randint(g, 0, 6)],
                   ffn_dim_multiplier=[None, None, 1.3, 1.5][_randint(g, 0, 4)])
        _expect_count(impl.llama_parameter_count(impl.ModelArgs(**cfg)), ref.llama_parameter_count(ref.ModelArgs(**cfg)),
                      f"`llama_parameter_count(ModelArgs({_args_text(cfg)}))`")
