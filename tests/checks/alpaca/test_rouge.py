"""Checks for ROUGE-L and Self-Instruct's filter of near-duplicate instructions.

Visible checks use hand-made instructions (the comments work the scores out) and compare with
the solution's recorded answers; a wrong answer that matches a known mistake is named after it.
Hidden checks draw instructions from the run's seed.
"""
import pytest
import torch

from grader.checking import expect_equal, expect_number, fail, new_comparison

pytestmark = pytest.mark.exercise("rouge_filter")


def _expect_rouge(impl, oracle, candidate, reference):
    """impl's rouge_l against the oracle's (`recorded` or `ref`), named from this pair's answers only."""
    new_comparison()
    expected = oracle.rouge_l(candidate, reference)
    got = impl.rouge_l(candidate, reference)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    expect_number(got, expected, f"`rouge_l({candidate!r}, {reference!r})`", rel=1e-9, abs_tol=1e-12,
                  hint="ROUGE-L = 2PR / (P + R) with P = lcs / len(candidate tokens), R = lcs / len(reference tokens).")


@pytest.mark.points(2)
def test_rouge_l_hand_worked(impl, recorded):
    # 7 candidate tokens, 3 reference tokens, LCS "write a poem" = 3: P = 3/7, R = 1, F = 0.6
    _expect_rouge(impl, recorded, "Write a short poem about the sea.", "write a poem")
    # case and punctuation do not matter: "list three tips then stop" and "list three tips and stop"
    # share 4 of their 5 tokens, F = 0.8 (without lower-casing 0.6; split on spaces, with
    # "tips," and "stop." kept whole, 0.4)
    _expect_rouge(impl, recorded, "List three tips, then stop.", "list three tips and stop")
    _expect_rouge(impl, recorded, "Give three tips for staying healthy.", "Give three tips for staying healthy.")  # 1.0


def test_rouge_l_edge_cases_and_order(impl, recorded):
    _expect_rouge(impl, recorded, "", "Name a color.")  # no tokens: 0.0
    _expect_rouge(impl, recorded, "!!!", "???")  # no tokens either
    _expect_rouge(impl, recorded, "alpha beta", "gamma delta")  # nothing in common: 0.0
    # an LCS that is not a contiguous run: "a c e" out of "a b c d e" and "a x c y e", F = 0.6
    _expect_rouge(impl, recorded, "a b c d e", "a x c y e")
    _expect_rouge(impl, recorded, "b a", "a b a b")  # LCS 2 ("b a"): P = 1, R = 1/2, F = 2/3


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
        _expect_rouge(impl, ref, texts[0], texts[1])


# --- filter_instructions -------------------------------------------------------------------


def _expect_filter(impl, oracle, candidates, pool, threshold):
    new_comparison()
    expected = oracle.filter_instructions(candidates, pool, threshold)
    what = f"`filter_instructions({candidates}, pool={pool}, threshold={threshold})`"
    got = impl.filter_instructions(candidates, pool, threshold)
    if not isinstance(got, (list, tuple)):
        fail(f"{what}: expected a list of the kept candidates, got {type(got).__name__}.")
    expect_equal(list(got), expected, what,
                 hint="Keep a candidate only if its rouge_l with every instruction in the pool and every candidate "
                      "kept so far is below the threshold; keep the candidates' order.")


# A filter answer is a short list: a slip in rouge_l often keeps the same candidates as some
# known filter mistake. While a rouge_l check fails, the filter checks send the learner there.
BUILDS_ON_ROUGE = pytest.mark.builds_on("test_rouge_l_hand_worked", "test_rouge_l_edge_cases_and_order")

POOL = ["Write a poem about the sea."]
CANDIDATES = ["Write a poem about the ocean.",  # 5 of 6 tokens shared with the pool: 0.83, dropped
              "Give three tips for staying healthy.",  # new: kept
              "Give three tips for staying healthy and happy.",  # 0.86 with the one just kept: dropped
              "Translate this sentence into French."]  # new: kept


@pytest.mark.points(2)
@BUILDS_ON_ROUGE
def test_filter_instructions_hand_worked(impl, recorded):
    _expect_filter(impl, recorded, CANDIDATES, POOL, 0.7)


@BUILDS_ON_ROUGE
def test_filter_instructions_threshold_and_empty_pool(impl, recorded):
    # with a threshold of 0.9 the ocean poem (0.83) is new enough, and so is the happy variant (0.86)
    _expect_filter(impl, recorded, CANDIDATES, POOL, 0.9)
    # no pool: a copy of an instruction kept earlier is a duplicate of it, whatever its case or punctuation
    _expect_filter(impl, recorded, ["List three fruits.", "list three fruits.", "Name a planet.", "Name a planet!"], [], 0.7)


@BUILDS_ON_ROUGE
def test_filter_instructions_at_the_threshold(impl, recorded):
    # The story and the pool's poem have 10 tokens each and share 7 ("write a about the sea and the"):
    # P = R = F = 0.7 exactly, the default threshold. Self-Instruct keeps scores "less than 0.7", so
    # the story is dropped; the moon is new and kept, and the sun (5 of 6 tokens shared with the
    # moon) dropped.
    candidates = ["Write a long story about the sea and the moon.", "Describe the moon in three words.",
                  "Describe the sun in three words."]
    _expect_filter(impl, recorded, candidates, ["Write a short poem about the sea and the sky."], 0.7)


@pytest.mark.hidden
@BUILDS_ON_ROUGE
@pytest.mark.builds_on("test_rouge_l_random_pairs_match_reference")
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
    _expect_filter(impl, ref, candidates, pool, threshold)
