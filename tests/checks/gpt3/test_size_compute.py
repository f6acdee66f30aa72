"""Checks for GPT-3's size (the exact parameter count) and its training compute (6 N D, PF-days).

Visible checks hold the answers against the paper, the model names of Table 2.1 and the
parameter counts, FLOPs and petaflop/s-days of Table D.1, and against the recorded answers of
the course's solution (a count worked out by hand for a tiny model, in the comments).
"""
import pytest
import torch

from grader.checking import expect_number, fail, fail_naming, new_comparison
from grader.checking import generator as _gen
from grader.checking import randint as _randint

TOKENS = 300e9

# Table 2.1 (n_layers, d_model) and the name the paper gives each model's size.
TABLE_2_1 = [
    ("GPT-3 Small", 12, 768, 125e6),
    ("GPT-3 Medium", 24, 1024, 350e6),
    ("GPT-3 Large", 24, 1536, 760e6),
    ("GPT-3 XL", 24, 2048, 1.3e9),
    ("GPT-3 2.7B", 32, 2560, 2.7e9),
    ("GPT-3 6.7B", 32, 4096, 6.7e9),
    ("GPT-3 13B", 40, 5140, 13e9),
    ("GPT-3 175B", 96, 12288, 175e9),
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


def _round_sig(x, digits):
    return float(f"{x:.{digits}g}")


# --- parameter_count -----------------------------------------------------------------------


def _expect_count(got, expected, what, hint=""):
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
        got = int(got.item())
    if isinstance(got, float) and got.is_integer():
        fail(f"{what}: expected the int {expected:,}, got the float {got!r}. A parameter count is a whole number: "
             "keep the arithmetic in ints (no `/`, no 1e6-style constants) and return an int.")
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int, got {type(got).__name__} ({got!r}).")
    if got == expected:
        return got
    diff = got - expected
    fail_naming(f"{what}: expected {expected:,}, got {got:,} ({abs(diff):,} too {'many' if diff > 0 else 'few'}).",
                lambda answer: type(answer) is int and answer == got, hint)


_COUNT_HINT = ("Count the token embedding (tied with the output head), the position embeddings, per block two "
               "LayerNorms, the q/k/v and output projections and the MLP d -> 4d -> d (all with biases), and a "
               "final LayerNorm.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.points(2)
def test_parameter_count_gpt3_small(impl, recorded):
    # GPT-3 Small has GPT-2 small's shape: 12 layers of width 768.
    _expect_count(impl.gpt_parameter_count(12, 768), recorded.gpt_parameter_count(12, 768),
                  "`gpt_parameter_count(12, 768)` (GPT-3 Small, vocab 50257, n_ctx 2048)", _COUNT_HINT)


@pytest.mark.exercise("parameter_count")
def test_parameter_count_tiny_model_by_hand(impl, recorded):
    # 2 layers, d_model 4, a vocabulary of 10 and 8 positions: 40 + 32 embedding weights,
    # 2 blocks of 12 * 16 + 13 * 4 = 244, and 8 in the final LayerNorm: 568.
    _expect_count(impl.gpt_parameter_count(2, 4, vocab_size=10, n_ctx=8),
                  recorded.gpt_parameter_count(2, 4, vocab_size=10, n_ctx=8),
                  "`gpt_parameter_count(2, 4, vocab_size=10, n_ctx=8)`", _COUNT_HINT + " Here that is 72 + 2 * 244 + 8.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.points(2)
def test_parameter_count_every_row_of_table_2_1(impl, recorded):
    """The paper's model names are rounded counts: every exact count must be within 2% of the name,
    and round to the parameter count Table D.1 prints. The 13B row is the paper disagreeing
    with itself: Table 2.1 prints d_model = 5140, but its 40 heads of 128 make 5120, and only
    5120 gives Table D.1's 12,850M."""
    d1 = {name: params for name, params, _, _ in TABLE_D_1}
    for name, n_layers, d_model, named in TABLE_2_1:
        new_comparison()
        what = f"`gpt_parameter_count({n_layers}, {d_model})` ({name} in Table 2.1)"
        got = _expect_count(impl.gpt_parameter_count(n_layers, d_model), recorded.gpt_parameter_count(n_layers, d_model),
                            what, _COUNT_HINT)
        if abs(got - named) / named > 0.02:  # a safety net: the exact value above already decided
            fail(f"{what}: {got:,} is not within 2% of the paper's name for the model, {named:,.0f}.")
        if name != "GPT-3 13B":
            printed = d1[name]
            digits = len(printed.replace(",", "").rstrip("0"))
            if _round_sig(got / 1e6, digits) != float(printed.replace(",", "")):
                fail(f"{what}: {got / 1e6:,.1f}M does not round to Table D.1's {printed}M.")
    # The 13B row: 5140 (as printed) and 5120 (= 40 heads x 128) both round to "13B" ...
    new_comparison()
    got_5120 = _expect_count(impl.gpt_parameter_count(40, 5120), recorded.gpt_parameter_count(40, 5120),
                             "`gpt_parameter_count(40, 5120)` (GPT-3 13B with d_model = 40 x 128)", _COUNT_HINT)
    # ... but only 5120 gives the 12,850M of Table D.1; 5140 gives 12,953M.
    if _round_sig(got_5120 / 1e6, 4) != 12850:
        fail(f"GPT-3 13B with d_model 5120: {got_5120 / 1e6:,.1f}M should round to Table D.1's 12,850M.")


@pytest.mark.exercise("parameter_count")
@pytest.mark.hidden
def test_parameter_count_random_sizes(impl, ref, seed):
    g = _gen(seed)
    for _ in range(4):
        new_comparison()
        n_layers, d_model = _randint(g, 2, 100), _randint(g, 2, 300) * 8
        vocab, n_ctx = _randint(g, 100, 60000), _randint(g, 16, 4097)
        _expect_count(impl.gpt_parameter_count(n_layers, d_model, vocab_size=vocab, n_ctx=n_ctx),
                      ref.gpt_parameter_count(n_layers, d_model, vocab_size=vocab, n_ctx=n_ctx),
                      f"`gpt_parameter_count({n_layers}, {d_model}, vocab_size={vocab}, n_ctx={n_ctx})`", _COUNT_HINT)


@pytest.mark.exercise("parameter_count")
@pytest.mark.hidden
def test_parameter_count_defaults_are_gpt3s(impl, ref, seed):
    g = _gen(seed)
    n_layers, d_model = _randint(g, 1, 97), _randint(g, 1, 160) * 64
    _expect_count(impl.gpt_parameter_count(n_layers, d_model), ref.gpt_parameter_count(n_layers, d_model),
                  f"`gpt_parameter_count({n_layers}, {d_model})` with the default vocab_size and n_ctx",
                  "The defaults are GPT-3's: vocab_size=50257 (GPT-2's BPE) and n_ctx=2048.")


# --- training_flops ------------------------------------------------------------------------

_FLOPS_HINT = "C = 6 N D: about 2 FLOPs per parameter per token forward (a multiply and an add) and 4 backward."
_PF_HINT = "1 PF-day = 10^15 FLOP/s x 86,400 s = 8.64e19 FLOPs."


@pytest.mark.exercise("training_flops")
def test_training_flops_is_six_n_d(impl, recorded):
    for n, d in ((1e9, 2e10), (125e6, 300e9), (7, 11)):
        new_comparison()
        what = f"`training_flops({n:g}, {d:g})`"
        expect_number(impl.training_flops(n, d), recorded.training_flops(n, d), what, rel=1e-9, hint=_FLOPS_HINT)


@pytest.mark.exercise("training_flops")
def test_pf_days_unit(impl, recorded):
    expect_number(impl.pf_days(8.64e19), recorded.pf_days(8.64e19), "`pf_days(8.64e19)` (one petaflop/s-day)",
                  rel=1e-9, hint=_PF_HINT)
    expect_number(impl.pf_days(1e21), recorded.pf_days(1e21), "`pf_days(1e21)`", rel=1e-9, hint=_PF_HINT)


@pytest.mark.exercise("training_flops")
@pytest.mark.points(2)
def test_table_d_1_compute_of_every_gpt3_model(impl, recorded):
    """Table D.1 multiplies the parameters (in millions, as printed) by 300B tokens and 6 FLOPs."""
    for name, params, flops_printed, pf_printed in TABLE_D_1:
        new_comparison()
        n = float(params.replace(",", "")) * 1e6
        expected = recorded.training_flops(n, TOKENS)
        flops = expect_number(impl.training_flops(n, TOKENS), expected, f"`training_flops({n:.4g}, 300e9)` ({name})",
                              rel=1e-9, hint=_FLOPS_HINT)
        if _round_sig(flops, 3) != flops_printed:
            fail(f"{name}: {flops:.3e} FLOPs does not round to Table D.1's {flops_printed:.2e}.")
        days = expect_number(impl.pf_days(expected), recorded.pf_days(expected),
                             f"`pf_days({expected:.4g})` ({name})", rel=1e-9, hint=_PF_HINT)
        if _round_sig(days, 3) != pf_printed:
            fail(f"{name}: {days:.4g} PF-days does not round to Table D.1's {pf_printed:.3g}.")


@pytest.mark.exercise("training_flops")
def test_gpt3_175b_needs_about_3640_pf_days(impl, recorded):
    # The exact count of the 175B model (174,604,259,328) and 300B tokens: Table D.1 says
    # 3.14E+23 FLOPs, 3.64E+03 PF-days, "several thousand petaflop/s-days" in the text.
    flops = recorded.training_flops(174_604_259_328, TOKENS)
    recorded.pf_days(flops)  # the solution's answers name a known mistake when yours differ
    expect_number(impl.training_flops(174_604_259_328, TOKENS), 3.14e23,
                  "`training_flops(174604259328, 300e9)` (GPT-3 175B; Table D.1: 3.14E+23 FLOPs)", rel=0.005,
                  hint=_FLOPS_HINT)
    expect_number(impl.pf_days(flops), 3640, f"`pf_days({flops:.4g})` (GPT-3 175B; Table D.1: 3.64E+03 PF-days)",
                  rel=0.005, hint=_PF_HINT)


@pytest.mark.exercise("training_flops")
@pytest.mark.hidden
def test_training_flops_random(impl, ref, seed):
    g = _gen(seed)
    for _ in range(3):
        new_comparison()
        n = float(_randint(g, 1, 1000)) * 10.0 ** _randint(g, 6, 12)
        d = float(_randint(g, 1, 1000)) * 10.0 ** _randint(g, 8, 13)
        expect_number(impl.training_flops(n, d), ref.training_flops(n, d), f"`training_flops({n:.4g}, {d:.4g})`",
                      rel=1e-9)
        flops = ref.training_flops(n, d)
        expect_number(impl.pf_days(flops), ref.pf_days(flops), f"`pf_days({flops:.4g})`", rel=1e-9)
