"""`fmgrade report`: read a batch of results (or a gradebook), count, and write the report.

Results come from one course version: the version of the course the report is made in when
there is one, else the version most of the files carry. A file from another version, or one
that is not fmgrade's results, is skipped and named, in the terminal and on the page.
"""

import concurrent.futures
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader import files
from grader.course import version_of
from grader.instructor.classreport import load, mistakes, page, plots, tables
from grader.instructor.classreport.load import ReportInputError, Skipped
from grader.instructor.classreport.stats import ClassStats

OUTPUTS = ("report.html", "exercises.csv", "checks.csv", "mistakes.csv", "unexplained.csv")
PARALLEL_FROM, MAX_JOBS = 400, 8  # files from which reading is spread over processes; at most this many
SHOWN_IN_TERMINAL = 5  # skipped files, mistakes, exercises named in the terminal summary


@dataclass
class ReportContext:
    stats: ClassStats
    course: object  # grader.course.Course, or None when the report is made outside a course
    version: str
    messages: dict = field(default_factory=dict)  # (topic, mistake id) -> text
    skipped: list = field(default_factory=list)  # [Skipped]
    problems: list = field(default_factory=list)  # notes for the page and the terminal
    from_gradebook: bool = False


def collect_results(paths, course=None, jobs=None):
    """(ClassStats, version, skipped) from the results files and folders in `paths`. Files are
    read in `jobs` processes (default: one per CPU for a large batch), in contiguous chunks
    whose counts are merged in order, so the result is the same as reading them one by one.
    One student, one row: when a student has several results files, only the latest (last
    modified) counts and the others are skipped, named (the batch is then counted again)."""
    found, skipped = load.find_results(paths)
    stats, version, more, earlier = _collect(found, course, jobs)
    if earlier:
        dropped = {source for source, _ in earlier}
        stats, version, more, _ = _collect([p for p in found if str(p) not in dropped], course, jobs)
        more += [Skipped(source, reason) for source, reason in earlier]
    return stats, version, skipped + more


