"""Checks for compute, the parametric loss, its compute-optimal closed form, the comparison with
Kaplan et al. (2020), and planning a training run.

The checks hold the learner's functions against hand-worked values (in the comments), the
paper's numbers, properties (6 N D = C, E does not move the optimum) and the recorded answers
of the course's solution. Every call goes through `helpers.call`, which hands back plain data or
the exception raised.
"""
import math

import numpy as np
import pytest

from grader.checking import as_array, as_number, expect_number, fail, fail_naming, new_comparison, shown

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


def _describe(got):
    if isinstance(got, dict) and set(got) == {"unsupported"}:
        return f"an object of type {got['unsupported']}"
    if isinstance(got, (tuple, list)):
        return f"a {type(got).__name__} of length {len(got)}"
    return f"{type(got).__name__} {shown(got)}"


def _pair(got, what):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(f"{what}: expected a pair (N, D), got {_describe(got)}.")
    return got


def _expect_error(helpers, what, name, *args, **kwargs):
    out = helpers.call(name, *args, **kwargs)
    if "error" not in out:
        fail(f"{what}: expected a ValueError, got {_describe(out['value'])}. Non-positive sizes, token counts "
             "and budgets have no meaning (and 0 ** -alpha is infinite): check inputs with _positive(x, name), "
             "which raises ValueError.")
    if out["type"] != "ValueError":
        fail(f"{what}: expected a ValueError, got {out['error']}. Check inputs with _positive(x, name).")


def _close(a, b, rel):
    try:
        return np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=rel, atol=0.0)
    except (TypeError, ValueError):
        return False


def _expect_pair(got, expected, what, *, rel=1e-6, key=None, names=("N", "D"), hint=None):
    """(N, D) as the solution answers it; `key` is where the pair sits in the solution's answer
    when that is a dict (compare_laws), so that a known mistake's answer is matched there."""
    N, D = _pair(got, what)
    N, D = as_number(N, f"{what}[0], {names[0]}"), as_number(D, f"{what}[1], {names[1]}")
    if _close(N, expected[0], rel) and _close(D, expected[1], rel):
        return N, D
    message = (f"{what}: expected ({names[0]}, {names[1]}) = ({expected[0]:.6g}, {expected[1]:.6g}), "
               f"got ({N:.6g}, {D:.6g}).")
    if not _close(6 * N * D, 6 * expected[0] * expected[1], 1e-6):
        message += f" Your {names[0]} and {names[1]} do not even spend the budget: 6 N D = {6 * N * D:.6g}."

    def matches(answer):
        if key is not None:
            answer = answer.get(key) if isinstance(answer, dict) else None
        return isinstance(answer, tuple) and len(answer) == 2 and _close(answer, (N, D), max(rel, 1e-6))

    fail_naming(message, matches, hint)


def _expect_arrays(got, expected, what, hint=None):
    """A pair of arrays (N, D), as compute_optimal answers for an array of budgets."""
    N, D = _pair(got, what)
    shape = np.shape(expected[0])
    N, D = _array(N, shape, f"{what}[0]"), _array(D, shape, f"{what}[1]")
    if _close(N, expected[0], 1e-6) and _close(D, expected[1], 1e-6):
        return N, D
    i = int(np.argmax(np.abs(N / expected[0] - 1) + np.abs(D / expected[1] - 1)))
    fail_naming(f"{what}: entry {i} is ({N[i]:.6g}, {D[i]:.6g}), expected ({expected[0][i]:.6g}, "
                f"{expected[1][i]:.6g}): array budgets must give each budget's own optimum.",
                lambda answer: isinstance(answer, tuple) and len(answer) == 2 and _close(answer[0], N, 1e-6)
                and _close(answer[1], D, 1e-6), hint)


# --- chinchilla_loss ---------------------------------------------------------------------------


