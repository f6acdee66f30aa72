"""Checks for placing models in their family and naming their pretraining objective.

Each answer is one of three families and one of four objectives, a choice small enough to try
out, so the checks you run here judge only the form of your answers: every model gets one of
the module's constants, every spelling of a name the same answer, and a model the exercise
does not know is an error. Whether each answer is right is judged when your work is graded.
"""
import pytest

from grader.checking import fail, outcome

MODEL_NAMES = ("BERT", "RoBERTa", "ALBERT", "XLM-R", "ELECTRA", "GPT", "GPT-2", "GPT-3", "OPT", "BLOOM", "PaLM",
               "Chinchilla", "LLaMA", "T5", "mT5", "BART", "mBART")
CONSTANTS = {
    "model_family": {"ENCODER_ONLY": "encoder-only", "DECODER_ONLY": "decoder-only",
                     "ENCODER_DECODER": "encoder-decoder"},
    "pretraining_objective": {"MASKED_LM": "masked-lm", "CAUSAL_LM": "causal-lm", "DENOISING": "denoising",
                              "REPLACED_TOKEN_DETECTION": "replaced-token-detection"},
}


@pytest.mark.exercise("model_families")
@pytest.mark.points(2)
def test_every_model_gets_one_of_the_constants(impl):
    for function, constants in CONSTANTS.items():
        allowed = set(constants.values())
        for model in MODEL_NAMES:
            kind, got = outcome(lambda: getattr(impl, function)(model))
            if kind != "ok":
                fail(f"`{function}({model!r})` raised {kind}: {got}. Every model of MODELS needs an answer.")
            if got not in allowed:
                fail(f"`{function}({model!r})` returned {got!r}; return one of the module's constants "
                     f"{', '.join(constants)} (the strings {', '.join(repr(a) for a in constants.values())}).")


@pytest.mark.exercise("model_families")
def test_names_match_loosely_and_unknown_models_are_errors(impl):
    for spellings in (("GPT-3", "gpt3", "Gpt 3"), ("XLM-R", "xlm_r", "xlmr"), ("LLaMA", "llama", "LLAMA")):
        for function in CONSTANTS:
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
    for function in CONSTANTS:
        kind, message = outcome(lambda: getattr(impl, function)("Word2Vec"))
        if kind != "ValueError":
            got = f"returned {message!r}" if kind == "ok" else f"raised {kind}: {message}"
            fail(f"`{function}('Word2Vec')`: expected a ValueError naming the models this exercise knows, but it {got}.")
