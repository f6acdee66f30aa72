"""`fmgrade grade`: visible and hidden checks on submissions, one Report per submission.

Only `exercises/<topic>.py` is taken from a submission; its own tests, grader, conftest or
course.yml are never read. A missing, empty or unreadable file gives that topic's checks one
clear error and zero points; it never stops the batch.
"""
import concurrent.futures
import csv
import io
import multiprocessing
import random
from dataclasses import dataclass
from pathlib import Path

from grader import runner
from grader.course import CourseError
from grader.results import Report


@dataclass
class Graded:
    student: str
    submission: str
    report: Report
    problem: str = ""  # a note about the submission as a whole (e.g. folder missing)


def student_id(submission):
    return Path(submission).resolve().name


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


def grade_submission(course, submission, topics, seed, isolation="auto"):
    """Grade one submission folder on `topics` with the kit's checks (hidden included)."""
    submission = Path(submission)
    problem = ""
    if not submission.is_dir():
        problem = f"submission {submission} is not a folder"
    elif not (submission / "exercises").is_dir():
        problem = f"submission {submission} has no exercises/ folder"
    report = Report()
    failures = []
    for topic in topics:
        learner_file = submission / "exercises" / f"{topic}.py"
        try:
            report.topics.append(runner.run_topic(course, topic, learner_file, hidden=True, seed=seed, isolation=isolation))
        except Exception as exc:  # the grader's own failure: every format names it, the other topics still run
            failures.append(f"grading {topic} failed: {type(exc).__name__}: {exc}")
    report.problem = "; ".join(failures)
    return Graded(student_id(submission), str(submission), report, problem)


def new_seed():
    return random.SystemRandom().randrange(2**31)


def grade_many(course, submissions, topics, seed, jobs=1, isolation="auto", on_done=None):
    """Grade every submission; `on_done(graded)` is called as each finishes. Results keep the
    order of `submissions`. With jobs > 1, submissions are graded in parallel processes."""
    if jobs <= 1 or len(submissions) <= 1:
        results = []
        for submission in submissions:
            results.append(grade_submission(course, submission, topics, seed, isolation))
            if on_done:
                on_done(results[-1])
        return results
    # forkserver: the children start clean (no torch threads inherited) and import torch once each.
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(grade_submission, course, s, topics, seed, isolation): i for i, s in enumerate(submissions)}
        results = [None] * len(submissions)
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
            if on_done:
                on_done(results[futures[future]])
    return results


def summary_rows(results):
    topics = sorted({t.id for g in results for t in g.report.topics})
    header = ["student", *topics, "total", "max_total"]
    rows = []
    for graded in results:
        scores = {t.id: t.score for t in graded.report.topics}
        rows.append([graded.student, *(f"{scores.get(t, 0):g}" for t in topics),
                     f"{graded.report.score:g}", f"{graded.report.max_score:g}"])
    return header, rows


def summary_csv(results):
    header, rows = summary_rows(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def summary_table(results):
    header, rows = summary_rows(results)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in [header, *rows])