@pytest.mark.exercise("chinchilla_loss")
def test_training_flops_is_6ND(helpers, recorded):
    N, D = CHINCHILLA_RUN
    expect_number(_call(helpers, "`training_flops(70e9, 1.4e12)`", "training_flops", N, D),
                  recorded.training_flops(N, D), "`training_flops(70e9, 1.4e12)`, Chinchilla's training compute",
                  rel=1e-9, hint="C = 6 N D: 6 x 70e9 x 1.4e12 = 5.88e23 FLOPs.")
    new_comparison()
    n, d = np.array([1e9, 2e9]), np.array([2e10, 4e10])
    what = "`training_flops(np.array([1e9, 2e9]), np.array([2e10, 4e10]))`"
    got = _array(_call(helpers, what, "training_flops", n, d), (2,), what)
    expected = recorded.training_flops(n, d)  # [1.2e20, 4.8e20]
    if not _close(got, expected, 1e-9):
        fail_naming(f"{what}: expected {expected.tolist()}, got {got.tolist()}.", lambda answer: _close(answer, got, 1e-9))


@pytest.mark.exercise("chinchilla_loss")
@pytest.mark.points(2)
def test_chinchilla_loss_paper_values(helpers, recorded):
    N, D = CHINCHILLA_RUN
    expect_number(
        _call(helpers, "`chinchilla_loss(70e9, 1.4e12)`", "chinchilla_loss", N, D), recorded.chinchilla_loss(N, D),
        "`chinchilla_loss(70e9, 1.4e12)`, the paper's law at Chinchilla's size", rel=1e-9,
        hint="L = E + A / N^alpha + B / D^beta = 1.69 + 406.4 / 70e9^0.34 + 410.7 / 1.4e12^0.28 = 1.9366.",
    )
    new_comparison()
    law = dict(E=2.0, A=100.0, B=400.0, alpha=0.5, beta=0.25)
    n, d = np.array([1e4, 1e6]), np.array([1e8, 1e4])
    what = "`chinchilla_loss(np.array([1e4, 1e6]), np.array([1e8, 1e4]), E=2, A=100, B=400, alpha=0.5, beta=0.25)`"
    got = _array(_call(helpers, what, "chinchilla_loss", n, d, **law), (2,), what)
    expected = recorded.chinchilla_loss(n, d, **law)  # 100 / 1e4^0.5 = 1, 400 / 1e8^0.25 = 4; then 0.1 and 40
    if not _close(got, expected, 1e-9):
        fail_naming(f"{what}: expected {expected.tolist()} (2 + 100/100 + 400/100 and 2 + 100/1000 + 400/10), got "
                    f"{got.tolist()}.", lambda answer: _close(answer, got, 1e-9),
                    "Use the parameters you are given, not the paper's.")


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
    law = _random_law(rng, 0.1, 0.7)
    what = f"`chinchilla_loss(N, D, **{ {k: round(v, 4) for k, v in law.items()} })` for N = {N.round(0).tolist()}, D = {D.round(0).tolist()}"
    got = _array(_call(helpers, what, "chinchilla_loss", N, D, **law), (5,), what)
    want = ref.chinchilla_loss(N, D, **law)
    if not _close(got, want, 1e-9):
        i = int(np.argmax(np.abs(got - want)))
        fail_naming(f"{what}: entry {i} is {got[i]:.6g}, expected {want[i]:.6g}.", lambda answer: _close(answer, got, 1e-9),
                    "L = E + A / N^alpha + B / D^beta.")
    n, d = N.tolist(), D.tolist()  # plain floats: only plain data crosses to the worker
    for i in range(2):
        new_comparison()
        w = f"`training_flops({n[i]:.6g}, {d[i]:.6g})`"
        expect_number(_call(helpers, w, "training_flops", n[i], d[i]), ref.training_flops(n[i], d[i]), w, rel=1e-9)
    _expect_error(helpers, f"`training_flops({-n[0]:.6g}, {d[0]:.6g})`", "training_flops", -n[0], d[0])
    _expect_error(helpers, f"`chinchilla_loss({n[1]:.6g}, 0.0)`", "chinchilla_loss", n[1], 0.0)


def _random_law(rng, low, high):
    return dict(E=float(rng.uniform(1, 3)), A=float(rng.uniform(50, 2000)), B=float(rng.uniform(50, 2000)),
                alpha=float(rng.uniform(low, high)), beta=float(rng.uniform(low, high)))


# --- compute_optimal -----------------------------------------------------------------------------

