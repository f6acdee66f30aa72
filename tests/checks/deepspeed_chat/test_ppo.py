"""Checks for step 3 of DeepSpeed-Chat: compute_rewards, the PPO losses, GAE, and the way
train_rlhf wires them together.

Visible checks use small hand-made batches and compare with the solution's recorded answers
(the hand-worked comments show where the numbers come from); a wrong answer that matches a
known mistake is named after it. Hidden checks draw batches from the run's seed.

Alignment (as in the original): log-probs, values and the action mask have length L - 1, and
position t scores token t + 1; the response's first position is start = prompts_len - 1.
"""
import pytest
import torch

from grader.checking import expect_close, expect_shape, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

# --- batches ------------------------------------------------------------------------------


def _experience(g, B, prompts_len, L, left_pad=True):
    """attention_mask (B, L) with left-padded prompts and right-padded responses, and
    log-probs, ref log-probs, values (B, L - 1) and scores (B,)."""
    attention_mask = torch.ones(B, L, dtype=torch.long)
    for j in range(B):
        if left_pad and prompts_len > 2:
            attention_mask[j, : _randint(g, 0, prompts_len - 1)] = 0
        n = _randint(g, 1, L - prompts_len + 1)  # real response tokens
        attention_mask[j, prompts_len + n:] = 0
    logprobs = -torch.rand(B, L - 1, generator=g) * 3
    ref_logprobs = -torch.rand(B, L - 1, generator=g) * 3
    values = torch.randn(B, L - 1, generator=g)
    score = torch.randn(B, generator=g) * 6
    return attention_mask, logprobs, ref_logprobs, values, score


# --- compute_rewards -----------------------------------------------------------------------


def _hand_batch():
    # prompts_len 3, L 8: log-probs have 7 positions, the response starts at start = 2.
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1],  # a response of 5 tokens filling the sequence
                                   [0, 1, 1, 1, 1, 1, 0, 0]])  # left-padded prompt, 3 response tokens, 2 pads
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -1.5, -0.2, -0.7, -3.0],
                             [-0.4, -0.9, -1.2, -0.3, -2.5, -0.8, -0.6]])
    ref_logprobs = torch.tensor([[-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0],
                                 [-0.4, -0.5, -1.0, -0.8, -2.0, -0.1, -0.6]])
    return attention_mask, logprobs, ref_logprobs


@pytest.mark.exercise("compute_rewards")
@pytest.mark.points(2)
def test_compute_rewards_hand_worked(impl, recorded):
    attention_mask, logprobs, ref_logprobs = _hand_batch()
    action_mask = attention_mask[:, 1:]
    score = torch.tensor([7.5, -2.0])
    # KL penalties -0.1 * (logprob - ref_logprob):
    #   row 0: [0, 0.1, -0.05, 0.05, -0.08, -0.03, 0.2]; n = 5, ends = 2 + 5 + 1 = 8, past the end,
    #          so the score 7.5, clipped to 5, lands on the last position: 0.2 + 5 = 5.2.
    #   row 1: [0, 0.04, 0.02, -0.05, 0.05, 0.07, 0]; n = 3, ends = 6, so the score -2 lands on
    #          position 5 (rewards[1, 2:6][-1]): 0.07 - 2 = -1.93.
    expected = recorded.compute_rewards(3, logprobs, ref_logprobs, score, action_mask, kl_ctl=0.1, clip_reward_value=5)
    got = impl.compute_rewards(3, logprobs, ref_logprobs, score, action_mask, kl_ctl=0.1, clip_reward_value=5)
    expect_close(got, expected, "`compute_rewards(3, logprobs, ref_logprobs, [7.5, -2.0], action_mask)` on the hand-made batch",
                 hint="Expected -kl_ctl * (logprob - ref_logprob) everywhere, plus the clipped score at "
                      "rewards[j, start:ends[j]][-1] with start = prompts_len - 1, ends = start + n + 1.")


