"""Checks for supervised fine-tuning: the labels (prompt and padding ignored) and the shifted
next-token loss.

Visible checks use small hand-made batches (the comments work the labels out) and compare with
the solution's recorded answers; a wrong answer that matches a known mistake is named after it.
Hidden checks draw random batches from the run's seed.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

pytestmark = pytest.mark.exercise("sft")

IGNORE = -100


# --- sft_labels ----------------------------------------------------------------------------


def _expect_labels(impl, prompts, responses, pad_id, max_len, what, expected):
    want_ids, want_labels = expected
    result = impl.sft_labels(prompts, responses, pad_id, max_len)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (input_ids, labels), got {type(result).__name__}.")
    input_ids, labels = result
    expect_equal(expect_shape(input_ids, want_ids.shape, f"{what}: input_ids").long(), want_ids, f"{what}: input_ids",
                 hint="Each row is the prompt, then the response, cut to max_len, then pad_id up to max_len.")
    labels = expect_shape(labels, want_labels.shape, f"{what}: labels")
    if labels.is_floating_point():
        fail(f"{what}: labels have dtype {labels.dtype}; cross_entropy needs integer (long) labels.")
    expect_equal(labels.long(), want_labels, f"{what}: labels",
                 hint="Labels are -100 on prompt tokens and padding and equal input_ids on response tokens.")


@pytest.mark.points(2)
def test_sft_labels_hand_worked(impl, recorded):
    # pad_id 0 is also a real token in the second response (an end-of-sequence token, say):
    # row 0 = [5 6 7 | 9 10 | pad], labels [-100 -100 -100 9 10 -100]
    # row 1 = [8 | 11 0 12 | pad pad], labels [-100 11 0 12 -100 -100]
    args = ([[5, 6, 7], [8]], [[9, 10], [11, 0, 12]], 0, 6)
    _expect_labels(impl, *args, "`sft_labels([[5, 6, 7], [8]], [[9, 10], [11, 0, 12]], pad_id=0, max_len=6)`",
                   recorded.sft_labels(*args))


def test_sft_labels_truncates_to_max_len(impl, recorded):
    # row 0 is cut inside its response: [3 4 | 10 11]; row 1's prompt alone is longer than
    # max_len, so no label survives: [5 6 7 8], all -100
    args = ([[3, 4], [5, 6, 7, 8, 9]], [[10, 11, 12, 13], [14]], 1, 4)
    _expect_labels(impl, *args, "`sft_labels([[3, 4], [5, 6, 7, 8, 9]], [[10, 11, 12, 13], [14]], pad_id=1, max_len=4)`",
                   recorded.sft_labels(*args))


@pytest.mark.hidden
def test_sft_labels_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, V, max_len = _randint(g, 1, 5), _randint(g, 4, 30), _randint(g, 3, 12)
    pad_id = _randint(g, 0, V)
    prompts = [torch.randint(0, V, (_randint(g, 1, 8),), generator=g).tolist() for _ in range(B)]
    responses = [torch.randint(0, V, (_randint(g, 1, 8),), generator=g).tolist() for _ in range(B)]
    responses[0][-1] = pad_id  # a response token equal to pad_id (an EOS that doubles as padding)
    _expect_labels(impl, prompts, responses, pad_id, max_len,
                   f"`sft_labels(prompts={prompts}, responses={responses}, pad_id={pad_id}, max_len={max_len})`",
                   ref.sft_labels(prompts, responses, pad_id, max_len))


# --- sft_loss ------------------------------------------------------------------------------


def _expect_loss(impl, logits, labels, what, expected):
    got = impl.sft_loss(logits, labels)
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        got = torch.tensor(float(got))
    expect_close(expect_shape(got, (), what, hint="The loss is one number: a 0-dimensional tensor."), expected, what,
                 hint="Expected the mean cross-entropy of logits[:, t] against labels[:, t + 1] over the labelled tokens.")


@pytest.mark.points(2)
def test_sft_loss_hand_made_batch(impl, recorded):
    g = _gen(1)
    logits = torch.randn(2, 5, 7, generator=g)
    # 6 labelled tokens; the logits at positions 1, 2 (row 0) and 0, 1, 2, 3 (row 1) predict them
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, IGNORE],
                           [IGNORE, 2, 6, 0, 1]])
    _expect_loss(impl, logits, labels, "`sft_loss(logits (2, 5, 7), labels)`", recorded.sft_loss(logits, labels))


def test_sft_loss_ignores_prompt_predictions(impl, recorded):
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
    _expect_loss(impl, logits, labels, "`sft_loss(logits (1, 6, 5), labels)`", recorded.sft_loss(logits, labels))


@pytest.mark.hidden
def test_sft_loss_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T, V = _randint(g, 1, 4), _randint(g, 2, 9), _randint(g, 2, 12)
    logits = torch.randn(B, T, V, generator=g) * 2
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[torch.rand(B, T, generator=g) < 0.4] = IGNORE
    labels[0, -1] = _randint(g, 0, V)  # at least one labelled token
    _expect_loss(impl, logits, labels, f"`sft_loss(logits {tuple(logits.shape)}, labels {labels.tolist()})`",
                 ref.sft_loss(logits, labels))
