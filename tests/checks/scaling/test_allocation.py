"""Checks for compute, the parametric loss, its compute-optimal closed form, the comparison with
Kaplan et al. (2020), and planning a training run.

Visible checks hold the learner's functions against hand-worked values, the paper's numbers,
and a brute-force minimisation of the loss on 6 N D = C written here (no closed form); hidden
checks draw laws and budgets from the run's seed and also compare with the reference.
Every call goes through `helpers.call`, which hands back plain data or the exception raised.
"""
import math

import numpy as np
import pytest

from grader.checking import as_array, as_number, expect_number, fail

PAPER = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. (2022), Approach 3
CHINCHILLA_RUN = (70e9, 1.4e12)  # Chinchilla: 70B parameters trained on 1.4T tokens


# --- talking to the learner's code -----------------------------------------------------------


def _call(helpers, what, name, *args, **kwargs):
    """The value of `name(*args, **kwargs)`, or a failure saying what it raised."""
    out = helpers.call(name, *args, **kwargs)
    if "error" in out:
        fail(f"{what} raised {out['error']}")
    return out["value"]


ELEMENTWISE = "With array inputs the function must work element-wise: use numpy operations (np.asarray, **, np.log), not math."


def _array(got, shape, what):
    return as_array(got, shape, what, hint=ELEMENTWISE)


def _rel_close(got, expected, rel):
    return math.isclose(got, expected, rel_tol=rel)


def _pair(got, what):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(f"{what}: expected a pair (N, D), got {_describe(got)}.")
    return got


def _describe(got):
    if isinstance(got, dict) and set(got) == {"unsupported"}:
        return f"an object of type {got['unsupported']}"
    if isinstance(got, (tuple, list)):
        return f"a {type(got).__name__} of length {len(got)}"
    return f"{type(got).__name__} {got!r}"[:200]


def _expect_error(helpers, what, name, *args, **kwargs):
    out = helpers.call(name, *args, **kwargs)
    if "error" not in out:
        fail(f"{what}: expected a ValueError, got {_describe(out['value'])}. Non-positive sizes, token counts "
             "and budgets have no meaning (and 0 ** -alpha is infinite): check inputs with _positive(x, name), "
             "which raises ValueError.")
    if out["type"] != "ValueError":
        fail(f"{what}: expected a ValueError, got {out['error']}. Check inputs with _positive(x, name).")


# --- the law written out here -----------------------------------------------------------------


def _loss(N, D, E, A, B, alpha, beta):
    return E + A / np.asarray(N, dtype=np.float64) ** alpha + B / np.asarray(D, dtype=np.float64) ** beta


def _brute_force_optimum(C, law):
    """(N, D) minimising the law's loss on 6 N D = C, found by searching log N on ever finer grids
    (no closed form): every N from 1000 parameters to the one that leaves 1000 tokens."""
    lo, hi = math.log(1e3), math.log(C / 6.0 / 1e3)
    for _ in range(4):
        log_n = np.linspace(lo, hi, 2001)
        N = np.exp(log_n)
        i = int(np.argmin(_loss(N, C / (6.0 * N), **law)))
        lo, hi = log_n[max(i - 2, 0)], log_n[min(i + 2, 2000)]
    N = math.exp(log_n[i])  # after 4 rounds the grid step in log N is below 1e-9
    return N, C / (6.0 * N)


def _optimum_suspects(C, E, A, B, alpha, beta):
    """Label -> (N, D) of known mistakes in the closed form."""
    s = alpha + beta
    G = (alpha * A / (beta * B)) ** (1 / s)
    x = C / 6.0
    return {
        "swapped the exponents a and b: N_opt grows as (C/6)^a with a = beta / (alpha + beta), the DATA "
        "term's exponent over the sum": (G * x ** (alpha / s), x ** (beta / s) / G),
        "inverted G: N_opt = G (C/6)^a and D_opt = (C/6)^b / G": (x ** (beta / s) / G, G * x ** (alpha / s)),
        "used C instead of C / 6 (the closed form comes from C = 6 N D)": (G * C ** (beta / s), C ** (alpha / s) / G),
        "forgot the power 1 / (alpha + beta) in G = (alpha A / (beta B))^(1 / (alpha + beta))":
            ((alpha * A / (beta * B)) * x ** (beta / s), x ** (alpha / s) / (alpha * A / (beta * B))),
        "used C = 2 N D instead of 6 N D": (G * (C / 2) ** (beta / s), (C / 2) ** (alpha / s) / G),
    }


