"""Checks for LLaMA's layers: RMSNorm, rotary position embeddings (Meta's adjacent-pair layout)
and the SwiGLU feed-forward network.

Visible checks hold the learner's code against the formulas written out here in float64 (real
2x2 rotations for RoPE, not complex numbers), against properties (relative positions, norms)
and against the sizes of the released models; hidden checks draw sizes and weights from the
run's seed and compare with the reference solution.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, expect_tensor, fail


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


# --- rms_norm ----------------------------------------------------------------------------


def _rms(x, w, eps, variant="ok"):
    """RMSNorm written out in float64; `variant` reproduces known mistakes."""
    x, w = x.double(), w.double()
    if variant == "centered":  # LayerNorm's centring, without its bias
        x = x - x.mean(-1, keepdim=True)
    square = x.pow(2).sum(-1, keepdim=True) if variant == "sum" else x.pow(2).mean(-1, keepdim=True)
    if variant == "eps_outside":
        scale = 1 / (square.sqrt() + eps)
    elif variant == "no_sqrt":
        scale = 1 / (square + eps)
    elif variant == "no_eps":
        scale = square.rsqrt()
    else:
        scale = (square + eps).rsqrt()
    if variant == "no_weight":
        return x * scale
    return x * scale * w


_RMS_MISTAKES = {
    "subtracted the mean first: that is LayerNorm; RMSNorm only rescales, x * rsqrt(mean(x^2) + eps) * weight": "centered",
    "forgot the weight: multiply the normalised x by self.weight": "no_weight",
    "used the sum of squares instead of their mean, x.pow(2).mean(-1, keepdim=True)": "sum",
    "divided by mean(x^2) itself instead of its square root: rsqrt, the reciprocal square root": "no_sqrt",
    "added eps outside the square root: eps goes inside, rsqrt(mean(x^2) + eps)": "eps_outside",
}


def _rms_suspects(x, w, eps):
    return {label: _rms(x, w, eps, variant) for label, variant in _RMS_MISTAKES.items()}


def _norm_with_weight(impl, dim, weight, **kwargs):
    norm = impl.RMSNorm(dim, **kwargs)
    sd = norm.state_dict()
    if sorted(sd) != ["weight"]:
        fail(f"`RMSNorm({dim}).state_dict()` holds {sorted(sd)}; expected one parameter, `weight` of shape ({dim},) "
             "(RMSNorm has no bias).")
    norm.load_state_dict({"weight": weight})
    return norm


@pytest.mark.exercise("rms_norm")
@pytest.mark.points(2)
def test_rms_norm_matches_formula(impl):
    g = _gen(0)
    x = torch.randn(2, 4, 16, generator=g) * torch.tensor([0.5, 3.0, 1.0, 10.0]).view(1, 4, 1) + 0.5
    fresh = impl.RMSNorm(16).state_dict()
    if "weight" in fresh and not torch.equal(torch.as_tensor(fresh["weight"]).float(), torch.ones(16)):
        fail("`RMSNorm(16).weight` should start as ones, nn.Parameter(torch.ones(dim)).")
    weight = 1 + 0.3 * torch.randn(16, generator=g)
    norm = _norm_with_weight(impl, 16, weight)
    expect_close(norm(x), _rms(x, weight, 1e-6), "`RMSNorm(16)(x)` with a learned weight (eps 1e-6)",
                 suspects=_rms_suspects(x, weight, 1e-6),
                 hint="Expected x * rsqrt(mean(x^2) + eps) * weight, the mean over the last dimension (keepdim=True).")


@pytest.mark.exercise("rms_norm")
def test_rms_norm_hand_worked_with_large_eps(impl):
    # x = [1, 2, 3, 4]: mean(x^2) = 30 / 4 = 7.5; with eps = 0.5, rsqrt(8) = 0.353553, so the
    # output is [0.353553, 0.707107, 1.060660, 1.414214]. With eps outside the square root it
    # would be x / (sqrt(7.5) + 0.5) = x * 0.30888.
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    ones = torch.ones(4)
    norm = impl.RMSNorm(4, eps=0.5)
    expect_close(norm(x), torch.tensor([[0.353553, 0.707107, 1.060660, 1.414214]]),
                 "`RMSNorm(4, eps=0.5)([[1, 2, 3, 4]])`", atol=2e-6, rtol=0,
                 suspects={"ignored self.eps (here 0.5)": _rms(x, ones, 0.0, "no_eps"),
                           "used a fixed eps of 1e-6 instead of self.eps": _rms(x, ones, 1e-6),
                           **_rms_suspects(x, ones, 0.5)},
                 hint="mean(x^2) = 7.5, plus eps 0.5 is 8, and rsqrt(8) = 0.353553 multiplies x.")


@pytest.mark.exercise("rms_norm")
@pytest.mark.points(2)
def test_rms_norm_float16_is_normalised_in_float32(impl):
    # float16 holds numbers up to 65504, so x^2 overflows to inf as soon as |x| > 256: values
    # around 300 are fine as inputs but not squared. Meta's RMSNorm computes in float32 and casts back.
    g = _gen(1)
    x32 = (torch.rand(3, 8, generator=g) * 200 + 150) * torch.where(torch.rand(3, 8, generator=g) < 0.5, -1.0, 1.0)
    x = x32.half()
    weight = (1 + 0.3 * torch.randn(8, generator=g)).half()
    norm = impl.RMSNorm(8).half()  # weight in float16 too, as in a half-precision model
    norm.load_state_dict({"weight": weight})
    what = "`RMSNorm(8).half()(x)` for float16 x with entries of size 150 to 350"
    out = expect_shape(norm(x), (3, 8), what)
    if out.dtype != torch.float16:
        fail(f"{what}: expected a float16 result (the dtype of x), got {out.dtype}. Normalise in float32, then cast "
             "back before multiplying by the weight: self._norm(x.float()).type_as(x) * self.weight.")
    if not torch.isfinite(out).all() or out.float().abs().max() < 1e-3:
        fail(f"{what}: got {out[0, :4].tolist()}... instead of values around 1: you computed in float16, where x^2 "
             "overflows to inf (float16 stops at 65504) and rsqrt(inf) = 0. Compute in float32: x.float(), then "
             ".type_as(x) at the end.")
    expected = _rms(x.double(), weight.double(), 1e-6)
    expect_close(out, expected, what, atol=4e-3, rtol=4e-3,
                 hint="Expected x * rsqrt(mean(x^2) + eps) * weight computed in float32 and cast back to float16.")


@pytest.mark.exercise("rms_norm")
@pytest.mark.hidden
def test_rms_norm_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    dim = _randint(g, 2, 40)
    eps = [1e-6, 1e-5, 0.1][_randint(g, 0, 3)]
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 6), dim, generator=g) * (1 + 5 * torch.rand((), generator=g))
    weight = 1 + 0.3 * torch.randn(dim, generator=g)
    reference = ref.RMSNorm(dim, eps=eps)
    reference.load_state_dict({"weight": weight})
    with torch.no_grad():
        expected = reference(x)
        expected_half = reference.half()(x.half() * 40)
    norm = _norm_with_weight(impl, dim, weight, eps=eps)
    what = f"`RMSNorm({dim}, eps={eps})(x)` for x of shape {tuple(x.shape)}"
    expect_close(norm(x), expected, what, suspects=_rms_suspects(x, weight, eps))
    out = expect_tensor(norm.half()(x.half() * 40), f"{what} in float16")
    if out.dtype != torch.float16:
        fail(f"{what} in float16: expected a float16 result, got {out.dtype}; cast back with .type_as(x).")
    expect_close(out, expected_half, f"{what} in float16 (x times 40)", atol=3e-3, rtol=3e-3,
                 hint="Normalise in float32 (x.float()) and cast back (.type_as(x)).")


# --- rotary --------------------------------------------------------------------------------


def _angles(positions, dim, theta=10000.0, variant="ok"):
    """(len(positions), dim / 2) angles m * theta_j in float64; `variant` reproduces known mistakes."""
    j = torch.arange(dim // 2, dtype=torch.float64)
    exponent = j / dim if variant == "i_not_2i" else 2 * j / dim
    freqs = 1.0 / theta ** exponent
    angles = torch.as_tensor(positions, dtype=torch.float64)[:, None] * freqs
    return -angles if variant == "negative" else angles


def _rotate(x, angles, layout="pairs"):
    """Rotate (B, T, H, D) vectors by (T, D/2) angles with real arithmetic, in float64.

    layout "pairs": Meta's, features (2j, 2j+1) form pair j; "halves": Hugging Face's rotate_half,
    features (j, j + D/2) form pair j; "none": no rotation.
    """
    x = x.double()
    cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
    if layout == "pairs":
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    if layout == "halves":
        half = x.size(-1) // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return x


def _as_real(got, what):
    """A complex result as (..., 2) real numbers, or a failure that says what Meta's code returns."""
    got = expect_tensor(got, what)
    if not got.is_complex():
        fail(f"{what}: expected a complex tensor (complex64), got {got.dtype}. Meta's code keeps the rotations as "
             "unit complex numbers, torch.polar(torch.ones_like(angles), angles).")
    return torch.view_as_real(got)


