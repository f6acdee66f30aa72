# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
"""The Transformer of "Attention Is All You Need" (Vaswani et al., 2017), piece by piece.

Follows harvardnlp's *The Annotated Transformer*
(https://github.com/harvardnlp/annotated-transformer, ``the_annotated_transformer.py``):
the names and signatures are the same, so you can read the two side by side.

Shapes in comments: B = batch, T = sequence length, h = heads, d_k = d_model // h.
Masks hold True (or 1) where attention is allowed and False (or 0) where it is not.
"""

# %%
import copy
import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


# %%
def clones(module, N):
    """A ModuleList of N independent deep copies of `module`."""
    return nn.ModuleList([copy.deepcopy(module) for _ in range(N)])


# --- Attention -------------------------------------------------------------------------


# %%
def attention(query, key, value, mask=None, dropout=None):
    """Scaled dot-product attention, Eq. (1) of the paper: softmax(Q K^T / sqrt(d_k)) V.

    query: (..., T_q, d_k), key: (..., T_k, d_k), value: (..., T_k, d_v).
    mask: broadcastable to (..., T_q, T_k); where it is 0/False the score becomes -1e9
    before the softmax, so that position gets (almost) no weight.
    dropout: an optional module applied to the attention weights.
    Returns (output (..., T_q, d_v), p_attn (..., T_q, T_k)); each row of p_attn sums to 1.
    """
    # TODO(attention): Scaled dot-product attention, softmax(Q K^T / sqrt(d_k)) V, with an optional mask.
    raise NotImplementedError("exercise `attention` is not done yet: fill in this TODO in exercises/attention.py")


# %%
def subsequent_mask(size):
    """The decoder's causal mask: bool tensor (1, size, size), True where key j <= query i."""
    # TODO(subsequent_mask): The decoder's causal mask, True where position j may be seen from position i (j <= i).
    raise NotImplementedError("exercise `subsequent_mask` is not done yet: fill in this TODO in exercises/attention.py")


# %%
class MultiHeadedAttention(nn.Module):
    """h attention heads of width d_k = d_model // h, run in parallel (Section 3.2.2).

    `linears` holds four Linear(d_model, d_model): the query, key and value projections
    and the output projection. `attn` keeps the last attention weights, (B, h, T_q, T_k).
    """

    def __init__(self, h, d_model, dropout=0.1):
        super().__init__()
        assert d_model % h == 0, "d_model must be divisible by the number of heads"
        self.d_k = d_model // h
        self.h = h
        self.linears = clones(nn.Linear(d_model, d_model), 4)
        self.attn = None
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, query, key, value, mask=None):
        """query/key/value: (B, T, d_model); mask: (B, 1 or T_q, T_k). Returns (B, T_q, d_model)."""
        # TODO(multi_head_attention): Split d_model into h heads, attend in each, and join them again.
        raise NotImplementedError("exercise `multi_head_attention` is not done yet: fill in this TODO in exercises/attention.py")


# --- Position-wise pieces ----------------------------------------------------------------


# %%
class PositionwiseFeedForward(nn.Module):
    """The position-wise feed-forward network, the same two linears at every position (Section 3.3).

    The paper's Eq. (2) has no dropout inside: FFN(x) = max(0, x W_1 + b_1) W_2 + b_2. The
    Annotated Transformer's PositionwiseFeedForward, followed here, adds dropout on the hidden
    ReLU activations, w_2(dropout(relu(w_1(x)))); the two agree whenever dropout is off (eval mode).
    """

    def __init__(self, d_model, d_ff, dropout=0.1):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(self.w_1(x).relu()))


# %%
class Embeddings(nn.Module):
    """Token embeddings scaled by sqrt(d_model) (Section 3.4)."""

    def __init__(self, d_model, vocab):
        super().__init__()
        self.lut = nn.Embedding(vocab, d_model)
        self.d_model = d_model

    def forward(self, x):
        return self.lut(x) * math.sqrt(self.d_model)


