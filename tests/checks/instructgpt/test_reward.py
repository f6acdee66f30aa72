"""Checks for the reward model: the ranking loss of Eq. (1), the offset that centres the
demonstrations on 0, and a tiny reward model trained on synthetic rankings.

Visible checks use hand-worked losses and an independent scoring of the trained weights;
hidden checks draw rewards, masks and held-out responses from the run's seed.
"""
import math

import pytest
import torch
from torch import nn

from grader.checking import expect_close, expect_shape, fail


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


def _softplus(x):
    """-log sigmoid(-x) = log(1 + e^x), stable for large |x|."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


# --- reward_ranking_loss -------------------------------------------------------------------


def _ranking_loss(rewards, mask=None, variant="ok"):
    """Eq. (1) written out pair by pair, in float64; `variant` reproduces known mistakes."""
    rewards = rewards.double().tolist()
    B, K = len(rewards), len(rewards[0])
    mask = [[True] * K for _ in range(B)] if mask is None or variant == "mask_ignored" else mask.bool().tolist()
    per_prompt, all_pairs = [], []
    for b in range(B):
        kept = [k for k in range(K) if mask[b][k]]
        if variant == "adjacent":
            pairs = list(zip(kept, kept[1:]))
        elif variant == "best_only":
            pairs = [(kept[0], j) for j in kept[1:]]
        else:
            pairs = [(i, j) for n, i in enumerate(kept) for j in kept[n + 1:]]
        losses = []
        for i, j in pairs:
            d = rewards[b][i] - rewards[b][j]
            losses.append(_softplus(d) if variant == "flipped" else _softplus(-d))  # -log sigmoid(d) = softplus(-d)
        per_prompt.append(sum(losses) if variant == "no_mean" else sum(losses) / len(losses))
        all_pairs += losses
    if variant == "batch_pairs":
        return sum(all_pairs) / len(all_pairs)
    return sum(per_prompt) / B


_RANKING_MISTAKES = {
    "flipped the sign: the better response (lower index, ranked first) must get the higher reward, "
    "so the loss is -log sigmoid(r_better - r_worse)": "flipped",
    "compared only neighbours in the ranking (k with k + 1); every pair i < j is a comparison": "adjacent",
    "compared only the best response with the others; every pair i < j is a comparison": "best_only",
    "summed the pairs of a prompt without dividing by their number C(K, 2)": "no_mean",
}
_MASK_MISTAKES = {
    "averaged over all the pairs of the batch: the paper makes the C(K, 2) pairs of one prompt one batch element, "
    "so average per prompt first, then over the prompts": "batch_pairs",
    "ignored the mask: pairs with a missing response must not count": "mask_ignored",
}


def _ranking_suspects(rewards, mask=None):
    mistakes = dict(_RANKING_MISTAKES)
    if mask is not None:
        mistakes.update(_MASK_MISTAKES)
    return {label: _ranking_loss(rewards, mask, v) for label, v in mistakes.items()}


def _scalar(got, what):
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return torch.tensor(float(got))
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return got.reshape(())
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    fail(f"{what}: expected one number (a 0-d tensor), got {shape}. Average the per-prompt losses over the batch.")


def _expect_ranking(impl, rewards, mask, what, expected=None):
    expected = _ranking_loss(rewards, mask) if expected is None else float(expected)
    suspects = _ranking_suspects(rewards, mask)
    got = impl.reward_ranking_loss(rewards) if mask is None else impl.reward_ranking_loss(rewards, mask)
    expect_close(_scalar(got, what), torch.tensor(expected), what, suspects=suspects,
                 hint="Expected the mean over prompts of the mean over pairs i < j of -log sigmoid(r_i - r_j).")


@pytest.mark.exercise("reward_model")
@pytest.mark.points(2)
def test_ranking_loss_hand_worked(impl):
    # one prompt, K = 3 ranked responses with rewards 2 > 1 > 0: pairs (0,1), (0,2), (1,2) with
    # differences 1, 2, 1, so the loss is (2 log(1 + e^-1) + log(1 + e^-2)) / 3 = 0.2544
    rewards = torch.tensor([[2.0, 1.0, 0.0]])
    expected = (2 * math.log1p(math.exp(-1)) + math.log1p(math.exp(-2))) / 3
    _expect_ranking(impl, rewards, None, "`reward_ranking_loss([[2.0, 1.0, 0.0]])`", expected)
    rewards = torch.tensor([[0.5, 1.5, -1.0, 0.0], [3.0, -2.0, 1.0, 1.0]])
    _expect_ranking(impl, rewards, None, "`reward_ranking_loss` with B=2 prompts of K=4 responses")


@pytest.mark.exercise("reward_model")
@pytest.mark.points(2)
def test_ranking_loss_weights_each_prompt_once(impl):
    # prompt 0 has 4 responses (6 pairs), prompt 1 has 2 (1 pair): each prompt weighs 1/2
    rewards = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.0, 3.0, 99.0, 99.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    _expect_ranking(impl, rewards, mask, "`reward_ranking_loss(rewards, mask)` with 4 and 2 responses")


@pytest.mark.exercise("reward_model")
@pytest.mark.hidden
def test_ranking_loss_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, K = _randint(g, 1, 6), _randint(g, 4, 10)  # the paper's K = 4..9
    rewards = torch.randn(B, K, generator=g) * 2
    counts = torch.randint(2, K + 1, (B,), generator=g)
    counts[0] = K
    mask = torch.arange(K) < counts[:, None]
    for m in (None, mask):
        what = f"`reward_ranking_loss(rewards {tuple(rewards.shape)}{', mask with ' + str(counts.tolist()) + ' responses' if m is not None else ''})`"
        expected = ref.reward_ranking_loss(rewards) if m is None else ref.reward_ranking_loss(rewards, m)
        _expect_ranking(impl, rewards, m, what, expected)


# --- normalize_rewards ---------------------------------------------------------------------


def _normalize_suspects(rewards, demos):
    r, d = rewards.double(), demos.double()
    return {
        "subtracted the mean of the rewards themselves; the offset is the mean of the demonstrations' rewards": r - r.mean(),
        "added the demonstrations' mean instead of subtracting it": r + d.mean(),
        "also divided by a standard deviation; only the offset moves, the scale stays": (r - d.mean()) / d.std(),
    }


@pytest.mark.exercise("reward_model")
def test_normalize_rewards_hand_worked(impl):
    rewards, demos = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 2.0, 0.5])  # demonstrations' mean 1.0
    got = impl.normalize_rewards(rewards, demos)
    expect_close(got, torch.tensor([0.0, 1.0, 2.0]), "`normalize_rewards([1, 2, 3], demonstration_rewards=[0.5, 2, 0.5])`",
                 suspects=_normalize_suspects(rewards, demos),
                 hint="The demonstrations' mean is 1.0, so every reward moves down by 1.0.")
    after = impl.normalize_rewards(demos, demos)
    expect_close(expect_shape(after, (3,), "`normalize_rewards(demos, demos)`").mean(), torch.tensor(0.0),
                 "the mean of the normalised demonstrations' rewards", hint="Demonstrations must score 0 on average.")


@pytest.mark.exercise("reward_model")
@pytest.mark.hidden
def test_normalize_rewards_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    rewards = torch.randn(_randint(g, 1, 4), _randint(g, 1, 6), generator=g) * 3 + 1
    demos = torch.randn(_randint(g, 2, 20), generator=g) * 2 + _randint(g, -3, 4)
    expect_close(impl.normalize_rewards(rewards, demos), ref.normalize_rewards(rewards, demos),
                 f"`normalize_rewards(rewards {tuple(rewards.shape)}, demonstration_rewards {tuple(demos.shape)})`",
                 suspects=_normalize_suspects(rewards, demos))


# --- train_reward_model --------------------------------------------------------------------

# The course's synthetic task (RM_TASK in the exercise), restated here: tokens 0..11, responses
# of 6 tokens, goodness of token v = cos(2 v), quality of a response = mean goodness.
VOCAB, D, LENGTH = 12, 8, 6
RM_STEPS, RM_SEED = 150, 0


def _goodness():
    return torch.cos(2.0 * torch.arange(VOCAB, dtype=torch.float64))


def _held_out_pairs(seed, n=400, margin=0.05):
    """Pairs of fresh random responses whose true qualities differ by more than `margin`."""
    g = _gen(seed)
    a = torch.randint(VOCAB, (n, LENGTH), generator=g)
    b = torch.randint(VOCAB, (n, LENGTH), generator=g)
    qa, qb = _goodness()[a].mean(1), _goodness()[b].mean(1)
    keep = (qa - qb).abs() > margin
    return a[keep], b[keep], (qa > qb)[keep]


def _score(state, tokens):
    """The RewardModel's forward, recomputed from its weights: head(mean of the embeddings)."""
    emb, w, bias = (state[k].double() for k in ("embed.weight", "head.weight", "head.bias"))
    return emb[tokens].mean(dim=1) @ w[0] + bias[0]  # (N,)


