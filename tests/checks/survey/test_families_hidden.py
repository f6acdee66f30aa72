"""Hidden checks for the model families: every model's family and objective, compared with the
solution's, with names spelled at random. The whole file is hidden (stripped from the student
release): the answers are a choice among three or four, so only grading judges them.
"""
import pytest
import torch

from grader.checking import fail, fail_naming, new_comparison, outcome

pytestmark = [pytest.mark.exercise("model_families"), pytest.mark.hidden]

MODEL_NAMES = ("BERT", "RoBERTa", "ALBERT", "XLM-R", "ELECTRA", "GPT", "GPT-2", "GPT-3", "OPT", "BLOOM", "PaLM",
               "Chinchilla", "LLaMA", "T5", "mT5", "BART", "mBART")

# What each model does, in words that point at the answer without saying it.
CLUES = {
    "BERT": "BERT hides some words of a sentence and predicts each from the words on both sides of it. Which "
            "family lets every token see the whole sentence at once, and what is hiding words called?",
    "RoBERTa": "RoBERTa is BERT trained longer on ten times the data, without next-sentence prediction: same "
               "architecture, same word-hiding task.",
    "ALBERT": "ALBERT is BERT made smaller by sharing one layer's weights across all layers; it still fills in "
              "hidden words, with a sentence-order task on the side.",
    "XLM-R": "XLM-R is RoBERTa trained on text in 100 languages.",
    "ELECTRA": "ELECTRA's kept model reads a whole sentence in which a small generator swapped some words, and "
               "decides for every token whether it is the original or a swap. It reads like BERT, but does not "
               "predict hidden words.",
    "GPT": "GPT (2018) was pretrained on books by predicting each next word from the words before it, then "
           "fine-tuned; it is the first of the GPT line.",
    "GPT-2": "GPT-2 generates text one token at a time, each from the tokens before it.",
    "GPT-3": "GPT-3 writes the answer after a prompt one token after another; it can only look back.",
    "OPT": "OPT is Meta's open re-creation of the GPT-3 models.",
    "BLOOM": "BLOOM is BigScience's 176B multilingual model, built and trained like GPT-3.",
    "PaLM": "PaLM is Google's 540B model trained to continue text, used with few-shot prompts like GPT-3.",
    "Chinchilla": "Chinchilla is the 70B model of the compute-optimal scaling paper, built like Gopher and GPT-3.",
    "LLaMA": "LLaMA is built like GPT-3 with newer parts (RMSNorm, rotary positions, SwiGLU) and trained on "
             "public text to continue it; it is the model of the llama topic.",
    "T5": "T5 turns every task into text-to-text: one stack reads the input text, another writes the output "
          "text; in pretraining it writes back the spans that were cut out of its input.",
    "mT5": "mT5 is T5 trained on text in 101 languages.",
    "BART": "BART corrupts a document (hides spans, shuffles sentences), reads it with a BERT-like stack and "
            "writes the original back with a GPT-like one.",
    "mBART": "mBART is BART trained on text in 25 languages.",
}


def _spelling(model, g):
    """A random spelling of a model's name: case, hyphens and spaces changed."""
    choice = int(torch.randint(0, 4, (), generator=g))
    return [model, model.upper(), model.lower(), model.replace("-", " ")][choice]


def _judge(impl, ref, function, seed):
    g = torch.Generator().manual_seed(seed)
    names = {model: _spelling(model, g) for model in MODEL_NAMES}
    wrong = [(model, name, got) for model, name in names.items()
             if (got := getattr(impl, function)(name)) != getattr(ref, function)(name)]
    if not wrong:
        return
    model, name, got = wrong[0]
    more = f" ({len(wrong) - 1} more are wrong too: {', '.join(m for m, _, _ in wrong[1:])}.)" if len(wrong) > 1 else ""
    new_comparison()
    getattr(ref, function)(name)  # the known mistakes are named from this answer only
    fail_naming(f"`{function}`: {len(wrong)} of {len(names)} models have the wrong answer. "
                f"`{function}({name!r})` is not {got!r}. Clue: {CLUES[model]}{more}", lambda answer: answer == got)


@pytest.mark.points(2)
def test_family_of_every_model(impl, ref, seed):
    _judge(impl, ref, "model_family", seed)


@pytest.mark.points(2)
def test_objective_of_every_model(impl, ref, seed):
    _judge(impl, ref, "pretraining_objective", seed + 1)


NOT_IN_THE_TABLE = ["Word2Vec", "ResNet-50", "CLIP", "ViT", "AlexNet", "DALL-E", "Whisper", "ELMo", "GPT-5", "T6"]


def test_unknown_models_are_errors(impl, seed):
    g = torch.Generator().manual_seed(seed)
    for name in [NOT_IN_THE_TABLE[i] for i in torch.randperm(len(NOT_IN_THE_TABLE), generator=g)[:3].tolist()]:
        for function in ("model_family", "pretraining_objective"):
            kind, message = outcome(lambda: getattr(impl, function)(name))
            if kind != "ValueError":
                got = f"returned {message!r}" if kind == "ok" else f"raised {kind}: {message}"
                fail(f"`{function}({name!r})`: expected a ValueError, as for every model outside MODELS, but it {got}.")
