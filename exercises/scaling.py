# ---
# jupyter:
#   jupytext:
#     cell_markers: '"""'
# ---

# %% [markdown]
"""Compute-optimal scaling: how big a model, and how many tokens, for a compute budget.

Follows Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models" (the
Chinchilla paper, https://arxiv.org/abs/2203.15556), Section 3 and Appendix D:

- Training compute C ~= 6 N D FLOPs for N parameters and D training tokens.
- Approaches 1 and 2 find the loss-optimal N for each budget (Approach 1 from the envelope of
  training curves, Approach 2 as the minimum of a parabola fitted to an IsoFLOP profile, loss
  against log N), then fit power laws N_opt = G C^a and D_opt = G' C^b.
- Approach 3: fit L(N, D) = E + A / N^alpha + B / D^beta to every run by minimising a Huber
  loss (delta = 1e-3) on log L with L-BFGS from a grid of starting points; the paper finds
  E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28. Minimising L under C = 6 N D has
  a closed form (the paper's eq. 4): N_opt and D_opt are powers of C/6, with exponents that
  depend on alpha and beta only and sum to 1.

The exponent a (N_opt grows as C^a) is 0.50, 0.49 and 0.46 in Approaches 1, 2 and 3; Kaplan et al.
(2020) found 0.73. Note a disagreement inside the paper: the rounded parameters printed above
give a = 0.28 / 0.62 = 0.452, not the 0.46 reported for Approach 3, and at Chinchilla's own
budget they ask for about 93 tokens per parameter where Chinchilla (70B parameters on 1.4T
tokens) was trained with 20, the ratio of Approaches 1 and 2. Besiroglu et al. (2024,
"Chinchilla Scaling: A replication attempt", Epoch AI) digitised the runs of the paper's
Figure 4 and re-fitted them; `tests/checks/scaling/chinchilla_epoch_data.csv` is their data.

Conventions: N = parameters, D = training tokens, C = FLOPs, L = loss in nats per token; log
is the natural logarithm. Functions take numbers or numpy arrays (element-wise) and return a
Python float for a single value, a float64 numpy array otherwise.
"""

# %%
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

# The paper's fit of the parametric loss (Approach 3).
CHINCHILLA = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)

# Exponents a (N_opt ~ C^a) and b (D_opt ~ C^b) of the two laws compared in `compare_laws`.
KAPLAN_EXPONENTS = (0.73, 0.27)  # Kaplan et al. (2020): grow the model much faster than the data
CHINCHILLA_EXPONENTS = (0.50, 0.50)  # Hoffmann et al. (2022), Approach 1: grow both equally

# L-BFGS for `fit_parametric_loss`: starts kept from the grid, and iterations per start.
LBFGS_STARTS = 3
LBFGS_MAX_ITER = 200