def _expect_optimum(got, expected, what, suspects, rel=1e-6, hint=None, names=("N_opt", "D_opt")):
    N, D = _pair(got, what)
    N, D = as_number(N, f"{what}[0], {names[0]}"), as_number(D, f"{what}[1], {names[1]}")
    if _rel_close(N, expected[0], rel) and _rel_close(D, expected[1], rel):
        return N, D
    message = (f"{what}: expected ({names[0]}, {names[1]}) = ({expected[0]:.6g}, {expected[1]:.6g}), "
               f"got ({N:.6g}, {D:.6g}).")
    for label, (sn, sd) in suspects.items():
        if _rel_close(N, sn, 1e-6) and _rel_close(D, sd, 1e-6):
            fail(f"{message} Your result matches what you get if you {label}.")
    if not _rel_close(6 * N * D, expected[0] * expected[1] * 6, 1e-6):
        message += f" Your N and D do not even spend the budget: 6 N D = {6 * N * D:.6g}."
    fail(message + (f" {hint}" if hint else ""))


# --- chinchilla_loss ---------------------------------------------------------------------------


@pytest.mark.exercise("chinchilla_loss")
def test_training_flops_is_6ND(helpers):
    N, D = CHINCHILLA_RUN
    expect_number(
        _call(helpers, "`training_flops(70e9, 1.4e12)`", "training_flops", N, D), 5.88e23,
        "`training_flops(70e9, 1.4e12)`, Chinchilla's training compute",
        suspects={"counted only the forward pass, 2 N D; training is about 6 N D (2 N forward and 4 N backward "
                  "FLOPs per token)": 2 * N * D,
                  "used 4 N D; training is about 6 N D (2 N forward and 4 N backward FLOPs per token)": 4 * N * D},
        hint="C = 6 N D: 6 x 70e9 x 1.4e12 = 5.88e23 FLOPs.",
    )
    got = _call(helpers, "`training_flops(np.array([1e9, 2e9]), np.array([2e10, 4e10]))`", "training_flops",
                np.array([1e9, 2e9]), np.array([2e10, 4e10]))
    got = _array(got, (2,), "`training_flops(np.array([1e9, 2e9]), np.array([2e10, 4e10]))`")
    if not np.allclose(got, [1.2e20, 4.8e20], rtol=1e-9):
        fail(f"`training_flops(np.array([1e9, 2e9]), np.array([2e10, 4e10]))`: expected [1.2e20, 4.8e20], got "
             f"{got.tolist()}.")


@pytest.mark.exercise("chinchilla_loss")
@pytest.mark.points(2)
def test_chinchilla_loss_paper_values(helpers):
    N, D = CHINCHILLA_RUN
    expected = 1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28  # 1.69 + 0.0813 + 0.1663 = 1.9366
    suspects = {
        "swapped alpha and beta (A / N^beta + B / D^alpha)": 1.69 + 406.4 / N ** 0.28 + 410.7 / D ** 0.34,
        "swapped A and B (B / N^alpha + A / D^beta)": 1.69 + 410.7 / N ** 0.34 + 406.4 / D ** 0.28,
        "forgot E, the irreducible loss": 406.4 / N ** 0.34 + 410.7 / D ** 0.28,
        "multiplied by N^alpha and D^beta instead of dividing": 1.69 + 406.4 * N ** 0.34 + 410.7 * D ** 0.28,
    }
    expect_number(
        _call(helpers, "`chinchilla_loss(70e9, 1.4e12)`", "chinchilla_loss", N, D), expected,
        "`chinchilla_loss(70e9, 1.4e12)`, the paper's law at Chinchilla's size", rel=1e-9, suspects=suspects,
        hint="L = E + A / N^alpha + B / D^beta = 1.69 + 406.4 / 70e9^0.34 + 410.7 / 1.4e12^0.28 = 1.9366.",
    )
    law = dict(E=2.0, A=100.0, B=400.0, alpha=0.5, beta=0.25)
    what = "`chinchilla_loss(np.array([1e4, 1e6]), np.array([1e8, 1e4]), E=2, A=100, B=400, alpha=0.5, beta=0.25)`"
    got = _array(_call(helpers, what, "chinchilla_loss", np.array([1e4, 1e6]), np.array([1e8, 1e4]), **law), (2,), what)
    expected = np.array([2 + 1 + 4, 2 + 0.1 + 40])  # 100 / 1e4^0.5 = 1, 400 / 1e8^0.25 = 4; 0.1 and 40
    if not np.allclose(got, expected, rtol=1e-9):
        fail(f"{what}: expected {expected.tolist()} (2 + 100/100 + 400/100 and 2 + 100/1000 + 400/10), got "
             f"{got.tolist()}. Use the parameters you are given, not the paper's.")


