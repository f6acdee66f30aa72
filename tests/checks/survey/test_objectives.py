"""Checks for what each pretraining objective trains on: the causal-LM labels of a decoder,
the masked-LM inputs and labels of an encoder, and T5's span corruption.

Visible checks use hand-worked token lists and the example of the T5 paper's Figure 2;
hidden checks draw sequences from the run's seed.
"""
import pytest
import torch

from grader.checking import expect_raises, fail

IGNORE = -100


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


def _as_list(got, what):
    if isinstance(got, torch.Tensor) and got.dim() == 1:
        return got.tolist()
    if isinstance(got, tuple):
        got = list(got)
    if not isinstance(got, list):
        fail(f"{what}: expected a list, got {type(got).__name__} ({got!r}).")
    return got


def _expect_list(got, expected, what, suspects=None, hint=None):
    got = _as_list(got, what)
    if got == expected:
        return
    message = f"{what}: expected {expected}, got {got}."
    for label, value in (suspects or {}).items():
        if got == value:
            fail(f"{message} Your result matches what you get if you {label}.")
    if len(got) != len(expected):
        message += f" It has {len(got)} entries, expected {len(expected)}."
    else:
        i = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        message += f" The first difference is at position {i}: expected {expected[i]!r}, got {got[i]!r}."
    fail(message + (f" {hint}" if hint else ""))


def _pair(result, what, names):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair ({names}), got {type(result).__name__}"
             + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "") + ".")
    return result


# --- causal_lm_labels ------------------------------------------------------------------------


def _causal_suspects(tokens):
    n = len(tokens)
    return {
        "copied the tokens; a position's label is the token after it, labels[i] = tokens[i + 1]": list(tokens),
        "shifted the wrong way: labels[i] = tokens[i - 1] predicts the past; predict the next token":
            [IGNORE] + list(tokens[:-1]) if n else [],
        "dropped the last position; keep one label per position and give the last one -100 (nothing follows it)":
            list(tokens[1:]),
        "rolled the sequence, so the last position predicts the first token; it gets -100 instead":
            list(tokens[1:]) + list(tokens[:1]),
        "gave the last position the label 0; 0 is a real token id, use -100 (IGNORE_INDEX)": list(tokens[1:]) + [0] if n else [],
    }


@pytest.mark.exercise("causal_lm_labels")
@pytest.mark.points(2)
def test_causal_lm_labels_by_hand(impl):
    for tokens, expected in (([5, 8, 2, 9], [8, 2, 9, IGNORE]), ([7], [IGNORE]), ([], [])):
        _expect_list(impl.causal_lm_labels(tokens), expected, f"`causal_lm_labels({tokens})`",
                     _causal_suspects(tokens), "Position i predicts token i + 1; the last position gets -100.")


@pytest.mark.exercise("causal_lm_labels")
@pytest.mark.hidden
def test_causal_lm_labels_random(impl, ref, seed):
    g = _gen(seed)
    tokens = torch.randint(0, 50000, (_randint(g, 2, 30),), generator=g).tolist()
    _expect_list(impl.causal_lm_labels(tokens), ref.causal_lm_labels(tokens), f"`causal_lm_labels({tokens})`",
                 _causal_suspects(tokens))


# --- masked_lm_labels ------------------------------------------------------------------------


def _masked_suspects(tokens, positions, mask_id):
    chosen = set(positions)
    return {
        "put the original token in the labels everywhere; only the masked positions are predicted, the others "
        "get -100 so the loss skips them": list(tokens),
        "put the mask id in the labels (wrote mask_id into `tokens` itself before reading the label?); the "
        "label is the original token the model must recover":
            [mask_id if i in chosen else IGNORE for i in range(len(tokens))],
        "filled the unmasked labels with 0; 0 is a real token id, use -100 (IGNORE_INDEX)":
            [t if i in chosen else 0 for i, t in enumerate(tokens)],
        "labelled the positions that were not masked instead of the masked ones":
            [IGNORE if i in chosen else t for i, t in enumerate(tokens)],
    }


_TOKENS, _POSITIONS, _MASK = [12, 7, 33, 4, 25, 9], [1, 4], 103


