"""Checks for step 3 of DeepSpeed-Chat: compute_rewards, the PPO losses, GAE, and the way
train_rlhf wires them together.

The formulas of ppo_trainer.py are written out below in float64, vectorised rather than with
the trainer's loops; their `variant` keywords reproduce known mistakes, which become the
`suspects` of the messages. Visible checks use small hand-made batches; hidden checks draw
batches from the run's seed and compare with the reference solution.

Alignment (as in the original): log-probs, values and the action mask have length L - 1, and
position t scores token t + 1; the response's first position is start = prompts_len - 1.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from grader.checking import expect_close, expect_shape, fail

KL_CTL, CLIP_REWARD_VALUE, CLIPRANGE, CLIPRANGE_VALUE, GAMMA, LAM = 0.1, 5, 0.2, 0.2, 1.0, 0.95


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


# --- formulas, in float64 ------------------------------------------------------------------


def _reward_position(prompts_len, action_mask, variant="ok"):
    """The index that receives the reward-model score, per row."""
    start = prompts_len - 1
    n = action_mask[:, start:].long().sum(1)  # real response tokens
    width = action_mask.size(1)
    return {
        "ok": (start + n).clamp(max=width - 1),  # rewards[j, start:start + n + 1][-1]
        "first": torch.full_like(n, start),
        "last_real": start + n - 1,
        "very_last": torch.full_like(n, width - 1),
    }[variant]


def _rewards(prompts_len, logprobs, ref_logprobs, score, action_mask, kl_ctl=KL_CTL, clip=CLIP_REWARD_VALUE,
             variant="ok"):
    rewards = -kl_ctl * (logprobs.double() - ref_logprobs.double())
    if variant == "kl_sign":
        rewards = -rewards
    score = score.double() if variant == "no_clip" else score.double().clamp(-clip, clip)
    rows = torch.arange(rewards.size(0))
    if variant == "every_token":
        start = prompts_len - 1
        inside = torch.zeros_like(rewards, dtype=torch.bool)
        inside[:, start:] = action_mask[:, start:].bool()
        return rewards + inside * score[:, None]
    position = _reward_position(prompts_len, action_mask, variant if variant in ("first", "last_real", "very_last") else "ok")
    rewards[rows, position] += score
    return rewards


_REWARD_MISTAKES = {
    "added the score to the first response position: it goes once, at the end, rewards[j, start:ends[j]][-1]": "first",
    "added the score at start + n - 1 (the last response token's log-prob); DeepSpeed-Chat's ends = start + n + 1 "
    "puts it at rewards[j, start:ends[j]][-1], which is start + n when the response is padded": "last_real",
    "added the score on the very last position even for padded responses; it goes at "
    "rewards[j, start:ends[j]][-1] with ends = start + action_mask[:, start:].sum(1) + 1": "very_last",
    "did not clip the score: clamp it to [-clip_reward_value, clip_reward_value] first": "no_clip",
    "flipped the sign of the KL penalty: it is -kl_ctl * (logprob - ref_logprob)": "kl_sign",
    "added the score to every response token: it is added once, on the last one": "every_token",
}


def _reward_suspects(*args, **kwargs):
    return {label: _rewards(*args, variant=v, **kwargs) for label, v in _REWARD_MISTAKES.items()}


def _actor(logprobs, old_logprobs, advantages, mask, cliprange=CLIPRANGE, variant="ok"):
    lp, old, adv, mask = (t.double() for t in (logprobs, old_logprobs, advantages, mask))
    ratio = ((lp - old) * mask).exp()
    if variant == "log_ratio":
        ratio = (lp - old) * mask
    sign = 1.0 if variant == "plus" else -1.0
    unclipped, clipped = sign * adv * ratio, sign * adv * ratio.clamp(1 - cliprange, 1 + cliprange)
    per_token = {"min": torch.minimum(unclipped, clipped), "no_clip": unclipped}.get(
        variant, torch.maximum(unclipped, clipped))
    if variant == "unmasked":
        return per_token.mean()
    return (per_token * mask).sum() / mask.sum()


_ACTOR_MISTAKES = {
    "took the min of the two losses: PPO takes the pessimistic one, max(-A * ratio, -A * clipped ratio)": "min",
    "did not clip the ratio: the second term uses clamp(ratio, 1 - cliprange, 1 + cliprange)": "no_clip",
    "forgot the minus sign: the loss to minimise is -A * ratio": "plus",
    "used the log-ratio as the ratio: ratio = exp(logprobs - old_logprobs)": "log_ratio",
    "averaged over every position: the loss is a masked mean, sum(loss * mask) / mask.sum()": "unmasked",
}


def _critic(values, old_values, returns, mask, cliprange_value=CLIPRANGE_VALUE, variant="ok"):
    v, old, ret, mask = (t.double() for t in (values, old_values, returns, mask))
    clipped = torch.minimum(torch.maximum(v, old - cliprange_value), old + cliprange_value)
    if variant == "clip_around_returns":
        clipped = torch.minimum(torch.maximum(v, ret - cliprange_value), ret + cliprange_value)
    loss1, loss2 = (v - ret) ** 2, (clipped - ret) ** 2
    per_token = {"min": torch.minimum(loss1, loss2), "no_clip": loss1}.get(variant, torch.maximum(loss1, loss2))
    half = 1.0 if variant == "no_half" else 0.5
    if variant == "unmasked":
        return half * per_token.mean()
    return half * (per_token * mask).sum() / mask.sum()


_CRITIC_MISTAKES = {
    "did not clip the values: clamp them to old_values +- cliprange_value and take the larger squared error": "no_clip",
    "took the smaller of the two squared errors: the loss takes the larger one, max(loss1, loss2)": "min",
    "forgot the factor 0.5 in front of the masked mean": "no_half",
    "clipped the values around the returns; they are clipped around old_values": "clip_around_returns",
    "averaged over every position: the loss is a masked mean, sum(loss * mask) / mask.sum()": "unmasked",
}


def _gae(values, rewards, start, gamma=GAMMA, lam=LAM, variant="ok"):
    """A_t = sum_k (gamma * lam)^k delta_{t+k} over the response, written as a matrix product."""
    v, r = values.double(), rewards.double()
    length = r.size(1)
    next_v = torch.cat([v[:, 1:], torch.zeros(v.size(0), 1, dtype=v.dtype)], dim=1)
    delta = (r + gamma * next_v - v)[:, start:]  # (B, R)
    if variant == "no_next_value":
        delta = (r - v)[:, start:]
    R = length - start
    k = torch.arange(R)
    decay = gamma * lam if variant != "no_lam" else gamma
    power = (k[None, :] - k[:, None]).double()  # (t, t'): t' - t
    if variant == "forward":
        power = -power
    weights = torch.where(power >= 0, decay ** power.clamp(min=0), torch.zeros((), dtype=torch.float64))
    advantages = delta @ weights.T  # (B, R): A_t = sum_t' weights[t, t'] delta_t'
    returns = advantages if variant == "returns_no_values" else advantages + v[:, start:]
    return advantages, returns


_GAE_MISTAKES = {
    "ran the recursion forwards; GAE runs backwards, from the last position down to start": "forward",
    "made the returns equal to the advantages: returns = advantages + values[:, start:]": "returns_no_values",
    "left out the next value: delta_t = r_t + gamma * V_{t+1} - V_t": "no_next_value",
    "dropped lam from the recursion: A_t = delta_t + gamma * lam * A_{t+1}": "no_lam",
}


def _gae_suspects(values, rewards, start, gamma=GAMMA, lam=LAM, which=0):
    return {label: _gae(values, rewards, start, gamma, lam, variant=v)[which] for label, v in _GAE_MISTAKES.items()}


def _rlhf_losses(prompts_len, old_logprobs, ref_logprobs, score, old_values, attention_mask, logprobs, values,
                 variant="ok"):
    start = prompts_len - 1
    action_mask = attention_mask[:, :-1] if variant == "mask_first" else attention_mask[:, 1:]
    rewards = _rewards(prompts_len, old_logprobs, ref_logprobs, score, action_mask)
    old_values = old_values.double().clone()
    if variant != "no_zeroing":
        ends = start + action_mask[:, start:].sum(1) + 1
        after_end = torch.arange(rewards.size(1))[None, :] >= ends[:, None]
        rewards, old_values = rewards.masked_fill(after_end, 0), old_values.masked_fill(after_end, 0)
    advantages, returns = _gae(old_values, rewards, start)
    mask = action_mask[:, start:]
    actor = _actor(logprobs[:, start:], old_logprobs[:, start:], advantages, mask)
    critic = _critic(values[:, start:], old_values[:, start:], returns, mask)
    return actor, critic


_RLHF_MISTAKES = {
    "did not zero the rewards and old values from ends = start + n + 1 on, so padding leaks into GAE": "no_zeroing",
    "took attention_mask[:, :-1] as the action mask; it is attention_mask[:, 1:], aligned with the log-probs": "mask_first",
}


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
def test_compute_rewards_hand_worked(impl):
    attention_mask, logprobs, ref_logprobs = _hand_batch()
    action_mask = attention_mask[:, 1:]
    score = torch.tensor([7.5, -2.0])
    # KL penalties -0.1 * (logprob - ref_logprob):
    #   row 0: [0, 0.1, -0.05, 0.05, -0.08, -0.03, 0.2]; n = 5, ends = 2 + 5 + 1 = 8, past the end,
    #          so the score 7.5, clipped to 5, lands on the last position: 0.2 + 5 = 5.2.
    #   row 1: [0, 0.04, 0.02, -0.05, 0.05, 0.07, 0]; n = 3, ends = 6, so the score -2 lands on
    #          position 5 (rewards[1, 2:6][-1]): 0.07 - 2 = -1.93.
    expected = torch.tensor([[0.0, 0.1, -0.05, 0.05, -0.08, -0.03, 5.2],
                             [0.0, 0.04, 0.02, -0.05, 0.05, -1.93, 0.0]], dtype=torch.float64)
    got = impl.compute_rewards(3, logprobs, ref_logprobs, score, action_mask, kl_ctl=0.1, clip_reward_value=5)
    expect_close(got, expected, "`compute_rewards(3, logprobs, ref_logprobs, [7.5, -2.0], action_mask)` on the hand-made batch",
                 suspects=_reward_suspects(3, logprobs, ref_logprobs, score, action_mask),
                 hint="Expected -kl_ctl * (logprob - ref_logprob) everywhere, plus the clipped score at "
                      "rewards[j, start:ends[j]][-1] with start = prompts_len - 1, ends = start + n + 1.")


@pytest.mark.exercise("compute_rewards")
def test_compute_rewards_defaults(impl):
    attention_mask, logprobs, ref_logprobs = _hand_batch()
    action_mask = attention_mask[:, 1:]
    score = torch.tensor([-9.0, 3.0])
    got = impl.compute_rewards(3, logprobs, ref_logprobs, score, action_mask)
    suspects = _reward_suspects(3, logprobs, ref_logprobs, score, action_mask)
    suspects["used a KL coefficient other than DeepSpeed-Chat's default kl_ctl = 0.1"] = _rewards(
        3, logprobs, ref_logprobs, score, action_mask, kl_ctl=0.02)
    expect_close(got, _rewards(3, logprobs, ref_logprobs, score, action_mask),
                 "`compute_rewards` with its default kl_ctl and clip_reward_value, score [-9, 3]", suspects=suspects,
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
                                f"kl_ctl {kl_ctl}, clip_reward_value {clip}",
                 suspects=_reward_suspects(prompts_len, logprobs, ref_logprobs, score, action_mask, kl_ctl, clip))


# --- actor_loss_fn and critic_loss_fn ------------------------------------------------------------


def _scalar(got, what):
    got = expect_shape(got, (), what, hint="The loss is one number: a 0-dimensional tensor.")
    return got


@pytest.mark.exercise("ppo_losses")
@pytest.mark.points(2)
def test_actor_loss_hand_worked(impl):
    logprobs = torch.tensor([[-1.0, -0.5, -2.0, -1.5, -1.0]])
    old_logprobs = torch.tensor([[-1.5, -0.5, -1.0, -1.0, -3.0]])  # ratios e^0.5, 1, e^-1, e^-0.5, (masked)
    advantages = torch.tensor([[1.0, -2.0, -0.5, 1.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    # per position max(-A r, -A clip(r, 0.8, 1.2)): max(-1.649, -1.2) = -1.2; max(2, 2) = 2;
    # max(0.184, 0.4) = 0.4; max(-0.607, -0.8) = -0.607; the last is masked out.
    # Masked mean: (-1.2 + 2 + 0.4 - e^-0.5) / 4 = 0.148367...
    expected = torch.tensor((-1.2 + 2 + 0.4 - math.exp(-0.5)) / 4, dtype=torch.float64)
    got = _scalar(impl.actor_loss_fn(logprobs, old_logprobs, advantages, mask), "`actor_loss_fn(...)`")
    expect_close(got, expected, "`actor_loss_fn` on the hand-made example (cliprange 0.2)",
                 suspects={label: _actor(logprobs, old_logprobs, advantages, mask, variant=v)
                           for label, v in _ACTOR_MISTAKES.items()},
                 hint="Expected the masked mean of max(-A * ratio, -A * clamp(ratio, 0.8, 1.2)).")


@pytest.mark.exercise("ppo_losses")
@pytest.mark.points(2)
def test_critic_loss_hand_worked(impl):
    values = torch.tensor([[1.0, 0.0, 2.0, 5.0]])
    old_values = torch.tensor([[0.5, 0.1, 2.1, 0.0]])  # clipped to [0.3, 0.7], [-0.1, 0.3], [1.9, 2.3]
    returns = torch.tensor([[2.0, -1.0, 2.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # squared errors (value, clipped value): (1, 1.69) -> 1.69; (1, 1) -> 1; (0, 0) -> 0; masked.
    # 0.5 * (1.69 + 1 + 0) / 3 = 0.448333...
    expected = torch.tensor(0.5 * 2.69 / 3, dtype=torch.float64)
    got = _scalar(impl.critic_loss_fn(values, old_values, returns, mask), "`critic_loss_fn(...)`")
    expect_close(got, expected, "`critic_loss_fn` on the hand-made example (cliprange_value 0.2)",
                 suspects={label: _critic(values, old_values, returns, mask, variant=v)
                           for label, v in _CRITIC_MISTAKES.items()},
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
                 f"`actor_loss_fn` on a random ({B}, {R}) batch, cliprange {cliprange}",
                 suspects={label: _actor(logprobs, old_logprobs, advantages, mask, cliprange, variant=v)
                           for label, v in _ACTOR_MISTAKES.items()})
    values, old_values, returns = (torch.randn(B, R, generator=g) for _ in range(3))
    expect_close(impl.critic_loss_fn(values, old_values, returns, mask, cliprange_value=cliprange),
                 ref.critic_loss_fn(values, old_values, returns, mask, cliprange),
                 f"`critic_loss_fn` on a random ({B}, {R}) batch, cliprange_value {cliprange}",
                 suspects={label: _critic(values, old_values, returns, mask, cliprange, variant=v)
                           for label, v in _CRITIC_MISTAKES.items()})


# --- get_advantages_and_returns -----------------------------------------------------------------


def _pair(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (advantages, returns), got {type(result).__name__}.")
    return result


def _expect_gae(result, values, rewards, start, gamma, lam, what, expected=None):
    advantages, returns = _pair(result, what)
    want_adv, want_ret = expected or _gae(values, rewards, start, gamma, lam)
    R = rewards.size(1) - start
    hint = (f"Advantages cover the response only, positions start..L-2: {R} per row "
            f"(rewards.size(1) - start = {rewards.size(1)} - {start}).")
    expect_close(advantages, want_adv, f"{what}: advantages",
                 suspects=_gae_suspects(values, rewards, start, gamma, lam, 0), hint=hint)
    expect_close(returns, want_ret, f"{what}: returns", suspects=_gae_suspects(values, rewards, start, gamma, lam, 1),
                 hint="Expected returns = advantages + values[:, start:].")


@pytest.mark.exercise("advantages")
@pytest.mark.points(2)
def test_gae_hand_worked(impl):
    values = torch.tensor([[9.0, 0.5, 1.0, 2.0, 1.5]])
    rewards = torch.tensor([[9.0, 0.0, 0.1, -0.2, 1.0]])
    # start 1, gamma 1, lam 0.95. deltas r_t + V_{t+1} - V_t from t = 1: 0.5, 1.1, -0.7, -0.5 (V_5 = 0).
    # Backwards: A_4 = -0.5; A_3 = -0.7 + 0.95 * -0.5 = -1.175; A_2 = 1.1 + 0.95 * -1.175 = -0.01625;
    # A_1 = 0.5 + 0.95 * -0.01625 = 0.4845625. Returns add values[:, 1:] = [0.5, 1, 2, 1.5].
    want_adv = torch.tensor([[0.4845625, -0.01625, -1.175, -0.5]], dtype=torch.float64)
    want_ret = want_adv + values[:, 1:].double()
    _expect_gae(impl.get_advantages_and_returns(values, rewards, 1), values, rewards, 1, GAMMA, LAM,
                "`get_advantages_and_returns(values, rewards, start=1)` on the hand-made example",
                (want_adv, want_ret))


@pytest.mark.exercise("advantages")
def test_gae_with_lam_one_is_reward_to_go(impl):
    g = _gen(11)
    values, rewards = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    start = 2
    # gamma = lam = 1: the deltas telescope, A_t = sum of the rewards from t on - V_t.
    to_go = rewards.double().flip(1).cumsum(1).flip(1)[:, start:]
    want_adv = to_go - values[:, start:].double()
    _expect_gae(impl.get_advantages_and_returns(values, rewards, start, gamma=1.0, lam=1.0), values, rewards, start,
                1.0, 1.0, "`get_advantages_and_returns(values, rewards, 2, gamma=1.0, lam=1.0)`",
                (want_adv, to_go))


@pytest.mark.exercise("advantages")
@pytest.mark.hidden
def test_gae_random(impl, ref, seed):
    g = _gen(seed)
    B, length = _randint(g, 1, 5), _randint(g, 2, 12)
    start = _randint(g, 0, length)
    gamma, lam = [(1.0, 0.95), (0.9, 0.8), (0.99, 0.5)][seed % 3]
    values, rewards = torch.randn(B, length, generator=g), torch.randn(B, length, generator=g)
    expected = ref.get_advantages_and_returns(values, rewards, start, gamma, lam)
    _expect_gae(impl.get_advantages_and_returns(values, rewards, start, gamma=gamma, lam=lam), values, rewards, start,
                gamma, lam, f"`get_advantages_and_returns` for ({B}, {length}), start {start}, gamma {gamma}, lam {lam}",
                expected)


# --- train_rlhf_losses ------------------------------------------------------------------------


def _expect_rlhf(result, args, what, expected=None):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (actor_loss, critic_loss), got {type(result).__name__}.")
    want = expected or _rlhf_losses(*args)
    suspects = [{label: _rlhf_losses(*args, variant=v)[i] for label, v in _RLHF_MISTAKES.items()} for i in range(2)]
    for i, name in enumerate(("actor_loss", "critic_loss")):
        expect_close(result[i], want[i], f"{what}: {name}", suspects=suspects[i],
                     hint="Expected rewards from compute_rewards, zeroed with the old values from ends on, GAE from "
                          "start, then both losses on [:, start:] with action_mask = attention_mask[:, 1:].")


@pytest.mark.exercise("ppo_step")
@pytest.mark.points(2)
def test_train_rlhf_losses_on_a_padded_batch(impl):
    g = _gen(21)
    prompts_len, L = 4, 10
    attention_mask, old_logprobs, ref_logprobs, old_values, score = _experience(g, 3, prompts_len, L)
    attention_mask[0, prompts_len + 2:] = 0  # row 0: 2 response tokens, then padding
    attention_mask[1, prompts_len:] = 1  # row 1: the response fills the sequence
    logprobs = old_logprobs + 0.3 * torch.randn(old_logprobs.shape, generator=g)
    values = old_values + 0.5 * torch.randn(old_values.shape, generator=g)
    args = (prompts_len, old_logprobs, ref_logprobs, score, old_values, attention_mask, logprobs, values)
    copies = [t.clone() for t in args[1:]]
    result = impl.train_rlhf_losses(*args)
    _expect_rlhf(result, args, "`train_rlhf_losses` on a batch of 3 (prompts_len 4, L 10)")
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
    _expect_rlhf(impl.train_rlhf_losses(*args), args,
                 f"`train_rlhf_losses` on a batch of {B} (prompts_len {prompts_len}, L {L})", expected)