def _freqs_expected(dim, end, theta=10000.0, variant="ok"):
    angles = _angles(torch.arange(end), dim, theta, variant)
    return torch.stack([angles.cos(), angles.sin()], dim=-1)  # (end, dim/2, 2): real and imaginary parts


def _freqs_suspects(dim, end, theta):
    return {
        "used j / dim in the exponent instead of 2j / dim: the frequencies are 1 / theta^(arange(0, dim, 2) / dim)":
            _freqs_expected(dim, end, theta, "i_not_2i"),
        "rotated by minus the angle (e^(-i m theta_j)); RoPE rotates by +m * theta_j":
            _freqs_expected(dim, end, theta, "negative"),
        "ignored the theta argument and used 10000": _freqs_expected(dim, end, 10000.0),
        "started the positions at 1; they are 0 .. end - 1, torch.arange(end)":
            torch.stack([_angles(torch.arange(1, end + 1), dim, theta).cos(),
                         _angles(torch.arange(1, end + 1), dim, theta).sin()], dim=-1),
    }


@pytest.mark.exercise("rotary")
@pytest.mark.points(2)
def test_freqs_cis_matches_formula(impl):
    for dim, end, theta in ((8, 6, 10000.0), (12, 5, 500.0)):
        call = f"`precompute_freqs_cis({dim}, {end}" + (f", theta={theta})`" if theta != 10000.0 else ")`")
        got = _as_real(impl.precompute_freqs_cis(dim, end, theta) if theta != 10000.0
                       else impl.precompute_freqs_cis(dim, end), call)
        expect_close(got, _freqs_expected(dim, end, theta), f"{call} as (real, imaginary) pairs", atol=1e-5,
                     suspects={k: v for k, v in _freqs_suspects(dim, end, theta).items()
                               if theta != 10000.0 or "ignored the theta" not in k},
                     hint=f"Expected shape ({end}, {dim // 2}): entry [m, j] is cos(m theta_j) + i sin(m theta_j) with "
                          "theta_j = 1 / theta^(2j / dim).")


