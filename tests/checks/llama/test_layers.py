"""Checks for LLaMA's layers: RMSNorm, rotary position embeddings (Meta's adjacent-pair layout)
and the SwiGLU feed-forward network.

Visible checks compare with the sizes of the released models, with hand-worked values, with
properties (float16 stays finite, rotations keep lengths and depend on relative positions only)
and with the answers recorded from the reference solution on the same weights and inputs
(tests/checks/llama/recorded.json); a wrong answer is named after the known mistake it matches.
"""
import math

import pytest
import torch

from grader.checking import expect_close, expect_equal, expect_shape, expect_tensor, fail
from grader.checking import generator as _gen
from grader.checking import randint as _randint

# --- rms_norm ----------------------------------------------------------------------------


def _norm_with_weight(module, dim, weight, check_names=False, **kwargs):
    norm = module.RMSNorm(dim, **kwargs)
    if check_names:
        sd = norm.state_dict()
        if sorted(sd) != ["weight"]:
            fail(f"`RMSNorm({dim}).state_dict()` holds {sorted(sd)}; expected one parameter, `weight` of shape ({dim},) "
                 "(RMSNorm has no bias).")
    norm.load_state_dict({"weight": weight})
    return norm


@pytest.mark.exercise("rms_norm")
@pytest.mark.points(2)
def test_rms_norm_matches_formula(impl, recorded):
    g = _gen(0)
    x = torch.randn(2, 4, 16, generator=g) * torch.tensor([0.5, 3.0, 1.0, 10.0]).view(1, 4, 1) + 0.5
    fresh = impl.RMSNorm(16).state_dict()
    if "weight" in fresh and not torch.equal(torch.as_tensor(fresh["weight"]).float(), torch.ones(16)):
        fail("`RMSNorm(16).weight` should start as ones, nn.Parameter(torch.ones(dim)).")
    weight = 1 + 0.3 * torch.randn(16, generator=g)
    expected = _norm_with_weight(recorded, 16, weight)(x)
    expect_close(_norm_with_weight(impl, 16, weight, check_names=True)(x), expected,
                 "`RMSNorm(16)(x)` with a learned weight (eps 1e-6)",
                 hint="Expected x * rsqrt(mean(x^2) + eps) * weight, the mean over the last dimension (keepdim=True).")


@pytest.mark.exercise("rms_norm")
def test_rms_norm_hand_worked_with_large_eps(impl, recorded):
    # x = [1, 2, 3, 4]: mean(x^2) = 30 / 4 = 7.5; with eps = 0.5, rsqrt(8) = 0.353553, so the
    # output is [0.353553, 0.707107, 1.060660, 1.414214].
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    recorded.RMSNorm(4, eps=0.5)(x)
    expect_close(impl.RMSNorm(4, eps=0.5)(x), torch.tensor([[0.353553, 0.707107, 1.060660, 1.414214]]),
                 "`RMSNorm(4, eps=0.5)([[1, 2, 3, 4]])`", atol=2e-6, rtol=0,
                 hint="mean(x^2) = 7.5, plus eps 0.5 is 8, and rsqrt(8) = 0.353553 multiplies x.")


@pytest.mark.exercise("rms_norm")
@pytest.mark.points(2)
def test_rms_norm_float16_is_normalised_in_float32(impl, recorded):
    # float16 holds numbers up to 65504, so x^2 overflows to inf as soon as |x| >= 256 (256^2 = 65536): values
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
             "back to the dtype of x before multiplying by the weight.")
    if not torch.isfinite(out).all() or out.float().abs().max() < 1e-3:
        fail(f"{what}: got {out[0, :4].tolist()}... instead of values around 1: you computed in float16, where x^2 "
             "overflows to inf (float16 stops at 65504) and rsqrt(inf) = 0. Compute in float32: x.float(), then "
             ".type_as(x) at the end.")
    known = recorded.RMSNorm(8).half()
    known.load_state_dict({"weight": weight})
    expected = known(x)
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
    reference = _norm_with_weight(ref, dim, weight, eps=eps)
    with torch.no_grad():
        expected = reference(x)
        expected_half = reference.half()(x.half() * 40)
    norm = _norm_with_weight(impl, dim, weight, check_names=True, eps=eps)
    what = f"`RMSNorm({dim}, eps={eps})(x)` for x of shape {tuple(x.shape)}"
    expect_close(norm(x), expected, what)
    out = expect_tensor(norm.half()(x.half() * 40), f"{what} in float16")
    if out.dtype != torch.float16:
        fail(f"{what} in float16: expected a float16 result, got {out.dtype}; cast back with .type_as(x).")
    expect_close(out, expected_half, f"{what} in float16 (x times 40)", atol=3e-3, rtol=3e-3,
                 hint="Normalise in float32 (x.float()) and cast back (.type_as(x)).")


