"""Checks for the learning-rate schedule, label smoothing, greedy decoding and the copy task.

Visible checks compare with the answers recorded from the reference solution
(tests/checks/attention/recorded.json), with torch's KLDivLoss and with hand-worked values;
greedy decoding runs on a scripted model whose predictions are known, and the copy task's
trained weights are measured in torch's own nn.Transformer.
"""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.checking import expect_close, expect_number, expect_shape, expect_tensor, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

# --- rate ----------------------------------------------------------------------------------

_RATE_HINT = "Expected factor * model_size^-0.5 * min(step^-0.5, step * warmup^-1.5)."


@pytest.mark.exercise("rate")
@pytest.mark.points(2)
def test_rate_hand_worked_values(impl, recorded):
    # The paper's setting (d_model 512, warmup 4000) peaks at step 4000 with 1 / sqrt(512 * 4000) = 6.98771e-4.
    cases = [
        (1, 512, 1.0, 4000, "the first step of the warm-up"),
        (2000, 512, 1.0, 4000, "half-way through the warm-up (linear growth)"),
        (4000, 512, 1.0, 4000, "the peak, at step == warmup, where both branches meet"),
        (16000, 512, 1.0, 4000, "after the warm-up (1 / sqrt(step) decay)"),
        (100, 32, 2.0, 40, "with factor 2"),
    ]
    expected = [recorded.rate(step, model_size, factor, warmup) for step, model_size, factor, warmup, _ in cases]
    for (step, model_size, factor, warmup, why), want in zip(cases, expected):
        expect_number(impl.rate(step, model_size, factor, warmup), want,
                      f"`rate({step}, {model_size}, {factor}, {warmup})`, {why},", hint=_RATE_HINT)
    expect_number(impl.rate(4000, 512, 1.0, 4000), 6.98771e-4, "`rate(4000, 512, 1.0, 4000)`, the paper's peak,",
                  rel=1e-5, hint=_RATE_HINT)


def _rate_at_zero(helpers, model_size, factor, warmup, expected):
    what = f"`rate(0, {model_size}, {factor}, {warmup})`"
    result = helpers.call_rate(0, model_size, factor, warmup)
    advice = ("LambdaLR calls rate with step 0 before the first optimizer step, and 0^-0.5 is infinite: "
              "treat step 0 as step 1.")
    if "error" in result:
        fail(f"{what} raised {result['error']}. {advice}")
    value = result["value"]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (int, float)) and (value == 0 or not math.isfinite(value)):
        fail(f"{what}: expected {expected:.6g} (the rate of step 1), got {value}. {advice}")
    expect_number(value, expected, what, hint=f"Expected the rate of step 1. {advice}")


@pytest.mark.exercise("rate")
def test_rate_step_zero_is_step_one(helpers, recorded):
    _rate_at_zero(helpers, 512, 1.0, 4000, recorded.rate(0, 512, 1.0, 4000))


@pytest.mark.exercise("rate")
@pytest.mark.hidden
def test_rate_random_matches_reference(impl, ref, helpers, seed):
    g = _gen(seed)
    model_size = [16, 32, 64, 128, 256, 512, 1024][_randint(g, 0, 7)]
    warmup = _randint(g, 2, 5000)
    factor = [0.5, 1.0, 2.0][_randint(g, 0, 3)]
    _rate_at_zero(helpers, model_size, factor, warmup, ref.rate(0, model_size, factor, warmup))
    for step in (1, _randint(g, 1, warmup), warmup, _randint(g, warmup + 1, 4 * warmup + 2)):
        expect_number(impl.rate(step, model_size, factor, warmup), ref.rate(step, model_size, factor, warmup),
                      f"`rate({step}, {model_size}, {factor}, {warmup})`")


# --- label_smoothing -----------------------------------------------------------------------


def _x():
    """Log-probabilities for 3 rows over 5 classes (a fresh tensor for every use)."""
    return torch.tensor([[0.1, 0.2, 1.5, 0.3, -0.4],
                         [0.0, 2.0, 0.5, -1.0, 0.2],
                         [1.0, 0.3, 0.2, 0.1, 0.0]]).log_softmax(-1)


