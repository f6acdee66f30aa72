"""The reference solution of the instructgpt topic, held against independent references: the
paper's numbers (facts.md), formulas re-implemented another way (itertools over pairs,
discounted sums as matrices, the max-of-negatives form of PPO), torch's own operators, and
hand-worked values. These are the project's own tests; they run the solution in this process."""

import inspect
import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "instructgpt.py", "instructgpt_solution")


def close(a, b, atol=1e-6, rtol=1e-5):
    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"largest difference {(a - b).abs().max().item():.3g}"


# --- the paper's numbers ---------------------------------------------------------------------


def test_defaults_are_the_papers_coefficients():
    # Ouyang et al. 2022: beta = 0.02 (KL), gamma = 27.8 (PPO-ptx), PPO clip 0.2; GAE defaults as DeepSpeed-Chat (1.0, 0.95)
    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    assert default(sol.kl_penalized_reward, "beta") == 0.02
    assert default(sol.ppo_ptx_loss, "gamma") == 27.8
    assert default(sol.ppo_clip_loss, "clip") == 0.2
    assert (default(sol.gae, "gamma"), default(sol.gae, "lam")) == (1.0, 0.95)
    assert sol.IGNORE_INDEX == -100  # cross_entropy's default ignore_index


# --- SFT ---------------------------------------------------------------------------------------


def test_sft_labels_hand_worked():
    ids, labels = sol.sft_labels([[5, 6, 7], [8]], [[9, 10], [11, 0, 12]], pad_id=0, max_len=6)
    assert ids.tolist() == [[5, 6, 7, 9, 10, 0], [8, 11, 0, 12, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 9, 10, -100], [-100, 11, 0, 12, -100, -100]]
    assert ids.dtype == labels.dtype == torch.long
    ids, labels = sol.sft_labels([[3, 4], [5, 6, 7, 8, 9]], [[10, 11, 12, 13], [14]], pad_id=1, max_len=4)
    assert ids.tolist() == [[3, 4, 10, 11], [5, 6, 7, 8]]
    assert labels.tolist() == [[-100, -100, 10, 11], [-100] * 4]
    ids, labels = sol.sft_labels([torch.tensor([2, 3])], [torch.tensor([4])], pad_id=0, max_len=3)  # tensors work too
    assert ids.tolist() == [[2, 3, 4]] and labels.tolist() == [[-100, -100, 4]]


def test_sft_loss_matches_a_shift_written_with_gather():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g)
    _, labels = sol.sft_labels(
        [[1, 2, 3], [4], [5, 6]], [[7, 8], [9, 10, 1, 2], [3, 3, 3, 3, 3, 3]], pad_id=0, max_len=7
    )
    logp = logits.log_softmax(-1)[:, :-1]  # (B, T-1, V)
    target = labels[:, 1:]
    keep = target != -100
    picked = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    close(sol.sft_loss(logits, labels), -(picked * keep).sum() / keep.sum())
    # the prompt's predictions do not matter
    changed = logits.clone()
    changed[0, :2] += 10 * torch.randn(2, 11, generator=g)
    close(sol.sft_loss(changed, labels), sol.sft_loss(logits, labels))


# --- the reward model --------------------------------------------------------------------------


def _pairwise(rewards, counts=None):
    """Eq. (1) with itertools: the mean over prompts of the mean over C(K_b, 2) pairs."""
    per_prompt = []
    for b, row in enumerate(rewards.double().tolist()):
        k = len(row) if counts is None else counts[b]
        pairs = list(itertools.combinations(range(k), 2))
        per_prompt.append(sum(-math.log(1 / (1 + math.exp(-(row[i] - row[j])))) for i, j in pairs) / len(pairs))
    return sum(per_prompt) / len(per_prompt)