# %%
class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding of Section 3.5, then dropout.

    PE(pos, 2i) = sin(pos / 10000^(2i / d_model)), PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model)).
    The table is a buffer `pe` of shape (1, max_len, d_model), computed once.
    """

    def __init__(self, d_model, dropout, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        # TODO(positional_encoding): The sinusoidal position table, sin on even columns and cos on odd ones, added to the embeddings.
        raise NotImplementedError("exercise `positional_encoding` is not done yet: fill in this TODO in exercises/attention.py")
        self.register_buffer("pe", pe)

    def forward(self, x):
        """x: (B, T, d_model) -> x + pe[:, :T], then dropout."""
        # TODO(positional_encoding): The sinusoidal position table, sin on even columns and cos on odd ones, added to the embeddings.
        raise NotImplementedError("exercise `positional_encoding` is not done yet: fill in this TODO in exercises/attention.py")


# --- Normalisation and residual connections ----------------------------------------------


# %%
class LayerNorm(nn.Module):
    """Layer normalisation as the annotated transformer writes it (Ba et al., 2016).

    Normalise over the last dimension with the mean and torch's unbiased standard deviation,
    eps added to the standard deviation, not to the variance (this differs slightly from
    nn.LayerNorm), then scale by the learned a_2 and shift by the learned b_2.
    """

    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        # TODO(layer_norm): Layer normalisation with learned gain a_2 and bias b_2, as the annotated transformer writes it.
        raise NotImplementedError("exercise `layer_norm` is not done yet: fill in this TODO in exercises/attention.py")


# %%
class SublayerConnection(nn.Module):
    """A residual connection around a sublayer, with the norm first (pre-norm):
    x + dropout(sublayer(norm(x))).

    This order is the Annotated Transformer's, not the paper's. Vaswani et al. normalise after
    the residual sum (post-norm): each sub-layer outputs LayerNorm(x + Sublayer(x)) (Section
    3.1), the dropout acting on Sublayer(x) before the sum (Section 5.4). harvardnlp's
    SublayerConnection puts the norm first "for code simplicity" (its docstring says so), which
    is why each stack here ends with a final LayerNorm. Normalising the sublayer's input
    instead of the sum is what the LLaMA paper (Section 2.2) calls pre-normalisation [GPT-3].
    """

    def __init__(self, size, dropout):
        super().__init__()
        self.norm = LayerNorm(size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, sublayer):
        """x: (B, T, size); sublayer: any callable from (B, T, size) to (B, T, size)."""
        # TODO(sublayer_connection): A residual connection around a sublayer with the norm applied first, x + dropout(sublayer(norm(x))).
        raise NotImplementedError("exercise `sublayer_connection` is not done yet: fill in this TODO in exercises/attention.py")


# --- Encoder and decoder -----------------------------------------------------------------


# %%
class EncoderLayer(nn.Module):
    """Self-attention, then the feed-forward network, each inside a SublayerConnection."""

    def __init__(self, size, self_attn, feed_forward, dropout):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.sublayer = clones(SublayerConnection(size, dropout), 2)
        self.size = size

    def forward(self, x, mask):
        """x: (B, T_src, size); mask: (B, 1, T_src)."""
        # TODO(encoder_decoder_layers): The encoder layer (self-attention, feed-forward) and decoder layer (masked self-attention, source attention, feed-forward).
        raise NotImplementedError("exercise `encoder_decoder_layers` is not done yet: fill in this TODO in exercises/attention.py")


# %%
class Encoder(nn.Module):
    """N encoder layers, then a final LayerNorm (needed because every sublayer is pre-norm)."""

    def __init__(self, layer, N):
        super().__init__()
        self.layers = clones(layer, N)
        self.norm = LayerNorm(layer.size)

    def forward(self, x, mask):
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


# %%
class DecoderLayer(nn.Module):
    """Masked self-attention, attention over the encoder's output ("memory"), feed-forward."""

    def __init__(self, size, self_attn, src_attn, feed_forward, dropout):
        super().__init__()
        self.size = size
        self.self_attn = self_attn
        self.src_attn = src_attn
        self.feed_forward = feed_forward
        self.sublayer = clones(SublayerConnection(size, dropout), 3)

    def forward(self, x, memory, src_mask, tgt_mask):
        """x: (B, T_tgt, size); memory: (B, T_src, size); src_mask: (B, 1, T_src);
        tgt_mask: (B, T_tgt, T_tgt)."""
        # TODO(encoder_decoder_layers): The encoder layer (self-attention, feed-forward) and decoder layer (masked self-attention, source attention, feed-forward).
        raise NotImplementedError("exercise `encoder_decoder_layers` is not done yet: fill in this TODO in exercises/attention.py")