@pytest.mark.exercise("compute_rewards")
def test_compute_rewards_defaults(impl, recorded):
    attention_mask, logprobs, ref_logprobs = _hand_batch()
    action_mask = attention_mask[:, 1:]
    score = torch.tensor([-9.0, 3.0])
    expected = recorded.compute_rewards(3, logprobs, ref_logprobs, score, action_mask)
    got = impl.compute_rewards(3, logprobs, ref_logprobs, score, action_mask)
    expect_close(got, expected, "`compute_rewards` with its default kl_ctl and clip_reward_value, score [-9, 3]",
                 hint="The defaults are kl_ctl = 0.1 and clip_reward_value = 5 (so -9 becomes -5).")
    if not torch.equal(logprobs, _hand_batch()[1]):
        fail("`compute_rewards` changed the logprobs you passed in: build the rewards in a new tensor.")


@pytest.mark.exercise("compute_rewards")
@pytest.mark.hidden
def test_compute_rewards_random(impl, ref, seed):
    g = _gen(seed)
    B, prompts_len = _randint(g, 1, 6), _randint(g, 2, 6)
    L = prompts_len + _randint(g, 1, 8)
    attention_mask, logprobs, ref_logprobs, _, score = _experience(g, B, prompts_len, L)
    action_mask = attention_mask[:, 1:]
    kl_ctl, clip = [(0.1, 5), (0.05, 2.0), (0.3, 1.0)][seed % 3]
    expected = ref.compute_rewards(prompts_len, logprobs.clone(), ref_logprobs, score, action_mask, kl_ctl, clip)
    got = impl.compute_rewards(prompts_len, logprobs, ref_logprobs, score, action_mask, kl_ctl=kl_ctl,
                               clip_reward_value=clip)
    expect_close(got, expected, f"`compute_rewards` for a batch of {B}, prompts_len {prompts_len}, L {L}, "
                                f"kl_ctl {kl_ctl}, clip_reward_value {clip}")


# --- actor_loss_fn and critic_loss_fn ------------------------------------------------------------


def _scalar(got, what):
    got = expect_shape(got, (), what, hint="The loss is one number: a 0-dimensional tensor.")
    return got


