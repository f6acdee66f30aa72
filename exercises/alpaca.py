# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
"""Instruction data as Stanford Alpaca builds and uses it.

Alpaca's data is single-turn instruction data, not chat: each of its 52K records is one
instruction, an optional input and one output, with no conversation before it. The repository's
README ("Data Release", "Data Generation Process") says `text-davinci-003` generated both the
instructions and the outputs, through the Self-Instruct pipeline with Alpaca's modifications
(a new prompt, 20 instructions per request, one instance per instruction).

Follows tatsu-lab/stanford_alpaca (https://github.com/tatsu-lab/stanford_alpaca): the two prompt
templates and the label masking of `train.py` (PROMPT_DICT, preprocess), and the near-duplicate
filter of `generate_instruction.py`, which implements Self-Instruct (Wang et al., 2022,
https://arxiv.org/abs/2212.10560) with ROUGE-L (Lin, 2004) as google-research's `rouge_score`
computes it.

A record is a dict {"instruction": str, "input": str, "output": str}; "input" may be "" (about
60% of Alpaca's 52,002 records have none). The model sees the prompt and learns to write the
output followed by the end-of-sequence token.
"""

# %%
import re

import torch

IGNORE_INDEX = -100  # the label cross_entropy skips


# %%
class CharTokenizer:
    """A tiny deterministic tokenizer for this course: one token per character, no downloads.

    Ids 0, 1 and 2 are special: padding, end of sequence, unknown. Then come "\\n" (id 3) and
    the printable ASCII characters " " to "~" in order (ids 4 to 98); any other character is
    unknown. encode(text) -> list of ids (no end-of-sequence added); decode(ids) -> text with
    the special ids left out.
    """

    pad_id, eos_id, unk_id = 0, 1, 2

    def __init__(self):
        chars = ["\n"] + [chr(c) for c in range(32, 127)]
        self.stoi = {ch: i + 3 for i, ch in enumerate(chars)}
        self.itos = {i: ch for ch, i in self.stoi.items()}
        self.vocab_size = len(chars) + 3

    def encode(self, text):
        return [self.stoi.get(ch, self.unk_id) for ch in text]

    def decode(self, ids):
        return "".join(self.itos.get(int(i), "") for i in ids)


# --- Prompts and labels ------------------------------------------------------------------------


# %%
def format_prompt(record):
    """The Alpaca prompt for a record, character for character as Alpaca's train.py writes it.

    Records whose "input" is a non-empty string use the template "with input"; the others (no
    "input", or "") use the template "without input". Both open with the same preamble sentence,
    then "### Instruction:", the instruction, ("### Input:", the input,) and end with
    "### Response:" (no newline after it: the output follows directly).
    """
    # TODO(format_prompt): The two exact Alpaca prompt templates, with and without an input.
    raise NotImplementedError("exercise `format_prompt` is not done yet: fill in this TODO in exercises/alpaca.py")


# %%
def tokenize_example(record, tokenizer, max_len):
    """Token ids and labels for one record, ready for the next-token loss.

    The sequence is the tokens of format_prompt(record), then the tokens of record["output"],
    then tokenizer.eos_id: the model must learn where to stop. labels copy the ids of the output
    and of the end-of-sequence token and hold IGNORE_INDEX (-100) on every prompt token.
    Longer than max_len: keep the first max_len tokens (the output's end, and the
    end-of-sequence token, are cut, as in Alpaca). But if the prompt alone leaves no room for a
    single output token, raise a ValueError that says so: never drop the whole response
    silently (every label would be -100 and the example would teach nothing).
    Shorter: right-pad input_ids with tokenizer.pad_id and labels with -100.
    Returns (input_ids, labels): long tensors of shape (max_len,).
    """
    # TODO(tokenize_example): Input ids and labels with the prompt and padding ignored, and safe truncation.
    raise NotImplementedError("exercise `tokenize_example` is not done yet: fill in this TODO in exercises/alpaca.py")


# --- Self-Instruct's filter of near-duplicate instructions --------------------------------------


# %%
def rouge_tokens(text):
    """The tokens ROUGE compares: lower-case the text, then keep the runs of ASCII letters and
    digits (everything else separates tokens), as rouge_score's default tokenizer does without
    stemming. "Write a poem!" -> ["write", "a", "poem"]."""
    # TODO(rouge_filter): ROUGE-L and Self-Instruct's filter of near-duplicate instructions.
    raise NotImplementedError("exercise `rouge_filter` is not done yet: fill in this TODO in exercises/alpaca.py")


# %%
def lcs_length(a, b):
    """The length of the longest common subsequence of two token lists (dynamic programming)."""
    # TODO(rouge_filter): ROUGE-L and Self-Instruct's filter of near-duplicate instructions.
    raise NotImplementedError("exercise `rouge_filter` is not done yet: fill in this TODO in exercises/alpaca.py")


# %%
def rouge_l(candidate, reference):
    """ROUGE-L between two texts: the F-measure of the longest common subsequence of their tokens.

    With m candidate tokens, n reference tokens and an LCS of length l: precision P = l / m,
    recall R = l / n, F = 2 P R / (P + R). 0.0 when either text has no tokens or l = 0.
    """
    # TODO(rouge_filter): ROUGE-L and Self-Instruct's filter of near-duplicate instructions.
    raise NotImplementedError("exercise `rouge_filter` is not done yet: fill in this TODO in exercises/alpaca.py")


# %%
def filter_instructions(candidates, pool, threshold=0.7):
    """Self-Instruct's filter: keep a candidate instruction only if it is new enough.

    Go through the candidates in order; keep one only if its rouge_l with every instruction in
    `pool` and with every candidate kept so far is below `threshold` (the Self-Instruct paper:
    "less than 0.7"; Alpaca's code drops only scores above 0.7, so the two differ at exactly
    0.7). Returns the kept candidates, in their order.
    """
    # TODO(rouge_filter): ROUGE-L and Self-Instruct's filter of near-duplicate instructions.
    raise NotImplementedError("exercise `rouge_filter` is not done yet: fill in this TODO in exercises/alpaca.py")


# --- Checking a data file before training on it ------------------------------------------------

# %%
FIELDS = ("instruction", "input", "output")


# %%
def validate_records(records):
    """The problems of a list of records, as messages; [] when there are none. Never raises.

    `records` is what json.load gave back. If it is not a list, the only problem is
    "records: expected a list of records, got <type name>". Otherwise, for the record at index i:
      "record i: expected a dict, got <type name>"               (and nothing else about it)
      "record i: missing field '<field>'"                          for each of FIELDS it lacks
      "record i: field '<field>' must be a string, got <type name>"
      "record i: empty field '<field>'"                            instruction or output that is
                                                                   "" or only whitespace ("input" may be empty)
      "record i: duplicate of record j"                            its instruction and input, both
          strings, equal (after stripping surrounding whitespace) those of the earlier record j,
          the first with that pair.
    Other fields are allowed. <type name> is type(value).__name__, e.g. NoneType or int.
    """
    # TODO(validate_records): Clear problems, not crashes, for broken instruction records.
    raise NotImplementedError("exercise `validate_records` is not done yet: fill in this TODO in exercises/alpaca.py")
