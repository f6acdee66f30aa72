"""`fmgrade show TOPIC [EXERCISE]`: the learner's results drawn beside the expected ones.

Each picture is a small spec (`Picture`): the exercise it belongs to, the check whose
recording holds the expected answers, a `gather` function that makes the calls on `impl`
(the learner's module, a proxy to the sandboxed worker) with inputs built here, the same
inputs as that check, and replays the check's recorded calls for the expected side, and a
`draw` function. Adding a picture is adding a spec to PICTURES.

Only data crosses from the worker; everything is drawn here, on matplotlib's Agg canvas, and
text in a picture goes through `plain` (its `$` escaped), so none of it is read as mathtext. The expected side comes
from tests/checks/<topic>/recorded.json, so pictures work in the student release, which has no
solutions. matplotlib is optional: `pip install 'fmgrade[pictures]'`.
"""

import base64
import html
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from grader.course import CourseError
from grader.errors import LearnerCodeError, LearnerTimeout, WorkerLost

PICTURES_DIR = Path(".fmgrade") / "pictures"
INSTALL_HINT = "pictures need matplotlib: pip install 'fmgrade[pictures]' (or pip install 'matplotlib>=3.6')"
MAX_TEXT = 120  # characters of any text from learner code shown in a picture or a problem line


class PicturesUnavailable(Exception):
    """matplotlib is not installed."""


class PictureProblem(Exception):
    """The learner's result cannot be drawn (wrong type or shape); the message says why."""


@dataclass(frozen=True)
class Picture:
    topic: str
    exercise: str
    name: str  # the file is <topic>-<name>.png
    title: str
    gather: Callable  # (impl, expected) -> dict of arrays; expected(check_id) is that check's recording
    draw: Callable  # (figure, data) -> None


@dataclass
class Drawn:
    """One picture: the data drawn (the learner's and the expected arrays), where, or why not."""

    picture: Picture
    data: dict = field(default_factory=dict)
    path: Path | None = None
    problem: str = ""


# --- data from the learner's code ------------------------------------------------------------


def safe_text(text):
    """Learner text for a problem line (or, through `plain`, a title): printable, one line, capped."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text).replace("\n", " "))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def plain(text):
    """Text for a title, with mathtext's `$` escaped so that nothing in it is read as markup."""
    return safe_text(text).replace("$", r"\$")


def as_array(value, what, shape=None):
    """`value` (a tensor, an array, a number) as a float64 numpy array, else PictureProblem."""
    if hasattr(value, "detach"):  # a torch tensor (complex or bool too)
        value = value.detach().cpu().double().numpy() if not value.is_complex() else value.detach().cpu().numpy()
    if isinstance(value, (bool, int, float)) or isinstance(value, numpy.ndarray):
        array = numpy.asarray(value, dtype=float)
    elif isinstance(value, numpy.generic):
        array = numpy.asarray(value.item(), dtype=float)
    else:
        raise PictureProblem(f"{what} returned a {safe_text(type(value).__name__)}, not a tensor or a number")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise PictureProblem(f"{what} has shape {tuple(array.shape)}, expected {tuple(shape)}")
    return array


def as_number(value, what):
    """One number from `value` (a number, or a tensor or array holding one), else PictureProblem."""
    array = as_array(value, what)
    if array.size != 1:
        raise PictureProblem(f"{what} returned {array.size} values (shape {tuple(array.shape)}), not one number")
    return float(array.reshape(-1)[0])


def _pair(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise PictureProblem(f"{what} should return a pair (output, p_attn), got a {safe_text(type(result).__name__)}")
    return result


# --- attention: the attention weights --------------------------------------------------------


def _attention_inputs():
    """The inputs of test_attention.py::test_mask_blocks_keys (same generator, same order)."""
    import torch

    from grader.checking import generator

    g = generator(2)
    q = torch.randn(2, 2, 5, 8, generator=g)
    k = torch.randn(2, 2, 5, 8, generator=g)
    v = torch.randn(2, 2, 5, 4, generator=g)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]]).view(2, 1, 1, 5)
    return q, k, v, causal & padding


