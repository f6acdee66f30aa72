"""Credit on its own merits (issue 21, item 6): at grade time a failing prerequisite is answered
by the reference through the grader (grader.instructor.standins), never inside the worker; a
learner's check keeps `blocked`; the worker, which learner code controls, gets answers only for
the names the grader substituted for the check in progress, and only data."""

import json
import xml.etree.ElementTree as ET

import pytest
import torch

from grader import course, formats
from grader.instructor import mutants, standins
from grader.judge import inprocess, runner
from grader.results import BLOCKED, FAILED, PASSED, CheckResult, ExerciseSummary, Report, TopicResult, standing_of
from grader.sandbox import process as sandbox
from grader.sandbox import proxy

ROOT = course.find_root(__file__)
COURSE = course.load(ROOT)
LIMITS = course.Limits(call_timeout=10)


# --- which names stand in for an exercise -------------------------------------------------------


def test_names_come_from_where_the_solution_regions_are():
    names = standins.names_by_exercise(COURSE.solution_path("attention").read_text(), "attention.py")
    assert names["attention"] == ("attention",)
    assert names["multi_head_attention"] == ("MultiHeadedAttention.forward",)
    assert names["encoder_decoder_layers"] == ("EncoderLayer.forward", "DecoderLayer.forward")
    assert names["positional_encoding"] is None  # a region in __init__: the object's state is built there


def test_a_region_in_init_or_a_decorated_function_cannot_stand_in():
    source = (
        "import functools\n"
        "class A:\n    def __init__(self):\n        ### BEGIN SOLUTION a\n        pass\n        ### END SOLUTION\n"
        "@functools.cache\ndef b():\n    ### BEGIN SOLUTION b\n    pass\n    ### END SOLUTION\n"
        "def c():\n    ### BEGIN SOLUTION c\n    pass\n    ### END SOLUTION\n"
    )
    assert standins.names_by_exercise(source) == {"a": None, "b": None, "c": ("c",)}


# --- what an answer may carry ---------------------------------------------------------------------


class _NoWorker:
    generation = 0


def test_an_answer_is_data_only():
    import numpy as np

    answer = proxy.as_data(
        (torch.nn.Parameter(torch.ones(2)), np.float32(1.5), {"k": [None, torch.float16]}), _NoWorker()
    )
    assert (
        type(answer[0]) is torch.Tensor
        and not answer[0].requires_grad
        and answer[1:] == (1.5, {"k": [None, torch.float16]})
    )
    for reference_object in (torch.nn.Linear(2, 2), print, standins.StandIns, np.array([object()], dtype=object)):
        with pytest.raises(proxy.NotData):
            proxy.as_data(reference_object, _NoWorker())
    with pytest.raises(proxy.NotData, match="more than 64 MB"):
        proxy.as_data([torch.zeros(9 * 1024 * 1024)] * 2, _NoWorker())


# --- the results model: grading does not block what the reference stood in for ----------------


EXERCISES = [course.Exercise("attention", "g"), course.Exercise("multi_head_attention", "g", depends=("attention",))]


def test_standing_blocks_a_dependent_unless_the_reference_stood_in():
    failing = ExerciseSummary("attention", FAILED, 1, 6, "wrong")
    checked = ExerciseSummary("multi_head_attention", PASSED, 4, 4, "")
    stood_in = ExerciseSummary("multi_head_attention", PASSED, 4, 4, "", ("attention",))
    assert standing_of([failing, checked], EXERCISES).status("multi_head_attention") == BLOCKED
    graded = standing_of([failing, stood_in], EXERCISES)
    assert graded.status("multi_head_attention") == PASSED and graded.score == 5


