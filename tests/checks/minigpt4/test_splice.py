"""Checks for the prompt, the splicing of image tokens into it, and the labels.

Visible checks use MiniGPT-4's prompt written out here, small hand-worked tensors whose values
say where each piece went, and the answers recorded from the reference solution
(tests/checks/minigpt4/recorded.json), which name a wrong answer after the known mistake it matches.
"""
import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

pytestmark = pytest.mark.exercise("splice_image_tokens")

# MiniGPT-4's second-stage prompt (prompt_template '###Human: {} ###Assistant: ' around
# '<Img><ImageHere></Img> {instruction}').
TEMPLATE = "###Human: <Img><ImageHere></Img> {} ###Assistant: "
WORDS = ["Describe", "this", "image", "in", "detail.", "What", "is", "shown", "here?", "Tell", "me", "about", "it."]


# --- prompt_parts --------------------------------------------------------------------------


def _expect_part(got, want, which, instruction):
    what = f"`prompt_parts({instruction!r})`: the text {which} <ImageHere>"
    if not isinstance(got, str):
        fail(f"{what}: expected a string, got {type(got).__name__}.")
    if got == want:
        return
    if "<ImageHere>" in got:
        fail(f"{what} still contains the placeholder: split the prompt at '<ImageHere>' and drop it. Got {got!r}.")
    if got.rstrip() == want.rstrip():
        fail(f"{what}: expected {want!r}, got {got!r}: keep the trailing space of the template "
             "('###Assistant: ' ends with a space; the answer follows it).")
    if got.strip() == want.strip():
        fail(f"{what}: expected {want!r}, got {got!r}: keep the spaces of the template exactly; do not strip.")
    fail(f"{what}: expected {want!r}, got {got!r}. The prompt is {TEMPLATE!r} with the instruction filled in.")


def _pair(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (before, after), got {type(result).__name__}.")
    return result


def test_prompt_parts_follow_the_template(impl):
    instruction = "Describe this image in detail."
    before, after = _pair(impl.prompt_parts(instruction), f"`prompt_parts({instruction!r})`")
    _expect_part(before, "###Human: <Img>", "before", instruction)
    _expect_part(after, "</Img> Describe this image in detail. ###Assistant: ", "after", instruction)


@pytest.mark.hidden
def test_prompt_parts_random_instruction(impl, ref, seed):
    g = _gen(seed)
    instruction = " ".join(WORDS[_randint(g, 0, len(WORDS))] for _ in range(_randint(g, 1, 7)))
    want_before, want_after = ref.prompt_parts(instruction)
    before, after = _pair(impl.prompt_parts(instruction), f"`prompt_parts({instruction!r})`")
    _expect_part(before, want_before, "before", instruction)
    _expect_part(after, want_after, "after", instruction)


# --- splice_image_tokens -------------------------------------------------------------------


def _expect_splice(got, expected, B, lengths, what):
    expect_shape(got, expected.shape, what,
                 hint=f"Concatenate along time (dim=1): {lengths} positions, for each of the {B} images "
                      "(expand a batch-1 prompt to the batch).")
    expect_close(got, expected, what, atol=0, rtol=0, hint="Expected [before, image_tokens, after] along time.")


def test_splice_puts_the_image_between_the_halves(impl, recorded):
    D = 4
    before = torch.arange(3 * D, dtype=torch.float32).view(1, 3, D)  # one prompt, values 0..11
    image = 100 + torch.arange(2 * 5 * D, dtype=torch.float32).view(2, 5, D)  # two images, values 100..139
    after = 200 + torch.arange(2 * D, dtype=torch.float32).view(1, 2, D)  # values 200..207
    expected = recorded.splice_image_tokens(before, image, after)
    _expect_splice(impl.splice_image_tokens(before, image, after), expected, 2, "3 + 5 + 2",
                   "`splice_image_tokens(before (1, 3, 4), image_tokens (2, 5, 4), after (1, 2, 4))`")
    before2, after2 = before.expand(2, -1, -1).contiguous(), after.expand(2, -1, -1).contiguous()
    expected = recorded.splice_image_tokens(before2, image, after2)
    _expect_splice(impl.splice_image_tokens(before2, image, after2), expected, 2, "3 + 5 + 2",
                   "`splice_image_tokens` with before and after already of batch 2")


@pytest.mark.hidden
def test_splice_random_sizes(impl, ref, seed):
    g = _gen(seed)
    B, T_b, Q, T_a, D = (_randint(g, lo, hi) for lo, hi in ((1, 5), (1, 9), (1, 33), (1, 12), (2, 17)))
    image = torch.randn(B, Q, D, generator=g)
    before = torch.randn(1 if seed % 2 else B, T_b, D, generator=g)
    after = torch.randn(1 if seed % 3 else B, T_a, D, generator=g)
    what = (f"`splice_image_tokens(before {tuple(before.shape)}, image_tokens {tuple(image.shape)}, "
            f"after {tuple(after.shape)})`")
    _expect_splice(impl.splice_image_tokens(before, image, after), ref.splice_image_tokens(before, image, after), B,
                   f"{T_b} + {Q} + {T_a}", what)


# --- build_labels --------------------------------------------------------------------------


def _expect_labels(got, expected, context_len, answer_len, what):
    got = expect_shape(got, expected.shape, what,
                       hint=f"One label per position: {context_len} for the context, then {answer_len} for the answer.")
    if got.dtype.is_floating_point:
        fail(f"{what}: expected integer labels (torch.long, like the ids), got {got.dtype}.")
    expect_equal(got.long(), expected.long(), what,
                 hint="Expected -100 on the context and on the answer's padding, the answer's ids elsewhere.")


def test_build_labels_hand_worked(impl, recorded):
    answer_ids = torch.tensor([[4, 4, 9]])
    recorded.build_labels(answer_ids, 2, 4)
    _expect_labels(impl.build_labels(answer_ids, 2, 4), torch.tensor([[-100, -100, -100, -100, 9]]), 2, 3,
                   "`build_labels([[4, 4, 9]], context_len=2, pad_id=4)` (every 4 is padding)")
    answer_ids = torch.tensor([[7, 8, 9, 0], [5, 6, 0, 0]])
    recorded.build_labels(answer_ids, 3, 0)
    expected = torch.tensor([[-100, -100, -100, 7, 8, 9, -100],
                             [-100, -100, -100, 5, 6, -100, -100]])
    _expect_labels(impl.build_labels(answer_ids, 3, 0), expected, 3, 4,
                   "`build_labels([[7, 8, 9, 0], [5, 6, 0, 0]], context_len=3, pad_id=0)`")


@pytest.mark.hidden
def test_build_labels_random(impl, ref, seed):
    g = _gen(seed)
    B, T, context_len, pad_id = _randint(g, 1, 6), _randint(g, 1, 12), _randint(g, 0, 50), _randint(g, 0, 4)
    answer_ids = torch.randint(4, 99, (B, T), generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    answer_ids[torch.arange(T) >= lengths[:, None]] = pad_id  # right padding
    _expect_labels(impl.build_labels(answer_ids, context_len, pad_id), ref.build_labels(answer_ids, context_len, pad_id),
                   context_len, T,
                   f"`build_labels(answer_ids {tuple(answer_ids.shape)}, context_len={context_len}, pad_id={pad_id})`")
