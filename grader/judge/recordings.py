"""One topic's recording: `tests/checks/<topic>/recorded.json`.

    {"format": "fmgrade-recording", "version": 1, "topic": "attention",
     "calls": {key: {"value": <data>} | {"object": true}},
     "fingerprints": {key: {mistake id: <data>}},   # what each known mistake returns instead
     "mistakes": [[mistake id, message for the learner], ...]}  # in mutants.yml's order

Loaded with `json` only: a recording holds data, never code.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.course import CourseError
from grader.files import write_atomically

FILE_NAME = "recorded.json"
FORMAT, VERSION = "fmgrade-recording", 1


@dataclass
class Recording:
    topic: str
    calls: dict = field(default_factory=dict)
    fingerprints: dict = field(default_factory=dict)
    mistakes: dict = field(default_factory=dict)
    # key -> what a check did to get the answer ("test_x.py::test_y: recorded.attention(...)"), for
    # naming a call in messages to the instructor; made while recording, never saved
    labels: dict = field(default_factory=dict, compare=False)

    def for_learners(self):
        """The recording as the student release ships it: only the mistakes a visible check can
        name (those with a fingerprint). A message no visible answer leads to would tell the
        learner what a hidden check looks for ("took BERT for a model that continues text")."""
        named = {mistake for fingerprints in self.fingerprints.values() for mistake in fingerprints}
        return Recording(
            self.topic, self.calls, self.fingerprints, {k: v for k, v in self.mistakes.items() if k in named}
        )

    def to_text(self):
        body = {
            "format": FORMAT,
            "version": VERSION,
            "topic": self.topic,
            "calls": self.calls,
            "fingerprints": self.fingerprints,
            "mistakes": [[k, v] for k, v in self.mistakes.items()],
        }
        return json.dumps(body, sort_keys=True, indent=1) + "\n"


def path_for(checks_dir):
    return Path(checks_dir) / FILE_NAME


def load(checks_dir, topic):
    """The topic's recording; an empty one when the topic has none yet."""
    path = path_for(checks_dir)
    if not path.is_file():
        return Recording(topic)
    where = f"tests/checks/{topic}/{FILE_NAME}"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CourseError(f"{where}: not a recording ({exc}); run `fmgrade dev record --topics {topic}`") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("version") != VERSION:
        raise CourseError(
            f"{where}: not a version-{VERSION} fmgrade recording; run `fmgrade dev record --topics {topic}`"
        )
    for name in ("calls", "fingerprints"):
        if not isinstance(body.get(name), dict):
            raise CourseError(f"{where}: field '{name}' must be a mapping")
    mistakes = body.get("mistakes")
    if isinstance(mistakes, dict):  # written before the order was kept
        mistakes = [list(item) for item in sorted(mistakes.items())]
    if not isinstance(mistakes, list) or not all(isinstance(m, list) and len(m) == 2 for m in mistakes):
        raise CourseError(f"{where}: field 'mistakes' must be a list of [id, message] pairs")
    return Recording(topic, body["calls"], body["fingerprints"], dict(mistakes))


def save(checks_dir, recording):
    path = path_for(checks_dir)
    write_atomically(path, recording.to_text())
    return path
