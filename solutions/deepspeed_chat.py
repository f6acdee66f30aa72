"""DeepSpeed-Chat's RLHF step in code: rewards, PPO losses, GAE, the reward model's loss, EMA.

Follows microsoft/DeepSpeedExamples, ``applications/DeepSpeed-Chat``:
``dschat/rlhf/ppo_trainer.py`` (compute_rewards, actor_loss_fn, critic_loss_fn,
get_advantages_and_returns, train_rlhf), ``dschat/utils/model/reward_model.py`` (the pairwise
loss of step 2) and ``dschat/utils/utils.py`` (moving_average). The default values are the
original's, and most names too, so you can read the two side by side; the trainer's methods
become functions here, with the trainer's settings as keyword arguments. Some names differ:
compute_rewards takes ``prompts_len`` and ``logprobs, ref_logprobs`` where the original takes
``prompts`` and ``log_probs, ref_log_probs``; ``train_rlhf_losses`` and ``reward_model_loss``
are this course's names for what train_rlhf and the reward model's forward compute (and the
keys reward_model_loss returns differ too, see there).

The pipeline has three steps: (1) supervised fine-tuning of the actor, (2) a reward model
trained on pairs (chosen, rejected), (3) PPO with four models: the actor being trained, a
frozen reference copy of it, the frozen reward model, and a critic that predicts values.

Alignment, as in the original. A sequence of length L is a prompt of length P followed by the
generated response (right-padded). Log-probs come from logits[:, :-1] and tokens seq[:, 1:],
so they have length L - 1 and position t scores token t + 1. The critic's values are cut the
same way (values[:, :-1]), and so is the action mask: attention_mask[:, 1:]. The response's
first log-prob is at start = P - 1.

Shapes in comments: B = batch, L = sequence length, R = L - 1 - start (response positions).
"""
import torch
import torch.nn.functional as F

# The trainer's settings in DeepSpeedPPOTrainer.__init__
KL_CTL = 0.1
CLIP_REWARD_VALUE = 5
CLIPRANGE = 0.2
CLIPRANGE_VALUE = 0.2
GAMMA = 1.0
LAM = 0.95
EMA_BETA = 0.992


def gather_log_probs(logits, labels):
    """log softmax(logits) at the label ids: logits (B, T, V), labels (B, T) -> (B, T)."""
    log_probs = F.log_softmax(logits, dim=-1)
    return log_probs.gather(dim=-1, index=labels.unsqueeze(-1)).squeeze(-1)


# --- Rewards -------------------------------------------------------------------------------


def compute_rewards(prompts_len, logprobs, ref_logprobs, reward_score, action_mask, kl_ctl=KL_CTL,
                    clip_reward_value=CLIP_REWARD_VALUE):
    """Per-position rewards: a KL penalty everywhere, plus the clipped reward-model score once.

    logprobs, ref_logprobs: (B, L - 1) from the actor and the frozen reference model;
    reward_score: (B,) the reward model's score of each whole sequence; action_mask: (B, L - 1),
    the attention mask without its first position. Returns rewards (B, L - 1):
      - every position gets -kl_ctl * (logprob - ref_logprob);
      - with start = prompts_len - 1 and n = the number of 1s in action_mask[:, start:] (the
        response's real tokens), ends = start + n + 1, and the score clipped to
        [-clip_reward_value, clip_reward_value] is added to rewards[j, start:ends[j]][-1].
        That is position start + n, or the last position when the response fills the
        sequence (the slice stops at the end). Note start + n is one past the log-prob of the
        last real response token: the original's indexing, kept here on purpose (see
        DeepSpeedExamples pull request #672).
    """
    ### BEGIN SOLUTION compute_rewards
    rewards = -kl_ctl * (logprobs - ref_logprobs)  # (B, L - 1)
    start = prompts_len - 1
    ends = start + action_mask[:, start:].sum(1) + 1  # (B,)
    reward_clip = torch.clamp(reward_score, -clip_reward_value, clip_reward_value)  # (B,)
    for j in range(logprobs.size(0)):
        last = min(int(ends[j]), rewards.size(1)) - 1  # rewards[j, start:ends[j]][-1]
        rewards[j, last] += reward_clip[j]
    return rewards
    ### END SOLUTION


