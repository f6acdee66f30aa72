"""The course outline (`course.yml`): loading, validation and the paths of each topic.

Every problem is one line naming the file, the line and the field, e.g.
`course.yml:42: sections[1].topics[0].prerequisites: unknown topic 'scalling'`.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader import catalog as checks_index
from grader import yaml_lines

COURSE_FILE = "course.yml"
FORMAT_VERSION = 1


class CourseError(Exception):
    """The course (or where to find it) is broken; the message is one line for a person."""


@dataclass(frozen=True)
class Limits:
    call_timeout: float = 10.0  # seconds for one forwarded call into learner code
    topic_timeout: float = 120.0  # seconds for all checks of one topic
    memory_mb: int = 2048  # address space of the worker
    cpu_seconds: int = 120
    source_kb: float = 1024  # largest learner source file read (grader.submission)


@dataclass(frozen=True)
class Material:
    title: str
    url: str


@dataclass(frozen=True)
class Exercise:
    id: str
    goal: str
    hints: tuple = ()
    depends: tuple = ()  # earlier exercises of the topic this one builds on


@dataclass(frozen=True)
class Topic:
    id: str
    title: str
    section: str
    summary: str = ""
    material: tuple = ()
    prerequisites: tuple = ()
    optional: bool = False
    exercises: tuple = ()
    limits: Limits = field(default_factory=Limits)

    def exercise(self, exercise_id):
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(e.id for e in self.exercises)
        raise CourseError(f"topic '{self.id}' has no exercise '{exercise_id}' (it has: {known})")


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    topics: tuple


@dataclass(frozen=True)
class Course:
    root: Path
    title: str
    sections: tuple
    topics: tuple
    version: str = ""  # course.yml's optional `version`; see version_of()

    def topic(self, topic_id):
        for topic in self.topics:
            if topic.id == topic_id:
                return topic
        known = ", ".join(t.id for t in self.topics)
        raise CourseError(f"no topic '{topic_id}' in {self.root / COURSE_FILE} (topics: {known})")

    def exercise_path(self, topic_id):
        return self.root / "exercises" / f"{topic_id}.py"

    def solution_path(self, topic_id):
        return self.root / "solutions" / f"{topic_id}.py"

    def checks_dir(self, topic_id):
        return self.root / "tests" / "checks" / topic_id

    def mutants_dir(self, topic_id):
        return self.root / "tests" / "mutants" / topic_id

    def available(self, topic_id):
        """A topic is available once its stub and its checks exist (a link or a FIFO in the stub's
        place counts: reading it then says what is wrong with it)."""
        return os.path.lexists(self.exercise_path(topic_id)) and self.checks_dir(topic_id).is_dir()


def find_root(start=None):
    """The nearest folder at or above `start` (default: cwd) holding course.yml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / COURSE_FILE).is_file():
            return folder
    raise CourseError(f"no {COURSE_FILE} in {here} or any folder above it: run fmgrade inside the course")


def load(root=None):
    root = Path(root) if root else find_root()
    path = root / COURSE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CourseError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CourseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse(text, root, str(path))


# --- Validation ------------------------------------------------------------------------

_SCHEMA = {
    "course": ({"format_version", "title", "sections"}, {"limits", "version"}),
    "section": ({"id", "title", "topics"}, set()),
    "topic": ({"id", "title", "exercises"}, {"summary", "material", "prerequisites", "optional", "limits"}),
    "exercise": ({"id", "goal"}, {"hints", "depends"}),
    "material": ({"title", "url"}, set()),
    "limits": (set(), {"call_timeout", "topic_timeout", "memory_mb", "cpu_seconds", "source_kb"}),
}


