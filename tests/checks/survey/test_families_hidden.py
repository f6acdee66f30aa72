"""Hidden checks for the model families: the plain answer table, with names spelled at random.

The whole file is hidden (stripped from the student release); the visible checks hold the same
answers only as salted hashes.
"""
import pytest
import torch

from grader.checking import fail, outcome

pytestmark = [pytest.mark.exercise("model_families"), pytest.mark.hidden]

TABLE = {
    # model: (family, objective)
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


def _spelling(model, g):
    """A random spelling of a model's name: case, hyphens and spaces changed."""
    choice = int(torch.randint(0, 4, (), generator=g))
    return [model, model.upper(), model.lower(), model.replace("-", " ")][choice]


def test_table_with_random_spellings(impl, seed):
    g = torch.Generator().manual_seed(seed)
    wrong = []
    for model, (family, objective) in TABLE.items():
        name = _spelling(model, g)
        got_family, got_objective = impl.model_family(name), impl.pretraining_objective(name)
        if got_family != family:
            wrong.append(f"model_family({name!r}) is {family!r}, not {got_family!r}")
        if got_objective != objective:
            wrong.append(f"pretraining_objective({name!r}) is {objective!r}, not {got_objective!r}")
    if wrong:
        fail(f"{len(wrong)} wrong answers: " + "; ".join(wrong) + ".")


NOT_IN_THE_TABLE = ["Word2Vec", "ResNet-50", "CLIP", "ViT", "AlexNet", "DALL-E", "Whisper", "ELMo", "GPT-5", "T6"]


def test_unknown_models_are_errors(impl, seed):
    g = torch.Generator().manual_seed(seed)
    for name in [NOT_IN_THE_TABLE[i] for i in torch.randperm(len(NOT_IN_THE_TABLE), generator=g)[:3].tolist()]:
        for function in ("model_family", "pretraining_objective"):
            kind, message = outcome(lambda: getattr(impl, function)(name))
            if kind != "ValueError":
                got = f"returned {message!r}" if kind == "ok" else f"raised {kind}: {message}"
                fail(f"`{function}({name!r})`: expected a ValueError, as for every model outside MODELS, but it {got}.")
