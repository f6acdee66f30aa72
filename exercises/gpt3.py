# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
"""GPT-3 as a model and as a prompt follower: "Language Models are Few-Shot Learners"
(Brown et al., 2020, https://arxiv.org/abs/2005.14165).

Five small pieces, each tied to a place in the paper:

- size: the exact parameter count of a GPT-2/GPT-3 decoder (Table 2.1; Table D.1 lists the counts),
- compute: C ~= 6 N D training FLOPs and the same in petaflop/s-days (Appendix D, Table D.1),
- prompts: zero-, one- and few-shot prompts laid out as in Figure 2.1 (Section 2),
- multiple choice: scoring completions by their likelihood, as Section 2.4 describes,
- decoding: temperature, top-k (Fan et al., 2018) and top-p / nucleus sampling (Holtzman et al.,
  2020), which the paper uses for its samples (Appendix F: nucleus sampling with p = 0.9).

The architecture is GPT-2's (Radford et al., 2019) as nanoGPT's `model.py` writes it: a token
embedding shared with the output head, learned position embeddings, pre-norm blocks of
LayerNorm -> causal self-attention and LayerNorm -> MLP(d -> 4d -> d), a final LayerNorm, and a
bias in every linear layer. GPT-3 alternates dense and locally banded sparse attention between
layers; that changes which positions attend, not the parameters.
"""

# %%
import torch

# Table 2.1 of the paper: name -> (n_layers, d_model, n_heads, d_head). Every model: n_ctx = 2048,
# d_ff = 4 * d_model, 300B training tokens, the GPT-2 BPE vocabulary of 50257 tokens.
# The 13B row prints d_model = 5140, but n_heads * d_head = 40 * 128 = 5120, and Table D.1's
# parameter count for it (12,850M) is what 5120 gives: the table disagrees with itself (the XL
# row too: 24 * 128 = 3072, not 2048). The rows are kept as printed; heads add no parameters.
GPT3_TABLE_2_1 = {
    "GPT-3 Small": (12, 768, 12, 64),
    "GPT-3 Medium": (24, 1024, 16, 64),
    "GPT-3 Large": (24, 1536, 16, 96),
    "GPT-3 XL": (24, 2048, 24, 128),
    "GPT-3 2.7B": (32, 2560, 32, 80),
    "GPT-3 6.7B": (32, 4096, 32, 128),
    "GPT-3 13B": (40, 5140, 40, 128),
    "GPT-3 175B": (96, 12288, 96, 128),
}
N_TOKENS = 300e9  # training tokens of every GPT-3 model


# --- Size ----------------------------------------------------------------------------------


# %%
def gpt_parameter_count(n_layers, d_model, vocab_size=50257, n_ctx=2048):
    """The exact number of parameters of a GPT-2/GPT-3 style decoder.

    What is counted (nanoGPT's GPT with bias=True):
    - the token embedding, vocab_size x d_model, which is also the output head (tied weights:
      counted once),
    - learned position embeddings, n_ctx x d_model,
    - per block: LayerNorm (gain and bias), the fused query/key/value projection d -> 3d and the
      attention's output projection d -> d, a second LayerNorm, and the MLP d -> 4d -> d; every
      projection has a bias,
    - a final LayerNorm after the last block.
    The number of heads does not appear: splitting d_model into heads adds no parameters.
    Returns a Python int.
    """
    # TODO(parameter_count): Count the parameters of a GPT-style decoder exactly and match the paper's Table 2.1.
    raise NotImplementedError("exercise `parameter_count` is not done yet: fill in this TODO in exercises/gpt3.py")


# --- Compute -------------------------------------------------------------------------------


# %%
def training_flops(n_params, n_tokens):
    """Training compute in FLOPs, C = 6 N D (Kaplan et al., 2020; the paper's Appendix D).

    The forward pass costs about 2 FLOPs per parameter per token (a multiply and an add), the
    backward pass twice that; attention's own FLOPs are left out. Returns a float.
    """
    # TODO(training_flops): Training compute C = 6 N D, and the 175B model's budget in PF-days.
    raise NotImplementedError("exercise `training_flops` is not done yet: fill in this TODO in exercises/gpt3.py")


# %%
def pf_days(flops):
    """FLOPs expressed in petaflop/s-days, the unit of the paper's Table D.1 and Figure 2.2.

    One petaflop/s-day is 10^15 FLOP per second sustained for one day of 86,400 seconds.
    """
    # TODO(training_flops): Training compute C = 6 N D, and the 175B model's budget in PF-days.
    raise NotImplementedError("exercise `training_flops` is not done yet: fill in this TODO in exercises/gpt3.py")


# --- Prompts -------------------------------------------------------------------------------


