"""`fmgrade dev record`: fill a topic's recording from the solution and its known mistakes.

The visible checks run in this process with `impl` = the solution and `recorded` making each
call on the solution. Then, for each mutant that has a learner message, the checks that used
`recorded` run again with the mutant beside the solution: every answer in which it differs
becomes that mistake's fingerprint, so a visible check can name the mistake a learner made.
"""

import tempfile
from pathlib import Path

import torch

from grader import recorded_data as data
from grader.course import CourseError
from grader.instructor import mutants
from grader.judge import inprocess, runner
from grader.judge import plugin as pytest_plugin
from grader.judge import recordings as store
from grader.judge import replay as nodes
from grader.judge.recordings import Recording
from grader.results import PASSED


def record_topic(course, topic_id, with_mistakes=True):
    """A fresh Recording of `topic_id` (not saved)."""
    known = mutants.load(course, topic_id) if with_mistakes else []
    recording = Recording(topic_id, mistakes={m.id: m.message for m in known if m.message})
    solution_path = course.solution_path(topic_id)
    book = nodes.Record(recording, inprocess.load_module(solution_path, "recorded"))
    failing = [
        f"{c.id} ({c.status}: {c.message[:160]})" for c in _run(course, topic_id, book).checks if c.status != PASSED
    ]
    if failing:  # a recording made from a run that broke off would lack answers
        raise CourseError(
            f"topic {topic_id}: the solution does not pass these visible checks while recording: " + "; ".join(failing)
        )
    used = sorted(book.checks)
    with tempfile.TemporaryDirectory(prefix="fmgrade-record-") as folder:
        for mutant in known:
            if not mutant.message or not used:
                continue
            module = inprocess.load_module(mutants.write_mutant(course, topic_id, mutant, Path(folder)), "mistake")
            calls = dict(recording.calls)
            _run(course, topic_id, nodes.Record(recording, book.solution, (mutant.id, module)), only=used)
            recording.calls = calls  # the solution's answers stay as the first pass recorded them
    return recording


def _run(course, topic_id, book, only=()):
    with torch.random.fork_rng():
        return runner.run_topic(
            course,
            topic_id,
            course.solution_path(topic_id),
            hidden=False,
            isolation="none",
            seed=0,
            only=only,
            plugins=[pytest_plugin.RecorderHolder(book)],
        )


def record(course, topic_ids):
    """Record and save each topic; returns [(topic, path, number of answers, of fingerprints)]."""
    written = []
    for topic_id in topic_ids:
        recording = record_topic(course, topic_id)
        path = store.save(course.checks_dir(topic_id), recording)
        written.append((topic_id, path, len(recording.calls), sum(len(f) for f in recording.fingerprints.values())))
    return written


def drift(course, topic_id):
    """Problems between the saved recording and what the solution answers now ([] when none)."""
    saved = store.load(course.checks_dir(topic_id), topic_id)
    fresh = record_topic(course, topic_id, with_mistakes=False)
    problems = []
    missing = sorted(set(fresh.calls) - set(saved.calls))
    if missing:
        problems.append(f"{len(missing)} answer(s) the checks ask for are not recorded")
    changed = {}  # key -> how the fresh answer differs from the saved one
    for key in fresh.calls:
        if key in saved.calls and fresh.calls[key] != saved.calls[key]:
            if "value" not in fresh.calls[key] or "value" not in saved.calls[key]:
                changed[key] = "an object where data was recorded, or data where an object was"
                continue
            difference = largest_difference(
                data.decode(fresh.calls[key]["value"]), data.decode(saved.calls[key]["value"])
            )
            if difference:
                changed[key] = difference
    if changed:
        named = [f"{fresh.labels.get(k, k[:12])} {why}" for k, why in list(changed.items())[:MAX_NAMED]]
        more = f"; and {len(changed) - MAX_NAMED} more" if len(changed) > MAX_NAMED else ""
        problems.append(
            f"{len(changed)} recorded answer(s) no longer match the solution beyond the float32 bound "
            f"(relative {DRIFT_RTOL:g}, absolute {DRIFT_ATOL:g}): " + "; ".join(named) + more
        )
    known = {m.id: m.message for m in mutants.load(course, topic_id) if m.message}
    if known != saved.mistakes:
        problems.append("the known mistakes' messages changed in mutants.yml")
    if problems:
        problems.append(f"run `fmgrade dev record --topics {topic_id}`")
    return problems


# The float32 bound a recorded answer may drift by (another CPU's kernels, another torch build):
# a quarter of the checks' own default tolerance (grader.checking.expect_close: relative 1e-4,
# absolute 1e-5), so a learner's correct answer on any CPU keeps three quarters of the margin.
DRIFT_RTOL, DRIFT_ATOL = 2.5e-5, 2.5e-6
MAX_NAMED = 5  # drifting calls named in one problem


def largest_difference(fresh, saved):
    """ "" when `fresh` matches `saved` within the float32 bound; otherwise what differs: the
    shapes or text, or the largest absolute difference and where."""
    left, right = list(data.leaves(fresh)), list(data.leaves(saved))
    if len(left) != len(right):
        return f"has {len(left)} values where {len(right)} were recorded"
    worst = None  # (excess over the bound, absolute difference, relative difference)
    for x, y in zip(left, right):
        tx, ty = (v if isinstance(v, str) else nodes._real_view(torch.as_tensor(v)) for v in (x, y))
        if isinstance(tx, str) or isinstance(ty, str):
            if tx != ty:
                return f"is {str(x)[:40]!r} where {str(y)[:40]!r} was recorded"
            continue
        if tx.shape != ty.shape:
            return f"has shape {tuple(tx.shape)} where {tuple(ty.shape)} was recorded"
        a, b = tx.double().flatten(), ty.double().flatten()
        both_nan = a.isnan() & b.isnan()
        gap = torch.where(both_nan, 0.0, (a - b).abs().nan_to_num(float("inf")))
        if not gap.numel():
            continue
        excess = gap - (DRIFT_ATOL + DRIFT_RTOL * b.abs())
        i = int(excess.argmax())
        if excess[i] > 0 and (worst is None or excess[i] > worst[0]):
            worst = (float(excess[i]), float(gap[i]), float(gap[i] / max(abs(float(b[i])), 1e-30)))
    if worst is None:
        return ""
    return f"differs by up to {worst[1]:.3g} (relative {worst[2]:.3g})"