_TARGET = [2, 1, 0]
# size 5, padding 0, smoothing 0.4: the true class gets 0.6 and the 3 classes that are neither
# true nor padding share 0.4, 0.4 / 3 = 0.1333 each; the row with target 0 is padding.
_S = 0.4 / 3
_TRUE_DIST = torch.tensor([[0.0, _S, 0.6, _S, _S],
                           [0.0, 0.6, _S, _S, _S],
                           [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)


@pytest.mark.exercise("label_smoothing")
@pytest.mark.points(2)
def test_label_smoothing_true_dist_hand_worked(impl, recorded):
    known = recorded.LabelSmoothing(5, 0, 0.4)  # its recorded answers name known mistakes
    known(_x(), torch.tensor(_TARGET))
    _ = known.true_dist
    crit = impl.LabelSmoothing(5, 0, 0.4)
    crit(_x(), torch.tensor(_TARGET))
    true_dist = crit.true_dist
    if true_dist is None:
        fail("`LabelSmoothing(5, 0, 0.4).true_dist` is still None after a call: keep the target distribution in self.true_dist.")
    expect_close(true_dist, _TRUE_DIST, "`LabelSmoothing(5, padding_idx=0, smoothing=0.4).true_dist` for targets [2, 1, 0]",
                 hint="Expected rows [0, 0.1333, 0.6, 0.1333, 0.1333], [0, 0.6, 0.1333, 0.1333, 0.1333], [0, 0, 0, 0, 0].")


@pytest.mark.exercise("label_smoothing")
def test_label_smoothing_loss_is_kl_sum(impl, recorded):
    recorded.LabelSmoothing(5, 0, 0.4)(_x(), torch.tensor(_TARGET))
    expected = nn.KLDivLoss(reduction="sum")(_x().double(), _TRUE_DIST).item()  # torch's KL divergence, summed
    loss = impl.LabelSmoothing(5, 0, 0.4)(_x(), torch.tensor(_TARGET))
    if isinstance(loss, torch.Tensor) and loss.numel() != 1:
        fail(f"`LabelSmoothing(5, 0, 0.4)(x, target)`: expected one number, the summed KL divergence, got a tensor "
             f"of shape {tuple(loss.shape)}. Use nn.KLDivLoss(reduction='sum').")
    expect_number(loss, expected, "`LabelSmoothing(5, 0, 0.4)(x, target)`, the loss for targets [2, 1, 0],", rel=1e-5,
                  hint="Expected nn.KLDivLoss(reduction='sum')(x, true_dist): sum of true_dist * (log true_dist - x).")


@pytest.mark.exercise("label_smoothing")
@pytest.mark.hidden
def test_label_smoothing_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    size, n = _randint(g, 3, 13), _randint(g, 2, 9)
    padding_idx = _randint(g, 0, size)
    smoothing = [0.0, 0.1, 0.2, 0.3, 0.5][_randint(g, 0, 5)]
    x = torch.randn(n, size, generator=g).log_softmax(-1)
    target = torch.randint(0, size, (n,), generator=g)
    target[0] = padding_idx  # at least one padding row
    target[1] = (padding_idx + 1) % size  # and at least one real one
    reference = ref.LabelSmoothing(size, padding_idx, smoothing)
    expected = reference(x, target)
    crit = impl.LabelSmoothing(size, padding_idx, smoothing)
    loss = crit(x, target)
    what = f"`LabelSmoothing({size}, padding_idx={padding_idx}, smoothing={smoothing})`"
    expect_close(crit.true_dist, reference.true_dist, f"{what}.true_dist for targets {target.tolist()}")
    expect_number(loss, float(expected), f"{what}(x, target), the loss,", rel=1e-5)


# --- greedy_decode -------------------------------------------------------------------------

# The scripted model (helpers.ScriptedCopyModel) predicts, at target position t, the source
# token at position t + 1: greedy decoding with it copies the source, so the right tokens are
# known in advance. The model's call records only explain a mismatch.
_SRC = [[1, 5, 3, 7, 2, 9, 4]]
_COPIED = torch.tensor([[1, 5, 3, 7, 2, 9]])  # max_len 6: the start symbol, then the next 5 source tokens


def _tokens_match(got, expected):
    return (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(expected.shape)
            and not got.is_floating_point() and got.dtype != torch.bool and torch.equal(got.long(), expected))


def _expect_tokens(got, expected, what, hint):
    got = expect_shape(got, expected.shape, what, hint=hint)
    if got.is_floating_point() or got.dtype == torch.bool:
        fail(f"{what}: expected integer token ids (dtype {expected.dtype}, like src), got dtype {got.dtype}.")
    if not torch.equal(got.long(), expected):
        fail(f"{what}: expected {expected.tolist()}, got {got.tolist()}. {hint}")


_DECODE_HINT = ("greedy_decode returns (1, max_len) tokens, the start symbol included: start from "
                "[[start_symbol]] and run max_len - 1 steps, each appending the argmax over the vocabulary of the "
                "generator at the last position, out[:, -1].")


@pytest.mark.exercise("greedy_decode")
@pytest.mark.points(2)
def test_greedy_decode_copies_with_scripted_model(helpers):
    result = helpers.greedy_decode_scripted(_SRC, 6, 1, 11)
    _expect_tokens(result["ys"], _COPIED,
                   "`greedy_decode(model, src, src_mask, max_len=6, start_symbol=1)` with a model that predicts "
                   "the next source token (src = [1, 5, 3, 7, 2, 9, 4])", _DECODE_HINT)


def _causal(k):
    """True where a query may see a key: torch's own causal mask for nn.Transformer is 0 there."""
    return nn.Transformer.generate_square_subsequent_mask(k) == 0


def _expect_model_calls(result, max_len):
    """Explain a wrong output from the scripted model's call records (learner-side data: they
    can only make a check fail, never pass)."""
    if result["encode_calls"] != 1:
        fail(f"greedy_decode called model.encode {result['encode_calls']} times; encode the source once, before "
             "the loop, and reuse the memory in every decoding step.")
    calls = result["decode_calls"]
    if len(calls) != max_len - 1:
        fail(f"greedy_decode called model.decode {len(calls)} times for max_len={max_len}; expected max_len - 1 = "
             f"{max_len - 1} steps, one per new token.")
    for k, call in enumerate(calls, start=1):
        if not call["memory_from_encode"]:
            fail(f"decoding step {k}: model.decode did not get the memory that model.encode returned; the decoder "
                 "attends over the encoded source at every step.")
        tgt = expect_tensor(call["tgt"], f"the target passed to model.decode at step {k}")
        if tuple(tgt.shape) != (1, k):
            fail(f"decoding step {k}: model.decode got a target of shape {tuple(tgt.shape)}, expected (1, {k}): "
                 "all the tokens decoded so far, the start symbol included.")
        mask = call["tgt_mask"]
        want = _causal(k)
        if mask is None:
            fail(f"decoding step {k}: model.decode got no tgt_mask; it needs a causal mask as long as the "
                 "output so far, so that no position sees a later one.")
        mask = expect_tensor(mask, f"the tgt_mask passed to model.decode at step {k}")
        if mask.dim() < 2 or tuple(mask.shape[-2:]) != (k, k) or not torch.equal((mask != 0).reshape(-1, k, k)[0], want):
            fail(f"decoding step {k}: model.decode got the tgt_mask {mask.int().tolist()}, expected subsequent_mask({k}) = "
                 f"{want.int().unsqueeze(0).tolist()}: the mask grows with the output, one row and column a step.")


def _expect_scripted_decoding(helpers, src, max_len, start_symbol, vocab, shift, expected, what):
    """Run greedy_decode on a strict scripted model (one that predicts token 0 when called out
    of protocol) and compare its tokens with `expected`. Only that comparison decides; the call
    records explain a mismatch."""
    result = helpers.greedy_decode_scripted(src, max_len, start_symbol, vocab, shift, True)
    ys = result.get("ys") if isinstance(result, dict) else result
    if _tokens_match(ys, expected):
        return
    if isinstance(result, dict):
        _expect_model_calls(result, max_len)
    _expect_tokens(ys, expected, what, _DECODE_HINT)
    fail(f"{what}: expected {expected.tolist()}. {_DECODE_HINT}")


@pytest.mark.exercise("greedy_decode")
def test_greedy_decode_encodes_once_and_masks_the_future(helpers):
    _expect_scripted_decoding(helpers, _SRC, 6, 1, 11, None, _COPIED,
                              "`greedy_decode(model, src, src_mask, max_len=6, start_symbol=1)` with a model that "
                              "predicts the next source token (src = [1, 5, 3, 7, 2, 9, 4]) when called as "
                              "greedy decoding does")


def _scripted_tokens(src, max_len, start_symbol, vocab, shift):
    """What the scripted model (helpers.ScriptedCopyModel) makes greedy decoding produce: (1, max_len)."""
    src = torch.as_tensor(src).tolist()[0]
    ys = [start_symbol]
    for t in range(max_len - 1):
        ys.append(1 + (src[min(t + 1, len(src) - 1)] + int(shift[ys[t]])) % (vocab - 1))
    return torch.tensor([ys])


@pytest.mark.exercise("greedy_decode")
@pytest.mark.hidden
def test_greedy_decode_random_sources(helpers, seed):
    g = _gen(seed)
    V, S = _randint(g, 5, 20), _randint(g, 3, 12)
    src = torch.randint(1, V, (1, S), generator=g)
    start_symbol = _randint(g, 1, V)
    src[0, 0] = start_symbol
    max_len = _randint(g, 2, S + 1)
    shift = torch.randint(0, V - 1, (V,), generator=g).tolist()
    _expect_scripted_decoding(helpers, src.tolist(), max_len, start_symbol, V, shift,
                              _scripted_tokens(src, max_len, start_symbol, V, shift),
                              f"`greedy_decode(model, src, src_mask, max_len={max_len}, start_symbol={start_symbol})` "
                              f"with a scripted model (src = {src[0].tolist()}) that predicts, after token y at "
                              f"position t, 1 + (src[t + 1] + shift[y]) % {V - 1} with shift = {shift}")


# --- copy_task -----------------------------------------------------------------------------

COPY_STEPS, COPY_SEED = 200, 0  # train_copy_model(steps=200, seed=0): about 1 s on one CPU thread
# COPY_TASK of the stub (V, seq_len, N, d_model, d_ff, h): the visible check's model sizes.
_COPY_SIZES = dict(V=11, seq_len=10, N=1, d_model=32, d_ff=64, h=4)
_PE_MAX_LEN = 5000  # PositionalEncoding's default max_len, the length of the `pe` buffers

# The checks never take a verdict from the learner's side: they fetch the trained weights
# (helpers.copy_model_state) and run them here, the visible check in torch's own nn.Transformer
# (pre-norm, ReLU), the hidden one in the reference's make_model, and measure the copying there.
# helpers.copy_task_report (learning rates, dropout) only explains a failure.


def _copy_model_shapes(V, N, d_model, d_ff, **_):
    """Parameter names and shapes of make_model(V, V, N, d_model, d_ff, h)'s state_dict."""
    shapes = {}

    def linear(name, n_out, n_in):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n_out, n_in), (n_out,)

    def norm(name):
        shapes[f"{name}.a_2"] = shapes[f"{name}.b_2"] = (d_model,)

    def layer(name, attentions, n_sublayers):
        for attn in attentions:
            for i in range(4):
                linear(f"{name}.{attn}.linears.{i}", d_model, d_model)
        linear(f"{name}.feed_forward.w_1", d_ff, d_model)
        linear(f"{name}.feed_forward.w_2", d_model, d_ff)
        for i in range(n_sublayers):
            norm(f"{name}.sublayer.{i}.norm")

    for i in range(N):
        layer(f"encoder.layers.{i}", ["self_attn"], 2)
        layer(f"decoder.layers.{i}", ["self_attn", "src_attn"], 3)
    norm("encoder.norm")
    norm("decoder.norm")
    for embed in ("src_embed", "tgt_embed"):
        shapes[f"{embed}.0.lut.weight"] = (V, d_model)
        shapes[f"{embed}.1.pe"] = (1, _PE_MAX_LEN, d_model)
    linear("generator.proj", V, d_model)
    return shapes


def _trained_state(helpers, shapes, sizes):
    """The trained model's weights, fetched as data and held against `shapes`."""
    made = (f"make_model({sizes['V']}, {sizes['V']}, N={sizes['N']}, d_model={sizes['d_model']}, "
            f"d_ff={sizes['d_ff']}, h={sizes['h']})")
    what = f"`train_copy_model(steps={COPY_STEPS}, seed={COPY_SEED})`"
    result = helpers.copy_model_state(COPY_STEPS, COPY_SEED)
    state = result.get("state") if isinstance(result, dict) else None
    if not isinstance(state, dict):
        returned = result.get("type") if isinstance(result, dict) else type(result).__name__
        fail(f"{what} returned {returned}, not a model: return the trained {made}.")
    bad = [name for name, t in state.items() if not isinstance(name, str) or not isinstance(t, torch.Tensor)]
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes) - set(bad))
    resized = sorted(f"{name} {tuple(state[name].shape)} instead of {shapes[name]}" for name in set(shapes) & set(state)
                     if name not in bad and tuple(state[name].shape) != tuple(shapes[name]))
    problems = [f"{label}: {', '.join(map(str, names[:4]))}{' ...' if len(names) > 4 else ''}"
                for label, names in (("missing", missing), ("unexpected", unexpected), ("not tensors", bad),
                                     ("other shapes", resized)) if names]
    if problems:
        fail(f"{what} returned a model whose weights are not those of {made} ({'; '.join(problems)}). "
             "The check reads the trained weights by name: build the model with make_model and the sizes in COPY_TASK.")
    infinite = sorted(name for name in shapes if not bool(torch.isfinite(state[name]).all()))
    if infinite:
        fail(f"{what} returned a model with inf or nan weights ({', '.join(infinite[:4])}"
             f"{' ...' if len(infinite) > 4 else ''}): the training diverged. Check the loss (divided by "
             "batch.ntokens) and the learning rate: Adam(lr=1.0) scaled by your rate through LambdaLR.")
    return {name: state[name].detach().double() for name in shapes}