@pytest.mark.exercise("masked_lm_labels")
@pytest.mark.points(2)
def test_masked_lm_inputs_and_labels_by_hand(impl):
    what = f"`masked_lm_labels({_TOKENS}, {_POSITIONS}, mask_id={_MASK})`"
    inputs, labels = _pair(impl.masked_lm_labels(list(_TOKENS), list(_POSITIONS), _MASK), what, "inputs, labels")
    _expect_list(inputs, [12, 103, 33, 4, 103, 9], f"{what}: inputs",
                 {"left the inputs unchanged; the model must not see the tokens it predicts, so the inputs hold "
                  "mask_id at the masked positions": list(_TOKENS)})
    _expect_list(labels, [IGNORE, 7, IGNORE, IGNORE, 25, IGNORE], f"{what}: labels",
                 _masked_suspects(_TOKENS, _POSITIONS, _MASK))


@pytest.mark.exercise("masked_lm_labels")
def test_masked_lm_leaves_tokens_alone_and_checks_positions(impl, helpers):
    result = helpers.masked_lm_and_tokens_after(_TOKENS, _POSITIONS, _MASK)
    after = _as_list(result["tokens_after"], "the token list passed to masked_lm_labels")
    if after != _TOKENS:
        fail(f"masked_lm_labels changed the caller's list: it was {_TOKENS} and is {after} afterwards. Build "
             "new lists (list(tokens)); the caller may still need the original tokens, for the labels if nothing else.")
    expect_raises(lambda: impl.masked_lm_labels(list(_TOKENS), [2, 6], _MASK),
                        f"`masked_lm_labels({_TOKENS}, [2, 6], mask_id={_MASK})`",
                        "position 6 is outside a sequence of 6 tokens")


