"""Checks for ROUGE-L and Self-Instruct's filter of near-duplicate instructions.

Visible checks use hand-worked scores and an LCS written here another way (memoised
recursion over suffixes); hidden checks draw instructions from the run's seed.
"""
import functools
import re

import pytest
import torch

from grader.checking import expect_number, fail

pytestmark = pytest.mark.exercise("rouge_filter")


def _tokens(text, variant="ok"):
    if variant == "case_sensitive":
        return re.findall(r"[A-Za-z0-9]+", text)
    if variant == "whitespace":
        return text.lower().split()
    # lower-case ASCII letters and digits form tokens; every other character separates them
    kept = "".join(c if c.isascii() and c.isalnum() else " " for c in text.lower())
    return kept.split()


def _lcs(a, b):
    """LCS length by memoised recursion over suffixes (the exercise fills a table instead)."""
    @functools.lru_cache(maxsize=None)
    def go(i, j):
        if i == len(a) or j == len(b):
            return 0
        if a[i] == b[j]:
            return 1 + go(i + 1, j + 1)
        return max(go(i + 1, j), go(i, j + 1))
    return go(0, 0)


def _longest_run(a, b):
    """The longest common contiguous run (substring) of two token lists: a known mistake."""
    return max([0] + [k for i in range(len(a)) for j in range(len(b))
                      for k in range(1, min(len(a) - i, len(b) - j) + 1) if a[i:i + k] == b[j:j + k]])


def _rouge(candidate, reference, variant="ok"):
    c, r = _tokens(candidate, variant), _tokens(reference, variant)
    lcs = _longest_run(c, r) if variant == "substring" else _lcs(tuple(c), tuple(r))
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return {"precision": p, "recall": rec, "mean": (p + rec) / 2}.get(variant, 2 * p * rec / (p + rec))


_ROUGE_MISTAKES = {
    "returned the precision lcs / len(candidate); ROUGE-L here is the F-measure 2PR / (P + R)": "precision",
    "returned the recall lcs / len(reference); ROUGE-L here is the F-measure 2PR / (P + R)": "recall",
    "averaged P and R; the F-measure is their harmonic mean 2PR / (P + R)": "mean",
    "compared tokens without lower-casing them": "case_sensitive",
    "split on whitespace only, so punctuation stays attached ('sea.' is not 'sea'); tokens are runs of [a-z0-9]": "whitespace",
    "computed the longest common substring (a contiguous run); ROUGE-L uses the longest common subsequence, whose "
    "tokens may have gaps between them: on a mismatch keep the larger of the two neighbours, do not reset to 0": "substring",
}


def _expect_rouge(impl, candidate, reference, expected=None):
    what = f"`rouge_l({candidate!r}, {reference!r})`"
    expected = _rouge(candidate, reference) if expected is None else expected
    got = impl.rouge_l(candidate, reference)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, (int, float)) and not isinstance(got, bool) and abs(got - expected) > 1e-9:
        for label, variant in _ROUGE_MISTAKES.items():
            if abs(got - _rouge(candidate, reference, variant)) < 1e-9 and abs(_rouge(candidate, reference, variant) - expected) > 1e-9:
                fail(f"{what}: expected {expected:.6g}, got {got:.6g}. Your result matches what you get if you {label}.")
    expect_number(got, expected, what, rel=1e-9, abs_tol=1e-12,
                  hint="ROUGE-L = 2PR / (P + R) with P = lcs / len(candidate tokens), R = lcs / len(reference tokens).")


@pytest.mark.points(2)
def test_rouge_l_hand_worked(impl):
    # 7 candidate tokens, 3 reference tokens, LCS "write a poem" = 3: P = 3/7, R = 1, F = 0.6
    _expect_rouge(impl, "Write a short poem about the sea.", "write a poem", expected=0.6)
    # punctuation and case do not matter: LCS "the cat on mat" = 4 of 6 and 6 tokens, F = 4/6
    _expect_rouge(impl, "The cat sat on the mat.", "the cat is on a mat", expected=4 / 6)
    _expect_rouge(impl, "Give three tips for staying healthy.", "Give three tips for staying healthy.", expected=1.0)


