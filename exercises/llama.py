# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
"""LLaMA's design choices (Touvron et al., 2023, "LLaMA: Open and Efficient Foundation Language
Models"), piece by piece.

Follows Meta's reference code, facebookresearch/llama ``llama/model.py``
(https://github.com/facebookresearch/llama): the names and signatures are the same (ModelArgs,
RMSNorm, precompute_freqs_cis, apply_rotary_emb, Attention, FeedForward, TransformerBlock,
Transformer), so you can read the two side by side. What differs, on purpose:

- plain nn.Linear / nn.Embedding instead of the model-parallel layers, and everything on the CPU;
- the hidden width of the feed-forward network is computed by `ffn_hidden_dim` (Meta computes
  it inside FeedForward);
- `Transformer.forward` returns the logits of every position (as Llama 2's ``model.py`` does),
  not only the last one;
- with a cache, its causal mask has shape (T, start_pos + T). Neither LLaMA 1 (February 2023)
  nor the Llama 2 release (July 2023) had this: both built a (1, 1, T, T) mask, which does not
  broadcast against scores of shape (B, H, T, start_pos + T) when start_pos > 0 and T > 1, so
  only a prompt fed at start_pos 0 or one token at a time worked. The (T, start_pos + T) mask
  reached the repository's main branch later, with the pull request "Fix key-value caching
  for seqlen != 1" (meta-llama/llama #900, merged in November 2023).

Section 2.2 of the paper lists where LLaMA's network differs from the original Transformer
(Vaswani et al., 2017) and names in brackets the model each change was taken from:
pre-normalisation [GPT-3], done with RMSNorm (Zhang and Sennrich, 2019); the SwiGLU activation
[PaLM] (Shazeer, 2020); and rotary position embeddings [GPT-Neo] (Su et al., 2021). None of
the three is new with LLaMA; they are borrowed improvements, and GPT-3 is the source of one of
them, not the baseline they change. There are no biases, and the output head is not tied to
the input embedding.

Shapes in comments: B = batch, T = new positions in this call, S = start_pos (positions already
in the cache), H = heads, D = head_dim = dim // n_heads.
"""

# %%
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


# %%
@dataclass
class ModelArgs:
    """Hyper-parameters, with the defaults of Meta's ``ModelArgs``."""

    dim: int = 512
    n_layers: int = 8
    n_heads: int = 8
    vocab_size: int = -1  # set from the tokenizer: 32000 for LLaMA (SentencePiece BPE)
    multiple_of: int = 256  # the SwiGLU hidden width is rounded up to a multiple of this
    ffn_dim_multiplier: Optional[float] = None  # Llama 2 (70B: 1.3); None in LLaMA 1
    norm_eps: float = 1e-5  # Meta's code says 1e-5; the released LLaMA params.json files say 1e-6
    max_batch_size: int = 32  # the key/value cache is allocated for this many sequences ...
    max_seq_len: int = 2048  # ... of this many positions


# %%
# Table 2 of the paper: the four LLaMA models (all with a 32000-token vocabulary).
LLAMA_TABLE2 = {
    "6.7B": dict(dim=4096, n_heads=32, n_layers=32),
    "13.0B": dict(dim=5120, n_heads=40, n_layers=40),
    "32.5B": dict(dim=6656, n_heads=52, n_layers=60),
    "65.2B": dict(dim=8192, n_heads=64, n_layers=80),
}


# --- RMSNorm -----------------------------------------------------------------------------


# %%
class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang and Sennrich, 2019) over the last dimension:

        RMSNorm(x) = x / sqrt(mean(x^2) + eps) * weight

    Unlike LayerNorm it subtracts no mean and has no bias: it only rescales. The normalisation
    runs in float32 whatever x's dtype, and the result is cast back to x's dtype before `weight`
    multiplies it. In float16, x^2 overflows to inf from |x| = 256 on, 256 included: 256^2 =
    65536 is more than 65504, the largest float16 (torch.finfo(torch.float16).max).

    eps defaults to 1e-6 here as in Meta's RMSNorm; the model passes ModelArgs.norm_eps.
    """

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        """x: (..., dim) in any float dtype -> (..., dim), x's dtype when weight has it too."""
        # TODO(rms_norm): RMSNorm computed in float32 and cast back.
        raise NotImplementedError("exercise `rms_norm` is not done yet: fill in this TODO in exercises/llama.py")


# --- Rotary position embeddings ------------------------------------------------------------


