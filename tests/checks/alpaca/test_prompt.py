"""Checks for Alpaca's prompt templates and the tokenisation of a record.

The visible checks hold the two templates to the character through salted SHA-256 hashes (so
this file does not hand out the answer) and explain a mismatch section by section and word by
word. Tokenisation is checked against a character tokenizer rewritten here from its
specification. Hidden checks draw records from the run's seed and compare with the reference.
"""
import hashlib

import pytest
import torch

from grader.checking import expect_shape, fail, outcome

IGNORE = -100
PAD, EOS, UNK = 0, 1, 2

_SALT = "1336fed062c7fba4"
_RECORDS = {
    "with_input": {"instruction": "Translate the sentence to French.", "input": "Good morning, my friend.",
                   "output": "Bonjour, mon ami."},
    "without_input": {"instruction": "Name three primary colors.", "input": "", "output": "Red, yellow and blue."},
}
# sha256("salt:text") of the whole prompt and of its opening paragraph; the first 16 hex digits
# of the hash of every word of the opening paragraph.
_PROMPT_HASHES = {
    "with_input": {
        "full": "f70c75fe8ecfe9aa79cd12109e84100a29f1ed4b4ee2e2fca89be77a0d18d771",
        "preamble": "74d2f37fd7eb6f2052ff1c7b0958bb820c47e3f9318a19ba06284056ca9fef30",
        "words": ["25aa1a4ea6c2efe9", "81ee6ac8ed7d4268", "3c9b54aa0209241b", "026e0a164817afc1", "1bca656474497272",
                  "b0b4062b9d20ece8", "7b0092a97daef70c", "dfbe1e1d4e3367a3", "97058d98271cea5d", "b6c75e6fbc015ca6",
                  "3c9b54aa0209241b", "99178798e806522a", "1bca656474497272", "a8f1103d88bfa0f5", "cee237aaa2612ea0",
                  "5d455d5bf1dd1f04", "2836bcca792b6a89", "7b0092a97daef70c", "1066a81e5cd1a8bc", "1bca656474497272",
                  "67c8df35e97bbf90", "dc3395d43265fbf9", "f2356f0ae8f52ca2", "4521ecdffe2b9c5c"],
    },
    "without_input": {
        "full": "651e9c77bff54cbdfad9443b5a6e5a3582b2add7be374e66719ce2923cb6d9cf",
        "preamble": "6f2354bbe0d563ebfe78e90563afcc0640ba6da4dc13be5b56c5e29738f62337",
        "words": ["25aa1a4ea6c2efe9", "81ee6ac8ed7d4268", "3c9b54aa0209241b", "026e0a164817afc1", "1bca656474497272",
                  "b0b4062b9d20ece8", "7b0092a97daef70c", "d3b8a0a7729a8c42", "2836bcca792b6a89", "7b0092a97daef70c",
                  "1066a81e5cd1a8bc", "1bca656474497272", "67c8df35e97bbf90", "dc3395d43265fbf9", "f2356f0ae8f52ca2",
                  "4521ecdffe2b9c5c"],
    },
}


def _hash(text):
    return hashlib.sha256(f"{_SALT}:{text}".encode()).hexdigest()


def _sections(record):
    """The sections after the opening paragraph, as the template lays them out."""
    sections = [f"### Instruction:\n{record['instruction']}"]
    if record["input"]:
        sections.append(f"### Input:\n{record['input']}")
    return sections + ["### Response:"]


def _diagnose_prompt(prompt, record, kind, what):
    """Say where `prompt` departs from Alpaca's template `kind` (it does; the hash told us)."""
    hashes = _PROMPT_HASHES[kind]
    template = "the template with input" if kind == "with_input" else "the template without input"
    if not prompt.endswith("### Response:"):
        fail(f"{what}: the prompt must end with '### Response:' and nothing after it (the output follows directly); "
             f"yours ends with {prompt[-20:]!r}.")
    parts = prompt.split("\n\n")
    want = _sections(record)
    if len(parts) != len(want) + 1:
        other = "with" if kind == "without_input" else "without"
        hint = (f" Did you use the template {other} input? A record whose input is '' takes the template without input."
                if len(parts) in (3, 4) else "")
        fail(f"{what}: {template} has {len(want) + 1} parts separated by a blank line (\"\\n\\n\"): the opening paragraph, "
             f"{', '.join(repr(s.split(chr(10))[0]) for s in want)}; yours splits into {len(parts)} parts at blank lines: "
             f"{[p[:30] for p in parts]}. Check the blank lines between the sections and the single newline after each "
             f"header.{hint}")
    for got, expected in zip(parts[1:], want):
        if got != expected:
            fail(f"{what}: a section reads {got!r}, expected {expected!r}: the header, one newline, then the text.")
    preamble = parts[0]
    if _hash(preamble) == hashes["preamble"]:
        fail(f"{what}: the sections match Alpaca's but the whole prompt does not; check for stray spaces or characters.")
    words, expected_words = preamble.split(), hashes["words"]
    for k, (word, digest) in enumerate(zip(words, expected_words)):
        if _hash(word)[:16] != digest:
            fail(f"{what}: the opening paragraph of {template} differs from Alpaca's at word {k + 1}: you wrote "
                 f"{word!r} (after {' '.join(words[max(0, k - 4):k])!r}). Copy PROMPT_DICT from Alpaca's train.py; "
                 "every word and punctuation mark counts.")
    if len(words) != len(expected_words):
        fail(f"{what}: the opening paragraph of {template} has {len(expected_words)} words in Alpaca's template, "
             f"yours has {len(words)}.")
    fail(f"{what}: the words of the opening paragraph are right but the spacing differs: one space between words and "
         "between the two sentences, no space at the start or before the blank line.")