def test_rouge_l_edge_cases_and_order(impl):
    _expect_rouge(impl, "", "Name a color.", expected=0.0)
    _expect_rouge(impl, "!!!", "???", expected=0.0)
    _expect_rouge(impl, "alpha beta", "gamma delta", expected=0.0)
    # an LCS that is not a contiguous substring: "a c e" out of "a b c d e" and "a x c y e"
    _expect_rouge(impl, "a b c d e", "a x c y e", expected=0.6)
    _expect_rouge(impl, "b a", "a b a b", expected=_rouge("b a", "a b a b"))


@pytest.mark.hidden
def test_rouge_l_random_pairs_match_reference(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    words = ["the", "a", "poem", "Sea", "cat", "write", "list", "three", "tips", "why", "is", "sky", "blue"]
    for _ in range(8):
        texts = []
        for _ in range(2):
            n = int(torch.randint(0, 10, (), generator=g))
            picks = torch.randint(len(words), (n,), generator=g).tolist()
            texts.append(" ".join(words[i] for i in picks) + ("." if n % 2 else ""))
        _expect_rouge(impl, texts[0], texts[1], expected=ref.rouge_l(texts[0], texts[1]))


# --- filter_instructions -------------------------------------------------------------------


def _filter(candidates, pool, threshold, variant="ok"):
    kept = []
    for c in candidates:
        seen = list(pool) + ([] if variant == "pool_only" else kept)
        scores = [_rouge(c, s) for s in seen]
        if variant == "inverted":
            keep = all(s >= threshold for s in scores)
        else:
            keep = all(s < threshold for s in scores)
        if keep:
            kept.append(c)
    return kept


_FILTER_MISTAKES = {
    "compared each candidate only with the pool; it must also be compared with the candidates kept so far": "pool_only",
    "kept the similar candidates instead of the new ones: keep a candidate only if every score is below the threshold": "inverted",
}

POOL = ["Write a poem about the sea."]
CANDIDATES = ["Write a poem about the ocean.",  # 5 of 6 tokens shared with the pool: 0.83, dropped
              "Give three tips for staying healthy.",  # new: kept
              "Give three tips for staying healthy and happy.",  # 0.86 with the one just kept: dropped
              "Translate this sentence into French."]  # new: kept


def _expect_filter(impl, candidates, pool, threshold, expected=None):
    what = f"`filter_instructions({candidates}, pool={pool}, threshold={threshold})`"
    expected = _filter(candidates, pool, threshold) if expected is None else expected
    got = impl.filter_instructions(candidates, pool, threshold)
    if not isinstance(got, (list, tuple)):
        fail(f"{what}: expected a list of the kept candidates, got {type(got).__name__}.")
    got = list(got)
    if got == expected:
        return
    for label, variant in _FILTER_MISTAKES.items():
        if got == _filter(candidates, pool, threshold, variant):
            fail(f"{what}: expected {expected}, got {got}. Your result matches what you get if you {label}.")
    fail(f"{what}: expected {expected}, got {got}. Keep a candidate only if its rouge_l with every instruction in the "
         "pool and every candidate kept so far is below the threshold; keep the candidates' order.")


@pytest.mark.points(2)
def test_filter_instructions_hand_worked(impl):
    _expect_filter(impl, CANDIDATES, POOL, 0.7, expected=[CANDIDATES[1], CANDIDATES[3]])


def test_filter_instructions_threshold_and_empty_pool(impl):
    # with a threshold of 0.9 the ocean poem (0.83) is new enough, and so is the happy variant (0.86)
    _expect_filter(impl, CANDIDATES, POOL, 0.9, expected=CANDIDATES)
    # no pool: the second copy of an instruction is a duplicate of the first one kept
    _expect_filter(impl, ["List three fruits.", "list three fruits!", "Name a planet."], [], 0.7,
                   expected=["List three fruits.", "Name a planet."])


@pytest.mark.hidden
def test_filter_instructions_random_match_reference(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    stems = ["write a poem about", "give three tips for", "explain why", "list facts about", "translate into french"]
    topics = ["the sea", "cats", "sleep", "the sky", "rivers", "the moon"]
    extras = ["", " please", " briefly", " in detail", " for children"]

    def pick(options):
        return options[int(torch.randint(len(options), (), generator=g))]

    pool = [(pick(stems) + " " + pick(topics)).capitalize() + "." for _ in range(2)]
    candidates = [(pick(stems) + " " + pick(topics) + pick(extras)).capitalize() + "." for _ in range(8)]
    threshold = [0.5, 0.7, 0.8][int(torch.randint(3, (), generator=g))]
    _expect_filter(impl, candidates, pool, threshold, expected=ref.filter_instructions(candidates, pool, threshold))