@pytest.mark.exercise("chinchilla_loss")
def test_non_positive_inputs_raise(helpers):
    _call(helpers, "`chinchilla_loss(1e9, 2e10)`", "chinchilla_loss", 1e9, 2e10)  # the stub stops here
    for what, name, args in [
        ("`training_flops(0, 1e9)`", "training_flops", (0, 1e9)),
        ("`training_flops(1e9, -5)`", "training_flops", (1e9, -5)),
        ("`chinchilla_loss(0, 1e9)`", "chinchilla_loss", (0, 1e9)),
        ("`chinchilla_loss(1e9, -2e10)`", "chinchilla_loss", (1e9, -2e10)),
        ("`chinchilla_loss(np.array([1e9, -1e9]), np.array([2e10, 2e10]))`", "chinchilla_loss",
         (np.array([1e9, -1e9]), np.array([2e10, 2e10]))),
    ]:
        _expect_error(helpers, what, name, *args)


@pytest.mark.exercise("chinchilla_loss")
@pytest.mark.hidden
def test_chinchilla_loss_random(helpers, ref, seed):
    rng = np.random.default_rng(seed)
    N, D = np.exp(rng.uniform(np.log(1e6), np.log(1e12), 5)), np.exp(rng.uniform(np.log(1e8), np.log(1e13), 5))
    law = dict(E=rng.uniform(1, 3), A=rng.uniform(50, 2000), B=rng.uniform(50, 2000),
               alpha=rng.uniform(0.1, 0.7), beta=rng.uniform(0.1, 0.7))
    what = f"`chinchilla_loss(N, D, **{ {k: round(v, 4) for k, v in law.items()} })` for N = {N.round(0).tolist()}, D = {D.round(0).tolist()}"
    got = _array(_call(helpers, what, "chinchilla_loss", N, D, **law), (5,), what)
    want = ref.chinchilla_loss(N, D, **law)
    if not np.allclose(got, want, rtol=1e-9):
        i = int(np.argmax(np.abs(got - want)))
        fail(f"{what}: entry {i} is {got[i]:.6g}, expected {want[i]:.6g}. L = E + A / N^alpha + B / D^beta.")
    n, d = N.tolist(), D.tolist()  # plain floats: only plain data crosses to the worker
    for i in range(2):
        w = f"`training_flops({n[i]:.6g}, {d[i]:.6g})`"
        expect_number(_call(helpers, w, "training_flops", n[i], d[i]), ref.training_flops(n[i], d[i]), w, rel=1e-9,
                      suspects={"used 2 N D instead of 6 N D": 2 * n[i] * d[i]})
    _expect_error(helpers, f"`training_flops({-n[0]:.6g}, {d[0]:.6g})`", "training_flops", -n[0], d[0])
    _expect_error(helpers, f"`chinchilla_loss({n[1]:.6g}, 0.0)`", "chinchilla_loss", n[1], 0.0)


# --- compute_optimal -----------------------------------------------------------------------------


