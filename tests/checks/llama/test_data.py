"""Checks for the pre-training data mixture of Table 1: tokens sampled per source and epochs.

Visible checks use the paper's Table 1 (sampling proportions, and epochs over the 1.4T tokens
of the two larger models); the answers recorded from the reference solution
(tests/checks/llama/recorded.json) name a wrong answer after the known mistake it matches.
"""
import pytest
import torch

from grader.checking import expect_number, fail, outcome
from grader.checking import generator as _gen

pytestmark = pytest.mark.exercise("data_mixture")

# Table 1: source -> (sampling proportion, epochs over 1.4T training tokens).
TABLE1 = {
    "CommonCrawl": (0.670, 1.10), "C4": (0.150, 1.06), "Github": (0.045, 0.64), "Wikipedia": (0.045, 2.45),
    "Books": (0.045, 2.23), "ArXiv": (0.025, 1.06), "StackExchange": (0.020, 1.03),
}
PROPORTIONS = {source: p for source, (p, _) in TABLE1.items()}


def _expect_dict(got, expected, what, rel=1e-6):
    """A dict source -> number, equal to `expected` within `rel` for every source."""
    if not isinstance(got, dict):
        fail(f"{what}: expected a dict source -> number, got {type(got).__name__}.")
    if set(got) != set(expected):
        fail(f"{what}: expected the keys {sorted(expected)}, got {sorted(map(str, got))}: one entry per source.")
    values = {}
    for source in expected:
        values[source] = expect_number(got[source], expected[source], f"{what}: for {source!r}", rel=rel)
    return values


def _error_of(function, *args):
    """The type name of the exception `function(*args)` raises in learner code, or None."""
    kind, _ = outcome(lambda: function(*args))
    return None if kind == "ok" else kind


def test_tokens_seen_in_table1_mix(impl, recorded):
    # 1.4T tokens: CommonCrawl 0.67 * 1.4T = 938B, C4 210B, Github, Wikipedia and Books 63B
    # each, ArXiv 35B, StackExchange 28B.
    by_hand = {"CommonCrawl": 938e9, "C4": 210e9, "Github": 63e9, "Wikipedia": 63e9, "Books": 63e9,
               "ArXiv": 35e9, "StackExchange": 28e9}
    recorded.tokens_seen(1.4e12, PROPORTIONS)
    _expect_dict(impl.tokens_seen(1.4e12, PROPORTIONS), by_hand, "`tokens_seen(1.4e12, proportions of Table 1)`")


@pytest.mark.points(2)
def test_epochs_reproduce_table1_and_scale_with_the_budget(impl, recorded):
    # The size of each source follows from Table 1: tokens seen in 1.4T / epochs (Wikipedia:
    # 63B / 2.45 = 25.7B tokens). With those sizes, epochs(1.4T) must give back Table 1, and
    # the 1.0T tokens of the 7B and 13B models make 1 / 1.4 of those passes: Wikipedia 1.75,
    # Books 1.59, and every other source less than one.
    sizes = {s: 1.4e12 * p / e for s, (p, e) in TABLE1.items()}
    table = {s: e for s, (_, e) in TABLE1.items()}
    recorded.epochs(1.4e12, PROPORTIONS, sizes)
    _expect_dict(impl.epochs(1.4e12, PROPORTIONS, sizes), table,
                 "`epochs(1.4e12, proportions, source_tokens)` with the source sizes implied by Table 1")
    recorded.epochs(1.0e12, PROPORTIONS, sizes)
    got = _expect_dict(impl.epochs(1.0e12, PROPORTIONS, sizes), {s: e / 1.4 for s, e in table.items()},
                       "`epochs(1.0e12, proportions, source_tokens)`")
    repeated = sorted(s for s, e in got.items() if e > 1)
    if repeated != ["Books", "Wikipedia"]:
        fail(f"at 1.0T tokens only Wikipedia and Books are seen more than once, but your epochs say {repeated}.")


def test_tokens_seen_rejects_proportions_that_do_not_sum_to_one(impl):
    for proportions, why in (({"web": 0.5, "code": 0.4}, "they sum to 0.9"),
                             ({"web": 1.2, "code": -0.2}, "one is negative")):
        error = _error_of(impl.tokens_seen, 1e12, proportions)
        if error is None:
            fail(f"`tokens_seen(1e12, {proportions})` returned without complaint; expected a ValueError, since {why}: "
                 "sampling proportions must be >= 0 and sum to 1.")
        if error != "ValueError":
            fail(f"`tokens_seen(1e12, {proportions})` raised {error}; expected a ValueError ({why}).")


@pytest.mark.hidden
def test_data_mixture_random_matches_reference(impl, ref, seed):
    g = _gen(seed)
    n = int(torch.randint(2, 9, (), generator=g))
    weights = torch.rand(n, generator=g, dtype=torch.float64) + 0.05
    proportions = {f"source{i}": float(w) for i, w in enumerate(weights / weights.sum())}
    proportions[f"source{n - 1}"] = 1.0 - sum(v for k, v in proportions.items() if k != f"source{n - 1}")
    total = float(10 ** (9 + 4 * torch.rand((), generator=g, dtype=torch.float64)))
    sizes = {s: float(total * p / (0.2 + 3 * torch.rand((), generator=g, dtype=torch.float64))) for s, p in proportions.items()}
    _expect_dict(impl.tokens_seen(total, proportions), ref.tokens_seen(total, proportions),
                 f"`tokens_seen({total:.4g}, {proportions})`", rel=1e-9)
    _expect_dict(impl.epochs(total, proportions, sizes), ref.epochs(total, proportions, sizes),
                 f"`epochs({total:.4g}, proportions, source_tokens)`", rel=1e-9)
    bad = {k: v * 1.1 for k, v in proportions.items()}
    error = _error_of(impl.tokens_seen, total, bad)
    if error != "ValueError":
        fail(f"`tokens_seen({total:.4g}, proportions summing to 1.1)`: expected a ValueError, got "
             f"{error or 'no exception'}.")
