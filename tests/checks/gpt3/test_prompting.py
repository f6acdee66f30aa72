"""Checks for prompts (Figure 2.1's layout, to the character) and multiple-choice scoring
(Section 2.4: summed, per-token, or against the unconditional probability).

Visible checks use the paper's own example (English to French) and small hand-worked
log-probabilities, with the solution's recorded scores.
"""
import pytest
import torch

from grader.checking import expect_close, expect_equal, fail, new_comparison, outcome
from grader.checking import generator as _gen
from grader.checking import randint as _randint

FRENCH = "Translate English to French:"
DEMOS = [("sea otter", "loutre de mer"), ("peppermint", "menthe poivrée"), ("plush girafe", "girafe peluche")]


# --- build_prompt --------------------------------------------------------------------------


def _prompt_problem(got, expected):
    """The likeliest reason `got` differs from `expected`, in words."""
    if got.rstrip("\n") == expected:
        return "it ends with a newline; the prompt ends right after the last \"=>\", where the model writes next"
    if got.rstrip(" ") == expected or got.rstrip() == expected:
        return "it ends with a space; the last line is \"query =>\" with nothing after the arrow"
    if got.replace("\n\n", "\n") == expected:
        return "it has blank lines; join the lines with a single \"\\n\""
    got_lines, want_lines = got.split("\n"), expected.split("\n")
    if len(got_lines) != len(want_lines):
        return (f"it has {len(got_lines)} lines, expected {len(want_lines)}: the task description (if any), one "
                "line per demonstration, then the query line")
    for number, (g, w) in enumerate(zip(got_lines, want_lines), start=1):
        if g != w:
            if " => " in w and "=>" not in g:
                return f"line {number} is {g!r}, expected {w!r}: demonstrations are written \"x => y\""
            if w.endswith(" =>") and number == len(want_lines):
                return f"the query line is {g!r}, expected {w!r}: the query, a space, then \"=>\""
            if g.replace(" ", "") == w.replace(" ", ""):
                return f"line {number} is {g!r}, expected {w!r}: one space on either side of \"=>\""
            return f"line {number} is {g!r}, expected {w!r}"
    return "the text differs"


def _expect_prompt(got, expected, what):
    if not isinstance(got, str):
        fail(f"{what}: expected a str, got {type(got).__name__}.")
    if got != expected:
        fail(f"{what}: expected {expected!r}, got {got!r}: {_prompt_problem(got, expected)}.")


@pytest.mark.exercise("build_prompt")
@pytest.mark.points(2)
def test_figure_2_1_zero_one_and_few_shot(impl):
    cases = {
        "zero-shot": (0, "Translate English to French:\ncheese =>"),
        "one-shot": (1, "Translate English to French:\nsea otter => loutre de mer\ncheese =>"),
        "few-shot": (3, "Translate English to French:\nsea otter => loutre de mer\npeppermint => menthe poivrée\n"
                        "plush girafe => girafe peluche\ncheese =>"),
    }
    for name, (k, expected) in cases.items():
        got = impl.build_prompt(FRENCH, DEMOS[:k], "cheese")
        _expect_prompt(got, expected, f"the {name} prompt of Figure 2.1, `build_prompt({FRENCH!r}, <{k} "
                                      "demonstrations>, 'cheese')`")


@pytest.mark.exercise("build_prompt")
def test_prompt_without_task_description(impl):
    demos = [("2 + 2", "4"), ("3 + 5", "8")]
    for description in (None, ""):
        got = impl.build_prompt(description, demos, "7 + 6")
        _expect_prompt(got, "2 + 2 => 4\n3 + 5 => 8\n7 + 6 =>",
                       f"`build_prompt({description!r}, [('2 + 2', '4'), ('3 + 5', '8')], '7 + 6')`, no task description,")


@pytest.mark.exercise("build_prompt")
@pytest.mark.hidden
def test_random_prompts(impl, ref, seed):
    g = _gen(seed)
    words = ["river", "blue", "cat", "quietly", "seven", "lamp", "Paris", "été", "42", "north", "over", "glass"]

    def phrase():
        return " ".join(words[_randint(g, 0, len(words))] for _ in range(_randint(g, 1, 4)))

    for k in (0, 1, _randint(g, 2, 9)):
        description = [None, "", phrase() + ":"][_randint(g, 0, 3)]
        demos = [(phrase(), phrase()) for _ in range(k)]
        query = phrase()
        expected = ref.build_prompt(description, demos, query)
        _expect_prompt(impl.build_prompt(description, demos, query), expected,
                       f"`build_prompt({description!r}, {demos!r}, {query!r})`")


