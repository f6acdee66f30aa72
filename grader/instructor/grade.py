"""`fmgrade grade`: visible and hidden checks on submissions, one Report per submission.

Only `exercises/<topic>.py` is taken from a submission, read without following links (see
grader.submission); its own tests, grader, conftest or course.yml are never read. A missing,
linked, oversized or unreadable file gives that topic's checks one clear error and zero
points; a submission that overruns its time budget gets a timeout for the checks cut short.
A failure of the grader itself (a topic whose checks cannot run, a grading process that dies)
is named in the result's `problem` and the rest is graded: nothing stops the batch.
"""

import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from grader.course import CourseError
from grader.instructor import batch
from grader.instructor import budget as budget_mod
from grader.instructor import kit as kit_mod
from grader.judge import runner
from grader.results import Report
from grader.safe_text import safe_id, safe_text, safe_tree
from grader.spreadsheet import csv_text

HARD_LIMIT_GRACE = 60  # seconds beyond its budget before a submission's grading process is stopped


@dataclass
class Graded:
    student: str
    submission: str
    report: Report
    problem: str = ""  # a note about the submission as a whole (e.g. folder missing)
    seed: int = None  # the hidden checks' seed it was graded with
    kit_hash: str = ""  # grader.instructor.kit.kit_hash of the kit that graded it


def student_id(submission):
    """The folder's name, as safe text (grader.safe_text.safe_id): a name is chosen by whoever
    submits, and may hold escape sequences, invalid UTF-8 (lone surrogates here) or 255 bytes."""
    return safe_id(Path(submission).resolve().name)


def safe_graded(graded):
    """`graded` with every string safe text: what reaches a report, a terminal, XML, HTML, CSV
    or the gradebook (learner text is made safe in the sandbox already; this covers text the
    grader built from it, and the submission's path)."""
    from grader import formats

    graded.submission = safe_text(graded.submission, 2000)
    graded.problem = safe_text(graded.problem)
    graded.report = formats.safe_report(graded.report)
    return graded


def duplicate_ids(submissions):
    """One line per student id that several submissions would share (compared without case:
    alice.json and Alice.json are one file on macOS and Windows)."""
    by_id = defaultdict(list)
    for submission in submissions:
        by_id[student_id(submission).casefold()].append(safe_text(str(submission), 1000))
    return [
        f"student id '{student_id(paths[0])}' is shared by {' and '.join(paths)}"
        for paths in by_id.values()
        if len(paths) > 1
    ]


def select_topics(course, topics=None):
    available = [t.id for t in course.topics if course.available(t.id)]
    if not topics:
        return available
    unknown = [t for t in topics if t not in {x.id for x in course.topics}]
    if unknown:
        raise CourseError(f"--topics: unknown topic(s) {', '.join(unknown)} (topics: {', '.join(available)})")
    missing = [t for t in topics if t not in available]
    if missing:
        raise CourseError(f"--topics: not available yet in this course: {', '.join(missing)}")
    return list(topics)


def grade_submission(course, submission, topics, seed, isolation="auto", seconds=None):
    """Grade one submission folder on `topics` with the kit's checks (hidden included), within
    `seconds` of wall-clock time in all when given (checks cut short get a timeout)."""
    folder = Path(submission)
    submission, problem = exercises_root(folder)
    problem = problem or _folder_problem(submission)
    # here, not at the top: it imports torch, which the worker imports side by side with the checks
    from grader.instructor import live

    clock = budget_mod.Budget(seconds) if seconds else None
    report = Report()
    failures = []
    for topic in topics:
        learner_file = submission / "exercises" / f"{topic}.py"
        try:
            report.topics.append(
                runner.run_topic(
                    course,
                    topic,
                    learner_file,
                    hidden=True,
                    seed=seed,
                    isolation=isolation,
                    plugins=(live.GradeInputs(),),  # visible checks on inputs drawn from the seed
                    root=submission,
                    budget=clock,
                    unusable=missing_file_note(submission, topic),
                    stand_ins=True,  # each exercise on its own code: failing prerequisites answered by the reference
                )
            )
        except Exception as exc:  # the grader's own failure: every format names it, the other topics still run
            failures.append(f"grading {topic} failed: {type(exc).__name__}: {exc}")
    report.problem = "; ".join(failures)
    if clock is not None and any(c.message == clock.reason for t in report.topics for c in t.checks):
        problem = problem or clock.reason
    return safe_graded(Graded(student_id(folder), str(folder), report, problem, seed=seed))


def exercises_root(submission):
    """(the folder holding the submission's exercises/, a refusal or ""). A submission whose
    exercises/ is one folder down (alice/course-alice/exercises/, a cloned or unzipped
    repository) is graded there; two such folders are refused, naming both, never guessed."""
    submission = Path(submission)
    if os.path.lexists(submission / "exercises") or not submission.is_dir():
        return submission, ""
    try:
        entries = sorted(os.scandir(submission), key=lambda e: e.name)
    except OSError:
        return submission, ""
    nested = [
        Path(e.path)
        for e in entries
        if e.is_dir(follow_symlinks=False)
        and not e.name.startswith(".")
        and os.path.isdir(os.path.join(e.path, "exercises"))
        and not os.path.islink(os.path.join(e.path, "exercises"))
    ]
    if len(nested) == 1:
        return nested[0], ""
    if nested:
        return submission, (
            f"submission {submission} has no exercises/ folder of its own, and several one folder down: "
            + ", ".join(f"{p.name}/exercises/" for p in nested)
            + "; give the one to grade"
        )
    return submission, ""


