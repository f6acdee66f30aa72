"""The reference solution of the survey topic, held against independent references: a plain
table of every model's family and objective, the rule that a family fixes what its attention
can see, torch's cross-entropy for the labels, the example of the T5 paper's Figure 2, and a
span corruption written differently (from a noise mask). Also: the visible checks of the
families judge only the form of the answers, so they pass on a wrong but well-formed table.
These are the project's own tests; they run the solution in this process."""

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from grader import course
from grader.instructor import mutants
from grader.judge import runner
from grader.judge.inprocess import load_module
from grader.results import PASSED

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "survey.py", "survey_solution")
hidden = load_module(ROOT / "tests" / "checks" / "survey" / "test_families_hidden.py", "survey_hidden_checks")

TABLE = {
    # model: (family, objective), from each model's own paper
    "BERT": ("encoder-only", "masked-lm"),
    "RoBERTa": ("encoder-only", "masked-lm"),
    "ALBERT": ("encoder-only", "masked-lm"),
    "XLM-R": ("encoder-only", "masked-lm"),
    "ELECTRA": ("encoder-only", "replaced-token-detection"),
    "GPT": ("decoder-only", "causal-lm"),
    "GPT-2": ("decoder-only", "causal-lm"),
    "GPT-3": ("decoder-only", "causal-lm"),
    "OPT": ("decoder-only", "causal-lm"),
    "BLOOM": ("decoder-only", "causal-lm"),
    "PaLM": ("decoder-only", "causal-lm"),
    "Chinchilla": ("decoder-only", "causal-lm"),
    "LLaMA": ("decoder-only", "causal-lm"),
    "T5": ("encoder-decoder", "denoising"),
    "mT5": ("encoder-decoder", "denoising"),
    "BART": ("encoder-decoder", "denoising"),
    "mBART": ("encoder-decoder", "denoising"),
}


# --- families and objectives ----------------------------------------------------------------


def test_solution_agrees_with_the_table():
    assert set(TABLE) == set(sol.MODELS) == set(hidden.MODEL_NAMES) == set(hidden.CLUES)
    for model, (family, objective) in TABLE.items():
        assert (sol.model_family(model), sol.pretraining_objective(model)) == (family, objective), model


def test_clues_and_mistake_messages_do_not_give_the_answer():
    # The clue for a model must not name its family or objective outright, and neither may the
    # messages of the known mistakes (they ship in the release's recording).
    for model, clue in hidden.CLUES.items():
        text = clue.lower()
        assert sol.model_family(model) not in text, model
        assert sol.pretraining_objective(model) not in text, model
    answers = set(sol.FAMILIES) | set(sol.OBJECTIVES)
    for mutant in mutants.load(course.load(ROOT), "survey"):
        assert not any(answer in mutant.message.lower() for answer in answers), mutant.id


@pytest.mark.slow
def test_visible_family_checks_pass_on_a_wrong_but_well_formed_table(tmp_path):
    # Every model a decoder trained on causal-lm: wrong for 9 of 17 families, yet the visible
    # checks (which ship to learners) must not tell.
    source = (ROOT / "solutions" / "survey.py").read_text(encoding="utf-8")
    wrong = source.replace("return families[key]", "return DECODER_ONLY").replace(
        "return objectives[key]", "return CAUSAL_LM"
    )
    path = tmp_path / "survey.py"
    path.write_text(wrong, encoding="utf-8")
    loaded = course.load(ROOT)
    visible = runner.run_topic(loaded, "survey", path, isolation="none")
    assert [c.status for c in visible.checks if c.exercise == "model_families"] == [PASSED, PASSED]
    graded = runner.run_topic(loaded, "survey", path, hidden=True, isolation="none", seed=3)
    failing = {c.id.split("::")[1] for c in graded.checks if c.exercise == "model_families" and c.status != PASSED}
    assert failing == {"test_family_of_every_model", "test_objective_of_every_model"}


def test_family_and_objective_go_together():
    # A decoder sees only the past, so it can only learn to continue text; an encoder-decoder
    # writes text from a (corrupted) input; encoders see both sides and do not generate.
    allowed = {
        sol.DECODER_ONLY: {sol.CAUSAL_LM},
        sol.ENCODER_DECODER: {sol.DENOISING},
        sol.ENCODER_ONLY: {sol.MASKED_LM, sol.REPLACED_TOKEN_DETECTION},
    }
    for model in sol.MODELS:
        assert sol.pretraining_objective(model) in allowed[sol.model_family(model)], model
    assert sol.pretraining_objective("ELECTRA") != sol.MASKED_LM  # the exception the checks teach
    counts = {f: sum(sol.model_family(m) == f for m in sol.MODELS) for f in sol.FAMILIES}
    assert counts == {sol.ENCODER_ONLY: 5, sol.DECODER_ONLY: 8, sol.ENCODER_DECODER: 4}


