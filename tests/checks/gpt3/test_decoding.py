"""Checks for decoding: top-k / top-p filtering and sampling the next token.

Filtering is compared with hand-worked kept sets. Sampling is random, so the checks draw
thousands of tokens (helpers.py builds the torch.Generator from a seed next to your code) and
judge the samples here: no token outside the kept set, frequencies within a few standard
errors of the renormalised probabilities, temperature 0 equal to the argmax, and the same
samples for the same generator seed.
"""
import math

import pytest
import torch

from grader.checking import expect_equal, expect_raises, expect_shape, fail

NEG_INF = float("-inf")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi, (), generator=g))


# --- filter_logits -------------------------------------------------------------------------


def _fmt_set(s):
    return "tokens {" + ", ".join(str(i) for i in sorted(s)) + "}" if s else "no token at all"


def _expect_filtered(got, logits, keep, what, suspects=None):
    """`got` must equal `logits` where `keep` is True and be -inf elsewhere.

    suspects: label -> a kept mask (bool, like keep) that a known mistake would produce."""
    got = expect_shape(got, logits.shape, what, hint="filter_logits returns a tensor shaped like its input.")
    got = got.double()
    logits = logits.double()
    removed = ~keep
    filled = removed & (got != NEG_INF) & (got != logits)
    if filled.any():
        value = got[filled][0].item()
        fail(f"{what}: the removed tokens hold {value:.4g}, expected -inf. Set them to float('-inf'): a finite "
             "value such as 0 or -1e9 still has a (possibly large) probability after the softmax, and -inf also "
             "marks plainly what was removed.")
    got_keep = got != NEG_INF
    if not torch.equal(got_keep, keep):
        rows = range(keep.size(0)) if keep.dim() == 2 else [None]
        for row in rows:
            g_row = got_keep if row is None else got_keep[row]
            k_row = keep if row is None else keep[row]
            if torch.equal(g_row, k_row):
                continue
            where = "" if row is None else f" in row {row}"
            got_set = set(g_row.nonzero().flatten().tolist())
            want_set = set(k_row.nonzero().flatten().tolist())
            message = f"{what}: kept {_fmt_set(got_set)}{where}, expected {_fmt_set(want_set)}."
            for label, mask in (suspects or {}).items():
                if torch.equal(got_keep, mask):
                    fail(f"{message} Your result matches what you get if you {label}.")
            fail(message)
    if not torch.equal(got[keep], logits[keep]):
        if torch.allclose(got[keep], logits.log_softmax(-1)[keep]) or torch.allclose(got[keep], logits.softmax(-1)[keep]):
            fail(f"{what}: the kept entries are probabilities or log-probabilities; keep the logits themselves "
                 "unchanged (the caller takes the softmax).")
        fail(f"{what}: the kept entries changed; return the kept logits exactly as they came in, with -inf elsewhere.")


def _mask(v, indices):
    m = torch.zeros(v, dtype=torch.bool)
    m[list(indices)] = True
    return m


def _top_k_set(logits, k, largest=True):
    return set(torch.topk(logits, min(k, logits.numel()), largest=largest).indices.tolist())


def _top_p_sets(probs, p):
    """The right kept set and those of known mistakes, for one row of probabilities."""
    order = torch.argsort(probs, descending=True).tolist()
    cumulative, right = 0.0, []
    for i in order:
        right.append(i)
        cumulative += probs[i].item()
        if cumulative >= p:
            break
    cumulative, below = 0.0, []
    for i in order:
        cumulative += probs[i].item()
        if cumulative > p:
            break
        below.append(i)
    ascending, cumulative = [], 0.0
    for i in reversed(order):
        ascending.append(i)
        cumulative += probs[i].item()
        if cumulative >= p:
            break
    v = probs.numel()
    return _mask(v, right), {
        "kept only the tokens whose cumulative probability stays within p, dropping the token that reaches p; "
        "the nucleus is the smallest set whose mass reaches p, so the token that crosses p stays": _mask(v, below),
        "kept the least likely tokens; sort the probabilities in descending order": _mask(v, ascending),
        "kept the right number of tokens but at their positions in the sorted order; map the mask back to "
        "vocabulary order with the indices the sort returned (e.g. scatter)": _mask(v, range(len(right))),
        "kept one token more than needed: drop a token once the tokens ranked above it already reach p":
            _mask(v, order[: len(right) + 1]),
    }


