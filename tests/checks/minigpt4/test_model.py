"""Checks for MiniGPT4.encode_img and prepare_inputs, and for one training step.

Visible checks compose the expected inputs here, in the grader, from the model's weights (read
with state_dict), the frozen encoder's output and the course's tokenizer: <s>, the prompt
before <ImageHere>, the projected image tokens, the prompt after, the answers. Hidden checks
load the learner's weights into the reference solution and compare, and replay the training
steps with an optimizer loop written here.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from grader.checking import expect_close, expect_number, expect_shape, fail

TEMPLATE = "###Human: <Img><ImageHere></Img> {} ###Assistant: "
END_SYM = "###"
NUM_QUERY_TOKENS = 32
BOS = 1
WORDS = ["Describe", "this", "image", "in", "detail.", "What", "is", "shown", "here?", "a", "cat", "dog", "red", "on",
         "the", "grass", "two", "birds", "sky", "blue"]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


def _model(impl, dim, seed):
    """A MiniGPT4 from the learner's code with weights drawn here; returns (handle, state dict)."""
    model = impl.MiniGPT4(llm_dim=dim)
    g = _gen(seed)
    state = {}
    for name, t in sorted(model.state_dict().items()):
        if name.endswith("query_tokens"):
            state[name] = torch.randn(t.shape, generator=g)
        elif name.endswith("bias"):
            state[name] = 0.1 * torch.randn(t.shape, generator=g)
        elif t.dim() == 1:  # LayerNorm gains
            state[name] = 1 + 0.1 * torch.randn(t.shape, generator=g)
        else:
            state[name] = torch.randn(t.shape, generator=g) / math.sqrt(t.shape[-1])
    model.load_state_dict(state)
    return model, state


def _batch(g, B):
    image = torch.randn(B, 3, 16, 16, generator=g)
    instruction = " ".join(WORDS[_randint(g, 0, 9)] for _ in range(_randint(g, 1, 5)))
    answers = [" ".join(WORDS[_randint(g, 9, len(WORDS))] for _ in range(_randint(g, 1, 4))) for _ in range(B)]
    return image, instruction, answers


class _Pieces:
    """The parts of MiniGPT-4's input, composed in the grader."""

    def __init__(self, model, state, image, instruction, answers):
        tok = model.tokenizer
        before, after = TEMPLATE.format(instruction).split("<ImageHere>")
        E = state["llama_model.embed_tokens.weight"]
        B = image.size(0)
        self.B, self.dim = B, E.size(1)
        self.query_output = model.visual_encoder(image)  # (B, 32, 768) from the frozen stand-in
        self.image_tokens = self.query_output @ state["llama_proj.weight"].T + state["llama_proj.bias"]  # (B, 32, D)
        self.before_ids, self.after_ids = torch.tensor(tok.encode(before)), torch.tensor(tok.encode(after))
        self.bos = E[torch.full((B, 1), BOS)]
        self.before, self.after = E[self.before_ids].expand(B, -1, -1), E[self.after_ids].expand(B, -1, -1)
        self.answer_ids, self.answer_mask = tok.batch_encode([a + END_SYM for a in answers])
        self.answers = E[self.answer_ids]
        self.context_len = 1 + len(self.before_ids) + NUM_QUERY_TOKENS + len(self.after_ids)

    def embeds(self, variant="ok"):
        order = {
            "ok": [self.bos, self.before, self.image_tokens, self.after, self.answers],
            "image_first": [self.bos, self.image_tokens, self.before, self.after, self.answers],
            "image_after_prompt": [self.bos, self.before, self.after, self.image_tokens, self.answers],
        }[variant]
        return torch.cat(order, dim=1)

    def mask(self, variant="ok"):
        answer_mask = torch.ones_like(self.answer_mask) if variant == "pads_attended" else self.answer_mask
        return torch.cat([torch.ones(self.B, self.context_len, dtype=torch.long), answer_mask], dim=1)

    def labels(self, variant="ok"):
        ignored = torch.full((self.B, self.context_len), -100, dtype=torch.long)
        answer = self.answer_ids if variant == "pads_kept" else self.answer_ids.masked_fill(self.answer_ids == 0, -100)
        return torch.cat([ignored, answer], dim=1)

    def length_diagnosis(self, got_len, name, embeds_ok):
        """Why `name` has `got_len` positions instead of the expected number."""
        want = self.context_len + self.answer_ids.size(1)
        short = want - got_len
        missing = {
            1: "the <s> position",
            NUM_QUERY_TOKENS: "the 32 image positions",
            len(END_SYM): f"END_SYM: every answer ends with {END_SYM!r}",
            len(self.before_ids): "the prompt before <ImageHere>",
            len(self.after_ids): "the prompt after <ImageHere>",
        }.get(short)
        parts = (f"1 (<s>) + {len(self.before_ids)} (prompt before <ImageHere>) + {NUM_QUERY_TOKENS} (image) + "
                 f"{len(self.after_ids)} (prompt after) + {self.answer_ids.size(1)} (answers with {END_SYM!r}, padded)")
        message = f"{name} has {got_len} positions; expected {want}: {parts}."
        if embeds_ok and missing:
            message += (f" inputs_embeds has the right length, so {name} leaves out {missing}: it needs an entry "
                        "for every position of inputs_embeds (context_len = 1 + the wrapped prompt's length).")
        elif missing:
            message += f" Likely missing: {missing}."
        elif short == -1:
            message += " There is one position too many; only one <s> goes first."
        return message


