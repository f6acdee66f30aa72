"""Checks for the prompt, the splicing of image tokens into it, and the labels.

Visible checks use MiniGPT-4's prompt written out here and small hand-worked tensors whose
values say where each piece went; hidden checks draw sizes from the run's seed and compare
with the reference solution.
"""
import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, fail

pytestmark = pytest.mark.exercise("splice_image_tokens")

# MiniGPT-4's second-stage prompt (prompt_template '###Human: {} ###Assistant: ' around
# '<Img><ImageHere></Img> {instruction}').
TEMPLATE = "###Human: <Img><ImageHere></Img> {} ###Assistant: "
WORDS = ["Describe", "this", "image", "in", "detail.", "What", "is", "shown", "here?", "Tell", "me", "about", "it."]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


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


def _splice_suspects(before, image, after):
    B = image.size(0)
    b, a = before.expand(B, -1, -1), after.expand(B, -1, -1)
    return {
        "put the image tokens first: they go between the two halves of the prompt, [before, image, after]":
            torch.cat([image, b, a], dim=1),
        "put the image tokens after the whole prompt: they replace <ImageHere>, between before and after":
            torch.cat([b, a, image], dim=1),
        "swapped the two halves of the prompt: [before, image, after]": torch.cat([a, image, b], dim=1),
    }


def _expect_splice(got, before, image, after, what):
    B = image.size(0)
    expected = torch.cat([before.expand(B, -1, -1), image, after.expand(B, -1, -1)], dim=1)
    length = f"{before.size(1)} + {image.size(1)} + {after.size(1)}"
    expect_shape(got, expected.shape, what,
                 hint=f"Concatenate along time (dim=1): {length} positions, for each of the {B} images "
                      "(expand a batch-1 prompt to the batch).")
    expect_close(got, expected, what, suspects=_splice_suspects(before, image, after), atol=0, rtol=0,
                 hint="Expected torch.cat([before, image_tokens, after], dim=1).")


def test_splice_puts_the_image_between_the_halves(impl):
    D = 4
    before = torch.arange(3 * D, dtype=torch.float32).view(1, 3, D)  # one prompt, values 0..11
    image = 100 + torch.arange(2 * 5 * D, dtype=torch.float32).view(2, 5, D)  # two images, values 100..139
    after = 200 + torch.arange(2 * D, dtype=torch.float32).view(1, 2, D)  # values 200..207
    _expect_splice(impl.splice_image_tokens(before, image, after), before, image, after,
                   "`splice_image_tokens(before (1, 3, 4), image_tokens (2, 5, 4), after (1, 2, 4))`")
    before2, after2 = before.expand(2, -1, -1).contiguous(), after.expand(2, -1, -1).contiguous()
    _expect_splice(impl.splice_image_tokens(before2, image, after2), before2, image, after2,
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
    got = impl.splice_image_tokens(before, image, after)
    expect_close(got, ref.splice_image_tokens(before, image, after), what,
                 suspects=_splice_suspects(before, image, after), atol=0, rtol=0)


# --- build_labels --------------------------------------------------------------------------


def _labels_suspects(answer_ids, context_len, pad_id):
    B = answer_ids.size(0)
    ignored = torch.full((B, context_len), -100, dtype=torch.long)
    masked = answer_ids.masked_fill(answer_ids == pad_id, -100)
    return {
        "left the answer's padding in the labels: padding must be -100 too, or the model learns to predict pads":
            torch.cat([ignored, answer_ids], dim=1),
        f"filled the context with {pad_id} (the pad id) instead of -100: only -100 is ignored by the loss":
            torch.cat([torch.full((B, context_len), pad_id, dtype=torch.long), masked], dim=1),
        "filled the context with 0 instead of -100: only -100 is ignored by the loss":
            torch.cat([torch.zeros(B, context_len, dtype=torch.long), masked], dim=1),
        "put the answer before the context: the answer comes last": torch.cat([masked, ignored], dim=1),
    }


def _expect_labels(got, answer_ids, context_len, pad_id, expected, what):
    expected = expected.long()
    got = expect_shape(got, expected.shape, what,
                       hint=f"One label per position: {context_len} for the context, then "
                            f"{answer_ids.size(1)} for the answer.")
    if got.dtype.is_floating_point:
        fail(f"{what}: expected integer labels (torch.long, like the ids), got {got.dtype}.")
    got = got.long()
    if torch.equal(got, expected):
        return
    for label, value in _labels_suspects(answer_ids, context_len, pad_id).items():
        if torch.equal(got, value):
            fail(f"{what}: wrong labels ({got[0].tolist()} in row 0, expected {expected[0].tolist()}). "
                 f"Your result matches what you get if you {label}.")
    expect_equal(got, expected, what,
                 hint="Expected -100 on the context and on the answer's padding, the answer's ids elsewhere.")


def test_build_labels_hand_worked(impl):
    answer_ids = torch.tensor([[7, 8, 9, 0], [5, 6, 0, 0]])
    expected = torch.tensor([[-100, -100, -100, 7, 8, 9, -100],
                             [-100, -100, -100, 5, 6, -100, -100]])
    _expect_labels(impl.build_labels(answer_ids, 3, 0), answer_ids, 3, 0, expected,
                   "`build_labels([[7, 8, 9, 0], [5, 6, 0, 0]], context_len=3, pad_id=0)`")
    answer_ids = torch.tensor([[4, 4, 9]])
    _expect_labels(impl.build_labels(answer_ids, 2, 4), answer_ids, 2, 4, torch.tensor([[-100, -100, -100, -100, 9]]),
                   "`build_labels([[4, 4, 9]], context_len=2, pad_id=4)` (every 4 is padding)")


@pytest.mark.hidden
def test_build_labels_random(impl, ref, seed):
    g = _gen(seed)
    B, T, context_len, pad_id = _randint(g, 1, 6), _randint(g, 1, 12), _randint(g, 0, 50), _randint(g, 0, 4)
    answer_ids = torch.randint(4, 99, (B, T), generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    answer_ids[torch.arange(T) >= lengths[:, None]] = pad_id  # right padding
    _expect_labels(impl.build_labels(answer_ids, context_len, pad_id), answer_ids, context_len, pad_id,
                   ref.build_labels(answer_ids, context_len, pad_id),
                   f"`build_labels(answer_ids {tuple(answer_ids.shape)}, context_len={context_len}, pad_id={pad_id})`")
