"""The reference solution of the deepspeed_chat topic, held against independent references:
the defaults of DeepSpeed-Chat's PPO trainer (kl_ctl 0.1, clip_reward_value 5, cliprange 0.2,
cliprange_value 0.2, gamma 1.0, lam 0.95, EMA beta 0.992), hand-worked values, closed forms
(reward-to-go, one-step TD), PPO's clipping property through autograd, and re-implementations
written differently (slices as in ppo_trainer.py, vectorised sums). These are the project's own
tests; they run the solution in this process."""

import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "deepspeed_chat.py", "deepspeed_chat_solution")


def close(a, b, atol=1e-6):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol), f"largest difference {(a - b).abs().max().item():.3g}"


def test_defaults_are_deepspeed_chats():
    defaults = {
        name: p.default
        for f in (
            sol.compute_rewards,
            sol.actor_loss_fn,
            sol.critic_loss_fn,
            sol.get_advantages_and_returns,
            sol.moving_average,
        )
        for name, p in inspect.signature(f).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert defaults == {
        "kl_ctl": 0.1,
        "clip_reward_value": 5,
        "cliprange": 0.2,
        "cliprange_value": 0.2,
        "gamma": 1.0,
        "lam": 0.95,
        "beta": 0.992,
    }


# --- compute_rewards -------------------------------------------------------------------------


def _rewards_with_slices(prompts_len, logprobs, ref_logprobs, score, action_mask, kl_ctl=0.1, clip=5):
    """The indexing of ppo_trainer.py written with its slice: rewards[j, start:ends[j]][-1]."""
    rewards = -kl_ctl * (logprobs - ref_logprobs)
    start = prompts_len - 1
    ends = start + action_mask[:, start:].sum(1) + 1
    for j in range(rewards.size(0)):
        rewards[j, start : ends[j]][-1] += score[j].clamp(-clip, clip)
    return rewards


def test_compute_rewards_hand_worked():
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 0, 0]])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -1.5, -0.2, -0.7, -3.0], [-0.4, -0.9, -1.2, -0.3, -2.5, -0.8, -0.6]])
    ref_logprobs = torch.tensor([[-1.0] * 7, [-0.4, -0.5, -1.0, -0.8, -2.0, -0.1, -0.6]])
    rewards = sol.compute_rewards(3, logprobs, ref_logprobs, torch.tensor([7.5, -2.0]), attention_mask[:, 1:])
    close(rewards, [[0.0, 0.1, -0.05, 0.05, -0.08, -0.03, 5.2], [0.0, 0.04, 0.02, -0.05, 0.05, -1.93, 0.0]])


def test_compute_rewards_matches_the_slice_form_on_random_batches():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        B, P = int(torch.randint(1, 5, (), generator=g)), int(torch.randint(2, 6, (), generator=g))
        L = P + int(torch.randint(1, 8, (), generator=g))
        attention_mask = torch.ones(B, L, dtype=torch.long)
        for j in range(B):
            attention_mask[j, P + int(torch.randint(1, L - P + 1, (), generator=g)) :] = 0
            attention_mask[j, : int(torch.randint(0, P - 1, (), generator=g))] = 0
        lp, ref_lp = -torch.rand(B, L - 1, generator=g), -torch.rand(B, L - 1, generator=g)
        score = 8 * torch.randn(B, generator=g)
        close(
            sol.compute_rewards(P, lp, ref_lp, score, attention_mask[:, 1:]),
            _rewards_with_slices(P, lp, ref_lp, score, attention_mask[:, 1:]),
        )


def test_score_sits_on_the_last_token_when_the_response_fills_the_sequence():
    lp = torch.zeros(1, 6)
    rewards = sol.compute_rewards(2, lp, lp, torch.tensor([3.0]), torch.ones(1, 6, dtype=torch.long))
    assert rewards.tolist() == [[0, 0, 0, 0, 0, 3.0]]


# --- PPO losses ------------------------------------------------------------------------------