ROW = torch.tensor([1.0, 3.0, 2.0, 0.5, 2.5])
PROBS = torch.tensor([0.05, 0.4, 0.25, 0.1, 0.2])


@pytest.mark.exercise("filter_logits")
@pytest.mark.points(2)
def test_top_k_keeps_the_k_largest(impl):
    for k, kept in ((2, {1, 4}), (1, {1}), (3, {1, 2, 4}), (5, {0, 1, 2, 3, 4}), (9, {0, 1, 2, 3, 4})):
        keep = _mask(5, kept)
        suspects = {
            "kept the k smallest logits; keep the k largest (torch.topk's default)": _mask(5, _top_k_set(ROW, k, False)),
            "kept k + 1 tokens (off by one)": _mask(5, _top_k_set(ROW, k + 1)),
        }
        if k > 1:
            suspects["kept k - 1 tokens (off by one): keep every logit >= the k-th largest"] = _mask(5, _top_k_set(ROW, k - 1))
        _expect_filtered(impl.filter_logits(ROW.clone(), top_k=k), ROW, keep,
                         f"`filter_logits({ROW.tolist()}, top_k={k})`", suspects)


@pytest.mark.exercise("filter_logits")
@pytest.mark.points(2)
def test_top_p_keeps_the_smallest_set_reaching_p(impl):
    # Probabilities [0.05, 0.4, 0.25, 0.1, 0.2]: ranked 1, 2, 4, 3, 0 with running totals
    # 0.4, 0.65, 0.85, 0.95, 1.0. top_p = 0.6 needs tokens 1 and 2 (0.65 >= 0.6), and so on.
    logits = PROBS.log()
    # Kept sets: 0.3 -> {1}, 0.6 -> {1, 2}, 0.7 -> {1, 2, 4}, 0.9 -> {1, 2, 3, 4}, 1.0 -> all five.
    for p in (0.3, 0.6, 0.7, 0.9, 1.0):
        keep, suspects = _top_p_sets(PROBS, p)
        _expect_filtered(impl.filter_logits(logits.clone(), top_p=p), logits, keep,
                         f"`filter_logits(log([0.05, 0.4, 0.25, 0.1, 0.2]), top_p={p})`", suspects)


@pytest.mark.exercise("filter_logits")
def test_top_k_then_top_p_row_by_row(impl):
    # Row 0: top-2 keeps tokens 0 and 1, renormalised 0.3/0.55 = 0.545 and 0.455: top_p 0.5
    # needs only token 0. Row 1: top-2 keeps 1 and 4, renormalised 0.5625 and 0.4375: token 1.
    probs = torch.tensor([[0.3, 0.25, 0.2, 0.15, 0.1], [0.05, 0.45, 0.05, 0.1, 0.35]])
    logits = probs.log()
    keep = torch.tensor([[True, False, False, False, False], [False, True, False, False, False]])
    full_vocab = torch.tensor([[True, True, False, False, False], [False, True, False, False, True]])
    _expect_filtered(impl.filter_logits(logits.clone(), top_k=2, top_p=0.5), logits, keep,
                     "`filter_logits(logits, top_k=2, top_p=0.5)` on a batch of 2 rows",
                     {"applied top-p to the probabilities of the whole vocabulary; top-k comes first, and top-p "
                      "works on the softmax of what top-k kept (the removed tokens are -inf by then)": full_vocab})