def gather_attention(impl, expected):
    """p_attn of the second batch item, first head: causal and padded (keys 3, 4 hidden)."""
    q, k, v, mask = _attention_inputs()
    _, want = expected("test_attention.py::test_mask_blocks_keys").attention(q, k, v, mask=mask)
    what = "attention(q, k, v, mask=mask)"
    _, got = _pair(impl.attention(q, k, v, mask=mask), what)
    want = as_array(want, "the recorded p_attn")
    got = as_array(got, f"{what}'s p_attn", want.shape)
    return {
        "yours": got[1, 0],
        "expected": want[1, 0],
        "hidden": ~mask[1, 0].numpy(),
        "xlabel": "key position",
        "ylabel": "query position",
    }


# --- attention: the positional encoding table -------------------------------------------------


def gather_positional_encoding(impl, expected):
    """The (max_len, d_model) table of test_layers.py::test_pe_table_matches_sin_cos_formula."""
    want = expected("test_layers.py::test_pe_table_matches_sin_cos_formula").PositionalEncoding(16, 0.0, max_len=60).pe
    want = as_array(want, "the recorded table")
    got = as_array(impl.PositionalEncoding(16, 0.0, max_len=60).pe, "PositionalEncoding(16, 0.0, max_len=60).pe")
    if got.size != want.size:
        raise PictureProblem(f"PositionalEncoding(16, 0.0, max_len=60).pe has shape {got.shape}, expected {want.shape}")
    return {
        "yours": got.reshape(60, 16),
        "expected": want.reshape(60, 16),
        "xlabel": "dimension",
        "ylabel": "position",
    }


# --- attention: the learning-rate schedule ----------------------------------------------------

RATE_SETTING = (512, 1.0, 4000)  # the paper's d_model, factor and warm-up
RATE_RECORDED_STEPS = (1, 2000, 4000, 16000)  # test_training.py::test_rate_hand_worked_values, in order


def gather_rate(impl, expected):
    """The learner's schedule over 20 000 steps; the expected rates recorded at five steps."""
    model_size, factor, warmup = RATE_SETTING
    recorded = expected("test_training.py::test_rate_hand_worked_values")
    want = {step: recorded.rate(step, model_size, factor, warmup) for step in RATE_RECORDED_STEPS}
    want[0] = expected("test_training.py::test_rate_step_zero_is_step_one").rate(0, model_size, factor, warmup)
    steps = numpy.unique(numpy.concatenate([numpy.linspace(1, 20000, 100).round(), list(RATE_RECORDED_STEPS)]))
    yours = [as_number(impl.rate(int(s), model_size, factor, warmup), f"rate({int(s)}, ...)") for s in steps]
    marked = sorted(want)
    try:
        at_zero = as_number(impl.rate(0, model_size, factor, warmup), "rate(0, ...)")
    except LearnerCodeError:
        at_zero = math.nan  # drawn as missing; `fmgrade check` says why
    yours_marked = [at_zero if s == 0 else yours[int(numpy.searchsorted(steps, s))] for s in marked]
    return {
        "steps": steps,
        "yours": numpy.array(yours),
        "marked_steps": numpy.array(marked, dtype=float),
        "expected": numpy.array([as_number(want[s], "the recorded rate") for s in marked]),
        "yours_marked": numpy.array(yours_marked),
        "xlabel": "step",
        "ylabel": "learning rate",
    }


# --- gpt3: top-k and top-p filtering ------------------------------------------------------------

ROW = (1.0, 3.0, 2.0, 0.5, 2.5)  # test_decoding.py's ROW
LOG_PROBS = (-2.9957, -0.9163, -1.3863, -2.3026, -1.6094)  # about log([0.05, 0.4, 0.25, 0.1, 0.2])
TOP_K_ORDER, TOP_P_ORDER = (2, 1, 3, 5, 9), (0.3, 0.6, 0.7, 0.9, 1.0)  # the checks' recorded calls, in order