@pytest.mark.exercise("ppo_losses")
@pytest.mark.points(2)
def test_actor_loss_hand_worked(impl, recorded):
    logprobs = torch.tensor([[-1.0, -0.5, -2.0, -1.5, -1.0]])
    old_logprobs = torch.tensor([[-1.5, -0.5, -1.0, -1.0, -3.0]])  # ratios e^0.5, 1, e^-1, e^-0.5, (masked)
    advantages = torch.tensor([[1.0, -2.0, -0.5, 1.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    # per position max(-A r, -A clip(r, 0.8, 1.2)): max(-1.649, -1.2) = -1.2; max(2, 2) = 2;
    # max(0.184, 0.4) = 0.4; max(-0.607, -0.8) = -0.607; the last is masked out.
    # Masked mean: (-1.2 + 2 + 0.4 - e^-0.5) / 4 = 0.148367...
    expected = recorded.actor_loss_fn(logprobs, old_logprobs, advantages, mask)
    got = _scalar(impl.actor_loss_fn(logprobs, old_logprobs, advantages, mask), "`actor_loss_fn(...)`")
    expect_close(got, expected, "`actor_loss_fn` on the hand-made example (cliprange 0.2)",
                 hint="Expected the masked mean of max(-A * ratio, -A * clamp(ratio, 0.8, 1.2)).")


@pytest.mark.exercise("ppo_losses")
@pytest.mark.points(2)
def test_critic_loss_hand_worked(impl, recorded):
    values = torch.tensor([[1.0, 0.0, 2.0, 5.0, 3.0]])
    old_values = torch.tensor([[0.5, 0.1, 2.1, 0.0, 2.0]])  # clipped to [0.3, 0.7], [-0.1, 0.3], [1.9, 2.3], [1.8, 2.2]
    returns = torch.tensor([[2.0, -1.0, 2.0, 9.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0]])
    # squared errors (value, clipped value): (1, 1.69) -> 1.69; (1, 1) -> 1; (0, 0) -> 0; masked;
    # (1, 0.04) -> 1. 0.5 * (1.69 + 1 + 0 + 1) / 4 = 0.46125
    expected = recorded.critic_loss_fn(values, old_values, returns, mask)
    got = _scalar(impl.critic_loss_fn(values, old_values, returns, mask), "`critic_loss_fn(...)`")
    expect_close(got, expected, "`critic_loss_fn` on the hand-made example (cliprange_value 0.2)",
                 hint="Expected 0.5 * masked mean of max((V - R)^2, (clamp(V, old - 0.2, old + 0.2) - R)^2).")


@pytest.mark.exercise("ppo_losses")
@pytest.mark.hidden
def test_ppo_losses_random(impl, ref, seed):
    g = _gen(seed)
    B, R = _randint(g, 1, 5), _randint(g, 1, 10)
    mask = (torch.rand(B, R, generator=g) < 0.8).float()
    mask[:, 0] = 1
    logprobs, old_logprobs = -torch.rand(B, R, generator=g) * 2, -torch.rand(B, R, generator=g) * 2
    advantages = torch.randn(B, R, generator=g)
    cliprange = [0.2, 0.1, 0.3][seed % 3]
    expect_close(impl.actor_loss_fn(logprobs, old_logprobs, advantages, mask, cliprange=cliprange),
                 ref.actor_loss_fn(logprobs, old_logprobs, advantages, mask, cliprange),
                 f"`actor_loss_fn` on a random ({B}, {R}) batch, cliprange {cliprange}")
    values, old_values, returns = (torch.randn(B, R, generator=g) for _ in range(3))
    expect_close(impl.critic_loss_fn(values, old_values, returns, mask, cliprange_value=cliprange),
                 ref.critic_loss_fn(values, old_values, returns, mask, cliprange),
                 f"`critic_loss_fn` on a random ({B}, {R}) batch, cliprange_value {cliprange}")


# --- get_advantages_and_returns -----------------------------------------------------------------


def _pair(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (advantages, returns), got {type(result).__name__}.")
    return result


def _expect_gae(result, rewards, start, what, expected):
    advantages, returns = _pair(result, what)
    want_adv, want_ret = expected
    R = rewards.size(1) - start
    hint = (f"Advantages cover the response only, positions start..L-2: {R} per row "
            f"(rewards.size(1) - start = {rewards.size(1)} - {start}).")
    expect_close(advantages, want_adv, f"{what}: advantages", hint=hint)
    expect_close(returns, want_ret, f"{what}: returns", hint="The returns are the advantages on top of the critic's values at the response positions.")


@pytest.mark.exercise("advantages")
@pytest.mark.points(2)
def test_gae_hand_worked(impl, recorded):
    values = torch.tensor([[9.0, 0.5, 1.0, 2.0, 1.5]])
    rewards = torch.tensor([[9.0, 0.0, 0.1, -0.2, 1.0]])
    # start 1, gamma 1, lam 0.95. deltas r_t + V_{t+1} - V_t from t = 1: 0.5, 1.1, -0.7, -0.5 (V_5 = 0).
    # Backwards: A_4 = -0.5; A_3 = -0.7 + 0.95 * -0.5 = -1.175; A_2 = 1.1 + 0.95 * -1.175 = -0.01625;
    # A_1 = 0.5 + 0.95 * -0.01625 = 0.4845625. Returns add values[:, 1:] = [0.5, 1, 2, 1.5].
    _expect_gae(impl.get_advantages_and_returns(values, rewards, 1), rewards, 1,
                "`get_advantages_and_returns(values, rewards, start=1)` on the hand-made example",
                recorded.get_advantages_and_returns(values, rewards, 1))


@pytest.mark.exercise("advantages")
def test_gae_with_lam_one_is_reward_to_go(impl, recorded):
    g = _gen(11)
    values, rewards = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    start = 2
    # gamma = lam = 1: the deltas telescope, A_t = sum of the rewards from t on - V_t.
    to_go = rewards.double().flip(1).cumsum(1).flip(1)[:, start:]
    recorded.get_advantages_and_returns(values, rewards, start, gamma=1.0, lam=1.0)  # names a known mistake
    _expect_gae(impl.get_advantages_and_returns(values, rewards, start, gamma=1.0, lam=1.0), rewards, start,
                "`get_advantages_and_returns(values, rewards, 2, gamma=1.0, lam=1.0)`",
                (to_go - values[:, start:].double(), to_go))


@pytest.mark.exercise("advantages")
def test_advantages_are_detached(helpers):
    # Values that require a gradient, as the critic's do: the advantages are targets for the
    # actor's loss, so no gradient may flow back through them into the critic.
    g = _gen(12)
    graph = helpers.advantages_graph(torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g), 1)
    if not isinstance(graph, dict) or graph.get("requires_grad") or graph.get("has_grad_fn"):
        fail("`get_advantages_and_returns(values, rewards, 1)` with values that require a gradient returned "
             "advantages that still carry a graph back to the values (requires_grad True). The advantages are "
             "fixed targets of the PPO step: a gradient through them would train the critic through the actor's loss.")


@pytest.mark.exercise("advantages")
@pytest.mark.hidden
def test_gae_random(impl, ref, seed):
    g = _gen(seed)
    B, length = _randint(g, 1, 5), _randint(g, 2, 12)
    start = _randint(g, 0, length)
    gamma, lam = [(1.0, 0.95), (0.9, 0.8), (0.99, 0.5)][seed % 3]
    values, rewards = torch.randn(B, length, generator=g), torch.randn(B, length, generator=g)
    expected = ref.get_advantages_and_returns(values, rewards, start, gamma, lam)
    _expect_gae(impl.get_advantages_and_returns(values, rewards, start, gamma=gamma, lam=lam), rewards, start,
                f"`get_advantages_and_returns` for ({B}, {length}), start {start}, gamma {gamma}, lam {lam}", expected)


# --- train_rlhf_losses ------------------------------------------------------------------------


def _expect_rlhf(result, what, want):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (actor_loss, critic_loss), got {type(result).__name__}.")
    for i, name in enumerate(("actor_loss", "critic_loss")):
        expect_close(result[i], want[i], f"{what}: {name}",
                     hint="Expected rewards from compute_rewards, zeroed with the old values from ends on, GAE from "
                          "start, then both losses on the response only, with the action mask aligned with the log-probs.")


@pytest.mark.exercise("ppo_step")
@pytest.mark.points(2)
def test_train_rlhf_losses_on_a_padded_batch(impl, recorded):
    g = _gen(21)
    prompts_len, L = 4, 10
    attention_mask, old_logprobs, ref_logprobs, old_values, score = _experience(g, 3, prompts_len, L)
    attention_mask[0, prompts_len + 2:] = 0  # row 0: 2 response tokens, then padding
    attention_mask[1, prompts_len:] = 1  # row 1: the response fills the sequence
    logprobs = old_logprobs + 0.3 * torch.randn(old_logprobs.shape, generator=g)
    values = old_values + 0.5 * torch.randn(old_values.shape, generator=g)
    args = (prompts_len, old_logprobs, ref_logprobs, score, old_values, attention_mask, logprobs, values)
    copies = [t.clone() for t in args[1:]]
    expected = recorded.train_rlhf_losses(*args)
    result = impl.train_rlhf_losses(*args)
    _expect_rlhf(result, "`train_rlhf_losses` on a batch of 3 (prompts_len 4, L 10)", expected)
    if any(not torch.equal(a, b) for a, b in zip(args[1:], copies)):
        fail("`train_rlhf_losses` changed its inputs: zero copies of the rewards and old values, not the experience.")


@pytest.mark.exercise("ppo_step")
@pytest.mark.hidden
def test_train_rlhf_losses_random(impl, ref, seed):
    g = _gen(seed)
    B, prompts_len = _randint(g, 1, 5), _randint(g, 2, 6)
    L = prompts_len + _randint(g, 2, 9)
    attention_mask, old_logprobs, ref_logprobs, old_values, score = _experience(g, B, prompts_len, L)
    logprobs = old_logprobs + 0.3 * torch.randn(old_logprobs.shape, generator=g)
    values = old_values + 0.5 * torch.randn(old_values.shape, generator=g)
    args = (prompts_len, old_logprobs, ref_logprobs, score, old_values, attention_mask, logprobs, values)
    expected = ref.train_rlhf_losses(*(t.clone() if isinstance(t, torch.Tensor) else t for t in args))
    _expect_rlhf(impl.train_rlhf_losses(*args), f"`train_rlhf_losses` on a batch of {B} (prompts_len {prompts_len}, L {L})",
                 expected)