# %%
def precompute_freqs_cis(dim, end, theta=10000.0):
    """The rotations of RoPE (Su et al., 2021, "RoFormer") for positions m = 0 .. end - 1.

    Each vector of width `dim` is read as dim / 2 pairs; pair j turns with the frequency
    theta_j = 1 / theta^(2j / dim), so at position m it is rotated by the angle m * theta_j.
    Returns a complex64 tensor (end, dim // 2) holding e^(i m theta_j) = cos(m theta_j) + i sin(m theta_j).
    """
    # TODO(rotary): Rotary position embeddings on adjacent pairs, as in Meta's code.
    raise NotImplementedError("exercise `rotary` is not done yet: fill in this TODO in exercises/llama.py")


# %%
def apply_rotary_emb(xq, xk, freqs_cis):
    """Rotate the queries and keys by the angles of their positions, Meta's way.

    Meta's code pairs ADJACENT features (x[2j], x[2j+1]) and reads each pair as the complex number
    x[2j] + i x[2j+1]; multiplying it by e^(i m theta_j) rotates it by m * theta_j. (Hugging Face's
    `rotate_half` pairs feature j with feature j + D/2 instead: also RoPE, but a different layout.)

    xq: (B, T, H, D), xk: (B, T, H, D); freqs_cis: (T, D/2) complex, the rotations of these T positions.
    Returns (xq_out, xk_out) with the shapes and dtypes of xq and xk.
    """
    # TODO(rotary): Rotary position embeddings on adjacent pairs, as in Meta's code.
    raise NotImplementedError("exercise `rotary` is not done yet: fill in this TODO in exercises/llama.py")


# --- SwiGLU feed-forward -------------------------------------------------------------------


# %%
def ffn_hidden_dim(dim, multiple_of=256, ffn_dim_multiplier=None):
    """The hidden width of LLaMA's feed-forward network.

    Start from the usual 4 * dim and keep 2/3 of it (SwiGLU has three matrices instead of two,
    so the parameter count stays that of a 4 * dim network), truncated to an int; scale it by
    ffn_dim_multiplier if given (Llama 2), then round UP to a multiple of `multiple_of`.
    ffn_hidden_dim(4096) == 11008 (LLaMA 7B).
    """
    # TODO(swiglu): The SwiGLU feed-forward and its hidden size rounded to a multiple of 256.
    raise NotImplementedError("exercise `swiglu` is not done yet: fill in this TODO in exercises/llama.py")


# %%
class FeedForward(nn.Module):
    """The SwiGLU feed-forward network (Shazeer, 2020): w2(silu(w1 x) * w3 x).

    Three linears without biases: w1 (the gate, through SiLU) and w3 (the value), both
    dim -> hidden_dim, and w2, hidden_dim -> dim.
    """

    def __init__(self, dim, hidden_dim):
        super().__init__()
        # TODO(swiglu): The SwiGLU feed-forward and its hidden size rounded to a multiple of 256.
        raise NotImplementedError("exercise `swiglu` is not done yet: fill in this TODO in exercises/llama.py")

    def forward(self, x):
        """x: (..., dim) -> (..., dim)."""
        # TODO(swiglu): The SwiGLU feed-forward and its hidden size rounded to a multiple of 256.
        raise NotImplementedError("exercise `swiglu` is not done yet: fill in this TODO in exercises/llama.py")


# --- Attention with a key/value cache, and the model -------------------------------------


# %%
class Attention(nn.Module):
    """Causal multi-head self-attention with rotary embeddings and a key/value cache.

    wq, wk, wv, wo: Linear(dim, dim) without biases. cache_k and cache_v, (max_batch_size,
    max_seq_len, H, D), keep the (rotated) keys and the values of every position seen so far,
    so that a decoding step computes the projections of its new position only.
    """

    def __init__(self, args):
        super().__init__()
        self.n_heads = args.n_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        cache_shape = (args.max_batch_size, args.max_seq_len, self.n_heads, self.head_dim)
        # Working memory for generation, not weights: not in the state dict (persistent=False).
        self.register_buffer("cache_k", torch.zeros(cache_shape), persistent=False)
        self.register_buffer("cache_v", torch.zeros(cache_shape), persistent=False)

    def forward(self, x, start_pos, freqs_cis, mask):
        """x: (B, T, dim), the positions start_pos .. start_pos + T - 1; freqs_cis: (T, D/2) their
        rotations; mask: None or an additive (T, start_pos + T) tensor, -inf where a query must
        not see a key. Stores this call's keys and values in the cache at start_pos, then attends
        over the first start_pos + T cached positions. Returns (B, T, dim).
        """
        # TODO(transformer): A small LLaMA with a key/value cache whose output in chunks matches one full pass.
        raise NotImplementedError("exercise `transformer` is not done yet: fill in this TODO in exercises/llama.py")


