"""Checks for freezing: `freeze`, `trainable_parameter_count`, and a MiniGPT4 whose only
trained layer is the projector Linear(768, llm_dim).

Visible checks count parameters from the state dict written out here and read the
requires_grad flags of the learner's modules; the hidden check draws sizes from the run's seed.
"""
import pytest
import torch

from grader.checking import expect_number, expect_shape, fail

pytestmark = pytest.mark.exercise("freeze")

QFORMER_WIDTH = 768  # the Q-Former's width in MiniGPT-4 (32 query tokens of width 768)
LLM_PARTS = ["embed_tokens", "norm1", "qkv", "proj", "norm2", "mlp", "lm_head"]  # TinyLLM's submodules


def _numel(state, prefix=""):
    return sum(t.numel() for name, t in state.items() if name.startswith(prefix))


def _count_hint(total, frozen):
    return (f"The module has {total} parameters, {frozen} of them frozen. Count only the parameters "
            "with requires_grad: sum(p.numel() for p in model.parameters() if p.requires_grad).")


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
    llm = impl.TinyLLM(20, 8)
    state = llm.state_dict()
    total = _numel(state)  # 20*8 + 2*(8+8) + (24*8+24) + (8*8+8) + (32*8+32) + (8*32+8) + 20*8
    _expect_count(impl.trainable_parameter_count(llm), total, total,
                  "`trainable_parameter_count` of a fresh TinyLLM(20, 8), nothing frozen")
    helpers.set_requires_grad(llm, ["lm_head.", "mlp."], False)
    expected = total - _numel(state, "lm_head.") - _numel(state, "mlp.")
    _expect_count(impl.trainable_parameter_count(llm), expected, total,
                  "`trainable_parameter_count` of a TinyLLM(20, 8) whose lm_head and mlp are frozen")


@pytest.mark.points(2)
def test_minigpt4_trains_only_the_projector(impl, helpers):
    model = impl.MiniGPT4(llm_dim=16)
    _expect_only_projector_trainable(helpers.requires_grad_of(model), "MiniGPT4(llm_dim=16)")
    state = model.state_dict()
    expect_shape(state["llama_proj.weight"], (16, QFORMER_WIDTH), "llama_proj.weight of MiniGPT4(llm_dim=16)",
                 hint="The projector maps the Q-Former's width to the LLM's: nn.Linear(768, llm_dim), whose "
                      "weight has shape (llm_dim, 768).")
    _expect_count(impl.trainable_parameter_count(model), QFORMER_WIDTH * 16 + 16, _numel(state),
                  "`trainable_parameter_count(MiniGPT4(llm_dim=16))` (one Linear(768, 16): 768 * 16 + 16)")


@pytest.mark.hidden
def test_counts_for_random_sizes(impl, helpers, seed):
    g = torch.Generator().manual_seed(seed)
    dim = int(torch.randint(2, 48, (), generator=g))
    model = impl.MiniGPT4(llm_dim=dim)
    _expect_only_projector_trainable(helpers.requires_grad_of(model), f"MiniGPT4(llm_dim={dim})")
    state = model.state_dict()
    _expect_count(impl.trainable_parameter_count(model), QFORMER_WIDTH * dim + dim, _numel(state),
                  f"`trainable_parameter_count(MiniGPT4(llm_dim={dim}))`")

    vocab, width = int(torch.randint(5, 60, (), generator=g)), int(torch.randint(2, 12, (), generator=g))
    llm = impl.TinyLLM(vocab, width)
    state = llm.state_dict()
    chosen = [part for part in LLM_PARTS if torch.rand((), generator=g) < 0.5]
    for part in chosen:
        impl.freeze(getattr(llm, part))
    expected = _numel(state) - sum(_numel(state, part + ".") for part in chosen)
    _expect_count(impl.trainable_parameter_count(llm), expected, _numel(state),
                  f"`trainable_parameter_count` of a TinyLLM({vocab}, {width}) after freeze() of "
                  f"{', '.join(chosen) or 'nothing'}")