def _softmax(logits):
    finite = numpy.isfinite(logits)
    if not finite.any():
        return numpy.zeros_like(logits)
    shifted = numpy.where(finite, logits - logits[finite].max(), -numpy.inf)
    weights = numpy.exp(shifted)
    return weights / weights.sum()


def _replay_until(recorded, logits, key, order, wanted):
    """The recorded answer for `wanted`, replaying the check's earlier calls first (each
    recorded call is keyed by its place among the check's calls)."""
    for value in order:
        answer = recorded.filter_logits(logits, **{key: value})
        if value == wanted:
            return answer
    raise AssertionError(f"{wanted} is not among the recorded {key} values")


def gather_filtering(impl, expected):
    """One distribution cut by top_k=3 and another by top_p=0.7, the learner's against the recorded."""
    import torch

    cases = [
        ("top_k=3", ROW, "top_k", 3, "test_decoding.py::test_top_k_keeps_the_k_largest", TOP_K_ORDER),
        (
            "top_p=0.7",
            LOG_PROBS,
            "top_p",
            0.7,
            "test_decoding.py::test_top_p_keeps_the_smallest_set_reaching_p",
            TOP_P_ORDER,
        ),
    ]
    rows = []
    for label, values, key, value, check, order in cases:
        logits = torch.tensor(values)
        want = as_array(_replay_until(expected(check), logits, key, order, value), "the recorded answer")
        what = f"filter_logits(logits, {label})"
        got = as_array(impl.filter_logits(logits.clone(), **{key: value}), what, want.shape)
        rows.append(
            {
                "label": label,
                "before": _softmax(numpy.array(values)),
                "expected": _softmax(want),
                "yours": _softmax(got),
                "expected_kept": numpy.isfinite(want),
                "yours_kept": numpy.isfinite(got),
            }
        )
    return {"rows": rows}


# --- llama: RoPE's relative-position property ----------------------------------------------------


def gather_rope(impl, expected):
    """Scores q_m . k_n after RoPE for the same q and k at every position (the inputs of
    test_layers.py::test_rotary_scores_depend_on_relative_position_only). With RoPE they depend
    on m - n only: the expected picture is yours averaged along each diagonal (a property, so
    nothing here computes the rotation itself)."""
    import torch

    from grader.checking import generator

    g = generator(3)
    T, D = 10, 16
    q, k = torch.randn(D, generator=g), torch.randn(D, generator=g)
    xq, xk = q.expand(1, T, 1, D).contiguous(), k.expand(1, T, 1, D).contiguous()
    freqs_cis = impl.precompute_freqs_cis(D, T)
    result = impl.apply_rotary_emb(xq, xk, freqs_cis)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise PictureProblem(f"apply_rotary_emb should return a pair (xq_out, xk_out), got a {type(result).__name__}")
    rq = as_array(result[0], "apply_rotary_emb's xq_out", (1, T, 1, D))[0, :, 0]
    rk = as_array(result[1], "apply_rotary_emb's xk_out", (1, T, 1, D))[0, :, 0]
    scores = rq @ rk.T  # (T, T): scores[m, n] = q_m . k_n
    relative = numpy.zeros_like(scores)
    for offset in range(-T + 1, T):
        rows = numpy.arange(max(offset, 0), min(T, T + offset))
        relative[rows, rows - offset] = scores[rows, rows - offset].mean()
    return {
        "yours": scores,
        "expected": relative,
        "titles": ("yours: q_m . k_n", "depending on m - n only (mean of each diagonal)", "yours - that"),
        "xlabel": "key position n",
        "ylabel": "query position m",
    }


# --- scaling: loss contours and the compute-optimal frontier -----------------------------------------