def test_ranking_loss_hand_worked_and_against_itertools():
    assert sol.reward_ranking_loss(torch.tensor([[2.0, 1.0, 0.0]])).item() == pytest.approx(
        (2 * math.log1p(math.exp(-1)) + math.log1p(math.exp(-2))) / 3, rel=1e-6
    )  # 0.25115
    g = torch.Generator().manual_seed(1)
    for K in range(2, 10):  # the paper's K = 4..9, and the pairwise K = 2
        rewards = torch.randn(5, K, generator=g) * 3
        close(sol.reward_ranking_loss(rewards), _pairwise(rewards))


def test_ranking_loss_k2_is_the_pairwise_loss_of_deepspeed_chat():
    g = torch.Generator().manual_seed(2)
    chosen, rejected = torch.randn(8, generator=g), torch.randn(8, generator=g)
    close(sol.reward_ranking_loss(torch.stack([chosen, rejected], 1)), -F.logsigmoid(chosen - rejected).mean())


def test_ranking_loss_each_prompt_is_one_batch_element():
    rewards = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.0, 3.0, float("nan"), float("nan")]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    loss = sol.reward_ranking_loss(rewards, mask)
    close(loss, _pairwise(rewards[:, :4].nan_to_num(), counts=[4, 2]))
    all_pairs = [(0, i, j) for i, j in itertools.combinations(range(4), 2)] + [(1, 0, 1)]
    batch_mean = sum(-F.logsigmoid(rewards[b, i] - rewards[b, j]).item() for b, i, j in all_pairs) / len(all_pairs)
    assert abs(loss.item() - batch_mean) > 0.05  # the two weightings really differ here


def test_ranking_loss_properties():
    g = torch.Generator().manual_seed(3)
    rewards = torch.randn(4, 5, generator=g, requires_grad=True)
    loss = sol.reward_ranking_loss(rewards)
    close(
        sol.reward_ranking_loss(rewards + torch.randn(4, 1, generator=g)), loss
    )  # a per-prompt offset changes nothing
    loss.backward()
    assert (rewards.grad[:, 0] < 0).all() and (rewards.grad[:, -1] > 0).all()  # raise the best, lower the worst
    assert sol.reward_ranking_loss(torch.tensor([[30.0, 20.0, 10.0]])).item() < 1e-4  # a perfect ranking costs ~0


def test_normalize_rewards_centres_the_demonstrations():
    g = torch.Generator().manual_seed(4)
    demos = torch.randn(50, generator=g) + 3
    close(sol.normalize_rewards(demos, demos).mean(), 0.0)
    rewards = torch.randn(2, 3, generator=g)
    close(sol.normalize_rewards(rewards, demos), rewards - demos.mean())
    close(sol.normalize_rewards(rewards, demos).std(), rewards.std())  # the scale stays


def test_reward_model_forward_is_mean_embedding_then_head():
    torch.manual_seed(5)
    model = sol.RewardModel(7, 4)
    tokens = torch.randint(7, (3, 5))
    expected = model.embed.weight[tokens].mean(1) @ model.head.weight[0] + model.head.bias[0]
    close(model(tokens), expected)