class _TorchCopyModel:
    """The trained weights in torch's nn.Transformer (norm_first=True is the annotated transformer's
    pre-norm). Its nn.LayerNorm divides by the biased std where the annotated LayerNorm divides by
    the unbiased one, so each gain is scaled by sqrt((d - 1) / d); eps is too small to matter."""

    def __init__(self, p, V, N, d_model, d_ff, h, **_):
        self.p, self.d_model = p, d_model
        with warnings.catch_warnings():  # "enable_nested_tensor is True, but ...": a fast path we do not need
            warnings.simplefilter("ignore", UserWarning)
            self.net = nn.Transformer(d_model, h, N, N, d_ff, dropout=0.0, batch_first=True, norm_first=True,
                                      layer_norm_eps=1e-12).double().eval()
        gain = math.sqrt((d_model - 1) / d_model)
        mapped = {}

        def attention(ours, theirs):
            mapped[f"{ours}.in_proj_weight"] = torch.cat([p[f"{theirs}.linears.{i}.weight"] for i in range(3)])
            mapped[f"{ours}.in_proj_bias"] = torch.cat([p[f"{theirs}.linears.{i}.bias"] for i in range(3)])
            mapped[f"{ours}.out_proj.weight"], mapped[f"{ours}.out_proj.bias"] = p[f"{theirs}.linears.3.weight"], p[f"{theirs}.linears.3.bias"]

        def norm(ours, theirs):
            mapped[f"{ours}.weight"], mapped[f"{ours}.bias"] = p[f"{theirs}.a_2"] * gain, p[f"{theirs}.b_2"]

        def feed_forward(layer):
            for ours, theirs in (("linear1", "w_1"), ("linear2", "w_2")):
                for kind in ("weight", "bias"):
                    mapped[f"{layer}.{ours}.{kind}"] = p[f"{layer}.feed_forward.{theirs}.{kind}"]

        for i in range(N):
            enc, dec = f"encoder.layers.{i}", f"decoder.layers.{i}"
            attention(f"{enc}.self_attn", f"{enc}.self_attn")
            attention(f"{dec}.self_attn", f"{dec}.self_attn")
            attention(f"{dec}.multihead_attn", f"{dec}.src_attn")
            for layer, n_norms in ((enc, 2), (dec, 3)):
                feed_forward(layer)
                for k in range(n_norms):
                    norm(f"{layer}.norm{k + 1}", f"{layer}.sublayer.{k}.norm")
        norm("encoder.norm", "encoder.norm")
        norm("decoder.norm", "decoder.norm")
        self.net.load_state_dict(mapped)

    def _embed(self, name, tokens):  # Embeddings (scaled by sqrt(d_model)), then the trained model's own `pe`
        lut = self.p[f"{name}.0.lut.weight"]
        return F.embedding(tokens, lut) * math.sqrt(self.d_model) + self.p[f"{name}.1.pe"][:, : tokens.size(1)]

    def __call__(self, src, tgt):
        """Log-probabilities (B, T_tgt, V) of the next token after each target position."""
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.size(1), dtype=torch.float64)
        with torch.no_grad():
            out = self.net(self._embed("src_embed", src), self._embed("tgt_embed", tgt), tgt_mask=causal, tgt_is_causal=True)
            return F.linear(out, self.p["generator.proj.weight"], self.p["generator.proj.bias"]).log_softmax(-1)


