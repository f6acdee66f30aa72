"""A check names the learner's mistake, not a neighbour's (grader.judge.naming).

The learner cases below are mistakes a learner made, written without reading the mutants file:
each is the solution with the learner's lines, checked in this process, and the test reads
what the checks say about it.
"""

from pathlib import Path

import pytest

from grader import course
from grader.instructor import devcheck, mutants
from grader.judge import naming, runner
from grader.results import PASSED, SUSPECT_MARK

ROOT = Path(__file__).resolve().parents[1]
COURSE = course.load(ROOT)


def _checked(tmp_path, topic, old, new, only=()):
    """{check id: CheckResult} of the solution of `topic` with the learner's `new` for `old`."""
    source = COURSE.solution_path(topic).read_text(encoding="utf-8")
    assert source.count(old) == 1, old
    path = tmp_path / f"{topic}.py"
    path.write_text(source.replace(old, new), encoding="utf-8")
    result = runner.run_topic(COURSE, topic, path, hidden=True, isolation="none", seed=0, only=only)
    return {check.id: check for check in result.checks}


# --- the rule ----------------------------------------------------------------------------------


def test_an_exercises_own_mistake_is_named_when_nothing_upstream_fails():
    upstream = naming.Upstream("b")
    assert naming.decide(["m"], {"m": "b"}, upstream) == ("m", "")


def test_a_failing_check_it_builds_on_comes_first():
    upstream = naming.Upstream("b", failing_checks=("test_scores",))
    mistake, advice = naming.decide(["m"], {"m": "b"}, upstream)
    assert mistake == "" and "`test_scores`" in advice


def test_a_mistake_of_another_exercise_is_never_named_there():
    failing_a = naming.Upstream("b", exercise_failed=lambda e: e == "a")
    mistake, advice = naming.decide(["m"], {"m": "a"}, failing_a)
    assert mistake == "" and "`a`" in advice  # look at a first
    assert naming.decide(["m"], {"m": "a"}, naming.Upstream("b")) == ("", "")  # a passes: not the learner's


def test_a_fingerprint_unique_to_the_exercise_is_named_even_while_a_prerequisite_fails():
    upstream = naming.Upstream("b", failing_exercises=("a",), exercise_failed=lambda e: e == "a")
    assert naming.decide(["m"], {"m": "b"}, upstream) == ("m", "")
    # shared with a mistake of the failing prerequisite: look there first
    mistake, advice = naming.decide(["m", "n"], {"m": "b", "n": "a"}, upstream)
    assert mistake == "" and "`a`" in advice


def test_the_rewritten_message_drops_the_named_mistake():
    message = f"expected 1, got 0. {SUSPECT_MARK}divided by the wrong length."
    assert naming.rewrite(message, "look at `x` first") == "expected 1, got 0. Look at `x` first."
    assert naming.rewrite(message, "") == "expected 1, got 0."


# --- every mutant belongs to an exercise ---------------------------------------------------------


def test_each_mutant_belongs_to_an_exercise_of_its_topic():
    for topic in COURSE.topics:
        if not COURSE.available(topic.id):
            continue
        ids = {e.id for e in topic.exercises}
        for mutant in mutants.load(COURSE, topic.id):
            assert mutants.exercise_of(COURSE, topic.id, mutant) in ids, (topic.id, mutant.id)


def test_dev_check_names_the_topic_mutant_and_check_of_a_mistake_named_by_another_exercise(monkeypatch):
    """The proof fails when the rule is off: the DeepSpeed-Chat training step names the advantages'
    reversed order, a mistake of another exercise."""
    monkeypatch.setattr(naming, "decide", lambda matches, homes, upstream: (matches[0], ""))
    topic = COURSE.topic("deepspeed_chat")
    mutant = next(m for m in mutants.load(COURSE, topic.id) if m.id == "advantages_reversed")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        problem = devcheck.mutant_problem(COURSE, topic, mutant, Path(folder))
    assert "a mistake of exercise advantages is named by test_ppo.py::test_train_rlhf_losses" in problem
    assert "of exercise ppo_step (as 'advantages_reversed')" in problem


# --- the learners' mistakes of issue 22 ------------------------------------------------------------

ROUGE = ("test_rouge.py::test_rouge_l_hand_worked", "test_rouge.py::test_rouge_l_edge_cases_and_order")
FILTER = (
    "test_rouge.py::test_filter_instructions_hand_worked",
    "test_rouge.py::test_filter_instructions_at_the_threshold",
)


@pytest.mark.parametrize(
    "old, new",
    [
        # the LCS recurrence looks at the wrong neighbour
        ("max(previous[j + 1], current[j])", "max(previous[j], current[j])"),
        # the F-measure without its factor 2
        ("return 2 * precision * recall / (precision + recall)", "return precision * recall / (precision + recall)"),
    ],
    ids=["lcs_wrong_neighbour", "f_measure_without_2"],
)
def test_alpaca_filter_checks_send_a_rouge_slip_back_to_rouge_l(tmp_path, old, new):
    checks = _checked(tmp_path, "alpaca", old, new, only=ROUGE + FILTER)
    assert any(checks[c].status != PASSED for c in ROUGE)
    failing = [checks[c] for c in FILTER if checks[c].status != PASSED]
    assert failing  # the filter's hand-worked check at least
    for check in failing:
        assert check.mistake == "", (check.id, check.mistake)
        assert SUSPECT_MARK not in check.message and "look at it first" in check.message, check.message


def test_gpt3_pick_choice_does_not_name_mean_over_choices_for_the_longest_completion(tmp_path):
    checks = _checked(
        tmp_path,
        "gpt3",
        "return totals / lengths",
        "return totals / lengths.max()",
        only=(
            "test_prompting.py::test_choice_scores_hand_worked",
            "test_prompting.py::test_pick_choice_depends_on_the_method",
        ),
    )
    assert checks["test_prompting.py::test_choice_scores_hand_worked"].mistake == "mean_over_longest"
    pick = checks["test_prompting.py::test_pick_choice_depends_on_the_method"]
    assert pick.status != PASSED and pick.mistake == "" and "mean_over_choices" not in pick.message
    assert "`test_choice_scores_hand_worked` fails too" in pick.message


def test_deepspeed_chat_reversed_advantages_are_named_as_the_order(tmp_path):
    checks = _checked(
        tmp_path,
        "deepspeed_chat",
        "torch.stack(advantages_reversed[::-1], dim=1)",
        "torch.stack(advantages_reversed, dim=1)",
    )
    gae = checks["test_ppo.py::test_gae_hand_worked"]
    assert gae.mistake == "advantages_reversed" and "last position first" in gae.message
    assert "cover the response only" not in gae.message  # not a message about coverage
    steps = [c for c in checks.values() if c.exercise == "ppo_step" and c.status != PASSED]
    assert steps and all(c.mistake == "" and "look at `advantages` first" in c.message for c in steps)


def test_minigpt4_llama_proj_under_no_grad_fails_where_the_inputs_are_built(tmp_path):
    checks = _checked(
        tmp_path,
        "minigpt4",
        "no graph needed\n        return self.llama_proj(query_output)",
        "no graph needed\n            return self.llama_proj(query_output)",
    )
    check = checks["test_model.py::test_image_tokens_carry_a_gradient_to_the_projector"]
    assert check.exercise == "prepare_inputs" and check.status != PASSED
    assert "no graph back to llama_proj" in check.message
    # not a bare RuntimeError at loss.backward(): the training step waits for prepare_inputs
    train = [c for c in checks.values() if c.exercise == "train_step"]
    assert train and all("RuntimeError" not in c.message for c in train)