@pytest.mark.exercise("filter_logits")
def test_filter_logits_leaves_its_input_alone(helpers):
    logits = PROBS.log()
    result = helpers.filter_and_input_after(logits, 2, 0.5)
    after = expect_shape(result["input_after"], (5,), "the logits passed to filter_logits")
    if not torch.equal(after, logits):
        fail(f"filter_logits changed the caller's tensor: it was {logits.tolist()} and is {after.tolist()} "
             "afterwards. Work on a copy (logits.clone()) so that the caller can still use the full logits.")


@pytest.mark.exercise("filter_logits")
def test_filter_logits_rejects_bad_arguments(impl):
    expect_raises(lambda: impl.filter_logits(ROW.clone(), top_k=0), "`filter_logits(logits, top_k=0)`",
                        "top_k must be at least 1; use None for no top-k")
    for p in (0.0, 1.5):
        expect_raises(lambda: impl.filter_logits(ROW.clone(), top_p=p), f"`filter_logits(logits, top_p={p})`",
                            "top_p must be in (0, 1]; use None for no top-p")


@pytest.mark.exercise("filter_logits")
@pytest.mark.hidden
def test_filter_logits_random(impl, ref, seed):
    g = _gen(seed)
    B, V = _randint(g, 1, 5), _randint(g, 5, 41)
    logits = torch.randn(B, V, generator=g) * 2
    k = _randint(g, 1, V + 3)
    p = 0.3 + 0.65 * torch.rand((), generator=g).item()
    for top_k, top_p in ((k, None), (None, p), (k, p)):
        expected = ref.filter_logits(logits.clone(), top_k=top_k, top_p=top_p)
        keep = expected != NEG_INF
        suspects = {}
        if top_p is not None and top_k is None:
            per_row = [_top_p_sets(row.softmax(-1).double(), top_p)[1] for row in logits]
            for label in per_row[0]:
                suspects[label] = torch.stack([rows[label] for rows in per_row])
        _expect_filtered(impl.filter_logits(logits.clone(), top_k=top_k, top_p=top_p), logits, keep,
                         f"`filter_logits(logits of shape {(B, V)}, top_k={top_k}, top_p={top_p})`", suspects)


# --- sampling ------------------------------------------------------------------------------

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 1.5])


def _probs(logits, temperature=1.0, keep=None):
    """softmax(logits / temperature) renormalised over `keep` (float64)."""
    z = logits.double() / temperature
    if keep is not None:
        z = z.masked_fill(~keep, NEG_INF)
    return z.softmax(-1)


def _kept_by(logits, top_k=None, top_p=None):
    """The kept set, worked out here: top-k first, then the nucleus of what is left."""
    v = logits.numel()
    keep = torch.ones(v, dtype=torch.bool)
    if top_k is not None:
        keep = _mask(v, _top_k_set(logits, top_k))
    if top_p is not None:
        probs = logits.double().masked_fill(~keep, NEG_INF).softmax(-1)
        keep = _top_p_sets(probs, top_p)[0]
    return keep


def _samples(got, n, v, what):
    got = expect_shape(got, (n, 1), what, hint="sample_next_token returns (B, 1) token ids for (B, V) logits, "
                                              "as torch.multinomial(probs, num_samples=1) gives.")
    if got.is_floating_point() or got.dtype == torch.bool:
        fail(f"{what}: expected integer token ids (torch.long), got dtype {got.dtype}.")
    got = got.long().flatten()
    if (got < 0).any() or (got >= v).any():
        fail(f"{what}: token ids must lie in [0, {v}); got {got[(got < 0) | (got >= v)][0].item()}.")
    return got


def _fits(freq, probs, n):
    """True where a frequency is within 5 standard errors (+ 2 draws of slack) of its probability."""
    tolerance = 5 * (probs * (1 - probs) / n).sqrt() + 2 / n
    return (freq - probs).abs() <= tolerance


