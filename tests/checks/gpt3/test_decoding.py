"""Checks for decoding: top-k / top-p filtering and sampling the next token.

Filtering is compared with the recorded answers of the course's solution and with kept sets
worked out by hand in the comments. Sampling is random, so the checks draw thousands of tokens
(helpers.py builds the torch.Generator from a seed next to your code) and judge the samples
here: no token outside the kept set, frequencies within a few standard errors of the kept
tokens' renormalised probabilities, a lower temperature sharpening the distribution,
temperature 0 equal to the argmax, and the same samples for the same generator seed.
"""
import pytest
import torch

from grader.checking import expect_equal, expect_raises, expect_shape, fail, fail_naming, new_comparison

NEG_INF = float("-inf")


# --- filter_logits -------------------------------------------------------------------------


def _fmt_set(s):
    return "tokens {" + ", ".join(str(i) for i in sorted(s)) + "}" if s else "no token at all"


def _kept(value):
    return torch.as_tensor(value) != NEG_INF


def _expect_filtered(got, logits, expected, what, hint=None):
    """`got` must keep what `expected` (the solution's answer) keeps, with the kept logits
    unchanged and -inf elsewhere."""
    got = expect_shape(got, logits.shape, what, hint="filter_logits returns a tensor shaped like its input.", finite=False)
    got, logits = got.double(), logits.double()
    keep = _kept(expected)
    filled = ~keep & (got != NEG_INF) & (got != logits)
    if filled.any():
        value = got[filled][0].item()
        fail(f"{what}: the removed tokens hold {value:.4g}, expected -inf. Set them to float('-inf'): a finite "
             "value such as 0 or -1e9 still has a (possibly large) probability after the softmax, and -inf also "
             "marks plainly what was removed.")
    got_keep = got != NEG_INF
    if not torch.equal(got_keep, keep):
        rows = range(keep.size(0)) if keep.dim() == 2 else [None]
        row = next(r for r in rows if not torch.equal(got_keep if r is None else got_keep[r], keep if r is None else keep[r]))
        g_row, k_row = (got_keep, keep) if row is None else (got_keep[row], keep[row])
        where = "" if row is None else f" in row {row}"
        message = (f"{what}: kept {_fmt_set(set(g_row.nonzero().flatten().tolist()))}{where}, expected "
                   f"{_fmt_set(set(k_row.nonzero().flatten().tolist()))}.")
        fail_naming(message, lambda answer: torch.equal(got_keep, _kept(answer)), hint)
    if not torch.equal(got[keep], logits[keep]):
        if torch.allclose(got[keep], logits.log_softmax(-1)[keep]) or torch.allclose(got[keep], logits.softmax(-1)[keep]):
            fail(f"{what}: the kept entries are probabilities or log-probabilities; keep the logits themselves "
                 "unchanged (the caller takes the softmax).")
        fail(f"{what}: the kept entries changed; return the kept logits exactly as they came in, with -inf elsewhere.")


ROW = torch.tensor([1.0, 3.0, 2.0, 0.5, 2.5])
# About log([0.05, 0.4, 0.25, 0.1, 0.2]): ranked 1, 2, 4, 3, 0 with running totals 0.4, 0.65,
# 0.85, 0.95, 1.0.
LOG_PROBS = torch.tensor([-2.9957, -0.9163, -1.3863, -2.3026, -1.6094])


@pytest.mark.exercise("filter_logits")
@pytest.mark.points(2)
def test_top_k_keeps_the_k_largest(impl, recorded):
    # Ranked 1, 4, 2, 0, 3: top_k 2 keeps {1, 4}, 3 keeps {1, 2, 4}, 5 and more keep all five.
    for k in (2, 1, 3, 5, 9):
        new_comparison()
        _expect_filtered(impl.filter_logits(ROW.clone(), top_k=k), ROW, recorded.filter_logits(ROW, top_k=k),
                         f"`filter_logits({ROW.tolist()}, top_k={k})`",
                         hint="Keep every logit at least as large as the k-th largest of its row (ties with it stay).")


TIES = torch.tensor([1.0, 3.0, 2.0, 2.0, 0.5, 2.0])