# --- PPO losses ----------------------------------------------------------------------------


def actor_loss_fn(logprobs, old_logprobs, advantages, mask, cliprange=CLIPRANGE):
    """PPO's clipped surrogate for the actor, a masked mean over the response.

    All inputs (B, R). The log-ratio is masked before the exponential, as in the original's
    actor_loss_fn: ratio = exp((logprobs - old_logprobs) * mask), so where mask is 0 the
    ratio is exp(0) = 1, not 0 (those positions then drop out of the masked mean anyway);
    loss = masked mean of max(-A * ratio, -A * clamp(ratio, 1 - cliprange, 1 + cliprange)).
    """
    ### BEGIN SOLUTION ppo_losses
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)  # (B, R)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    return torch.sum(torch.max(pg_loss1, pg_loss2) * mask) / mask.sum()
    ### END SOLUTION


def critic_loss_fn(values, old_values, returns, mask, cliprange_value=CLIPRANGE_VALUE):
    """The critic's clipped value loss, a masked mean over the response.

    All inputs (B, R). The new values are clipped to old_values +- cliprange_value; the loss
    is 0.5 * the masked mean of the larger of the two squared errors against the returns.
    """
    ### BEGIN SOLUTION ppo_losses
    values_clipped = torch.clamp(values, old_values - cliprange_value, old_values + cliprange_value)
    vf_loss1 = (values - returns) ** 2
    vf_loss2 = (values_clipped - returns) ** 2
    return 0.5 * torch.sum(torch.max(vf_loss1, vf_loss2) * mask) / mask.sum()
    ### END SOLUTION


# --- Advantages ------------------------------------------------------------------------------


def get_advantages_and_returns(values, rewards, start, gamma=GAMMA, lam=LAM):
    """Generalised advantage estimation over the response, computed backwards.

    values, rewards: (B, L - 1). For t from the last position down to start:
      delta_t = r_t + gamma * V_{t+1} - V_t   (V after the last position is 0)
      A_t = delta_t + gamma * lam * A_{t+1}
    Returns (advantages (B, R), returns: the advantages on top of the response's values), R = L - 1 - start;
    the advantages are detached.
    """
    ### BEGIN SOLUTION advantages
    lastgaelam = 0
    advantages_reversed = []
    length = rewards.size(-1)
    for t in reversed(range(start, length)):
        nextvalues = values[:, t + 1] if t < length - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], dim=1)  # (B, R)
    returns = advantages + values[:, start:]
    return advantages.detach(), returns
    ### END SOLUTION


# --- One PPO step, as train_rlhf wires it ------------------------------------------------------


def train_rlhf_losses(prompts_len, old_logprobs, ref_logprobs, reward_score, old_values, attention_mask,
                      logprobs, values, kl_ctl=KL_CTL, clip_reward_value=CLIP_REWARD_VALUE, cliprange=CLIPRANGE,
                      cliprange_value=CLIPRANGE_VALUE, gamma=GAMMA, lam=LAM):
    """The actor's and the critic's losses for one batch of experience, as train_rlhf computes them.

    Experience (no gradients): old_logprobs, ref_logprobs, old_values (B, L - 1), reward_score
    (B,), attention_mask (B, L). New outputs of the models being trained: logprobs, values
    (B, L - 1). Steps: rewards from compute_rewards with the action mask aligned with the log-probs;
    the rewards and the old values are zeroed from ends = start + n + 1 on (copies: the inputs
    are not changed); GAE from start; then both losses on the response, [:, start:].
    Returns (actor_loss, critic_loss).
    """
    ### BEGIN SOLUTION ppo_step
    start = prompts_len - 1
    action_mask = attention_mask[:, 1:]  # (B, L - 1), aligned with the log-probs
    with torch.no_grad():
        old_rewards = compute_rewards(prompts_len, old_logprobs, ref_logprobs, reward_score, action_mask,
                                      kl_ctl, clip_reward_value)
        old_values = old_values.clone()
        ends = start + action_mask[:, start:].sum(1) + 1
        for i in range(old_rewards.size(0)):  # nothing after the end of the conversation
            old_rewards[i, ends[i]:] = 0
            old_values[i, ends[i]:] = 0
        advantages, returns = get_advantages_and_returns(old_values, old_rewards, start, gamma, lam)
    actor_loss = actor_loss_fn(logprobs[:, start:], old_logprobs[:, start:], advantages, action_mask[:, start:],
                               cliprange)
    critic_loss = critic_loss_fn(values[:, start:], old_values[:, start:], returns, action_mask[:, start:],
                                 cliprange_value)
    return actor_loss, critic_loss
    ### END SOLUTION


