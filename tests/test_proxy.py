"""The boundary between grader and worker: what crosses as data, what stays as a handle, and
what a check sees when learner code misbehaves."""

import numpy as np
import pytest
import torch

from grader import course
from grader.judge.verdict import ImportFailed, LearnerCodeError, LearnerTimeout, WorkerLost
from grader.sandbox import process as sandbox
from grader.sandbox import proxy

LIMITS = course.Limits(call_timeout=10)

SOURCE = """
import collections
import numpy as np
import torch
from torch import nn

Pair = collections.namedtuple("Pair", "a b")
COUNT = 3


def echo(x):
    return x


def data():
    return {"t": torch.ones(2, requires_grad=True), "n": np.arange(3), "s": np.float32(1.5),
            "p": Pair(1, "x"), "dtype": torch.float16, "c": 1 + 2j, "nested": [(None, True)]}


class Box(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(2)])
        self.width = width

    def forward(self, x):
        return self.layers[1](self.layers[0](x))

    def scale(self, factor):
        return self.width * factor


def apply(module, x):
    return module(x)


def boom():
    raise ValueError("bad input")


def hang():
    while True:
        pass


def leave():
    import os
    os._exit(3)
"""


@pytest.fixture(scope="module")
def session():
    s = proxy.Session("exercises/probe.py", SOURCE, LIMITS, sandbox.choose_isolation("auto"))
    yield s
    s.close()


def test_data_crosses_as_plain_values(session):
    got = session.module().data()
    assert type(got["t"]) is torch.Tensor and not got["t"].requires_grad
    assert isinstance(got["n"], np.ndarray) and got["n"].tolist() == [0, 1, 2]
    assert got["s"] == 1.5 and type(got["s"]) is float
    assert got["p"] == (1, "x") and type(got["p"]) is tuple
    assert got["dtype"] is torch.float16 and got["c"] == 1 + 2j and got["nested"] == [(None, True)]


def test_arguments_round_trip(session):
    impl = session.module()
    for value in (torch.arange(6).view(2, 3), np.ones((2, 2)), {"k": [1, 2.5, "s"]}, (1, (2, 3)), None):
        back = impl.echo(value)
        if isinstance(value, torch.Tensor):
            assert torch.equal(back, value)
        elif isinstance(value, np.ndarray):
            assert np.array_equal(back, value)
        else:
            assert back == value
    assert impl.echo(np.float64(2.5)) == 2.5 and impl.COUNT == 3


def test_objects_stay_in_the_worker_as_handles(session):
    impl = session.module()
    box = impl.Box(4)
    assert isinstance(box, proxy.Handle) and "Box" in repr(box)
    assert box.width == 4 and box.scale(2) == 8 and len(box.layers) == 2
    assert [repr(layer) for layer in box.layers] == ["<Linear object from your code>"] * 2
    x = torch.randn(3, 4)
    state = box.state_dict()
    expected = (x @ state["layers.0.weight"].T + state["layers.0.bias"]) @ state["layers.1.weight"].T + state[
        "layers.1.bias"
    ]
    assert torch.allclose(box(x), expected, atol=1e-6)
    assert torch.allclose(
        impl.apply(box.layers[0], x), x @ state["layers.0.weight"].T + state["layers.0.bias"], atol=1e-6
    )
    with pytest.raises(TypeError, match="read-only"):
        box.width = 5


def test_learner_exceptions_name_type_and_line(session):
    with pytest.raises(LearnerCodeError) as info:
        session.module().boom()
    assert info.value.type_name == "ValueError" and "bad input" in info.value.message
    assert info.value.where.startswith("exercises/probe.py:") and "boom()" in info.value.where


@pytest.mark.slow
def test_timeout_restarts_the_worker_and_old_handles_say_so():
    s = proxy.Session("exercises/probe.py", SOURCE, course.Limits(call_timeout=1), sandbox.choose_isolation("auto"))
    try:
        s.begin_check("hang")
        box = s.module().Box(2)
        with pytest.raises(LearnerTimeout, match="exercise `hang` did not return within 1 s"):
            s.module().hang()
        with pytest.raises(WorkerLost, match="lost when the worker restarted"):
            box.scale(1)
        assert s.module().COUNT == 3  # a fresh worker
        with pytest.raises(WorkerLost, match="ended the worker process .exit status 3."):
            s.module().leave()
    finally:
        s.close()


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f(:\n", "exercises/probe.py:1: SyntaxError"),
        ("import no_such_module_here\n", "ModuleNotFoundError"),
        ("raise RuntimeError('at import')\n", "exercises/probe.py:1 in <module>(): RuntimeError: at import"),
    ],
)
def test_a_module_that_does_not_import_gives_one_line(source, message):
    s = proxy.Session("exercises/probe.py", source, LIMITS, sandbox.choose_isolation("auto"))
    try:
        with pytest.raises(ImportFailed) as info:
            s.module()
        assert message in info.value.message and "\n" not in info.value.message
        with pytest.raises(ImportFailed):  # remembered: no restart per check
            s.module()
    finally:
        s.close()


def test_isolation_level_is_reported():
    assert sandbox.choose_isolation("process") == "process"
    assert sandbox.choose_isolation("auto") in ("bwrap", "namespaces", "process")


FLOOD = """
import os, sys

def flood(lines, fd_lines):
    for i in range(lines):
        print(f"line {i}")
    sys.stdout.flush()
    for i in range(fd_lines):  # below Python: what C code or a child process writes
        os.write(1, f"fd {i}\\n".encode())
    raise ValueError("wrong")
"""


@pytest.mark.parametrize("lines, fd_lines", [(20_001, 0), (0, 30_000)])
def test_the_count_of_output_not_shown_is_every_line_printed(lines, fd_lines):
    """20,001 printed lines once read "… 119 more lines": only the lines of the part kept were counted."""
    from grader.learner import rendering

    s = proxy.Session("exercises/flood.py", FLOOD, LIMITS, sandbox.choose_isolation("auto"))
    try:
        with pytest.raises(LearnerCodeError):
            s.module().flood(lines, fd_lines)
        output = s.take_output()
    finally:
        s.close()
    printed = rendering._printed(output)
    hidden = int(printed[-1].plain.split("…")[1].split(" more line")[0].replace(",", ""))
    assert hidden == lines + fd_lines - rendering.OUTPUT_LINES
    assert [row.plain.strip() for row in printed[1:3]] == (["│ line 0", "│ line 1"] if lines else ["│ fd 0", "│ fd 1"])