class _Reader:
    """Walks the parsed YAML, raising CourseError with file:line: field on the first problem."""

    def __init__(self, filename, lines):
        self.filename, self.lines = filename, lines

    def error(self, path, message):
        line = None
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line:
                break
        where = f"{self.filename}:{line}" if line else self.filename
        field_name = _dotted(path)
        raise CourseError(f"{where}: {field_name + ': ' if field_name else ''}{message}")

    def mapping(self, value, path, kind):
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping ({kind}), got {_kind(value)}")
        required, optional = _SCHEMA[kind]
        for key in value:
            if key not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                self.error(path + (key,), f"unknown key in {kind} (allowed: {allowed})")
        for key in sorted(required):
            if key not in value:
                self.error(path, f"missing field '{key}' in {kind}")
        return value

    def text(self, value, path):
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"expected non-empty text, got {_kind(value)}")
        return value.strip()

    def ident(self, value, path):
        value = self.text(value, path)
        if not value.isidentifier():
            self.error(path, f"'{value}' is not a valid id (letters, digits and _, not starting with a digit)")
        return value

    def sequence(self, value, path, allow_empty=False):
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {_kind(value)}")
        if not value and not allow_empty:
            self.error(path, "must not be empty")
        return value

    def number(self, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.error(path, f"expected a positive number, got {value!r}")
        return value


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _dotted(path):
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse(text, root, filename=COURSE_FILE):
    try:
        data, lines = yaml_lines.load(text)
    except yaml_lines.YamlError as exc:
        where = f"{filename}:{exc.line}" if exc.line else filename
        field_name = _dotted(exc.path)
        raise CourseError(f"{where}: {field_name + ': ' if field_name else ''}{exc}") from None
    r = _Reader(filename, lines)
    r.mapping(data, (), "course")
    version = data["format_version"]
    if version != FORMAT_VERSION:
        r.error(("format_version",), f"this fmgrade reads format_version {FORMAT_VERSION}, not {version!r}")
    defaults = _limits(r, data.get("limits"), ("limits",), Limits())
    sections: list[Section] = []
    topics: list[Topic] = []
    seen: dict[str, tuple] = {}
    for si, raw_section in enumerate(r.sequence(data["sections"], ("sections",))):
        spath = ("sections", si)
        r.mapping(raw_section, spath, "section")
        section_topics = []
        for ti, raw_topic in enumerate(r.sequence(raw_section["topics"], spath + ("topics",))):
            tpath = spath + ("topics", ti)
            topic = _topic(r, raw_topic, tpath, r.ident(raw_section["id"], spath + ("id",)), defaults)
            if topic.id in seen:
                r.error(tpath + ("id",), f"duplicate topic id '{topic.id}' (first at {_dotted(seen[topic.id])})")
            seen[topic.id] = tpath
            section_topics.append(topic)
        sections.append(
            Section(raw_section["id"], r.text(raw_section["title"], spath + ("title",)), tuple(section_topics))
        )
        topics.extend(section_topics)
    course = Course(
        Path(root), r.text(data["title"], ("title",)), tuple(sections), tuple(topics), _version(r, data.get("version"))
    )
    _check_prerequisites(r, course, seen)
    _check_exercises_have_checks(r, course, seen)
    return course


def _version(r, raw):
    if raw is None:
        return ""
    if isinstance(raw, int) and not isinstance(raw, bool):  # `version: 3` is natural to write
        return str(raw)
    return r.text(raw, ("version",))


def version_of(course):
    """The course's identity in results files: course.yml's `version` when it has one, else a
    hash of the outline's topic and exercise ids, so editing a title, a hint or a limit keeps
    it and adding, removing or renaming an exercise changes it."""
    if course.version:
        return course.version
    outline = [[t.id, [e.id for e in t.exercises]] for t in course.topics]
    return "outline-" + hashlib.sha256(json.dumps(outline).encode()).hexdigest()[:12]


def _limits(r, raw, path, base):
    if raw is None:
        return base
    r.mapping(raw, path, "limits")
    values = {key: r.number(value, path + (key,)) for key, value in raw.items()}
    return Limits(**{**base.__dict__, **values})


def _topic(r, raw, path, section_id, defaults):
    r.mapping(raw, path, "topic")
    exercises, ids = [], set()
    for ei, raw_ex in enumerate(r.sequence(raw["exercises"], path + ("exercises",))):
        epath = path + ("exercises", ei)
        r.mapping(raw_ex, epath, "exercise")
        ex_id = r.ident(raw_ex["id"], epath + ("id",))
        if ex_id in ids:
            r.error(epath + ("id",), f"duplicate exercise id '{ex_id}'")
        ids.add(ex_id)
        hints = r.sequence(raw_ex.get("hints", []), epath + ("hints",), allow_empty=True)
        hints = tuple(r.text(h, epath + ("hints", hi)) for hi, h in enumerate(hints))
        depends = r.sequence(raw_ex.get("depends", []), epath + ("depends",), allow_empty=True)
        depends = tuple(r.ident(d, epath + ("depends", di)) for di, d in enumerate(depends))
        for di, dep in enumerate(depends):
            if dep not in ids - {ex_id}:
                r.error(
                    epath + ("depends", di),
                    f"'{dep}' is not an earlier exercise of this topic "
                    "(an exercise may depend only on exercises listed before it)",
                )
        exercises.append(Exercise(ex_id, r.text(raw_ex["goal"], epath + ("goal",)), hints, depends))
    material = []
    for mi, raw_m in enumerate(r.sequence(raw.get("material", []), path + ("material",), allow_empty=True)):
        mpath = path + ("material", mi)
        r.mapping(raw_m, mpath, "material")
        material.append(Material(r.text(raw_m["title"], mpath + ("title",)), r.text(raw_m["url"], mpath + ("url",))))
    prerequisites = r.sequence(raw.get("prerequisites", []), path + ("prerequisites",), allow_empty=True)
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        r.error(path + ("optional",), f"expected true or false, got {optional!r}")
    return Topic(
        id=r.ident(raw["id"], path + ("id",)),
        title=r.text(raw["title"], path + ("title",)),
        section=section_id,
        summary=r.text(raw["summary"], path + ("summary",)) if "summary" in raw else "",
        material=tuple(material),
        prerequisites=tuple(r.ident(p, path + ("prerequisites", i)) for i, p in enumerate(prerequisites)),
        optional=optional,
        exercises=tuple(exercises),
        limits=_limits(r, raw.get("limits"), path + ("limits",), defaults),
    )


def _check_prerequisites(r, course, seen):
    ids = {t.id for t in course.topics}
    for topic in course.topics:
        for i, prereq in enumerate(topic.prerequisites):
            if prereq not in ids:
                r.error(seen[topic.id] + ("prerequisites", i), f"unknown topic '{prereq}'")
    state: dict[str, str] = {}  # topic id -> "visiting" | "done"

    def visit(topic_id, trail):
        if state.get(topic_id) == "done":
            return
        if state.get(topic_id) == "visiting":
            cycle = " -> ".join(trail[trail.index(topic_id) :] + [topic_id])
            r.error(seen[topic_id] + ("prerequisites",), f"prerequisites form a cycle: {cycle}")
        state[topic_id] = "visiting"
        for prereq in course.topic(topic_id).prerequisites:
            visit(prereq, trail + [topic_id])
        state[topic_id] = "done"

    for topic in course.topics:
        visit(topic.id, [])


def _check_exercises_have_checks(r, course, seen):
    for topic in course.topics:
        if not course.available(topic.id):
            continue
        index = checks_index.scan(course.checks_dir(topic.id))
        for ei, exercise in enumerate(topic.exercises):
            if not index.get(exercise.id):
                r.error(
                    seen[topic.id] + ("exercises", ei),
                    f"exercise '{exercise.id}' has no checks in {course.checks_dir(topic.id).relative_to(course.root)}/",
                )
