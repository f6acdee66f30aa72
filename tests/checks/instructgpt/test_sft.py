"""Checks for supervised fine-tuning: the labels (prompt and padding ignored) and the shifted
next-token loss.

Visible checks use hand-worked labels and the loss written out token by token; hidden checks
draw random batches from the run's seed and compare with the reference solution.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, fail

pytestmark = pytest.mark.exercise("sft")

IGNORE = -100


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


# --- sft_labels ----------------------------------------------------------------------------


def _labels(prompts, responses, pad_id, max_len, variant="ok"):
    """(input_ids, labels) written out position by position; `variant` reproduces known mistakes."""
    B = len(prompts)
    input_ids = [[pad_id] * max_len for _ in range(B)]
    labels = [[IGNORE] * max_len for _ in range(B)]
    for b in range(B):
        ids = (list(prompts[b]) + list(responses[b]))[:max_len]
        for t, token in enumerate(ids):
            input_ids[b][t] = token
            in_response = t >= len(prompts[b])
            if in_response or variant == "prompt_unmasked":
                labels[b][t] = token
        if variant == "pad_labelled":
            for t in range(len(ids), max_len):
                labels[b][t] = pad_id
        if variant == "pre_shifted":  # the target of position t put at t - 1: shifted twice with the loss
            labels[b] = labels[b][1:] + [IGNORE]
    input_ids, labels = torch.tensor(input_ids), torch.tensor(labels)
    if variant == "mask_by_value":
        labels = labels.masked_fill(input_ids == pad_id, IGNORE)
    return input_ids, labels


_LABEL_MISTAKES = {
    "left the prompt tokens labelled: the loss must ignore the prompt, label -100": "prompt_unmasked",
    "masked padding by value (labels[input_ids == pad_id] = -100): a response token equal to pad_id "
    "(often the end-of-sequence token) lost its label; mask by position instead": "mask_by_value",
    "labelled the padding with pad_id instead of -100": "pad_labelled",
    "shifted the labels already; sft_labels keeps labels aligned with input_ids and the loss does the shift": "pre_shifted",
}


def _label_suspects(prompts, responses, pad_id, max_len):
    return {label: _labels(prompts, responses, pad_id, max_len, v)[1] for label, v in _LABEL_MISTAKES.items()}


def _pair(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (input_ids, labels), got {type(result).__name__}.")
    return result


def _expect_labels(impl, prompts, responses, pad_id, max_len, what, expected=None):
    want_ids, want_labels = expected if expected is not None else _labels(prompts, responses, pad_id, max_len)
    suspects = _label_suspects(prompts, responses, pad_id, max_len)
    input_ids, labels = _pair(impl.sft_labels(prompts, responses, pad_id, max_len), what)
    expect_equal(expect_shape(input_ids, want_ids.shape, f"{what}: input_ids").long(), want_ids, f"{what}: input_ids",
                 hint="Each row is the prompt, then the response, cut to max_len, then pad_id up to max_len.")
    labels = expect_shape(labels, want_labels.shape, f"{what}: labels")
    if labels.is_floating_point():
        fail(f"{what}: labels have dtype {labels.dtype}; cross_entropy needs integer (long) labels.")
    labels = labels.long()
    if torch.equal(labels, want_labels):
        return
    for label, value in suspects.items():
        if torch.equal(labels, value):
            fail(f"{what}: expected labels {want_labels.tolist()}, got {labels.tolist()}. "
                 f"Your result matches what you get if you {label}.")
    expect_equal(labels, want_labels, f"{what}: labels",
                 hint="Labels are -100 on prompt tokens and padding and equal input_ids on response tokens.")


@pytest.mark.points(2)
def test_sft_labels_hand_worked(impl):
    # pad_id 0 is also a real token in the second response (an end-of-sequence token, say):
    # row 0 = [5 6 7 | 9 10 | pad], row 1 = [8 | 11 0 12 | pad pad]
    prompts, responses = [[5, 6, 7], [8]], [[9, 10], [11, 0, 12]]
    _expect_labels(impl, prompts, responses, 0, 6,
                   "`sft_labels([[5, 6, 7], [8]], [[9, 10], [11, 0, 12]], pad_id=0, max_len=6)`")


def test_sft_labels_truncates_to_max_len(impl):
    # row 0 is cut inside its response; row 1's prompt alone is longer than max_len, so no label survives
    prompts, responses = [[3, 4], [5, 6, 7, 8, 9]], [[10, 11, 12, 13], [14]]
    _expect_labels(impl, prompts, responses, 1, 4,
                   "`sft_labels([[3, 4], [5, 6, 7, 8, 9]], [[10, 11, 12, 13], [14]], pad_id=1, max_len=4)`")


@pytest.mark.hidden
def test_sft_labels_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, V, max_len = _randint(g, 1, 5), _randint(g, 4, 30), _randint(g, 3, 12)
    pad_id = _randint(g, 0, V)
    prompts = [torch.randint(0, V, (_randint(g, 1, 8),), generator=g).tolist() for _ in range(B)]
    responses = [torch.randint(0, V, (_randint(g, 1, 8),), generator=g).tolist() for _ in range(B)]
    responses[0][-1] = pad_id  # a response token equal to pad_id (an EOS that doubles as padding)
    expected = ref.sft_labels(prompts, responses, pad_id, max_len)
    _expect_labels(impl, prompts, responses, pad_id, max_len,
                   f"`sft_labels(prompts={prompts}, responses={responses}, pad_id={pad_id}, max_len={max_len})`",
                   expected=expected)


# --- sft_loss ------------------------------------------------------------------------------


def _loss(logits, labels, variant="ok"):
    """The next-token loss written out token by token, in float64."""
    logp = logits.double().log_softmax(-1)
    B, T, _ = logits.shape
    terms = []
    for b in range(B):
        for t in range(T - 1):
            if variant == "no_shift":
                pos, target = t, int(labels[b, t])
            elif variant == "wrong_way":
                pos, target = t + 1, int(labels[b, t])
            else:
                pos, target = t, int(labels[b, t + 1])
            if target != IGNORE:
                terms.append(-logp[b, pos, target].item())
        if variant == "no_shift" and int(labels[b, T - 1]) != IGNORE:
            terms.append(-logp[b, T - 1, int(labels[b, T - 1])].item())
    total = sum(terms)
    if not terms:  # a mistake that finds no labelled token: nothing to compare with
        return float("nan")
    if variant == "sum":
        return total
    if variant == "all_positions":
        return total / (B * (T - 1))
    return total / len(terms)


_LOSS_MISTAKES = {
    "compared logits[:, t] with labels[:, t] (no shift): the logits at position t predict the token at t + 1, "
    "so use logits[:, :-1] against labels[:, 1:]": "no_shift",
    "shifted the wrong way (logits[:, 1:] against labels[:, :-1])": "wrong_way",
    "summed the token losses instead of averaging them": "sum",
    "averaged over every position, ignored ones included; average over the labelled tokens only": "all_positions",
}


def _expect_loss(impl, logits, labels, what, expected=None):
    expected = _loss(logits, labels) if expected is None else float(expected)
    suspects = {label: _loss(logits, labels, v) for label, v in _LOSS_MISTAKES.items()}
    got = impl.sft_loss(logits, labels)
    if isinstance(got, (int, float)):
        got = torch.tensor(float(got))
    expect_close(got, torch.tensor(expected), what, suspects=suspects,
                 hint="Expected cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100).")


@pytest.mark.points(2)
def test_sft_loss_matches_token_by_token_sum(impl):
    g = _gen(1)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, IGNORE],
                           [IGNORE, 2, 6, 0, 1]])
    _expect_loss(impl, logits, labels, "`sft_loss(logits (2, 5, 7), labels)`")


def test_sft_loss_ignores_prompt_predictions(impl):
    # Changing what the model predicts at positions whose next label is -100 must not move the loss.
    g = _gen(2)
    logits = torch.randn(1, 6, 5, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 1, 2, IGNORE]])
    changed = logits.clone()
    changed[0, :2] = torch.randn(2, 5, generator=g) * 5  # predictions of tokens 1 and 2: prompt
    changed[0, 5] = torch.randn(5, generator=g) * 5  # the last position predicts nothing
    first, second = impl.sft_loss(logits, labels), impl.sft_loss(changed, labels)
    first, second = float(first), float(second)
    if not math.isclose(first, second, rel_tol=1e-5, abs_tol=1e-6):
        fail(f"`sft_loss` changed from {first:.6g} to {second:.6g} when only the predictions for prompt positions "
             "(and the last position, which predicts nothing) changed. Only logits[:, t] with labels[:, t + 1] != -100 "
             "may count: shift, then ignore -100.")
    _expect_loss(impl, logits, labels, "`sft_loss(logits (1, 6, 5), labels)`")


@pytest.mark.hidden
def test_sft_loss_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T, V = _randint(g, 1, 4), _randint(g, 2, 9), _randint(g, 2, 12)
    logits = torch.randn(B, T, V, generator=g) * 2
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[torch.rand(B, T, generator=g) < 0.4] = IGNORE
    labels[0, -1] = _randint(g, 0, V)  # at least one labelled token
    expected = ref.sft_loss(logits, labels)
    _expect_loss(impl, logits, labels, f"`sft_loss(logits {tuple(logits.shape)}, labels {labels.tolist()})`", expected)
