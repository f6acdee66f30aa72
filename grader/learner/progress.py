"""The learner's progress in `.fmgrade/progress.json`: written atomically, readable by a person.

A file that cannot be read is moved aside (never silently dropped) and reported.

One entry per topic that has been checked: its score, maximum, each exercise's status and
points, when it was updated, and `import_error` when the last run found a module that does not
import (the results before it are kept). `hints` counts the hints revealed per exercise.
"""

import json
import os
import time
from dataclasses import dataclass, field

from grader import files
from grader.results import PASSED, ExerciseSummary, standing_of

PROGRESS_DIR = ".fmgrade"
PROGRESS_FILE = "progress.json"
FORMAT_VERSION = 1


@dataclass
class Progress:
    topics: (
        dict  # topic id -> {"score", "max_score", "exercises": {id: status}, "points": {id: [score, max]}, "updated"}
    )
    warning: str = ""  # set when a corrupt file was moved aside
    hints: dict = field(default_factory=dict)  # topic id -> {exercise id: hints revealed}

    def complete(self, topic_id):
        entry = self.topics.get(topic_id)
        return bool(entry) and entry["max_score"] > 0 and entry["score"] >= entry["max_score"]


def path_of(root):
    return root / PROGRESS_DIR / PROGRESS_FILE


def load(root):
    path = path_of(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Progress({})
    try:
        data = json.loads(text)
        topics, hints = data["topics"], data.get("hints", {})
        if data.get("format_version") != FORMAT_VERSION or not isinstance(topics, dict):
            raise ValueError(f"expected format_version {FORMAT_VERSION} and a 'topics' mapping")
        for topic_id, entry in topics.items():
            if not isinstance(entry, dict) or not {"score", "max_score", "exercises"} <= set(entry):
                raise ValueError(f"topic '{topic_id}' lacks score, max_score or exercises")
        if not isinstance(hints, dict) or not all(isinstance(levels, dict) for levels in hints.values()):
            raise ValueError("'hints' is not a mapping of topic -> {exercise: number}")
    except (ValueError, KeyError, TypeError) as exc:
        aside = path.with_name(f"{PROGRESS_FILE}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        return Progress(
            {}, warning=f"{path} could not be read ({exc}); it was moved to {aside.name} and progress starts afresh"
        )
    return Progress(topics, hints=hints)


def save(root, progress):
    data = {"format_version": FORMAT_VERSION, "topics": progress.topics}
    if progress.hints:
        data["hints"] = progress.hints
    files.write_atomically(path_of(root), json.dumps(data, indent=2, sort_keys=True) + "\n")


def record(root, topic_result, progress=None, exercises=()):
    """Store one topic's latest visible result and return the updated Progress.

    Exercises the run left out (`topic_result.not_run`) keep their last result; a module that
    did not import keeps every last result and marks the entry with `import_error`.
    `exercises` (the topic's course exercises) applies the screens' one rule
    (grader.results.standing) to what is kept: an exercise that builds on one that no longer
    passes is stored blocked."""
    progress = progress or load(root)
    statuses, points, score, max_score = _merge(progress.topics.get(topic_result.id, {}), topic_result, exercises)
    entry = {
        "score": score,
        "max_score": max_score,
        "exercises": statuses,
        "points": points,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if topic_result.import_error:
        entry["import_error"] = topic_result.import_error
    progress.topics[topic_result.id] = entry
    save(root, progress)
    return progress


def _merge(old, topic_result, course_exercises=()):
    """(statuses, points, score, max_score) of a topic after this run."""
    statuses, points = dict(old.get("exercises", {})), {e: list(p) for e, p in old.get("points", {}).items()}
    if topic_result.import_error:
        return statuses, points, old.get("score", 0), old.get("max_score", topic_result.max_score)
    if not topic_result.not_run:
        statuses, points = {}, {}  # a full run replaces everything
    for summary in topic_result.exercises():
        statuses[summary.id] = summary.status
        points[summary.id] = [summary.score, summary.max_score]
    if course_exercises:
        kept = [ExerciseSummary(e, statuses[e], p[0], p[1], "") for e, p in points.items() if e in statuses]
        for summary in standing_of(kept, course_exercises).exercises:
            statuses[summary.id], points[summary.id] = summary.status, [summary.score, summary.max_score]
    score = sum(p[0] for e, p in points.items())
    max_score = sum(p[1] for e, p in points.items())
    for exercise, declared in topic_result.not_run.items():
        if exercise not in points:  # never run, or recorded before points were kept: what its check files declare
            max_score += declared
            score += declared if statuses.get(exercise) == PASSED else 0
    return statuses, points, score, max_score


def suggest_next(course, progress):
    """The first available topic, in outline order, not complete and with every prerequisite
    complete; required topics before optional ones. None when nothing is left."""
    candidates = [t for t in course.topics if course.available(t.id) and not progress.complete(t.id)]
    ready = [t for t in candidates if all(progress.complete(p) for p in t.prerequisites)]
    ready.sort(key=lambda t: t.optional)
    return ready[0] if ready else None


def exercise_status(progress, topic_id, exercise_id):
    return progress.topics.get(topic_id, {}).get("exercises", {}).get(exercise_id)


def passed(progress, topic_id, exercise_id):
    return exercise_status(progress, topic_id, exercise_id) == PASSED


def hints_shown(progress, topic_id, exercise_id):
    level = progress.hints.get(topic_id, {}).get(exercise_id, 0)
    return level if isinstance(level, int) and level >= 0 else 0


def hints_exhausted(progress, topic_id, exercise):
    """Whether every hint of `exercise` has been shown already (so one more has nothing new)."""
    return bool(exercise.hints) and hints_shown(progress, topic_id, exercise.id) >= len(exercise.hints)


def reveal_hint(root, progress, topic_id, exercise, everything=False):
    """One more hint of `exercise` (every hint with `everything`): returns how many are shown
    now, and keeps that number in progress."""
    total = len(exercise.hints)
    shown = total if everything else min(hints_shown(progress, topic_id, exercise.id) + 1, total)
    if shown != hints_shown(progress, topic_id, exercise.id):
        progress.hints.setdefault(topic_id, {})[exercise.id] = shown
        save(root, progress)
    return shown