# %%
def build_prompt(task_description, demonstrations, query):
    """A zero-, one- or few-shot prompt in the layout of the paper's Figure 2.1.

    demonstrations: a list of (x, y) pairs (none: zero-shot, one: one-shot, more: few-shot).
    The prompt is these lines joined by a single newline "\\n":
        the task description (left out when task_description is None or ""),
        one line "x => y" per demonstration, in the order given,
        the query line "query =>".
    Each arrow has one space on either side, except that the last line ends right after "=>":
    no trailing space and no newline at the end, since the model writes the answer next.
    For example, build_prompt("Translate English to French:", [("sea otter", "loutre de mer")],
    "cheese") is "Translate English to French:\\nsea otter => loutre de mer\\ncheese =>".
    The model's weights never change: the task is learned "in context", from the prompt alone.
    """
    # TODO(build_prompt): Zero-, one- and few-shot prompts in the layout of the paper's Figure 2.1.
    raise NotImplementedError("exercise `build_prompt` is not done yet: fill in this TODO in exercises/gpt3.py")


# --- Multiple choice -----------------------------------------------------------------------

# %%
METHODS = ("sum", "mean", "unconditional")


# %%
def _total_logprobs(per_token):
    """Sum each completion's token log-probabilities: a list of n 1-D tensors -> (n,) float64."""
    return torch.stack([torch.as_tensor(lp, dtype=torch.float64).sum() for lp in per_token])


# %%
def choice_scores(completion_logprobs, method, unconditional_logprobs=None):
    """Scores of n candidate completions, as Section 2.4 of the paper compares them.

    completion_logprobs: a list of n 1-D tensors; entry i holds, for each token of completion i,
    log P(token | context, the completion's earlier tokens). Completions differ in length.
    method:
      "sum": log P(completion | context), the sum of its token log-probabilities;
      "mean": that sum divided by the completion's number of tokens (the per-token likelihood
        the paper uses for most tasks, so that long answers are not penalised for length);
      "unconditional": log [P(completion | context) / P(completion | answer context)], where
        unconditional_logprobs[i] holds completion i's token log-probabilities after just the
        string "Answer: " (or "A: "); the paper uses this for ARC, OpenBookQA and RACE.
    Returns a float64 tensor of shape (n,): higher is better.
    Raises ValueError for an unknown method, or for "unconditional" without one entry of
    unconditional_logprobs per completion.
    """
    # TODO(choice_scores): Score multiple-choice completions by sum, per-token mean, or against the unconditional probability.
    raise NotImplementedError("exercise `choice_scores` is not done yet: fill in this TODO in exercises/gpt3.py")


# %%
def pick_choice(completion_logprobs, method, unconditional_logprobs=None):
    """The index (a Python int) of the completion with the highest choice_scores."""
    # TODO(choice_scores): Score multiple-choice completions by sum, per-token mean, or against the unconditional probability.
    raise NotImplementedError("exercise `choice_scores` is not done yet: fill in this TODO in exercises/gpt3.py")


# --- Decoding ------------------------------------------------------------------------------


# %%
def filter_logits(logits, top_k=None, top_p=None):
    """Keep the tokens top-k and top-p allow; set every other logit to -inf.

    logits: (..., V), the last dimension is the vocabulary. Returns a new tensor of the same
    shape: the kept logits unchanged, the rest float("-inf"). The input is not modified.
    top_k: keep the k largest logits of each row (ties with the k-th largest are kept too);
      k >= V keeps everything. None: no top-k.
    top_p: nucleus filtering. Rank the tokens by probability (the softmax of the logits), and
      keep the smallest set of most likely tokens whose probabilities add up to at least top_p;
      the most likely token is always kept. None: no top-p.
    With both, top-k comes first, and top-p works on the softmax of what top-k kept.
    Raises ValueError when top_k < 1 or top_p is not in (0, 1].
    """
    # TODO(filter_logits): Keep the top-k logits and the top-p nucleus, and set the others to -inf.
    raise NotImplementedError("exercise `filter_logits` is not done yet: fill in this TODO in exercises/gpt3.py")


# %%
def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Draw the next token from logits of shape (B, V) (or (V,)).

    Divide the logits by the temperature (below 1 sharpens the distribution, above 1 flattens
    it), filter them with filter_logits(top_k, top_p), take the softmax, and draw one token per
    row with torch.multinomial, drawing from the given generator.
    temperature 0 means greedy decoding: the argmax of each row, with no randomness.
    Returns token ids of dtype long and shape (B, 1) (or (1,)), ready to append to the sequence
    with torch.cat, as nanoGPT's generate does. Raises ValueError for a negative temperature.
    """
    # TODO(sampling): Sample the next token with a temperature, top-k and top-p, or greedily at temperature 0.
    raise NotImplementedError("exercise `sampling` is not done yet: fill in this TODO in exercises/gpt3.py")
