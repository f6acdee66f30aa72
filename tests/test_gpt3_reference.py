"""The reference solution of the gpt3 topic, held against independent references: a GPT-2
style model built from torch modules (on the meta device, so even 175B costs no memory), the
paper's Table 2.1 and Table D.1, Figure 2.1's prompts, probabilities multiplied out by hand,
and a top-p filter written the other way round (ascending sort, as Hugging Face's warper does).
These are the project's own tests; they run the solution in this process."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from grader.judge.inprocess import load_module

ROOT = Path(__file__).resolve().parents[1]
sol = load_module(ROOT / "solutions" / "gpt3.py", "gpt3_solution")

# Table 2.1: name -> (n_layers, d_model, n_heads, d_head, the paper's n_params name)
TABLE_2_1 = {
    "GPT-3 Small": (12, 768, 12, 64, 125e6),
    "GPT-3 Medium": (24, 1024, 16, 64, 350e6),
    "GPT-3 Large": (24, 1536, 16, 96, 760e6),
    "GPT-3 XL": (24, 2048, 24, 128, 1.3e9),
    "GPT-3 2.7B": (32, 2560, 32, 80, 2.7e9),
    "GPT-3 6.7B": (32, 4096, 32, 128, 6.7e9),
    "GPT-3 13B": (40, 5140, 40, 128, 13.0e9),
    "GPT-3 175B": (96, 12288, 96, 128, 175.0e9),
}
# Table D.1: name -> (params in millions, total train compute in FLOPs, in PF-days); 300B tokens.
TABLE_D_1 = {
    "GPT-3 Small": (125, 2.25e20, 2.60e0),
    "GPT-3 Medium": (356, 6.41e20, 7.42e0),
    "GPT-3 Large": (760, 1.37e21, 1.58e1),
    "GPT-3 XL": (1320, 2.38e21, 2.75e1),
    "GPT-3 2.7B": (2650, 4.77e21, 5.52e1),
    "GPT-3 6.7B": (6660, 1.20e22, 1.39e2),
    "GPT-3 13B": (12850, 2.31e22, 2.68e2),
    "GPT-3 175B": (174600, 3.14e23, 3.64e3),
}


# --- a GPT-2 style model made of torch modules --------------------------------------------


class Block(nn.Module):
    def __init__(self, d, n_heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, bias=True)  # in_proj d -> 3d and out_proj d -> d
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))


class GPT(nn.Module):
    def __init__(self, n_layers, d, n_heads, vocab, n_ctx):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.blocks = nn.ModuleList(Block(d, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied


def torch_count(n_layers, d, n_heads, vocab=50257, n_ctx=2048):
    with torch.device("meta"):
        model = GPT(n_layers, d, n_heads, vocab, n_ctx)
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once


@pytest.mark.parametrize("name", list(TABLE_2_1))
def test_parameter_count_matches_a_torch_model(name):
    n_layers, d, n_heads, _, _ = TABLE_2_1[name]
    if d % n_heads:  # XL's 2048 and 13B's 5140 do not split into 24 and 40 heads; the count
        n_heads = 4  # does not depend on the heads
    assert sol.gpt_parameter_count(n_layers, d) == torch_count(n_layers, d, n_heads)


@pytest.mark.parametrize("n_layers, d, vocab, n_ctx", [(1, 4, 10, 8), (2, 4, 10, 8), (3, 64, 1000, 128), (5, 96, 7, 3)])
def test_parameter_count_small_configs_match_a_torch_model(n_layers, d, vocab, n_ctx):
    got = sol.gpt_parameter_count(n_layers, d, vocab_size=vocab, n_ctx=n_ctx)
    assert got == torch_count(n_layers, d, 2, vocab, n_ctx)
    assert isinstance(got, int)


def test_parameter_count_by_hand():
    assert sol.gpt_parameter_count(2, 4, vocab_size=10, n_ctx=8) == 72 + 2 * (12 * 16 + 13 * 4) + 8 == 568
    assert sol.gpt_parameter_count(12, 768) == 125_226_240  # GPT-2 small's 124M + the 1024 extra positions


def _round_like(value, printed):
    """Round `value` to as many significant digits as `printed` shows (trailing zeros of an
    integer not counted)."""
    digits = len(str(printed).replace(".", "").lstrip("0").rstrip("0"))
    return float(f"{value:.{digits}g}")


@pytest.mark.parametrize("name", list(TABLE_2_1))
def test_counts_agree_with_table_d_1_and_the_names(name):
    n_layers, d, _, _, named = TABLE_2_1[name]
    if name == "GPT-3 13B":
        d = 5120  # see the next test
    count = sol.gpt_parameter_count(n_layers, d)
    assert _round_like(count / 1e6, TABLE_D_1[name][0]) == TABLE_D_1[name][0]
    assert abs(count - named) / named < 0.02  # the names are rounder than the counts


def test_heads_times_head_width_is_d_model_except_in_two_rows():
    # Table 2.1 prints n_heads and d_head; their product is d_model except for XL (24 x 128 =
    # 3072, not 2048) and 13B (40 x 128 = 5120, not 5140). Neither changes a parameter count.
    odd = [name for name, (_, d, h, dh, _) in TABLE_2_1.items() if h * dh != d]
    assert odd == ["GPT-3 XL", "GPT-3 13B"]
    assert sol.GPT3_TABLE_2_1 == {name: row[:4] for name, row in TABLE_2_1.items()}


def test_table_2_1_disagrees_with_itself_on_13b():
    # Printed d_model 5140, but 40 heads x 128 = 5120; Table D.1's 12,850M is 5120's count.
    printed, consistent = sol.gpt_parameter_count(40, 5140), sol.gpt_parameter_count(40, 5120)
    assert (printed, consistent) == (12_952_938_780, 12_853_386_240)
    assert round(printed / 1e9) == round(consistent / 1e9) == 13  # both are "13B"
    assert _round_like(consistent / 1e6, 12850) == 12850
    assert _round_like(printed / 1e6, 12850) == 12950 != 12850


def test_medium_is_356m_not_350m():
    # The paper names the model 350M; its count (and Table D.1) say 356M, like GPT-2 medium.
    count = sol.gpt_parameter_count(24, 1024)
    assert round(count / 1e6) == 356
    assert _round_like(count / 1e6, 350) != 350


@pytest.mark.parametrize("name", list(TABLE_D_1))
def test_training_compute_matches_table_d_1(name):
    params, flops, days = TABLE_D_1[name]
    c = sol.training_flops(params * 1e6, 300e9)
    assert _round_like(c, 3.14) == flops
    assert _round_like(sol.pf_days(c), 3.14) == days


def test_175b_compute_from_the_exact_count():
    c = sol.training_flops(sol.gpt_parameter_count(96, 12288), 300e9)
    assert math.isclose(c, 3.14e23, rel_tol=2e-3)
    assert math.isclose(sol.pf_days(c), 3.64e3, rel_tol=2e-3)
    assert sol.pf_days(1e15 * 86400) == 1.0


# --- prompts -------------------------------------------------------------------------------


def test_figure_2_1_prompts():
    demos = [("sea otter", "loutre de mer"), ("peppermint", "menthe poivrée"), ("plush girafe", "girafe peluche")]
    head = "Translate English to French:"
    assert sol.build_prompt(head, [], "cheese") == head + "\ncheese =>"
    assert sol.build_prompt(head, demos[:1], "cheese") == head + "\nsea otter => loutre de mer\ncheese =>"
    few = sol.build_prompt(head, demos, "cheese")
    assert few.split("\n") == [
        head,
        "sea otter => loutre de mer",
        "peppermint => menthe poivrée",
        "plush girafe => girafe peluche",
        "cheese =>",
    ]
    assert sol.build_prompt(None, demos[:1], "cheese") == sol.build_prompt("", demos[:1], "cheese")
    assert sol.build_prompt(None, [], "cheese") == "cheese =>"
    assert sol.build_prompt("T:", [["a", "b"]], "c") == "T:\na => b\nc =>"  # lists work as pairs too


# --- multiple choice -----------------------------------------------------------------------


def test_choice_scores_against_probabilities_multiplied_out():
    # Token probabilities of three completions, given the context and given "Answer: ".
    cond_p = [[0.5, 0.2], [0.9, 0.8, 0.7], [0.05]]
    uncond_p = [[0.1, 0.1], [0.9, 0.9, 0.9], [0.01]]
    cond = [torch.tensor(p).log() for p in cond_p]
    uncond = [torch.tensor(p).log() for p in uncond_p]
    whole = [math.prod(p) for p in cond_p]  # P(completion | context)
    torch.testing.assert_close(sol.choice_scores(cond, "sum").exp(), torch.tensor(whole, dtype=torch.float64))
    per_token = [math.prod(p) ** (1 / len(p)) for p in cond_p]  # geometric mean per token
    torch.testing.assert_close(sol.choice_scores(cond, "mean").exp(), torch.tensor(per_token, dtype=torch.float64))
    ratio = [math.prod(c) / math.prod(u) for c, u in zip(cond_p, uncond_p)]
    torch.testing.assert_close(
        sol.choice_scores(cond, "unconditional", uncond).exp(), torch.tensor(ratio, dtype=torch.float64)
    )
    assert sol.pick_choice(cond, "sum") == 1  # 0.504 beats 0.1 and 0.05
    assert sol.pick_choice(cond, "unconditional", uncond) == 0  # 10 times likelier than without context
    assert isinstance(sol.pick_choice(cond, "mean"), int)


def test_choice_scores_errors():
    cond = [torch.tensor([-1.0])]
    with pytest.raises(ValueError, match="unknown method"):
        sol.choice_scores(cond, "max")
    with pytest.raises(ValueError, match="unconditional_logprobs"):
        sol.choice_scores(cond, "unconditional")
    with pytest.raises(ValueError, match="unconditional_logprobs"):
        sol.choice_scores(cond, "unconditional", [])


# --- decoding ------------------------------------------------------------------------------


def top_p_ascending(logits, p):
    """Top-p the other way round: sort ascending and drop the low tail whose mass is at most 1 - p."""
    sorted_logits, order = torch.sort(logits, dim=-1)
    tail = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p
    tail[..., -1] = False  # the most likely token always stays
    drop = tail.scatter(-1, order, tail)
    return logits.masked_fill(drop, float("-inf"))


def test_top_p_matches_the_ascending_formulation():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        logits = torch.randn(3, 17, generator=g, dtype=torch.float64) * 2
        p = float(torch.rand((), generator=g)) * 0.98 + 0.01
        assert torch.equal(sol.filter_logits(logits, top_p=p), top_p_ascending(logits, p))


def test_top_k_matches_torch_topk():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 11, generator=g)
    for k in (1, 3, 11, 20):
        out = sol.filter_logits(logits, top_k=k)
        kept = out != float("-inf")
        expected = torch.zeros_like(kept).scatter(-1, torch.topk(logits, min(k, 11)).indices, True)
        assert torch.equal(kept, expected)
        assert torch.equal(out[kept], logits[kept])


def test_top_k_keeps_ties_and_leaves_the_input_alone():
    logits = torch.tensor([1.0, 2.0, 2.0, 0.0])
    before = logits.clone()
    assert (sol.filter_logits(logits, top_k=2) != float("-inf")).tolist() == [False, True, True, False]
    assert (sol.filter_logits(logits, top_k=1) != float("-inf")).tolist() == [False, True, True, False]
    assert torch.equal(logits, before)


def test_top_k_then_top_p():
    logits = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1]).log()
    # top-2 renormalised: 0.545, 0.455 -> top_p 0.5 keeps only the first
    assert (sol.filter_logits(logits, top_k=2, top_p=0.5) != float("-inf")).tolist() == [
        True,
        False,
        False,
        False,
        False,
    ]
    # top-p alone on the full vocabulary keeps the first two (0.3 + 0.25 >= 0.5)
    assert (sol.filter_logits(logits, top_p=0.5) != float("-inf")).tolist() == [True, True, False, False, False]


def test_filter_errors():
    for kwargs in ({"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.01}, {"top_p": -0.5}):
        with pytest.raises(ValueError):
            sol.filter_logits(torch.zeros(3), **kwargs)
    with pytest.raises(ValueError):
        sol.sample_next_token(torch.zeros(1, 3), temperature=-0.1)


def test_sampling_follows_the_renormalised_distribution():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 1.5])
    n = 20000
    g = torch.Generator().manual_seed(0)
    samples = sol.sample_next_token(logits.repeat(n, 1), temperature=0.8, top_k=4, top_p=0.9, generator=g)
    assert samples.shape == (n, 1) and samples.dtype == torch.long
    # written out: temperature, then top-4 = {0, 5, 1, 2}, then the nucleus of those at 0.9
    z = logits / 0.8
    keep = torch.zeros(6, dtype=torch.bool)
    keep[[0, 5, 1, 2]] = True
    probs = z.masked_fill(~keep, float("-inf")).softmax(-1)
    ranked = probs.argsort(descending=True)
    mass, nucleus = 0.0, []
    for i in ranked.tolist():
        nucleus.append(i)
        mass += probs[i].item()
        if mass >= 0.9:
            break
    expected = z.masked_fill(~torch.isin(torch.arange(6), torch.tensor(nucleus)), float("-inf")).softmax(-1)
    freq = torch.bincount(samples.flatten(), minlength=6).double() / n
    assert torch.all((freq - expected.double()).abs() < 0.015)
    assert freq[expected == 0].sum() == 0


def test_sampling_temperature_limits_and_generator():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 8, generator=g)
    assert torch.equal(sol.sample_next_token(logits, temperature=0), logits.argmax(-1, keepdim=True))
    # a tiny temperature is (almost surely) greedy as well
    assert torch.equal(sol.sample_next_token(logits, temperature=1e-4, generator=g), logits.argmax(-1, keepdim=True))
    a = sol.sample_next_token(logits.repeat(20, 1), generator=torch.Generator().manual_seed(9))
    torch.manual_seed(123)
    b = sol.sample_next_token(logits.repeat(20, 1), generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert sol.sample_next_token(torch.zeros(8), temperature=1.0).shape == (1,)