def test_names_are_normalised_and_unknown_names_rejected():
    assert len({sol.normalise(m) for m in sol.MODELS}) == len(sol.MODELS)
    for spelling in ("GPT-3", "gpt3", "Gpt 3", "GPT_3", "gpt.3"):
        assert sol.model_family(spelling) == sol.DECODER_ONLY
    with pytest.raises(ValueError, match="unknown model 'Word2Vec'"):
        sol.model_family("Word2Vec")
    with pytest.raises(ValueError, match="unknown model"):
        sol.pretraining_objective("ResNet")


# --- causal LM labels ---------------------------------------------------------------------------


def test_causal_labels_give_the_shifted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (12,), generator=g).tolist()
    logits = torch.randn(12, 50, generator=g)
    ours = F.cross_entropy(logits, torch.tensor(sol.causal_lm_labels(tokens)), ignore_index=-100)
    shifted = F.cross_entropy(logits[:-1], torch.tensor(tokens[1:]))  # what a GPT training loop computes
    torch.testing.assert_close(ours, shifted)
    assert sol.causal_lm_labels([5, 8, 2, 9]) == [8, 2, 9, -100]
    assert sol.causal_lm_labels([]) == [] and sol.causal_lm_labels([4]) == [-100]
    assert sol.causal_lm_labels((1, 2)) == [2, -100]


# --- masked LM labels ---------------------------------------------------------------------------


def test_masked_labels_give_the_loss_on_masked_positions_only():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 40, (10,), generator=g).tolist()
    positions = [0, 3, 7]
    before = list(tokens)
    inputs, labels = sol.masked_lm_labels(tokens, positions, 99)
    assert tokens == before
    assert [i for i, t in enumerate(inputs) if t == 99] == positions
    assert all(inputs[i] == tokens[i] for i in range(10) if i not in positions)
    logits = torch.randn(10, 40, generator=g)
    ours = F.cross_entropy(logits, torch.tensor(labels), ignore_index=-100)
    by_hand = -torch.stack([logits[i].log_softmax(-1)[tokens[i]] for i in positions]).mean()
    torch.testing.assert_close(ours, by_hand)
    with pytest.raises(ValueError, match="outside"):
        sol.masked_lm_labels([1, 2, 3], [3], 0)
    with pytest.raises(ValueError, match="outside"):
        sol.masked_lm_labels([1, 2, 3], [-1], 0)


# --- span corruption ----------------------------------------------------------------------------


def test_span_corruption_figure_2_of_the_t5_paper():
    words = "Thank you for inviting me to your party last week .".split()
    inputs, targets = sol.span_corruption(words, [(2, 4), (8, 9)], ["<X>", "<Y>", "<Z>"])
    assert " ".join(inputs) == "Thank you <X> me to your party <Y> week ."
    assert " ".join(targets) == "<X> for inviting <Y> last <Z>"


def from_noise_mask(tokens, noise, sentinels):
    """Span corruption from a 0/1 noise mask: each run of noise becomes one sentinel in the
    inputs; the targets are the complement, each run of kept tokens replaced by a sentinel."""
    inputs, targets, k = [], [], 0
    for i, (token, is_noise) in enumerate(zip(tokens, noise)):
        starts_run = is_noise and (i == 0 or not noise[i - 1])
        if starts_run:
            inputs.append(sentinels[k])
            targets.append(sentinels[k])
            k += 1
        if is_noise:
            targets.append(token)
        else:
            inputs.append(token)
    targets.append(sentinels[k])
    return inputs, targets


def test_span_corruption_matches_a_noise_mask_version():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 30)
        tokens = [rng.randint(0, 999) for _ in range(n)]
        cuts = sorted(set(rng.randint(0, n) for _ in range(2 * rng.randint(0, 5))))
        spans = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
        # the noise-mask version cannot tell two touching spans from one: keep them apart
        spans = [s for j, s in enumerate(spans) if j == 0 or s[0] > spans[j - 1][1]]
        sentinels = [32099 - k for k in range(len(spans) + 1)]
        noise = [any(a <= i < b for a, b in spans) for i in range(n)]
        assert sol.span_corruption(tokens, spans, sentinels) == from_noise_mask(tokens, noise, sentinels)


def test_span_corruption_errors():
    tokens = [1, 2, 3, 4, 5]
    for spans, sentinels in (
        ([(1, 3), (2, 4)], [9, 8, 7]),
        ([(3, 4), (0, 1)], [9, 8, 7]),
        ([(2, 2)], [9, 8]),
        ([(3, 7)], [9, 8]),
        ([(0, 1), (2, 3)], [9, 8]),
        ([(-1, 2)], [9, 8]),
    ):
        with pytest.raises(ValueError):
            sol.span_corruption(tokens, spans, sentinels)
    assert sol.span_corruption(tokens, [], [9]) == (tokens, [9])
