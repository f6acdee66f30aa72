"""The learner's progress in `.fmgrade/progress.json`: written atomically, readable by a person.

A file that cannot be read is moved aside (never silently dropped) and reported.
"""
import json
import os
import time
from dataclasses import dataclass

from grader import files
from grader.results import PASSED

PROGRESS_DIR = ".fmgrade"
PROGRESS_FILE = "progress.json"
FORMAT_VERSION = 1


@dataclass
class Progress:
    topics: dict  # topic id -> {"score", "max_score", "exercises": {id: status}, "updated"}
    warning: str = ""  # set when a corrupt file was moved aside

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
        topics = data["topics"]
        if data.get("format_version") != FORMAT_VERSION or not isinstance(topics, dict):
            raise ValueError(f"expected format_version {FORMAT_VERSION} and a 'topics' mapping")
        for topic_id, entry in topics.items():
            if not isinstance(entry, dict) or not {"score", "max_score", "exercises"} <= set(entry):
                raise ValueError(f"topic '{topic_id}' lacks score, max_score or exercises")
    except (ValueError, KeyError, TypeError) as exc:
        aside = path.with_name(f"{PROGRESS_FILE}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        return Progress({}, warning=f"{path} could not be read ({exc}); it was moved to {aside.name} and progress starts afresh")
    return Progress(topics)


def record(root, topic_result, progress=None):
    """Store one topic's latest visible result and return the updated Progress."""
    progress = progress or load(root)
    progress.topics[topic_result.id] = {
        "score": topic_result.score,
        "max_score": topic_result.max_score,
        "exercises": {e.id: e.status for e in topic_result.exercises()},
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data = {"format_version": FORMAT_VERSION, "topics": progress.topics}
    files.write_atomically(path_of(root), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return progress


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