@pytest.mark.exercise("filter_logits")
def test_top_k_keeps_ties_with_the_kth(impl, recorded):
    # The docstring keeps ties: with top_k 2 the 2nd largest is 2.0, held by tokens 2, 3 and 5, so
    # tokens {1, 2, 3, 5} stay; with top_k 1 on [3, 1, 3] both 3s stay.
    for logits, k in ((TIES, 2), (TIES, 3), (torch.tensor([3.0, 1.0, 3.0]), 1)):
        new_comparison()
        got = impl.filter_logits(logits.clone(), top_k=k)
        expected = recorded.filter_logits(logits, top_k=k)
        what = f"`filter_logits({logits.tolist()}, top_k={k})`"
        hint = None
        if isinstance(got, torch.Tensor) and got.shape == logits.shape and int((got != NEG_INF).sum()) == k:
            hint = ("You kept exactly k tokens, but several logits tie with the k-th largest and ties are kept "
                    "too: keep every logit >= the k-th largest value rather than the k indices torch.topk returns.")
        _expect_filtered(got, logits, expected, what, hint=hint)


@pytest.mark.exercise("filter_logits")
@pytest.mark.points(2)
def test_top_p_keeps_the_smallest_set_reaching_p(impl, recorded):
    # Kept sets: 0.3 -> {1}, 0.6 -> {1, 2} (0.65 >= 0.6), 0.7 -> {1, 2, 4}, 0.9 -> {1, 2, 3, 4},
    # 1.0 -> all five. The token whose probability carries the total past p stays.
    for p in (0.3, 0.6, 0.7, 0.9, 1.0):
        new_comparison()
        _expect_filtered(impl.filter_logits(LOG_PROBS.clone(), top_p=p), LOG_PROBS,
                         recorded.filter_logits(LOG_PROBS, top_p=p),
                         f"`filter_logits(about log([0.05, 0.4, 0.25, 0.1, 0.2]), top_p={p})`",
                         hint="Sort the probabilities in descending order and keep the most likely tokens until "
                              "their total reaches top_p, that last token included.")


# Row 0: four equal logits, probabilities exactly 0.25 with running totals 0.25, 0.5, 0.75, 1.0
# (exact in floating point). A total equal to top_p already reaches it: top_p 0.5 keeps 2 tokens,
# 0.75 keeps 3. Which of the tied tokens stay is free; how many is not. Row 1, about
# [0.40, 0.30, 0.20, 0.10] with no tie: 0.5 keeps 2, 0.75 keeps 3.
TIED_MASS = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.7, 0.3, -0.4]])


@pytest.mark.exercise("filter_logits")
def test_top_p_at_an_exact_tie_of_the_mass(impl, recorded):
    for p in (0.5, 0.75):
        new_comparison()
        what = f"`filter_logits([[0, 0, 0, 0], [1, 0.7, 0.3, -0.4]], top_p={p})`"
        expected = _kept(recorded.filter_logits(TIED_MASS, top_p=p)).sum(-1).tolist()
        got = expect_shape(impl.filter_logits(TIED_MASS.clone(), top_p=p), TIED_MASS.shape, what,
                           hint="filter_logits returns a tensor shaped like its input.", finite=False)
        got_keep = got != NEG_INF
        if not torch.where(got_keep, got == TIED_MASS, True).all():
            fail(f"{what}: the kept entries changed, or the removed ones are not -inf; return the kept logits "
                 "exactly as they came in, with float('-inf') elsewhere.")
        counts = got_keep.sum(-1).tolist()
        if counts != expected:
            fail_naming(f"{what}: kept {counts[0]} and {counts[1]} tokens in the two rows, expected {expected[0]} "
                        f"and {expected[1]}. In row 0 every token has probability 0.25 exactly.",
                        lambda answer: _kept(answer).sum(-1).tolist() == counts,
                        hint="A running total that equals top_p has reached it.")


# Row 0, probabilities about [0.37, 0.30, 0.14, 0.11, 0.08]: top-2 keeps tokens 0 and 1,
# renormalised 0.55 and 0.45, so top_p 0.4 needs only token 0 (on the whole vocabulary its 0.37
# would not reach 0.4). Row 1, about [0.07, 0.45, 0.10, 0.25, 0.12]: top-2 keeps 1 and 3,
# renormalised 0.65 and 0.35: token 1.
TWO_ROWS = torch.tensor([[1.0, 0.8, 0.0, -0.2, -0.6], [-0.6, 1.2, -0.3, 0.6, -0.1]])


@pytest.mark.exercise("filter_logits")
def test_top_k_then_top_p_row_by_row(impl, recorded):
    _expect_filtered(impl.filter_logits(TWO_ROWS.clone(), top_k=2, top_p=0.4), TWO_ROWS,
                     recorded.filter_logits(TWO_ROWS, top_k=2, top_p=0.4),
                     f"`filter_logits({TWO_ROWS.tolist()}, top_k=2, top_p=0.4)`, a batch of 2 rows",
                     hint="Filter each row on its own, top-k first; top-p then works on the softmax of what top-k kept.")