def _rope_suspects(xq, xk, angles):
    pairs_q, pairs_k = _rotate(xq, angles), _rotate(xk, angles)
    return {
        "paired feature j with feature j + D/2 (Hugging Face's rotate_half layout); Meta's code pairs adjacent "
        "features (2j, 2j + 1), as complex numbers view_as_complex(x.reshape(..., -1, 2))":
            (_rotate(xq, angles, "halves"), _rotate(xk, angles, "halves")),
        "rotated by minus the angles (multiplied by the conjugate)": (_rotate(xq, -angles), _rotate(xk, -angles)),
        "rotated only the queries: the keys need the same rotation": (pairs_q, xk.double()),
        "did not rotate at all": (xq.double(), xk.double()),
        "swapped the results: return (rotated queries, rotated keys)": (pairs_k, pairs_q),
    }


def _expect_rope(result, xq, xk, angles, what, suspects=None):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (xq_out, xk_out), got {type(result).__name__}.")
    want = (_rotate(xq, angles), _rotate(xk, angles))
    for i, name in enumerate(("xq_out", "xk_out")):
        got = expect_shape(result[i], xq.shape if i == 0 else xk.shape, f"{what}: {name}",
                           hint="The outputs have the shapes of xq and xk: flatten the pairs back, view_as_real(...).flatten(3).")
        if got.dtype != (xq if i == 0 else xk).dtype:
            fail(f"{what}: {name} has dtype {got.dtype}, expected {(xq if i == 0 else xk).dtype} like the input: "
                 "cast back with .type_as(xq) / .type_as(xk).")
        expect_close(got, want[i], f"{what}: {name}", atol=1e-4,
                     suspects={label: pair[i] for label, pair in (suspects or {}).items()},
                     hint="Pair j of a vector at position m is (x[2j], x[2j+1]); it becomes "
                          "(x[2j] cos a - x[2j+1] sin a, x[2j] sin a + x[2j+1] cos a) with a = m * theta_j.")


