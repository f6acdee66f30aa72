"""Checks for step 2 of DeepSpeed-Chat: the reward model's pairwise loss from the first token
where the chosen and the rejected answer differ, and its end scores.

Visible checks use hand-made pairs (the comments work the numbers out) and compare with the
solution's recorded answers; a wrong answer that matches a known mistake is named after it.
"""
import pytest
import torch

from grader.checking import expect_close, expect_shape, fail

pytestmark = pytest.mark.exercise("reward_model_loss")


def _expect_rm(result, batch, what, want):
    if not isinstance(result, dict) or not {"loss", "chosen_end_scores", "rejected_end_scores"} <= set(result):
        got = sorted(result) if isinstance(result, dict) else type(result).__name__
        fail(f"{what}: expected a dict with 'loss', 'chosen_end_scores' and 'rejected_end_scores', got {got}.")
    loss = expect_shape(result["loss"], (), f"{what}: loss", hint="The loss is one number, averaged over the batch.")
    expect_close(loss, want["loss"], f"{what}: loss",
                 hint="Per pair: the mean of -logsigmoid(chosen_rewards - rejected_rewards) over positions "
                      "divergence..end-1; then the mean over the pairs.")
    B = batch
    for key in ("chosen_end_scores", "rejected_end_scores"):
        expect_close(result[key], want[key], f"{what}: {key}",
                     hint=f"One score per sequence, ({B},): the reward at its last non-pad token, index first_pad - 1.")


def test_pairwise_loss_from_the_first_difference(impl, recorded):
    pad = 0
    # A shared prompt [5, 6], then different answers; row 0's rejected answer is shorter.
    chosen_ids = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 4, 4, 0, 0]])
    rejected_ids = torch.tensor([[5, 6, 7, 3, 0, 0], [5, 6, 8, 4, 4, 4]])
    chosen_rewards = torch.tensor([[9.0, 9.0, 9.0, 1.0, 2.0, 0.5], [9.0, 9.0, 0.3, -0.2, 0.1, 0.0]])
    rejected_rewards = torch.tensor([[-9.0, -9.0, -9.0, 0.5, 1.0, 0.0], [-9.0, -9.0, 0.2, 0.4, -1.0, 0.7]])
    # row 0: divergence at 3, ends at 5 and 4 -> positions 3..4: margins 0.5, 1.0
    # row 1: divergence at 2, ends at 4 and 6 -> positions 2..5: margins 0.1, -0.6, 1.1, -0.7
    # loss = mean over the rows of the mean of -logsigmoid(margins); end scores [2.0, -0.2], [0.5, 0.7]
    args = (chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad)
    _expect_rm(impl.reward_model_loss(*args), 2, "`reward_model_loss` on two hand-made pairs",
               recorded.reward_model_loss(*args))


def test_identical_pair_and_unpadded_sequences(impl, recorded):
    pad = 0
    chosen_ids = torch.tensor([[3, 4, 5, 0], [3, 4, 5, 6]])
    rejected_ids = torch.tensor([[3, 4, 5, 0], [3, 4, 7, 8]])  # row 0 identical; row 1 without padding
    chosen_rewards = torch.tensor([[1.0, 2.0, 3.0, 0.4], [0.0, 0.0, 1.5, 2.5]])
    rejected_rewards = torch.tensor([[1.0, 2.0, 3.0, -0.6], [0.0, 0.0, 0.5, -0.5]])
    # row 0: identical, so only the last position (3) is compared: margin 1.0; end scores at 2.
    # row 1: divergence at 2, no padding (end 4): margins 1.0, 3.0; end scores at 3.
    args = (chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad)
    _expect_rm(impl.reward_model_loss(*args), 2, "`reward_model_loss` on an identical pair and a pair without padding",
               recorded.reward_model_loss(*args))


@pytest.mark.hidden
def test_reward_model_loss_random(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    B, T, pad = int(torch.randint(1, 6, (), generator=g)), int(torch.randint(3, 12, (), generator=g)), 0
    prompt = int(torch.randint(1, T - 1, (), generator=g))
    chosen_ids = torch.randint(1, 20, (B, T), generator=g)
    rejected_ids = chosen_ids.clone()
    for i in range(B):
        if torch.rand((), generator=g) < 0.85:  # most pairs differ somewhere after the prompt
            rejected_ids[i, prompt:] = torch.randint(1, 20, (T - prompt,), generator=g)
        c_len, r_len = (int(torch.randint(prompt + 1, T + 1, (), generator=g)) for _ in range(2))
        chosen_ids[i, c_len:] = pad
        rejected_ids[i, r_len:] = pad
    chosen_rewards, rejected_rewards = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    args = (chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad)
    _expect_rm(impl.reward_model_loss(*args), B, f"`reward_model_loss` on {B} random pairs of length {T}",
               ref.reward_model_loss(*args))
