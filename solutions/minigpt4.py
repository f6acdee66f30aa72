"""MiniGPT-4 (Zhu et al., 2023): a frozen vision encoder meets a frozen language model.

Follows Vision-CAIR/MiniGPT-4 (https://github.com/Vision-CAIR/MiniGPT-4,
``minigpt4/models/mini_gpt4.py``, first release): the names ``encode_img``, ``llama_proj``,
``prompt_wrap`` (here ``prompt_parts`` + ``splice_image_tokens``) and the layout of the inputs
are the same, so you can read the two side by side.

In the paper a frozen EVA ViT-g and a frozen BLIP-2 Q-Former turn an image into 32 query
tokens of width 768. One linear layer, ``llama_proj = nn.Linear(768, llm_hidden)``, maps them
into the embedding space of a frozen Vicuna, and that layer is the only thing trained. The
projected tokens replace the ``<ImageHere>`` placeholder of the prompt

    ###Human: <Img><ImageHere></Img> {instruction} ###Assistant: 

and the model learns to continue with the answer; only the answer's tokens are scored.

Here everything is tiny so it runs on a CPU in milliseconds: ``FrozenImageEncoder`` stands in
for EVA ViT-g + Q-Former (still 32 tokens of width 768), ``TinyLLM`` for Vicuna, and
``CharTokenizer`` (one id per character, shipped with the course) for LLaMA's tokenizer.

Shapes in comments: B = batch, T = sequence length, D = the LLM's hidden size,
Q = 32 query tokens, W = 768 (the Q-Former's width).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_QUERY_TOKENS = 32  # the Q-Former's learned queries: one image becomes 32 tokens
QFORMER_WIDTH = 768  # the width of each of those tokens
IMAGE_PLACEHOLDER = "<ImageHere>"
PROMPT_TEMPLATE = "###Human: <Img><ImageHere></Img> {instruction} ###Assistant: "
END_SYM = "###"  # appended to every answer in the second (instruction) stage
IGNORE_INDEX = -100  # labels with this value are not scored by cross_entropy


# --- A tiny deterministic tokenizer ---------------------------------------------------------


class CharTokenizer:
    """One id per printable ASCII character: no vocabulary file, no download.

    Ids 0-3 are special (<pad>, <s>, </s>, <unk>); the characters ' ' to '~' are 4 to 98.
    """

    pad_token_id, bos_token_id, eos_token_id, unk_token_id = 0, 1, 2, 3
    vocab_size = 99

    def encode(self, text):
        """A list of ids, one per character (no <s> added)."""
        return [ord(c) - 28 if " " <= c <= "~" else self.unk_token_id for c in text]

    def decode(self, ids):
        return "".join(chr(i + 28) for i in ids if i >= 4)

    def batch_encode(self, texts):
        """Right-padded ids (B, T) and attention mask (B, T), T = the longest text."""
        encoded = [self.encode(t) for t in texts]
        T = max(len(e) for e in encoded)
        ids = torch.full((len(texts), T), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(texts), T, dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
            mask[i, : len(e)] = 1
        return ids, mask


# --- Tiny stand-ins for the frozen models -----------------------------------------------------


class FrozenImageEncoder(nn.Module):
    """Stands in for EVA ViT-g + Q-Former: an image (B, 3, H, W) -> 32 tokens (B, 32, 768).

    Patches are embedded to width 768, then 32 learned queries attend over them once.
    """

    def __init__(self, image_size=16, patch_size=4, width=QFORMER_WIDTH, num_query_tokens=NUM_QUERY_TOKENS):
        super().__init__()
        assert image_size % patch_size == 0
        self.patch_size = patch_size
        self.patch_embed = nn.Linear(3 * patch_size * patch_size, width)
        self.ln_vision = nn.LayerNorm(width)
        self.query_tokens = nn.Parameter(0.02 * torch.randn(1, num_query_tokens, width))

    def forward(self, image):
        B, p = image.size(0), self.patch_size
        patches = image.unfold(2, p, p).unfold(3, p, p)  # (B, 3, H/p, W/p, p, p)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, 3 * p * p)  # (B, N, 3 p p)
        feats = self.ln_vision(self.patch_embed(patches))  # (B, N, W)
        queries = self.query_tokens.expand(B, -1, -1)  # (B, Q, W)
        weights = (queries @ feats.transpose(1, 2) / math.sqrt(feats.size(-1))).softmax(-1)  # (B, Q, N)
        return weights @ feats  # (B, Q, W)


class TinyLLM(nn.Module):
    """Stands in for Vicuna: token embeddings, one pre-norm causal self-attention block with an
    MLP, and an output head. Like a Hugging Face causal LM it accepts `inputs_embeds`, so image
    tokens can be fed in between word embeddings. Padding is expected on the right.
    """

    def __init__(self, vocab_size, dim=32):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, inputs_embeds, attention_mask=None):
        """inputs_embeds: (B, T, D); attention_mask: (B, T), 1 for real positions. -> logits (B, T, V)."""
        x = inputs_embeds
        T = x.size(1)
        allowed = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): causal
        if attention_mask is not None:
            allowed = allowed & attention_mask.bool()[:, None, :]  # (B, T, T): no padded keys
            allowed[..., 0] = True  # position 0 is always real (padding is on the right)
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)  # 3 x (B, T, D)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v, attn_mask=allowed))
        x = x + self.mlp(self.norm2(x))
        return self.lm_head(x)  # (B, T, V)


def causal_lm_loss(logits, labels):
    """Next-token cross-entropy as Hugging Face causal LMs compute it from `labels`:
    position t predicts labels[t + 1]; labels equal to -100 are not scored."""
    V = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


# --- Freezing ------------------------------------------------------------------------------


def freeze(module):
    """Freeze `module` in place and return it: no parameter requires a gradient, and the
    module is put in eval mode. MiniGPT-4's first release does both to the ViT and the Q-Former;
    Vicuna only gets requires_grad = False."""
    ### BEGIN SOLUTION freeze
    for param in module.parameters():
        param.requires_grad = False
    return module.eval()
    ### END SOLUTION


def trainable_parameter_count(model):
    """The number of scalar parameters that will be trained (those with requires_grad)."""
    ### BEGIN SOLUTION freeze
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
    ### END SOLUTION


# --- The prompt and the image tokens -------------------------------------------------------------


def prompt_parts(instruction):
    """Fill PROMPT_TEMPLATE with the instruction and split it at the <ImageHere> placeholder.

    Returns (before, after): the text before the placeholder and the text after it, e.g.
    ("###Human: <Img>", "</Img> Describe it. ###Assistant: ").
    """
    ### BEGIN SOLUTION splice_image_tokens
    if IMAGE_PLACEHOLDER in instruction:
        raise ValueError(f"the instruction must not contain {IMAGE_PLACEHOLDER}: {instruction!r}")
    before, after = PROMPT_TEMPLATE.format(instruction=instruction).split(IMAGE_PLACEHOLDER)
    return before, after
    ### END SOLUTION


def splice_image_tokens(input_embeds_before, image_tokens, input_embeds_after):
    """Put the image tokens where the placeholder was: [before, image, after] along time.

    input_embeds_before: (B or 1, T_b, D), image_tokens: (B, Q, D), input_embeds_after:
    (B or 1, T_a, D). A prompt embedded once (batch 1) is shared by the whole batch.
    Returns (B, T_b + Q + T_a, D).
    """
    ### BEGIN SOLUTION splice_image_tokens
    B = image_tokens.size(0)
    before = input_embeds_before.expand(B, -1, -1)  # (B, T_b, D)
    after = input_embeds_after.expand(B, -1, -1)  # (B, T_a, D)
    return torch.cat([before, image_tokens, after], dim=1)
    ### END SOLUTION


def build_labels(answer_ids, context_len, pad_id):
    """Labels for [context, answer]: -100 on the `context_len` positions before the answer
    (<s>, the prompt and the image tokens) and on the answer's padding; the answer's ids
    elsewhere. answer_ids: (B, T_ans) right-padded with pad_id. Returns (B, context_len + T_ans).
    """
    ### BEGIN SOLUTION splice_image_tokens
    targets = answer_ids.masked_fill(answer_ids == pad_id, IGNORE_INDEX)  # (B, T_ans)
    ignored = torch.full((answer_ids.size(0), context_len), IGNORE_INDEX, dtype=answer_ids.dtype)
    return torch.cat([ignored, targets], dim=1)  # (B, context_len + T_ans)
    ### END SOLUTION


# --- The model ---------------------------------------------------------------------------


class MiniGPT4(nn.Module):
    """A frozen image encoder, a trained projection, a frozen language model.

    Attributes: `tokenizer` (CharTokenizer), `visual_encoder` (FrozenImageEncoder, frozen),
    `llama_model` (TinyLLM of width llm_dim, frozen) and `llama_proj` (Linear(768, llm_dim),
    the only trained layer).
    """

    def __init__(self, llm_dim=32, image_size=16, patch_size=4):
        super().__init__()
        self.tokenizer = CharTokenizer()
        ### BEGIN SOLUTION freeze
        self.visual_encoder = freeze(FrozenImageEncoder(image_size, patch_size))
        self.llama_model = freeze(TinyLLM(self.tokenizer.vocab_size, llm_dim))
        self.llama_proj = nn.Linear(QFORMER_WIDTH, llm_dim)  # trained: 768 * llm_dim + llm_dim parameters
        ### END SOLUTION

    def train(self, mode=True):
        """Only the projector switches mode; the frozen parts always stay in eval mode."""
        super().train(mode)
        self.visual_encoder.eval()
        self.llama_model.eval()
        return self

    def embed(self, ids):
        """Token ids (..., T) -> the frozen LLM's word embeddings (..., T, D)."""
        return self.llama_model.embed_tokens(ids)

    def encode_img(self, image):
        """image: (B, 3, H, W) -> image tokens in the LLM's embedding space, (B, 32, D)."""
        ### BEGIN SOLUTION prepare_inputs
        with torch.no_grad():
            query_output = self.visual_encoder(image)  # (B, Q, W): frozen, no graph needed
        return self.llama_proj(query_output)  # (B, Q, D)
        ### END SOLUTION

    def prepare_inputs(self, image, instruction, answers):
        """The LLM's inputs for a batch of images sharing one instruction.

        Layout along time: <s>, the prompt before <ImageHere>, the 32 image tokens, the prompt
        after it, then each answer followed by END_SYM (right-padded to the longest).
        Returns (inputs_embeds (B, T, D), attention_mask (B, T) with 0 on padding,
        labels (B, T) with -100 everywhere except on the answers' real tokens).
        """
        ### BEGIN SOLUTION prepare_inputs
        tok = self.tokenizer
        image_tokens = self.encode_img(image)  # (B, Q, D)
        B = image_tokens.size(0)
        before, after = prompt_parts(instruction)
        before_embeds = self.embed(torch.tensor([tok.encode(before)]))  # (1, T_b, D)
        after_embeds = self.embed(torch.tensor([tok.encode(after)]))  # (1, T_a, D)
        wrapped = splice_image_tokens(before_embeds, image_tokens, after_embeds)  # (B, T_b + Q + T_a, D)

        answer_ids, answer_mask = tok.batch_encode([a + END_SYM for a in answers])  # (B, T_ans)
        bos_embeds = self.embed(torch.full((B, 1), tok.bos_token_id))  # (B, 1, D)
        inputs_embeds = torch.cat([bos_embeds, wrapped, self.embed(answer_ids)], dim=1)
        context_len = 1 + wrapped.size(1)  # <s> + prompt + image tokens
        attention_mask = torch.cat([torch.ones(B, context_len, dtype=torch.long), answer_mask], dim=1)
        labels = build_labels(answer_ids, context_len, tok.pad_token_id)
        return inputs_embeds, attention_mask, labels
        ### END SOLUTION

    def forward(self, image, instruction, answers):
        """The language-modelling loss of the answers given the image and the instruction."""
        inputs_embeds, attention_mask, labels = self.prepare_inputs(image, instruction, answers)
        logits = self.llama_model(inputs_embeds, attention_mask)  # (B, T, V)
        return causal_lm_loss(logits, labels)


# --- Training ------------------------------------------------------------------------------


def configure_optimizer(model, lr=1e-4, weight_decay=0.05):
    """AdamW over the parameters that require gradients only (MiniGPT-4's first stage uses
    lr 1e-4 and weight decay 0.05)."""
    ### BEGIN SOLUTION train_step
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    ### END SOLUTION


def train_step(model, optimizer, image, instruction, answers):
    """One optimisation step on one batch; returns the loss before the step as a float."""
    ### BEGIN SOLUTION train_step
    model.train()
    optimizer.zero_grad()
    loss = model(image, instruction, answers)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION
