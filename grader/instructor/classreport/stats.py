"""The numbers of the class report, counted one submission at a time, so that a class of
thousands is never held in memory at once.

Definitions (the report and the CSV files use the same):
- an exercise's status in a submission is the one `fmgrade grade` shows: passed when all its
  checks pass, not_started when the stub is untouched, else the first problem;
- attempted: the learner's code ran (passed, failed, error or timeout; not not_started or
  blocked);
- pass rate: passed / submissions graded on the exercise;
- a mistake's share: submissions whose checks named it / submissions that attempted the exercise;
- a check "never failed" when every attempt passed it, "always failed" when none did;
- an unexplained failure: a check that failed (or ended in an error) without naming a known
  mistake; they are grouped by check and message shape (the message's first line with numbers
  and quoted text blanked), so "sums to 1.73" and "sums to 0.41" are one group.
"""

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field

from grader.instructor.classreport.load import first_line
from grader.results import BLOCKED, ERROR, FAILED, NOT_STARTED, PASSED, TIMEOUT

ATTEMPTED = (PASSED, FAILED, ERROR, TIMEOUT)
PROBLEMS = (FAILED, ERROR, TIMEOUT)
NEVER_FAILED, ALWAYS_FAILED = "never failed", "always failed"


@dataclass
class TopicStats:
    id: str
    submissions: int = 0
    percents: list = field(default_factory=list)  # each submission's score, % of the topic's points
    isolation: Counter = field(default_factory=Counter)
    seeds: Counter = field(default_factory=Counter)

    @property
    def mean_percent(self):
        return statistics.fmean(self.percents) if self.percents else 0.0

    @property
    def median_percent(self):
        return statistics.median(self.percents) if self.percents else 0.0


@dataclass
class ExerciseStats:
    topic: str
    id: str
    submissions: int = 0
    statuses: Counter = field(default_factory=Counter)
    score_sum: float = 0.0
    max_score: float = 0.0  # the largest maximum seen (the same in every submission of one course version)
    timed_out: int = 0  # submissions in which some check of the exercise timed out
    errored: int = 0  # ... ended in an error
    with_mistake: int = 0  # ... named a known mistake
    mistakes: Counter = field(default_factory=Counter)  # mistake id -> submissions
    example_timeout: tuple = ()  # (student, first line of the message)
    example_error: tuple = ()

    @property
    def passed(self):
        return self.statuses[PASSED]

    @property
    def attempted(self):
        return sum(self.statuses[s] for s in ATTEMPTED)

    @property
    def pass_rate(self):
        return self.passed / self.submissions if self.submissions else 0.0

    @property
    def mean_score(self):
        return self.score_sum / self.submissions if self.submissions else 0.0


@dataclass
class CheckStats:
    topic: str
    id: str
    exercise: str
    hidden: bool = False
    statuses: Counter = field(default_factory=Counter)
    example_failure: tuple = ()  # (student, first line of the message) of the first problem seen

    @property
    def attempted(self):
        return sum(self.statuses[s] for s in ATTEMPTED)

    @property
    def submissions(self):
        return sum(self.statuses.values())

    @property
    def flag(self):
        attempted, passed = self.attempted, self.statuses[PASSED]
        if not attempted:
            return ""
        return NEVER_FAILED if passed == attempted else ALWAYS_FAILED if passed == 0 else ""


@dataclass(frozen=True)
class MistakeRow:
    topic: str
    exercise: str
    rank: int
    mistake: str
    submissions: int
    share: float  # of the submissions that attempted the exercise
    message: str  # what the course's mutants file says of it ("" when unknown)


@dataclass
class UnexplainedStats:
    """Failures of one check with one message shape that no known mistake explains."""

    topic: str
    exercise: str
    check: str
    shape: str
    submissions: int = 0
    example: tuple = ()  # (student, the first line of one such message)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
SHAPE_LENGTH = 160