@pytest.mark.exercise("compute_optimal")
@pytest.mark.points(3)
def test_closed_form_matches_brute_force(helpers):
    for C in (1e19, 1e21, 5.88e23):
        expected = _brute_force_optimum(C, PAPER)
        what = f"`compute_optimal({C:g})` with the paper's parameters"
        N, D = _expect_optimum(
            _call(helpers, what, "compute_optimal", C), expected,
            f"{what} (the optimum found by searching N on 6 N D = C)", _optimum_suspects(C, **PAPER), rel=1e-4,
            hint="N_opt = G (C/6)^a, D_opt = (C/6)^b / G with a = beta / (alpha + beta), b = alpha / (alpha + beta), "
                 "G = (alpha A / (beta B))^(1 / (alpha + beta)).",
        )
        if not _rel_close(6 * N * D, C, 1e-9):
            fail(f"{what}: 6 N_opt D_opt = {6 * N * D:.6g}, not the budget {C:g}.")


@pytest.mark.exercise("compute_optimal")
def test_compute_optimal_arrays_and_errors(helpers):
    C = np.array([1e19, 1e21, 1e23])
    what = "`compute_optimal(np.array([1e19, 1e21, 1e23]))`"
    out = helpers.call("compute_optimal", C)
    if "error" in out:
        fail(f"{what} raised {out['error']}. With an array of budgets the function must work element-wise: use "
             "numpy operations (np.asarray, ** on arrays), not math.pow or float().")
    N, D = _pair(out["value"], what)
    N, D = _array(N, (3,), f"{what}[0]"), _array(D, (3,), f"{what}[1]")
    for i, c in enumerate(C):
        n, d = _brute_force_optimum(c, PAPER)
        if not (_rel_close(N[i], n, 1e-4) and _rel_close(D[i], d, 1e-4)):
            fail(f"{what}: entry {i} is ({N[i]:.6g}, {D[i]:.6g}), expected ({n:.6g}, {d:.6g}): array budgets must "
                 "give each budget's own optimum.")
    law = dict(PAPER, E=3.0)
    n3, _ = _pair(_call(helpers, "`compute_optimal(1e21, E=3.0)`", "compute_optimal", 1e21, **law),
                  "`compute_optimal(1e21, E=3.0)`")
    n3 = as_number(n3, "`compute_optimal(1e21, E=3.0)`[0]")
    if not _rel_close(n3, N[1], 1e-9):
        fail(f"`compute_optimal(1e21, E=3.0)` gives N_opt = {n3:.6g} but E = 1.69 gives {N[1]:.6g}: E is a constant "
             "added to the loss, it cannot move the optimum.")
    _expect_error(helpers, "`compute_optimal(0.0)`", "compute_optimal", 0.0)
    _expect_error(helpers, "`compute_optimal(np.array([1e20, -1e20]))`", "compute_optimal", np.array([1e20, -1e20]))


@pytest.mark.exercise("compute_optimal")
def test_tokens_per_parameter(helpers):
    # alpha = beta = 0.5, A = 1, B = 4: a = b = 1/2 and G = (0.5 / 2)^1 = 1/4, so N = sqrt(C/6) / 4 and
    # D = 4 sqrt(C/6): 16 tokens per parameter at every budget.
    law = dict(E=2.0, A=1.0, B=4.0, alpha=0.5, beta=0.5)
    what = "`tokens_per_parameter(np.array([6e8, 6e20]), E=2, A=1, B=4, alpha=0.5, beta=0.5)`"
    got = _array(_call(helpers, what, "tokens_per_parameter", np.array([6e8, 6e20]), **law), (2,), what)
    if np.allclose(got, 1 / 16, rtol=1e-9):
        fail(f"{what}: expected [16, 16], got {got.tolist()}: you returned N_opt / D_opt, parameters per token; "
             "the ratio is D_opt / N_opt.")
    if not np.allclose(got, 16, rtol=1e-9):
        fail(f"{what}: expected [16, 16] (N = sqrt(C/6) / 4 and D = 4 sqrt(C/6)), got {got.tolist()}.")
    n, d = _brute_force_optimum(5.88e23, PAPER)
    expect_number(_call(helpers, "`tokens_per_parameter(5.88e23)`", "tokens_per_parameter", 5.88e23), d / n,
                  "`tokens_per_parameter(5.88e23)` with the paper's parameters (Chinchilla's budget)", rel=1e-4,
                  suspects={"returned N_opt / D_opt; the ratio is D_opt / N_opt": n / d},
                  hint="At Chinchilla's budget the rounded Approach 3 law asks for about 93 tokens per parameter, "
                       "more than the 20 Chinchilla was trained with.")