@pytest.mark.exercise("rotary")
@pytest.mark.points(2)
def test_apply_rotary_rotates_adjacent_pairs(impl):
    g = _gen(2)
    B, T, H, D = 2, 5, 3, 8
    xq, xk = torch.randn(B, T, H, D, generator=g), torch.randn(B, T, H, D, generator=g)
    angles = _angles(torch.arange(T), D)
    freqs_cis = torch.polar(torch.ones_like(angles), angles).to(torch.complex64)  # built here, not by your code
    _expect_rope(impl.apply_rotary_emb(xq, xk, freqs_cis), xq, xk, angles,
                 f"`apply_rotary_emb(xq, xk, freqs_cis)` for xq, xk of shape {(B, T, H, D)}",
                 suspects=_rope_suspects(xq, xk, angles))


@pytest.mark.exercise("rotary")
def test_rotary_scores_depend_on_relative_position_only(impl):
    # The same q at every position m and the same k at every position n: after RoPE, q_m . k_n
    # must depend on m - n only, and rotations keep lengths.
    g = _gen(3)
    T, D = 10, 16
    q, k = torch.randn(D, generator=g), torch.randn(D, generator=g)
    xq, xk = q.expand(1, T, 1, D).contiguous(), k.expand(1, T, 1, D).contiguous()
    freqs_cis = impl.precompute_freqs_cis(D, T)
    result = impl.apply_rotary_emb(xq, xk, freqs_cis)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"`apply_rotary_emb(xq, xk, freqs_cis)`: expected a pair (xq_out, xk_out), got {type(result).__name__}.")
    rq = expect_shape(result[0], (1, T, 1, D), "`apply_rotary_emb`'s xq_out").double()[0, :, 0]
    rk = expect_shape(result[1], (1, T, 1, D), "`apply_rotary_emb`'s xk_out").double()[0, :, 0]
    norms = rq.norm(dim=-1)
    worst = int((norms - q.double().norm()).abs().argmax())
    if abs(norms[worst] - q.double().norm()) > 1e-4 * q.norm():
        fail(f"RoPE must keep the length of every vector (it is a rotation), but the query at position {worst} has "
             f"length {norms[worst]:.5g} instead of {q.norm():.5g}. Multiply by unit complex numbers e^(i m theta_j) "
             "and rotate each pair as a whole.")
    scores = rq @ rk.T  # (T, T): scores[m, n] = q_m . k_n
    for offset in range(-T + 1, T):
        diagonal = torch.diagonal(scores, offset=-offset)  # all (m, n) with m - n = offset
        if (diagonal - diagonal[0]).abs().max() > 1e-4 * (1 + diagonal[0].abs()):
            i = int((diagonal - diagonal[0]).abs().argmax())
            m0, m1 = max(offset, 0), max(offset, 0) + i
            fail(f"with RoPE, q . k must depend only on the distance m - n: for m - n = {offset}, positions "
                 f"(m, n) = ({m0}, {m0 - offset}) give {diagonal[0]:.5g} but ({m1}, {m1 - offset}) give {diagonal[i]:.5g}. "
                 "Rotate queries and keys with the same angles, m * theta_j for the vector at position m.")


@pytest.mark.exercise("rotary")
@pytest.mark.hidden
def test_rotary_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    D = 2 * _randint(g, 1, 17)
    T, end = _randint(g, 1, 9), _randint(g, 9, 40)
    theta = [10000.0, 500000.0, 100.0][_randint(g, 0, 3)]
    call = f"`precompute_freqs_cis({D}, {end}, theta={theta})`"
    expected = torch.view_as_real(ref.precompute_freqs_cis(D, end, theta))
    expect_close(_as_real(impl.precompute_freqs_cis(D, end, theta), call), expected, f"{call} as (real, imaginary) pairs",
                 atol=1e-4, suspects=_freqs_suspects(D, end, theta))
    start = _randint(g, 0, end - T + 1)
    freqs_cis = ref.precompute_freqs_cis(D, end, theta)[start : start + T]
    shape = (_randint(g, 1, 4), T, _randint(g, 1, 5), D)
    xq, xk = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    angles = _angles(torch.arange(start, start + T), D, theta)
    _expect_rope(impl.apply_rotary_emb(xq, xk, freqs_cis), xq, xk, angles,
                 f"`apply_rotary_emb(xq, xk, freqs_cis)` for xq, xk of shape {shape} at positions {start}..{start + T - 1}",
                 suspects=_rope_suspects(xq, xk, angles))