# %%
def _positive(x, name):
    """`x` as a float64 numpy array; ValueError (naming `name`) unless every entry is finite
    and > 0. Use it on every input that must be positive."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite, got {x!r}")
    return arr


# %%
def _result(arr):
    """A Python float for a single value, the float64 array otherwise."""
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


# --- The parametric loss and compute --------------------------------------------------------


# %%
def training_flops(n_params, n_tokens):
    """Training compute C = 6 N D: about 2 N FLOPs per token for the forward pass and 4 N for
    the backward pass. ValueError for non-positive inputs."""
    # TODO(chinchilla_loss): Training compute C = 6 N D and the parametric loss L(N, D) = E + A / N^alpha + B / D^beta.
    raise NotImplementedError("exercise `chinchilla_loss` is not done yet: fill in this TODO in exercises/scaling.py")


# %%
def chinchilla_loss(N, D, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28):
    """The parametric loss L(N, D) = E + A / N^alpha + B / D^beta.

    E is the loss of an ideal model (the entropy of text), A / N^alpha what a model of N
    parameters falls short of it, B / D^beta what training on only D tokens costs.
    ValueError for non-positive N or D.
    """
    # TODO(chinchilla_loss): Training compute C = 6 N D and the parametric loss L(N, D) = E + A / N^alpha + B / D^beta.
    raise NotImplementedError("exercise `chinchilla_loss` is not done yet: fill in this TODO in exercises/scaling.py")


# --- Approach 3's closed form ---------------------------------------------------------------


# %%
def compute_optimal(C, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28):
    """(N_opt, D_opt): the N and D minimising chinchilla_loss(N, D) under 6 N D = C.

    N_opt = G (C/6)^a and D_opt = G^-1 (C/6)^b (Hoffmann et al., 2022, eq. 4): substitute
    D = C / (6 N) into the loss and set its derivative in N to zero to find a, b and G.
    E does not move the optimum. C may be an array (element-wise). ValueError for C <= 0.
    """
    # TODO(compute_optimal): The closed-form compute-optimal model size and token count for a budget, and the tokens per parameter.
    raise NotImplementedError("exercise `compute_optimal` is not done yet: fill in this TODO in exercises/scaling.py")


# %%
def tokens_per_parameter(C, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28):
    """D_opt / N_opt at budget C: how many training tokens per parameter the law asks for.
    (Chinchilla itself, 70B parameters on 1.4T tokens, has 20.)"""
    # TODO(compute_optimal): The closed-form compute-optimal model size and token count for a budget, and the tokens per parameter.
    raise NotImplementedError("exercise `compute_optimal` is not done yet: fill in this TODO in exercises/scaling.py")


# --- Approach 3: fitting the parametric loss ------------------------------------------------


# %%
def start_grid():
    """The grid of starting points of Appendix D.2, as rows (a, b, e, alpha, beta), (4500, 5):
    a, b in {0, 5, ..., 25}, e in {-1, -0.5, ..., 1}, alpha, beta in {0, 0.5, ..., 2}."""
    a = b = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    e = [-1.0, -0.5, 0.0, 0.5, 1.0]
    alpha = beta = [0.0, 0.5, 1.0, 1.5, 2.0]
    return torch.tensor(list(itertools.product(a, b, e, alpha, beta)), dtype=torch.float64)


# %%
def lbfgs_closure(optimizer, objective):
    """The closure torch.optim.LBFGS.step(closure) needs, for `objective()` returning a scalar
    tensor: it zeroes the gradients, evaluates the objective, backpropagates and returns it."""

    def closure():
        optimizer.zero_grad()
        value = objective()
        value.backward()
        return value

    return closure


# %%
def huber_objective(theta, N, D, L, delta=1e-3):
    """The objective of Approach 3: sum over runs i of Huber_delta(log L_hat_i - log L_i), with
    log L_hat_i = LSE(a - alpha log N_i, b - beta log D_i, e), the log of the parametric loss
    for A = exp(a), B = exp(b), E = exp(e) (LSE = log-sum-exp, stable where exp would overflow).

    theta: (5,) = (a, b, e, alpha, beta), or (K, 5) for K parameter sets at once.
    N, D, L: (n,) the runs' parameters, tokens and final losses.
    Returns the objective, a tensor of shape () for theta (5,) or (K,) for theta (K, 5).
    """
    theta = torch.as_tensor(theta, dtype=torch.float64)
    N, D, L = (torch.as_tensor(x, dtype=torch.float64) for x in (N, D, L))
    # TODO(fit_parametric_loss): Fit the parametric loss with a Huber loss on log L and L-BFGS from a grid of starts, as the paper does.
    raise NotImplementedError("exercise `fit_parametric_loss` is not done yet: fill in this TODO in exercises/scaling.py")


# %%
def fit_parametric_loss(N, D, L, delta=1e-3):
    """Fit L(N, D) = E + A / N^alpha + B / D^beta to runs (N_i, D_i, L_i), as Approach 3 does.

    Score every point of `start_grid()` with `huber_objective`, run L-BFGS (float64,
    strong-Wolfe line search, at most LBFGS_MAX_ITER iterations, `lbfgs_closure`) from the
    LBFGS_STARTS best, and keep the result with the lowest objective.
    Returns {"E": ..., "A": ..., "B": ..., "alpha": ..., "beta": ...} as Python floats.
    """
    N, D, L = (torch.from_numpy(_positive(x, name)) for x, name in ((N, "N"), (D, "D"), (L, "L")))
    # TODO(fit_parametric_loss): Fit the parametric loss with a Huber loss on log L and L-BFGS from a grid of starts, as the paper does.
    raise NotImplementedError("exercise `fit_parametric_loss` is not done yet: fill in this TODO in exercises/scaling.py")


# --- Approaches 1 and 2: optima per budget, then power laws ---------------------------------


# %%
def isoflop_optimum(n_params, losses):
    """Approach 2: the loss-optimal model size on one IsoFLOP profile (runs of one budget).

    Fit a parabola to the loss against log N and return the N at its minimum, a Python float.
    ValueError for non-positive sizes, fewer than 3 runs, or a parabola without a minimum.
    """
    # TODO(isoflop): Approach 2, the loss-optimal model size on an IsoFLOP profile, from a parabola in log N.
    raise NotImplementedError("exercise `isoflop` is not done yet: fill in this TODO in exercises/scaling.py")


# %%
def fit_power_law(x, y):
    """(coefficient, exponent) of y = G x^a, by least squares on log y = log G + a log x.
    Used to read N_opt ~ C^a and D_opt ~ C^b from the optima of several budgets."""
    # TODO(power_law): Fit y = G x^a by least squares in log space, to read the exponents of N_opt and D_opt.
    raise NotImplementedError("exercise `power_law` is not done yet: fill in this TODO in exercises/scaling.py")


# --- Chinchilla against Kaplan et al. (2020) ------------------------------------------------


# %%
def scale_run(n_params, n_tokens, C, a):
    """Scale a run you trust, (n_params, n_tokens), to the budget C with N_opt ~ C^a.

    Its own budget is C0 = 6 n_params n_tokens; the new model has N = n_params (C / C0)^a
    parameters and is trained on D = C / (6 N) tokens (so D grows as C^(1 - a)). Returns (N, D).
    """
    # TODO(kaplan_comparison): Scale a trusted run to a bigger budget with Kaplan's N ~ C^0.73 and Chinchilla's N ~ C^0.5, and compare.
    raise NotImplementedError("exercise `kaplan_comparison` is not done yet: fill in this TODO in exercises/scaling.py")


# %%
def compare_laws(n_params, n_tokens, C):
    """Which model each law trains at budget C, starting from the same run (n_params, n_tokens):
    {"kaplan": (N, D), "chinchilla": (N, D)}, with N ~ C^0.73 for Kaplan et al. (2020) and
    N ~ C^0.5 for Chinchilla (KAPLAN_EXPONENTS, CHINCHILLA_EXPONENTS)."""
    # TODO(kaplan_comparison): Scale a trusted run to a bigger budget with Kaplan's N ~ C^0.73 and Chinchilla's N ~ C^0.5, and compare.
    raise NotImplementedError("exercise `kaplan_comparison` is not done yet: fill in this TODO in exercises/scaling.py")


# --- Planning a training run ----------------------------------------------------------------


# %%
def plan_training_run(C, law=None):
    """Plan a run for a budget of C FLOPs with a parametric law: a dict with keys
    "E", "A", "B", "alpha", "beta" (what `fit_parametric_loss` returns); None means the paper's
    fit, CHINCHILLA.

    Returns {"n_params": N_opt, "n_tokens": D_opt, "tokens_per_parameter": D_opt / N_opt,
    "loss": the law's loss at (N_opt, D_opt)}, all Python floats.
    """
    law = dict(CHINCHILLA if law is None else law)
    # TODO(plan_training_run): Plan a training run for a FLOP budget, the model size, token count and expected loss.
    raise NotImplementedError("exercise `plan_training_run` is not done yet: fill in this TODO in exercises/scaling.py")