OPTIMUM_BUDGETS = (1e19, 1e21, 5.88e23)  # test_allocation.py::test_closed_form_optimum, in order
CHINCHILLA_RUN = (70e9, 1.4e12)


def gather_scaling(impl, expected):
    """The learner's chinchilla_loss over a grid of (N, D) and compute_optimal over budgets; the
    recorded optima at three budgets and the recorded loss of Chinchilla's run."""
    recorded = expected("test_allocation.py::test_closed_form_optimum")
    want = [tuple(float(v) for v in recorded.compute_optimal(C)) for C in OPTIMUM_BUDGETS]
    chinchilla = float(
        expected("test_allocation.py::test_chinchilla_loss_paper_values").chinchilla_loss(*CHINCHILLA_RUN)
    )
    n_axis, d_axis = numpy.logspace(7, 12, 41), numpy.logspace(8, 13, 41)
    grid_n, grid_d = numpy.meshgrid(n_axis, d_axis)
    loss = as_array(impl.chinchilla_loss(grid_n, grid_d), "chinchilla_loss(N, D) on arrays", grid_n.shape)
    budgets = numpy.logspace(18, 25, 29)
    frontier = []
    for C in budgets:
        pair = impl.compute_optimal(float(C))
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise PictureProblem(f"compute_optimal({C:g}) should return a pair (N_opt, D_opt)")
        frontier.append([as_number(v, f"compute_optimal({C:g})") for v in pair])
    yours_at = []
    for C in OPTIMUM_BUDGETS:
        pair = impl.compute_optimal(C)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise PictureProblem(f"compute_optimal({C:g}) should return a pair (N_opt, D_opt)")
        yours_at.append([as_number(v, f"compute_optimal({C:g})") for v in pair])
    return {
        "n_axis": n_axis,
        "d_axis": d_axis,
        "loss": loss,
        "budgets": budgets,
        "frontier": numpy.array(frontier),
        "optimum_budgets": numpy.array(OPTIMUM_BUDGETS),
        "yours": numpy.array(yours_at),
        "expected": numpy.array(want),
        "chinchilla": (*CHINCHILLA_RUN, chinchilla),
    }


# --- deepspeed_chat: PPO's clipped objective against the ratio ----------------------------------------

CLIP = 0.2  # the cliprange passed to actor_loss_fn
RATIOS = numpy.round(numpy.linspace(0.5, 1.5, 41), 6)  # holds 1 - CLIP and 1 + CLIP exactly


def gather_ppo(impl, expected):
    """The learner's actor loss for one token as the ratio pi / pi_old goes from 0.5 to 1.5, for
    advantage +1 and -1. What PPO asks of it (Schulman et al. 2017, Figure 1) is a property:
    once the ratio leaves the clip range on the side the advantage pushes towards, the loss
    stops changing. The expected curve is yours held flat from that edge on; nothing here
    computes the loss itself."""
    import torch

    curves, flats = [], []
    for advantage in (1.0, -1.0):
        losses = []
        for ratio in RATIOS:
            loss = impl.actor_loss_fn(
                torch.tensor([[math.log(ratio)]]),
                torch.zeros(1, 1),
                torch.tensor([[advantage]]),
                torch.ones(1, 1),
                cliprange=CLIP,
            )
            losses.append(as_number(loss, f"actor_loss_fn(...) at ratio {ratio:g}"))
        losses = numpy.array(losses)
        edge = int(numpy.searchsorted(RATIOS, 1 + CLIP if advantage > 0 else 1 - CLIP))
        flat = losses.copy()
        if advantage > 0:
            flat[edge:] = losses[edge]
        else:
            flat[: edge + 1] = losses[edge]
        curves.append(losses)
        flats.append(flat)
    return {"ratios": RATIOS, "advantages": (1.0, -1.0), "yours": numpy.array(curves), "expected": numpy.array(flats)}


# --- drawing ---------------------------------------------------------------------------------


