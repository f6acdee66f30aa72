"""Checks for freezing: `freeze`, `trainable_parameter_count`, and a MiniGPT4 whose only
trained layer is the projector Linear(768, llm_dim).

Visible checks hold the counts against hand-worked values and read the requires_grad flags of
the learner's modules; freeze itself is judged by a training step the check recomputes.
"""
import pytest
import torch

from grader.checking import expect_close, expect_number, expect_shape, fail, generator

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
             "encoder and the LLM with freeze when the model is built.")
    missing = sorted({"llama_proj.weight", "llama_proj.bias"} - set(trainable))
    if missing:
        fail(f"{what}: {', '.join(missing)} does not require gradients, so nothing would be trained. "
             "llama_proj = nn.Linear(768, llm_dim) is the one layer MiniGPT-4 trains; do not freeze it.")


def _probe_data():
    """The check's own weights and data for helpers.freeze_step: body Linear(4, 6) + tanh, head
    Linear(6, 3), 5 inputs, the loss weights c and the learning rate."""
    g = generator(4)  # at grade time drawn from the submission's seed
    body = {"0.0.weight": torch.randn(6, 4, generator=g), "0.0.bias": torch.randn(6, generator=g)}
    head = {"weight": torch.randn(3, 6, generator=g), "bias": torch.randn(3, generator=g)}
    return body, head, torch.randn(5, 4, generator=g), torch.randn(5, 3, generator=g), 0.1


def _step_report(report, what):
    """The report of helpers.freeze_step, checked to be data of the expected form."""
    if isinstance(report, dict) and set(report) == {"error"}:
        fail(f"{what}: the training step failed: {report['error']}. Freeze only the module you are given: the "
             "rest of the model must still train.")
    parts = {"body": {"0.0.weight", "0.0.bias"}, "head": {"weight", "bias"}}
    if not isinstance(report, dict) or "output" not in report or any(
            not isinstance(report.get(part), dict) or set(report[part]) != keys for part, keys in parts.items()):
        fail(f"{what}: the worker sent back no report of the training step (expected the model's output, and the "
             "body's and the head's weights after the step). freeze must keep the module's parameters as they are "
             "and only switch their gradients off.")
    return report


def test_freeze_stops_every_gradient(impl, helpers):
    # freeze runs in the worker, where learner code could also rewrite the helper: so the check
    # takes no flag from there (requires_grad, training). It chooses the weights and data itself,
    # and recomputes what one SGD step of body + head must give when only the body is frozen.
    returned = impl.freeze(impl.TinyLLM(20, 8))
    if returned is None:
        fail("`freeze(module)` returned None: return the module, so that freezing can wrap a submodule where it is "
             "built and assigned.")
    body, head, x, c, lr = _probe_data()
    what = ("a model of a body (Linear(4, 6) inside a Sequential, Dropout(0.5), Tanh) and a head Linear(6, 3), "
            "after `freeze(body)` and one SGD step on all of it")
    report = _step_report(helpers.freeze_step(body, head, x, c, lr), what)
    after = report["body"]
    moved = [k for k in body if not torch.equal(expect_shape(after[k], body[k].shape, f"{what}: body {k}"), body[k])]
    if moved:
        fail(f"{what}: the body's {', '.join(moved)} changed, so gradients still reached it: set "
             "requires_grad = False on every parameter in module.parameters(), which includes the submodules' "
             "parameters.")
    hidden = torch.tanh(x.double() @ body["0.0.weight"].double().T + body["0.0.bias"].double())  # (5, 6)
    want = hidden @ head["weight"].double().T + head["bias"].double()  # (5, 3)
    output = expect_shape(report["output"], (5, 3), f"{what}: the model's output").double()
    if not torch.allclose(output, want, atol=1e-5, rtol=1e-4):
        dropped = int(((output == 0) != (want == 0)).sum())
        fail(f"{what}: the output is not the body's in eval mode (largest difference "
             f"{(output - want).abs().max().item():.3g}{f', {dropped} entries zeroed' if dropped else ''}): the body's "
             "Dropout still drops, so the body is still in training mode. Call module.eval() as well; MiniGPT-4 keeps "
             "its frozen ViT, Q-Former and LLM in eval mode, so dropout and the like behave as at inference.")
    expect_close(report["head"]["weight"], head["weight"].double() - lr * (c.double().T @ hidden),
                 f"{what}: the head's weight after the step (the head is not frozen, so it trains)",
                 hint="freeze(body) must leave every other module's parameters trainable.")
    expect_close(report["head"]["bias"], head["bias"].double() - lr * c.double().sum(0),
                 f"{what}: the head's bias after the step", hint="freeze(body) must leave the head trainable.")


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