def _copy_batch(V, seq_len, n, seed):
    src = torch.randint(1, V, (n, seq_len), generator=_gen(seed))
    src[:, 0] = 1
    return src


def _measure_copying(next_token_log_probs, src):
    """(accuracy, loss) with the source fed as the target (teacher forcing): the share of the
    positions after the start symbol whose most likely next token is the right copy, and the
    cross-entropy per token."""
    with torch.no_grad():
        log_probs = next_token_log_probs(src, src[:, :-1]).double()  # (B, T - 1, V)
        accuracy = float((log_probs.argmax(-1) == src[:, 1:]).double().mean())
        loss = float(F.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), src[:, 1:].reshape(-1)))
    return accuracy, loss if math.isfinite(loss) else float("inf")


def _copy_diagnosis(report):
    """The likeliest reason a copy model did not learn, from what the helper recorded
    (learner-side data: it only words the message of a check that already failed)."""
    lrs, steps, cfg = list(report["lrs"]), report["steps"], report["config"]
    if not lrs:
        return "optimizer.step() was never called: call loss.backward() and optimizer.step() in every training step."
    if len(lrs) < steps:
        return f"optimizer.step() ran {len(lrs)} times for {steps} batches: take one optimizer step per batch."
    if max(lrs) == min(lrs):
        return (f"the learning rate stayed at {lrs[0]:.3g} for every step: call scheduler.step() after "
                "optimizer.step() so that the schedule warms up (LambdaLR with your rate).")
    for k, (lr, want) in enumerate(zip(lrs, report["rates"])):
        if not math.isclose(lr, want, rel_tol=1e-3):
            return (f"at optimizer step {k} the learning rate was {lr:.3g}; Adam(lr=1.0) with LambdaLR(lambda step: "
                    f"rate(step, {cfg['d_model']}, factor={cfg['factor']}, warmup={cfg['warmup']})) gives {want:.3g}. "
                    "Call scheduler.step() once per optimizer step.")
    if report["dropout"]:
        return (f"your model has dropout p = {report['dropout'][0]}; the copy model trains without dropout "
                "(make_model(..., dropout=0.0)).")
    return ("the learning-rate schedule looks right, so check the loss: the criterion over every position's "
            "log-probabilities (model.generator(out)) and target, divided by the batch's number of tokens, then loss.backward(), "
            "optimizer.step(), optimizer.zero_grad().")