def _symmetric_limit(values):
    finite = numpy.abs(values[numpy.isfinite(values)])
    return max(float(finite.max()) if finite.size else 0.0, 1e-12)


def draw_heatmaps(figure, data):
    """Yours | expected | yours - expected; positions in data["hidden"] marked with x."""
    yours, want = data["yours"], data["expected"]
    diff = yours - want
    both = numpy.concatenate([yours[numpy.isfinite(yours)], want[numpy.isfinite(want)]])
    low, high = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    axes = figure.subplots(1, 3)
    titles = data.get("titles", ("yours", "expected", "yours - expected"))
    limit = max(_symmetric_limit(diff), 1e-3 * _symmetric_limit(want))  # float noise stays white
    panels = (
        (titles[0], yours, "viridis", low, high),
        (titles[1], want, "viridis", low, high),
        (titles[2], diff, "RdBu_r", -limit, limit),
    )
    for ax, (title, values, cmap, vmin, vmax) in zip(axes, panels):
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        figure.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(title)
        ax.set_xlabel(data["xlabel"])
        ax.set_ylabel(data["ylabel"])
        if title == titles[2] and numpy.nanmax(numpy.abs(diff), initial=0.0) <= 1e-6:
            ax.annotate("no difference", (0.5, 0.5), xycoords="axes fraction", ha="center")
        if "hidden" in data:
            rows, cols = numpy.nonzero(data["hidden"])
            ax.scatter(cols, rows, marker="x", color="white", s=40, linewidths=1.5)
    if "hidden" in data:
        axes[0].annotate("x: masked (weight should be 0)", (0, -0.22), xycoords="axes fraction", fontsize=8)


def draw_curve(figure, data):
    """The learner's curve with the expected points on it, and their difference at those points."""
    left, right = figure.subplots(1, 2)
    left.plot(data["steps"], data["yours"], color="tab:blue", label="yours")
    left.plot(data["marked_steps"], data["expected"], "o", color="tab:orange", label="expected (recorded)")
    left.plot(data["marked_steps"], data["yours_marked"], "x", color="tab:blue")
    left.set_xlabel(data["xlabel"])
    left.set_ylabel(data["ylabel"])
    left.legend()
    left.set_title("yours and the expected points")
    labels = [str(int(s)) for s in data["marked_steps"]]
    diff = data["yours_marked"] - data["expected"]
    right.bar(labels, numpy.nan_to_num(diff, nan=0.0), color=["tab:red" if d != 0 else "tab:green" for d in diff])
    for i, d in enumerate(diff):
        if not numpy.isfinite(d):
            right.annotate("no value", (i, 0), ha="center", fontsize=8)
    if numpy.all(numpy.abs(diff) <= 1e-6 * numpy.abs(data["expected"]) + 1e-12):
        right.annotate("no difference", (0.5, 0.5), xycoords="axes fraction", ha="center")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xlabel(data["xlabel"])
    right.set_title("yours - expected")


def draw_filtering(figure, data):
    """Per case: the distribution before, the expected one after, the learner's after; a token
    kept wrongly is a red bar, one dropped wrongly a red outline at its expected height."""
    rows = data["rows"]
    axes = figure.subplots(len(rows), 3, squeeze=False)
    for row, ax_row in zip(rows, axes):
        tokens = numpy.arange(len(row["before"]))
        wrong = row["yours_kept"] != row["expected_kept"]
        panels = (
            ("before", row["before"], ["tab:gray"] * len(tokens)),
            (f"expected after {row['label']}", row["expected"], ["tab:orange"] * len(tokens)),
            (f"yours after {row['label']}", row["yours"], ["tab:red" if w else "tab:blue" for w in wrong]),
        )
        for ax, (title, probs, colours) in zip(ax_row, panels):
            ax.bar(tokens, probs, color=colours)
            ax.set_ylim(0, 1)
            ax.set_xticks(tokens)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("token")
        dropped = wrong & row["expected_kept"]
        if dropped.any():
            ax_row[2].bar(tokens[dropped], row["expected"][dropped], fill=False, edgecolor="tab:red", linestyle="--")
        ax_row[0].set_ylabel("probability")
        if wrong.any():
            ax_row[2].annotate(
                "red: kept but should be dropped; outline: dropped but should be kept", (0, 0.92), fontsize=8
            )


