# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
"""Families of pretrained foundation models and what each family learns from.

After "A Comprehensive Survey on Pretrained Foundation Models: A History from BERT to ChatGPT"
(Zhou et al., 2023, https://arxiv.org/abs/2302.09419). The survey's NLP section (Section 3,
"PFMs for Natural Language Processing") is organised by method, not by architecture family.
It starts from word representations, with three kinds of language model: autoregressive (GPT:
the next word from the words before it), contextual (BERT: a word from the words on both
sides) and permuted (XLNet: autoregressive prediction in a random order of the positions, so that a
word gets context from both sides without a [MASK] token; MPNet combines this permuted
language modelling with BERT's masked language modelling). Then come
model architecture design, masking design, boosting methods and instruction alignment (RLHF,
chain of thought).

This exercise uses a simpler picture, three architecture families, each with the objective it
usually comes with: encoders that see the whole sentence and fill in masked words, decoders
that predict the next word from the words before it, and encoder-decoders that read a
corrupted text and write back what is missing. It is a simplification: permuted language
models such as XLNet fit none of the three families cleanly, and MODELS leaves them out.

The classification follows each model's own paper: BERT (Devlin et al., 2019), RoBERTa (Liu et
al., 2019), ALBERT (Lan et al., 2020), XLM-R (Conneau et al., 2020), ELECTRA (Clark et al., 2020);
GPT (Radford et al., 2018), GPT-2 (2019), GPT-3 (Brown et al., 2020), OPT (Zhang et al., 2022),
BLOOM (BigScience, 2022), PaLM (Chowdhery et al., 2022), Chinchilla (Hoffmann et al., 2022), LLaMA
(Touvron et al., 2023); T5 (Raffel et al., 2020), mT5 (Xue et al., 2021), BART (Lewis et al.,
2020), mBART (Liu et al., 2020).

The last three functions show, on a list of token ids, what each objective trains on: the
inputs the model reads and the labels its loss compares with. Labels use IGNORE_INDEX (-100,
the index torch.nn.functional.cross_entropy skips) where there is nothing to predict.
"""

# %%
# Architectures
ENCODER_ONLY = "encoder-only"  # a Transformer encoder: every token attends to every token
DECODER_ONLY = "decoder-only"  # a Transformer decoder with a causal mask: a token sees only the past
ENCODER_DECODER = "encoder-decoder"  # an encoder reads the input; a decoder writes the output
FAMILIES = (ENCODER_ONLY, DECODER_ONLY, ENCODER_DECODER)

# Pretraining objectives
MASKED_LM = "masked-lm"  # predict hidden tokens from both sides of them
CAUSAL_LM = "causal-lm"  # predict every next token from the tokens before it
DENOISING = "denoising"  # read a corrupted text, write back what was corrupted (sequence to sequence)
REPLACED_TOKEN_DETECTION = "replaced-token-detection"  # tell, for every token, whether it was swapped
OBJECTIVES = (MASKED_LM, CAUSAL_LM, DENOISING, REPLACED_TOKEN_DETECTION)

IGNORE_INDEX = -100

# The models to classify.
MODELS = ("BERT", "RoBERTa", "ALBERT", "XLM-R", "ELECTRA",
          "GPT", "GPT-2", "GPT-3", "OPT", "BLOOM", "PaLM", "Chinchilla", "LLaMA",
          "T5", "mT5", "BART", "mBART")


# %%
def normalise(name):
    """The key a model name is looked up by: lower case, without spaces, hyphens, underscores
    and dots, so "GPT-3", "gpt3" and "Gpt 3" are the same model."""
    return "".join(c for c in name.lower() if c not in " -_.")


# %%
def _unknown(name):
    return ValueError(f"unknown model {name!r}: this exercise knows {', '.join(MODELS)}")


# --- Families and objectives -----------------------------------------------------------------


# %%
def model_family(name):
    """The architecture of a model in MODELS: ENCODER_ONLY, DECODER_ONLY or ENCODER_DECODER.

    Names are matched with normalise(), so case, spaces and hyphens do not matter.
    Raises ValueError for a model that is not in MODELS.
    """
    # TODO(model_families): Place well-known models in their family (encoder, decoder, encoder-decoder) with their training objective.
    raise NotImplementedError("exercise `model_families` is not done yet: fill in this TODO in exercises/survey.py")


# %%
def pretraining_objective(name):
    """The main pretraining objective of a model in MODELS: MASKED_LM, CAUSAL_LM, DENOISING or
    REPLACED_TOKEN_DETECTION.

    Names are matched with normalise(). Raises ValueError for a model that is not in MODELS.
    """
    # TODO(model_families): Place well-known models in their family (encoder, decoder, encoder-decoder) with their training objective.
    raise NotImplementedError("exercise `model_families` is not done yet: fill in this TODO in exercises/survey.py")


# --- What each objective trains on -----------------------------------------------------------


# %%
def causal_lm_labels(tokens):
    """Labels for next-token prediction (GPT and every decoder-only model).

    The model reads `tokens` (a list of ids) and, at every position i, predicts token i + 1:
    the label of a position is the token after it, and the last position, with nothing after
    it, gets IGNORE_INDEX.
    Returns a list as long as tokens; [5, 8, 2, 9] gives [8, 2, 9, -100].
    One sequence trains every position at once; the causal mask keeps position i from seeing the
    token it must predict.
    """
    # TODO(causal_lm_labels): The labels of next-token prediction, one per position, with -100 where nothing follows.
    raise NotImplementedError("exercise `causal_lm_labels` is not done yet: fill in this TODO in exercises/survey.py")


# %%
def masked_lm_labels(tokens, mask_positions, mask_id):
    """Inputs and labels for masked language modelling (BERT).

    Each position in mask_positions is hidden: inputs has mask_id there, and labels has the
    original token there, for the model to recover from both sides. Every other position keeps
    its token in inputs and gets IGNORE_INDEX in labels: no loss there.
    (BERT chooses 15% of the positions and, of those, replaces 80% by [MASK], 10% by a random
    token and leaves 10% as they are; here every chosen position becomes mask_id.)
    Returns (inputs, labels), two new lists as long as tokens; `tokens` itself is not changed.
    Raises ValueError for a position outside the sequence.
    """
    # TODO(masked_lm_labels): BERT's inputs with the chosen positions masked, and labels only at those positions.
    raise NotImplementedError("exercise `masked_lm_labels` is not done yet: fill in this TODO in exercises/survey.py")


# %%
def span_corruption(tokens, spans, sentinel_ids):
    """Inputs and targets for T5's span corruption (Raffel et al., 2020, Figure 2).

    spans: (start, end) pairs, end excluded, in order and not overlapping. In the inputs each
    span is replaced by one sentinel token, sentinel_ids[0] for the first span, sentinel_ids[1]
    for the second, and so on. The targets list, for each span in order, its sentinel followed
    by the tokens it hid, and end with the next unused sentinel, sentinel_ids[len(spans)].
    With words for tokens, "Thank you for inviting me to your party last week ." and spans
    (2, 4), (8, 9) give the inputs "Thank you <X> me to your party <Y> week ." and the targets
    "<X> for inviting <Y> last <Z>".
    Returns (inputs, targets), two lists. Raises ValueError for empty, overlapping, unordered or
    out-of-range spans, or fewer than len(spans) + 1 sentinels.
    """
    # TODO(span_corruption): T5's span corruption, each span replaced by its own sentinel in the inputs and spelled out after it in the targets.
    raise NotImplementedError("exercise `span_corruption` is not done yet: fill in this TODO in exercises/survey.py")