def _latest_only(sources):
    """[(source, reason)] for every results file of a student that a later file replaces."""
    by_student = {}
    for source, student in sources:
        by_student.setdefault(student, []).append(source)
    replaced = []
    for student, sources_of_student in by_student.items():
        if len(sources_of_student) > 1:
            ordered = sorted(sources_of_student, key=lambda f: (_mtime(f), f))
            latest = ordered[-1]
            replaced += [
                (f, f"an earlier result of student {student}; the latest, {latest}, counts") for f in ordered[:-1]
            ]
    return replaced


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _collect(found, course, jobs):
    """(ClassStats, version, skipped, [(source, reason)] of results a later one replaces)."""
    skipped = []
    if jobs is None:
        jobs = min(os.cpu_count() or 1, MAX_JOBS) if len(found) >= PARALLEL_FROM else 1
    if jobs > 1:
        size = -(-len(found) // (jobs * 4))  # a few chunks per process: even out a busy machine
        chunks = [found[i : i + size] for i in range(0, len(found), size)]
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = list(pool.map(_count_files, chunks))
    else:
        parts = [_count_files(found)]
    by_version = {}  # course version -> (ClassStats, [(source, student), ...])
    kits = {}  # course version -> {kit hash: a source graded with it}
    for part, part_skipped, part_kits in parts:
        skipped.extend(part_skipped)
        for version, seen in part_kits.items():
            for kit, source in seen.items():
                kits.setdefault(version, {}).setdefault(kit, source)
        for version, (stats, sources) in part.items():
            if version in by_version:
                by_version[version][0].merge(stats)
                by_version[version][1].extend(sources)
            else:
                by_version[version] = (stats, sources)
    expected = version_of(course) if course is not None else None
    if not by_version:
        return ClassStats(), expected or "", skipped, []
    if expected is None:
        version = max(by_version, key=lambda v: by_version[v][0].submissions)  # ties: the first seen
    elif expected in by_version:
        version = expected
    else:
        seen = ", ".join(f"{v} ({by_version[v][0].submissions})" for v in by_version)
        raise ReportInputError(
            f"none of the results is from course version {expected} (the course in {course.root}); "
            f"they are from: {seen}. Pass --course with the course or kit they were graded with."
        )
    for other, (_stats, sources) in by_version.items():
        if other != version:
            skipped.extend(Skipped(source, f"from course version {other}, not {version}") for source, _ in sources)
    _one_kit(kits.get(version, {}))
    return by_version[version][0], version, skipped, _latest_only(by_version[version][1])


def _one_kit(kits):
    """Refuse results graded with different kits: last term's kit may carry the same course
    version (it hashes only ids), and its grades are not this kit's."""
    if len(kits) > 1:
        raise ReportInputError(
            "results of different kits are never mixed: "
            + "; ".join(f"kit {kit} (e.g. {source})" for kit, source in sorted(kits.items()))
            + ". Report on each kit's results apart."
        )


def _count_files(paths):
    """({course version: (ClassStats, [(source, student), ...])}, [Skipped], {course version:
    {kit hash: first source}}) for some results files."""
    by_version, skipped, kits = {}, [], {}
    for path in paths:
        try:
            submission = load.read_submission(path)
        except load.NotResults as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        stats, sources = by_version.setdefault(submission.course_version, (ClassStats(), []))
        stats.add(submission)
        sources.append((submission.source, submission.student))
        if submission.kit_hash:
            kits.setdefault(submission.course_version, {}).setdefault(submission.kit_hash, submission.source)
    return by_version, skipped, kits


def collect_gradebook(url):
    from grader.instructor.classreport import from_gradebook

    stats = ClassStats(has_checks=False)
    for submission in from_gradebook.read(url):
        stats.add(submission)
    return stats


def make_report(results, output, course=None, gradebook=None):
    """Write OUTPUTS into the folder `output` and return the ReportContext. Raises
    ReportInputError (nothing usable, or bad paths), GradebookError or PlotsUnavailable."""
    plots.require()  # before reading thousands of files
    if gradebook:
        context = ReportContext(collect_gradebook(gradebook), course, "", from_gradebook=True)
    else:
        stats, version, skipped = collect_results(results, course)
        context = ReportContext(stats, course, version, skipped=skipped)
        context.messages, context.problems = mistakes.messages(course)
    if not context.stats.submissions:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in context.skipped[:3])
        raise ReportInputError(
            "no usable results" + (f" ({len(context.skipped)} skipped: {reasons})" if reasons else "")
        )
    for student in context.stats.duplicate_students():
        context.problems.append(f"student {student} has {context.stats.students[student]} results; each is counted")
    html = page.render(context)  # all of it is drawn before any file is written
    stats, course = context.stats, context.course
    contents = {
        "report.html": html,
        "exercises.csv": tables.exercises_csv(stats.exercise_rows(course)),
        "checks.csv": tables.checks_csv(stats.check_rows(course)),
        "mistakes.csv": tables.mistakes_csv(stats.mistake_rows(course, context.messages)),
        "unexplained.csv": tables.unexplained_csv(stats.unexplained_rows(course)),
    }
    for name in OUTPUTS:
        files.write_atomically(Path(output) / name, contents[name])
    return context


def terminal_summary(context, output):
    stats, course = context.stats, context.course
    source = "a gradebook" if context.from_gradebook else f"results files, course version {context.version}"
    lines = [f"{stats.submissions} submission(s) from {source}; {len(context.skipped)} skipped"]
    lines += [f"  skipped {s.source}: {s.reason}" for s in context.skipped[:SHOWN_IN_TERMINAL]]
    if len(context.skipped) > SHOWN_IN_TERMINAL:
        lines.append(f"  ... and {len(context.skipped) - SHOWN_IN_TERMINAL} more (listed in report.html)")
    lines += [f"note: {p}" for p in context.problems]
    topics = stats.topic_rows(course)
    lines.append("mean score: " + ", ".join(f"{t.id} {t.mean_percent:.0f}%" for t in topics))
    hardest = sorted(stats.exercise_rows(course), key=lambda e: e.pass_rate)[:SHOWN_IN_TERMINAL]
    lines.append("lowest pass rates: " + ", ".join(f"{e.topic}·{e.id} {100 * e.pass_rate:.0f}%" for e in hardest))
    if not context.from_gradebook:
        top = sorted(stats.mistake_rows(course), key=lambda m: -m.submissions)[:SHOWN_IN_TERMINAL]
        lines.append(
            "most common mistakes: "
            + (", ".join(f"{m.topic}·{m.exercise} {m.mistake} ({m.submissions})" for m in top) or "none named")
        )
        never, always = stats.flagged_checks(course)
        timeouts = sum(e.timed_out for e in stats.exercises.values())
        errors = sum(e.errored for e in stats.exercises.values())
        lines.append(
            f"checks: {len(never)} never failed (too easy?), {len(always)} always failed (broken?); "
            f"submissions with a time-out: {timeouts}, with an error: {errors} (counted per exercise)"
        )
    lines.append(f"wrote {', '.join(OUTPUTS)} to {output}")
    return "\n".join(lines)
