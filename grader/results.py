"""The one results model. Runners fill it; reporters only serialise it."""

import re
from dataclasses import asdict, dataclass, field

PASSED, FAILED, ERROR, TIMEOUT, NOT_STARTED = "passed", "failed", "error", "timeout", "not_started"
BLOCKED = "blocked"  # not run: an exercise it builds on (course.yml `depends`) does not pass yet
STATUSES = (PASSED, FAILED, ERROR, TIMEOUT, NOT_STARTED, BLOCKED)

# How a check names the known mistake a wrong answer matches (grader.checking writes it,
# the terminal report shortens a row to it).
SUSPECT_MARK = "Your result matches what you get if you "


@dataclass
class CheckResult:
    id: str
    exercise: str
    status: str
    score: float
    max_score: float
    hidden: bool = False
    message: str = ""
    output: str = ""  # what learner code printed during this check (truncated)
    mistake: str = ""  # id of the known mistake (tests/mutants/<topic>/mutants.yml) the answer matched


@dataclass
class ExerciseSummary:
    id: str
    status: str
    score: float
    max_score: float
    message: str


@dataclass
class TopicResult:
    id: str
    checks: list = field(default_factory=list)
    isolation: str = "in-process"
    seed: int = 0
    cgroup: str = ""  # "cgroup v1"/"cgroup v2", "no cgroup (why)", or "" where no worker ran
    # For the terminal and progress (the JSON keeps the fields above):
    import_error: str = ""  # set when the learner module does not import; every check then failed on it
    random_inputs: bool = False  # some check that ran drew inputs from `seed`
    not_run: dict = field(default_factory=dict)  # exercise id -> visible points, left out by `check TOPIC EXERCISE`
    reused: dict = field(default_factory=dict)  # exercise id -> when its remembered passing result was made

    @property
    def score(self):
        return sum(c.score for c in self.checks)

    @property
    def max_score(self):
        return sum(c.max_score for c in self.checks)

    def exercises(self, order=()):
        """One summary per exercise, in `order` first (the course's), then any others."""
        by_exercise: dict[str, list[CheckResult]] = {}
        for check in self.checks:
            by_exercise.setdefault(check.exercise, []).append(check)
        ids = [e for e in order if e in by_exercise] + [e for e in by_exercise if e not in order]
        return [_summarise(e, by_exercise[e]) for e in ids]

    def to_dict(self):
        return {
            "id": self.id,
            "score": self.score,
            "max_score": self.max_score,
            "isolation": self.isolation,
            **({"cgroup": self.cgroup} if self.cgroup else {}),
            "seed": self.seed,
            "checks": [asdict(c) for c in self.checks],
        }


def _summarise(exercise_id, checks):
    statuses = {c.status for c in checks}
    if statuses == {PASSED}:
        status, message = PASSED, ""
    elif statuses == {NOT_STARTED}:
        status, message = NOT_STARTED, checks[0].message
    else:
        problems = [c for c in checks if c.status not in (PASSED, NOT_STARTED)]
        # the best diagnosis first: a check that named the learner's mistake teaches more than one
        # that only says the numbers differ
        named = [c for c in problems if c.mistake or SUSPECT_MARK in c.message]
        first = (problems or [c for c in checks if c.status == NOT_STARTED])[0]
        status, message = first.status, (named or [first])[0].message
    return ExerciseSummary(exercise_id, status, sum(c.score for c in checks), sum(c.max_score for c in checks), message)


@dataclass
class Standing:
    """Where a learner stands in one topic: what every learner screen shows."""

    exercises: list  # ExerciseSummary per exercise, in the course's order
    score: float
    max_score: float

    @property
    def done(self):
        return sum(s.status == PASSED for s in self.exercises)

    @property
    def complete(self):
        return bool(self.max_score) and self.score >= self.max_score

    def status(self, exercise_id):
        return next((s.status for s in self.exercises if s.id == exercise_id), None)


def standing(topic_result, exercises):
    """The one rule every learner screen (check, watch, progress, list, the notebook) uses for
    an exercise's status and the topic's score.

    `exercises`: the topic's course exercises (objects with `id` and `depends`), in order.
    An exercise's status is its checks' (see TopicResult.exercises), except that one which
    builds (course.yml `depends`) on an exercise that does not pass is BLOCKED with 0 points,
    whatever older checks of its own said: a result that merges runs (watch, `check TOPIC
    EXERCISE`, progress) then agrees with a full run. The score is the sum of the exercises'
    points. A module that does not import blocks nothing (every check says so itself).
    (Grading credits each exercise on its own code and does not use this.)"""
    summaries = topic_result.exercises([e.id for e in exercises])
    return standing_of(summaries, exercises, blocks=not topic_result.import_error)


def standing_of(summaries, exercises, blocks=True):
    """`standing` for ExerciseSummary objects already made (progress keeps them as a mapping)."""
    by_id = {s.id: s for s in summaries}
    roots: dict[
        str, str | None
    ] = {}  # blocked exercise -> the exercise to fix first (a blocked one names its own blocker)
    for exercise in exercises if blocks else ():  # course order: what it builds on is settled first
        summary = by_id.get(exercise.id)
        if summary is None:
            continue
        if summary.status == BLOCKED:
            found = re.search(r"fix `([^`]+)`", summary.message)
            roots[exercise.id] = found.group(1) if found else None
            continue
        depends = getattr(exercise, "depends", ()) or ()
        blocker = next((d for d in depends if d in by_id and by_id[d].status != PASSED), None)
        if blocker is not None:
            root = roots.get(blocker) or blocker
            roots[exercise.id] = root
            by_id[exercise.id] = ExerciseSummary(
                exercise.id, BLOCKED, 0, summary.max_score, f"blocked: fix `{root}` first (this exercise builds on it)"
            )
    shown = list(by_id.values())
    return Standing(shown, sum(s.score for s in shown), sum(s.max_score for s in shown))


@dataclass
class Report:
    topics: list = field(default_factory=list)
    problem: str = ""  # why grading failed as a whole (every format names it); "" when it ran

    @property
    def score(self):
        return sum(t.score for t in self.topics)

    @property
    def max_score(self):
        return sum(t.max_score for t in self.topics)

    def to_dict(self):
        data = {"score": self.score, "max_score": self.max_score, "topics": [t.to_dict() for t in self.topics]}
        if self.problem:
            data["problem"] = self.problem
        return data