def _expect_template(impl, kind):
    record = dict(_RECORDS[kind])
    what = f"`format_prompt({record})`"
    prompt = impl.format_prompt(record)
    if not isinstance(prompt, str):
        fail(f"{what}: expected a str, got {type(prompt).__name__}.")
    if _hash(prompt) != _PROMPT_HASHES[kind]["full"]:
        _diagnose_prompt(prompt, record, kind, what)


@pytest.mark.exercise("format_prompt")
@pytest.mark.points(2)
def test_template_with_input_is_alpacas(impl):
    _expect_template(impl, "with_input")


@pytest.mark.exercise("format_prompt")
@pytest.mark.points(2)
def test_template_without_input_is_alpacas(impl):
    _expect_template(impl, "without_input")


@pytest.mark.exercise("format_prompt")
def test_record_without_input_key_uses_the_plain_template(impl):
    record = {"instruction": "Name three primary colors.", "output": "Red, yellow and blue."}
    prompt = impl.format_prompt(record)
    if not isinstance(prompt, str) or _hash(prompt) != _PROMPT_HASHES["without_input"]["full"]:
        fail("`format_prompt` of a record with no 'input' key must give the template without input (as Alpaca's "
             "example.get('input', '') does); got " + (repr(prompt[:80]) if isinstance(prompt, str) else type(prompt).__name__)
             + ".")


_WORDS = ["write", "a", "short", "poem", "about", "the", "sea", "list", "three", "facts", "on", "cats", "explain",
          "why", "sky", "is", "blue", "Give", "tips", "for", "sleep", "42", "x", "{braces}", "100%", "don't"]


def _random_text(g, lo, hi):
    n = int(torch.randint(lo, hi, (), generator=g))
    return " ".join(_WORDS[i] for i in torch.randint(len(_WORDS), (n,), generator=g).tolist())


def _random_record(g):
    with_input = bool(torch.randint(2, (), generator=g))
    return {"instruction": _random_text(g, 1, 8).capitalize() + ".",
            "input": _random_text(g, 1, 6) if with_input else "",
            "output": _random_text(g, 1, 8)}


def _first_difference(got, expected):
    k = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    return (f"they differ from character {k}: expected {expected[max(0, k - 15):k + 15]!r}, "
            f"got {got[max(0, k - 15):k + 15]!r}")