def missing_file_note(root, topic):
    """When exercises/TOPIC.py is missing: a reason that names the files that are there (an
    upload named `attention (1).py` or `GPT3.py` is otherwise a bare "not found"); None when the
    file exists (or exercises/ itself is missing: the runner says so)."""
    exercises = Path(root) / "exercises"
    wanted = f"{topic}.py"
    if os.path.lexists(exercises / wanted) or os.path.islink(exercises) or not exercises.is_dir():
        return None
    try:
        names = sorted(e.name for e in os.scandir(exercises) if not e.name.startswith("."))
    except OSError:
        return None
    if not names:
        return f"exercises/{wanted} is missing (exercises/ is empty)"
    close = [n for n in names if n.casefold() == wanted.casefold() or n.startswith(f"{topic} (")]
    shown = ", ".join(repr(n[:60]) for n in names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    hint = f"; rename {close[0][:60]!r} to {wanted}" if close else ""
    return f"exercises/{wanted} is missing; exercises/ holds {shown}{hint}"


def _folder_problem(submission):
    if not submission.is_dir():
        return f"submission {submission} is not a folder"
    exercises = submission / "exercises"
    if exercises.is_symlink():
        return f"submission {submission}: exercises/ is a symbolic link, which is never followed"
    if not exercises.is_dir():
        return f"submission {submission} has no exercises/ folder"
    return ""


def grade_or_report(course, submission, topics, seed, isolation="auto", seconds=None):
    """grade_submission, except that a failure outside any topic gives this submission a
    result naming it instead of ending the batch."""
    try:
        return grade_submission(course, submission, topics, seed, isolation, seconds)
    except Exception as exc:  # noqa: BLE001 - one submission must never end the batch
        return ungraded(
            course,
            submission,
            topics,
            seed,
            f"not graded: the grader failed on this submission ({type(exc).__name__}: {safe_text(exc, 2000)})",
            isolation,
        )


def ungraded(course, submission, topics, seed, reason, isolation="auto"):
    """A result for a submission the grader failed on: every check of `topics` at 0 points with
    `reason` (so every format shows it, and max scores stay comparable) and the report's problem
    set; no learner code runs."""
    try:
        report = Report(
            [
                runner.run_topic(
                    course, topic, os.devnull, hidden=True, seed=seed, isolation=isolation, unusable=reason
                )
                for topic in topics
            ],
            problem=reason,
        )
    except Exception:  # noqa: BLE001 - even the checks cannot be listed: the reason alone
        report = Report(problem=reason)
    return safe_graded(Graded(student_id(submission), str(submission), report))


def unlisted(submission, reason):
    """The last resort, made without pytest: no checks, just the reason."""
    return safe_graded(Graded(student_id(submission), str(submission), Report(problem=reason)))


def new_seed():
    return random.SystemRandom().randrange(2**31)


@dataclass(frozen=True)
class Seeds:
    """Each submission's seed: `fixed` for all (--seed, to replay), else derived from the kit's
    secret and the student id (grader.instructor.kit.seed_for), the same on every run."""

    fixed: int = None
    secret: bytes = None

    def __call__(self, student):
        return self.fixed if self.fixed is not None else kit_mod.seed_for(self.secret, student)

    def describe(self):
        return f"seed {self.fixed}" if self.fixed is not None else "seeds from the kit's secret"


def seeds_for(course, override=None, create=True):
    """The Seeds of a batch graded with `course` as its kit. A kit without a secret gets one
    (0600) when `create`; otherwise (shards, Gradescope: graders that must agree without
    talking) that is a KitError naming the fix."""
    if override is not None:
        return Seeds(fixed=override)
    secret = kit_mod.read_secret(course.root)
    if secret is None and create:
        secret = kit_mod.make_secret(course.root)
    if secret is None:
        raise kit_mod.KitError(
            f"the kit {course.root} has no secret ({kit_mod.SECRET_FILE}), so graders working apart would draw "
            "different seeds: build the kit with `fmgrade release OUT --kit KIT` and keep its secret with it, "
            "or give --seed N"
        )
    return Seeds(secret=secret)


def _seed_of(seed):
    """A function student id -> seed, from an int (one seed for all) or a Seeds."""
    return seed if callable(seed) else (lambda student: seed)


def grade_many(course, submissions, topics, seed, jobs=1, isolation="auto", on_done=None, seconds=None):
    """Grade every submission; `seed` is one int for all or a Seeds (per student id);
    `on_done(graded)` is called as each finishes (write it then: an
    interrupt raises KeyboardInterrupt and returns nothing). Results keep the order of
    `submissions`. `seconds`: each submission's budget (default: from the topics' limits).
    With jobs > 1, submissions are graded in parallel processes."""
    seconds = seconds or budget_mod.default_seconds(course, topics)
    on_done = on_done or (lambda graded: None)
    seed_of = _seed_of(seed)
    seeds = [seed_of(student_id(s)) for s in submissions]  # here, so every process and shard agrees

    def stamped(i, graded):
        graded.seed = seeds[i]
        return graded

    if jobs <= 1 or len(submissions) <= 1:
        results = []
        for i, submission in enumerate(submissions):
            results.append(stamped(i, grade_or_report(course, submission, topics, seeds[i], isolation, seconds)))
            on_done(results[-1])
        return results
    return batch.run(
        len(submissions),
        task=lambda i: (grade_or_report, (course, submissions[i], topics, seeds[i], isolation, seconds)),
        fallback=lambda i, reason: (ungraded, (course, submissions[i], topics, seeds[i], reason, isolation)),
        last_resort=lambda i, reason: unlisted(submissions[i], reason),
        jobs=jobs,
        on_result=lambda i, graded: on_done(stamped(i, graded)),
        time_limit=seconds + HARD_LIMIT_GRACE,
    )


def summary_rows(results):
    """summary.csv: student, a column per topic, total, max_total, then which kit graded the
    row and why grading failed, if it did (`shards merge` mixes no kits and takes no failed rows)."""
    topics = sorted({t.id for g in results for t in g.report.topics})
    header = ["student", *topics, "total", "max_total", "kit_hash", "problem"]
    rows = []
    for graded in results:
        scores = {t.id: t.score for t in graded.report.topics}
        rows.append(
            [
                graded.student,  # made inert by grader.spreadsheet, as every cell
                *(f"{scores.get(t, 0):g}" for t in topics),
                f"{graded.report.score:g}",
                f"{graded.report.max_score:g}",
                graded.kit_hash,
                " ".join(graded.report.problem.split()),
            ]
        )
    return header, rows


def summary_csv(results):
    return csv_text(*summary_rows(results))


def summary_table(results):
    header, rows = summary_rows(results)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in [header, *rows])


