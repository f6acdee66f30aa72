"""Checks for the RL step: the KL-penalised per-token reward, PPO's clipped loss, GAE and the
PPO-ptx objective.

Visible checks write every formula out token by token (loops in float64) on small hand-made
batches; hidden checks draw random batches, paddings and coefficients from the run's seed and
compare with the reference solution.
"""
import math

import pytest
import torch

from grader.checking import expect_close, fail


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


def _lengths_mask(lengths, T):
    return (torch.arange(T) < torch.tensor(lengths)[:, None]).long()  # (B, T): right padding


def _random_batch(g, B, T):
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T  # one row without padding
    return lengths.tolist(), _lengths_mask(lengths.tolist(), T)


def _scalar(got, what):
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return torch.tensor(float(got))
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return got.reshape(())
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    fail(f"{what}: expected one number (a 0-d tensor), got {shape}: average over the response tokens.")


# --- kl_penalized_reward -------------------------------------------------------------------


def _kl_reward(score, logprobs, ref_logprobs, mask, beta, variant="ok"):
    B, T = logprobs.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        n = int(mask[b].sum())
        for t in range(T):
            if mask[b, t] or variant == "pad_penalised":
                sign = 1.0 if variant == "kl_sign" else -1.0
                out[b, t] = sign * beta * (float(logprobs[b, t]) - float(ref_logprobs[b, t]))
        where = {"last_column": [T - 1], "first_token": [0], "every_token": list(range(n))}.get(variant, [n - 1])
        for t in where:
            out[b, t] += float(score[b])
    return out


_KL_MISTAKES = {
    "flipped the sign of the KL penalty: it is -beta * (logprobs - ref_logprobs), which lowers the reward where "
    "the policy drifts above the SFT model": "kl_sign",
    "put the score in the last column; it belongs on the last response token, before the padding": "last_column",
    "put the score on the first response token; it belongs on the last": "first_token",
    "added the score to every response token; it is added once, on the last": "every_token",
    "penalised padding tokens too: multiply the penalty by the mask": "pad_penalised",
}


def _kl_suspects(score, logprobs, ref_logprobs, mask, beta):
    return {label: _kl_reward(score, logprobs, ref_logprobs, mask, beta, v) for label, v in _KL_MISTAKES.items()}


def _kl_inputs():
    score = torch.tensor([1.0, -0.5])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.2, -1.5, -2.5, -0.7]])
    ref_logprobs = torch.tensor([[-1.5, -1.0, -0.5, -1.0], [-0.4, -1.0, -2.0, -1.2]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    return score, logprobs, ref_logprobs, mask


@pytest.mark.exercise("kl_reward")
@pytest.mark.points(2)
def test_kl_reward_hand_worked(impl):
    score, logprobs, ref_logprobs, mask = _kl_inputs()
    # row 0: -0.1 * [0.5, -1.0, 0.0] on its 3 response tokens, +1.0 on token 2, 0 on the padding
    expected = _kl_reward(score, logprobs, ref_logprobs, mask, 0.1)
    got = impl.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=0.1)
    what = "`kl_penalized_reward(rm_score, logprobs, ref_logprobs, mask, beta=0.1)` (row 0 has one padding token)"
    expect_close(got, expected, what, suspects=_kl_suspects(score, logprobs, ref_logprobs, mask, 0.1),
                 hint="Expected -beta * (logprobs - ref_logprobs) on response tokens, 0 on padding, and rm_score added "
                      "on the last response token of each row.")
    sums = expect_close(got, expected, what).sum(1)
    paper = score.double() - 0.1 * ((logprobs - ref_logprobs).double() * mask).sum(1)
    expect_close(sums, paper, "the rewards summed over each row (the paper's r(x, y) - beta * log(pi_RL / pi_SFT))")


@pytest.mark.exercise("kl_reward")
def test_kl_reward_default_beta_is_the_papers(impl):
    score, logprobs, ref_logprobs, mask = _kl_inputs()
    expected = _kl_reward(score, logprobs, ref_logprobs, mask, 0.02)
    suspects = {f"used beta = {beta}; the paper's KL coefficient is beta = 0.02": _kl_reward(score, logprobs, ref_logprobs, mask, beta)
                for beta in (0.1, 0.2, 0.01, 0.0)}
    suspects.update(_kl_suspects(score, logprobs, ref_logprobs, mask, 0.02))
    expect_close(impl.kl_penalized_reward(score, logprobs, ref_logprobs, mask), expected,
                 "`kl_penalized_reward(rm_score, logprobs, ref_logprobs, mask)` with the default beta", suspects=suspects)


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
    expected = ref.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=beta)
    expect_close(impl.kl_penalized_reward(score, logprobs, ref_logprobs, mask, beta=beta), expected,
                 f"`kl_penalized_reward(...)` with B={B}, T={T}, response lengths {lengths}, beta={beta}",
                 suspects=_kl_suspects(score, logprobs, ref_logprobs, mask, beta))


