"""Checks for the RL step: the KL-penalised per-token reward, PPO's clipped loss, GAE and the
PPO-ptx objective.

Visible checks use small hand-made batches (the comments work some numbers out) and compare
with the solution's recorded answers; a wrong answer that matches a known mistake is named
after it. Hidden checks draw random batches, paddings and coefficients from the run's seed.
"""
import pytest
import torch

from grader.checking import expect_close, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint


def _random_batch(g, B, T):
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T  # one row without padding
    mask = (torch.arange(T) < lengths[:, None]).long()  # (B, T): right padding
    return lengths.tolist(), mask


def _scalar(got, what):
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return torch.tensor(float(got))
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return got.reshape(())
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    fail(f"{what}: expected one number (a 0-d tensor), got {shape}: average over the response tokens.")


# --- kl_penalized_reward -------------------------------------------------------------------

_KL_HINT = ("Expected the KL penalty (beta times how far logprobs are above ref_logprobs, as a cost) on response tokens, 0 on padding, and rm_score added on the "
            "last response token of each row.")


def _kl_inputs():
    score = torch.tensor([1.0, -0.5])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.2, -1.5, -2.5, -0.7]])
    ref_logprobs = torch.tensor([[-1.5, -1.0, -0.5, -1.0], [-0.4, -1.0, -2.0, -1.2]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    return score, logprobs, ref_logprobs, mask


@pytest.mark.exercise("kl_reward")
@pytest.mark.points(2)
def test_kl_reward_hand_worked(impl, recorded):
    score, logprobs, ref_logprobs, mask = _kl_inputs()
    # row 0: -0.1 * [0.5, -1.0, 0.0] on its 3 response tokens, +1.0 on token 2, 0 on the padding:
    # [-0.05, 0.1, 1.0, 0.0]
    got = impl.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=0.1)
    what = "`kl_penalized_reward(rm_score, logprobs, ref_logprobs, mask, beta=0.1)` (row 0 has one padding token)"
    got = expect_close(got, recorded.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=0.1), what,
                       hint=_KL_HINT)
    paper = score.double() - 0.1 * ((logprobs - ref_logprobs).double() * mask).sum(1)
    expect_close(got.sum(1), paper, "the rewards summed over each row (the paper's r(x, y) - beta * log(pi_RL / pi_SFT))")


@pytest.mark.exercise("kl_reward")
def test_kl_reward_default_beta_is_the_papers(impl, recorded):
    score, logprobs, ref_logprobs, mask = _kl_inputs()
    expect_close(impl.kl_penalized_reward(score, logprobs, ref_logprobs, mask),
                 recorded.kl_penalized_reward(score, logprobs, ref_logprobs, mask),
                 "`kl_penalized_reward(rm_score, logprobs, ref_logprobs, mask)` with the default beta",
                 hint="The default is the paper's KL coefficient, beta = 0.02.")


@pytest.mark.exercise("kl_reward")
@pytest.mark.hidden
def test_kl_reward_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T = _randint(g, 1, 5), _randint(g, 1, 9)
    lengths, mask = _random_batch(g, B, T)
    score = torch.randn(B, generator=g) * 2
    logprobs = -torch.rand(B, T, generator=g) * 4
    ref_logprobs = -torch.rand(B, T, generator=g) * 4
    beta = [0.02, 0.05, 0.1, 0.3][_randint(g, 0, 4)]
    expect_close(impl.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=beta),
                 ref.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=beta),
                 f"`kl_penalized_reward(...)` with B={B}, T={T}, response lengths {lengths}, beta={beta}", hint=_KL_HINT)


# --- ppo_clip_loss -------------------------------------------------------------------------