def message_shape(message):
    """The first line of `message` with quoted text as '…' and numbers as #: the same mistake's
    messages differ in their numbers, not in their words."""
    line = first_line(message)
    shape = _NUMBER.sub("#", _QUOTED.sub("'…'", line))
    return " ".join(shape.split())[:SHAPE_LENGTH]


class ClassStats:
    """Add Submissions (grader.instructor.classreport.load), then read the rows in course order. Counts
    made from parts of a batch (in parallel) are joined with merge(), in the batch's order."""

    def __init__(self, has_checks=True):
        self.has_checks = has_checks  # False for a gradebook: exercise scores only
        self.submissions = 0
        self.students = Counter()
        self.topics = {}  # topic id -> TopicStats
        self.exercises = {}  # (topic id, exercise id) -> ExerciseStats
        self.checks = {}  # topic id -> {check id -> CheckStats}
        self.unexplained = {}  # (topic id, check id, message shape) -> UnexplainedStats

    def add(self, submission):
        self.submissions += 1
        self.students[submission.student] += 1
        for topic in submission.topics:
            stats = self.topics.get(topic.id)
            if stats is None:
                stats = self.topics[topic.id] = TopicStats(topic.id)
            stats.submissions += 1
            if topic.max_score > 0:
                stats.percents.append(100.0 * topic.score / topic.max_score)
            if topic.isolation:
                stats.isolation[topic.isolation] += 1
            if topic.seed is not None:
                stats.seeds[topic.seed] += 1
            self._add_exercises(topic)
            if topic.checks:
                self._add_checks(topic, submission.student)

    def _add_exercises(self, topic):
        for outcome in topic.exercises:
            key = (topic.id, outcome.id)
            stats = self.exercises.get(key)
            if stats is None:
                stats = self.exercises[key] = ExerciseStats(*key)
            stats.submissions += 1
            stats.statuses[outcome.status] += 1
            stats.score_sum += outcome.score
            stats.max_score = max(stats.max_score, outcome.max_score)
            stats.timed_out += outcome.timed_out
            stats.errored += outcome.errored
            if outcome.mistakes:
                stats.with_mistake += 1
                stats.mistakes.update(outcome.mistakes)

    def _add_checks(self, topic, student):
        """The hot loop: every check of every submission passes here once."""
        checks = self.checks.get(topic.id)
        if checks is None:
            checks = self.checks[topic.id] = {}
        for check in topic.checks:
            stats = checks.get(check["id"])
            if stats is None:
                stats = checks[check["id"]] = CheckStats(
                    topic.id, check["id"], check["exercise"], check.get("hidden", False)
                )
            status = check["status"]
            stats.statuses[status] += 1
            if status in PROBLEMS:
                if not stats.example_failure:
                    stats.example_failure = (student, first_line(check.get("message", "")))
                if status != TIMEOUT and not check.get("mistake"):
                    self._add_unexplained(topic.id, check, student)
                if status == TIMEOUT or status == ERROR:
                    exercise = self.exercises[(topic.id, check["exercise"])]
                    if status == TIMEOUT and not exercise.example_timeout:
                        exercise.example_timeout = (student, first_line(check.get("message", "")))
                    elif status == ERROR and not exercise.example_error:
                        exercise.example_error = (student, first_line(check.get("message", "")))

    def _add_unexplained(self, topic_id, check, student):
        message = check.get("message", "")
        key = (topic_id, check["id"], message_shape(message))
        group = self.unexplained.get(key)
        if group is None:
            group = self.unexplained[key] = UnexplainedStats(topic_id, check["exercise"], check["id"], key[2])
            group.example = (student, first_line(message))
        group.submissions += 1

    def merge(self, later):
        """Add the counts of `later`, made from the submissions that come after these."""
        self.submissions += later.submissions
        self.students.update(later.students)
        for key, theirs in later.topics.items():
            mine = self.topics.setdefault(key, TopicStats(key))
            mine.submissions += theirs.submissions
            mine.percents += theirs.percents
            mine.isolation.update(theirs.isolation)
            mine.seeds.update(theirs.seeds)
        for key, theirs in later.exercises.items():
            mine = self.exercises.setdefault(key, ExerciseStats(*key))
            mine.submissions += theirs.submissions
            mine.statuses.update(theirs.statuses)
            mine.score_sum += theirs.score_sum
            mine.max_score = max(mine.max_score, theirs.max_score)
            mine.timed_out += theirs.timed_out
            mine.errored += theirs.errored
            mine.with_mistake += theirs.with_mistake
            mine.mistakes.update(theirs.mistakes)
            mine.example_timeout = mine.example_timeout or theirs.example_timeout
            mine.example_error = mine.example_error or theirs.example_error
        for topic, checks in later.checks.items():
            mine_by_id = self.checks.setdefault(topic, {})
            for key, theirs in checks.items():
                mine = mine_by_id.setdefault(key, CheckStats(theirs.topic, theirs.id, theirs.exercise, theirs.hidden))
                mine.statuses.update(theirs.statuses)
                mine.example_failure = mine.example_failure or theirs.example_failure
        for key, theirs in later.unexplained.items():
            mine = self.unexplained.setdefault(
                key, UnexplainedStats(theirs.topic, theirs.exercise, theirs.check, theirs.shape, 0, theirs.example)
            )
            mine.submissions += theirs.submissions
        return self

    # --- Reading, in course order (course.yml's order; anything else after it, as first seen) ---

    def topic_rows(self, course=None):
        rank = _ranks([t.id for t in course.topics] if course else [], self.topics)
        return sorted(self.topics.values(), key=lambda t: rank[t.id])

    def exercise_rows(self, course=None):
        topic_rank = _ranks([t.id for t in course.topics] if course else [], self.topics)
        known = [(t.id, e.id) for t in course.topics for e in t.exercises] if course else []
        rank = _ranks(known, self.exercises)
        return sorted(self.exercises.values(), key=lambda e: (topic_rank[e.topic], rank[(e.topic, e.id)]))

    def check_rows(self, course=None):
        order = {(e.topic, e.id): i for i, e in enumerate(self.exercise_rows(course))}
        checks = [c for by_id in self.checks.values() for c in by_id.values()]  # as first seen
        return [c for _, c in sorted(enumerate(checks), key=lambda ic: (order[(ic[1].topic, ic[1].exercise)], ic[0]))]

    def mistake_rows(self, course=None, messages=None):
        """Per exercise in course order, its named mistakes, most submissions first."""
        messages = messages or {}
        rows = []
        for exercise in self.exercise_rows(course):
            ranked = sorted(exercise.mistakes.items(), key=lambda item: (-item[1], item[0]))
            for rank, (mistake, count) in enumerate(ranked, start=1):
                share = count / exercise.attempted if exercise.attempted else 0.0
                rows.append(
                    MistakeRow(
                        exercise.topic,
                        exercise.id,
                        rank,
                        mistake,
                        count,
                        share,
                        messages.get((exercise.topic, mistake), ""),
                    )
                )
        return rows

    def unexplained_rows(self, course=None):
        """Groups of failures no known mistake explains, most submissions first (then course order)."""
        order = {(e.topic, e.id): i for i, e in enumerate(self.exercise_rows(course))}
        return sorted(
            self.unexplained.values(),
            key=lambda u: (-u.submissions, order.get((u.topic, u.exercise), len(order)), u.check, u.shape),
        )

    def flagged_checks(self, course=None):
        """(never failed, always failed): the checks worth a look."""
        rows = self.check_rows(course)
        return [c for c in rows if c.flag == NEVER_FAILED], [c for c in rows if c.flag == ALWAYS_FAILED]

    def duplicate_students(self):
        return sorted(s for s, n in self.students.items() if n > 1)


def _ranks(known, seen):
    """{key: position}: `known` first in its order, then the other keys of `seen` as first seen."""
    rank = {key: i for i, key in enumerate(known)}
    for key in seen:
        rank.setdefault(key, len(rank))
    return rank


def status_columns():
    return (PASSED, FAILED, ERROR, TIMEOUT, NOT_STARTED, BLOCKED)
