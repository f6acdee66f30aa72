"""Checks for freezing: `freeze`, `trainable_parameter_count`, and a MiniGPT4 whose only
trained layer is the projector Linear(768, llm_dim).

Visible checks hold the counts against hand-worked values and read the requires_grad flags of
the learner's modules.
"""
import pytest
import torch

from grader.checking import expect_number, expect_shape, fail

pytestmark = pytest.mark.exercise("freeze")

QFORMER_WIDTH = 768  # the Q-Former's width in MiniGPT-4 (32 query tokens of width 768)
LLM_PARTS = ["embed_tokens", "norm1", "qkv", "proj", "norm2", "mlp", "lm_head"]  # TinyLLM's submodules


def _count_hint(total, frozen):
    return (f"The module has {total} parameters, {frozen} of them frozen. Count only the parameters "
            "that still require gradients, p.numel() for each.")


def _expect_count(got, expected, total, what):
    if isinstance(got, bool) or not isinstance(got, (int, float, torch.Tensor)):
        fail(f"{what}: expected a number, got {type(got).__name__}.")
    got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
    if got == total and expected != total:
        fail(f"{what}: expected {expected}, got {got}: you counted every parameter, including the "
             f"{total - expected} frozen ones. Count only those with p.requires_grad.")
    expect_number(got, expected, what, hint=_count_hint(total, total - expected))


def _expect_only_projector_trainable(flags, what):
    trainable = sorted(name for name, grad in flags.items() if grad)
    extra = [name for name in trainable if not name.startswith("llama_proj.")]
    if extra:
        parts = sorted({name.split(".")[0] for name in extra})
        fail(f"{what}: {len(extra)} parameters outside llama_proj still require gradients, in "
             f"{', '.join(parts)} (e.g. {extra[0]}). MiniGPT-4 trains the projector only: wrap the image "
             "encoder and the LLM in freeze(...), e.g. self.llama_model = freeze(TinyLLM(...)).")
    missing = sorted({"llama_proj.weight", "llama_proj.bias"} - set(trainable))
    if missing:
        fail(f"{what}: {', '.join(missing)} does not require gradients, so nothing would be trained. "
             "llama_proj = nn.Linear(768, llm_dim) is the one layer MiniGPT-4 trains; do not freeze it.")


def test_freeze_stops_every_gradient(impl, helpers):
    llm = impl.TinyLLM(20, 8)
    total = len(helpers.requires_grad_of(llm))
    returned = impl.freeze(llm)
    if returned is None:
        fail("`freeze(module)` returned None: return the module, so that you can write "
             "self.llama_model = freeze(TinyLLM(...)).")
    still = [name for name, grad in helpers.requires_grad_of(llm).items() if grad]
    if still:
        fail(f"after `freeze(llm)`, {len(still)} of the {total} parameters still require gradients "
             f"(e.g. {still[0]}): set requires_grad = False on every parameter in module.parameters(), "
             "which includes the submodules' parameters.")
    training = [name or "the module itself" for name, flag in helpers.training_flags(llm).items() if flag]
    if training:
        fail(f"after `freeze(llm)`, {training[0]} is still in training mode: call module.eval() as well. "
             "MiniGPT-4 keeps its frozen ViT, Q-Former and LLM in eval mode, so dropout and the like "
             "behave as at inference.")


def test_trainable_parameter_count_counts_only_requires_grad(impl, helpers):
    # TinyLLM(20, 8): embed_tokens 20 * 8 = 160, norm1 and norm2 8 + 8 each, qkv 8 * 24 + 24 = 216,
    # proj 8 * 8 + 8 = 72, mlp (8 * 32 + 32) + (32 * 8 + 8) = 552, lm_head 8 * 20 = 160 (no bias):
    # 1192 in all, and 480 once lm_head and mlp are frozen.
    llm = impl.TinyLLM(20, 8)
    _expect_count(impl.trainable_parameter_count(llm), 1192, 1192,
                  "`trainable_parameter_count` of a fresh TinyLLM(20, 8), nothing frozen")
    helpers.set_requires_grad(llm, ["lm_head.", "mlp."], False)
    _expect_count(impl.trainable_parameter_count(llm), 480, 1192,
                  "`trainable_parameter_count` of a TinyLLM(20, 8) whose lm_head and mlp are frozen")


# Every parameter of MiniGPT4(llm_dim=16), frozen ones included: the image encoder stand-in
# 63,744 (patch_embed 48 * 768 + 768, ln_vision 2 * 768, 32 query tokens of width 768), the
# TinyLLM(99, 16) 6,448, and the projector 768 * 16 + 16 = 12,304.
_MINIGPT4_16_PARAMETERS = 82_496


@pytest.mark.points(2)
def test_minigpt4_trains_only_the_projector(impl, helpers):
    model = impl.MiniGPT4(llm_dim=16)
    _expect_only_projector_trainable(helpers.requires_grad_of(model), "MiniGPT4(llm_dim=16)")
    expect_shape(model.state_dict()["llama_proj.weight"], (16, QFORMER_WIDTH), "llama_proj.weight of MiniGPT4(llm_dim=16)",
                 hint="The projector maps the Q-Former's width to the LLM's: nn.Linear(768, llm_dim), whose "
                      "weight has shape (llm_dim, 768).")
    _expect_count(impl.trainable_parameter_count(model), QFORMER_WIDTH * 16 + 16, _MINIGPT4_16_PARAMETERS,
                  "`trainable_parameter_count(MiniGPT4(llm_dim=16))` (one Linear(768, 16): 768 * 16 + 16)")


@pytest.mark.hidden
def test_counts_for_random_sizes(impl, ref, helpers, seed):
    g = torch.Generator().manual_seed(seed)
    dim = int(torch.randint(2, 48, (), generator=g))
    model = impl.MiniGPT4(llm_dim=dim)
    _expect_only_projector_trainable(helpers.requires_grad_of(model), f"MiniGPT4(llm_dim={dim})")
    total = sum(p.numel() for p in ref.MiniGPT4(llm_dim=dim).state_dict().values())
    _expect_count(impl.trainable_parameter_count(model), QFORMER_WIDTH * dim + dim, total,
                  f"`trainable_parameter_count(MiniGPT4(llm_dim={dim}))`")

    vocab, width = int(torch.randint(5, 60, (), generator=g)), int(torch.randint(2, 12, (), generator=g))
    llm, reference = impl.TinyLLM(vocab, width), ref.TinyLLM(vocab, width)
    total = ref.trainable_parameter_count(reference)
    chosen = [part for part in LLM_PARTS if torch.rand((), generator=g) < 0.5]
    for part in chosen:
        impl.freeze(getattr(llm, part))
        ref.freeze(getattr(reference, part))
    _expect_count(impl.trainable_parameter_count(llm), ref.trainable_parameter_count(reference), total,
                  f"`trainable_parameter_count` of a TinyLLM({vocab}, {width}) after freeze() of "
                  f"{', '.join(chosen) or 'nothing'}")
