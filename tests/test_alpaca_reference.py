"""The reference solution of the alpaca topic, held against independent references: Alpaca's two
templates as facts.md quotes them from train.py, an LCS written another way (memoised recursion)
on random pairs, google-research's rouge_score when it is importable (it is not a dependency:
the test skips without it), and hand-worked values. These are the project's own tests; they run
the solution in this process."""

import functools
import json
import random
import re
from pathlib import Path

import pytest
import torch

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "alpaca.py", "alpaca_solution")

# PROMPT_DICT of tatsu-lab/stanford_alpaca train.py, as /work/shared/reference/facts.md quotes it.
PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


# --- format_prompt -----------------------------------------------------------------------------


def test_templates_are_alpacas_to_the_character():
    with_input = {"instruction": "Translate {this}.", "input": "Good morning", "output": "Bonjour"}
    without = {"instruction": "Name three colors.", "input": "", "output": "Red, blue, green."}
    assert sol.format_prompt(with_input) == PROMPT_INPUT.format_map(with_input)
    assert sol.format_prompt(without) == PROMPT_NO_INPUT.format_map(without)
    assert sol.format_prompt({"instruction": "Name three colors."}) == PROMPT_NO_INPUT.format(
        instruction="Name three colors."
    )
    assert sol.format_prompt(without).endswith("### Response:")


# --- tokenize_example --------------------------------------------------------------------------


def test_char_tokenizer_is_deterministic_and_round_trips():
    tok = sol.CharTokenizer()
    assert (tok.pad_id, tok.eos_id, tok.unk_id, tok.vocab_size) == (0, 1, 2, 99)
    text = "### Response:\nHello, world! ~{}"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("\n A~") == [3, 4, 37, 98]
    assert tok.encode("é") == [2]


def test_tokenize_example_masks_the_prompt_and_appends_eos():
    tok = sol.CharTokenizer()
    record = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
    prompt = PROMPT_NO_INPUT.format_map(record)
    n = len(prompt)
    ids, labels = sol.tokenize_example(record, tok, n + 4)
    assert ids.tolist() == tok.encode(prompt) + tok.encode("5") + [1, 0, 0]
    assert labels.tolist() == [-100] * n + tok.encode("5") + [1, -100, -100]
    assert ids.dtype == labels.dtype == torch.long
    # truncation keeps the first max_len tokens: here one output token, no EOS
    ids, labels = sol.tokenize_example({**record, "output": "56"}, tok, n + 1)
    assert labels.tolist() == [-100] * n + tok.encode("5")
    for max_len in (n, n - 1, 3):
        with pytest.raises(ValueError, match="no room"):
            sol.tokenize_example(record, tok, max_len)


# --- ROUGE-L and the filter --------------------------------------------------------------------


def _lcs(a, b):
    @functools.cache
    def go(i, j):
        if i == len(a) or j == len(b):
            return 0
        return 1 + go(i + 1, j + 1) if a[i] == b[j] else max(go(i + 1, j), go(i, j + 1))

    return go(0, 0)


def _rouge_l(candidate, reference):
    c = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in candidate.lower()).split()
    r = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in reference.lower()).split()
    lcs = _lcs(tuple(c), tuple(r))
    return 0.0 if lcs == 0 else 2 * lcs / (len(c) + len(r))  # F = 2PR / (P + R) = 2 lcs / (m + n)