# %%
class Decoder(nn.Module):
    """N decoder layers, then a final LayerNorm."""

    def __init__(self, layer, N):
        super().__init__()
        self.layers = clones(layer, N)
        self.norm = LayerNorm(layer.size)

    def forward(self, x, memory, src_mask, tgt_mask):
        for layer in self.layers:
            x = layer(x, memory, src_mask, tgt_mask)
        return self.norm(x)


# %%
class Generator(nn.Module):
    """The output head: log_softmax(Linear(d_model, vocab))."""

    def __init__(self, d_model, vocab):
        super().__init__()
        self.proj = nn.Linear(d_model, vocab)

    def forward(self, x):
        return self.proj(x).log_softmax(dim=-1)


# %%
class EncoderDecoder(nn.Module):
    """The whole encoder-decoder: embed and encode the source, embed and decode the target."""

    def __init__(self, encoder, decoder, src_embed, tgt_embed, generator):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.src_embed = src_embed
        self.tgt_embed = tgt_embed
        self.generator = generator

    def forward(self, src, tgt, src_mask, tgt_mask):
        return self.decode(self.encode(src, src_mask), src_mask, tgt, tgt_mask)

    def encode(self, src, src_mask):
        return self.encoder(self.src_embed(src), src_mask)

    def decode(self, memory, src_mask, tgt, tgt_mask):
        return self.decoder(self.tgt_embed(tgt), memory, src_mask, tgt_mask)


# %%
def make_model(src_vocab, tgt_vocab, N=6, d_model=512, d_ff=2048, h=8, dropout=0.1):
    """Build the full model from hyper-parameters; Glorot-uniform init for every matrix.

    As in the annotated transformer, the embeddings and the generator are not tied
    (the paper shares them; the code does not).
    """
    c = copy.deepcopy
    attn = MultiHeadedAttention(h, d_model, dropout)
    ff = PositionwiseFeedForward(d_model, d_ff, dropout)
    position = PositionalEncoding(d_model, dropout)
    model = EncoderDecoder(
        Encoder(EncoderLayer(d_model, c(attn), c(ff), dropout), N),
        Decoder(DecoderLayer(d_model, c(attn), c(attn), c(ff), dropout), N),
        nn.Sequential(Embeddings(d_model, src_vocab), c(position)),
        nn.Sequential(Embeddings(d_model, tgt_vocab), c(position)),
        Generator(d_model, tgt_vocab),
    )
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    return model


# --- Training ----------------------------------------------------------------------------


# %%
def rate(step, model_size, factor, warmup):
    """The learning-rate schedule of Section 5.3 (linear warm-up, then 1/sqrt(step) decay):
    factor * model_size^-0.5 * min(step^-0.5, step * warmup^-1.5), with step 0 read as 1
    (LambdaLR calls it with step 0, and 0^-0.5 is infinite).
    """
    # TODO(rate): The learning-rate schedule of the paper, linear warm-up then decay with the inverse square root of the step.
    raise NotImplementedError("exercise `rate` is not done yet: fill in this TODO in exercises/attention.py")


