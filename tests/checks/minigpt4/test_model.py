"""Checks for MiniGPT4.encode_img and prepare_inputs, and for the training step.

Visible checks give the learner's MiniGPT4 weights chosen here (through load_state_dict) and
compare with the answers recorded from the reference solution on the same weights and inputs
(tests/checks/minigpt4/recorded.json): the image tokens, the LLM's inputs, and the losses and
projector bias after three training steps. A wrong answer is named after the known mistake it
matches; properties (which weights change, how long the inputs are) explain the rest.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_number, expect_shape, fail, fail_naming
from grader.checking import generator as _gen
from grader.checking import randint as _randint

NUM_QUERY_TOKENS = 32
END_SYM = "###"
BEFORE = "###Human: <Img>"  # MiniGPT-4's prompt before <ImageHere>; the course's tokenizer gives one id per character
WORDS = ["Describe", "this", "image", "in", "detail.", "What", "is", "shown", "here?", "a", "cat", "dog", "red", "on",
         "the", "grass", "two", "birds", "sky", "blue"]


def _shapes(dim, vocab=99, width=768, patch=48):
    """Parameter names and shapes of MiniGPT4(llm_dim=dim): the image encoder stand-in (16 x 16
    images in 4 x 4 patches), TinyLLM(99, dim) and the projector."""
    return {
        "visual_encoder.query_tokens": (1, NUM_QUERY_TOKENS, width),
        "visual_encoder.patch_embed.weight": (width, patch), "visual_encoder.patch_embed.bias": (width,),
        "visual_encoder.ln_vision.weight": (width,), "visual_encoder.ln_vision.bias": (width,),
        "llama_model.embed_tokens.weight": (vocab, dim),
        "llama_model.norm1.weight": (dim,), "llama_model.norm1.bias": (dim,),
        "llama_model.qkv.weight": (3 * dim, dim), "llama_model.qkv.bias": (3 * dim,),
        "llama_model.proj.weight": (dim, dim), "llama_model.proj.bias": (dim,),
        "llama_model.norm2.weight": (dim,), "llama_model.norm2.bias": (dim,),
        "llama_model.mlp.0.weight": (4 * dim, dim), "llama_model.mlp.0.bias": (4 * dim,),
        "llama_model.mlp.2.weight": (dim, 4 * dim), "llama_model.mlp.2.bias": (dim,),
        "llama_model.lm_head.weight": (vocab, dim),
        "llama_proj.weight": (dim, width), "llama_proj.bias": (dim,),
    }


def _state(dim, seed):
    g = _gen(seed)
    state = {}
    for name, shape in sorted(_shapes(dim).items()):
        if name.endswith("query_tokens"):
            state[name] = torch.randn(shape, generator=g)
        elif name.endswith("bias"):
            state[name] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:  # LayerNorm gains
            state[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[name] = torch.randn(shape, generator=g) / math.sqrt(shape[-1])
    return state


def _model(module, dim, seed):
    """MiniGPT4(llm_dim=dim) of `module` (the learner's or the recorded solution) with the weights of `seed`."""
    model = module.MiniGPT4(llm_dim=dim)
    model.load_state_dict(_state(dim, seed))
    return model


def _batch(g, B):
    image = torch.randn(B, 3, 16, 16, generator=g)
    instruction = " ".join(WORDS[_randint(g, 0, 9)] for _ in range(_randint(g, 1, 5)))
    answers = [" ".join(WORDS[_randint(g, 9, len(WORDS))] for _ in range(_randint(g, 1, 4))) for _ in range(B)]
    return image, instruction, answers


def _triple(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        fail(f"{what}: expected (inputs_embeds, attention_mask, labels), got {type(result).__name__}.")
    return result


def _length_diagnosis(got_len, name, embeds_ok, want_len, instruction, answers):
    """Why `name` has `got_len` positions instead of `want_len`."""
    after_len = len(f"</Img> {instruction} ###Assistant: ")
    answer_len = max(len(a) for a in answers) + len(END_SYM)
    missing = {
        1: "the <s> position",
        NUM_QUERY_TOKENS: "the 32 image positions",
        len(END_SYM): f"END_SYM: every answer ends with {END_SYM!r}",
        len(BEFORE): "the prompt before <ImageHere>",
        after_len: "the prompt after <ImageHere>",
    }.get(want_len - got_len)
    parts = (f"1 (<s>) + {len(BEFORE)} (prompt before <ImageHere>) + {NUM_QUERY_TOKENS} (image) + "
             f"{after_len} (prompt after) + {answer_len} (answers with {END_SYM!r}, padded)")
    message = f"{name} has {got_len} positions; expected {want_len}: {parts}."
    if embeds_ok and missing:
        message += (f" inputs_embeds has the right length, so {name} leaves out {missing}: it needs an entry "
                    "for every position of inputs_embeds (context_len = 1 + the wrapped prompt's length).")
    elif missing:
        message += f" Likely missing: {missing}."
    elif got_len - want_len == 1:
        message += " There is one position too many; only one <s> goes first."
    return message


def _expect_inputs(result, expected, instruction, answers, what):
    """Compare (inputs_embeds, attention_mask, labels) with the reference's."""
    embeds, mask, labels = _triple(result, what)
    want_embeds, want_mask, want_labels = expected
    want_len = want_embeds.size(1)
    embeds_ok = isinstance(embeds, torch.Tensor) and embeds.dim() == 3 and embeds.size(1) == want_len
    for name, got in (("inputs_embeds", embeds), ("attention_mask", mask), ("labels", labels)):
        if not isinstance(got, torch.Tensor):
            fail(f"{what}: {name} should be a tensor, got {type(got).__name__}.")
        if got.dim() >= 2 and got.size(1) != want_len:
            fail(f"{what}: {_length_diagnosis(got.size(1), name, embeds_ok, want_len, instruction, answers)}")
    expect_close(embeds, want_embeds, f"{what}: inputs_embeds",
                 hint="Expected [<s>, prompt before, llama_proj(encoder output), prompt after, answers] along dim 1.")
    expect_equal(expect_shape(mask, want_mask.shape, f"{what}: attention_mask").long(), want_mask.long(),
                 f"{what}: attention_mask", hint="Expected 1 on <s>, the prompt and the image, then the answers' mask "
                                                 "from batch_encode (0 on their padding).")
    got_labels = expect_shape(labels, want_labels.shape, f"{what}: labels").long()
    context_len = int((want_labels != -100).any(0).long().argmax())  # the first position that is scored
    wrong = (got_labels != want_labels).nonzero()
    where = "the context (<s>, prompt, image)" if len(wrong) and wrong[0, 1] < context_len else "the answers"
    expect_equal(got_labels, want_labels.long(), f"{what}: labels",
                 hint=f"The first difference is in {where}. Every context position gets -100, every answer position "
                      "its token id (-100 on padding).")


# --- prepare_inputs ------------------------------------------------------------------------


@pytest.mark.exercise("prepare_inputs")
def test_encode_img_projects_to_llm_width(impl, recorded):
    image = torch.randn(2, 3, 16, 16, generator=_gen(1))
    expected = _model(recorded, 16, 0).encode_img(image)
    got = _model(impl, 16, 0).encode_img(image)
    expect_shape(got, (2, NUM_QUERY_TOKENS, 16), "`model.encode_img(image)` for 2 images and llm_dim 16",
                 hint="Run the frozen visual_encoder (B, 32, 768), then llama_proj to (B, 32, llm_dim).")
    expect_close(got, expected, "`model.encode_img(image)`", hint="Expected llama_proj(visual_encoder(image)).")


@pytest.mark.exercise("prepare_inputs")
@pytest.mark.points(2)
def test_prepare_inputs_layout(impl, recorded):
    image = torch.randn(2, 3, 16, 16, generator=_gen(3))
    instruction, answers = "Describe this image.", ["a cat", "two red birds"]
    expected = _model(recorded, 16, 2).prepare_inputs(image, instruction, answers)
    _expect_inputs(_model(impl, 16, 2).prepare_inputs(image, instruction, answers), expected, instruction, answers,
                   f"`model.prepare_inputs(image, {instruction!r}, {answers!r})`")


@pytest.mark.exercise("prepare_inputs")
def test_image_tokens_carry_a_gradient_to_the_projector(impl, helpers):
    # The values of the inputs are right even when no graph leads back to llama_proj; train_step
    # would then fail at loss.backward(), far from the cause. Tensors come back from the worker
    # without their graph, so a helper asks there.
    image = torch.randn(2, 3, 16, 16, generator=_gen(5))
    got = helpers.projector_gradient(_model(impl, 16, 5), image, "Describe this image.", ["a cat", "a dog"])
    what = "`model.prepare_inputs(image, 'Describe this image.', ['a cat', 'a dog'])`"
    if not isinstance(got, dict) or not got.get("requires_grad"):
        fail(f"{what} returned inputs_embeds with no graph back to llama_proj (requires_grad False): the image "
             "tokens were made where no gradient is recorded, so loss.backward() in train_step has nothing to "
             "train. Only the frozen visual encoder may run without a graph; llama_proj is the layer MiniGPT-4 trains.")
    if not got.get("projector_gets_gradient"):
        fail(f"{what}: a loss on inputs_embeds gives llama_proj.weight no gradient; the image tokens must come "
             "from llama_proj, with its graph kept.")


@pytest.mark.exercise("prepare_inputs")
@pytest.mark.hidden
def test_prepare_inputs_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    dim, B = _randint(g, 4, 33), _randint(g, 1, 5)
    image, instruction, answers = _batch(g, B)
    with torch.no_grad():
        expected = _model(ref, dim, seed + 1).prepare_inputs(image, instruction, answers)
    _expect_inputs(_model(impl, dim, seed + 1).prepare_inputs(image, instruction, answers), expected, instruction,
                   answers, f"`MiniGPT4(llm_dim={dim}).prepare_inputs(image, {instruction!r}, {answers!r})`")


# --- train_step ----------------------------------------------------------------------------


def _changes(before, after):
    return sorted(name for name in before if not torch.equal(before[name], after[name]))


def _train(module, dim, seed, batches, **optimizer_args):
    """The losses `train_step` returns for `batches`, and the model it trained."""
    model = _model(module, dim, seed)
    optimizer = module.configure_optimizer(model, **optimizer_args)
    return [module.train_step(model, optimizer, *batch) for batch in batches], model


def _expect_float(loss):
    if isinstance(loss, bool) or not isinstance(loss, (int, float)):
        fail(f"`train_step` returned {type(loss).__name__}; return the loss as a Python float, loss.item().")
    return loss


@pytest.mark.exercise("train_step")
@pytest.mark.points(3)
def test_train_steps_change_only_the_projector(impl, recorded):
    # Three steps on the same batch, with AdamW's lr and weight decay given explicitly: from the
    # second step on, each loss depends on every earlier step.
    batch = (torch.randn(2, 3, 16, 16, generator=_gen(5)), "What is shown here?", ["a dog on the grass", "blue sky"])
    optimizer_args = dict(lr=1e-2, weight_decay=0.3)
    want_losses, known = _train(recorded, 16, 4, [batch] * 3, **optimizer_args)
    want_bias = known.llama_proj.bias  # the bias moves with every step too, and is 16 numbers, not 12,288
    losses, model = _train(impl, 16, 4, [batch] * 3, **optimizer_args)
    losses = [_expect_float(loss) for loss in losses]
    changed = _changes(_state(16, 4), {name: t.detach() for name, t in model.state_dict().items()})
    others = [name for name in changed if not name.startswith("llama_proj.")]
    if others:
        parts = sorted({name.split(".")[0] for name in others})
        fail(f"after 3 training steps, weights outside the projector changed, in {', '.join(parts)} "
             f"(e.g. {others[0]}): the image encoder and the LLM must stay frozen. Give the optimizer only "
             "the parameters that require gradients, and freeze the rest.")
    if "llama_proj.weight" not in changed:
        fail("after 3 training steps llama_proj.weight has not changed: call loss.backward() and "
             "optimizer.step() in train_step, with an optimizer over the projector's parameters.")
    for step, (got, want) in enumerate(zip(losses, want_losses), start=1):
        expect_number(got, want, f"the loss `train_step` returned on call {step} of 3 (same batch each time)", rel=1e-4,
                      hint="Return the loss computed before optimizer.step(). Each step is zero_grad, loss = "
                           "model(...), backward, step, with AdamW(lr, weight_decay) over the trainable parameters.")
    expect_close(model.state_dict()["llama_proj.bias"], want_bias, "llama_proj.bias after 3 training steps",
                 atol=1e-5, rtol=1e-4)


def _held(state):
    """How many parameters an optimizer's state_dict lists in its param_groups."""
    return sum(len(group["params"]) for group in state["param_groups"])


@pytest.mark.exercise("train_step")
def test_optimizer_holds_only_the_trainable_parameters(impl, recorded, helpers):
    # AdamW skips a parameter whose .grad is None, so frozen parameters in the optimizer change no
    # weight and no loss; only the optimizer's param_groups show them.
    what = "`configure_optimizer(MiniGPT4(llm_dim=4))`"
    expected = _held(recorded.configure_optimizer(recorded.MiniGPT4(llm_dim=4)).state_dict())
    model = impl.MiniGPT4(llm_dim=4)
    held = helpers.optimizer_parameters(model, impl.configure_optimizer(model))
    frozen = [name for name, needs_grad in held if not needs_grad]
    if frozen:
        fail_naming(f"{what}: the optimizer holds {len(held)} parameters, {len(frozen)} of them frozen "
                    f"(requires_grad False, e.g. {frozen[0]}); it should hold the {expected} that train.",
                    lambda answer: _held(answer) == len(held),
                    hint="An optimizer should hold only what it trains: frozen weights in it cost memory for "
                         "optimizer state, and would start to move as soon as anything gave them a gradient.")
    names = sorted(name for name, _ in held)
    if len(held) != expected or any(not name.startswith("llama_proj.") for name in names):
        fail(f"{what}: the optimizer holds {names or 'no parameters'}; expected the projector's {expected} "
             "parameters (llama_proj), and nothing else.")


@pytest.mark.exercise("train_step")
@pytest.mark.hidden
def test_train_step_matches_reference(impl, ref, seed):
    g = _gen(seed)
    dim = _randint(g, 4, 25)
    lr = [1e-3, 3e-3, 1e-2][seed % 3]
    batches = [_batch(g, _randint(g, 1, 4)) for _ in range(3)]
    want_losses, reference = _train(ref, dim, seed + 7, batches, lr=lr)
    losses, model = _train(impl, dim, seed + 7, batches, lr=lr)
    got_state = {name: t.detach() for name, t in model.state_dict().items()}
    for i, (got, want) in enumerate(zip(losses, want_losses)):
        expect_number(_expect_float(got), want, f"the loss of training step {i + 1}", rel=1e-4)
    others = [name for name in _changes(_state(dim, seed + 7), got_state) if not name.startswith("llama_proj.")]
    if others:
        fail(f"training changed {others[0]} (and {len(others) - 1} more outside llama_proj): only the projector trains.")
    for name in ("llama_proj.weight", "llama_proj.bias"):
        expect_close(got_state[name], reference.state_dict()[name], f"{name} after 3 training steps (lr={lr})",
                     atol=1e-5, rtol=1e-4,
                     hint="Each step clears the old gradients, computes the loss, back-propagates it and steps AdamW "
                          "(weight decay 0.05) over the trainable parameters.")