def _ppo_inputs():
    # ratios 0.5, 1.0, 1.5, 1.1, 0.7 (inside and outside [0.8, 1.2]) with advantages of both signs
    ratios = torch.tensor([[0.5, 1.0, 1.5, 1.1, 0.7], [1.3, 0.9, 0.6, 1.0, 2.0]])
    old = torch.tensor([[-1.0, -2.0, -0.5, -1.2, -0.3], [-0.8, -1.1, -2.2, -0.4, -1.0]])
    logprobs = old + ratios.log()
    adv = torch.tensor([[1.0, -1.0, 2.0, -2.0, -1.0], [-0.5, 1.5, 1.0, 0.3, 0.7]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    return logprobs, old, adv, mask


def _expect_ppo(got, expected, what):
    expect_close(_scalar(got, what), expected, what,
                 hint="Expected the masked mean of -min(ratio * A, clamp(ratio, 1 - clip, 1 + clip) * A), "
                      "ratio = exp(logprobs - old_logprobs).")


@pytest.mark.exercise("ppo_clip")
@pytest.mark.points(2)
def test_ppo_clip_loss_hand_worked(impl, recorded):
    args = _ppo_inputs()
    # token (0, 0): ratio 0.5, A = 1: min(0.5, 0.8) = 0.5, loss -0.5; token (0, 2): ratio 1.5, A = 2:
    # min(3.0, 2.4) = 2.4, loss -2.4; token (0, 4): ratio 0.7, A = -1: min(-0.7, -0.8), loss 0.8
    _expect_ppo(impl.ppo_clip_loss(*args, clip=0.2), recorded.ppo_clip_loss(*args, clip=0.2),
                "`ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip=0.2)` "
                "(ratios inside and outside [0.8, 1.2], advantages of both signs)")


@pytest.mark.exercise("ppo_clip")
def test_ppo_clip_loss_default_clip(impl, recorded):
    args = _ppo_inputs()
    _expect_ppo(impl.ppo_clip_loss(*args), recorded.ppo_clip_loss(*args),
                "`ppo_clip_loss(logprobs, old_logprobs, advantages, mask)` with the default clip (the paper's 0.2)")


@pytest.mark.exercise("ppo_clip")
@pytest.mark.hidden
def test_ppo_clip_loss_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T = _randint(g, 1, 5), _randint(g, 1, 9)
    lengths, mask = _random_batch(g, B, T)
    old = -torch.rand(B, T, generator=g) * 3
    logprobs = old + torch.randn(B, T, generator=g) * 0.4
    adv = torch.randn(B, T, generator=g)
    clip = [0.1, 0.2, 0.3][_randint(g, 0, 3)]
    args = (logprobs, old, adv, mask)
    _expect_ppo(impl.ppo_clip_loss(*args, clip=clip), ref.ppo_clip_loss(*args, clip=clip),
                f"`ppo_clip_loss(...)` with B={B}, T={T}, response lengths {lengths}, clip={clip}")


# --- gae -----------------------------------------------------------------------------------


def _expect_gae(result, expected, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (advantages, returns), got {type(result).__name__}.")
    (adv, ret), (want_adv, want_ret) = result, expected
    expect_close(adv, want_adv, f"{what}: advantages",
                 hint="delta_t = r_t + gamma * V_(t+1) - V_t and A_t = delta_t + gamma * lam * A_(t+1), with V and A "
                      "taken as 0 after the last response token; 0 on padding.")
    expect_close(ret, want_ret, f"{what}: returns", hint="returns = advantages + values on response tokens, 0 on padding.")


def _gae_inputs():
    rewards = torch.tensor([[0.0, 0.1, 1.0, 0.0], [0.5, -0.2, 0.0, 0.0]])
    values = torch.tensor([[0.2, 0.4, 0.6, 0.0], [0.3, 0.1, 5.0, 5.0]])  # row 1: padding holds junk values
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    return rewards, values, mask


@pytest.mark.exercise("gae")
@pytest.mark.points(2)
def test_gae_hand_worked(impl, recorded):
    args = _gae_inputs()
    # row 0 (gamma 1, lam 0.5): delta = [0.0 + 0.4 - 0.2, 0.1 + 0.6 - 0.4, 1.0 + 0 - 0.6] = [0.2, 0.3, 0.4],
    # A = [0.2 + 0.5 * 0.5, 0.3 + 0.5 * 0.4, 0.4] = [0.45, 0.5, 0.4]
    for gamma, lam in ((1.0, 0.5), (0.9, 0.8)):
        _expect_gae(impl.gae(*args, gamma=gamma, lam=lam), recorded.gae(*args, gamma=gamma, lam=lam),
                    f"`gae(rewards, values, mask, gamma={gamma}, lam={lam})`")


@pytest.mark.exercise("gae")
def test_gae_defaults(impl, recorded):
    args = _gae_inputs()
    _expect_gae(impl.gae(*args), recorded.gae(*args), "`gae(rewards, values, mask)` with the defaults gamma = 1.0, lam = 0.95")


@pytest.mark.exercise("gae")
@pytest.mark.hidden
def test_gae_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T = _randint(g, 1, 5), _randint(g, 1, 9)
    lengths, mask = _random_batch(g, B, T)
    rewards, values = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    gamma, lam = [1.0, 0.99, 0.9][_randint(g, 0, 3)], [0.95, 0.9, 0.7][_randint(g, 0, 3)]
    _expect_gae(impl.gae(rewards, values, mask, gamma=gamma, lam=lam), ref.gae(rewards, values, mask, gamma=gamma, lam=lam),
                f"`gae(...)` with B={B}, T={T}, response lengths {lengths}, gamma={gamma}, lam={lam}")


# --- ppo_ptx_loss --------------------------------------------------------------------------

_PTX_HINT = "Expected policy_loss + gamma * (the mean next-token cross-entropy of pretrain_ids)."


def _ptx_inputs():
    g = _gen(5)
    return torch.tensor(0.3), torch.randn(2, 4, 6, generator=g), torch.randint(0, 6, (2, 4), generator=g)


@pytest.mark.exercise("ppo_ptx")
@pytest.mark.points(2)
def test_ppo_ptx_hand_worked(impl, recorded):
    policy_loss, logits, ids = _ptx_inputs()
    what = "`ppo_ptx_loss(policy_loss=0.3, pretrain_logits (2, 4, 6), pretrain_ids, gamma=2.0)`"
    expect_close(_scalar(impl.ppo_ptx_loss(policy_loss, logits, ids, gamma=2.0), what),
                 recorded.ppo_ptx_loss(policy_loss, logits, ids, gamma=2.0), what, hint=_PTX_HINT)


@pytest.mark.exercise("ppo_ptx")
def test_ppo_ptx_default_gamma_is_the_papers(impl, recorded):
    policy_loss, logits, ids = _ptx_inputs()
    what = "`ppo_ptx_loss(policy_loss=0.3, pretrain_logits, pretrain_ids)` with the default gamma"
    expect_close(_scalar(impl.ppo_ptx_loss(policy_loss, logits, ids), what),
                 recorded.ppo_ptx_loss(policy_loss, logits, ids), what,
                 hint="The default is the paper's pretraining coefficient, gamma = 27.8.")


@pytest.mark.exercise("ppo_ptx")
@pytest.mark.hidden
def test_ppo_ptx_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T, V = _randint(g, 1, 4), _randint(g, 2, 8), _randint(g, 2, 10)
    policy_loss = torch.randn((), generator=g)
    logits, ids = torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g)
    gamma = [27.8, 1.0, 5.0, 0.5][_randint(g, 0, 4)]
    what = f"`ppo_ptx_loss(policy_loss={float(policy_loss):.4g}, pretrain_logits {tuple(logits.shape)}, pretrain_ids, gamma={gamma})`"
    expect_close(_scalar(impl.ppo_ptx_loss(policy_loss, logits, ids, gamma=gamma), what),
                 ref.ppo_ptx_loss(policy_loss, logits, ids, gamma=gamma), what, hint=_PTX_HINT)