# %%
class LabelSmoothing(nn.Module):
    """Label smoothing (Section 5.4) as a KL divergence to a smoothed target distribution.

    x: (n, size) log-probabilities; target: (n,) class indices. The target distribution puts
    1 - smoothing on the true class and smoothing / (size - 2) on every other class except the
    padding class, which gets 0; rows whose target is the padding index are all 0. The last
    target distribution is kept in `true_dist`. Returns KLDivLoss(reduction="sum").
    """

    def __init__(self, size, padding_idx, smoothing=0.0):
        super().__init__()
        self.criterion = nn.KLDivLoss(reduction="sum")
        self.padding_idx = padding_idx
        self.confidence = 1.0 - smoothing
        self.smoothing = smoothing
        self.size = size
        self.true_dist = None

    def forward(self, x, target):
        # TODO(label_smoothing): The smoothed target distribution and the KL-divergence loss against it.
        raise NotImplementedError("exercise `label_smoothing` is not done yet: fill in this TODO in exercises/attention.py")


# %%
class Batch:
    """A batch of source and target sequences with their masks (targets shifted by one)."""

    def __init__(self, src, tgt=None, pad=2):
        self.src = src
        self.src_mask = (src != pad).unsqueeze(-2)  # (B, 1, T_src)
        if tgt is not None:
            self.tgt = tgt[:, :-1]  # decoder input
            self.tgt_y = tgt[:, 1:]  # what it must predict
            self.tgt_mask = self.make_std_mask(self.tgt, pad)
            self.ntokens = (self.tgt_y != pad).sum()

    @staticmethod
    def make_std_mask(tgt, pad):
        """Hide padding and future words: (B, T, T)."""
        tgt_mask = (tgt != pad).unsqueeze(-2)
        return tgt_mask & subsequent_mask(tgt.size(-1)).type_as(tgt_mask)


# %%
def greedy_decode(model, src, src_mask, max_len, start_symbol):
    """Decode one sequence greedily: encode once, then repeatedly append the most likely
    next token. src: (1, T_src). Returns (1, max_len) token ids starting with start_symbol.
    """
    # TODO(greedy_decode): Decode a sequence one token at a time, always taking the most likely next token.
    raise NotImplementedError("exercise `greedy_decode` is not done yet: fill in this TODO in exercises/attention.py")


# --- The copy task -------------------------------------------------------------------------

# %%
# A model small enough to learn the copy task on one CPU thread in about a second.
COPY_TASK = dict(
    V=11,  # vocabulary: 0 is padding, 1 is the start symbol; data_gen draws the "words" from 1..10
    seq_len=10,
    batch_size=32,
    N=1,
    d_model=32,
    d_ff=64,
    h=4,
    dropout=0.0,  # the task is easy; dropout only slows learning down
    warmup=40,
    factor=1.0,
)


# %%
def data_gen(V, batch_size, nbatches, seq_len=10, generator=None):
    """Random copy-task batches: tgt == src, the first token is the start symbol 1, pad is 0."""
    for _ in range(nbatches):
        data = torch.randint(1, V, size=(batch_size, seq_len), generator=generator)
        data[:, 0] = 1
        yield Batch(data, data.clone(), pad=0)


# %%
def train_copy_model(steps=200, seed=0):
    """Train a small Transformer (sizes and dropout in COPY_TASK) to copy its input; return it
    in eval mode.

    Use make_model, LabelSmoothing (padding index 0, no smoothing), Adam with lr 1.0,
    betas (0.9, 0.98), eps 1e-9, and your `rate` schedule through LambdaLR. The loss of a batch
    is the criterion over all target positions divided by batch.ntokens.
    """
    cfg = COPY_TASK
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    # TODO(copy_task): Train a small Transformer until greedy decoding copies its input.
    raise NotImplementedError("exercise `copy_task` is not done yet: fill in this TODO in exercises/attention.py")
    return model.eval()