def test_synthetic_rankings_are_sorted_best_first():
    data = sol.synthetic_rankings(10, 4, 12, 6, torch.Generator().manual_seed(6))
    quality = torch.cos(2.0 * torch.arange(12.0))[data].mean(-1)
    assert data.shape == (10, 4, 6)
    assert (quality[:, :-1] >= quality[:, 1:]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trained_reward_model_ranks_held_out_pairs(seed):
    model = sol.train_reward_model(steps=150, seed=seed)
    assert not model.training
    g = torch.Generator().manual_seed(100 + seed)
    a, b = torch.randint(12, (500, 6), generator=g), torch.randint(12, (500, 6), generator=g)
    good = torch.cos(2.0 * torch.arange(12.0))
    qa, qb = good[a].mean(1), good[b].mean(1)
    keep = (qa - qb).abs() > 0.05
    with torch.no_grad():
        accuracy = ((model(a) > model(b)) == (qa > qb))[keep].float().mean().item()
    assert accuracy >= 0.95


def test_five_steps_of_another_correct_loop_reach_the_same_weights():
    """The premise of the visible check on the first training steps: a loop written another way
    (scores per rank, the loss pair by pair with itertools, model.zero_grad) takes the same Adam
    steps, up to rounding; the head's bias alone is rounding noise (its gradient is 0: the loss
    does not change when every reward moves by the same amount)."""
    for seed in (0, 3):
        torch.manual_seed(seed)
        data = sol.synthetic_rankings(64, 4, 12, 6, torch.Generator().manual_seed(seed))
        model = sol.RewardModel(12, 8)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(5):
            rewards = torch.stack([model(data[:, k]) for k in range(4)], dim=1)
            loss = torch.stack(
                [
                    torch.stack(
                        [-torch.log(torch.sigmoid(row[i] - row[j])) for i, j in itertools.combinations(range(4), 2)]
                    ).mean()
                    for row in rewards
                ]
            ).mean()
            model.zero_grad()
            loss.backward()
            optimizer.step()
        reference = sol.train_reward_model(steps=5, seed=seed)
        close(model.embed.weight, reference.embed.weight, atol=1e-5)
        close(model.head.weight, reference.head.weight, atol=1e-5)


# --- RL ----------------------------------------------------------------------------------------


def test_kl_reward_hand_worked_and_sums_to_the_papers_objective():
    score = torch.tensor([1.0, -0.5])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.2, -1.5, -2.5, -0.7]])
    ref_logprobs = torch.tensor([[-1.5, -1.0, -0.5, -1.0], [-0.4, -1.0, -2.0, -1.2]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    rewards = sol.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=0.1)
    close(rewards[0], [-0.05, 0.1, 1.0, 0.0])
    close(rewards[1], [-0.02, 0.05, 0.05, -0.05 - 0.5])
    close(rewards.sum(1), score - 0.1 * ((logprobs - ref_logprobs) * mask).sum(1))  # r - beta log(pi / pi_SFT)
    same = sol.kl_penalized_reward(score, logprobs, logprobs, mask)  # no drift: only the score
    close(same, torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, -0.5]]))


def _ppo_reference(logprobs, old, adv, mask, clip):
    """The max-of-negatives form common in open PPO code."""
    ratio = (logprobs - old).exp()
    pg1, pg2 = -adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)
    return (torch.maximum(pg1, pg2) * mask).sum() / mask.sum()


def test_ppo_clip_loss_against_the_max_of_negatives_form():
    g = torch.Generator().manual_seed(7)
    for _ in range(5):
        old = -torch.rand(3, 6, generator=g) * 3
        logprobs = old + torch.randn(3, 6, generator=g) * 0.5
        adv = torch.randn(3, 6, generator=g)
        mask = (torch.arange(6) < torch.tensor([6, 4, 1])[:, None]).long()
        for clip in (0.1, 0.2, 0.3):
            close(
                sol.ppo_clip_loss(logprobs, old, adv, mask, clip=clip), _ppo_reference(logprobs, old, adv, mask, clip)
            )


def test_ppo_clip_loss_properties():
    adv = torch.tensor([[1.0, -2.0, 0.5]])
    mask = torch.ones(1, 3)
    old = torch.tensor([[-1.0, -0.5, -2.0]])
    close(sol.ppo_clip_loss(old, old, adv, mask), -adv.mean())  # ratio 1: the plain policy gradient objective
    # a ratio of 1.5 with a positive advantage is clipped: no gradient pushes it further
    logprobs = (old + torch.tensor([[math.log(1.5), 0.0, 0.0]])).requires_grad_()
    sol.ppo_clip_loss(logprobs, old, adv, mask).backward()
    assert logprobs.grad[0, 0] == 0 and logprobs.grad[0, 1] != 0