@pytest.mark.exercise("compute_optimal")
@pytest.mark.hidden
@pytest.mark.points(2)
def test_compute_optimal_random_laws(helpers, ref, seed):
    rng = np.random.default_rng(seed)
    law = dict(E=rng.uniform(1, 3), A=rng.uniform(50, 2000), B=rng.uniform(50, 2000),
               alpha=rng.uniform(0.2, 0.6), beta=rng.uniform(0.2, 0.6))
    C = float(np.exp(rng.uniform(np.log(1e18), np.log(1e25))))
    shown = ", ".join(f"{k}={v:.4g}" for k, v in law.items())
    what = f"`compute_optimal({C:.6g}, {shown})`"
    expected = ref.compute_optimal(C, **law)
    bf = _brute_force_optimum(C, law)
    assert _rel_close(expected[0], bf[0], 1e-4)
    _expect_optimum(_call(helpers, what, "compute_optimal", C, **law), expected, what, _optimum_suspects(C, **law),
                    rel=1e-6)
    Cs = np.exp(rng.uniform(np.log(1e18), np.log(1e25), 4))
    what = f"`tokens_per_parameter(np.array({Cs.tolist()}), {shown})`"
    got = _array(_call(helpers, what, "tokens_per_parameter", Cs, **law), (4,), what)
    want = ref.tokens_per_parameter(Cs, **law)
    if not np.allclose(got, want, rtol=1e-6):
        fail(f"{what}: expected {want.tolist()}, got {got.tolist()}.")


# --- kaplan_comparison ----------------------------------------------------------------------------


def _expect_run(got, expected, what, suspects, **kwargs):
    return _expect_optimum(got, expected, what, suspects, names=("N", "D"), **kwargs)


def _scale_suspects(n, d, C, a):
    r = C / (6 * n * d)
    return {
        "scaled the tokens with the same exponent as the model (D = n_tokens (C / C0)^a); D is what the budget "
        "leaves, C / (6 N)": (n * r ** a, d * r ** a),
        "used the exponent 1 - a for the model": (n * r ** (1 - a), C / (6 * n * r ** (1 - a))),
        "raised the budget itself to the power a instead of the ratio C / C0": (n * C ** a, C / (6 * n * C ** a)),
    }


@pytest.mark.exercise("kaplan_comparison")
@pytest.mark.points(2)
def test_scale_run_hand_worked(helpers):
    # 1B parameters on 20B tokens is 1.2e20 FLOPs; 1000 times that with N ~ C^0.5: 1000^0.5 = 31.6 times the
    # parameters, 31.6B, on 1.2e23 / (6 x 31.6e9) = 632B tokens (still 20 tokens per parameter).
    what = "`scale_run(1e9, 20e9, 1.2e23, 0.5)`"
    _expect_run(_call(helpers, what, "scale_run", 1e9, 20e9, 1.2e23, 0.5), (1e9 * 1000 ** 0.5, 20e9 * 1000 ** 0.5),
                    what, _scale_suspects(1e9, 20e9, 1.2e23, 0.5),
                    hint="N = n_params (C / C0)^a with C0 = 6 n_params n_tokens, then D = C / (6 N).")
    # The same with Kaplan's a = 0.73: 1000^0.73 = 155 times the parameters, 155B, on 1.2e23 / (6 x 155e9) = 129B
    # tokens; the tokens grow only as 1000^0.27 = 6.5 times.
    what = "`scale_run(1e9, 20e9, 1.2e23, 0.73)`"
    n = 1e9 * 1000 ** 0.73
    _expect_run(_call(helpers, what, "scale_run", 1e9, 20e9, 1.2e23, 0.73), (n, 1.2e23 / (6 * n)),
                    what, _scale_suspects(1e9, 20e9, 1.2e23, 0.73),
                    hint="N = n_params (C / C0)^a with C0 = 6 n_params n_tokens, then D = C / (6 N).")
    # Chinchilla's run (70B, 1.4T, 5.88e23 FLOPs) moved to GPT-3's budget, 6 x 175e9 x 300e9 = 3.15e23 FLOPs.
    C = 6 * 175e9 * 300e9
    n = 70e9 * (C / 5.88e23) ** 0.5
    what = "`scale_run(70e9, 1.4e12, 3.15e23, 0.5)` (Chinchilla's run at GPT-3's budget)"
    _expect_run(_call(helpers, what, "scale_run", 70e9, 1.4e12, C, 0.5), (n, C / (6 * n)), what,
                    _scale_suspects(70e9, 1.4e12, C, 0.5),
                    hint="GPT-3's budget buys a 51B model on 1.0T tokens with Chinchilla's exponent, not 175B on 300B.")


