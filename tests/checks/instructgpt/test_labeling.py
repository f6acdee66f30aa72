"""Checks for the labeling instructions: what labelers judged outputs by and which criteria
came first when they conflicted.

The visible check holds the answers only as salted SHA-256 hashes, so reading this file does
not give them away; the hidden check compares labeler_prefers with the reference on random
pairs of outputs.
"""
import hashlib
import itertools

import pytest
import torch

from grader.checking import fail

pytestmark = pytest.mark.exercise("labeling")

# question -> (salt, sha256 of "salt:answer"); a list answer is written sorted and comma-joined.
_ANSWERS = {
    "criteria": ("8dc99c5c4cf2b893", "b3cdd1f918a44ea11792cc43e6b0ef0e611e93363e97b251047327f66bb6a75b"),
    "training_priority": ("bbecd85f4cf18ef6", "03919850e60b5cd4710cf5d985298f2b468dc1d5e97636cf5f57da9ba020abd1"),
    "evaluation_priority": ("cd4beef69ca2ad89", "0138afff8e3a75c857134c4dc6e1cc775538b74d48d627e58f5186ed7c8e6958"),
}
_KINDS = {"criteria": list, "training_priority": str, "evaluation_priority": list}
_ADVICE = {
    "criteria": "Section 3.4 (and the instructions in Appendix B) name three properties an output should have; "
                "give them as three lower-case adjectives.",
    "training_priority": "Section 3.4 says which criterion the paper prioritised while collecting training data "
                         "when the criteria conflicted (with a potentially harmful request, say).",
    "evaluation_priority": "Section 3.4 says which criteria labelers were asked to put first in the final evaluations; "
                           "the instructions in Appendix B say the same for most tasks.",
}


def _normalise(value):
    if isinstance(value, str):
        return value.strip().lower()
    return ",".join(sorted({str(v).strip().lower() for v in value}))


def _matches(question, value):
    salt, digest = _ANSWERS[question]
    return hashlib.sha256(f"{salt}:{_normalise(value)}".encode()).hexdigest() == digest


def _answers(impl):
    answers = impl.labeling_answers()
    if not isinstance(answers, dict):
        fail(f"`labeling_answers()` returned {type(answers).__name__}; expected a dict with the keys "
             f"{sorted(_ANSWERS)}.")
    missing = sorted(set(_ANSWERS) - set(answers))
    if missing:
        fail(f"`labeling_answers()` has no answer for {missing}; expected the keys {sorted(_ANSWERS)}.")
    for question, kind in _KINDS.items():
        value = answers[question]
        ok = isinstance(value, str) if kind is str else (
            isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))
        if not ok:
            want = "one word (a str)" if kind is str else "a list of words (str)"
            fail(f"`labeling_answers()['{question}']` is {value!r}; expected {want}.")
    return answers


@pytest.mark.points(2)
def test_labeling_answers_match_the_paper(impl):
    answers = _answers(impl)
    wrong = [q for q in _ANSWERS if not _matches(q, answers[q])]
    if wrong:
        lines = [f"'{q}': {answers[q]!r} is not the paper's answer. {_ADVICE[q]}" for q in wrong]
        fail(f"`labeling_answers()`: {len(wrong)} of {len(_ANSWERS)} answers are wrong. " + " ".join(lines))


def _all_outputs(criteria):
    return [dict(zip(criteria, bits)) for bits in itertools.product([False, True], repeat=len(criteria))]


def _criteria(impl):
    answers = _answers(impl)
    if not _matches("criteria", answers["criteria"]):
        fail("labeler_prefers compares outputs by your criteria, and `labeling_answers()['criteria']` is not the "
             "paper's answer yet: fix labeling_answers first.")
    return sorted(v.strip().lower() for v in answers["criteria"])


def test_labeler_prefers_is_a_consistent_ranking(impl):
    criteria = _criteria(impl)
    outputs = _all_outputs(criteria)
    for stage in ("training", "evaluation"):
        for a, b in itertools.product(outputs, repeat=2):
            what = f"`labeler_prefers({a}, {b}, stage='{stage}')`"
            got, back = impl.labeler_prefers(a, b, stage), impl.labeler_prefers(b, a, stage)
            if got not in ("a", "b", "tie"):
                fail(f"{what} returned {got!r}; expected 'a', 'b' or 'tie'.")
            if a == b and got != "tie":
                fail(f"{what} returned {got!r} for two identical outputs; expected 'tie'.")
            if {"a": "b", "b": "a", "tie": "tie"}[got] != back:
                fail(f"{what} returned {got!r} but with the outputs swapped it returned {back!r}: swapping a and b "
                     "must swap the answer.")
            if all(a[c] >= b[c] for c in criteria) and a != b and got != "a":
                better = [c for c in criteria if a[c] and not b[c]]
                fail(f"{what} returned {got!r}, but a meets every criterion b meets and also {better}: a must win.")


@pytest.mark.hidden
def test_labeler_prefers_matches_reference(impl, ref, seed):
    criteria = _criteria(impl)
    outputs = _all_outputs(criteria)
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(outputs), (24, 2), generator=g).tolist()
    for stage in ("training", "evaluation"):
        for i, j in picks:
            a, b = outputs[i], outputs[j]
            expected, got = ref.labeler_prefers(a, b, stage), impl.labeler_prefers(a, b, stage)
            if got != expected:
                fail(f"`labeler_prefers({a}, {b}, stage='{stage}')` returned {got!r}, expected {expected!r}. "
                     f"At the {stage} stage the prioritised criteria decide first (the output meeting more of them "
                     "wins) and the others only break ties; check the priorities in labeling_answers.")
