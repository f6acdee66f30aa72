"""A submission's exercise files, wherever a platform put them, copied into a folder `grade` reads.

Platforms lay submissions out differently: Gradescope unpacks an upload of `attention.py` flat
into /autograder/submission/, a GitHub upload keeps `exercises/attention.py`, a zip of a folder
adds one more level, and an nbgrader assignment folder holds `attention.py` or
`exercises/attention.py`; a learner who worked in Jupyter may hand in `attention.ipynb`. `stage`
finds each topic's file among those places and copies it to STAGED/exercises/TOPIC.py (a notebook
as its code cells, grader.instructor.platforms.ipynb), so grading sees one layout and nothing else of the
submission.

The submission is hostile: every file is read by grader.submission.read_bytes (no link followed
at any level, only singly linked regular files, opened non-blocking, at most MAX_BYTES).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from grader import submission as learner_files
from grader.instructor.platforms import ipynb

MAX_BYTES = 1_000_000  # a learner's exercise file is a few kB; more is a mistake or an attack


@dataclass
class Staged:
    folder: Path  # holds exercises/<topic>.py for every topic found
    found: dict = field(default_factory=dict)  # topic -> where it was found, relative to the submission
    problems: list = field(default_factory=list)  # one line per file that could not be used


def candidates(topic):
    """Where a topic's file may be, relative to the submission, most specific first; a module
    before a notebook saved from it."""
    return [
        Path("exercises") / f"{topic}.py",
        Path(f"{topic}.py"),
        Path("exercises") / f"{topic}.ipynb",
        Path(f"{topic}.ipynb"),
    ]


def stage(submission, topics, dest):
    """Copy the exercise file of each topic found in `submission` to DEST/exercises/."""
    submission, dest = Path(submission), Path(dest)
    (dest / "exercises").mkdir(parents=True, exist_ok=True)
    staged = Staged(dest)
    roots = [Path(".")]
    nested = _single_folder(submission)
    if nested is not None:  # an upload of one folder (a zipped repository): look inside it too
        roots.append(Path(nested))
    for topic in topics:
        for root in roots:
            found = None
            for relative in candidates(topic):
                try:
                    data = _read(submission, root / relative)
                except learner_files.Missing:
                    continue
                except (learner_files.Unusable, ipynb.NotANotebook) as exc:
                    staged.problems.append(str(exc))
                    found = False
                    break
                (dest / "exercises" / f"{topic}.py").write_bytes(data)
                staged.found[topic] = str(root / relative)
                found = True
                break
            if found is not None:
                break
    return staged


def _read(submission, relative):
    """The module's bytes at `relative`, a notebook turned into its module."""
    if relative.suffix != ".ipynb":
        return learner_files.read_bytes(submission, relative, MAX_BYTES)
    notebook = learner_files.read_bytes(submission, relative, ipynb.MAX_NOTEBOOK_BYTES)
    source = ipynb.module_source(notebook, relative.as_posix()).encode("utf-8")
    if len(source) > MAX_BYTES:
        raise learner_files.Unusable(f"{relative.as_posix()}: its code is larger than {MAX_BYTES // 1000} kB")
    return source


def _single_folder(submission):
    """The name of the only entry of `submission` when it is a real folder (not a link)."""
    try:
        entries = [e for e in os.scandir(submission) if not e.name.startswith((".", "__MACOSX"))]
    except OSError:
        return None
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):
        return entries[0].name
    return None