def _expect_copies(helpers, accuracy, loss, what):
    if accuracy >= 0.9:
        return
    try:
        cause = _copy_diagnosis(helpers.copy_task_report(COPY_STEPS, COPY_SEED))
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - the verdict is already taken; only its wording is lost
        cause = ("check the training loop (loss.backward(), optimizer.step(), scheduler.step() in every step) "
                 "and the modules the model is built from.")
    fail(f"{what}: fed the source as the target, the model predicts {accuracy:.0%} of the next tokens right, expected "
         f"at least 90%. The loss per token is {loss:.3f} (guessing gives log(10) = 2.30; a good copier is near 0). "
         f"Likely cause: {cause}")


@pytest.mark.exercise("copy_task")
@pytest.mark.points(3)
def test_copy_task_learns_to_copy(helpers):
    sizes = _COPY_SIZES
    state = _trained_state(helpers, _copy_model_shapes(**sizes), sizes)
    accuracy, loss = _measure_copying(_TorchCopyModel(state, **sizes), _copy_batch(sizes["V"], sizes["seq_len"], 64, 2024))
    _expect_copies(helpers, accuracy, loss,
                   f"after `train_copy_model(steps={COPY_STEPS}, seed={COPY_SEED})`, on 64 new random sequences")


@pytest.mark.exercise("copy_task")
@pytest.mark.hidden
def test_copy_task_copies_unseen_sequences(helpers, ref, seed):
    cfg = ref.COPY_TASK
    V, seq_len = cfg["V"], cfg["seq_len"]
    model = ref.make_model(V, V, N=cfg["N"], d_model=cfg["d_model"], d_ff=cfg["d_ff"], h=cfg["h"], dropout=0.0)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state = _trained_state(helpers, shapes, cfg)
    model.load_state_dict({name: t.float() for name, t in state.items()})
    model.eval()

    def next_token_log_probs(src, tgt):
        src_mask = torch.ones(src.size(0), 1, src.size(1), dtype=torch.bool)
        return model.generator(model(src, tgt, src_mask, ref.subsequent_mask(tgt.size(1))))

    src = next(ref.data_gen(V, 128, 1, seq_len, _gen(seed))).src
    accuracy, loss = _measure_copying(next_token_log_probs, src)
    _expect_copies(helpers, accuracy, loss, f"after `train_copy_model(steps={COPY_STEPS}, seed={COPY_SEED})`, on 128 "
                                            f"sequences drawn from seed {seed}")