def draw_scaling(figure, data):
    """Contours of the learner's loss over (N, D) with IsoFLOP lines, the learner's frontier and
    the recorded optima; beside it, the learner's optimum over the expected one at each budget."""
    left, right = figure.subplots(1, 2)
    lines = left.contour(data["n_axis"], data["d_axis"], data["loss"], levels=14, cmap="viridis")
    left.clabel(lines, fontsize=7)
    for C in data["optimum_budgets"]:
        left.plot(data["n_axis"], C / (6 * data["n_axis"]), ":", color="gray", linewidth=0.8)
    left.plot(data["frontier"][:, 0], data["frontier"][:, 1], color="tab:blue", label="your compute_optimal")
    left.plot(data["expected"][:, 0], data["expected"][:, 1], "o", color="tab:orange", label="expected optima")
    n, d, loss = data["chinchilla"]
    left.plot([n], [d], "*", color="black", markersize=10, label=f"Chinchilla run, expected loss {loss:.4f}")
    left.set(xscale="log", yscale="log", xlim=(data["n_axis"][0], data["n_axis"][-1]))
    left.set(ylim=(data["d_axis"][0], data["d_axis"][-1]), xlabel="parameters N", ylabel="tokens D")
    left.set_title("your loss contours, IsoFLOP lines (dotted)")
    left.legend(fontsize=8, loc="lower right")
    labels = [f"{C:.3g}" for C in data["optimum_budgets"]]
    with numpy.errstate(divide="ignore", invalid="ignore"):
        off = numpy.log10(data["yours"] / data["expected"])
    x = numpy.arange(len(labels))
    right.bar(x - 0.2, numpy.nan_to_num(off[:, 0]), 0.4, label="N_opt")
    right.bar(x + 0.2, numpy.nan_to_num(off[:, 1]), 0.4, label="D_opt")
    right.axhline(0, color="black", linewidth=0.8)
    if numpy.all(numpy.abs(off) <= 1e-6):
        right.annotate("no difference", (0.5, 0.5), xycoords="axes fraction", ha="center")
    right.set_xticks(x, labels)
    right.set(xlabel="budget C (FLOPs)", title="log10(yours / expected): 0 is right")
    right.legend(fontsize=8)


def draw_ppo(figure, data):
    """Per advantage sign: the learner's loss against the ratio, the clip range shaded, the
    expected flat part dashed; then yours minus expected."""
    axes = figure.subplots(1, 3)
    ratios = data["ratios"]
    for ax, advantage, yours, flat in zip(axes, data["advantages"], data["yours"], data["expected"]):
        ax.axvspan(1 - CLIP, 1 + CLIP, color="0.92", label=f"clip range 1 +- {CLIP:g}")
        ax.plot(ratios, yours, color="tab:blue", label="yours")
        side = ratios >= 1 + CLIP if advantage > 0 else ratios <= 1 - CLIP
        ax.plot(ratios[side], flat[side], "--", color="tab:orange", label="expected: flat from the edge")
        ax.set(xlabel="ratio pi / pi_old", ylabel="actor loss", title=f"advantage {advantage:+g}")
        ax.legend(fontsize=8)
    diff = data["yours"] - data["expected"]
    for advantage, row in zip(data["advantages"], diff):
        axes[2].plot(ratios, row, label=f"advantage {advantage:+g}")
    axes[2].axhline(0, color="black", linewidth=0.8)
    if numpy.abs(diff).max() <= 1e-6:
        axes[2].annotate("no difference", (0.5, 0.5), xycoords="axes fraction", ha="center")
    axes[2].set(xlabel="ratio pi / pi_old", title="yours - expected")
    axes[2].legend(fontsize=8)