def test_every_format_names_the_substituted_prerequisites():
    check = CheckResult("t.py::test_mha", "multi_head_attention", PASSED, 4, 4, substituted=["attention"])
    report = Report([TopicResult("attention", [check])])
    assert json.loads(formats.to_json(report))["topics"][0]["checks"][0]["substituted"] == ["attention"]
    case = ET.fromstring(formats.to_junit(report)).find(".//testcase")
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["substituted"] == "attention"
    assert "`attention`" in json.loads(formats.to_gradescope(report))["tests"][0]["output"]
    assert TopicResult("attention", [check]).exercises()[0].substituted == ("attention",)


# --- a submission that forgot sqrt(d_k) ----------------------------------------------------------

ATTENTION_CHECKS = [
    "test_attention.py::test_output_matches_sdpa",
    "test_attention.py::test_attention_random_shapes_match_reference",
]
MHA_CHECKS = [
    "test_attention.py::test_mha_matches_torch_multihead_attention",
    "test_attention.py::test_mha_random_against_reference",
]


@pytest.fixture(scope="module")
def no_scaling(tmp_path_factory):
    mutant = next(m for m in mutants.load(COURSE, "attention") if m.id == "no_scaling")
    return mutants.write_mutant(COURSE, "attention", mutant, tmp_path_factory.mktemp("nosqrt") / "exercises")


def _by_exercise(result):
    found = {}
    for check in result.checks:
        found.setdefault(check.exercise, []).append(check)
    return found


def test_at_grade_time_only_the_prerequisite_loses_its_points(no_scaling):
    result = runner.run_topic(
        COURSE, "attention", no_scaling, hidden=True, seed=7, only=ATTENTION_CHECKS + MHA_CHECKS, stand_ins=True
    )
    checks = _by_exercise(result)
    # attention's own checks run on the learner's code: the reference never answers for them
    assert {c.status for c in checks["attention"]} == {FAILED}
    assert all(c.substituted == [] for c in checks["attention"])
    # the dependent's code is right: its points, with the reference's `attention` named
    assert [(c.status, c.substituted) for c in checks["multi_head_attention"]] == [(PASSED, ["attention"])] * 2
    assert any(c.hidden for c in checks["multi_head_attention"])


def test_a_learners_check_still_blocks_the_dependent(no_scaling):
    result = runner.run_topic(COURSE, "attention", no_scaling, seed=7, only=ATTENTION_CHECKS + MHA_CHECKS[:1])
    (mha,) = _by_exercise(result)["multi_head_attention"]
    assert mha.status == BLOCKED and mha.score == 0 and mha.substituted == []


def test_without_stand_ins_grading_blocks_as_before(no_scaling):
    result = runner.run_topic(COURSE, "attention", no_scaling, hidden=True, seed=7, only=ATTENTION_CHECKS + MHA_CHECKS)
    assert {c.status for c in _by_exercise(result)["multi_head_attention"]} == {BLOCKED}


# --- hostile: learner code calls the stand-in channel itself -------------------------------------

HOSTILE = '''
import gc
import torch
from torch import nn


def attention(query, key, value, mask=None, dropout=None):
    return value, None  # wrong on purpose: it fails, so the grader stands in for it


def _worker():
    return next(o for o in gc.get_objects() if type(o).__name__ == "Worker" and hasattr(o, "ask"))


def ask(name, *args, **kwargs):
    """What the grader answers when learner code forges a stand-in's call."""
    try:
        answer = _worker().ask(name, args, kwargs)
    except RuntimeError as exc:
        return {"refused": str(exc)}
    return {"answer": answer, "types": [type(a).__name__ for a in (answer if isinstance(answer, tuple) else [answer])]}


def call_attention(q, k, v):
    """A dependent's ordinary call: the module's `attention` is then the stand-in."""
    out, p = attention(q, k, v)
    return {"out": out, "p": p, "plain": type(out) is torch.Tensor and type(p) is torch.Tensor}


def train_through(q):
    """Training through a stand-in: backward must say it cannot, not go on without a gradient."""
    q = q.clone().requires_grad_()
    out, _ = attention(q, q, q)
    try:
        out.sum().backward()
    except RuntimeError as exc:
        return str(exc)
    return "a gradient flowed"


def not_data_argument(q):
    return ask("attention", q, lambda: None, q)


def too_big(q):
    big = torch.zeros(17 * 1024 * 1024)  # 68 MB: over what a stand-in's call may carry
    return ask("attention", big, big, big)
'''


@pytest.fixture(scope="module")
def worker():
    session = proxy.Session("exercises/attention.py", HOSTILE, LIMITS, sandbox.choose_isolation("auto"))
    yield session
    session.close()


@pytest.fixture
def hostile(worker):
    """The hostile module's session, graded: the reference's attention module answers stand-ins."""
    path = COURSE.solution_path("attention")
    worker.stand_in = standins.StandIns(inprocess.load_module(path, "ref_attention"), path.read_text(), str(path))
    worker.substitute(set())
    return worker


def _qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 4, generator=g) for _ in range(3)]


def test_a_substituted_function_is_answered_with_plain_data(hostile):
    hostile.substitute({"attention"})
    q, k, v = _qkv()
    got = hostile.module().call_attention(q, k, v)
    scores = (q @ k.transpose(-2, -1) / 2).softmax(-1)
    assert got["plain"] and torch.allclose(got["p"], scores) and torch.allclose(got["out"], scores @ v)


def test_backward_through_a_stand_in_says_no_gradient_flows(hostile):
    hostile.substitute({"attention"})
    assert "no gradient flows through `attention`" in hostile.module().train_through(_qkv()[0])


def test_the_grader_refuses_what_it_did_not_substitute(hostile):
    q, k, v = _qkv()
    impl = hostile.module()
    hostile.substitute(set())  # no failing prerequisite for this check (the prerequisite's own checks)
    assert "answers no call of attention" in impl.ask("attention", q, k, v)["refused"]
    hostile.substitute({"attention"})
    for name in ("subsequent_mask", "train_copy_model", "MultiHeadedAttention.forward", "__import__"):
        assert "answers no call" in impl.ask(name, 4)["refused"], name


def test_the_grader_refuses_what_is_not_data(hostile):
    q, k, v = _qkv()
    impl = hostile.module()
    hostile.substitute({"attention", "make_model"})  # the reference's make_model returns an nn.Module
    refused = impl.ask("make_model", 11, 11, N=1, d_model=8, d_ff=8, h=2)["refused"]
    assert "is not sent" in refused and "EncoderDecoder is not data" in refused
    assert "could not answer this call of attention" in impl.not_data_argument(q)["refused"]
    assert "more than 64 MB" in impl.too_big(q)["refused"]


def test_no_stand_ins_in_a_learners_check(hostile):
    hostile.stand_in = None  # what a learner's `check` has
    hostile.substitute({"attention"})
    q, k, v = _qkv()
    assert "answers no call" in hostile.module().ask("attention", q, k, v)["refused"]


def test_a_solution_whose_regions_cannot_be_read_stands_in_for_nothing():
    unnamed = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert standins.StandIns(None, unnamed).names("double") is None


@pytest.mark.slow
def test_fmgrade_grade_credits_the_dependents_and_names_the_substitute(no_scaling):
    from click.testing import CliRunner

    from grader import cli

    submission = no_scaling.parent.parent
    args = ["grade", str(submission), "--kit", str(ROOT), "--topics", "attention", "--seed", "7", "--format", "json"]
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    data = json.loads(result.output[result.output.index("{") :])
    checks = _by_exercise(TopicResult("attention", [CheckResult(**c) for c in data["topics"][0]["checks"]]))
    assert all(c.substituted == [] for c in checks["attention"]) and checks["attention"][0].score == 0
    for exercise in ("multi_head_attention", "encoder_decoder_layers", "greedy_decode"):
        assert [(c.status, c.substituted) for c in checks[exercise]] == [(PASSED, ["attention"])] * len(
            checks[exercise]
        )
    assert data["score"] >= 36  # was 23: the four dependents were blocked
