"""Visible points are earned by code: a replay of the release's recordings scores at most 10%.

The attack, as a student with only the student release would make it: each topic's
`recorded.json` holds the reference's answer to every call a visible check makes on `recorded`,
keyed by the check's id, the operation's position, and its arguments (floating data by dtype
and shape only). The submission keeps the stub and replaces each of its functions and classes
with a stand-in that computes those keys for the arguments it is given (over every visible
check id and position) and returns the recorded answer; objects it returns answer their own
attribute reads, calls and indexing the same way. It holds no solution logic at all.

On the learner's `check` (recorded inputs) it scores well. Graded with the kit, the visible
checks run on inputs drawn from the submission's seed (grader.instructor.live.GradeInputs),
and the replay must score at most 10% of the course; the reference keeps full marks.
"""

import ast
import inspect
import json
import shutil

import pytest

from grader import catalog as checks_index
from grader import course, recorded_data
from grader.instructor import grade
from grader.judge import recordings, runner

pytestmark = pytest.mark.slow

SEED = 20261207
POSITIONS = 48  # positions tried for the first operation on a check's `recorded`

_MACHINERY = '''
import json as _json

_CALLS = _json.loads(_RECORDING)["calls"]
_ROOTS = _json.loads(_ROOT_IDS)
_STARTS = {}


class _Miss(NotImplementedError):
    pass


def _key_of(value):
    return object.__getattribute__(value, "_key") if isinstance(value, _Replayed) else None


def _answer(key):
    entry = _CALLS[key]
    return _Replayed(key) if "object" in entry else decode(entry["value"])


def _find(parents, op, name, args=(), kwargs=None, positions=8):
    """The recorded answer of `op` made on any of `parents` at any early position."""
    for parent in parents:
        for index in range(positions):
            try:
                key = call_key(parent, index, op, name, args, kwargs, _key_of)
            except NotData:
                raise _Miss("not replayable")
            if key in _CALLS:
                return _answer(key)
    raise _Miss(f"no recorded answer for {op} {name}")


def _starts(name):
    """Keys of `recorded.<name>` in every visible check, at every position."""
    if name not in _STARTS:
        _STARTS[name] = [
            key
            for root in _ROOTS
            for index in range(_POSITIONS)
            for key in [call_key(root, index, "getattr", name)]
            if key in _CALLS
        ]
    return _STARTS[name]


class _Replayed:
    """An object the reference returned, answering from the recording."""

    def __init__(self, key):
        object.__setattr__(self, "_key", key)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _find([object.__getattribute__(self, "_key")], "getattr", name)

    def __call__(self, *args, **kwargs):
        return _find([object.__getattribute__(self, "_key")], "call", "", args, kwargs)

    def __getitem__(self, index):
        return _find([object.__getattribute__(self, "_key")], "getitem", "", (index,))


def _top(name):
    def stand_in(*args, **kwargs):
        return _find(_starts(name), "call", "", args, kwargs, positions=2)

    stand_in.__name__ = name
    return stand_in
'''


def _stub_names(stub_source):
    """Top-level functions and classes of the stub that hold TODOs."""
    for node in ast.parse(stub_source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and "TODO(" in ast.get_source_segment(stub_source, node):
            yield node.name


def replay_submission(released, topic):
    """exercises/<topic>.py that answers every visible call from the release's recording."""
    stub = (released.root / "exercises" / f"{topic}.py").read_text()
    recording = recordings.path_for(released.checks_dir(topic)).read_text()
    roots = [
        f"{c.file}::{c.name}"
        for checks in checks_index.scan(released.checks_dir(topic)).values()
        for c in checks
        if not c.hidden
    ]
    parts = [
        stub,
        inspect.getsource(recorded_data),  # the release's own grader/recorded_data.py: encode, decode, call_key
        f"_RECORDING = {recording!r}\n_ROOT_IDS = {json.dumps(roots)!r}\n_POSITIONS = {POSITIONS}\n",
        _MACHINERY,
        "\n".join(f"{name} = _top({name!r})" for name in _stub_names(stub)),
    ]
    return "\n\n".join(parts) + "\n"


def _graded(kit, folder, topics):
    return grade.grade_submission(kit, folder, topics, SEED).report


def _score(report):
    return sum(t.score for t in report.topics), sum(t.max_score for t in report.topics)


def _replay_folder(released, topics, folder):
    (folder / "exercises").mkdir(parents=True)
    for topic in topics:
        (folder / "exercises" / f"{topic}.py").write_text(replay_submission(released, topic))
    return folder


def test_a_replay_of_the_recordings_earns_at_most_ten_percent(release_and_kit, tmp_path):
    released, kit = release_and_kit
    topics = [t.id for t in kit.topics if kit.available(t.id)]
    report = _graded(kit, _replay_folder(released, topics, tmp_path / "replay"), topics)
    score, max_score = _score(report)
    by_topic = {t.id: f"{t.score:g}/{t.max_score:g}" for t in report.topics}
    assert max_score > 0
    assert score <= 0.10 * max_score, f"the replay scored {score:g}/{max_score:g} with the kit: {by_topic}"


def test_the_replay_is_a_real_attack_on_the_learners_check(release_and_kit, tmp_path):
    """On the learner's `check` (recorded inputs, unchanged) the same files pass many visible
    checks: what the kit takes away is what the recordings gave, not something the attack lacks."""
    released, _ = release_and_kit
    topics = ["attention", "instructgpt"]
    folder = _replay_folder(released, topics, tmp_path / "replay")
    score = max_score = 0
    for topic in topics:
        result = runner.run_topic(released, topic, folder / "exercises" / f"{topic}.py")
        score, max_score = score + result.score, max_score + result.max_score
    assert score >= 0.3 * max_score, f"the replay passed only {score:g}/{max_score:g} visible points on `check`"


def test_the_reference_keeps_full_marks_with_the_kit(release_and_kit, tmp_path):
    _, kit = release_and_kit
    topics = [t.id for t in kit.topics if kit.available(t.id)]
    shutil.copytree(course.find_root(__file__) / "solutions", tmp_path / "reference" / "exercises")
    report = _graded(kit, tmp_path / "reference", topics)
    lost = [f"{t.id}/{c.id}: {c.status} {c.message[:200]}" for t in report.topics for c in t.checks if not c.score]
    assert not lost
    score, max_score = _score(report)
    assert score == max_score > 0