# %%
class TransformerBlock(nn.Module):
    """One pre-norm block: attention and then the feed-forward network, each on the RMSNorm of
    its input and added back to it (the residual stream itself is never normalised)."""

    def __init__(self, layer_id, args):
        super().__init__()
        self.layer_id = layer_id
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, ffn_hidden_dim(args.dim, args.multiple_of, args.ffn_dim_multiplier))
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos, freqs_cis, mask):
        """x: (B, T, dim) -> (B, T, dim); the other arguments go to the attention."""
        # TODO(transformer): A small LLaMA with a key/value cache whose output in chunks matches one full pass.
        raise NotImplementedError("exercise `transformer` is not done yet: fill in this TODO in exercises/llama.py")


# %%
class Transformer(nn.Module):
    """The LLaMA decoder: token embeddings, n_layers blocks, a final RMSNorm, and an output
    head that is NOT tied to the embeddings. Nothing has a bias."""

    def __init__(self, params):
        super().__init__()
        self.params = params
        self.vocab_size = params.vocab_size
        self.n_layers = params.n_layers
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList([TransformerBlock(i, params) for i in range(params.n_layers)])
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        # Rotations of every position, per head (D = dim // n_heads); twice the context, as Meta does.
        freqs_cis = precompute_freqs_cis(params.dim // params.n_heads, params.max_seq_len * 2)
        self.register_buffer("freqs_cis", freqs_cis, persistent=False)

    @torch.inference_mode()
    def forward(self, tokens, start_pos=0):
        """tokens: (B, T) ids at the positions start_pos .. start_pos + T - 1. Returns float32
        logits (B, T, vocab_size). With start_pos > 0 the earlier positions come from the
        layers' caches, so the calls must go in order: start_pos 0 first, then onwards.
        """
        # TODO(transformer): A small LLaMA with a key/value cache whose output in chunks matches one full pass.
        raise NotImplementedError("exercise `transformer` is not done yet: fill in this TODO in exercises/llama.py")


# %%
def generate(model, prompt_tokens, max_new_tokens):
    """Greedy decoding with the key/value cache.

    prompt_tokens: (B, T0) token ids. The whole prompt goes through the model once (start_pos 0);
    after that each new token goes through alone (T = 1, at start_pos = its position), so one
    step costs the same however long the prefix is. Returns (B, T0 + max_new_tokens): the prompt
    followed by the most likely next token, max_new_tokens times.
    """
    # TODO(generate): Greedy decoding that feeds the prompt once and then one new token per step through the cache.
    raise NotImplementedError("exercise `generate` is not done yet: fill in this TODO in exercises/llama.py")


# --- Size ------------------------------------------------------------------------------------


# %%
def llama_parameter_count(args):
    """The exact number of parameters of Transformer(args), counted from the hyper-parameters.

    Embeddings and output head (untied: two vocab_size x dim matrices), per layer four dim x dim
    attention matrices, three SwiGLU matrices and two RMSNorm weights, and the final RMSNorm.
    """
    # TODO(parameter_count): Count a LLaMA's parameters exactly from its ModelArgs.
    raise NotImplementedError("exercise `parameter_count` is not done yet: fill in this TODO in exercises/llama.py")


# --- The pre-training data (Table 1) -------------------------------------------------------

# %%
# Table 1 of the paper: source -> (sampling proportion, epochs over the 1.4T training tokens).
LLAMA_DATA_MIX = {
    "CommonCrawl": (0.670, 1.10),
    "C4": (0.150, 1.06),
    "Github": (0.045, 0.64),
    "Wikipedia": (0.045, 2.45),
    "Books": (0.045, 2.23),
    "ArXiv": (0.025, 1.06),
    "StackExchange": (0.020, 1.03),
}


# %%
def tokens_seen(total_tokens, proportions):
    """How many of `total_tokens` training tokens are sampled from each source.

    proportions: dict source -> sampling proportion; they must be >= 0 and sum to 1 (within 1e-6),
    else ValueError. Returns dict source -> total_tokens * proportion (floats).
    """
    # TODO(data_mixture): Tokens sampled from each source of Table 1, and how many epochs that makes.
    raise NotImplementedError("exercise `data_mixture` is not done yet: fill in this TODO in exercises/llama.py")


# %%
def epochs(total_tokens, proportions, source_tokens):
    """How many passes over each source a run of `total_tokens` makes: the tokens sampled from
    a source divided by the tokens the source holds. More than 1 means it is seen repeatedly.

    source_tokens: dict source -> size of that source in tokens (same keys as proportions).
    Returns dict source -> epochs (floats).
    """
    # TODO(data_mixture): Tokens sampled from each source of Table 1, and how many epochs that makes.
    raise NotImplementedError("exercise `data_mixture` is not done yet: fill in this TODO in exercises/llama.py")