@pytest.mark.exercise("filter_logits")
def test_filter_logits_leaves_its_input_alone(helpers):
    result = helpers.filter_and_input_after(LOG_PROBS, 2, 0.5)
    after = expect_shape(result["input_after"], (5,), "the logits passed to filter_logits", finite=False)
    if not torch.equal(after, LOG_PROBS):
        fail(f"filter_logits changed the caller's tensor: it was {LOG_PROBS.tolist()} and is {after.tolist()} "
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
    g = torch.Generator().manual_seed(seed)
    B, V = (int(torch.randint(lo, hi, (), generator=g)) for lo, hi in ((1, 5), (5, 41)))
    logits = torch.randn(B, V, generator=g) * 2
    k = int(torch.randint(1, V + 3, (), generator=g))
    p = 0.3 + 0.65 * torch.rand((), generator=g).item()
    for top_k, top_p in ((k, None), (None, p), (k, p)):
        new_comparison()
        # top-k alone on rounded logits, where ties at the k-th logit happen (with top-p, a tie at the
        # edge of the nucleus could go either way)
        x = logits.round(decimals=1) if top_p is None else logits
        _expect_filtered(impl.filter_logits(x.clone(), top_k=top_k, top_p=top_p), x,
                         ref.filter_logits(x.clone(), top_k=top_k, top_p=top_p),
                         f"`filter_logits(logits of shape {(B, V)}, top_k={top_k}, top_p={top_p})`")


# --- sampling ------------------------------------------------------------------------------

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 1.5])


def _samples(got, n, v, what):
    got = expect_shape(got, (n, 1), what, hint="sample_next_token returns (B, 1) token ids for (B, V) logits: one draw "
                                              "per row, in a column.")
    if got.is_floating_point() or got.dtype == torch.bool:
        fail(f"{what}: expected integer token ids (torch.long), got dtype {got.dtype}.")
    got = got.long().flatten()
    if (got < 0).any() or (got >= v).any():
        fail(f"{what}: token ids must lie in [0, {v}); got {got[(got < 0) | (got >= v)][0].item()}.")
    return got


def _frequencies(samples, v):
    return torch.bincount(samples, minlength=v).double() / samples.numel()


def _tolerance(probs, n):
    """5 standard errors of a frequency over n draws, plus 2 draws of slack."""
    return 5 * (probs * (1 - probs) / n).sqrt() + 2 / n


def _table(freq, probs):
    return ", ".join(f"{i}: {100 * freq[i].item():.1f}% (expected {100 * probs[i].item():.1f}%)"
                     for i in range(probs.numel()))


def _expect_random(samples, probs, what):
    freq = _frequencies(samples, probs.numel())
    if freq.max() == 1 and probs.max() < 0.9:
        fail(f"{what}: drew only token {int(freq.argmax())} in {samples.numel()} draws. Frequencies: "
             f"{_table(freq, probs)}. Only temperature 0 is greedy; otherwise draw at random from the softmax "
             "with torch.multinomial.")


def _judge_samples(samples, probs, what):
    """samples: (n,) ids; probs: (V,) float64, the distribution they must follow."""
    n, v = samples.numel(), probs.numel()
    freq = _frequencies(samples, v)
    table = _table(freq, probs)
    outside = (probs == 0) & (freq > 0)
    if outside.any():
        fail(f"{what}: drew token(s) {outside.nonzero().flatten().tolist()}, which top-k/top-p removed "
             f"(probability 0), in {n} draws. Frequencies: {table}. Filter the tempered logits with "
             "filter_logits before the softmax.")
    _expect_random(samples, probs, what)
    never = (probs * n > 30) & (freq == 0)
    if never.any():
        fail(f"{what}: never drew token(s) {never.nonzero().flatten().tolist()} in {n} draws, though top-k/top-p "
             f"keep them at this temperature. Frequencies: {table}. Divide the logits by the temperature first, "
             "then filter: top-k and top-p choose from the tempered distribution.")
    if not ((freq - probs).abs() <= _tolerance(probs, n)).all():
        fail(f"{what}: over {n} draws the token frequencies are off: {table}. Divide the logits by the "
             "temperature, filter them, take the softmax, and draw with torch.multinomial(probs, 1, "
             "generator=generator).")


