"""Checks for the reward model: the ranking loss of Eq. (1), the offset that centres the
demonstrations on 0, and a tiny reward model trained on synthetic rankings.

Visible checks use hand-made rewards (the comments work the numbers out) and compare with the
solution's recorded answers; a wrong answer that matches a known mistake is named after it. The
trained model is held to its first steps and scored on held-out pairs of responses. Hidden
checks draw rewards, masks and held-out responses from the run's seed.
"""
import pytest
import torch

from grader.checking import expect_close, expect_shape, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint


def _scalar(got, what):
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return torch.tensor(float(got))
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return got.reshape(())
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    fail(f"{what}: expected one number (a 0-d tensor), got {shape}. Average the per-prompt losses over the batch.")


# --- reward_ranking_loss -------------------------------------------------------------------


def _expect_ranking(impl, rewards, mask, what, expected):
    got = impl.reward_ranking_loss(rewards) if mask is None else impl.reward_ranking_loss(rewards, mask)
    expect_close(_scalar(got, what), expected, what,
                 hint="Expected the mean over prompts of the mean over pairs i < j of -log sigmoid(r_i - r_j).")


@pytest.mark.exercise("reward_model")
@pytest.mark.points(2)
def test_ranking_loss_hand_worked(impl, recorded):
    # one prompt, K = 3 ranked responses with rewards 2 > 1 > 0: pairs (0,1), (0,2), (1,2) with
    # differences 1, 2, 1, so the loss is (2 log(1 + e^-1) + log(1 + e^-2)) / 3 = 0.2512
    rewards = torch.tensor([[2.0, 1.0, 0.0]])
    _expect_ranking(impl, rewards, None, "`reward_ranking_loss([[2.0, 1.0, 0.0]])`", recorded.reward_ranking_loss(rewards))
    rewards = torch.tensor([[0.5, 1.5, -1.0, 0.0], [3.0, -2.0, 1.0, 1.0]])
    _expect_ranking(impl, rewards, None, "`reward_ranking_loss` with B=2 prompts of K=4 responses",
                    recorded.reward_ranking_loss(rewards))


@pytest.mark.exercise("reward_model")
@pytest.mark.points(2)
def test_ranking_loss_weights_each_prompt_once(impl, recorded):
    # prompt 0 has 4 responses (6 pairs), prompt 1 has 2 (1 pair): each prompt weighs 1/2
    rewards = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.0, 3.0, 99.0, 99.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    _expect_ranking(impl, rewards, mask, "`reward_ranking_loss(rewards, mask)` with 4 and 2 responses",
                    recorded.reward_ranking_loss(rewards, mask))


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


@pytest.mark.exercise("reward_model")
def test_normalize_rewards_hand_worked(impl, recorded):
    rewards, demos = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 2.0, 0.5])  # demonstrations' mean 1.0
    # so every reward moves down by 1.0: [0, 1, 2]
    expect_close(impl.normalize_rewards(rewards, demos), recorded.normalize_rewards(rewards, demos),
                 "`normalize_rewards([1, 2, 3], demonstration_rewards=[0.5, 2, 0.5])`",
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
                 f"`normalize_rewards(rewards {tuple(rewards.shape)}, demonstration_rewards {tuple(demos.shape)})`")


# --- train_reward_model --------------------------------------------------------------------

# The course's synthetic task (RM_TASK and token_goodness in the exercise): tokens 0..11,
# responses of 6 tokens, goodness of token v = cos(2 v), quality of a response = mean goodness.
VOCAB, D, LENGTH = 12, 8, 6
RM_STEPS, RM_SEED = 150, 0
# Weights compared after the first steps. The head's bias is not among them: the ranking loss does
# not change when every reward moves by the same amount, so its gradient is 0 up to rounding and
# Adam's step on it is rounding noise.
COMPARED = ("embed.weight", "head.weight")