OPTIMUM_HINT = ("N_opt = G (C/6)^a, D_opt = (C/6)^b / G with a = beta / (alpha + beta), b = alpha / (alpha + beta), "
                "G = (alpha A / (beta B))^(1 / (alpha + beta)).")


@pytest.mark.exercise("compute_optimal")
@pytest.mark.points(3)
def test_closed_form_optimum(helpers, recorded):
    for C in (1e19, 1e21, 5.88e23):
        new_comparison()
        what = f"`compute_optimal({C:g})` with the paper's parameters"
        N, D = _expect_pair(_call(helpers, what, "compute_optimal", C), recorded.compute_optimal(C), what,
                            names=("N_opt", "D_opt"), hint=OPTIMUM_HINT)
        if not math.isclose(6 * N * D, C, rel_tol=1e-9):
            fail(f"{what}: 6 N_opt D_opt = {6 * N * D:.6g}, not the budget {C:g}.")


@pytest.mark.exercise("compute_optimal")
def test_compute_optimal_arrays_and_errors(helpers, recorded):
    C = np.array([1e19, 1e21, 1e23])
    what = "`compute_optimal(np.array([1e19, 1e21, 1e23]))`"
    out = helpers.call("compute_optimal", C)
    if "error" in out:
        fail(f"{what} raised {out['error']}. With an array of budgets the function must work element-wise: use "
             "numpy operations (np.asarray, ** on arrays), not math.pow or float().")
    N, _ = _expect_arrays(out["value"], recorded.compute_optimal(C), what, hint=OPTIMUM_HINT)
    n3, _ = _pair(_call(helpers, "`compute_optimal(1e21, E=3.0)`", "compute_optimal", 1e21, **dict(PAPER, E=3.0)),
                  "`compute_optimal(1e21, E=3.0)`")
    n3 = as_number(n3, "`compute_optimal(1e21, E=3.0)`[0]")
    if not math.isclose(n3, N[1], rel_tol=1e-9):
        fail(f"`compute_optimal(1e21, E=3.0)` gives N_opt = {n3:.6g} but E = 1.69 gives {N[1]:.6g}: E is a constant "
             "added to the loss, it cannot move the optimum.")
    _expect_error(helpers, "`compute_optimal(0.0)`", "compute_optimal", 0.0)
    _expect_error(helpers, "`compute_optimal(np.array([1e20, -1e20]))`", "compute_optimal", np.array([1e20, -1e20]))


@pytest.mark.exercise("compute_optimal")
def test_tokens_per_parameter(helpers, recorded):
    expect_number(_call(helpers, "`tokens_per_parameter(5.88e23)`", "tokens_per_parameter", 5.88e23),
                  recorded.tokens_per_parameter(5.88e23),
                  "`tokens_per_parameter(5.88e23)` with the paper's parameters (Chinchilla's budget)", rel=1e-6,
                  hint="The ratio is D_opt / N_opt of compute_optimal; at Chinchilla's budget the rounded Approach 3 "
                       "law asks for more tokens per parameter than the 20 Chinchilla was trained with.")
    new_comparison()
    # alpha = beta = 0.5, A = 1, B = 4: a = b = 1/2 and G = (0.5 / 2)^1 = 1/4, so N = sqrt(C/6) / 4 and
    # D = 4 sqrt(C/6): 16 tokens per parameter at every budget.
    law = dict(E=2.0, A=1.0, B=4.0, alpha=0.5, beta=0.5)
    C = np.array([6e8, 6e20])
    what = "`tokens_per_parameter(np.array([6e8, 6e20]), E=2, A=1, B=4, alpha=0.5, beta=0.5)`"
    got = _array(_call(helpers, what, "tokens_per_parameter", C, **law), (2,), what)
    expected = recorded.tokens_per_parameter(C, **law)
    if not _close(got, expected, 1e-9):
        fail_naming(f"{what}: expected {expected.tolist()} (N = sqrt(C/6) / 4 and D = 4 sqrt(C/6)), got {got.tolist()}.",
                    lambda answer: _close(answer, got, 1e-9))