def _gae_reference(rewards, values, mask, gamma, lam):
    """A = D @ delta with D[t, s] = (gamma lam)^(s - t) for t <= s < n: discounted sums as a matrix."""
    B, T = rewards.shape
    adv = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        n = int(mask[b].sum())
        v = torch.cat([values[b, :n].double(), torch.zeros(1, dtype=torch.float64)])
        delta = rewards[b, :n].double() + gamma * v[1:] - v[:-1]
        t = torch.arange(n)
        power = (t[None, :] - t[:, None]).double()
        D = torch.where(power >= 0, (gamma * lam) ** power.clamp_min(0), torch.zeros(()).double())
        adv[b, :n] = D @ delta
    return adv, (adv + values.double()) * mask


def test_gae_against_discounted_sums_and_limits():
    g = torch.Generator().manual_seed(8)
    rewards, values = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    mask = (torch.arange(7) < torch.tensor([7, 3, 1])[:, None]).long()
    for gamma, lam in ((1.0, 0.95), (0.99, 0.9), (0.9, 0.0), (1.0, 1.0)):
        adv, ret = sol.gae(rewards, values, mask, gamma=gamma, lam=lam)
        want_adv, want_ret = _gae_reference(rewards, values, mask, gamma, lam)
        close(adv, want_adv)
        close(ret, want_ret)
    # lam = 1, gamma = 1: the return is the sum of the rewards still to come (Monte Carlo)
    _, ret = sol.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    to_go = (rewards * mask).flip(1).cumsum(1).flip(1) * mask
    close(ret, to_go, atol=1e-5)
    # hand-worked: row [0, 0.1, 1.0 | pad], values [0.2, 0.4, 0.6 | 9], gamma 1, lam 0.5: delta = [0.2, 0.3, 0.4]
    # and A = [0.2 + 0.5 * 0.5, 0.3 + 0.5 * 0.4, 0.4, 0] = [0.45, 0.5, 0.4, 0]; the 9 on the padding is never used
    adv, _ = sol.gae(
        torch.tensor([[0.0, 0.1, 1.0, 0.0]]),
        torch.tensor([[0.2, 0.4, 0.6, 9.0]]),
        torch.tensor([[1, 1, 1, 0]]),
        gamma=1.0,
        lam=0.5,
    )
    close(adv, [[0.45, 0.5, 0.4, 0.0]])


def test_ppo_ptx_loss():
    g = torch.Generator().manual_seed(9)
    logits, ids = torch.randn(2, 5, 6, generator=g), torch.randint(0, 6, (2, 5), generator=g)
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:])  # (B, V, T-1) form of the same loss
    close(sol.ppo_ptx_loss(torch.tensor(0.3), logits, ids), 0.3 + 27.8 * nll)
    close(sol.ppo_ptx_loss(torch.tensor(0.3), logits, ids, gamma=0.0), 0.3)  # plain PPO
    labels = ids.clone()
    close(sol.ppo_ptx_loss(torch.tensor(0.0), logits, ids, gamma=1.0), sol.sft_loss(logits, labels))


# --- labeling ----------------------------------------------------------------------------------


def test_labeling_answers_and_preferences():
    answers = sol.labeling_answers()
    assert sorted(answers["criteria"]) == ["harmless", "helpful", "truthful"]  # Section 3.4, Appendix B
    assert answers["training_priority"] == "helpful"
    assert sorted(answers["evaluation_priority"]) == ["harmless", "truthful"]
    h, t, x = "helpful", "truthful", "harmless"
    only_helpful = {h: True, t: False, x: False}
    safe_unhelpful = {h: False, t: True, x: True}
    assert sol.labeler_prefers(only_helpful, safe_unhelpful, "training") == "a"
    assert sol.labeler_prefers(only_helpful, safe_unhelpful, "evaluation") == "b"
    assert sol.labeler_prefers({h: True, t: True, x: False}, {h: False, t: True, x: True}, "evaluation") == "b"
    assert sol.labeler_prefers({h: True, t: True, x: False}, {h: False, t: False, x: True}, "evaluation") == "a"
    assert sol.labeler_prefers(safe_unhelpful, safe_unhelpful) == "tie"