def _triple(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        fail(f"{what}: expected (inputs_embeds, attention_mask, labels), got {type(result).__name__}.")
    return result


def _expect_inputs(result, pieces, what, expected=None):
    """Compare (inputs_embeds, attention_mask, labels) with `expected` (default: composed here)."""
    embeds, mask, labels = _triple(result, what)
    want_embeds, want_mask, want_labels = expected or (pieces.embeds(), pieces.mask(), pieces.labels())
    embeds_ok = isinstance(embeds, torch.Tensor) and embeds.dim() == 3 and embeds.size(1) == want_embeds.size(1)
    for name, got, want in (("inputs_embeds", embeds, want_embeds), ("attention_mask", mask, want_mask),
                            ("labels", labels, want_labels)):
        if not isinstance(got, torch.Tensor):
            fail(f"{what}: {name} should be a tensor, got {type(got).__name__}.")
        if got.dim() >= 2 and got.size(1) != want.size(1):
            fail(f"{what}: {pieces.length_diagnosis(got.size(1), name, embeds_ok)}")
    expect_close(embeds, want_embeds, f"{what}: inputs_embeds", suspects={
        "put the image tokens right after <s>: they replace <ImageHere>, between the two halves of the prompt":
            pieces.embeds("image_first"),
        "put the image tokens after the whole prompt: they replace <ImageHere>, between the two halves":
            pieces.embeds("image_after_prompt"),
    }, hint="Expected [<s>, prompt before, llama_proj(encoder output), prompt after, answers] along dim 1.")
    got_mask = expect_shape(mask, want_mask.shape, f"{what}: attention_mask")
    if not torch.equal(got_mask.long(), want_mask):
        if torch.equal(got_mask.long(), pieces.mask("pads_attended")):
            fail(f"{what}: attention_mask is 1 on the answers' padding: use the mask from batch_encode "
                 "for the answer positions (1 on the prompt and image positions).")
        fail(f"{what}: attention_mask differs from the expected one (1 on <s>, prompt and image, then the "
             f"answers' mask). Row 0: expected {want_mask[0].tolist()}, got {got_mask[0].long().tolist()}.")
    got_labels = expect_shape(labels, want_labels.shape, f"{what}: labels").long()
    if not torch.equal(got_labels, want_labels):
        if torch.equal(got_labels, pieces.labels("pads_kept")):
            fail(f"{what}: labels keep the answers' padding ids: padding must be -100 too.")
        wrong = (got_labels != want_labels).nonzero()[0].tolist()
        where = "the context (<s>, prompt, image)" if wrong[1] < pieces.context_len else "the answers"
        fail(f"{what}: labels differ at {wrong}, in {where}: expected {want_labels[tuple(wrong)].item()}, got "
             f"{got_labels[tuple(wrong)].item()}. Every context position gets -100, every answer position "
             "its token id (-100 on padding).")


# --- prepare_inputs ------------------------------------------------------------------------


@pytest.mark.exercise("prepare_inputs")
def test_encode_img_projects_to_llm_width(impl):
    model, state = _model(impl, 16, 0)
    image = torch.randn(2, 3, 16, 16, generator=_gen(1))
    query_output = model.visual_encoder(image)
    expected = query_output @ state["llama_proj.weight"].T + state["llama_proj.bias"]
    got = model.encode_img(image)
    expect_shape(got, (2, NUM_QUERY_TOKENS, 16), "`model.encode_img(image)` for 2 images and llm_dim 16",
                 hint="Run the frozen visual_encoder (B, 32, 768), then llama_proj to (B, 32, llm_dim).")
    expect_close(got, expected, "`model.encode_img(image)`", hint="Expected llama_proj(visual_encoder(image)).")


@pytest.mark.exercise("prepare_inputs")
@pytest.mark.points(2)
def test_prepare_inputs_layout(impl):
    model, state = _model(impl, 16, 2)
    image = torch.randn(2, 3, 16, 16, generator=_gen(3))
    instruction, answers = "Describe this image.", ["a cat", "two red birds"]
    pieces = _Pieces(model, state, image, instruction, answers)
    _expect_inputs(model.prepare_inputs(image, instruction, answers), pieces,
                   f"`model.prepare_inputs(image, {instruction!r}, {answers!r})`")


@pytest.mark.exercise("prepare_inputs")
@pytest.mark.hidden
def test_prepare_inputs_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    dim, B = _randint(g, 4, 33), _randint(g, 1, 5)
    model, state = _model(impl, dim, seed + 1)
    image, instruction, answers = _batch(g, B)
    reference = ref.MiniGPT4(llm_dim=dim)
    reference.load_state_dict(state)
    with torch.no_grad():
        expected = reference.prepare_inputs(image, instruction, answers)
    _expect_inputs(model.prepare_inputs(image, instruction, answers), _Pieces(model, state, image, instruction, answers),
                   f"`MiniGPT4(llm_dim={dim}).prepare_inputs(image, {instruction!r}, {answers!r})`", expected)


# --- train_step ----------------------------------------------------------------------------


def _expected_loss(model, pieces):
    """The answers' next-token loss, from the frozen LLM's logits on the inputs composed here."""
    logits = model.llama_model(pieces.embeds(), pieces.mask())  # (B, T, V)
    labels = pieces.labels()
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).double(), labels[:, 1:].reshape(-1),
                           ignore_index=-100).item()


