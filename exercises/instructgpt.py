# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
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

# %%
import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # the label cross_entropy skips (its default ignore_index)


# --- Step 1: supervised fine-tuning (SFT) on demonstrations -----------------------------------


# %%
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
    # TODO(sft): Labels that ignore prompt and padding, and the shifted next-token loss.
    raise NotImplementedError("exercise `sft` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
def sft_loss(logits, labels):
    """Next-token cross-entropy on the labelled positions.

    logits: (B, T, V), the model's output for input_ids; labels: (B, T) as sft_labels makes them.
    The logits at position t predict the token at position t + 1, so every position but the
    last is compared with the label one step later; positions labelled -100 are skipped and
    the loss is the mean over the tokens that remain.
    """
    # TODO(sft): Labels that ignore prompt and padding, and the shifted next-token loss.
    raise NotImplementedError("exercise `sft` is not done yet: fill in this TODO in exercises/instructgpt.py")


# --- Step 2: a reward model trained on rankings ------------------------------------------------


# %%
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
    # TODO(reward_model): The pairwise ranking loss over all C(K, 2) pairs of K ranked responses, and the offset that centres demonstrations on 0.
    raise NotImplementedError("exercise `reward_model` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
def normalize_rewards(rewards, demonstration_rewards):
    """Offset the reward model so that the labelers' demonstrations score 0 on average.

    Before RL the paper adds a bias to the RM's output so that labeler demonstrations score 0 on
    average (Section 3.5). rewards: any shape; demonstration_rewards: (N,),
    the RM's scores of N demonstrations. Returns rewards shifted by the demonstrations' mean:
    only the offset moves, the scale stays.
    """
    # TODO(reward_model): The pairwise ranking loss over all C(K, 2) pairs of K ranked responses, and the offset that centres demonstrations on 0.
    raise NotImplementedError("exercise `reward_model` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
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


# %%
# The synthetic labelers: every token has a hidden goodness and a response's quality is the mean
# goodness of its tokens; labelers rank the K responses of a prompt by it.
RM_TASK = {"vocab": 12, "d": 8, "length": 6, "K": 4, "n_prompts": 64, "lr": 0.05}


# %%
def token_goodness(vocab):
    """The hidden goodness of each token, (vocab,): cos(2 v) for token v."""
    return torch.cos(2.0 * torch.arange(vocab, dtype=torch.float32))


# %%
def synthetic_rankings(n_prompts, K, vocab, length, generator):
    """K random responses of `length` tokens for each of n_prompts prompts, ranked best first by
    the hidden goodness. Returns (n_prompts, K, length) long."""
    responses = torch.randint(vocab, (n_prompts, K, length), generator=generator)
    quality = token_goodness(vocab)[responses].mean(dim=-1)  # (n_prompts, K)
    order = quality.argsort(dim=1, descending=True)
    return torch.gather(responses, 1, order.unsqueeze(-1).expand(-1, -1, length))


# %%
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
    # TODO(train_reward_model): Train a tiny reward model on synthetic rankings until it ranks unseen responses correctly.
    raise NotImplementedError("exercise `train_reward_model` is not done yet: fill in this TODO in exercises/instructgpt.py")
    return model.eval()


# --- Step 3: reinforcement learning against the reward model (PPO) ----------------------------


# %%
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
    # TODO(kl_reward): Per-token rewards, a KL penalty on every response token and the reward model's score on the last one.
    raise NotImplementedError("exercise `kl_reward` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
def ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip=0.2):
    """PPO's clipped surrogate (Schulman et al., 2017, Eq. 7) as a loss to minimise.

    All (B, T). ratio = exp(logprobs - old_logprobs), the new policy's probability over the
    policy's that sampled the tokens. Per token the loss is
    -min(ratio * A, clamp(ratio, 1 - clip, 1 + clip) * A); return its mean over the response
    tokens (mask == 1). The paper uses clip = 0.2.
    """
    # TODO(ppo_clip): PPO's clipped surrogate loss, averaged over the response tokens.
    raise NotImplementedError("exercise `ppo_clip` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
def gae(rewards, values, mask, gamma=1.0, lam=0.95):
    """Generalised advantage estimation (Schulman et al., 2016), computed backwards in time.

    rewards, values, mask: (B, T). With V and A taken as 0 after the last response token:
        delta_t = r_t + gamma * V_(t+1) - V_t
        A_t = delta_t + gamma * lam * A_(t+1)
    Returns (advantages, returns), both (B, T) and 0 on padding, with returns = advantages + values.
    """
    # TODO(gae): Generalised advantage estimates and returns, computed backwards over the response.
    raise NotImplementedError("exercise `gae` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
def ppo_ptx_loss(policy_loss, pretrain_logits, pretrain_ids, gamma=27.8):
    """The PPO-ptx objective of Eq. (2), as a loss to minimise.

    The paper maximises E[r(x, y) - beta * log(pi_RL / pi_SFT)] + gamma * E_(x ~ pretrain)[log pi_RL(x)]:
    the second term keeps the policy a good language model of its pretraining data (gamma = 27.8;
    gamma = 0 is plain PPO). As a loss: policy_loss + gamma * NLL, with NLL the mean next-token
    cross-entropy of pretrain_ids (B, T) under pretrain_logits (B, T, V), every token counting.
    """
    # TODO(ppo_ptx): The PPO-ptx objective, PPO plus gamma = 27.8 times the pretraining log-likelihood.
    raise NotImplementedError("exercise `ppo_ptx` is not done yet: fill in this TODO in exercises/instructgpt.py")


# --- What the labelers were asked for ---------------------------------------------------------


# %%
def labeling_answers():
    """Your answers about InstructGPT's labeling instructions (Section 3.4 and Appendix B).

    Return a dict with three entries, each written in lower-case adjectives:
      "criteria": the three properties labelers judged outputs by, a list of three words (any order);
      "training_priority": the one criterion the paper says it prioritised while collecting
          training data, when the criteria conflicted (a word);
      "evaluation_priority": the criteria labelers were asked to put first in the final
          evaluations (a list of words, any order).
    """
    # TODO(labeling): What labelers were asked to judge outputs by, and which criteria came first when they conflicted.
    raise NotImplementedError("exercise `labeling` is not done yet: fill in this TODO in exercises/instructgpt.py")


# %%
def labeler_prefers(a, b, stage="evaluation"):
    """Which of two outputs a labeler ranks higher, following your labeling_answers().

    a, b: dicts {criterion: bool} over your three criteria (True where the output meets it).
    stage: "training" or "evaluation"; its prioritised criteria are compared first: the output
    meeting more of them wins. On a tie, the output meeting more of the other criteria wins.
    Returns "a", "b" or "tie".
    """
    # TODO(labeling): What labelers were asked to judge outputs by, and which criteria came first when they conflicted.
    raise NotImplementedError("exercise `labeling` is not done yet: fill in this TODO in exercises/instructgpt.py")