@pytest.mark.exercise("kaplan_comparison")
def test_compare_laws_kaplan_vs_chinchilla(helpers):
    what = "`compare_laws(1e9, 20e9, 1.2e23)`"
    got = _call(helpers, what, "compare_laws", 1e9, 20e9, 1.2e23)
    if not isinstance(got, dict) or set(got) != {"kaplan", "chinchilla"}:
        fail(f"{what}: expected a dict with the keys 'kaplan' and 'chinchilla', got {_describe(got)}.")
    # 1000 times the compute: Kaplan's N ~ C^0.73 gives 1000^0.73 = 155 times the parameters, 155B on only
    # 129B tokens (0.8 tokens per parameter); Chinchilla's N ~ C^0.5 gives 31.6B on 632B tokens.
    for key, a in (("kaplan", 0.73), ("chinchilla", 0.5)):
        n = 1e9 * 1000 ** a
        suspects = {f"used the exponent {b} for the model; {key.title()}'s is {a}": (1e9 * 1000 ** b, 1.2e23 / (6e9 * 1000 ** b))
                    for b in (0.27, 0.73, 0.5) if b != a}
        _expect_run(got[key], (n, 1.2e23 / (6 * n)), f"{what}[{key!r}]", suspects,
                        hint=f"Scale the run with scale_run and the exponent a = {a} "
                             f"({'KAPLAN' if key == 'kaplan' else 'CHINCHILLA'}_EXPONENTS[0]).")


@pytest.mark.exercise("kaplan_comparison")
@pytest.mark.hidden
def test_scale_run_random(helpers, ref, seed):
    rng = np.random.default_rng(seed)
    n, d = float(np.exp(rng.uniform(np.log(1e7), np.log(1e10)))), float(np.exp(rng.uniform(np.log(1e9), np.log(1e12))))
    C = 6 * n * d * float(np.exp(rng.uniform(0, np.log(1e5))))
    a = float(rng.uniform(0.3, 0.8))
    what = f"`scale_run({n:.6g}, {d:.6g}, {C:.6g}, {a:.4f})`"
    _expect_run(_call(helpers, what, "scale_run", n, d, C, a), ref.scale_run(n, d, C, a), what,
                    _scale_suspects(n, d, C, a))
    what = f"`compare_laws({n:.6g}, {d:.6g}, {C:.6g})`"
    got = _call(helpers, what, "compare_laws", n, d, C)
    want = ref.compare_laws(n, d, C)
    if not isinstance(got, dict) or set(got) != set(want):
        fail(f"{what}: expected a dict with the keys 'kaplan' and 'chinchilla', got {_describe(got)}.")
    for key in want:
        _expect_run(got[key], want[key], f"{what}[{key!r}]", {})


# --- plan_training_run ----------------------------------------------------------------------------


def _plan(helpers, what, *args):
    got = _call(helpers, what, "plan_training_run", *args)
    keys = {"n_params", "n_tokens", "tokens_per_parameter", "loss"}
    if not isinstance(got, dict) or set(got) != keys:
        fail(f"{what}: expected a dict with the keys {sorted(keys)}, got "
             f"{sorted(got) if isinstance(got, dict) else _describe(got)}.")
    return {k: as_number(v, f"{what}[{k!r}]") for k, v in got.items()}