@pytest.mark.exercise("compute_optimal")
@pytest.mark.hidden
@pytest.mark.points(2)
def test_compute_optimal_random_laws(helpers, ref, seed):
    rng = np.random.default_rng(seed)
    law = _random_law(rng, 0.2, 0.6)
    C = float(np.exp(rng.uniform(np.log(1e18), np.log(1e25))))
    law_text = ", ".join(f"{k}={v:.4g}" for k, v in law.items())
    what = f"`compute_optimal({C:.6g}, {law_text})`"
    _expect_pair(_call(helpers, what, "compute_optimal", C, **law), ref.compute_optimal(C, **law), what,
                 names=("N_opt", "D_opt"))
    new_comparison()
    Cs = np.exp(rng.uniform(np.log(1e18), np.log(1e25), 4))
    what = f"`tokens_per_parameter(np.array({Cs.tolist()}), {law_text})`"
    got = _array(_call(helpers, what, "tokens_per_parameter", Cs, **law), (4,), what)
    want = ref.tokens_per_parameter(Cs, **law)
    if not _close(got, want, 1e-6):
        fail_naming(f"{what}: expected {want.tolist()}, got {got.tolist()}.", lambda answer: _close(answer, got, 1e-6))


# --- kaplan_comparison ----------------------------------------------------------------------------

SCALE_HINT = "N = n_params (C / C0)^a with C0 = 6 n_params n_tokens, then D = C / (6 N)."


@pytest.mark.exercise("kaplan_comparison")
@pytest.mark.points(2)
def test_scale_run_hand_worked(helpers, recorded):
    # 1B parameters on 20B tokens is 1.2e20 FLOPs; 1000 times that with N ~ C^0.5: 1000^0.5 = 31.6 times the
    # parameters, 31.6B, on 1.2e23 / (6 x 31.6e9) = 632B tokens (still 20 tokens per parameter).
    # With Kaplan's a = 0.73: 1000^0.73 = 155 times the parameters, 155B, on 1.2e23 / (6 x 155e9) = 129B
    # tokens; the tokens grow only as 1000^0.27 = 6.5 times.
    for a in (0.5, 0.73):
        new_comparison()
        what = f"`scale_run(1e9, 20e9, 1.2e23, {a})`"
        _expect_pair(_call(helpers, what, "scale_run", 1e9, 20e9, 1.2e23, a), recorded.scale_run(1e9, 20e9, 1.2e23, a),
                     what, hint=SCALE_HINT)
    # Chinchilla's run (70B, 1.4T, 5.88e23 FLOPs) moved to GPT-3's budget, 6 x 175e9 x 300e9 = 3.15e23 FLOPs:
    # a 51B model on 1.0T tokens with Chinchilla's exponent, not 175B on 300B.
    new_comparison()
    C = 6 * 175e9 * 300e9
    what = "`scale_run(70e9, 1.4e12, 3.15e23, 0.5)` (Chinchilla's run at GPT-3's budget)"
    _expect_pair(_call(helpers, what, "scale_run", 70e9, 1.4e12, C, 0.5), recorded.scale_run(70e9, 1.4e12, C, 0.5),
                 what, hint=SCALE_HINT)