# --- choice_scores -------------------------------------------------------------------------

# Three completions of a multiple-choice question, with the log-probability of each of their
# tokens given the context, and given just "Answer: " (the unconditional case). Four choices
# would make "divide by the number of choices" and "divide by the longest completion" agree;
# here there are 3 choices and the longest completion has 4 tokens.
COND = [torch.tensor([-1.0]), torch.tensor([-0.3, -0.3, -0.3, -0.3]), torch.tensor([-2.0, -0.1])]
UNCOND = [torch.tensor([-0.5]), torch.tensor([-0.1, -0.1, -0.1, -0.1]), torch.tensor([-3.0, -0.5])]
# sum: [-1.0, -1.2, -2.1] -> A; mean: [-1.0, -0.3, -1.05] -> B;
# unconditional: [-1.0 + 0.5, -1.2 + 0.4, -2.1 + 3.5] = [-0.5, -0.8, 1.4] -> C.
EXPECTED = {"sum": [-1.0, -1.2, -2.1], "mean": [-1.0, -0.3, -1.05], "unconditional": [-0.5, -0.8, 1.4]}


def _unconditional(method, uncond):
    return {"unconditional_logprobs": uncond} if method == "unconditional" else {}


@pytest.mark.exercise("choice_scores")
@pytest.mark.points(2)
def test_choice_scores_hand_worked(impl, recorded):
    for method, by_hand in EXPECTED.items():
        new_comparison()
        kwargs = _unconditional(method, UNCOND)
        got = impl.choice_scores(COND, method, **kwargs)
        expect_close(got, recorded.choice_scores(COND, method, **kwargs),
                     f"`choice_scores(completion_logprobs, {method!r})` for completions of 1, 4 and 2 tokens",
                     hint=f"Expected {by_hand}, one score per completion.")


def _pick(got, what):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, int):
        fail(f"{what}: expected an int index, got {type(got).__name__} ({got!r}).")
    return got


@pytest.mark.exercise("choice_scores")
# a pick is one index: many slips in choice_scores pick what some other known slip picks
@pytest.mark.builds_on("test_choice_scores_hand_worked")
def test_pick_choice_depends_on_the_method(impl, recorded):
    # Each method picks a different answer here: the sum favours the short completion, the
    # per-token mean the long one, and the unconditional ratio the one the context helped most.
    for method, scores in EXPECTED.items():
        new_comparison()
        kwargs = _unconditional(method, UNCOND)
        what = f"`pick_choice(..., {method!r})`"
        expect_equal(_pick(impl.pick_choice(COND, method, **kwargs), what), recorded.pick_choice(COND, method, **kwargs),
                     what, hint=f"The scores are {scores}; pick the index of the highest.")


@pytest.mark.exercise("choice_scores")
def test_choice_scores_rejects_bad_arguments(impl):
    kind, message = outcome(lambda: impl.choice_scores(COND, "max"))
    if kind != "ValueError":
        got = "returned a value" if kind == "ok" else f"raised {kind}: {message}"
        fail(f"`choice_scores(..., 'max')`: expected a ValueError naming the methods 'sum', 'mean' and "
             f"'unconditional', but it {got}.")
    kind, message = outcome(lambda: impl.choice_scores(COND, "unconditional"))
    if kind != "ValueError":
        got = "returned a value" if kind == "ok" else f"raised {kind}: {message}"
        fail(f"`choice_scores(..., 'unconditional')` without unconditional_logprobs: expected a ValueError saying "
             f"they are needed, but it {got}.")


@pytest.mark.exercise("choice_scores")
@pytest.mark.hidden
def test_choice_scores_random(impl, ref, seed):
    g = _gen(seed)
    n = _randint(g, 2, 7)
    cond = [-torch.rand(_randint(g, 1, 9), generator=g, dtype=torch.float64) * 3 for _ in range(n)]
    uncond = [-torch.rand(len(c), generator=g, dtype=torch.float64) * 4 for c in cond]
    for method in ("sum", "mean", "unconditional"):
        new_comparison()
        kwargs = _unconditional(method, uncond)
        what = f"`choice_scores(...)` with method {method!r} for {n} completions of lengths {[len(c) for c in cond]}"
        expect_close(impl.choice_scores(cond, method, **kwargs), ref.choice_scores(cond, method, **kwargs), what)
        what = f"`pick_choice(...)` with method {method!r}"
        expect_equal(_pick(impl.pick_choice(cond, method, **kwargs), what), ref.pick_choice(cond, method, **kwargs), what)
