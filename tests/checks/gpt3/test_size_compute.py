"""Checks for GPT-3's size (the exact parameter count) and its training compute (6 N D, PF-days).

Visible checks hold the answers against the paper: the model names of Table 2.1, the
parameter counts, FLOPs and petaflop/s-days of Table D.1, and counts worked out by hand for
every row of Table 2.1. Hidden checks draw random sizes from the run's seed.
"""
import math

import pytest
import torch

from grader.checking import fail

VOCAB, N_CTX, TOKENS = 50257, 2048, 300e9

# Table 2.1 (n_layers, d_model), the name the paper gives each model, and the exact count of a
# GPT-2 style decoder with those sizes (worked out by hand, vocabulary 50257, n_ctx 2048).
TABLE_2_1 = [
    # name, n_layers, d_model, the paper's name for its size, exact count
    ("GPT-3 Small", 12, 768, 125e6, 125_226_240),
    ("GPT-3 Medium", 24, 1024, 350e6, 355_871_744),
    ("GPT-3 Large", 24, 1536, 760e6, 760_300_032),
    ("GPT-3 XL", 24, 2048, 1.3e9, 1_315_723_264),
    ("GPT-3 2.7B", 32, 2560, 2.7e9, 2_651_553_280),
    ("GPT-3 6.7B", 32, 4096, 6.7e9, 6_658_404_352),
    ("GPT-3 13B", 40, 5140, 13e9, 12_952_938_780),
    ("GPT-3 175B", 96, 12288, 175e9, 174_604_259_328),
]

# Table D.1, GPT-3 rows: parameters (millions, as printed), total train compute in FLOPs and
# in PF-days; every model was trained on 300B tokens.
TABLE_D_1 = [
    ("GPT-3 Small", "125", 2.25e20, 2.60e0),
    ("GPT-3 Medium", "356", 6.41e20, 7.42e0),
    ("GPT-3 Large", "760", 1.37e21, 1.58e1),
    ("GPT-3 XL", "1,320", 2.38e21, 2.75e1),
    ("GPT-3 2.7B", "2,650", 4.77e21, 5.52e1),
    ("GPT-3 6.7B", "6,660", 1.20e22, 1.39e2),
    ("GPT-3 13B", "12,850", 2.31e22, 2.68e2),
    ("GPT-3 175B", "174,600", 3.14e23, 3.64e3),
]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


def _round_sig(x, digits):
    return float(f"{x:.{digits}g}")


# --- parameter_count -----------------------------------------------------------------------


def _count_mistakes(n_layers, d, vocab, n_ctx):
    """How far off (got - expected) each known counting mistake lands."""
    L = n_layers
    return {
        "counted the output head as its own vocab_size x d_model matrix; GPT-2 and GPT-3 tie it to the "
        "token embedding, so those weights are counted once": vocab * d,
        "counted a separate output head with a bias; the head is the token embedding itself (tied), "
        "without a bias": vocab * d + vocab,
        "left out the learned position embeddings (n_ctx x d_model)": -n_ctx * d,
        "left out the final LayerNorm after the last block (a gain and a bias of d_model each)": -2 * d,
        "counted one LayerNorm per block; each block has two, one before attention and one before the MLP": -2 * d * L,
        "counted no LayerNorm inside the blocks; each block has two (gain and bias each)": -4 * d * L,
        "gave the LayerNorms a gain but no bias": -(2 * L + 1) * d,
        "left out the biases of the linear layers (3d + d in attention, 4d + d in the MLP, per block)": -9 * d * L,
        "left out the attention's output projection (d x d plus a bias of d, per block)": -(d * d + d) * L,
        "gave the MLP a hidden width of d_model; GPT's MLP goes d -> 4d -> d": -(6 * d * d + 3 * d) * L,
    }


def _expect_count(got, expected, what, mistakes, hint=""):
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
        got = int(got.item())
    if isinstance(got, float) and got.is_integer():
        fail(f"{what}: expected the int {expected:,}, got the float {got!r}. A parameter count is a whole number: "
             "keep the arithmetic in ints (no `/`, no 1e6-style constants) and return an int.")
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int, got {type(got).__name__} ({got!r}).")
    if got == expected:
        return
    diff = got - expected
    message = f"{what}: expected {expected:,}, got {got:,} ({abs(diff):,} too {'many' if diff > 0 else 'few'})."
    for label, delta in mistakes.items():
        if diff == delta:
            fail(f"{message} Your result matches what you get if you {label}.")
    fail(message + (f" {hint}" if hint else ""))


