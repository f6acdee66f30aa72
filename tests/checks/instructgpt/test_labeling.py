"""Checks for the labeling instructions: what labelers judged outputs by and which criteria
came first when they conflicted.

The answers are a handful of words from a small set, so no visible check holds them in any
form: the visible checks judge only the form of your answers and whether labeler_prefers
follows the priorities you gave. Whether those are the paper's is judged when grading.
"""
import itertools

import pytest
import torch

from grader.checking import fail

pytestmark = pytest.mark.exercise("labeling")

QUESTIONS = ("criteria", "training_priority", "evaluation_priority")
_ADVICE = {
    "criteria": "Section 3.4 (and the instructions in Appendix B) name three properties an output should have; "
                "give them as three lower-case adjectives.",
    "training_priority": "Section 3.4 says which criterion the paper prioritised while collecting training data "
                         "when the criteria conflicted (with a potentially harmful request, say).",
    "evaluation_priority": "Section 3.4 says which criteria labelers were asked to put first in the final evaluations; "
                           "the instructions in Appendix B say the same for most tasks.",
}


def _word(value):
    return isinstance(value, str) and value.isalpha() and value == value.strip().lower()


def _answers(impl):
    """Your answers, checked for form: three distinct criteria, priorities among them."""
    answers = impl.labeling_answers()
    what = "`labeling_answers()`"
    if not isinstance(answers, dict):
        fail(f"{what} returned {type(answers).__name__}; expected a dict with the keys {list(QUESTIONS)}.")
    missing = [q for q in QUESTIONS if q not in answers]
    if missing:
        fail(f"{what} has no answer for {missing}; expected the keys {list(QUESTIONS)}.")
    criteria, training, evaluation = (answers[q] for q in QUESTIONS)
    if not (isinstance(criteria, (list, tuple)) and len(criteria) == 3 and all(_word(c) for c in criteria)
            and len(set(criteria)) == 3):
        fail(f"{what}['criteria'] is {criteria!r}; expected a list of three different lower-case words. "
             + _ADVICE["criteria"])
    if not _word(training) or training not in criteria:
        fail(f"{what}['training_priority'] is {training!r}; expected one of your criteria {list(criteria)} "
             "(one lower-case word).")
    if not (isinstance(evaluation, (list, tuple)) and evaluation and all(c in criteria for c in evaluation)
            and len(set(evaluation)) == len(evaluation) < 3):
        fail(f"{what}['evaluation_priority'] is {evaluation!r}; expected a list of one or two of your criteria "
             f"{list(criteria)}, each once (putting all three first would prioritise nothing).")
    return answers


@pytest.mark.points(1)
def test_labeling_answers_are_well_formed(impl):
    _answers(impl)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_labeling_answers_match_the_paper(impl, ref):
    answers, expected = _answers(impl), ref.labeling_answers()

    def same(question):
        got, want = answers[question], expected[question]
        return got == want if isinstance(want, str) else sorted(got) == sorted(want)

    wrong = [q for q in QUESTIONS if not same(q)]
    if wrong:
        lines = [f"'{q}': {answers[q]!r} is not the paper's answer. {_ADVICE[q]}" for q in wrong]
        fail(f"`labeling_answers()`: {len(wrong)} of {len(QUESTIONS)} answers are wrong. " + " ".join(lines))


# --- labeler_prefers -----------------------------------------------------------------------


def _all_outputs(criteria):
    return [dict(zip(criteria, bits)) for bits in itertools.product([False, True], repeat=len(criteria))]


def _prefers(impl, a, b, stage):
    got = impl.labeler_prefers(a, b, stage)
    if got not in ("a", "b", "tie"):
        fail(f"`labeler_prefers({a}, {b}, stage='{stage}')` returned {got!r}; expected 'a', 'b' or 'tie'.")
    return got


def test_labeler_prefers_is_a_consistent_ranking(impl):
    criteria = list(_answers(impl)["criteria"])
    outputs = _all_outputs(criteria)
    for stage in ("training", "evaluation"):
        for a, b in itertools.product(outputs, repeat=2):
            what = f"`labeler_prefers({a}, {b}, stage='{stage}')`"
            got, back = _prefers(impl, a, b, stage), _prefers(impl, b, a, stage)
            if a == b and got != "tie":
                fail(f"{what} returned {got!r} for two identical outputs; expected 'tie'.")
            if {"a": "b", "b": "a", "tie": "tie"}[got] != back:
                fail(f"{what} returned {got!r} but with the outputs swapped it returned {back!r}: swapping a and b "
                     "must swap the answer.")
            if all(a[c] >= b[c] for c in criteria) and a != b and got != "a":
                better = [c for c in criteria if a[c] and not b[c]]
                fail(f"{what} returned {got!r}, but a meets every criterion b meets and also {better}: a must win.")


@pytest.mark.points(2)
def test_labeler_prefers_follows_your_priorities(impl):
    # Judged against the priorities your labeling_answers() gives, whichever they are: at each stage
    # an output meeting one more prioritised criterion wins however many other criteria it misses.
    answers = _answers(impl)
    criteria = list(answers["criteria"])
    firsts = {"training": [answers["training_priority"]], "evaluation": list(answers["evaluation_priority"])}
    for stage, first in firsts.items():
        rest = [c for c in criteria if c not in first]
        for winner_meets in range(len(first)):
            # a meets one prioritised criterion more than b, and none of the others; b meets all the others
            a = {c: c in first[:winner_meets + 1] for c in criteria}
            b = {c: c in first[:winner_meets] or c in rest for c in criteria}
            got = _prefers(impl, a, b, stage)
            if got != "a":
                fail(f"`labeler_prefers({a}, {b}, stage='{stage}')` returned {got!r}, but at the {stage} stage your "
                     f"labeling_answers() put {first} first: a meets more of them, so a wins even though b meets "
                     f"more of the others ({rest}). At the training stage the training priority decides first, in "
                     "the final evaluations the evaluation priorities; the other criteria only break ties.")
        if rest:  # equal on the prioritised criteria: the others decide
            a = {c: c in first for c in criteria}
            b = {c: c in first or c == rest[0] for c in criteria}
            got = _prefers(impl, a, b, stage)
            if got != "b":
                fail(f"`labeler_prefers({a}, {b}, stage='{stage}')` returned {got!r}: both meet your {stage} "
                     f"priorities {first}, so the other criteria break the tie, and b also meets {rest[0]!r}.")


@pytest.mark.hidden
def test_labeler_prefers_matches_reference(impl, ref, seed):
    criteria = list(ref.labeling_answers()["criteria"])
    if sorted(_answers(impl)["criteria"]) != sorted(criteria):
        fail("labeler_prefers compares outputs by your criteria, and `labeling_answers()['criteria']` is not the "
             "paper's answer yet: fix labeling_answers first.")
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