@pytest.mark.exercise("format_prompt")
@pytest.mark.hidden
def test_format_prompt_random_records_match_reference(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(4):
        record = _random_record(g)
        expected, got = ref.format_prompt(record), impl.format_prompt(record)
        if got != expected:
            fail(f"`format_prompt({record})`: not Alpaca's prompt; " + (
                _first_difference(got, expected) if isinstance(got, str) else f"got {type(got).__name__}") + ".")


# --- tokenize_example ----------------------------------------------------------------------


def _encode(text):
    """The course's CharTokenizer, rewritten from its specification."""
    return [3 if ch == "\n" else 4 + ord(ch) - 32 if 32 <= ord(ch) < 127 else UNK for ch in text]


def _tokenized(prompt, output, max_len, variant="ok"):
    p = _encode(prompt)
    r = _encode(output) + ([] if variant == "no_eos" else [EOS])
    ids = (p + r)[:max_len]
    cut = {"mask_short": len(p) - 1, "mask_long": len(p) + 1, "prompt_unmasked": 0}.get(variant, len(p))
    labels = [IGNORE] * min(cut, len(ids)) + ids[cut:]
    pad = max_len - len(ids)
    pad_label = PAD if variant == "pad_labelled" else IGNORE
    if variant == "left_padded":
        return torch.tensor([PAD] * pad + ids), torch.tensor([IGNORE] * pad + labels)
    return torch.tensor(ids + [PAD] * pad), torch.tensor(labels + [pad_label] * pad)


_TOKENIZE_MISTAKES = {
    "forgot the end-of-sequence token after the output: without it the model never learns to stop": "no_eos",
    "left the prompt tokens labelled: labels are -100 on every prompt token": "prompt_unmasked",
    "masked one token too few: the last prompt token must be -100 as well": "mask_short",
    "masked one token too many: the first output token lost its label": "mask_long",
    "labelled the padding with pad_id; padding labels are -100": "pad_labelled",
    "padded on the left; pad on the right": "left_padded",
}


def _expect_tokenized(impl, record, max_len, what):
    prompt = impl.format_prompt(record)  # your own prompt: this check is about tokenisation
    if not isinstance(prompt, str):
        fail(f"`format_prompt` returned {type(prompt).__name__}; fix format_prompt first.")
    want_ids, want_labels = _tokenized(prompt, record["output"], max_len)
    result = impl.tokenize_example(record, impl.CharTokenizer(), max_len)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (input_ids, labels), got {type(result).__name__}.")
    ids = expect_shape(result[0], (max_len,), f"{what}: input_ids", hint="Pad (or cut) to exactly max_len tokens.")
    labels = expect_shape(result[1], (max_len,), f"{what}: labels", hint="Pad (or cut) to exactly max_len tokens.")
    if ids.is_floating_point() or labels.is_floating_point():
        fail(f"{what}: token ids and labels must be integer (long) tensors, got {ids.dtype} and {labels.dtype}.")
    ids, labels = ids.long(), labels.long()
    if torch.equal(ids, want_ids) and torch.equal(labels, want_labels):
        return
    for label, variant in _TOKENIZE_MISTAKES.items():
        v_ids, v_labels = _tokenized(prompt, record["output"], max_len, variant)
        if torch.equal(ids, v_ids) and torch.equal(labels, v_labels):
            fail(f"{what}: your result matches what you get if you {label}.")
    if not torch.equal(ids, want_ids):
        k = int((ids != want_ids).nonzero()[0])
        fail(f"{what}: input_ids differ from position {k} on: expected {want_ids[k:k + 8].tolist()}, got "
             f"{ids[k:k + 8].tolist()}. Expected the prompt's ids, the output's ids, eos_id ({EOS}), then pad_id ({PAD}).")
    k = int((labels != want_labels).nonzero()[0])
    n_prompt = len(_encode(prompt))
    fail(f"{what}: labels differ from position {k} on (the prompt has {n_prompt} tokens): expected "
         f"{want_labels[k:k + 8].tolist()}, got {labels[k:k + 8].tolist()}. Labels are -100 on the prompt and the "
         "padding, and the ids of the output and of the end-of-sequence token.")


@pytest.mark.exercise("tokenize_example")
@pytest.mark.points(2)
def test_tokenize_example_labels_only_the_response(impl):
    record = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
    _expect_tokenized(impl, record, 256, f"`tokenize_example({record}, CharTokenizer(), max_len=256)`")
    record = {"instruction": "Repeat the word.", "input": "cat", "output": "cat cat"}
    _expect_tokenized(impl, record, 300, f"`tokenize_example({record}, CharTokenizer(), max_len=300)`")


def _error_name(call):
    """The name of the exception `call()` raises, or None."""
    kind, _ = outcome(call)
    return None if kind == "ok" else kind


def _expect_truncation(impl, record, what_record):
    n_prompt = len(_encode(impl.format_prompt(record)))
    for room in (1, 3):
        _expect_tokenized(impl, record, n_prompt + room,
                          f"`tokenize_example({what_record}, CharTokenizer(), max_len={n_prompt + room})` (a prompt of "
                          f"{n_prompt} tokens leaves room for {room} output token{'s' if room > 1 else ''})")
    for max_len in (n_prompt, n_prompt - 5):
        name = _error_name(lambda: impl.tokenize_example(record, impl.CharTokenizer(), max_len))
        if name != "ValueError":
            got = "returned without an error" if name is None else f"raised {name}"
            fail(f"`tokenize_example({what_record}, CharTokenizer(), max_len={max_len})` {got}, but the prompt alone takes "
                 f"{n_prompt} tokens: no output token fits, every label would be -100 and the example would silently "
                 "teach nothing. Raise a ValueError that says so.")


@pytest.mark.exercise("tokenize_example")
@pytest.mark.points(2)
def test_tokenize_example_truncation_keeps_part_of_the_response(impl):
    record = {"instruction": "Write a haiku about autumn.", "input": "", "output": "Red leaves drift and fall"}
    _expect_truncation(impl, record, "a haiku record")


@pytest.mark.exercise("tokenize_example")
@pytest.mark.hidden
def test_tokenize_example_random_records(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        record = _random_record(g)
        prompt = impl.format_prompt(record)
        if prompt != ref.format_prompt(record):
            fail("`format_prompt` does not give Alpaca's prompt yet, and tokenize_example builds on it: fix format_prompt first.")
        n_prompt, n_output = len(_encode(prompt)), len(_encode(record["output"]))
        max_len = n_prompt + int(torch.randint(1, n_output + 6, (), generator=g))
        what = f"`tokenize_example({record}, CharTokenizer(), max_len={max_len})`"
        _expect_tokenized(impl, record, max_len, what)
        want_ids, want_labels = ref.tokenize_example(record, ref.CharTokenizer(), max_len)
        ids, labels = impl.tokenize_example(record, impl.CharTokenizer(), max_len)
        if not (torch.equal(torch.as_tensor(ids).long(), want_ids) and torch.equal(torch.as_tensor(labels).long(), want_labels)):
            fail(f"{what}: does not match the reference.")
    _expect_truncation(impl, _random_record(g), "a random record")