def _changes(before, after):
    return sorted(name for name in before if not torch.equal(before[name], after[name]))


def _clone(state):
    return {name: t.detach().clone() for name, t in state.items()}


@pytest.mark.exercise("train_step")
@pytest.mark.points(2)
def test_train_step_changes_only_the_projector(impl):
    model, state = _model(impl, 16, 4)
    image = torch.randn(2, 3, 16, 16, generator=_gen(5))
    instruction, answers = "What is shown here?", ["a dog on the grass", "blue sky"]
    expected_loss = _expected_loss(model, _Pieces(model, state, image, instruction, answers))
    optimizer = impl.configure_optimizer(model, lr=1e-2)
    losses = []
    for step in range(3):
        loss = impl.train_step(model, optimizer, image, instruction, answers)
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            fail(f"`train_step` returned {type(loss).__name__}; return the loss as a Python float, loss.item().")
        losses.append(loss)
    expect_number(losses[0], expected_loss, "the loss `train_step` returned on its first call", rel=1e-4,
                  hint="Return the loss computed before optimizer.step(): the model's loss on this batch.")
    after = _clone(model.state_dict())
    changed = _changes(state, after)
    others = [name for name in changed if not name.startswith("llama_proj.")]
    if others:
        parts = sorted({name.split(".")[0] for name in others})
        fail(f"after 3 training steps, weights outside the projector changed, in {', '.join(parts)} "
             f"(e.g. {others[0]}): the image encoder and the LLM must stay frozen. Give the optimizer only "
             "the parameters that require gradients, and freeze the rest.")
    if "llama_proj.weight" not in changed:
        fail("after 3 training steps llama_proj.weight has not changed: call loss.backward() and "
             "optimizer.step() in train_step, with an optimizer over the projector's parameters.")
    if not losses[-1] < losses[0]:
        fail(f"the loss did not go down over 3 steps on the same batch ({', '.join(f'{x:.4f}' for x in losses)}): "
             "zero the gradients before each backward and step the optimizer after it.")


def _reference_steps(ref, dim, state, batches, lr, *, zero_grad=True, weight_decay=0.05):
    """Train the reference model from `state` with a plain AdamW loop; returns (losses, state)."""
    model = ref.MiniGPT4(llm_dim=dim)
    model.load_state_dict(state)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    losses = []
    for image, instruction, answers in batches:
        if zero_grad:
            optimizer.zero_grad()
        loss = model(image, instruction, answers)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, _clone(model.state_dict())


@pytest.mark.exercise("train_step")
@pytest.mark.hidden
def test_train_step_matches_reference(impl, ref, seed):
    g = _gen(seed)
    dim = _randint(g, 4, 25)
    lr = [1e-3, 3e-3, 1e-2][seed % 3]
    model, state = _model(impl, dim, seed + 7)
    batches = [_batch(g, _randint(g, 1, 4)) for _ in range(2)]
    want_losses, want_state = _reference_steps(ref, dim, state, batches, lr)
    optimizer = impl.configure_optimizer(model, lr=lr)
    losses = [impl.train_step(model, optimizer, *batch) for batch in batches]
    got_state = _clone(model.state_dict())
    for i, (got, want) in enumerate(zip(losses, want_losses)):
        expect_number(got, want, f"the loss of training step {i + 1}", rel=1e-4)
    others = [name for name in _changes(state, got_state) if not name.startswith("llama_proj.")]
    if others:
        fail(f"training changed {others[0]} (and {len(others) - 1} more outside llama_proj): only the projector trains.")
    suspects = {}
    for label, kwargs in (("forgot optimizer.zero_grad(), so the second step used the sum of both steps' gradients",
                           dict(zero_grad=False)),
                          ("used no weight decay: configure_optimizer builds AdamW with weight_decay=0.05 by default",
                           dict(weight_decay=0.0))):
        suspects[label] = _reference_steps(ref, dim, state, batches, lr, **kwargs)[1]["llama_proj.weight"]
    expect_close(got_state["llama_proj.weight"], want_state["llama_proj.weight"],
                 f"llama_proj.weight after 2 training steps (lr={lr})", suspects=suspects, atol=1e-5, rtol=1e-4,
                 hint="Each step: optimizer.zero_grad(), loss = model(image, instruction, answers), loss.backward(), "
                      "optimizer.step(), with AdamW(lr, weight_decay=0.05) over the trainable parameters.")
    expect_close(got_state["llama_proj.bias"], want_state["llama_proj.bias"], "llama_proj.bias after 2 training steps",
                 atol=1e-5, rtol=1e-4)