def _judge_samples(samples, probs, what, suspects=None):
    """samples: (n,) ids; probs: (V,) float64, the distribution they must follow."""
    n, v = samples.numel(), probs.numel()
    freq = torch.bincount(samples, minlength=v).double() / n
    outside = (probs == 0) & (freq > 0)
    fits = _fits(freq, probs, n)
    if not outside.any() and fits.all():
        return
    matches = [label for label, q in (suspects or {}).items() if _fits(freq, q, n).all() and not ((q == 0) & (freq > 0)).any()]
    table = ", ".join(f"{i}: {100 * freq[i].item():.1f}% (expected {100 * probs[i].item():.1f}%)" for i in range(v))
    if outside.any():
        bad = outside.nonzero().flatten().tolist()
        message = (f"{what}: drew token(s) {bad}, which top-k/top-p removed (probability 0), "
                   f"in {n} draws. Frequencies: {table}.")
    else:
        message = f"{what}: over {n} draws the token frequencies are off: {table}."
    if matches:
        fail(f"{message} Your samples match what you get if you {matches[0]}.")
    fail(message + " Divide the logits by the temperature, filter them, take the softmax, and draw with "
                   "torch.multinomial(probs, 1, generator=generator). If filter_logits fails its own checks, "
                   "fix it first.")


def _sample_suspects(logits, temperature, top_k=None, top_p=None):
    keep = _kept_by(logits / temperature, top_k, top_p)
    suspects = {
        "multiplied the logits by the temperature; divide them, so that a low temperature sharpens the "
        "distribution": _probs(logits * temperature, 1.0, _kept_by(logits * temperature, top_k, top_p)),
        "ignored the temperature": _probs(logits, 1.0, _kept_by(logits, top_k, top_p)),
        "sampled from the full softmax, without top-k/top-p": _probs(logits, temperature),
    }
    if top_p is not None:
        suspects["filtered before dividing by the temperature; divide first, so that top-p cuts the tempered "
                 "distribution"] = _probs(logits, temperature, _kept_by(logits, top_k, top_p))
    suspects["took the argmax; only temperature 0 is greedy"] = _mask(logits.numel(), [int(logits.argmax())]).double()
    return {label: q for label, q in suspects.items() if not torch.allclose(q, _probs(logits, temperature, keep), atol=1e-3)}


@pytest.mark.exercise("sampling")
def test_temperature_zero_is_greedy(impl):
    logits = torch.randn(4, 9, generator=_gen(3))
    expected = logits.argmax(-1, keepdim=True)
    for kwargs in ({}, {"top_k": 3}, {"top_p": 0.5}):
        what = f"`sample_next_token(logits of shape (4, 9), temperature=0{''.join(f', {k}={v}' for k, v in kwargs.items())})`"
        got = impl.sample_next_token(logits.clone(), temperature=0.0, **kwargs)
        got = expect_shape(got, (4, 1), what, hint="Return argmax(dim=-1, keepdim=True): one token per row, (B, 1).")
        expect_equal(got.long(), expected, what, hint="Temperature 0 is greedy decoding: the argmax of each row.")


@pytest.mark.exercise("sampling")
@pytest.mark.points(2)
def test_sample_frequencies_follow_the_temperature(helpers):
    n = 4000
    for temperature in (0.5, 1.0):
        what = f"`sample_next_token` at temperature {temperature} on logits {LOGITS.tolist()}"
        samples = _samples(helpers.sample_rows(LOGITS, n, 11, temperature), n, 6, what)
        _judge_samples(samples, _probs(LOGITS, temperature), what, _sample_suspects(LOGITS, temperature))


@pytest.mark.exercise("sampling")
@pytest.mark.points(2)
def test_samples_stay_in_the_kept_set(helpers):
    n = 4000
    # At temperature 2 the probabilities are [.29, .18, .14, .11, .06, .23]: top_p 0.8 keeps
    # tokens 0, 5, 1 and 2 (0.83). Filtering before dividing by 2 would keep only 0, 5 and 1.
    for temperature, top_k, top_p in ((2.0, None, 0.8), (1.0, 2, None), (0.7, 4, 0.9)):
        what = f"`sample_next_token` with temperature={temperature}, top_k={top_k}, top_p={top_p}"
        keep = _kept_by(LOGITS / temperature, top_k, top_p)
        samples = _samples(helpers.sample_rows(LOGITS, n, 5, temperature, top_k, top_p), n, 6, what)
        _judge_samples(samples, _probs(LOGITS, temperature, keep), what,
                       _sample_suspects(LOGITS, temperature, top_k, top_p))