# --- swiglu --------------------------------------------------------------------------------


def _hidden(dim, multiple_of=256, multiplier=None, variant="ok"):
    """The hidden width written out; `variant` reproduces known mistakes."""
    if variant == "four_d":
        return 4 * dim
    hidden = 2 * 4 * dim / 3
    if variant != "float":
        hidden = int(hidden)
    if multiplier is not None and variant != "multiplier_after":
        hidden = int(multiplier * hidden)
    if variant in ("float", "not_rounded"):
        return hidden
    if variant == "rounded_down":
        rounded = multiple_of * int(hidden // multiple_of)
    elif variant == "nearest":
        rounded = multiple_of * round(hidden / multiple_of)
    else:
        rounded = multiple_of * math.ceil(hidden / multiple_of)
    if multiplier is not None and variant == "multiplier_after":
        return int(multiplier * rounded)
    return rounded


_HIDDEN_MISTAKES = {
    "did not round up to a multiple of multiple_of": "not_rounded",
    "rounded down; round UP to the next multiple, multiple_of * ((hidden + multiple_of - 1) // multiple_of)": "rounded_down",
    "rounded to the nearest multiple; round UP, multiple_of * ((hidden + multiple_of - 1) // multiple_of)": "nearest",
    "kept 4 * dim; SwiGLU keeps 2/3 of it, int(2 * 4 * dim / 3), before rounding up": "four_d",
    "applied ffn_dim_multiplier after rounding; scale int(2 * 4 * dim / 3) first, then round up": "multiplier_after",
}


def _expect_hidden(got, dim, multiple_of, multiplier, what, expected=None):
    expected = _hidden(dim, multiple_of, multiplier) if expected is None else expected
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int (a layer width), got {type(got).__name__} {got!r}.")
    if got == expected:
        return
    for label, variant in _HIDDEN_MISTAKES.items():
        if got == _hidden(dim, multiple_of, multiplier, variant):
            fail(f"{what}: expected {expected}, got {got}. Your result matches what you get if you {label}.")
    fail(f"{what}: expected {expected}, got {got}. int(2 * 4 * dim / 3), times ffn_dim_multiplier if it is given, "
         "then rounded up to a multiple of multiple_of.")


@pytest.mark.exercise("swiglu")
@pytest.mark.points(2)
def test_ffn_hidden_dim_of_the_released_models(impl):
    # The hidden widths of LLaMA 7B, 13B, 33B and 65B (multiple_of 256), a tiny model, and
    # Llama 2 70B (dim 8192, ffn_dim_multiplier 1.3, multiple_of 4096: 28672).
    for dim, multiple_of, multiplier, expected in ((4096, 256, None, 11008), (5120, 256, None, 13824),
                                                   (6656, 256, None, 17920), (8192, 256, None, 22016),
                                                   (32, 16, None, 96), (8192, 4096, 1.3, 28672)):
        if multiplier is None and multiple_of == 256:
            call = f"`ffn_hidden_dim({dim})`"
            got = impl.ffn_hidden_dim(dim)
        elif multiplier is None:
            call = f"`ffn_hidden_dim({dim}, multiple_of={multiple_of})`"
            got = impl.ffn_hidden_dim(dim, multiple_of=multiple_of)
        else:
            call = f"`ffn_hidden_dim({dim}, multiple_of={multiple_of}, ffn_dim_multiplier={multiplier})` (Llama 2 70B)"
            got = impl.ffn_hidden_dim(dim, multiple_of=multiple_of, ffn_dim_multiplier=multiplier)
        _expect_hidden(got, dim, multiple_of, multiplier, call, expected)


def _swiglu(p, x, variant="ok"):
    """w2(silu(w1 x) * w3 x) in float64; `variant` reproduces known mistakes."""
    x = x.double()
    gate, value = x @ p["w1.weight"].double().T, x @ p["w3.weight"].double().T
    act = {
        "ok": lambda: torch.nn.functional.silu(gate) * value,
        "gelu": lambda: torch.nn.functional.gelu(gate) * value,
        "relu": lambda: torch.relu(gate) * value,
        "swapped": lambda: gate * torch.nn.functional.silu(value),
        "no_silu": lambda: gate * value,
        "silu_of_product": lambda: torch.nn.functional.silu(gate * value),
        "sigmoid": lambda: torch.sigmoid(gate) * value,
    }[variant]()
    return act @ p["w2.weight"].double().T


_SWIGLU_MISTAKES = {
    "used GELU; SwiGLU gates with SiLU (Swish), F.silu": "gelu",
    "used ReLU; SwiGLU gates with SiLU (Swish), F.silu": "relu",
    "put SiLU on w3 x instead of w1 x: w2(silu(w1 x) * w3 x), w1 is the gate": "swapped",
    "forgot the SiLU: w2(silu(w1 x) * w3 x)": "no_silu",
    "applied SiLU to the product; only the gate goes through it, silu(w1 x) * w3 x": "silu_of_product",
    "used a sigmoid gate (GLU); SwiGLU uses silu(z) = z * sigmoid(z)": "sigmoid",
}


def _ffn_weights(dim, hidden, g):
    return {"w1.weight": torch.randn(hidden, dim, generator=g) / math.sqrt(dim),
            "w2.weight": torch.randn(dim, hidden, generator=g) / math.sqrt(hidden),
            "w3.weight": torch.randn(hidden, dim, generator=g) / math.sqrt(dim)}


def _ffn_handle(impl, dim, hidden, g):
    ff = impl.FeedForward(dim, hidden)
    shapes = {name: tuple(torch.as_tensor(t).shape) for name, t in ff.state_dict().items()}
    want = {"w1.weight": (hidden, dim), "w2.weight": (dim, hidden), "w3.weight": (hidden, dim)}
    if shapes != want:
        extra = sorted(n for n in shapes if n.endswith("bias"))
        advice = (f" It has biases ({', '.join(extra)}): LLaMA's linears have none, nn.Linear(..., bias=False)."
                  if extra else "")
        fail(f"`FeedForward({dim}, {hidden}).state_dict()` holds {shapes}; expected {want}: w1 and w3 map dim -> "
             f"hidden_dim, w2 maps hidden_dim -> dim.{advice}")
    p = _ffn_weights(dim, hidden, g)
    ff.load_state_dict(p)
    return ff, p


@pytest.mark.exercise("swiglu")
@pytest.mark.points(2)
def test_feed_forward_is_swiglu_without_biases(impl):
    g = _gen(4)
    ff, p = _ffn_handle(impl, 16, 40, g)
    x = torch.randn(2, 3, 16, generator=g)
    expect_close(ff(x), _swiglu(p, x), "`FeedForward(16, 40)(x)`", atol=1e-5,
                 suspects={label: _swiglu(p, x, v) for label, v in _SWIGLU_MISTAKES.items()},
                 hint="Expected w2(silu(w1 x) * w3 x).")


@pytest.mark.exercise("swiglu")
@pytest.mark.hidden
def test_swiglu_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    for _ in range(3):
        dim = _randint(g, 1, 9000)
        multiple_of = [1, 8, 32, 64, 256, 1024][_randint(g, 0, 6)]
        multiplier = [None, None, 1.3, 1.5, 0.7][_randint(g, 0, 5)]
        expected = ref.ffn_hidden_dim(dim, multiple_of, multiplier)
        _expect_hidden(impl.ffn_hidden_dim(dim, multiple_of, multiplier), dim, multiple_of, multiplier,
                       f"`ffn_hidden_dim({dim}, {multiple_of}, {multiplier})`", expected)
    dim, hidden = _randint(g, 2, 33), _randint(g, 2, 65)
    ff, p = _ffn_handle(impl, dim, hidden, g)
    reference = ref.FeedForward(dim, hidden)
    reference.load_state_dict(p)
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 6), dim, generator=g)
    with torch.no_grad():
        expected = reference(x)
    expect_close(ff(x), expected, f"`FeedForward({dim}, {hidden})(x)` for x of shape {tuple(x.shape)}", atol=1e-5,
                 suspects={label: _swiglu(p, x, v) for label, v in _SWIGLU_MISTAKES.items()})