PICTURES = (
    Picture("attention", "attention", "attention-weights", "attention weights, causal + padding mask",
            gather_attention, draw_heatmaps),
    Picture("attention", "positional_encoding", "positional-encoding", "the sinusoidal position table",
            gather_positional_encoding, draw_heatmaps),
    Picture("attention", "rate", "rate", "the learning-rate schedule (d_model 512, warm-up 4000)",
            gather_rate, draw_curve),
    Picture("gpt3", "filter_logits", "top-k-top-p", "a distribution before and after top-k / top-p",
            gather_filtering, draw_filtering),
    Picture("llama", "rotary", "rope-relative", "RoPE: q . k depends on the distance m - n only",
            gather_rope, draw_heatmaps),
    Picture("scaling", "compute_optimal", "compute-optimal", "loss contours and the compute-optimal frontier",
            gather_scaling, draw_scaling),
    Picture("deepspeed_chat", "ppo_losses", "ppo-clipped-objective", "PPO's clipped objective against the ratio",
            gather_ppo, draw_ppo),
)  # fmt: skip


# --- use cases ----------------------------------------------------------------------------------


def pictures_for(course, topic_id, exercise=None):
    """The specs for a topic (one exercise of it); CourseError naming what exists otherwise."""
    topic = course.topic(topic_id)
    found = [p for p in PICTURES if p.topic == topic.id]
    if not found:
        having = sorted({p.topic for p in PICTURES})
        raise CourseError(f"topic '{topic.id}' has no pictures yet; topics with pictures: {', '.join(having)}")
    if exercise is not None:
        topic.exercise(exercise)
        chosen = [p for p in found if p.exercise == exercise]
        if not chosen:
            names = ", ".join(dict.fromkeys(p.exercise for p in found))
            raise CourseError(f"exercise '{exercise}' of topic '{topic.id}' has no picture; pictures: {names}")
        found = chosen
    return found


def require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PicturesUnavailable(INSTALL_HINT) from None


def expected_answers(course, topic_id):
    """`expected(check_id)`: a fresh replay of that check's recorded answers."""
    from grader.judge import recordings
    from grader.judge.replay import Replay

    recording = recordings.load(course.checks_dir(topic_id), topic_id)
    return lambda check_id: Replay(recording, check_id).root()


def gather(picture, impl, expected):
    """The picture's data from `impl`, or a Drawn whose `problem` says why there is none."""
    from grader.judge.replay import RecordingMissing

    try:
        return Drawn(picture, picture.gather(impl, expected))
    except LearnerCodeError as exc:
        return Drawn(picture, problem=f"your code raised {safe_text(exc)}")
    except (LearnerTimeout, WorkerLost, PictureProblem, RecordingMissing) as exc:
        return Drawn(picture, problem=safe_text(exc))


def render(figure, drawn, caption=""):
    """Draw `drawn` on a matplotlib Figure (or SubFigure), titled with its picture (and caption)."""
    picture = drawn.picture
    picture.draw(figure, drawn.data)
    figure.suptitle(plain(f"{picture.topic} / {picture.exercise}: {picture.title}{caption}"))


def _save(drawn, target, caption=""):
    """Draw `drawn` on its own Agg figure and save it as PNG to `target` (a path or a file)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(drawn.data.get("rows", [None]))
    with matplotlib.rc_context({"text.usetex": False}):
        figure = Figure(figsize=(13, 3.6 * rows), layout="constrained")
        FigureCanvasAgg(figure)
        render(figure, drawn, caption)
        figure.savefig(target, dpi=80, format="png")


def draw(drawn, folder):
    """Save the picture as folder/<topic>-<name>.png; sets and returns drawn.path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{drawn.picture.topic}-{drawn.picture.name}.png"
    _save(drawn, path)
    drawn.path = path
    return path