# --- ppo_clip_loss -------------------------------------------------------------------------


def _ppo(logprobs, old, adv, mask, clip, variant="ok"):
    total, count = 0.0, 0
    B, T = logprobs.shape
    for b in range(B):
        for t in range(T):
            if not mask[b, t] and variant != "all_tokens":
                continue
            diff = float(logprobs[b, t]) - float(old[b, t])
            ratio = math.exp(-diff if variant == "inverted" else diff)
            a = float(adv[b, t])
            clipped_ratio = min(max(ratio, 1 - clip), 1 + clip)
            if variant == "clip_advantage":
                objective = min(ratio * a, ratio * min(max(a, 1 - clip), 1 + clip))
            elif variant == "max":
                objective = max(ratio * a, clipped_ratio * a)
            elif variant == "no_clip":
                objective = ratio * a
            elif variant == "clip_only":
                objective = clipped_ratio * a
            else:
                objective = min(ratio * a, clipped_ratio * a)
            total += -objective
            count += 1
    return total / count


_PPO_MISTAKES = {
    "clipped the advantage instead of the ratio: clamp(ratio, 1 - clip, 1 + clip) * A": "clip_advantage",
    "took the max of the two objectives; PPO takes the min (the pessimistic one), and the loss is its negative": "max",
    "did not clip at all": "no_clip",
    "used only the clipped term; PPO takes the min of ratio * A and clamp(ratio) * A": "clip_only",
    "computed the ratio the wrong way round: ratio = exp(logprobs - old_logprobs)": "inverted",
    "averaged over padding tokens too; average over the response tokens (mask == 1)": "all_tokens",
}


def _ppo_suspects(logprobs, old, adv, mask, clip):
    return {label: _ppo(logprobs, old, adv, mask, clip, v) for label, v in _PPO_MISTAKES.items()}


def _expect_ppo(impl, args, clip, what, expected=None, pass_clip=True):
    expected = _ppo(*args, clip) if expected is None else float(expected)
    got = impl.ppo_clip_loss(*args, clip=clip) if pass_clip else impl.ppo_clip_loss(*args)
    expect_close(_scalar(got, what), torch.tensor(expected), what, suspects=_ppo_suspects(*args, clip),
                 hint="Expected the masked mean of -min(ratio * A, clamp(ratio, 1 - clip, 1 + clip) * A), "
                      "ratio = exp(logprobs - old_logprobs).")