# --- Step 2: the reward model's pairwise loss ------------------------------------------------------


def reward_model_loss(chosen_ids, rejected_ids, chosen_rewards, rejected_rewards, pad_id):
    """The pairwise loss of DeepSpeed-Chat's reward model, and its end scores.

    chosen_ids, rejected_ids: (B, T) token ids, right-padded with pad_id; chosen_rewards,
    rejected_rewards: (B, T) the scalar head's output at every position. Per pair:
      - c_ind, r_ind: the first pad position of each sequence (T when there is none);
      - if the two sequences are identical: end = T and the divergence is T - 1;
        otherwise end = max(c_ind, r_ind) and the divergence is the first position where
        they differ;
      - loss = mean over positions divergence..end-1 of -logsigmoid(chosen - rejected);
      - the end scores are the rewards at the last real token, c_ind - 1 and r_ind - 1.
    Returns {"loss": mean over the batch, "chosen_end_scores": (B,), "rejected_end_scores": (B,)}.
    The keys are named for what they hold. The original RewardModel.forward, whose loss this is,
    returns the same end scores under "chosen_mean_scores" and "rejected_mean_scores" (they
    are not means: its comment says it uses the end score); "chosen_end_scores" is the key
    of RewardModel.forward_value, the end score of a single sequence that step 3's PPO
    trainer reads as the reward (reward_model.py and ppo_trainer.py on the master branch of
    microsoft/DeepSpeedExamples, February 2025, commit 83757d9).
    (The original also skips `num_padding_at_beginning` pads for OPT; here there are none.)
    """
    ### BEGIN SOLUTION reward_model_loss
    B, T = chosen_ids.shape
    loss = 0.0
    chosen_end_scores, rejected_end_scores = [], []
    for i in range(B):
        c_pads = (chosen_ids[i] == pad_id).nonzero()
        c_ind = c_pads[0].item() if len(c_pads) > 0 else T
        divergence = (chosen_ids[i] != rejected_ids[i]).nonzero()
        if len(divergence) == 0:  # identical: compare the last position only
            end_ind = T
            divergence_ind = end_ind - 1
            r_ind = c_ind
        else:
            r_pads = (rejected_ids[i] == pad_id).nonzero()
            r_ind = r_pads[0].item() if len(r_pads) > 0 else T
            end_ind = max(c_ind, r_ind)
            divergence_ind = divergence[0].item()
        c_truncated = chosen_rewards[i, divergence_ind:end_ind]
        r_truncated = rejected_rewards[i, divergence_ind:end_ind]
        chosen_end_scores.append(chosen_rewards[i, c_ind - 1])
        rejected_end_scores.append(rejected_rewards[i, r_ind - 1])
        loss = loss - F.logsigmoid(c_truncated - r_truncated).mean()
    return {
        "loss": loss / B,
        "chosen_end_scores": torch.stack(chosen_end_scores),
        "rejected_end_scores": torch.stack(rejected_end_scores),
    }
    ### END SOLUTION


# --- EMA of the actor ----------------------------------------------------------------------------


def moving_average(model, model_ema, beta=EMA_BETA):
    """Update model_ema in place: ema = beta * ema + (1 - beta) * param for every pair of
    parameters (model and model_ema have the same architecture). `model` is not changed."""
    ### BEGIN SOLUTION moving_average
    with torch.no_grad():
        for param, param_ema in zip(model.parameters(), model_ema.parameters()):
            param_ema.copy_(torch.lerp(param, param_ema, beta))  # param + beta * (ema - param)
    ### END SOLUTION