@pytest.mark.exercise("sampling")
def test_sampling_uses_the_generator(helpers):
    n = 64
    first = _samples(helpers.sample_rows(LOGITS, n, 7, 1.0, None, None, 0), n, 6, "`sample_next_token` with seed 7")
    again = _samples(helpers.sample_rows(LOGITS, n, 7, 1.0, None, None, 1), n, 6, "`sample_next_token` with seed 7")
    if not torch.equal(first, again):
        fail("`sample_next_token` gave different tokens for two generators seeded alike (only torch's global seed "
             "differed): pass `generator=generator` to torch.multinomial, so a seeded generator makes sampling "
             "reproducible.")
    other = _samples(helpers.sample_rows(LOGITS, n, 8, 1.0, None, None, 0), n, 6, "`sample_next_token` with seed 8")
    if torch.equal(first, other):
        fail(f"`sample_next_token` gave the same {n} tokens for generators seeded 7 and 8: are you sampling at all?")
    steps = helpers.sample_one_at_a_time(LOGITS, 20, 7, 1.0, None, None, 0)
    steps_again = helpers.sample_one_at_a_time(LOGITS, 20, 7, 1.0, None, None, 1)
    for i, (a, b) in enumerate(zip(steps, steps_again)):
        a = expect_shape(a, (1, 1), f"call {i + 1} of `sample_next_token` on logits of shape (1, 6)")
        if not torch.equal(a, b):
            fail(f"call {i + 1} of `sample_next_token` with the same generator gave different tokens when only "
                 "torch's global seed changed: draw with the generator you are given.")


@pytest.mark.exercise("sampling")
def test_negative_temperature_is_an_error(impl):
    expect_raises(lambda: impl.sample_next_token(LOGITS.reshape(1, -1), temperature=-1.0),
                        "`sample_next_token(logits, temperature=-1.0)`",
                        "a temperature must be >= 0; 0 means greedy")


@pytest.mark.exercise("sampling")
@pytest.mark.hidden
def test_sampling_random(impl, ref, helpers, seed):
    g = _gen(seed)
    v = _randint(g, 4, 13)
    logits = torch.randn(v, generator=g) * 1.5
    temperature = [0.5, 0.7, 1.0, 1.3, 2.0][_randint(g, 0, 5)]
    top_k = [None, _randint(g, 1, v + 1)][_randint(g, 0, 2)]
    top_p = [None, 0.5 + 0.45 * torch.rand((), generator=g).item()][_randint(g, 0, 2)]
    n = 3000
    expected = ref.filter_logits(logits.reshape(1, -1) / temperature, top_k=top_k, top_p=top_p).double().softmax(-1)[0]
    what = f"`sample_next_token` on {v} logits with temperature={temperature}, top_k={top_k}, top_p={top_p}"
    samples = _samples(helpers.sample_rows(logits, n, seed, temperature, top_k, top_p, seed + 1), n, v, what)
    _judge_samples(samples, expected, what, _sample_suspects(logits, temperature, top_k, top_p))
    batch = torch.randn(_randint(g, 1, 6), v, generator=g)
    greedy = impl.sample_next_token(batch.clone(), temperature=0.0)
    expect_equal(expect_shape(greedy, (batch.size(0), 1), "`sample_next_token(..., temperature=0)`").long(),
                 batch.argmax(-1, keepdim=True), "`sample_next_token(..., temperature=0)`",
                 hint="Temperature 0 is greedy decoding: the argmax of each row.")