def _random_pairs(n, seed):
    rng = random.Random(seed)
    words = ["the", "The", "a", "poem", "sea.", "cat", "Write", "write,", "list", "3", "tips!", "why", "é", "x-y"]
    for _ in range(n):
        yield tuple(" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(2))


def test_rouge_l_hand_worked():
    assert sol.rouge_l("Write a short poem about the sea.", "write a poem") == pytest.approx(0.6)
    assert sol.rouge_l("The cat sat on the mat.", "the cat is on a mat") == pytest.approx(4 / 6)
    assert sol.rouge_l("a b c d e", "a x c y e") == pytest.approx(0.6)
    assert sol.rouge_l("", "anything") == 0.0 and sol.rouge_l("?!", "...") == 0.0
    assert sol.rouge_tokens("Write a poem!") == ["write", "a", "poem"]
    assert sol.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (CLRS)


def test_rouge_l_against_an_independent_lcs_on_random_pairs():
    for candidate, reference in _random_pairs(300, 0):
        assert sol.rouge_l(candidate, reference) == pytest.approx(_rouge_l(candidate, reference), abs=1e-12)
        assert sol.rouge_l(candidate, reference) == pytest.approx(sol.rouge_l(reference, candidate), abs=1e-12)


def test_rouge_l_against_rouge_score_when_installed():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")  # google-research's package; not a dependency
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for candidate, reference in _random_pairs(300, 1):
        want = scorer.score(reference, candidate)["rougeL"].fmeasure  # score(target, prediction)
        assert sol.rouge_l(candidate, reference) == pytest.approx(want, abs=1e-12)


def test_filter_instructions_hand_worked_and_properties():
    pool = ["Write a poem about the sea."]
    candidates = [
        "Write a poem about the ocean.",
        "Give three tips for staying healthy.",
        "Give three tips for staying healthy and happy.",
        "Translate this sentence into French.",
    ]
    assert sol.filter_instructions(candidates, pool) == [candidates[1], candidates[3]]
    assert sol.filter_instructions(candidates, pool, threshold=0.9) == candidates
    assert sol.filter_instructions(candidates, []) == [candidates[0], candidates[1], candidates[3]]
    # exactly at the threshold (7 of 10 and 10 tokens: F = 0.7 in floating point too) is not below it
    story, poem = "Write a long story about the sea and the moon.", "Write a short poem about the sea and the sky."
    assert sol.rouge_l(story, poem) == 0.7 == 2 * 7 / 20
    assert sol.filter_instructions([story], [poem]) == []
    assert sol.filter_instructions([story], [poem], threshold=0.71) == [story]
    rng = random.Random(2)
    words = "write give list a poem three tips about the sea cats for sleep".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) for _ in range(40)]
    kept = sol.filter_instructions(texts[5:], texts[:5], threshold=0.6)
    for i, a in enumerate(kept):  # everything kept is new with respect to the pool and the other kept ones
        assert all(_rouge_l(a, b) < 0.6 for b in texts[:5] + kept[:i])
    for text in texts[5:]:  # everything dropped was too close to the pool or to an earlier kept one
        if text not in kept:
            earlier = [k for k in kept if texts.index(k) < texts.index(text)]
            assert any(_rouge_l(text, b) >= 0.6 for b in texts[:5] + earlier)


# --- validate_records --------------------------------------------------------------------------


def test_validate_records_reports_every_problem():
    records = json.loads("""[
        {"instruction": "Name a color.", "input": "", "output": "Blue."},
        "just a string",
        {"instruction": "Add 2 and 3.", "output": "5"},
        {"instruction": null, "input": "", "output": 5},
        {"instruction": "Name a color.", "input": "", "output": "Red."},
        {"instruction": "  ", "input": "x", "output": ""},
        {"instruction": " Name a color. ", "input": "", "output": "Green.", "source": "seed"}
    ]""")
    assert sol.validate_records(records) == [
        "record 1: expected a dict, got str",
        "record 2: missing field 'input'",
        "record 3: field 'instruction' must be a string, got NoneType",
        "record 3: field 'output' must be a string, got int",
        "record 4: duplicate of record 0",
        "record 5: empty field 'instruction'",
        "record 5: empty field 'output'",
        "record 6: duplicate of record 0",
    ]
    assert sol.validate_records([]) == []
    assert sol.validate_records({"a": 1}) == ["records: expected a list of records, got dict"]


def test_validate_records_never_raises_on_junk():
    rng = random.Random(3)
    junk = [None, 0, 1.5, "", "text", [], [1], {}, {"instruction": []}, True]
    for _ in range(300):
        records = [
            rng.choice(
                junk + [{"instruction": rng.choice(junk), "input": rng.choice(junk), "output": rng.choice(junk)}]
            )
            for _ in range(rng.randint(0, 6))
        ]
        problems = sol.validate_records(records)
        assert all(isinstance(p, str) and re.match(r"record \d+: ", p) for p in problems)
    for value in junk:
        assert isinstance(sol.validate_records(value), list)
