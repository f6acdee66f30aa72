"""InstructGPT: pretraining -> supervised fine-tuning -> reward model -> RLHF, in small pieces.

Follows Ouyang et al., "Training language models to follow instructions with human feedback"
(NeurIPS 2022, https://arxiv.org/abs/2203.02155): Section 3.5 (the SFT model, the reward model
and its loss, Eq. 1, the RL objective, Eq. 2), Appendix C.2 (how the reward model was trained
and initialised), Section 3.4 and Appendix B (what labelers were asked for). PPO's clipped surrogate is Schulman et al. (2017, Eq. 7) and GAE is Schulman et al.
(2016, Eq. 16). The per-token bookkeeping of rewards, advantages and masks follows the open
RLHF implementations (e.g. DeepSpeed-Chat); the paper does not publish its code.

Shapes in comments: B = batch, T = sequence length, V = vocabulary, K = ranked responses per prompt.
Masks hold 1 (or True) on response tokens and 0 on prompt and padding tokens; sequences are
right-padded, so the response tokens of a row come first and its padding last.
"""
import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # the label cross_entropy skips (its default ignore_index)


# --- Step 1: supervised fine-tuning (SFT) on demonstrations -----------------------------------


def sft_labels(prompt_ids, response_ids, pad_id, max_len):
    """Inputs and labels for supervised fine-tuning on labeler demonstrations.

    prompt_ids, response_ids: B sequences each (lists of ints or 1-D tensors), prompt b answered
    by response b. Each row of input_ids is the prompt followed by its response, cut to max_len
    tokens, then right-padded with pad_id. labels copy input_ids on the response tokens and hold
    IGNORE_INDEX (-100) on prompt tokens and padding: the model learns to write responses, not
    prompts. Decide by position, never by value: a response may itself contain pad_id (when the
    padding token is also the end-of-sequence token, for one).
    Returns (input_ids, labels): long tensors of shape (B, max_len). Labels are not shifted here;
    the loss shifts them.
    """
    ### BEGIN SOLUTION sft
    B = len(prompt_ids)
    input_ids = torch.full((B, max_len), pad_id, dtype=torch.long)
    labels = torch.full((B, max_len), IGNORE_INDEX, dtype=torch.long)
    for b in range(B):
        prompt = torch.as_tensor(prompt_ids[b], dtype=torch.long)
        response = torch.as_tensor(response_ids[b], dtype=torch.long)
        ids = torch.cat([prompt, response])[:max_len]  # (n,), n <= max_len
        n, p = len(ids), len(prompt)
        input_ids[b, :n] = ids
        labels[b, p:n] = ids[p:]  # response tokens only; empty when the prompt fills max_len
    return input_ids, labels
    ### END SOLUTION


def sft_loss(logits, labels):
    """Next-token cross-entropy on the labelled positions.

    logits: (B, T, V), the model's output for input_ids; labels: (B, T) as sft_labels makes them.
    The logits at position t predict the token at position t + 1, so every position but the
    last is compared with the label one step later; positions labelled -100 are skipped and
    the loss is the mean over the tokens that remain.
    """
    ### BEGIN SOLUTION sft
    V = logits.size(-1)
    predictions = logits[:, :-1].reshape(-1, V)  # (B * (T - 1), V): the predictions for positions 1..T-1
    targets = labels[:, 1:].reshape(-1)  # (B * (T - 1),)
    return F.cross_entropy(predictions, targets, ignore_index=IGNORE_INDEX)
    ### END SOLUTION


# --- Step 2: a reward model trained on rankings ------------------------------------------------


def reward_ranking_loss(rewards, mask=None):
    """The reward model's loss, Eq. (1) of the paper:

        loss = -1 / C(K, 2) * E_(x, y_w, y_l) [ log sigmoid(r(x, y_w) - r(x, y_l)) ]

    rewards: (B, K), the rewards of K responses to each of B prompts, ranked best first by the
    labelers (rewards[b, 0] belongs to the favourite). Every pair (i, j) with i < j is one
    comparison that response i won. mask: optional (B, K) bools, True where prompt b has a k-th
    response, for prompts with fewer responses (the paper shows labelers K = 4 to 9); each prompt
    needs at least 2.
    All C(K_b, 2) comparisons of one prompt form ONE batch element: average
    -log sigmoid(r_i - r_j) over the pairs of each prompt, then average over the prompts, so a
    prompt with 9 responses (36 pairs) weighs as much as one with 4 (6 pairs). Returns a scalar.
    """
    ### BEGIN SOLUTION reward_model
    B, K = rewards.shape
    if mask is None:
        mask = torch.ones(B, K, dtype=torch.bool)
    mask = mask.bool()
    diff = rewards.unsqueeze(2) - rewards.unsqueeze(1)  # (B, K, K): diff[b, i, j] = r_i - r_j
    above = torch.triu(torch.ones(K, K, dtype=torch.bool), diagonal=1)  # (K, K): i ranked above j
    pairs = above & mask.unsqueeze(2) & mask.unsqueeze(1)  # (B, K, K): both responses exist
    losses = torch.where(pairs, -F.logsigmoid(diff), torch.zeros_like(diff))  # (B, K, K)
    per_prompt = losses.sum(dim=(1, 2)) / pairs.sum(dim=(1, 2))  # (B,): mean over C(K_b, 2) pairs
    return per_prompt.mean()
    ### END SOLUTION


