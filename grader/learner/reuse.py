"""Passing results `fmgrade check` may reuse instead of training again.

An exercise whose checks all passed and took a while (a capstone that trains a model) is
remembered in `.fmgrade/reuse.json` under a hash of everything its checks run: the learner's
file, the topic's check folder (checks, helpers, recordings) and the grader's version. While
that hash is unchanged, `check` shows the remembered result (and says so) instead of running
those checks again; any edit to the file or the checks runs them afresh.

Only the learner's own `check` reads this file. `grade`, `watch` and the notebook's
`--seed` replays never reuse a result, and a file a learner edits by hand can only make their
own screen wrong, never a grade.
"""

import hashlib
import json
import time
from dataclasses import asdict
from importlib import metadata

from grader import files
from grader.learner.progress import PROGRESS_DIR
from grader.results import PASSED, CheckResult

REUSE_FILE = "reuse.json"
REUSE_SECONDS = 0.5  # an exercise whose checks take less than this is cheaper to run than to remember
FORMAT_VERSION = 1
ISOLATION_REUSED = "reused"  # a result made only of remembered checks ran no code this time


def path_of(root):
    return root / PROGRESS_DIR / REUSE_FILE


def key(course, topic_id, source):
    """The hash of what the topic's checks run: `source` (the learner's file as read), the
    check folder's files and the grader's version."""
    digest = hashlib.sha256(f"fmgrade-reuse-{FORMAT_VERSION}\0{_version()}\0".encode())
    digest.update(source.encode("utf-8", "surrogatepass"))
    folder = course.checks_dir(topic_id)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(b"\0" + path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _version():
    try:
        return metadata.version("fmgrade")
    except metadata.PackageNotFoundError:
        return "unknown"


def _load(root):
    try:
        data = json.loads(path_of(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format_version") == FORMAT_VERSION else {}


def lookup(root, topic_id, digest, exercises):
    """{exercise: (checks, when)} of `exercises` remembered under `digest`."""
    entry = _load(root).get("topics", {}).get(topic_id)
    if not isinstance(entry, dict) or entry.get("key") != digest:
        return {}
    found = {}
    for exercise in exercises:
        kept = entry.get("exercises", {}).get(exercise)
        try:
            checks = [CheckResult(**c) for c in kept["checks"]]
        except (TypeError, KeyError):
            continue
        if checks and all(c.status == PASSED and c.exercise == exercise for c in checks):
            found[exercise] = (checks, str(kept.get("when", "")))
    return found


def remember(root, topic_id, digest, result, seconds, reused=()):
    """Keep the passing exercises of `result` that took at least REUSE_SECONDS (`seconds`:
    exercise -> wall time of its checks) under `digest`, with those already `reused`."""
    data = _load(root)
    topics = data.get("topics", {}) if isinstance(data.get("topics"), dict) else {}
    old = topics.get(topic_id) if isinstance(topics.get(topic_id), dict) else {}
    kept = {e: v for e, v in old.get("exercises", {}).items() if e in reused} if old.get("key") == digest else {}
    by_exercise = {}
    for check in result.checks:
        by_exercise.setdefault(check.exercise, []).append(check)
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for exercise, checks in by_exercise.items():
        if exercise in kept or seconds.get(exercise, 0.0) < REUSE_SECONDS:
            continue
        if all(c.status == PASSED for c in checks):
            kept[exercise] = {"when": when, "checks": [asdict(c) for c in checks]}
    if not kept and topic_id not in topics:
        return
    topics[topic_id] = {"key": digest, "exercises": kept}
    text = json.dumps({"format_version": FORMAT_VERSION, "topics": topics}, indent=1, sort_keys=True) + "\n"
    files.write_atomically(path_of(root), text)