def _expect_plan(plan, C, law, what, rel):
    n, d = _brute_force_optimum(C, law)
    expect_number(plan["n_params"], n, f"{what}['n_params']", rel=rel,
                  suspects=dict((label, sn) for label, (sn, _) in _optimum_suspects(C, **law).items()),
                  hint="The model size to train is N_opt of compute_optimal(C, **law).")
    expect_number(plan["n_tokens"], d, f"{what}['n_tokens']", rel=rel, hint="Train on D_opt tokens.")
    expect_number(plan["tokens_per_parameter"], d / n, f"{what}['tokens_per_parameter']", rel=rel,
                  suspects={"returned N / D; the ratio is tokens per parameter, D / N": n / d})
    loss = float(_loss(n, d, **law))
    expect_number(plan["loss"], loss, f"{what}['loss']", rel=1e-6,
                  suspects={"left out E, the irreducible loss": loss - law["E"]},
                  hint="The expected loss is the law's loss at the planned (N, D): chinchilla_loss(N, D, **law).")


@pytest.mark.exercise("plan_training_run")
@pytest.mark.points(2)
def test_plan_for_chinchillas_budget(helpers):
    # With the paper's (rounded) parameters the law asks, at Chinchilla's budget, for a 32.5B model on 3.0T
    # tokens (93 tokens per parameter) and predicts a loss of 1.930; Chinchilla (70B on 1.4T) gets 1.937.
    what = "`plan_training_run(5.88e23)`"
    _expect_plan(_plan(helpers, what, 5.88e23), 5.88e23, PAPER, what, rel=1e-4)


@pytest.mark.exercise("plan_training_run")
def test_plan_uses_the_given_law(helpers):
    # alpha = beta = 0.5, A = 1, B = 4, C = 6e8: C/6 = 1e8, N = 1e4 / 4 = 2500, D = 4 x 1e4 = 40000,
    # loss = 2 + 1 / 50 + 4 / 200 = 2.04.
    law = dict(E=2.0, A=1.0, B=4.0, alpha=0.5, beta=0.5)
    what = "`plan_training_run(6e8, law={'E': 2, 'A': 1, 'B': 4, 'alpha': 0.5, 'beta': 0.5})`"
    plan = _plan(helpers, what, 6e8, law)
    if _rel_close(plan["n_params"], _brute_force_optimum(6e8, PAPER)[0], 1e-4):
        fail(f"{what}: you planned with the paper's parameters ({plan['n_params']:.6g} parameters); use the law "
             "you are given (None means CHINCHILLA).")
    for key, want in (("n_params", 2500.0), ("n_tokens", 40000.0), ("tokens_per_parameter", 16.0), ("loss", 2.04)):
        expect_number(plan[key], want, f"{what}[{key!r}]", rel=1e-6,
                      hint="Plan and predict the loss with the law you are given: here N = sqrt(C/6) / 4 = 2500, "
                           "D = 4 sqrt(C/6) = 40000, loss = 2 + 1/50 + 4/200 = 2.04.")


@pytest.mark.exercise("plan_training_run")
@pytest.mark.hidden
def test_plan_random(helpers, ref, seed):
    rng = np.random.default_rng(seed)
    law = dict(E=float(rng.uniform(1, 3)), A=float(rng.uniform(50, 2000)), B=float(rng.uniform(50, 2000)),
               alpha=float(rng.uniform(0.2, 0.6)), beta=float(rng.uniform(0.2, 0.6)))
    C = float(np.exp(rng.uniform(np.log(1e18), np.log(1e25))))
    what = f"`plan_training_run({C:.6g}, law={ {k: round(v, 4) for k, v in law.items()} })`"
    plan = _plan(helpers, what, C, law)
    _expect_plan(plan, C, law, what, rel=1e-4)
    want = ref.plan_training_run(C, law)
    for key in want:
        expect_number(plan[key], want[key], f"{what}[{key!r}]", rel=1e-6)
