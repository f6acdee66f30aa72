"""The reference solution of the minigpt4 topic, held against independent references: the
numbers of the MiniGPT-4 paper and repository (32 query tokens of width 768, one trained
Linear(768, LLM hidden), the prompt '###Human: <Img><ImageHere></Img> {} ###Assistant: '),
torch's own operators, and hand-worked values. These are the project's own tests; they run the
solution in this process."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "minigpt4.py", "minigpt4_solution")


def _model(dim=16, seed=0):
    torch.manual_seed(seed)
    model = sol.MiniGPT4(llm_dim=dim)
    with torch.no_grad():  # make the frozen encoder's queries distinct, so the image matters
        model.visual_encoder.query_tokens.normal_()
    return model


# --- facts ---------------------------------------------------------------------------------


def test_constants_are_the_papers():
    assert sol.NUM_QUERY_TOKENS == 32 and sol.QFORMER_WIDTH == 768
    assert sol.PROMPT_TEMPLATE == "###Human: <Img><ImageHere></Img> {instruction} ###Assistant: "
    assert sol.END_SYM == "###" and sol.IGNORE_INDEX == -100


def test_projector_into_vicuna_7b_has_3_1_million_parameters():
    # Vicuna-7B's hidden size is 4096: one Linear(768, 4096) is the whole trained part.
    projector = nn.Linear(sol.QFORMER_WIDTH, 4096)
    assert sol.trainable_parameter_count(projector) == 768 * 4096 + 4096 == 3_149_824


def test_encoder_gives_32_tokens_of_width_768():
    encoder = sol.FrozenImageEncoder()
    assert encoder(torch.randn(3, 3, 16, 16)).shape == (3, 32, 768)


# --- freeze ----------------------------------------------------------------------------------


def test_freeze_and_count():
    llm = sol.TinyLLM(20, 8)
    total = sum(p.numel() for p in llm.parameters())
    assert total == 20 * 8 + 4 * 8 + (8 * 24 + 24) + (8 * 8 + 8) + (8 * 32 + 32) + (32 * 8 + 8) + 20 * 8
    assert sol.trainable_parameter_count(llm) == total
    assert sol.freeze(llm.mlp) is llm.mlp
    assert sol.trainable_parameter_count(llm) == total - (8 * 32 + 32) - (32 * 8 + 8)
    assert sol.freeze(llm) is llm and not llm.training
    assert sol.trainable_parameter_count(llm) == 0


def test_minigpt4_trains_only_the_projector():
    model = sol.MiniGPT4(llm_dim=16)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["llama_proj.weight", "llama_proj.bias"]
    assert sol.trainable_parameter_count(model) == 768 * 16 + 16
    model.train()
    assert model.training and model.llama_proj.training
    assert not model.visual_encoder.training and not model.llama_model.training


# --- tokenizer and stand-ins -------------------------------------------------------------------


def test_tokenizer_round_trip_and_padding():
    tok = sol.CharTokenizer()
    text = "###Human: <Img></Img> What? ###Assistant: "
    ids = tok.encode(text)
    assert len(ids) == len(text) and min(ids) >= 4 and max(ids) < tok.vocab_size
    assert tok.decode(ids) == text
    assert tok.encode(" ~") == [4, 98]
    ids, mask = tok.batch_encode(["ab", "abcd"])
    assert ids.tolist() == [[69, 70, 0, 0], [69, 70, 71, 72]] and mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_tiny_llm_is_causal_and_ignores_right_padding():
    torch.manual_seed(1)
    llm = sol.TinyLLM(30, 8).eval()
    x = torch.randn(2, 6, 8)
    logits = llm(x)
    y = x.clone()
    y[:, 4:] = torch.randn(2, 2, 8)
    assert torch.allclose(llm(y)[:, :4], logits[:, :4], atol=1e-6)  # the future does not leak back
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6])
    assert torch.allclose(llm(y, mask)[0, :4], logits[0, :4], atol=1e-6)  # right padding changes nothing before it


def test_causal_lm_loss_matches_cross_entropy_on_the_shifted_answer():
    torch.manual_seed(2)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 1, 2, 6, 5]])
    by_hand = [
        -logits[b, t - 1].log_softmax(-1)[labels[b, t]] for b in range(2) for t in range(1, 5) if labels[b, t] >= 0
    ]
    assert sol.causal_lm_loss(logits, labels).item() == pytest.approx(torch.stack(by_hand).mean().item(), rel=1e-6)


# --- prompt, splicing, labels ------------------------------------------------------------------


def test_prompt_parts_split_the_filled_template():
    before, after = sol.prompt_parts("Describe this image in detail.")
    assert before == "###Human: <Img>"
    assert after == "</Img> Describe this image in detail. ###Assistant: "
    assert (
        before + "<ImageHere>" + after
        == "###Human: <Img><ImageHere></Img> Describe this image in detail. ###Assistant: "
    )
    with pytest.raises(ValueError):
        sol.prompt_parts("two <ImageHere> placeholders")


def test_splice_is_cat_with_the_prompt_expanded():
    before, image, after = torch.randn(1, 3, 4), torch.randn(2, 5, 4), torch.randn(1, 2, 4)
    out = sol.splice_image_tokens(before, image, after)
    assert out.shape == (2, 10, 4)
    for b in range(2):
        assert (
            torch.equal(out[b, :3], before[0])
            and torch.equal(out[b, 3:8], image[b])
            and torch.equal(out[b, 8:], after[0])
        )


def test_build_labels_hand_worked():
    labels = sol.build_labels(torch.tensor([[7, 8, 9, 0], [5, 6, 0, 0]]), 3, 0)
    assert labels.tolist() == [[-100, -100, -100, 7, 8, 9, -100], [-100, -100, -100, 5, 6, -100, -100]]
    assert labels.dtype == torch.long


def test_prepare_inputs_puts_the_image_where_the_placeholder_was():
    model = _model()
    tok = model.tokenizer
    image = torch.randn(2, 3, 16, 16)
    embeds, mask, labels = model.prepare_inputs(image, "Describe it.", ["a cat", "a red dog"])
    before, after = "###Human: <Img>", "</Img> Describe it. ###Assistant: "
    n_b, n_a = len(before), len(after)
    E = model.llama_model.embed_tokens.weight
    first_image = 1 + n_b  # after <s> and the 15 characters before <ImageHere>
    assert torch.equal(embeds[:, 0], E[1].expand(2, -1))
    assert torch.equal(embeds[0, 1:first_image], E[tok.encode(before)])
    with torch.no_grad():
        projected = model.llama_proj(model.visual_encoder(image))
    assert torch.allclose(embeds[:, first_image : first_image + 32], projected)
    assert torch.equal(embeds[1, first_image + 32 : first_image + 32 + n_a], E[tok.encode(after)])
    answers = tok.encode("a red dog###")
    context = 1 + n_b + 32 + n_a
    assert embeds.shape[1] == context + len(answers) == labels.shape[1] == mask.shape[1]
    assert labels[1, :context].eq(-100).all() and labels[1, context:].tolist() == answers
    short = tok.encode("a cat###")
    assert labels[0, context:].tolist() == short + [-100] * (len(answers) - len(short))
    assert mask[0].tolist() == [1] * (context + len(short)) + [0] * (len(answers) - len(short))
    assert mask[1].eq(1).all()


def test_loss_scores_the_answer_only():
    model = _model(seed=3)
    image = torch.randn(2, 3, 16, 16)
    embeds, mask, labels = model.prepare_inputs(image, "What is it?", ["a bird", "sky"])
    logits = model.llama_model(embeds, mask)
    keep = labels[:, 1:] != -100
    expected = F.cross_entropy(logits[:, :-1][keep], labels[:, 1:][keep])
    assert model(image, "What is it?", ["a bird", "sky"]).item() == pytest.approx(expected.item(), rel=1e-6)
    assert keep.sum() == len("a bird###") + len("sky###")


# --- training ------------------------------------------------------------------------------------


def test_gradients_reach_the_projector_only():
    model = _model(seed=4)
    model(torch.randn(2, 3, 16, 16), "Describe it.", ["a cat", "dogs"]).backward()
    with_grad = [n for n, p in model.named_parameters() if p.grad is not None]
    assert with_grad == ["llama_proj.weight", "llama_proj.bias"]
    assert model.llama_proj.weight.grad.abs().sum() > 0


def test_projector_gradient_matches_finite_differences():
    model = _model(seed=5).double()
    image = torch.randn(1, 3, 16, 16, dtype=torch.float64)

    def loss():
        return model(image, "Describe it.", ["a cat"])

    loss().backward()
    grad = model.llama_proj.bias.grad.clone()
    for i in (0, 7):
        with torch.no_grad():
            model.llama_proj.bias[i] += 1e-6
            up = loss().item()
            model.llama_proj.bias[i] -= 2e-6
            down = loss().item()
            model.llama_proj.bias[i] += 1e-6
        assert grad[i].item() == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-8)


def test_train_step_changes_only_the_projector_and_learns():
    model = _model(seed=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = sol.configure_optimizer(model, lr=1e-2)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["weight_decay"] == 0.05 and len(optimizer.param_groups[0]["params"]) == 2
    image = torch.randn(2, 3, 16, 16)
    losses = [sol.train_step(model, optimizer, image, "Describe it.", ["a cat", "two dogs"]) for _ in range(10)]
    assert all(isinstance(x, float) for x in losses)
    # The frozen LLM is random here, so the image can only move the loss a little; it must move down.
    assert losses[-1] < losses[0] - 0.01
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["llama_proj.weight", "llama_proj.bias"]


def test_train_step_is_one_adamw_step():
    model = _model(seed=7)
    twin = _model(seed=7)
    twin.load_state_dict(model.state_dict())
    image = torch.randn(2, 3, 16, 16)
    sol.train_step(model, sol.configure_optimizer(model, lr=1e-3), image, "Hi.", ["a", "b"])
    loss = twin(image, "Hi.", ["a", "b"])
    weight, bias = twin.llama_proj.weight, twin.llama_proj.bias
    g_w, g_b = torch.autograd.grad(loss, [weight, bias])
    # AdamW's first step: p - lr * wd * p - lr * g / (|g| + eps), bias corrections cancel.
    for p, g, got in ((weight, g_w, model.llama_proj.weight), (bias, g_b, model.llama_proj.bias)):
        want = p.detach() * (1 - 1e-3 * 0.05) - 1e-3 * g / (g.abs() + 1e-8)
        assert torch.allclose(got, want, atol=1e-6)
