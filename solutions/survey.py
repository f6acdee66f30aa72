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


def normalise(name):
    """The key a model name is looked up by: lower case, without spaces, hyphens, underscores
    and dots, so "GPT-3", "gpt3" and "Gpt 3" are the same model."""
    return "".join(c for c in name.lower() if c not in " -_.")


def _unknown(name):
    return ValueError(f"unknown model {name!r}: this exercise knows {', '.join(MODELS)}")


# --- Families and objectives -----------------------------------------------------------------


def model_family(name):
    """The architecture of a model in MODELS: ENCODER_ONLY, DECODER_ONLY or ENCODER_DECODER.

    Names are matched with normalise(), so case, spaces and hyphens do not matter.
    Raises ValueError for a model that is not in MODELS.
    """
    ### BEGIN SOLUTION model_families
    families = {
        "bert": ENCODER_ONLY, "roberta": ENCODER_ONLY, "albert": ENCODER_ONLY, "xlmr": ENCODER_ONLY,
        "electra": ENCODER_ONLY,
        "gpt": DECODER_ONLY, "gpt2": DECODER_ONLY, "gpt3": DECODER_ONLY, "opt": DECODER_ONLY,
        "bloom": DECODER_ONLY, "palm": DECODER_ONLY, "chinchilla": DECODER_ONLY, "llama": DECODER_ONLY,
        "t5": ENCODER_DECODER, "mt5": ENCODER_DECODER, "bart": ENCODER_DECODER, "mbart": ENCODER_DECODER,
    }
    key = normalise(name)
    if key not in families:
        raise _unknown(name)
    return families[key]
    ### END SOLUTION


def pretraining_objective(name):
    """The main pretraining objective of a model in MODELS: MASKED_LM, CAUSAL_LM, DENOISING or
    REPLACED_TOKEN_DETECTION.

    Names are matched with normalise(). Raises ValueError for a model that is not in MODELS.
    """
    ### BEGIN SOLUTION model_families
    objectives = {
        "bert": MASKED_LM, "roberta": MASKED_LM, "albert": MASKED_LM, "xlmr": MASKED_LM,
        "electra": REPLACED_TOKEN_DETECTION,  # its discriminator, the model that is kept
        "gpt": CAUSAL_LM, "gpt2": CAUSAL_LM, "gpt3": CAUSAL_LM, "opt": CAUSAL_LM, "bloom": CAUSAL_LM,
        "palm": CAUSAL_LM, "chinchilla": CAUSAL_LM, "llama": CAUSAL_LM,
        "t5": DENOISING, "mt5": DENOISING,  # span corruption
        "bart": DENOISING, "mbart": DENOISING,  # text infilling (and sentence permutation)
    }
    key = normalise(name)
    if key not in objectives:
        raise _unknown(name)
    return objectives[key]
    ### END SOLUTION


# --- What each objective trains on -----------------------------------------------------------


def causal_lm_labels(tokens):
    """Labels for next-token prediction (GPT and every decoder-only model).

    The model reads `tokens` (a list of ids) and, at every position i, predicts token i + 1:
    the label of a position is the token after it, and the last position, with nothing after
    it, gets IGNORE_INDEX.
    Returns a list as long as tokens; [5, 8, 2, 9] gives [8, 2, 9, -100].
    One sequence trains every position at once; the causal mask keeps position i from seeing the
    token it must predict.
    """
    ### BEGIN SOLUTION causal_lm_labels
    labels = [IGNORE_INDEX] * len(tokens)
    for i in range(len(tokens) - 1):
        labels[i] = tokens[i + 1]
    return labels
    ### END SOLUTION


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
    ### BEGIN SOLUTION masked_lm_labels
    for i in mask_positions:
        if not 0 <= i < len(tokens):
            raise ValueError(f"mask position {i} is outside a sequence of length {len(tokens)}")
    inputs = list(tokens)
    labels = [IGNORE_INDEX] * len(tokens)
    for i in mask_positions:
        inputs[i] = mask_id
        labels[i] = tokens[i]
    return inputs, labels
    ### END SOLUTION


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
    ### BEGIN SOLUTION span_corruption
    tokens = list(tokens)
    if len(sentinel_ids) < len(spans) + 1:
        raise ValueError(f"{len(spans)} spans need {len(spans) + 1} sentinels, got {len(sentinel_ids)}")
    previous_end = 0
    for start, end in spans:
        if not previous_end <= start < end <= len(tokens):
            raise ValueError(f"spans must be non-empty, in order, apart and inside the {len(tokens)} tokens; got {spans}")
        previous_end = end
    inputs, targets = [], []
    position = 0
    for sentinel, (start, end) in zip(sentinel_ids, spans):
        inputs += tokens[position:start] + [sentinel]  # the text before the span, then its sentinel
        targets += [sentinel] + tokens[start:end]  # the sentinel, then what it hides
        position = end
    inputs += tokens[position:]
    targets.append(sentinel_ids[len(spans)])  # a last sentinel closes the targets
    return inputs, targets
    ### END SOLUTION