def test_actor_loss_hand_worked_and_masked():
    logprobs = torch.tensor([[-1.0, -0.5, -2.0, -1.5, -1.0]])
    old = torch.tensor([[-1.5, -0.5, -1.0, -1.0, -3.0]])
    adv = torch.tensor([[1.0, -2.0, -0.5, 1.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    expected = (-1.2 + 2 + 0.4 - math.exp(-0.5)) / 4
    assert sol.actor_loss_fn(logprobs, old, adv, mask).item() == pytest.approx(expected, rel=1e-6)


def test_actor_loss_is_minus_advantage_at_ratio_one_and_clipping_stops_the_gradient():
    g = torch.Generator().manual_seed(1)
    adv, mask = torch.randn(2, 5, generator=g), torch.ones(2, 5)
    old = -torch.rand(2, 5, generator=g)
    assert sol.actor_loss_fn(old.clone(), old, adv, mask).item() == pytest.approx(-adv.mean().item(), rel=1e-6)
    # A positive advantage with the ratio already above 1 + eps: the clipped term wins, no gradient.
    logprobs = (old + 0.5).requires_grad_()
    sol.actor_loss_fn(logprobs, old, torch.ones(2, 5), mask).backward()
    assert logprobs.grad.abs().max() == 0
    # Inside the clip range the gradient is -A * ratio / n per position.
    logprobs = (old + 0.05).requires_grad_()
    sol.actor_loss_fn(logprobs, old, adv, mask).backward()
    close(logprobs.grad, -adv * math.exp(0.05) / 10, atol=1e-6)


def test_critic_loss_cases():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    values = torch.tensor([[1.0, 0.0, 2.0, 5.0]])
    old = torch.tensor([[0.5, 0.1, 2.1, 0.0]])
    returns = torch.tensor([[2.0, -1.0, 2.0, 9.0]])
    assert sol.critic_loss_fn(values, old, returns, mask).item() == pytest.approx(0.5 * 2.69 / 3, rel=1e-6)
    # Values within old +- 0.2: plain 0.5 * masked mean squared error.
    values = old + 0.1
    mse = ((values - returns) ** 2 * mask).sum() / 3
    assert sol.critic_loss_fn(values, old, returns, mask).item() == pytest.approx(0.5 * mse.item(), rel=1e-6)


# --- GAE -------------------------------------------------------------------------------------


def test_gae_hand_worked():
    values = torch.tensor([[9.0, 0.5, 1.0, 2.0, 1.5]])
    rewards = torch.tensor([[9.0, 0.0, 0.1, -0.2, 1.0]])
    adv, ret = sol.get_advantages_and_returns(values, rewards, 1)
    close(adv, [[0.4845625, -0.01625, -1.175, -0.5]])
    close(ret, adv + values[:, 1:])


def test_gae_closed_forms():
    g = torch.Generator().manual_seed(2)
    values, rewards = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    # lam = gamma = 1: A_t = reward-to-go - V_t, and the returns are the rewards-to-go.
    adv, ret = sol.get_advantages_and_returns(values, rewards, 2, gamma=1.0, lam=1.0)
    to_go = rewards.flip(1).cumsum(1).flip(1)[:, 2:]
    close(ret, to_go, atol=1e-5)
    # lam = 0: one-step TD errors.
    adv, _ = sol.get_advantages_and_returns(values, rewards, 0, gamma=0.9, lam=0.0)
    next_values = torch.cat([values[:, 1:], torch.zeros(3, 1)], dim=1)
    close(adv, rewards + 0.9 * next_values - values)
    # General case against sum_k (gamma lam)^k delta_{t+k}.
    gamma, lam, start = 0.97, 0.9, 1
    adv, _ = sol.get_advantages_and_returns(values, rewards, start, gamma, lam)
    delta = (rewards + gamma * next_values - values)[:, start:]
    R = delta.size(1)
    expected = torch.stack([sum((gamma * lam) ** k * delta[:, t + k] for k in range(R - t)) for t in range(R)], dim=1)
    close(adv, expected, atol=1e-5)


def test_gae_detaches_advantages_but_not_returns():
    values = torch.randn(2, 4, requires_grad=True)
    adv, ret = sol.get_advantages_and_returns(values, torch.randn(2, 4), 1)
    assert not adv.requires_grad and ret.requires_grad


# --- train_rlhf_losses --------------------------------------------------------------------------


def test_train_rlhf_losses_matches_a_plain_composition():
    g = torch.Generator().manual_seed(3)
    P, L, B = 3, 9, 3
    attention_mask = torch.ones(B, L, dtype=torch.long)
    attention_mask[0, P + 2 :] = 0
    attention_mask[2, P + 4 :] = 0
    attention_mask[2, 0] = 0
    old_lp, ref_lp, old_v = (
        -torch.rand(B, L - 1, generator=g),
        -torch.rand(B, L - 1, generator=g),
        torch.randn(B, L - 1, generator=g),
    )
    score = torch.tensor([9.0, -1.0, 0.5])
    lp = (old_lp + 0.2 * torch.randn(B, L - 1, generator=g)).requires_grad_()
    v = (old_v + 0.3 * torch.randn(B, L - 1, generator=g)).requires_grad_()
    inputs = [t.clone() for t in (old_lp, ref_lp, score, old_v, attention_mask)]
    actor, critic = sol.train_rlhf_losses(P, old_lp, ref_lp, score, old_v, attention_mask, lp, v)
    assert all(torch.equal(a, b) for a, b in zip(inputs, (old_lp, ref_lp, score, old_v, attention_mask)))

    # Written out: the rewards and old values are 0 from ends on; then GAE and the two losses.
    start, action = P - 1, attention_mask[:, 1:]
    rewards = _rewards_with_slices(P, old_lp, ref_lp, score, action)
    ends = start + action[:, start:].sum(1) + 1
    keep = (torch.arange(L - 1)[None] < ends[:, None]).float()
    rewards, values = rewards * keep, old_v * keep
    adv, ret = sol.get_advantages_and_returns(values, rewards, start)
    m = action[:, start:].float()
    ratio = (lp.detach()[:, start:] - old_lp[:, start:]).mul(m).exp()
    want_actor = (torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)) * m).sum() / m.sum()
    vc = torch.max(torch.min(v.detach()[:, start:], values[:, start:] + 0.2), values[:, start:] - 0.2)
    want_critic = 0.5 * (torch.max((v.detach()[:, start:] - ret) ** 2, (vc - ret) ** 2) * m).sum() / m.sum()
    close(actor, want_actor)
    close(critic, want_critic)
    (actor + critic).backward()
    assert lp.grad[:, :start].abs().max() == 0 and lp.grad.abs().max() > 0
    assert v.grad is not None and v.grad[0, start + 2 :].abs().max() == 0  # row 0's padding is masked


# --- reward model ----------------------------------------------------------------------------


def test_reward_model_loss_hand_worked():
    chosen = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 4, 4, 0, 0]])
    rejected = torch.tensor([[5, 6, 7, 3, 0, 0], [5, 6, 8, 4, 4, 4]])
    c_r = torch.tensor([[9.0, 9.0, 9.0, 1.0, 2.0, 0.5], [9.0, 9.0, 0.3, -0.2, 0.1, 0.0]])
    r_r = torch.tensor([[-9.0, -9.0, -9.0, 0.5, 1.0, 0.0], [-9.0, -9.0, 0.2, 0.4, -1.0, 0.7]])
    out = sol.reward_model_loss(chosen, rejected, c_r, r_r, 0)
    expected = (
        -F.logsigmoid(torch.tensor([0.5, 1.0])).mean() - F.logsigmoid(torch.tensor([0.1, -0.6, 1.1, -0.7])).mean()
    ) / 2
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out["chosen_end_scores"].tolist() == [2.0, pytest.approx(-0.2)]
    assert out["rejected_end_scores"].tolist() == [0.5, pytest.approx(0.7)]


def test_reward_model_loss_of_identical_pairs_and_its_gradient():
    ids = torch.tensor([[3, 4, 5, 0]])
    c_r = torch.tensor([[1.0, 2.0, 3.0, 0.4]], requires_grad=True)
    r_r = torch.tensor([[1.0, 2.0, 3.0, -0.6]])
    out = sol.reward_model_loss(ids, ids.clone(), c_r, r_r, 0)
    assert out["loss"].item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))), rel=1e-6)
    out["loss"].backward()
    assert c_r.grad[0, :3].abs().max() == 0 and c_r.grad[0, 3] < 0  # only the last position is pushed up


def test_reward_model_loss_vectorised():
    g = torch.Generator().manual_seed(4)
    B, T = 6, 9
    chosen = torch.randint(1, 9, (B, T), generator=g)
    rejected = chosen.clone()
    rejected[:, 3:] = torch.randint(1, 9, (B, T - 3), generator=g)
    c_len, r_len = torch.randint(4, T + 1, (B,), generator=g), torch.randint(4, T + 1, (B,), generator=g)
    pos = torch.arange(T)[None]
    chosen[pos >= c_len[:, None]] = 0
    rejected[pos >= r_len[:, None]] = 0
    c_r, r_r = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    differ = chosen != rejected
    first = torch.where(differ.any(1), differ.float().argmax(1), torch.full((B,), T - 1))
    end = torch.where(differ.any(1), torch.maximum(c_len, r_len), torch.full((B,), T))
    window = ((pos >= first[:, None]) & (pos < end[:, None])).float()
    per_pair = (-F.logsigmoid(c_r - r_r) * window).sum(1) / window.sum(1)
    out = sol.reward_model_loss(chosen, rejected, c_r, r_r, 0)
    assert out["loss"].item() == pytest.approx(per_pair.mean().item(), rel=1e-6)
    close(out["chosen_end_scores"], c_r[torch.arange(B), c_len - 1])


# --- EMA -------------------------------------------------------------------------------------


def test_moving_average_formula_and_convergence():
    torch.manual_seed(5)
    model, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    start = {k: v.clone() for k, v in ema.state_dict().items()}
    target = {k: v.clone() for k, v in model.state_dict().items()}
    sol.moving_average(model, ema)
    for k in start:
        close(ema.state_dict()[k], 0.992 * start[k] + 0.008 * target[k])
        assert torch.equal(model.state_dict()[k], target[k])
    for _ in range(99):
        sol.moving_average(model, ema)
    for k in start:  # after n calls: param + beta^n (ema_0 - param)
        close(ema.state_dict()[k], target[k] + 0.992**100 * (start[k] - target[k]), atol=1e-5)