def png(drawn, caption=""):
    """The picture as PNG bytes (for a page that inlines it)."""
    buffer = io.BytesIO()
    _save(drawn, buffer, caption)
    return buffer.getvalue()


class TrustedModule:
    """A module imported in this process (a solution, a known mistake: the course's own code),
    called the way the sandbox's proxy calls learner code: what it raises comes back as
    LearnerCodeError. For the class report, bench/ and tests, never for learner code."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the worker reports every exception the same way
                raise LearnerCodeError(type(exc).__name__, str(exc)) from None

        return call

    @classmethod
    def from_file(cls, path, name):
        """Import `path` as a module called `name`, kept out of sys.modules."""
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return cls(module)


def show(course, topic_id, exercise=None, *, isolation="auto", impl_path=None, folder=None):
    """Run the learner's code for each picture of the topic (or exercise) in the sandbox, and
    draw it beside the expected result into `folder` (default .fmgrade/pictures/)."""
    from grader.judge import runner
    from grader.sandbox import process as sandbox
    from grader.sandbox import proxy

    require_matplotlib()
    chosen = pictures_for(course, topic_id, exercise)
    topic = course.topic(topic_id)
    if not course.available(topic.id):
        raise CourseError(f"topic '{topic.id}' ({topic.title}) is not available yet in this course")
    module_file = f"exercises/{topic.id}.py"
    source, unreadable = runner.read_learner_file(
        impl_path or course.exercise_path(topic.id),
        module_file,
        None if impl_path else course.root,
        int(topic.limits.source_kb * 1024),
    )
    session = proxy.Session(
        module_file,
        source,
        topic.limits,
        sandbox.choose_isolation(isolation),
        hidden_roots=(course.root,),
        unreadable=unreadable,
    )
    expected = expected_answers(course, topic.id)
    folder = folder or course.root / PICTURES_DIR
    results = []
    try:
        for picture in chosen:
            try:
                session.begin_check(picture.exercise)
                impl = session.module()
            except (LearnerCodeError, LearnerTimeout, WorkerLost) as exc:
                results.append(Drawn(picture, problem=safe_text(exc)))
                continue
            drawn = gather(picture, impl, expected)
            if not drawn.problem:
                try:
                    draw(drawn, folder)
                except Exception as exc:  # noqa: BLE001 - odd data (nan, inf) must not cost the other pictures
                    drawn.problem = f"could not be drawn ({type(exc).__name__}: {safe_text(exc)})"
            results.append(drawn)
    finally:
        session.close()
    return results


# --- the notebook ---------------------------------------------------------------------------------


class ShownPictures:
    """Pictures as a notebook shows them: inline PNGs (and the problems), or paths as text."""

    def __init__(self, drawn):
        self.drawn = drawn

    def _repr_html_(self):
        parts = []
        for d in self.drawn:
            caption = html.escape(f"{d.picture.exercise}: {d.picture.title}")
            if d.path is None:
                parts.append(f"<p><strong>{caption}</strong>: no picture, {html.escape(d.problem)}</p>")
                continue
            encoded = base64.b64encode(d.path.read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{encoded}" alt="{caption}" style="max-width:100%">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        return "<div>" + "".join(parts) + "</div>"

    def __repr__(self):
        return "\n".join(line(d) for d in self.drawn)


def line(drawn):
    """What the terminal prints for one picture: its path, or why there is none."""
    if drawn.path is not None:
        return str(drawn.path)
    return f"{drawn.picture.topic}/{drawn.picture.exercise}: no picture: {drawn.problem}"


def notebook_show(words, root=None):
    """`%fmgrade show TOPIC [EXERCISE]` (words after `show`), for grader.learner.notebook."""
    from grader import course as course_mod

    if not 1 <= len(words) <= 2:
        raise CourseError("usage: %fmgrade show TOPIC [EXERCISE]")
    return ShownPictures(show(course_mod.load(root), words[0], words[1] if len(words) > 1 else None))