@pytest.mark.exercise("sampling")
def test_temperature_zero_is_greedy(impl):
    logits = torch.tensor([[0.5, 2.0, -1.0, 1.9, 0.0, 0.3, 1.0, -0.5, 1.2],
                           [3.0, 0.0, 2.9, 1.0, -2.0, 0.5, 0.1, 2.0, 1.5],
                           [-1.0, -2.0, -0.5, -3.0, -0.6, -0.4, -0.9, -1.5, -0.45],
                           [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]])
    expected = logits.argmax(-1, keepdim=True)
    for kwargs in ({}, {"top_k": 3}, {"top_p": 0.5}):
        what = f"`sample_next_token(logits of shape (4, 9), temperature=0{''.join(f', {k}={v}' for k, v in kwargs.items())})`"
        got = impl.sample_next_token(logits.clone(), temperature=0.0, **kwargs)
        got = expect_shape(got, (4, 1), what, hint="Keep the vocabulary dimension as size 1 (keepdim=True): one token per row, (B, 1).")
        expect_equal(got.long(), expected, what, hint="Temperature 0 is greedy decoding: the argmax of each row.")


@pytest.mark.exercise("sampling")
@pytest.mark.points(2)
def test_sample_frequencies_follow_the_temperature(helpers):
    n = 4000
    freq = {}
    for temperature in (0.5, 1.0):
        what = f"`sample_next_token` at temperature {temperature} on logits {LOGITS.tolist()}"
        samples = _samples(helpers.sample_rows(LOGITS, n, 11, temperature), n, 6, what)
        probs = (LOGITS.double() / temperature).softmax(-1)
        _expect_random(samples, probs, what)
        freq[temperature] = (_frequencies(samples, 6), probs, samples, what)
    (low, p_low, *_), (high, p_high, *_) = freq[0.5], freq[1.0]
    # Token 0 has the largest logit: about 63.6% of the draws at temperature 0.5, 42.0% at 1.
    shown = (f"token 0 came up in {100 * low[0].item():.1f}% of the draws at temperature 0.5 and in "
             f"{100 * high[0].item():.1f}% at 1.0 (expected {100 * p_low[0].item():.1f}% and {100 * p_high[0].item():.1f}%)")
    slack = (_tolerance(p_low[0], n) + _tolerance(p_high[0], n)).item()
    if low[0] < high[0] - slack:
        fail(f"`sample_next_token`: {shown}. A lower temperature must sharpen the distribution, not flatten it: "
             "divide the logits by the temperature.")
    if abs(low[0] - high[0]) <= slack:
        fail(f"`sample_next_token`: {shown}: the frequencies did not change with the temperature. Divide the "
             "logits by the temperature before the softmax.")
    for _, probs, samples, what in freq.values():
        _judge_samples(samples, probs, what)


@pytest.mark.exercise("sampling")
@pytest.mark.points(2)
def test_samples_stay_in_the_kept_set(helpers, recorded):
    n = 4000
    # At temperature 2 the probabilities are [.29, .18, .14, .11, .06, .23]: top_p 0.8 keeps
    # tokens 0, 5, 1 and 2 (0.83).
    for temperature, top_k, top_p in ((2.0, None, 0.8), (1.0, 2, None), (0.7, 4, 0.9)):
        what = f"`sample_next_token` with temperature={temperature}, top_k={top_k}, top_p={top_p}"
        samples = _samples(helpers.sample_rows(LOGITS, n, 5, temperature, top_k, top_p), n, 6, what)
        kept = recorded.filter_logits(LOGITS / temperature, top_k=top_k, top_p=top_p)  # -inf where removed
        _judge_samples(samples, kept.double().softmax(-1), what)


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
    g = torch.Generator().manual_seed(seed)
    v = int(torch.randint(4, 13, (), generator=g))
    logits = torch.randn(v, generator=g) * 1.5
    temperature = [0.5, 0.7, 1.0, 1.3, 2.0][int(torch.randint(0, 5, (), generator=g))]
    top_k = [None, int(torch.randint(1, v + 1, (), generator=g))][int(torch.randint(0, 2, (), generator=g))]
    top_p = [None, 0.5 + 0.45 * torch.rand((), generator=g).item()][int(torch.randint(0, 2, (), generator=g))]
    n = 3000
    expected = ref.filter_logits(logits.reshape(1, -1) / temperature, top_k=top_k, top_p=top_p).double().softmax(-1)[0]
    what = f"`sample_next_token` on {v} logits with temperature={temperature}, top_k={top_k}, top_p={top_p}"
    samples = _samples(helpers.sample_rows(logits, n, seed, temperature, top_k, top_p, seed + 1), n, v, what)
    _judge_samples(samples, expected, what)
    batch = torch.randn(int(torch.randint(1, 6, (), generator=g)), v, generator=g)
    greedy = impl.sample_next_token(batch.clone(), temperature=0.0)
    expect_equal(expect_shape(greedy, (batch.size(0), 1), "`sample_next_token(..., temperature=0)`").long(),
                 batch.argmax(-1, keepdim=True), "`sample_next_token(..., temperature=0)`",
                 hint="Temperature 0 is greedy decoding: the argmax of each row.")