_COUNT_HINT = ("Count the token embedding (tied with the output head), the position embeddings, per block two "
               "LayerNorms, the q/k/v and output projections and the MLP d -> 4d -> d (all with biases), and a "
               "final LayerNorm.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.points(2)
def test_parameter_count_gpt3_small(impl):
    # GPT-3 Small has GPT-2 small's shape: 12 layers of width 768.
    got = impl.gpt_parameter_count(12, 768)
    _expect_count(got, 125_226_240, "`gpt_parameter_count(12, 768)` (GPT-3 Small, vocab 50257, n_ctx 2048)",
                  _count_mistakes(12, 768, VOCAB, N_CTX), _COUNT_HINT)


@pytest.mark.exercise("parameter_count")
def test_parameter_count_tiny_model_by_hand(impl):
    # 2 layers, d_model 4, a vocabulary of 10 and 8 positions: 40 + 32 embedding weights,
    # 2 blocks of 12 * 16 + 13 * 4 = 244, and 8 in the final LayerNorm.
    got = impl.gpt_parameter_count(2, 4, vocab_size=10, n_ctx=8)
    _expect_count(got, 568, "`gpt_parameter_count(2, 4, vocab_size=10, n_ctx=8)`",
                  _count_mistakes(2, 4, 10, 8), _COUNT_HINT + " Here that is 72 + 2 * 244 + 8.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.points(2)
def test_parameter_count_every_row_of_table_2_1(impl):
    """The paper's model names are rounded counts: every exact count must be within 2% of the name,
    and round to the parameter count Table D.1 prints. The 13B row is the paper disagreeing
    with itself: Table 2.1 prints d_model = 5140, but its 40 heads of 128 make 5120, and only
    5120 gives Table D.1's 12,850M."""
    d1 = {name: params for name, params, _, _ in TABLE_D_1}
    for name, n_layers, d_model, named, exact in TABLE_2_1:
        what = f"`gpt_parameter_count({n_layers}, {d_model})` ({name} in Table 2.1)"
        got = impl.gpt_parameter_count(n_layers, d_model)
        _expect_count(got, exact, what, _count_mistakes(n_layers, d_model, VOCAB, N_CTX), _COUNT_HINT)
        if abs(got - named) / named > 0.02:  # a safety net: the exact value above already decided
            fail(f"{what}: {got:,} is not within 2% of the paper's name for the model, {named:,.0f}.")
        if name != "GPT-3 13B":
            printed = d1[name]
            digits = len(printed.replace(",", "").rstrip("0"))
            if _round_sig(got / 1e6, digits) != float(printed.replace(",", "")):
                fail(f"{what}: {got / 1e6:,.1f}M does not round to Table D.1's {printed}M.")
    # The 13B row: 5140 (as printed) and 5120 (= 40 heads x 128) both round to "13B" ...
    got_5120 = impl.gpt_parameter_count(40, 5120)
    _expect_count(got_5120, 12_853_386_240, "`gpt_parameter_count(40, 5120)` (GPT-3 13B with d_model = 40 x 128)",
                  _count_mistakes(40, 5120, VOCAB, N_CTX), _COUNT_HINT)
    # ... but only 5120 gives the 12,850M of Table D.1; 5140 gives 12,953M.
    if _round_sig(got_5120 / 1e6, 4) != 12850:
        fail(f"GPT-3 13B with d_model 5120: {got_5120 / 1e6:,.1f}M should round to Table D.1's 12,850M.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.hidden
def test_parameter_count_random_sizes(impl, ref, seed):
    g = _gen(seed)
    for _ in range(4):
        n_layers, d_model = _randint(g, 2, 100), _randint(g, 2, 300) * 8
        vocab, n_ctx = _randint(g, 100, 60000), _randint(g, 16, 4097)
        expected = ref.gpt_parameter_count(n_layers, d_model, vocab_size=vocab, n_ctx=n_ctx)
        got = impl.gpt_parameter_count(n_layers, d_model, vocab_size=vocab, n_ctx=n_ctx)
        _expect_count(got, expected, f"`gpt_parameter_count({n_layers}, {d_model}, vocab_size={vocab}, n_ctx={n_ctx})`",
                      _count_mistakes(n_layers, d_model, vocab, n_ctx), _COUNT_HINT)


@pytest.mark.exercise("parameter_count")
@pytest.mark.hidden
def test_parameter_count_defaults_are_gpt3s(impl, ref, seed):
    g = _gen(seed)
    n_layers, d_model = _randint(g, 1, 97), _randint(g, 1, 160) * 64
    expected = ref.gpt_parameter_count(n_layers, d_model)
    got = impl.gpt_parameter_count(n_layers, d_model)
    _expect_count(got, expected, f"`gpt_parameter_count({n_layers}, {d_model})` with the default vocab_size and n_ctx",
                  _count_mistakes(n_layers, d_model, VOCAB, N_CTX),
                  "The defaults are GPT-3's: vocab_size=50257 (GPT-2's BPE) and n_ctx=2048.")


# --- training_flops ------------------------------------------------------------------------


def _as_number(got, what):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        fail(f"{what}: expected a number, got {type(got).__name__} ({got!r}).")
    return float(got)


def _expect_flops(got, n, d, what):
    got = _as_number(got, what)
    expected = 6.0 * n * d
    if math.isclose(got, expected, rel_tol=1e-9):
        return
    ratio = got / expected if expected else float("nan")
    known = {
        1 / 3: "counted only the forward pass, 2 N D; the backward pass costs twice as much again, so training is 6 N D",
        1 / 6: "left out the factor 6: C = 6 N D (2 per parameter per token forward, 4 backward)",
        1 / 2: "used 3 N D; the forward pass is 2 FLOPs per parameter per token (a multiply and an add), "
               "the backward pass 4, so 6 N D",
        2 / 3: "used 4 N D; forward 2 plus backward 4 makes 6 FLOPs per parameter per token",
    }
    for value, label in known.items():
        if math.isclose(ratio, value, rel_tol=1e-6):
            fail(f"{what}: expected {expected:.4g}, got {got:.4g}. Your result matches what you get if you {label}.")
    fail(f"{what}: expected 6 N D = {expected:.4g}, got {got:.4g}.")


def _expect_pf_days(got, flops, what):
    got = _as_number(got, what)
    expected = flops / 8.64e19
    if math.isclose(got, expected, rel_tol=1e-9):
        return
    ratio = got / expected
    known = {
        24.0: "divided by 10^15 x 3600 (a petaflop/s-hour); a day has 86,400 seconds",
        86400.0: "divided by 10^15 only (petaflop/s-seconds); a PF-day is 10^15 FLOP/s for 86,400 s",
        1000.0: "divided by 10^12 x 86400 (a teraflop/s-day); peta is 10^15",
        1 / 1000.0: "divided by 10^18 x 86400; peta is 10^15",
        1440.0: "divided by 10^15 x 60; a day has 24 x 60 x 60 = 86,400 seconds",
    }
    for value, label in known.items():
        if math.isclose(ratio, value, rel_tol=1e-6):
            fail(f"{what}: expected {expected:.4g}, got {got:.4g}. Your result matches what you get if you {label}.")
    fail(f"{what}: expected {expected:.4g} PF-days (1 PF-day = 10^15 FLOP/s x 86,400 s = 8.64e19 FLOPs), "
         f"got {got:.4g}.")


@pytest.mark.exercise("training_flops")
def test_training_flops_is_six_n_d(impl):
    for n, d in ((1e9, 2e10), (125e6, 300e9), (7, 11)):
        _expect_flops(impl.training_flops(n, d), n, d, f"`training_flops({n:g}, {d:g})`")


@pytest.mark.exercise("training_flops")
def test_pf_days_unit(impl):
    _expect_pf_days(impl.pf_days(8.64e19), 8.64e19, "`pf_days(8.64e19)` (one petaflop/s-day)")
    _expect_pf_days(impl.pf_days(1e21), 1e21, "`pf_days(1e21)`")


@pytest.mark.exercise("training_flops")
@pytest.mark.points(2)
def test_table_d_1_compute_of_every_gpt3_model(impl):
    """Table D.1 multiplies the parameters (in millions, as printed) by 300B tokens and 6 FLOPs."""
    for name, params, flops_printed, pf_printed in TABLE_D_1:
        n = float(params.replace(",", "")) * 1e6
        flops = impl.training_flops(n, TOKENS)
        _expect_flops(flops, n, TOKENS, f"`training_flops({n:.4g}, 300e9)` ({name})")
        if _round_sig(float(flops), 3) != flops_printed:
            fail(f"{name}: {float(flops):.3e} FLOPs does not round to Table D.1's {flops_printed:.2e}.")
        days = impl.pf_days(flops)
        _expect_pf_days(days, float(flops), f"`pf_days({float(flops):.4g})` ({name})")
        if _round_sig(float(days), 3) != pf_printed:
            fail(f"{name}: {float(days):.4g} PF-days does not round to Table D.1's {pf_printed:.3g}.")


@pytest.mark.exercise("training_flops")
def test_gpt3_175b_needs_about_3640_pf_days(impl):
    # The exact count of the 175B model (174,604,259,328) and 300B tokens: Table D.1 says
    # 3.14E+23 FLOPs, 3.64E+03 PF-days, "several thousand petaflop/s-days" in the text.
    flops = _as_number(impl.training_flops(174_604_259_328, TOKENS), "`training_flops(174604259328, 300e9)`")
    if not math.isclose(flops, 3.14e23, rel_tol=0.005):
        _expect_flops(flops, 174_604_259_328, TOKENS, "`training_flops(174604259328, 300e9)` (GPT-3 175B)")
    days = _as_number(impl.pf_days(flops), f"`pf_days({flops:.4g})`")
    if not math.isclose(days, 3640, rel_tol=0.005):
        _expect_pf_days(days, flops, f"`pf_days({flops:.4g})` (GPT-3 175B; Table D.1: 3.64E+03 PF-days)")


@pytest.mark.exercise("training_flops")
@pytest.mark.hidden
def test_training_flops_random(impl, seed):
    g = _gen(seed)
    for _ in range(3):
        n = float(_randint(g, 1, 1000)) * 10.0 ** _randint(g, 6, 12)
        d = float(_randint(g, 1, 1000)) * 10.0 ** _randint(g, 8, 13)
        flops = impl.training_flops(n, d)
        _expect_flops(flops, n, d, f"`training_flops({n:.4g}, {d:.4g})`")
        _expect_pf_days(impl.pf_days(6.0 * n * d), 6.0 * n * d, f"`pf_days({6.0 * n * d:.4g})`")