@pytest.mark.exercise("masked_lm_labels")
@pytest.mark.hidden
def test_masked_lm_random(impl, ref, seed):
    g = _gen(seed)
    n = _randint(g, 3, 40)
    tokens = torch.randint(0, 30000, (n,), generator=g).tolist()
    positions = sorted(torch.randperm(n, generator=g)[: max(1, n * 15 // 100)].tolist())
    mask_id = 30000 + _randint(g, 0, 100)
    what = f"`masked_lm_labels({tokens}, {positions}, mask_id={mask_id})`"
    want_inputs, want_labels = ref.masked_lm_labels(tokens, positions, mask_id)
    inputs, labels = _pair(impl.masked_lm_labels(list(tokens), list(positions), mask_id), what, "inputs, labels")
    _expect_list(inputs, want_inputs, f"{what}: inputs")
    _expect_list(labels, want_labels, f"{what}: labels", _masked_suspects(tokens, positions, mask_id))


# --- span_corruption -------------------------------------------------------------------------

# Figure 2 of the T5 paper (Raffel et al., 2020), with words for tokens.
SENTENCE = "Thank you for inviting me to your party last week .".split()
SPANS = [(2, 4), (8, 9)]
SENTINELS = ["<X>", "<Y>", "<Z>"]


def _span_suspects(tokens, spans, sentinels):
    tokens = list(tokens)
    right_targets, same, after = [], [], []
    kept_inputs, same_inputs, position = [], [], 0
    for k, (start, end) in enumerate(spans):
        right_targets += [sentinels[k]] + tokens[start:end]
        same += [sentinels[0]] + tokens[start:end]
        after += tokens[start:end] + [sentinels[k]]
        kept_inputs += tokens[position:end] + [sentinels[k]]
        same_inputs += tokens[position:start] + [sentinels[0]]
        position = end
    no_final = list(right_targets)
    return {
        "targets": {
            "left out the final sentinel; the targets end with the next unused sentinel, "
            "sentinel_ids[len(spans)]": no_final,
            "used the first sentinel for every span; span k gets sentinel_ids[k]": same + [sentinels[0]],
            "put each sentinel after its span; it comes before, to say which gap the tokens fill":
                after + [sentinels[len(spans)]],
        },
        "inputs": {
            "kept the span's tokens in the inputs; the sentinel replaces them": kept_inputs + tokens[position:],
            "used the first sentinel for every span; span k gets sentinel_ids[k]": same_inputs + tokens[position:],
        },
    }


@pytest.mark.exercise("span_corruption")
@pytest.mark.points(2)
def test_span_corruption_figure_2_of_t5(impl):
    what = f"`span_corruption({' '.join(SENTENCE)!r}.split(), {SPANS}, {SENTINELS})`"
    inputs, targets = _pair(impl.span_corruption(list(SENTENCE), SPANS, SENTINELS), what, "inputs, targets")
    suspects = _span_suspects(SENTENCE, SPANS, SENTINELS)
    _expect_list(inputs, "Thank you <X> me to your party <Y> week .".split(), f"{what}: inputs", suspects["inputs"])
    _expect_list(targets, "<X> for inviting <Y> last <Z>".split(), f"{what}: targets", suspects["targets"])


@pytest.mark.exercise("span_corruption")
def test_span_corruption_edges(impl):
    tokens, sentinels = [11, 12, 13, 14, 15], [99, 98, 97, 96]
    cases = [
        ([], [11, 12, 13, 14, 15], [99], "no spans: the inputs are the tokens and the targets just the closing sentinel"),
        ([(0, 2)], [99, 13, 14, 15], [99, 11, 12, 98], "a span at the start"),
        ([(3, 5)], [11, 12, 13, 99], [99, 14, 15, 98], "a span at the end"),
        ([(0, 1), (1, 2), (4, 5)], [99, 98, 13, 14, 97], [99, 11, 98, 12, 97, 15, 96], "spans side by side"),
    ]
    for spans, want_inputs, want_targets, about in cases:
        what = f"`span_corruption({tokens}, {spans}, {sentinels})` ({about})"
        inputs, targets = _pair(impl.span_corruption(list(tokens), spans, sentinels), what, "inputs, targets")
        suspects = _span_suspects(tokens, spans, sentinels)
        _expect_list(inputs, want_inputs, f"{what}: inputs", suspects["inputs"])
        _expect_list(targets, want_targets, f"{what}: targets", suspects["targets"])


@pytest.mark.exercise("span_corruption")
def test_span_corruption_rejects_bad_spans(impl):
    tokens = [11, 12, 13, 14, 15]
    for spans, sentinels, advice in (
        ([(1, 3), (2, 4)], [99, 98, 97], "the spans (1, 3) and (2, 4) overlap"),
        ([(3, 4), (0, 1)], [99, 98, 97], "spans come in order"),
        ([(2, 2)], [99, 98], "a span must hide at least one token"),
        ([(3, 7)], [99, 98], "the span (3, 7) runs past the 5 tokens"),
        ([(0, 1), (2, 3)], [99, 98], "2 spans need 3 sentinels, one per span and one to close the targets"),
    ):
        expect_raises(lambda: impl.span_corruption(list(tokens), spans, sentinels),
                            f"`span_corruption({tokens}, {spans}, {sentinels})`", advice)


@pytest.mark.exercise("span_corruption")
@pytest.mark.hidden
def test_span_corruption_random(impl, ref, seed):
    g = _gen(seed)
    n = _randint(g, 4, 40)
    tokens = torch.randint(0, 32000, (n,), generator=g).tolist()
    cuts = sorted(set(torch.randint(0, n + 1, (2 * _randint(g, 1, 5),), generator=g).tolist()))
    spans = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    sentinels = [32099 - k for k in range(len(spans) + 1)]  # T5's <extra_id_0>, <extra_id_1>, ...
    what = f"`span_corruption({tokens}, {spans}, {sentinels})`"
    want_inputs, want_targets = ref.span_corruption(tokens, spans, sentinels)
    inputs, targets = _pair(impl.span_corruption(list(tokens), spans, sentinels), what, "inputs, targets")
    suspects = _span_suspects(tokens, spans, sentinels)
    _expect_list(inputs, want_inputs, f"{what}: inputs", suspects["inputs"])
    _expect_list(targets, want_targets, f"{what}: targets", suspects["targets"])