@pytest.mark.exercise("kaplan_comparison")
def test_compare_laws_kaplan_vs_chinchilla(helpers, recorded):
    # 1000 times the compute: Kaplan's N ~ C^0.73 gives 1000^0.73 = 155 times the parameters, 155B on only
    # 129B tokens (0.8 tokens per parameter); Chinchilla's N ~ C^0.5 gives 31.6B on 632B tokens.
    what = "`compare_laws(1e9, 20e9, 1.2e23)`"
    got = _call(helpers, what, "compare_laws", 1e9, 20e9, 1.2e23)
    if not isinstance(got, dict) or set(got) != {"kaplan", "chinchilla"}:
        fail(f"{what}: expected a dict with the keys 'kaplan' and 'chinchilla', got {_describe(got)}.")
    expected = recorded.compare_laws(1e9, 20e9, 1.2e23)
    for key, a in (("kaplan", 0.73), ("chinchilla", 0.5)):
        _expect_pair(got[key], expected[key], f"{what}[{key!r}]", key=key,
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
    _expect_pair(_call(helpers, what, "scale_run", n, d, C, a), ref.scale_run(n, d, C, a), what)
    new_comparison()
    what = f"`compare_laws({n:.6g}, {d:.6g}, {C:.6g})`"
    got = _call(helpers, what, "compare_laws", n, d, C)
    want = ref.compare_laws(n, d, C)
    if not isinstance(got, dict) or set(got) != set(want):
        fail(f"{what}: expected a dict with the keys 'kaplan' and 'chinchilla', got {_describe(got)}.")
    for key in want:
        _expect_pair(got[key], want[key], f"{what}[{key!r}]", key=key)


# --- plan_training_run ----------------------------------------------------------------------------

PLAN_KEYS = ("n_params", "n_tokens", "tokens_per_parameter", "loss")
PLAN_HINTS = {
    "n_params": "The model size to train is N_opt of compute_optimal(C, **law).",
    "n_tokens": "Train on D_opt tokens.",
    "tokens_per_parameter": "The ratio is tokens per parameter, D / N.",
    "loss": "The expected loss is the law's loss at the planned (N, D): chinchilla_loss(N, D, **law).",
}


def _plan(helpers, what, *args):
    got = _call(helpers, what, "plan_training_run", *args)
    if not isinstance(got, dict) or set(got) != set(PLAN_KEYS):
        fail(f"{what}: expected a dict with the keys {sorted(PLAN_KEYS)}, got "
             f"{sorted(got) if isinstance(got, dict) else _describe(got)}.")
    return {k: as_number(v, f"{what}[{k!r}]") for k, v in got.items()}


def _expect_plan(plan, expected, what, E, extra_hint=""):
    if plan["loss"] < E:
        fail(f"{what}['loss']: {plan['loss']:.6g} is below E = {E:g}, the irreducible loss, which no model gets "
             "under: the law's loss is E + A / N^alpha + B / D^beta.")
    for key in PLAN_KEYS:
        if math.isclose(plan[key], expected[key], rel_tol=1e-6):
            continue
        fail_naming(f"{what}[{key!r}]: expected {expected[key]:.6g}, got {plan[key]:.6g}.",
                    lambda answer: isinstance(answer, dict) and _close(answer.get(key), plan[key], 1e-6),
                    PLAN_HINTS[key] + extra_hint)


@pytest.mark.exercise("plan_training_run")
@pytest.mark.points(2)
def test_plan_for_chinchillas_budget(helpers, recorded):
    # With the paper's (rounded) parameters the law asks, at Chinchilla's budget, for a model of less than half
    # Chinchilla's 70B, trained on about twice its 1.4T tokens.
    what = "`plan_training_run(5.88e23)`"
    _expect_plan(_plan(helpers, what, 5.88e23), recorded.plan_training_run(5.88e23), what, PAPER["E"])


@pytest.mark.exercise("plan_training_run")
def test_plan_uses_the_given_law(helpers, recorded):
    # alpha = beta = 0.5, A = 1, B = 4, C = 6e8: C/6 = 1e8, N = 1e4 / 4 = 2500, D = 4 x 1e4 = 40000,
    # 16 tokens per parameter, loss = 2 + 1 / 50 + 4 / 200 = 2.04.
    law = dict(E=2.0, A=1.0, B=4.0, alpha=0.5, beta=0.5)
    what = "`plan_training_run(6e8, law={'E': 2, 'A': 1, 'B': 4, 'alpha': 0.5, 'beta': 0.5})`"
    _expect_plan(_plan(helpers, what, 6e8, law), recorded.plan_training_run(6e8, law), what, law["E"],
                 " Plan and predict the loss with the law you are given (None means CHINCHILLA).")


@pytest.mark.exercise("plan_training_run")
@pytest.mark.hidden
def test_plan_random(helpers, ref, seed):
    rng = np.random.default_rng(seed)
    law = _random_law(rng, 0.2, 0.6)
    C = float(np.exp(rng.uniform(np.log(1e18), np.log(1e25))))
    what = f"`plan_training_run({C:.6g}, law={ {k: round(v, 4) for k, v in law.items()} })`"
    _expect_plan(_plan(helpers, what, C, law), ref.plan_training_run(C, law), what, law["E"])
