"""Checks for what each pretraining objective trains on: the causal-LM labels of a decoder,
the masked-LM inputs and labels of an encoder, and T5's span corruption.

Visible checks use hand-worked token lists (their answers in the comments) and the example of
the T5 paper's Figure 2, with the solution's recorded answers.
"""
import pytest
import torch

from grader.checking import expect_raises, fail, fail_naming, new_comparison
from grader.checking import generator as _gen
from grader.checking import randint as _randint

IGNORE = -100


def _as_list(got, what):
    if isinstance(got, torch.Tensor) and got.dim() == 1:
        return got.tolist()
    if isinstance(got, tuple):
        got = list(got)
    if not isinstance(got, list):
        fail(f"{what}: expected a list, got {type(got).__name__} ({got!r}).")
    return got


def _expect_list(got, expected, what, part=None, hint=None):
    """`got` must equal the list `expected`; `part` is the index of the list in a pair the
    solution returned (so a known mistake's pair can be matched), None for a plain list."""
    got = _as_list(got, what)
    expected = list(expected)
    if got == expected:
        return
    message = f"{what}: expected {expected}, got {got}."
    if len(got) != len(expected):
        message += f" It has {len(got)} entries, expected {len(expected)}."
    else:
        i = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        message += f" The first difference is at position {i}: expected {expected[i]!r}, got {got[i]!r}."

    def matches(answer):
        if part is not None:
            answer = answer[part] if isinstance(answer, (tuple, list)) and len(answer) == 2 else None
        return isinstance(answer, (list, tuple)) and list(answer) == got

    fail_naming(message, matches, hint)


def _pair(result, what, names):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair ({names}), got {type(result).__name__}"
             + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "") + ".")
    return result


# --- causal_lm_labels ------------------------------------------------------------------------


@pytest.mark.exercise("causal_lm_labels")
@pytest.mark.points(2)
def test_causal_lm_labels_by_hand(impl, recorded):
    # [5, 8, 2, 9] -> [8, 2, 9, -100]; [7] -> [-100]; [] -> [].
    for tokens in ([5, 8, 2, 9], [7], []):
        new_comparison()
        _expect_list(impl.causal_lm_labels(list(tokens)), recorded.causal_lm_labels(tokens),
                     f"`causal_lm_labels({tokens})`", hint="Position i predicts token i + 1; the last position gets -100.")


@pytest.mark.exercise("causal_lm_labels")
@pytest.mark.hidden
def test_causal_lm_labels_random(impl, ref, seed):
    g = _gen(seed)
    tokens = torch.randint(0, 50000, (_randint(g, 2, 30),), generator=g).tolist()
    _expect_list(impl.causal_lm_labels(list(tokens)), ref.causal_lm_labels(tokens), f"`causal_lm_labels({tokens})`")


# --- masked_lm_labels ------------------------------------------------------------------------

_TOKENS, _POSITIONS, _MASK = [12, 7, 33, 4, 25, 9], [1, 4], 103


@pytest.mark.exercise("masked_lm_labels")
@pytest.mark.points(2)
def test_masked_lm_inputs_and_labels_by_hand(impl, recorded):
    # inputs [12, 103, 33, 4, 103, 9], labels [-100, 7, -100, -100, 25, -100]
    what = f"`masked_lm_labels({_TOKENS}, {_POSITIONS}, mask_id={_MASK})`"
    want_inputs, want_labels = recorded.masked_lm_labels(_TOKENS, _POSITIONS, _MASK)
    inputs, labels = _pair(impl.masked_lm_labels(list(_TOKENS), list(_POSITIONS), _MASK), what, "inputs, labels")
    _expect_list(inputs, want_inputs, f"{what}: inputs", part=0)
    _expect_list(labels, want_labels, f"{what}: labels", part=1)


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
    want_inputs, want_labels = ref.masked_lm_labels(list(tokens), list(positions), mask_id)
    inputs, labels = _pair(impl.masked_lm_labels(list(tokens), list(positions), mask_id), what, "inputs, labels")
    _expect_list(inputs, want_inputs, f"{what}: inputs", part=0)
    _expect_list(labels, want_labels, f"{what}: labels", part=1)


# --- span_corruption -------------------------------------------------------------------------

# Figure 2 of the T5 paper (Raffel et al., 2020), with words for tokens: the inputs are
# "Thank you <X> me to your party <Y> week ." and the targets "<X> for inviting <Y> last <Z>".
SENTENCE = "Thank you for inviting me to your party last week .".split()
SPANS = [(2, 4), (8, 9)]
SENTINELS = ["<X>", "<Y>", "<Z>"]


def _expect_span_corruption(got, expected, what):
    inputs, targets = _pair(got, what, "inputs, targets")
    _expect_list(inputs, expected[0], f"{what}: inputs", part=0)
    _expect_list(targets, expected[1], f"{what}: targets", part=1)


@pytest.mark.exercise("span_corruption")
@pytest.mark.points(2)
def test_span_corruption_figure_2_of_t5(impl, recorded):
    what = f"`span_corruption({' '.join(SENTENCE)!r}.split(), {SPANS}, {SENTINELS})`"
    _expect_span_corruption(impl.span_corruption(list(SENTENCE), SPANS, SENTINELS),
                            recorded.span_corruption(SENTENCE, SPANS, SENTINELS), what)


@pytest.mark.exercise("span_corruption")
def test_span_corruption_edges(impl, recorded):
    tokens, sentinels = [11, 12, 13, 14, 15], [99, 98, 97, 96]
    # no spans: [11, 12, 13, 14, 15] and [99]; (0, 2): [99, 13, 14, 15] and [99, 11, 12, 98];
    # (3, 5): [11, 12, 13, 99] and [99, 14, 15, 98]; side by side: [99, 98, 13, 14, 97] and
    # [99, 11, 98, 12, 97, 15, 96].
    cases = [
        ([], "no spans: the inputs are the tokens and the targets just the closing sentinel"),
        ([(0, 2)], "a span at the start"),
        ([(3, 5)], "a span at the end"),
        ([(0, 1), (1, 2), (4, 5)], "spans side by side"),
    ]
    for spans, about in cases:
        new_comparison()
        what = f"`span_corruption({tokens}, {spans}, {sentinels})` ({about})"
        _expect_span_corruption(impl.span_corruption(list(tokens), spans, sentinels),
                                recorded.span_corruption(tokens, spans, sentinels), what)


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
    _expect_span_corruption(impl.span_corruption(list(tokens), spans, sentinels),
                            ref.span_corruption(list(tokens), spans, sentinels), what)