def normalize_rewards(rewards, demonstration_rewards):
    """Offset the reward model so that the labelers' demonstrations score 0 on average.

    Before RL the paper adds a bias to the RM's output so that labeler demonstrations score 0 on
    average (Section 3.5). rewards: any shape; demonstration_rewards: (N,),
    the RM's scores of N demonstrations. Returns rewards shifted by the demonstrations' mean:
    only the offset moves, the scale stays.
    """
    ### BEGIN SOLUTION reward_model
    return rewards - demonstration_rewards.mean()
    ### END SOLUTION


class RewardModel(nn.Module):
    """A tiny reward model: the mean of the token embeddings, then a scalar head.

    Where the paper's RM starts from, it says two things. Section 3.5: from the SFT model with
    its final unembedding layer removed, so that it outputs one number (a 6B model). Appendix
    C.2: the final 6B RM was initialised from a 6B GPT-3 that had been fine-tuned on public NLP
    datasets (ARC, BoolQ, CoQA, DROP, MultiNLI, OpenBookQA, QuAC, RACE, Winogrande), mostly for
    historical reasons, and starting from GPT-3 or from the SFT model gave similar results.
    Either way it is a pretrained language model with a scalar head. This one keeps only that
    shape: embed (V, d), mean over the T tokens, head Linear(d, 1).
    forward(tokens (N, T) long) -> rewards (N,).
    """

    def __init__(self, vocab, d):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.head = nn.Linear(d, 1)

    def forward(self, tokens):
        return self.head(self.embed(tokens).mean(dim=1)).squeeze(-1)  # (N, T, d) -> (N, d) -> (N,)


# The synthetic labelers: every token has a hidden goodness and a response's quality is the mean
# goodness of its tokens; labelers rank the K responses of a prompt by it.
RM_TASK = {"vocab": 12, "d": 8, "length": 6, "K": 4, "n_prompts": 64, "lr": 0.05}


def token_goodness(vocab):
    """The hidden goodness of each token, (vocab,): cos(2 v) for token v."""
    return torch.cos(2.0 * torch.arange(vocab, dtype=torch.float32))


def synthetic_rankings(n_prompts, K, vocab, length, generator):
    """K random responses of `length` tokens for each of n_prompts prompts, ranked best first by
    the hidden goodness. Returns (n_prompts, K, length) long."""
    responses = torch.randint(vocab, (n_prompts, K, length), generator=generator)
    quality = token_goodness(vocab)[responses].mean(dim=-1)  # (n_prompts, K)
    order = quality.argsort(dim=1, descending=True)
    return torch.gather(responses, 1, order.unsqueeze(-1).expand(-1, -1, length))


def train_reward_model(steps=150, seed=0):
    """Train a RewardModel on synthetic rankings until it ranks responses as the labelers do.

    Use the data and model made below, Adam with RM_TASK["lr"], and your reward_ranking_loss on
    the rewards of all the rankings, reshaped to (n_prompts, K), in each of `steps` full-batch
    steps. Returns the model in eval mode.
    """
    cfg = RM_TASK
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    data = synthetic_rankings(cfg["n_prompts"], cfg["K"], cfg["vocab"], cfg["length"], generator)
    model = RewardModel(cfg["vocab"], cfg["d"])
    ### BEGIN SOLUTION train_reward_model
    n, K, T = data.shape
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    for _ in range(steps):
        rewards = model(data.view(n * K, T)).view(n, K)  # (n, K): one reward per response
        loss = reward_ranking_loss(rewards)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ### END SOLUTION
    return model.eval()


# --- Step 3: reinforcement learning against the reward model (PPO) ----------------------------


def kl_penalized_reward(rm_score, logprobs, ref_logprobs, mask, beta=0.02):
    """Per-token rewards for PPO: a KL penalty on every response token, the RM's score on the last.

    rm_score: (B,), the reward model's score of each response. logprobs, ref_logprobs: (B, T), the
    log-probabilities of the sampled response tokens under the RL policy and under the SFT model.
    mask: (B, T), 1 on response tokens, 0 on padding.
    reward[b, t] = -beta * (logprobs[b, t] - ref_logprobs[b, t]) on response tokens, 0 on
    padding, plus rm_score[b] on the last response token of row b. Summed over t this is the
    paper's r(x, y) - beta * log(pi_RL(y | x) / pi_SFT(y | x)), Eq. (2), with beta = 0.02.
    Returns (B, T).
    """
    ### BEGIN SOLUTION kl_reward
    T = logprobs.size(1)
    mask = mask.to(logprobs.dtype)
    rewards = -beta * (logprobs - ref_logprobs) * mask  # (B, T): the KL penalty per token
    last = (torch.arange(T) * mask).argmax(dim=1)  # (B,): index of the last response token
    return rewards + F.one_hot(last, T).to(rewards.dtype) * rm_score.unsqueeze(1)
    ### END SOLUTION


def ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip=0.2):
    """PPO's clipped surrogate (Schulman et al., 2017, Eq. 7) as a loss to minimise.

    All (B, T). ratio = exp(logprobs - old_logprobs), the new policy's probability over the
    policy's that sampled the tokens. Per token the loss is
    -min(ratio * A, clamp(ratio, 1 - clip, 1 + clip) * A); return its mean over the response
    tokens (mask == 1). The paper uses clip = 0.2.
    """
    ### BEGIN SOLUTION ppo_clip
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    losses = -torch.min(unclipped, clipped)  # (B, T): pessimistic, the lower of the two objectives
    mask = mask.to(losses.dtype)
    return (losses * mask).sum() / mask.sum()
    ### END SOLUTION


def gae(rewards, values, mask, gamma=1.0, lam=0.95):
    """Generalised advantage estimation (Schulman et al., 2016), computed backwards in time.

    rewards, values, mask: (B, T). With V and A taken as 0 after the last response token:
        delta_t = r_t + gamma * V_(t+1) - V_t
        A_t = delta_t + gamma * lam * A_(t+1)
    Returns (advantages, returns), both (B, T) and 0 on padding, with returns = advantages + values.
    """
    ### BEGIN SOLUTION gae
    B, T = rewards.shape
    mask = mask.to(rewards.dtype)
    next_value = torch.zeros(B, dtype=rewards.dtype)
    next_advantage = torch.zeros(B, dtype=rewards.dtype)
    advantages = [None] * T
    for t in reversed(range(T)):  # A_t needs A_(t+1): walk from the end
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (B,)
        next_advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        next_value = values[:, t] * mask[:, t]  # padding has no value to bootstrap from
        advantages[t] = next_advantage
    advantages = torch.stack(advantages, dim=1)  # (B, T)
    return advantages, (advantages + values) * mask
    ### END SOLUTION


def ppo_ptx_loss(policy_loss, pretrain_logits, pretrain_ids, gamma=27.8):
    """The PPO-ptx objective of Eq. (2), as a loss to minimise.

    The paper maximises E[r(x, y) - beta * log(pi_RL / pi_SFT)] + gamma * E_(x ~ pretrain)[log pi_RL(x)]:
    the second term keeps the policy a good language model of its pretraining data (gamma = 27.8;
    gamma = 0 is plain PPO). As a loss: policy_loss + gamma * NLL, with NLL the mean next-token
    cross-entropy of pretrain_ids (B, T) under pretrain_logits (B, T, V), every token counting.
    """
    ### BEGIN SOLUTION ppo_ptx
    V = pretrain_logits.size(-1)
    nll = F.cross_entropy(pretrain_logits[:, :-1].reshape(-1, V), pretrain_ids[:, 1:].reshape(-1))
    return policy_loss + gamma * nll  # minimising -log-likelihood maximises gamma * E[log pi(x)]
    ### END SOLUTION


# --- What the labelers were asked for ---------------------------------------------------------


def labeling_answers():
    """Your answers about InstructGPT's labeling instructions (Section 3.4 and Appendix B).

    Return a dict with three entries, each written in lower-case adjectives:
      "criteria": the three properties labelers judged outputs by, a list of three words (any order);
      "training_priority": the one criterion the paper says it prioritised while collecting
          training data, when the criteria conflicted (a word);
      "evaluation_priority": the criteria labelers were asked to put first in the final
          evaluations (a list of words, any order).
    """
    ### BEGIN SOLUTION labeling
    return {
        "criteria": ["helpful", "truthful", "harmless"],
        "training_priority": "helpful",
        "evaluation_priority": ["truthful", "harmless"],
    }
    ### END SOLUTION


def labeler_prefers(a, b, stage="evaluation"):
    """Which of two outputs a labeler ranks higher, following your labeling_answers().

    a, b: dicts {criterion: bool} over your three criteria (True where the output meets it).
    stage: "training" or "evaluation"; its prioritised criteria are compared first: the output
    meeting more of them wins. On a tie, the output meeting more of the other criteria wins.
    Returns "a", "b" or "tie".
    """
    ### BEGIN SOLUTION labeling
    answers = labeling_answers()
    first = answers["training_priority"] if stage == "training" else answers["evaluation_priority"]
    first = {first} if isinstance(first, str) else set(first)
    rest = set(answers["criteria"]) - first
    # (prioritised criteria met, other criteria met) for each output, compared in that order
    key_a, key_b = [(sum(bool(o[c]) for c in first), sum(bool(o[c]) for c in rest)) for o in (a, b)]
    if key_a == key_b:
        return "tie"
    return "a" if key_a > key_b else "b"
    ### END SOLUTION