# --- rotary --------------------------------------------------------------------------------


def _complex(got, what):
    got = expect_tensor(got, what)
    if not got.is_complex():
        fail(f"{what}: expected a complex tensor (complex64), got {got.dtype}. Meta's code keeps the rotations as "
             "unit complex numbers of angle m theta_j.")
    return got


def _freqs_call(module, dim, end, theta):
    return module.precompute_freqs_cis(dim, end, theta) if theta != 10000.0 else module.precompute_freqs_cis(dim, end)


@pytest.mark.exercise("rotary")
@pytest.mark.points(2)
def test_freqs_cis_matches_formula(impl, recorded):
    for dim, end, theta in ((8, 6, 10000.0), (12, 5, 500.0)):
        call = f"`precompute_freqs_cis({dim}, {end}" + (f", theta={theta})`" if theta != 10000.0 else ")`")
        expected = _freqs_call(recorded, dim, end, theta)
        got = _complex(_freqs_call(impl, dim, end, theta), call)
        modulus = got.abs().flatten()
        worst = int((modulus - 1).abs().argmax()) if modulus.numel() else 0
        if modulus.numel() and abs(modulus[worst].item() - 1) > 1e-5:
            fail(f"{call}: every entry must be a unit complex number e^(i m theta_j), but one has modulus "
                 f"{modulus[worst].item():.5g}: a rotation has modulus 1 and only an angle.")
        expect_close(got, expected, f"{call} as (real, imaginary) pairs", atol=1e-5,
                     hint=f"Expected shape ({end}, {dim // 2}): entry [m, j] is cos(m theta_j) + i sin(m theta_j) with "
                          "theta_j = 1 / theta^(2j / dim).")