def _initial_state(seed):
    """The weights RewardModel gets in train_reward_model before any training."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        embed, head = nn.Embedding(VOCAB, D), nn.Linear(D, 1)
    return {"embed.weight": embed.weight.detach(), "head.weight": head.weight.detach(), "head.bias": head.bias.detach()}


def _checked_state(state, what):
    if not isinstance(state, dict):
        fail(f"{what}: model.state_dict() should be a dict of tensors, got {type(state).__name__}.")
    shapes = {"embed.weight": (VOCAB, D), "head.weight": (1, D), "head.bias": (1,)}
    if set(state) != set(shapes):
        fail(f"{what}: the model's weights are {sorted(state)}, expected {sorted(shapes)}: return the RewardModel "
             "that train_reward_model builds (RewardModel(vocab, d)), trained.")
    for key, shape in shapes.items():
        state[key] = expect_shape(state[key], shape, f"{what}: {key}")
    return state


def _expect_ranks_held_out(state, seed, eval_seed, what):
    state = _checked_state(state, what)
    a, b, a_better = _held_out_pairs(eval_seed)
    accuracy = float(((_score(state, a) > _score(state, b)) == a_better).double().mean())
    if accuracy >= 0.9:
        return
    initial = _initial_state(seed)
    unchanged = all(torch.allclose(state[k].double(), initial[k].double()) for k in state)
    if unchanged:
        why = ("the weights are exactly those of the untrained model: no optimizer step changed them. In every step "
               "call optimizer.zero_grad(), loss.backward() and optimizer.step().")
    elif accuracy < 0.2:
        why = ("the model ranks most pairs backwards: it learned to prefer the worse response. The loss must be "
               "-log sigmoid(r_better - r_worse), with rewards[:, 0] the best; check the sign in reward_ranking_loss "
               "and that you pass the rewards in the data's order (best first).")
    else:
        why = ("the model trained but did not learn the ranking: score all n * K responses with model(data.view(n * K, T)), "
               "reshape to (n, K) without reordering, and use reward_ranking_loss for all the steps with Adam at RM_TASK['lr'].")
    fail(f"{what}: the trained reward model ranks {accuracy:.0%} of {len(a)} held-out pairs of responses correctly, "
         f"expected at least 90% (an untrained model gets about 50%). Likely cause: {why}")


@pytest.mark.exercise("train_reward_model")
@pytest.mark.points(3)
def test_trained_reward_model_ranks_held_out_pairs(helpers):
    state = helpers.reward_model_weights(RM_STEPS, RM_SEED)
    _expect_ranks_held_out(state, RM_SEED, 2024, f"after `train_reward_model(steps={RM_STEPS}, seed={RM_SEED})`")


@pytest.mark.exercise("train_reward_model")
@pytest.mark.hidden
def test_trained_reward_model_ranks_pairs_from_seed(helpers, seed):
    train_seed = seed % 1000
    state = helpers.reward_model_weights(RM_STEPS, train_seed)
    _expect_ranks_held_out(state, train_seed, seed,
                           f"after `train_reward_model(steps={RM_STEPS}, seed={train_seed})`, on pairs drawn from seed {seed}")
