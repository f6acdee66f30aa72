"""Checks for step 2 of DeepSpeed-Chat: the reward model's pairwise loss from the first token
where the chosen and the rejected answer differ, and its end scores.

The loss of reward_model.py is written out below per pair (with list indexing rather than the
original's nonzero calls); `variant` reproduces known mistakes. Visible checks use hand-made
pairs; the hidden check draws pairs from the run's seed and compares with the reference.
"""
import pytest
import torch
import torch.nn.functional as F

from grader.checking import expect_close, expect_shape, fail

pytestmark = pytest.mark.exercise("reward_model_loss")


def _first(ids, pad_id):
    ids = ids.tolist()
    return ids.index(pad_id) if pad_id in ids else len(ids)


def _rm(chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad_id, variant="ok"):
    """(loss, chosen_end_scores, rejected_end_scores) in float64."""
    B, T = chosen_ids.shape
    losses, c_scores, r_scores = [], [], []
    for i in range(B):
        c_end = _first(chosen_ids[i], pad_id)
        r_end = _first(rejected_ids[i], pad_id)
        differ = [t for t in range(T) if chosen_ids[i, t] != rejected_ids[i, t]]
        if differ:
            lo, hi = differ[0], max(c_end, r_end)
        else:
            lo, hi, r_end = T - 1, T, c_end
        if variant == "from_start":
            lo = 0
        if variant == "min_end" and differ:
            hi = min(c_end, r_end)
        c, r = chosen_rewards[i].double(), rejected_rewards[i].double()
        if variant == "last_only":
            margin = (c[c_end - 1] - r[r_end - 1]).view(1)
        else:
            margin = c[lo:hi] - r[lo:hi]
        if variant == "flipped":
            margin = -margin
        per_pair = -F.logsigmoid(margin)
        losses.append(per_pair.sum() if variant == "sum" else per_pair.mean())
        c_scores.append(c[c_end - 1])
        r_scores.append(r[r_end - 1])
    return torch.stack(losses).mean(), torch.stack(c_scores), torch.stack(r_scores)


_RM_MISTAKES = {
    "compared the pair from the first position: the shared prompt carries no preference, so start at the first "
    "position where chosen and rejected differ": "from_start",
    "compared the end scores only: DeepSpeed-Chat averages over every position from the divergence to the end": "last_only",
    "swapped chosen and rejected: the loss is -logsigmoid(chosen - rejected)": "flipped",
    "stopped at the earlier end: the comparison runs to end = max(c_ind, r_ind), the later first pad": "min_end",
    "summed over the positions instead of averaging them": "sum",
}


def _expect_rm(result, args, what, expected=None):
    if not isinstance(result, dict) or not {"loss", "chosen_end_scores", "rejected_end_scores"} <= set(result):
        got = sorted(result) if isinstance(result, dict) else type(result).__name__
        fail(f"{what}: expected a dict with 'loss', 'chosen_end_scores' and 'rejected_end_scores', got {got}.")
    want = expected or _rm(*args)
    suspects = {label: _rm(*args, variant=v)[0] for label, v in _RM_MISTAKES.items()}
    loss = expect_shape(result["loss"], (), f"{what}: loss", hint="The loss is one number, averaged over the batch.")
    expect_close(loss, want[0], f"{what}: loss", suspects=suspects,
                 hint="Per pair: the mean of -logsigmoid(chosen_rewards - rejected_rewards) over positions "
                      "divergence..end-1; then the mean over the pairs.")
    B = args[0].size(0)
    for key, value in (("chosen_end_scores", want[1]), ("rejected_end_scores", want[2])):
        expect_close(result[key], value, f"{what}: {key}",
                     hint=f"One score per sequence, ({B},): the reward at its last non-pad token, index first_pad - 1.")


def test_pairwise_loss_from_the_first_difference(impl):
    pad = 0
    # A shared prompt [5, 6], then different answers; row 0's rejected answer is shorter.
    chosen_ids = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 4, 4, 0, 0]])
    rejected_ids = torch.tensor([[5, 6, 7, 3, 0, 0], [5, 6, 8, 4, 4, 4]])
    chosen_rewards = torch.tensor([[9.0, 9.0, 9.0, 1.0, 2.0, 0.5], [9.0, 9.0, 0.3, -0.2, 0.1, 0.0]])
    rejected_rewards = torch.tensor([[-9.0, -9.0, -9.0, 0.5, 1.0, 0.0], [-9.0, -9.0, 0.2, 0.4, -1.0, 0.7]])
    # row 0: divergence at 3, ends at 5 and 4 -> positions 3..4: margins 0.5, 1.0
    # row 1: divergence at 2, ends at 4 and 6 -> positions 2..5: margins 0.1, -0.6, 1.1, -0.7
    by_hand = (-(F.logsigmoid(torch.tensor([0.5, 1.0])).mean())
               - F.logsigmoid(torch.tensor([0.1, -0.6, 1.1, -0.7])).mean()) / 2
    expected = (by_hand.double(), torch.tensor([2.0, -0.2], dtype=torch.float64),
                torch.tensor([0.5, 0.7], dtype=torch.float64))
    args = (chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad)
    _expect_rm(impl.reward_model_loss(*args), args, "`reward_model_loss` on two hand-made pairs", expected)


def test_identical_pair_and_unpadded_sequences(impl):
    pad = 0
    chosen_ids = torch.tensor([[3, 4, 5, 0], [3, 4, 5, 6]])
    rejected_ids = torch.tensor([[3, 4, 5, 0], [3, 4, 7, 8]])  # row 0 identical; row 1 without padding
    chosen_rewards = torch.tensor([[1.0, 2.0, 3.0, 0.4], [0.0, 0.0, 1.5, 2.5]])
    rejected_rewards = torch.tensor([[1.0, 2.0, 3.0, -0.6], [0.0, 0.0, 0.5, -0.5]])
    # row 0: identical, so only the last position (3) is compared: margin 1.0; end scores at 2.
    # row 1: divergence at 2, no padding (end 4): margins 1.0, 3.0; end scores at 3.
    by_hand = (-F.logsigmoid(torch.tensor(1.0)) - F.logsigmoid(torch.tensor([1.0, 3.0])).mean()) / 2
    expected = (by_hand.double(), torch.tensor([3.0, 2.5], dtype=torch.float64),
                torch.tensor([3.0, -0.5], dtype=torch.float64))
    args = (chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad)
    _expect_rm(impl.reward_model_loss(*args), args,
               "`reward_model_loss` on an identical pair and a pair without padding", expected)


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
    want = ref.reward_model_loss(*args)
    _expect_rm(impl.reward_model_loss(*args), args, f"`reward_model_loss` on {B} random pairs of length {T}",
               (want["loss"], want["chosen_end_scores"], want["rejected_end_scores"]))