def _held_out_pairs(seed, n=400, margin=0.05):
    """Pairs of fresh random responses whose true qualities differ by more than `margin`."""
    g = _gen(seed)
    a = torch.randint(VOCAB, (n, LENGTH), generator=g)
    b = torch.randint(VOCAB, (n, LENGTH), generator=g)
    goodness = torch.cos(2.0 * torch.arange(VOCAB, dtype=torch.float64))
    qa, qb = goodness[a].mean(1), goodness[b].mean(1)
    keep = (qa - qb).abs() > margin
    return a[keep], b[keep], (qa > qb)[keep]


def _score(state, tokens):
    """The given RewardModel's forward on the trained weights: head(mean of the token embeddings)."""
    emb, w, bias = (state[k].double() for k in ("embed.weight", "head.weight", "head.bias"))
    return emb[tokens].mean(dim=1) @ w[0] + bias[0]  # (N,)


def _checked_state(state, what):
    if not isinstance(state, dict):
        fail(f"{what}: model.state_dict() should be a dict of tensors, got {type(state).__name__}.")
    shapes = {"embed.weight": (VOCAB, D), "head.weight": (1, D), "head.bias": (1,)}
    if set(state) != set(shapes):
        fail(f"{what}: the model's weights are {sorted(state)}, expected {sorted(shapes)}: return the RewardModel "
             "that train_reward_model builds (RewardModel(vocab, d)), trained.")
    return {key: expect_shape(state[key], shape, f"{what}: {key}") for key, shape in shapes.items()}


def _weights(model):
    """The compared weights of a solution-side RewardModel (recorded or the reference's). Not
    head.bias: a pairwise loss gives it no gradient, so Adam moves it by rounding noise, which
    differs from one CPU's float kernels to another's."""
    return {"embed.weight": model.embed.weight, "head.weight": model.head.weight}


def _expect_steps(state, expected, what):
    for key in COMPARED:
        expect_close(state[key], expected[key], f"{what}: {key}",
                     hint="Each step scores all n * K responses at once, model(data.view(n * K, T)).view(n, K), "
                          "takes reward_ranking_loss of that, then optimizer.zero_grad(), loss.backward(), "
                          "optimizer.step(), with torch.optim.Adam(model.parameters(), lr=RM_TASK['lr']).")


def _expect_ranks_held_out(state, initial, eval_seed, what):
    """`initial`: the weights train_reward_model(steps=0) gives, the untrained model."""
    a, b, a_better = _held_out_pairs(eval_seed)
    accuracy = float(((_score(state, a) > _score(state, b)) == a_better).double().mean())
    if accuracy >= 0.9:
        return
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
@pytest.mark.points(2)
def test_reward_model_after_five_steps(helpers, recorded):
    # Every correct loop takes the same five Adam steps from the same start (seed 0), so the
    # weights agree up to rounding; a loop that never zeroes the gradients does not.
    what = "after `train_reward_model(steps=5, seed=0)`"
    state = _checked_state(helpers.reward_model_weights(5, 0), what)
    _expect_steps(state, _weights(recorded.train_reward_model(steps=5, seed=0)), what)


@pytest.mark.exercise("train_reward_model")
@pytest.mark.points(3)
def test_trained_reward_model_ranks_held_out_pairs(helpers):
    what = f"after `train_reward_model(steps={RM_STEPS}, seed={RM_SEED})`"
    state = _checked_state(helpers.reward_model_weights(RM_STEPS, RM_SEED), what)
    _expect_ranks_held_out(state, _checked_state(helpers.reward_model_weights(0, RM_SEED), what), 2024, what)


@pytest.mark.exercise("train_reward_model")
@pytest.mark.hidden
def test_trained_reward_model_ranks_pairs_from_seed(helpers, ref, seed):
    train_seed = seed % 1000
    what = f"after `train_reward_model(steps=5, seed={train_seed})`"
    _expect_steps(_checked_state(helpers.reward_model_weights(5, train_seed), what),
                  _weights(ref.train_reward_model(steps=5, seed=train_seed)), what)
    what = f"after `train_reward_model(steps={RM_STEPS}, seed={train_seed})`, on pairs drawn from seed {seed}"
    state = _checked_state(helpers.reward_model_weights(RM_STEPS, train_seed), what)
    _expect_ranks_held_out(state, _checked_state(helpers.reward_model_weights(0, train_seed), what), seed, what)