def _expect_rope(result, expected, xq, xk, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{what}: expected a pair (xq_out, xk_out), got {type(result).__name__}.")
    for i, name in enumerate(("xq_out", "xk_out")):
        x = (xq, xk)[i]
        got = expect_shape(result[i], x.shape, f"{what}: {name}",
                           hint="The outputs have the shapes of xq and xk: flatten the pairs back, view_as_real(...).flatten(3).")
        if got.dtype != x.dtype:
            fail(f"{what}: {name} has dtype {got.dtype}, expected {x.dtype} like the input: "
                 "cast back with .type_as(xq) / .type_as(xk).")
        expect_close(got, expected[i], f"{what}: {name}", atol=1e-4,
                     hint="Pair j of a vector at position m is (x[2j], x[2j+1]); it becomes "
                          "(x[2j] cos a - x[2j+1] sin a, x[2j] sin a + x[2j+1] cos a) with a = m * theta_j.")


@pytest.mark.exercise("rotary")
@pytest.mark.points(2)
def test_apply_rotary_rotates_adjacent_pairs(impl, recorded):
    g = _gen(2)
    B, T, H, D = 2, 5, 3, 8
    xq, xk = torch.randn(B, T, H, D, generator=g), torch.randn(B, T, H, D, generator=g)
    freqs_cis = recorded.precompute_freqs_cis(D, T)  # the reference's rotations, so only apply_rotary_emb is tested
    expected = recorded.apply_rotary_emb(xq, xk, freqs_cis)
    _expect_rope(impl.apply_rotary_emb(xq, xk, freqs_cis), expected, xq, xk,
                 f"`apply_rotary_emb(xq, xk, freqs_cis)` for xq, xk of shape {(B, T, H, D)}")


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
    expected = ref.precompute_freqs_cis(D, end, theta)
    expect_close(_complex(impl.precompute_freqs_cis(D, end, theta), call), expected, f"{call} as (real, imaginary) pairs",
                 atol=1e-4)
    start = _randint(g, 0, end - T + 1)
    freqs_cis = expected[start : start + T]
    shape = (_randint(g, 1, 4), T, _randint(g, 1, 5), D)
    xq, xk = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    _expect_rope(impl.apply_rotary_emb(xq, xk, freqs_cis), ref.apply_rotary_emb(xq, xk, freqs_cis), xq, xk,
                 f"`apply_rotary_emb(xq, xk, freqs_cis)` for xq, xk of shape {shape} at positions {start}..{start + T - 1}")


# --- swiglu --------------------------------------------------------------------------------


def _expect_hidden(got, expected, what):
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int (a layer width), got {type(got).__name__} {got!r}.")
    expect_equal(got, expected, what, hint="int(2 * 4 * dim / 3), times ffn_dim_multiplier if it is given, then "
                                           "rounded up to a multiple of multiple_of.")


@pytest.mark.exercise("swiglu")
@pytest.mark.points(2)
def test_ffn_hidden_dim_of_the_released_models(impl, recorded):
    # The hidden widths of LLaMA 7B, 13B, 33B and 65B (multiple_of 256; Meta's params), a tiny
    # model (int(2 * 4 * 32 / 3) = 85, rounded up to 96), and Llama 2 70B (dim 8192,
    # ffn_dim_multiplier 1.3, multiple_of 4096: 28672).
    for dim, multiple_of, multiplier, expected in ((4096, 256, None, 11008), (5120, 256, None, 13824),
                                                   (6656, 256, None, 17920), (8192, 256, None, 22016),
                                                   (32, 16, None, 96), (8192, 4096, 1.3, 28672)):
        if multiplier is None and multiple_of == 256:
            call = f"`ffn_hidden_dim({dim})`"
            recorded.ffn_hidden_dim(dim)
            got = impl.ffn_hidden_dim(dim)
        elif multiplier is None:
            call = f"`ffn_hidden_dim({dim}, multiple_of={multiple_of})`"
            recorded.ffn_hidden_dim(dim, multiple_of=multiple_of)
            got = impl.ffn_hidden_dim(dim, multiple_of=multiple_of)
        else:
            call = f"`ffn_hidden_dim({dim}, multiple_of={multiple_of}, ffn_dim_multiplier={multiplier})` (Llama 2 70B)"
            recorded.ffn_hidden_dim(dim, multiple_of=multiple_of, ffn_dim_multiplier=multiplier)
            got = impl.ffn_hidden_dim(dim, multiple_of=multiple_of, ffn_dim_multiplier=multiplier)
        _expect_hidden(got, expected, call)


def _ffn_weights(dim, hidden, g):
    return {"w1.weight": torch.randn(hidden, dim, generator=g) / math.sqrt(dim),
            "w2.weight": torch.randn(dim, hidden, generator=g) / math.sqrt(hidden),
            "w3.weight": torch.randn(hidden, dim, generator=g) / math.sqrt(dim)}


def _ffn_handle(impl, dim, hidden, p):
    ff = impl.FeedForward(dim, hidden)
    shapes = {name: tuple(torch.as_tensor(t).shape) for name, t in ff.state_dict().items()}
    want = {"w1.weight": (hidden, dim), "w2.weight": (dim, hidden), "w3.weight": (hidden, dim)}
    if shapes != want:
        extra = sorted(n for n in shapes if n.endswith("bias"))
        advice = (f" It has biases ({', '.join(extra)}): LLaMA's linears have none, nn.Linear(..., bias=False)."
                  if extra else "")
        fail(f"`FeedForward({dim}, {hidden}).state_dict()` holds {shapes}; expected {want}: w1 and w3 map dim -> "
             f"hidden_dim, w2 maps hidden_dim -> dim.{advice}")
    ff.load_state_dict(p)
    return ff


@pytest.mark.exercise("swiglu")
@pytest.mark.points(2)
def test_feed_forward_is_swiglu_without_biases(impl, recorded):
    g = _gen(4)
    p = _ffn_weights(16, 40, g)
    x = torch.randn(2, 3, 16, generator=g)
    known = recorded.FeedForward(16, 40)
    known.load_state_dict(p)
    expected = known(x)
    expect_close(_ffn_handle(impl, 16, 40, p)(x), expected, "`FeedForward(16, 40)(x)`", atol=1e-5,
                 hint="Expected w2(silu(w1 x) * w3 x).")


@pytest.mark.exercise("swiglu")
@pytest.mark.hidden
def test_swiglu_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    for _ in range(3):
        dim = _randint(g, 1, 9000)
        multiple_of = [1, 8, 32, 64, 256, 1024][_randint(g, 0, 6)]
        multiplier = [None, None, 1.3, 1.5, 0.7][_randint(g, 0, 5)]
        _expect_hidden(impl.ffn_hidden_dim(dim, multiple_of, multiplier), ref.ffn_hidden_dim(dim, multiple_of, multiplier),
                       f"`ffn_hidden_dim({dim}, {multiple_of}, {multiplier})`")
    dim, hidden = _randint(g, 2, 33), _randint(g, 2, 65)
    p = _ffn_weights(dim, hidden, g)
    reference = ref.FeedForward(dim, hidden)
    reference.load_state_dict(p)
    x = torch.randn(_randint(g, 1, 4), _randint(g, 1, 6), dim, generator=g)
    with torch.no_grad():
        expected = reference(x)
    expect_close(_ffn_handle(impl, dim, hidden, p)(x), expected,
                 f"`FeedForward({dim}, {hidden})(x)` for x of shape {tuple(x.shape)}", atol=1e-5)
