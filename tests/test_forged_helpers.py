"""Helpers are learner code (issue 21, item 4): a check's helper runs in the worker, next to the
learner's module, which can rewrite it (here by patching the worker's `_load_source`, as
tests/hostile/attention/forge_helper_report.py does). So a helper returns data that the check
verifies against what it knows itself, never a verdict, and a do-nothing implementation whose
helper report is forged still fails:

- minigpt4 `freeze`: a freeze that does nothing, with helpers that say every parameter is frozen
  and every module in eval mode, and a training-step report that says nothing moved;
- llama `generate`: a generate that never runs the model, with a report of the attention calls a
  cached generate would make (and ids fed that agree with its own tokens).

Each case runs through the sandboxed worker, as grading does; a control proves the same check
passes on the solution there.
"""

import pytest

from grader import course
from grader.judge import runner
from grader.results import PASSED

ROOT = course.find_root(__file__)
COURSE = course.load(ROOT)

# Appended to a learner module: replaces the helpers module's functions as the worker loads it.
FORGE = """
import __main__

_real_load_source = getattr(__main__, "_load_source", None)


def _load_source_and_forge(source, filename, name):
    loaded = _real_load_source(source, filename, name)
    for helper, forged in FORGED.items():
        if hasattr(loaded, helper):
            setattr(loaded, helper, forged)
    return loaded


if _real_load_source is not None:
    __main__._load_source = _load_source_and_forge
"""

DO_NOTHING_FREEZE = '''
def freeze(module):
    return module


def _flags_all(value):
    def helper(learner, model, *args):
        return {name: value for name, _ in model.named_parameters()}
    return helper


def _forged_step(learner, body_weights, head_weights, x, c, lr):
    """What a frozen body would report if one could say so: nothing moved, no dropout."""
    body, head = torch.nn.Linear(4, 6), torch.nn.Linear(6, 3)
    body.load_state_dict({k.rsplit(".", 1)[1]: v for k, v in body_weights.items()})
    head.load_state_dict(head_weights)
    with torch.no_grad():
        output = head(torch.tanh(body(x)))
    return {"output": output, "body": dict(body_weights), "head": dict(head_weights)}


FORGED = {
    "requires_grad_of": _flags_all(False),
    "training_flags": lambda learner, model: {name: False for name, _ in model.named_modules()},
    "freeze_step": _forged_step,
}
'''

DO_NOTHING_GENERATE = '''
def generate(model, prompt_tokens, max_new_tokens):
    """Never runs the model: the prompt followed by zeros."""
    B, T0 = prompt_tokens.shape
    return torch.cat([prompt_tokens, torch.zeros(B, max_new_tokens, dtype=torch.long)], dim=1)


def _forged_report(learner, cfg, state_dict, prompt, max_new_tokens):
    """The calls a cached generate makes, and ids fed that agree with the tokens returned."""
    prompt = torch.as_tensor(prompt, dtype=torch.long)
    T0 = prompt.size(1)
    tokens = generate(None, prompt, max_new_tokens)
    steps = [[T0, 0]] + [[1, T0 + k] for k in range(max_new_tokens - 1)]
    calls = [list(steps) for _ in range(cfg["n_layers"])]
    fed = [tokens[:, start:start + n] for n, start in steps]
    return {"tokens": tokens, "calls": calls, "fed": fed}


FORGED = {"generate_report": _forged_report}
'''

# The phrase of each failure shows the forgery took effect: the forged report passes every test
# of its own shape and fails only where the check recomputes (the head's training step) or
# compares with the answer it knows (greedy decoding's tokens).
CASES = [
    ("minigpt4", "test_freeze.py::test_freeze_stops_every_gradient", DO_NOTHING_FREEZE, "the head's weight"),
    ("llama", "test_model.py::test_generate_processes_one_new_position_per_step", DO_NOTHING_GENERATE, "differs at"),
]


def _graded(tmp_path, topic, check_id, appended):
    path = tmp_path / "exercises" / f"{topic}.py"
    path.parent.mkdir(exist_ok=True)
    source = COURSE.solution_path(topic).read_text(encoding="utf-8")
    path.write_text(source + "\n\nimport torch\n" + appended + FORGE if appended else source, encoding="utf-8")
    result = runner.run_topic(COURSE, topic, path, only=[check_id])
    return next(c for c in result.checks if c.id == check_id)


@pytest.mark.parametrize("topic, check_id, appended, phrase", CASES, ids=[c[0] for c in CASES])
def test_a_forged_helper_report_does_not_pass_a_do_nothing_implementation(tmp_path, topic, check_id, appended, phrase):
    check = _graded(tmp_path, topic, check_id, appended)
    assert check.status != PASSED, check
    assert check.score == 0 < check.max_score
    assert phrase in check.message, check.message


@pytest.mark.parametrize("topic, check_id", [c[:2] for c in CASES], ids=[c[0] for c in CASES])
def test_the_solution_passes_the_same_check_in_the_worker(tmp_path, topic, check_id):
    check = _graded(tmp_path, topic, check_id, None)
    assert check.status == PASSED, check
