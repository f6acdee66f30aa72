"""Checks for Alpaca's prompt templates and the tokenisation of a record.

Visible checks compare with the solution's recorded answers (Alpaca's templates are public:
PROMPT_DICT in its train.py) and explain a mismatch section by section; a wrong answer that
matches a known mistake is named after it. Hidden checks draw records from the run's seed.
"""
import pytest
import torch

from grader.checking import expect_equal, expect_shape, fail, fail_naming, new_comparison, outcome

WITH_INPUT = {"instruction": "Translate the sentence to French.", "input": "Good morning, my friend.",
              "output": "Bonjour, mon ami."}
WITHOUT_INPUT = {"instruction": "Name three primary colors.", "input": "", "output": "Red, yellow and blue."}


def _first_difference(got, expected):
    k = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    return (f"they differ from character {k}: expected {expected[max(0, k - 20):k + 20]!r}, "
            f"got {got[max(0, k - 20):k + 20]!r}")


def _where_it_departs(prompt, expected):
    """Which part of the prompt departs from Alpaca's (the parts are separated by blank lines)."""
    if not prompt.endswith("### Response:"):
        return ("The prompt ends with '### Response:' and nothing after it (the output follows directly); yours ends "
                f"with {prompt[-20:]!r}.")
    parts, want = prompt.split("\n\n"), expected.split("\n\n")
    if len(parts) != len(want):
        return (f"Alpaca's prompt here has {len(want)} parts separated by a blank line (\"\\n\\n\"): the opening "
                f"paragraph, then {', '.join(repr(p.splitlines()[0]) for p in want[1:])}; yours has {len(parts)}. "
                "Check the blank lines between the sections, the single newline after each header, and which "
                "template the record takes (a non-empty input takes the template with input).")
    k = next(i for i, (a, b) in enumerate(zip(parts, want)) if a != b)
    if k == 0:
        return "The opening paragraph differs from Alpaca's: copy PROMPT_DICT from its train.py; every word counts."
    return f"A section reads {parts[k]!r}, expected {want[k]!r}: the header, one newline, then the text."


def _expect_prompt(impl, oracle, record):
    new_comparison()
    expected = oracle.format_prompt(record)
    what = f"`format_prompt({record})`"
    prompt = impl.format_prompt(record)
    if not isinstance(prompt, str):
        fail(f"{what}: expected a str, got {type(prompt).__name__}.")
    if prompt != expected:
        fail_naming(f"{what}: not Alpaca's prompt; {_first_difference(prompt, expected)}.", lambda v: v == prompt,
                    hint=_where_it_departs(prompt, expected))


@pytest.mark.exercise("format_prompt")
@pytest.mark.points(2)
def test_template_with_input_is_alpacas(impl, recorded):
    _expect_prompt(impl, recorded, WITH_INPUT)


@pytest.mark.exercise("format_prompt")
@pytest.mark.points(2)
def test_template_without_input_is_alpacas(impl, recorded):
    _expect_prompt(impl, recorded, WITHOUT_INPUT)


@pytest.mark.exercise("format_prompt")
def test_record_without_input_key_uses_the_plain_template(impl, recorded):
    # as Alpaca's example.get("input", "") reads it, a record with no "input" has an empty one
    _expect_prompt(impl, recorded, {"instruction": "Name three primary colors.", "output": "Red, yellow and blue."})


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


@pytest.mark.exercise("format_prompt")
@pytest.mark.hidden
def test_format_prompt_random_records_match_reference(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(4):
        _expect_prompt(impl, ref, _random_record(g))


# --- tokenize_example ----------------------------------------------------------------------


def _expect_tokenized(impl, oracle, record, max_len, what):
    new_comparison()
    want_ids, want_labels = oracle.tokenize_example(record, oracle.CharTokenizer(), max_len)
    result = impl.tokenize_example(record, impl.CharTokenizer(), max_len)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (input_ids, labels), got {type(result).__name__}.")
    ids = expect_shape(result[0], (max_len,), f"{what}: input_ids", hint="Pad (or cut) to exactly max_len tokens.")
    labels = expect_shape(result[1], (max_len,), f"{what}: labels", hint="Pad (or cut) to exactly max_len tokens.")
    if ids.is_floating_point() or labels.is_floating_point():
        fail(f"{what}: token ids and labels must be integer (long) tensors, got {ids.dtype} and {labels.dtype}.")
    expect_equal(ids.long(), want_ids, f"{what}: input_ids",
                 hint="Expected the prompt's ids, the output's ids, eos_id (1), then pad_id (0) up to max_len.")
    expect_equal(labels.long(), want_labels, f"{what}: labels",
                 hint="Labels are -100 on the prompt and the padding, and the ids of the output and of the "
                      "end-of-sequence token.")


@pytest.mark.exercise("tokenize_example")
@pytest.mark.points(2)
def test_tokenize_example_labels_only_the_response(impl, recorded):
    record = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
    _expect_tokenized(impl, recorded, record, 256, f"`tokenize_example({record}, CharTokenizer(), max_len=256)`")
    record = {"instruction": "Repeat the word.", "input": "cat", "output": "cat cat"}
    _expect_tokenized(impl, recorded, record, 300, f"`tokenize_example({record}, CharTokenizer(), max_len=300)`")


def _expect_truncation(impl, oracle, record, what_record):
    n_prompt = len(oracle.format_prompt(record))  # CharTokenizer: one token per character
    for room in (1, 3):
        _expect_tokenized(impl, oracle, record, n_prompt + room,
                          f"`tokenize_example({what_record}, CharTokenizer(), max_len={n_prompt + room})` (a prompt of "
                          f"{n_prompt} tokens leaves room for {room} output token{'s' if room > 1 else ''})")
    for max_len in (n_prompt, n_prompt - 5):
        kind, _ = outcome(lambda: impl.tokenize_example(record, impl.CharTokenizer(), max_len))
        if kind != "ValueError":
            got = "returned without an error" if kind == "ok" else f"raised {kind}"
            fail(f"`tokenize_example({what_record}, CharTokenizer(), max_len={max_len})` {got}, but the prompt alone takes "
                 f"{n_prompt} tokens: no output token fits, every label would be -100 and the example would silently "
                 "teach nothing. Raise a ValueError that says so.")


@pytest.mark.exercise("tokenize_example")
@pytest.mark.points(2)
def test_tokenize_example_truncation_keeps_part_of_the_response(impl, recorded):
    record = {"instruction": "Write a haiku about autumn.", "input": "", "output": "Red leaves drift and fall"}
    _expect_truncation(impl, recorded, record, "a haiku record")


@pytest.mark.exercise("tokenize_example")
@pytest.mark.hidden
def test_tokenize_example_random_records(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        record = _random_record(g)
        n_prompt, n_output = len(ref.format_prompt(record)), len(record["output"])
        max_len = n_prompt + int(torch.randint(1, n_output + 6, (), generator=g))
        _expect_tokenized(impl, ref, record, max_len, f"`tokenize_example({record}, CharTokenizer(), max_len={max_len})`")
    _expect_truncation(impl, ref, _random_record(g), "a random record")