def _ppo_inputs():
    # ratios 0.5, 1.0, 1.5, 1.1, 0.7 (inside and outside [0.8, 1.2]) with advantages of both signs
    ratios = torch.tensor([[0.5, 1.0, 1.5, 1.1, 0.7], [1.3, 0.9, 0.6, 1.0, 2.0]])
    old = torch.tensor([[-1.0, -2.0, -0.5, -1.2, -0.3], [-0.8, -1.1, -2.2, -0.4, -1.0]])
    logprobs = old + ratios.log()
    adv = torch.tensor([[1.0, -1.0, 2.0, -2.0, -1.0], [-0.5, 1.5, 1.0, 0.3, 0.7]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    return logprobs, old, adv, mask


@pytest.mark.exercise("ppo_clip")
@pytest.mark.points(2)
def test_ppo_clip_loss_hand_worked(impl):
    _expect_ppo(impl, _ppo_inputs(), 0.2, "`ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip=0.2)` "
                                          "(ratios inside and outside [0.8, 1.2], advantages of both signs)")


@pytest.mark.exercise("ppo_clip")
def test_ppo_clip_loss_default_clip(impl):
    args = _ppo_inputs()
    what = "`ppo_clip_loss(logprobs, old_logprobs, advantages, mask)` with the default clip"
    expected = _ppo(*args, 0.2)
    got = _scalar(impl.ppo_clip_loss(*args), what)
    suspects = {f"used clip = {c}; the paper's PPO uses clip = 0.2": _ppo(*args, c) for c in (0.1, 0.3, 0.5)}
    suspects.update(_ppo_suspects(*args, 0.2))
    expect_close(got, torch.tensor(expected), what, suspects=suspects)


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
    _expect_ppo(impl, args, clip, f"`ppo_clip_loss(...)` with B={B}, T={T}, response lengths {lengths}, clip={clip}",
                expected=ref.ppo_clip_loss(*args, clip=clip))


# --- gae -----------------------------------------------------------------------------------


def _gae(rewards, values, mask, gamma, lam, variant="ok"):
    """Advantages as the discounted sum of TD errors, A_t = sum_l (gamma lam)^l delta_(t+l)."""
    B, T = rewards.shape
    adv = torch.zeros(B, T, dtype=torch.float64)
    ret = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        n = int(mask[b].sum())
        r, v = [float(x) for x in rewards[b]], [float(x) for x in values[b]]

        def value(t):
            if variant == "pad_bootstrap":
                return v[t] if t < T else 0.0
            return v[t] if t < n else 0.0

        g_, l_ = (lam, gamma) if variant == "swapped" else (gamma, lam)
        deltas = [r[t] + g_ * value(t + 1) - v[t] for t in range(n)]
        if variant == "forward":  # the backward recursion run with t = 0, 1, ...: "next" is the previous token
            previous_value = previous_adv = 0.0
            for t in range(n):
                previous_adv = r[t] + gamma * previous_value - v[t] + gamma * lam * previous_adv
                previous_value = v[t]
                adv[b, t], ret[b, t] = previous_adv, previous_adv + v[t]
            continue
        for t in range(n):
            if variant == "td_only":
                adv[b, t] = deltas[t]
            else:
                adv[b, t] = sum((g_ * l_) ** (s - t) * deltas[s] for s in range(t, n))
            ret[b, t] = adv[b, t] + (0.0 if variant == "returns_no_values" else v[t])
    return adv, ret


_GAE_MISTAKES = {
    "ran the recursion forwards (from the first token): A_t needs A_(t+1), so walk t from the end backwards": "forward",
    "bootstrapped the last response token from the value of the padding after it: past the response, V = 0": "pad_bootstrap",
    "swapped gamma and lam": "swapped",
    "returned the TD errors delta_t alone; the advantage adds gamma * lam * A_(t+1)": "td_only",
    "left the values out of the returns: returns = advantages + values": "returns_no_values",
}


def _expect_gae(impl, rewards, values, mask, gamma, lam, what, expected=None, pass_coefs=True):
    want_adv, want_ret = _gae(rewards, values, mask, gamma, lam) if expected is None else expected
    variants = {label: _gae(rewards, values, mask, gamma, lam, v) for label, v in _GAE_MISTAKES.items()}
    result = impl.gae(rewards, values, mask, gamma=gamma, lam=lam) if pass_coefs else impl.gae(rewards, values, mask)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (advantages, returns), got {type(result).__name__}.")
    adv, ret = result
    expect_close(adv, want_adv, f"{what}: advantages", suspects={k: a for k, (a, _) in variants.items()},
                 hint="delta_t = r_t + gamma * V_(t+1) - V_t and A_t = delta_t + gamma * lam * A_(t+1), with V and A "
                      "taken as 0 after the last response token; 0 on padding.")
    expect_close(ret, want_ret, f"{what}: returns", suspects={k: r for k, (_, r) in variants.items()},
                 hint="returns = advantages + values on response tokens, 0 on padding.")


def _gae_inputs():
    rewards = torch.tensor([[0.0, 0.1, 1.0, 0.0], [0.5, -0.2, 0.0, 0.0]])
    values = torch.tensor([[0.2, 0.4, 0.6, 0.0], [0.3, 0.1, 5.0, 5.0]])  # row 1: padding holds junk values
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    return rewards, values, mask


@pytest.mark.exercise("gae")
@pytest.mark.points(2)
def test_gae_hand_worked(impl):
    rewards, values, mask = _gae_inputs()
    # row 0 (gamma 1, lam 0.5): delta = [0.0 + 0.4 - 0.2, 0.1 + 0.6 - 0.4, 1.0 + 0 - 0.6] = [0.2, 0.3, 0.4],
    # A = [0.2 + 0.5 * 0.5, 0.3 + 0.5 * 0.4, 0.4] = [0.45, 0.5, 0.4]
    _expect_gae(impl, rewards, values, mask, 1.0, 0.5, "`gae(rewards, values, mask, gamma=1.0, lam=0.5)`")
    _expect_gae(impl, rewards, values, mask, 0.9, 0.8, "`gae(rewards, values, mask, gamma=0.9, lam=0.8)`")


@pytest.mark.exercise("gae")
def test_gae_defaults(impl):
    rewards, values, mask = _gae_inputs()
    _expect_gae(impl, rewards, values, mask, 1.0, 0.95,
                "`gae(rewards, values, mask)` with the defaults gamma = 1.0, lam = 0.95", pass_coefs=False)


@pytest.mark.exercise("gae")
@pytest.mark.hidden
def test_gae_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T = _randint(g, 1, 5), _randint(g, 1, 9)
    lengths, mask = _random_batch(g, B, T)
    rewards, values = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    gamma, lam = [1.0, 0.99, 0.9][_randint(g, 0, 3)], [0.95, 0.9, 0.7][_randint(g, 0, 3)]
    expected = ref.gae(rewards, values, mask, gamma=gamma, lam=lam)
    _expect_gae(impl, rewards, values, mask, gamma, lam,
                f"`gae(...)` with B={B}, T={T}, response lengths {lengths}, gamma={gamma}, lam={lam}", expected=expected)


# --- ppo_ptx_loss --------------------------------------------------------------------------


def _nll(logits, ids, shift=True):
    logp = logits.double().log_softmax(-1)
    B, T, _ = logits.shape
    terms = [-logp[b, t, int(ids[b, t + 1])].item() if shift else -logp[b, t, int(ids[b, t])].item()
             for b in range(B) for t in range(T - 1 if shift else T)]
    return sum(terms) / len(terms)


def _ptx_suspects(policy_loss, logits, ids, gamma):
    nll = _nll(logits, ids)
    return {
        "subtracted the pretraining term: the paper adds gamma * log-likelihood to the objective it maximises, "
        "so the loss adds gamma * NLL": policy_loss - gamma * nll,
        "forgot the shift in the pretraining loss: logits[:, :-1] predict ids[:, 1:]": policy_loss + gamma * _nll(logits, ids, shift=False),
        "left out the pretraining term (plain PPO, gamma = 0)": policy_loss,
        "multiplied the PPO loss by gamma instead of the pretraining term": gamma * policy_loss + nll,
    }


def _ptx_inputs():
    g = _gen(5)
    return torch.tensor(0.3), torch.randn(2, 4, 6, generator=g), torch.randint(0, 6, (2, 4), generator=g)


@pytest.mark.exercise("ppo_ptx")
@pytest.mark.points(2)
def test_ppo_ptx_hand_worked(impl):
    policy_loss, logits, ids = _ptx_inputs()
    what = "`ppo_ptx_loss(policy_loss=0.3, pretrain_logits (2, 4, 6), pretrain_ids, gamma=2.0)`"
    got = _scalar(impl.ppo_ptx_loss(policy_loss, logits, ids, gamma=2.0), what)
    expect_close(got, torch.tensor(0.3 + 2.0 * _nll(logits, ids)), what,
                 suspects=_ptx_suspects(0.3, logits, ids, 2.0),
                 hint="Expected policy_loss + gamma * (mean next-token cross-entropy of pretrain_ids).")


@pytest.mark.exercise("ppo_ptx")
def test_ppo_ptx_default_gamma_is_the_papers(impl):
    policy_loss, logits, ids = _ptx_inputs()
    what = "`ppo_ptx_loss(policy_loss=0.3, pretrain_logits, pretrain_ids)` with the default gamma"
    nll = _nll(logits, ids)
    suspects = {f"used gamma = {gamma}; the paper's pretraining coefficient is gamma = 27.8": 0.3 + gamma * nll
                for gamma in (0.0, 1.0, 2.78, 0.02)}
    suspects.update(_ptx_suspects(0.3, logits, ids, 27.8))
    expect_close(_scalar(impl.ppo_ptx_loss(policy_loss, logits, ids), what), torch.tensor(0.3 + 27.8 * nll), what,
                 suspects=suspects)


@pytest.mark.exercise("ppo_ptx")
@pytest.mark.hidden
def test_ppo_ptx_random_match_reference(impl, ref, seed):
    g = _gen(seed)
    B, T, V = _randint(g, 1, 4), _randint(g, 2, 8), _randint(g, 2, 10)
    policy_loss = torch.randn((), generator=g)
    logits, ids = torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g)
    gamma = [27.8, 1.0, 5.0, 0.5][_randint(g, 0, 4)]
    what = f"`ppo_ptx_loss(policy_loss={float(policy_loss):.4g}, pretrain_logits {tuple(logits.shape)}, pretrain_ids, gamma={gamma})`"
    expected = ref.ppo_ptx_loss(policy_loss, logits, ids, gamma=gamma)
    expect_close(_scalar(impl.ppo_ptx_loss(policy_loss, logits, ids, gamma=gamma), what), expected, what,
                 suspects=_ptx_suspects(float(policy_loss), logits, ids, gamma))
