"""The recordings learners check against hold on the machine CI runs on, and on other CPUs.

`fmgrade check` compares a learner's answers with `tests/checks/<topic>/recorded.json`, made on
the instructor's machine. Another CPU's float kernels give slightly different answers; a
recording must stay within a quarter of the checks' own tolerance of what the solution gives
there (grader.instructor.record.DRIFT_RTOL/ATOL), or a correct learner fails a visible check.

Other CPUs are simulated with torch's generic kernels (ATEN_CPU_CAPABILITY=default: no AVX2 or
AVX-512, the scalar and portable vector paths that CPUs without them, ARM among them, take) and
one thread; the worker is given the same setting (grader.sandbox.process passes it on).
"""

import json
import os
import subprocess
import sys

import pytest

from grader import course as course_mod
from grader.instructor import record

ROOT = course_mod.find_root(__file__)
COURSE = course_mod.load(ROOT)
TOPICS = [t.id for t in COURSE.topics if COURSE.available(t.id)]

DRIFT_EVERY_TOPIC = """
import json, sys
from grader import course
from grader.instructor import record
loaded = course.load(sys.argv[1])
print(json.dumps({topic: record.drift(loaded, topic) for topic in sys.argv[2:]}))
"""


def drift_elsewhere(env):
    done = subprocess.run(
        [sys.executable, "-c", DRIFT_EVERY_TOPIC, str(ROOT), *TOPICS],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_every_recording_holds_on_this_machine():
    """`fmgrade dev check`'s "recorded answers match the solution", for every topic, here."""
    assert {topic: record.drift(COURSE, topic) for topic in TOPICS} == {topic: [] for topic in TOPICS}


@pytest.mark.slow
def test_every_recording_holds_with_the_generic_kernels_of_other_cpus():
    drifted = drift_elsewhere({"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert drifted == {topic: [] for topic in TOPICS}


def test_the_worker_runs_with_the_kernels_the_grader_was_given(monkeypatch, tmp_path):
    from grader.sandbox import process as sandbox

    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("FMGRADE_SECRET_SOMETHING", "x")
    env = sandbox.WorkerProcess._environment(object.__new__(sandbox.WorkerProcess), str(tmp_path))
    assert env["ATEN_CPU_CAPABILITY"] == "default"
    assert "FMGRADE_SECRET_SOMETHING" not in env