# --- results already written: --resume and `gradebook import` --------------------------------


class StoredResultError(ValueError):
    """A results file that is not grade's JSON; one line for a person."""


def load_result(path):
    """The Graded that `grade --format json` wrote to `path` (student, report, seed, kit hash)."""
    import json

    from grader import formats
    from grader.results import CheckResult, TopicResult

    path = Path(path)
    try:
        data = safe_tree(json.loads(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise StoredResultError(f"{path}: cannot read it as JSON ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict) or data.get("format") != formats.RESULTS_FORMAT:
        raise StoredResultError(f"{path}: not results of `fmgrade grade --format json`")
    try:
        topics = [
            TopicResult(
                id=t["id"],
                checks=[CheckResult(**c) for c in t["checks"]],
                isolation=t.get("isolation", ""),
                seed=t.get("seed", 0),
                cgroup=t.get("cgroup", ""),
            )
            for t in data.get("topics", [])
        ]
    except (KeyError, TypeError) as exc:
        raise StoredResultError(f"{path}: a topic or check is malformed ({exc})") from None
    student = data.get("student") or path.stem
    report = Report(topics, problem=data.get("problem", ""))
    return Graded(student, str(path), report, seed=data.get("seed"), kit_hash=data.get("kit_hash", ""))


def finished_before(output, submissions, seed, kit_hash):
    """{student id: Graded} of the submissions whose JSON results in the folder `output` were
    graded with this kit (`kit_hash`) and their own seed, and finished (the grader did not fail
    on them): what `grade --resume` does not grade again."""
    seed_of = _seed_of(seed)
    found = {}
    for submission in submissions:
        student = student_id(submission)
        path = Path(output) / f"{student}.json"
        if not path.is_file():
            continue
        try:
            graded = load_result(path)
        except StoredResultError:
            continue  # a torn or foreign file: graded again
        if graded.kit_hash == kit_hash and graded.seed == seed_of(student) and not graded.report.problem:
            graded.student, graded.submission = student, str(submission)
            found[student] = graded
    return found


def load_results(paths):
    """Every Graded in `paths` (JSON files, or folders of them: summary.csv and other non-JSON
    files are left out), one per student; StoredResultError when a file is not grade's JSON, two
    files are one student's, or the results come from different kits (never mixed)."""
    files, loaded, origin = [], [], {}
    for path in map(Path, paths):
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    for path in files:
        graded = load_result(path)
        if graded.student in origin:
            raise StoredResultError(f"{path}: student '{graded.student}' is also in {origin[graded.student]}")
        origin[graded.student] = path
        loaded.append(graded)
    kits = {g.kit_hash or "unknown" for g in loaded}
    if len(kits) > 1:
        by_kit = {
            k: next(str(origin[g.student]) for g in loaded if (g.kit_hash or "unknown") == k) for k in sorted(kits)
        }
        raise StoredResultError(
            "results of different kits are never mixed: "
            + "; ".join(f"kit {k} (e.g. {example})" for k, example in by_kit.items())
        )
    return loaded
