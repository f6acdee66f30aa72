"""Checks for placing models in their family and naming their pretraining objective.

These checks ship to you, so they hold no answer table: each answer is stored as a salted hash,
sha256(salt | question | model | answer), and your answer is hashed the same way and compared.
When one is wrong, the message gives a clue about the model instead of the answer. (The plain
table lives in the hidden checks, test_families_hidden.py, which only the grader has.)
"""
import hashlib

import pytest

from grader.checking import fail, outcome

SALT = "fmgrade-survey-2302.09419"
FAMILIES = ("encoder-only", "decoder-only", "encoder-decoder")
OBJECTIVES = ("masked-lm", "causal-lm", "denoising", "replaced-token-detection")

FAMILY_DIGESTS = {
    "BERT": "524d6469e062406bde1aa0d1",
    "RoBERTa": "21dab36d762437e58266e4c6",
    "ALBERT": "29049e97be3097e76b4a99db",
    "XLM-R": "de14b92c551e5403184eb0d0",
    "ELECTRA": "1b3761e5e7e4c2425fd9312c",
    "GPT": "d09dd145ddfece797b398ce9",
    "GPT-2": "a103a27f2d15a7a4920c9be0",
    "GPT-3": "d51f8ecae6af23afc68a7a1d",
    "OPT": "85c4f6aca19a0e7e2d5841be",
    "BLOOM": "54d4c18e8e0f27938f9fb21f",
    "PaLM": "27fe1376f4e9d8107def09c2",
    "Chinchilla": "2936f0e8fbd25a6000a9cfde",
    "LLaMA": "2d701756b0257f1591606d21",
    "T5": "9584f912446d90e899844078",
    "mT5": "bea6d40423f3eaecc085f1ed",
    "BART": "18adcd6e5f51a9990ce176e1",
    "mBART": "9bd67de2d6893512253ee3cd",
}
OBJECTIVE_DIGESTS = {
    "BERT": "9f7d78fae45192d33dc1f826",
    "RoBERTa": "1fa4df3036ee5c8e3d59961e",
    "ALBERT": "eaee17cbb55bb7c5d81b7c72",
    "XLM-R": "620469f13948c19fc3f39947",
    "ELECTRA": "4658a5e3bda7bc7e7583e78f",
    "GPT": "172e6d34617e17ccef81e2d0",
    "GPT-2": "1903601b2febfae3e8b3ea5c",
    "GPT-3": "a5f16752f7646b6e9a077b9d",
    "OPT": "74e70e2eceb0038d2d467e24",
    "BLOOM": "ee3b571ac118ed5d0c3efe1d",
    "PaLM": "e3a89bcecf2a9966edcb580b",
    "Chinchilla": "fbd0dd4b9900942513566cf9",
    "LLaMA": "664ec492cde7da04285d309b",
    "T5": "d25dec824e31a4a0cd3da576",
    "mT5": "be7a73d9dc2ef1b315dbf1fc",
    "BART": "1950b13cae0ee71aa6f4148c",
    "mBART": "b3ff507ae3d3b05d7cacdfed",
}

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


def _digest(question, model, answer):
    return hashlib.sha256(f"{SALT}|{question}|{model}|{answer}".encode()).hexdigest()[:24]


def _judge(answers, question, digests, allowed, constants):
    """answers: model -> what the learner returned. Fail with clues for the wrong ones."""
    for model, got in answers.items():
        if got not in allowed:
            fail(f"`{question}({model!r})` returned {got!r}; return one of the module's constants "
                 f"{', '.join(constants)} (the strings {', '.join(repr(a) for a in allowed)}).")
    wrong = [model for model, got in answers.items() if _digest(question, model, got) != digests[model]]
    if not wrong:
        return
    lines = "; ".join(f"{model} is not {answers[model]!r}. Clue: {CLUES[model]}" for model in wrong[:3])
    more = f" ({len(wrong) - 3} more are wrong too: {', '.join(wrong[3:])}.)" if len(wrong) > 3 else ""
    fail(f"`{question}`: {len(wrong)} of {len(answers)} models have the wrong answer. {lines}{more}")


@pytest.mark.exercise("model_families")
@pytest.mark.points(2)
def test_model_family_of_every_model(impl):
    answers = {model: impl.model_family(model) for model in FAMILY_DIGESTS}
    _judge(answers, "model_family", FAMILY_DIGESTS, FAMILIES, ("ENCODER_ONLY", "DECODER_ONLY", "ENCODER_DECODER"))


@pytest.mark.exercise("model_families")
@pytest.mark.points(2)
def test_pretraining_objective_of_every_model(impl):
    answers = {model: impl.pretraining_objective(model) for model in OBJECTIVE_DIGESTS}
    _judge(answers, "pretraining_objective", OBJECTIVE_DIGESTS, OBJECTIVES,
           ("MASKED_LM", "CAUSAL_LM", "DENOISING", "REPLACED_TOKEN_DETECTION"))


@pytest.mark.exercise("model_families")
def test_names_match_loosely_and_unknown_models_are_errors(impl):
    for spellings in (("GPT-3", "gpt3", "Gpt 3"), ("XLM-R", "xlm_r", "xlmr"), ("LLaMA", "llama", "LLAMA")):
        for function in ("model_family", "pretraining_objective"):
            results = {}
            for spelling in spellings:
                kind, value = outcome(lambda: getattr(impl, function)(spelling))
                if kind != "ok":
                    fail(f"`{function}({spelling!r})` raised {kind}: {value}. {spellings[0]!r} spelled {spelling!r} "
                         "is the same model: look names up with normalise(name), which ignores case, spaces, "
                         "hyphens and underscores.")
                results[spelling] = value
            if len(set(results.values())) != 1:
                fail(f"`{function}` gave different answers for different spellings of one model: {results}. "
                     "Look names up with normalise(name), which ignores case, spaces, hyphens and underscores.")
    for function in ("model_family", "pretraining_objective"):
        kind, message = outcome(lambda: getattr(impl, function)("Word2Vec"))
        if kind != "ValueError":
            got = f"returned {message!r}" if kind == "ok" else f"raised {kind}: {message}"
            fail(f"`{function}('Word2Vec')`: expected a ValueError naming the models this exercise knows, but it {got}.")
