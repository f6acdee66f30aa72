"""Terminal renderings of results and progress.

Pure functions, a result in and a `rich.text.Text` out: `str()` of it is the plain text, and
grader.learner.terminal prints it with colour on a terminal and as plain text when piped or NO_COLOR
is set. (`findings_table`, the instructor's `dev check` table, still uses click.style.)
"""

import re

from click import style
from rich.text import Text

from grader import submission
from grader.results import BLOCKED, ERROR, FAILED, NOT_STARTED, PASSED, SUSPECT_MARK, TIMEOUT, standing

SYMBOL = {
    PASSED: ("✔", "green"),
    FAILED: ("✘", "red"),
    ERROR: ("!", "red"),
    TIMEOUT: ("⏱", "red"),
    NOT_STARTED: ("·", "yellow"),
    BLOCKED: ("–", "yellow"),
}
PROBLEMS = (FAILED, ERROR, TIMEOUT)
BAR_WIDTH = 20
ROW_MESSAGE = 160  # characters of a problem shown on an exercise's row
OUTPUT_LINES = 6  # lines of what the learner's code printed, shown under a failing row
ISOLATION_NOTES = {
    "process": "note: isolation: process (no sandbox): your code ran in a separate process with resource "
    "limits but could see this machine's files and network",
    "user": "note: isolation: user (no sandbox): your code ran as a user of its own that cannot read the grading "
    "kit, but could see this machine's other files and network",
    "in-process": "note: your code ran inside the grader's own process (no isolation)",
}
IMPORT_PREFIX = "your module does not import: "


def _points(x):
    return f"{x:g}"


def _lines(*parts):
    """Join Text/str parts with newlines into one Text."""
    return Text("\n").join(Text(p) if isinstance(p, str) else p for p in parts)


# --- fmgrade check ----------------------------------------------------------------------


def topic_report(course, topic_result, *, exercise_path=None, verbose=False):
    """A row per exercise with its points and first problem (with `verbose`, every failing
    check's full message), what the code printed under a failing row, and a summary line.
    A module that does not import is one banner instead of a row per exercise;
    `exercise_path` (the learner's file) lets it quote the offending line."""
    topic = course.topic(topic_result.id)
    ruled = standing(topic_result, topic.exercises)
    summaries = ruled.exercises
    score = f"{_points(ruled.score)}/{_points(ruled.max_score)} points"
    head = Text.assemble((f"{topic.id} · {topic.title}", "bold"), "  ", score)
    if topic_result.not_run:
        head.append(f" (checked {len(summaries)} of {len(summaries) + len(topic_result.not_run)} exercises)")
    lines = [head, ""]
    if topic_result.import_error:
        lines += _import_banner(topic, topic_result, exercise_path)
    else:
        width = max((len(s.id) for s in summaries), default=10)
        for s in summaries:
            lines += _exercise_rows(topic_result, s, width, verbose)
        lines += ["", f"{ruled.done} of {len(summaries)} exercises done · {score}"]
    if topic_result.reused and not topic_result.import_error:
        names = ", ".join(f"`{e.id}`" for e in topic.exercises if e.id in topic_result.reused)
        lines.append(
            Text(
                f"Reused the passing result of {names}: your file and the checks are unchanged since "
                f"{'they' if len(topic_result.reused) > 1 else 'it'} ran "
                f"({min(topic_result.reused.values())[:16].replace('T', ' ')}); edit either to run it again.",
                style="dim",
            )
        )
    if topic_result.not_run:
        skipped = [e.id for e in topic.exercises if e.id in topic_result.not_run]
        lines.append(Text(f"Not run this time (their last results are kept): {', '.join(skipped)}", style="dim"))
    if topic_result.isolation in ISOLATION_NOTES:
        lines.append(Text(ISOLATION_NOTES[topic_result.isolation], style="yellow"))
    return _lines(*lines)


def _exercise_rows(topic_result, summary, width, verbose):
    symbol, colour = SYMBOL.get(summary.status, ("?", "red"))
    row = Text.assemble(
        "  ",
        (symbol, colour),
        f" {summary.id.ljust(width)}  ",
        f"{_points(summary.score):>3}/{_points(summary.max_score):<3}",
    )
    if summary.status == PASSED:
        return [row]
    row.append("  ")
    row.append_text(_first_line(summary))
    if summary.status not in PROBLEMS:
        return [row]
    failing = [c for c in topic_result.checks if c.exercise == summary.id and c.status in PROBLEMS]
    if not verbose:
        first = next((c for c in failing if c.message == summary.message), failing[0] if failing else None)
        return [row] + (_printed(first.output) if first else [])
    rows = [row]
    for check in failing:
        rows.append(Text.assemble("      ", (check.id, "bold"), "  ", (check.status, SYMBOL[check.status][1])))
        rows += [Text("        " + line) for line in (check.message.strip() or check.status).splitlines()]
        rows += _printed(check.output, indent="        ")
    return rows


def live_row(summary, done, total, width=24):
    """The line of one exercise as it finishes, before the whole report:
    `[3/11] attention  ✔ passed 5/5` (plain when piped)."""
    symbol, colour = SYMBOL.get(summary.status, ("?", "red"))
    return Text.assemble(
        (f"[{done}/{total}] ", "dim"),
        f"{summary.id.ljust(width)}  ",
        (f"{symbol} {summary.status.replace('_', ' ')}", colour),
        f" {_points(summary.score)}/{_points(summary.max_score)}",
    )


def _first_line(summary):
    if summary.status == NOT_STARTED:
        return Text("not started", style="yellow")
    message = summary.message.strip().splitlines()[0] if summary.message.strip() else summary.status
    diagnosis = message.partition(SUSPECT_MARK)[2]
    if diagnosis:  # the named mistake teaches more than the numbers before it
        message = f"{message.split(':')[0]}: looks like you {diagnosis}"
    return Text(message if len(message) <= ROW_MESSAGE else message[: ROW_MESSAGE - 3] + "...")


def _printed(output, indent="      "):
    """What the learner's code printed during a check, cut to OUTPUT_LINES lines."""
    lines = output.rstrip().splitlines() if output and output.strip() else []
    if not lines:
        return []
    more_bytes, hidden_lines = "", 0
    # grader.sandbox.process's mark: what was printed beyond the part it kept
    cut = re.fullmatch(r"\.\.\. \((\d+) more bytes not shown(?:, (\d+) more lines)?\)", lines[-1])
    if cut:
        lines.pop()
        more_bytes, hidden_lines = f"{int(cut.group(1)):,} more bytes", int(cut.group(2) or 0)
    shown = lines[:OUTPUT_LINES]
    rows = [Text(f"{indent}your code printed:", style="dim")]
    rows += [Text.assemble((f"{indent}│ ", "dim"), line) for line in shown]
    left = len(lines) - len(shown) + hidden_lines
    if left or more_bytes:
        note = ", ".join(p for p in (f"{left:,} more line{'s' * (left != 1)}" if left else "", more_bytes) if p)
        rows.append(Text(f"{indent}… {note} not shown", style="dim"))
    return rows


def import_location(topic_result):
    """(file, line) of a module that does not import, or (None, None) when no line is known."""
    match = re.search(rf"(exercises/{re.escape(topic_result.id)}\.py):(\d+)", topic_result.import_error)
    return (match.group(1), int(match.group(2))) if match else (None, None)


def _import_banner(topic, topic_result, exercise_path):
    detail = topic_result.import_error.removeprefix(IMPORT_PREFIX)
    lines = [
        Text.assemble("  ", ("✘", "red"), " ", (f"exercises/{topic.id}.py does not import", "bold red")),
        Text("    " + detail),
    ]
    _, number = import_location(topic_result)
    code = _source_line(exercise_path, number)
    if code is not None:
        lines.append(Text.assemble((f"    {number:>4} │ ", "dim"), code.rstrip()))
    first_output = next((c.output for c in topic_result.checks if c.output.strip()), "")
    lines += _printed(first_output, indent="    ")
    lines += [
        "",
        Text(
            f"None of the {len(topic.exercises)} exercises could be checked; your last results are kept.",
            style="yellow",
        ),
    ]
    return lines


def _source_line(path, number):
    if path is None or not number:
        return None
    try:  # as _todo_location: never follows a link nor waits on a FIFO
        lines = submission.read_source(path.parent.parent, f"{path.parent.name}/{path.name}").splitlines()
    except (submission.Unusable, AttributeError):
        return None
    return lines[number - 1] if 0 < number <= len(lines) else None


def next_step(course, topic_result, exercise_path, suggested):
    """What to do next: the file and line that stops the import, the first problem, the next
    exercise to start, or the next topic."""
    topic = course.topic(topic_result.id)
    if topic_result.import_error:
        file, number = import_location(topic_result)
        where = f"{file}:{number}" if file else f"exercises/{topic.id}.py"
        return Text(f"Next: fix {where} so that the module imports, then run fmgrade check {topic.id} again")
    summaries = standing(topic_result, topic.exercises).exercises
    broken = [s for s in summaries if s.status in PROBLEMS]
    todo = [s for s in summaries if s.status == NOT_STARTED]
    if broken:
        s = broken[0]
        return Text(f"Next: fix `{s.id}`: {s.message.strip()}\n      stuck? fmgrade hint {topic.id} {s.id}")
    if todo:
        s = todo[0]
        where = _todo_location(exercise_path, s.id)
        return Text(
            f"Next: exercise `{s.id}`{where}: {topic.exercise(s.id).goal}\n      stuck? fmgrade hint {topic.id} {s.id}"
        )
    blocked = [s for s in summaries if s.status == BLOCKED]
    if blocked:
        return Text(f"Next: {blocked[0].message.strip() or f'`{blocked[0].id}` waits for an exercise it builds on'}")
    if topic_result.not_run:
        return Text(f"The exercises you checked pass. Check them all: fmgrade check {topic.id}")
    if suggested is not None:
        return Text(
            f"All visible checks of {topic.id} pass. Next topic: {suggested.id}, {suggested.title} "
            f"(fmgrade check {suggested.id})"
        )
    return Text(f"All visible checks of {topic.id} pass.")


def seed_line(topic_result):
    """The replay line, when some check drew random inputs (empty otherwise)."""
    if not topic_result.random_inputs or topic_result.import_error:
        return Text("")
    return Text(f"seed {topic_result.seed}: replay with --seed {topic_result.seed}", style="dim")


def _todo_location(exercise_path, exercise_id):
    try:  # never follows a link nor waits on a FIFO; the check's own message says what is wrong
        text = submission.read_source(exercise_path.parent.parent, f"{exercise_path.parent.name}/{exercise_path.name}")
    except (submission.Unusable, AttributeError):
        return ""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.search(rf"#\s*TODO\({re.escape(exercise_id)}\)", line):
            return f" at {exercise_path.parent.name}/{exercise_path.name}:{number}"
    return ""


# --- fmgrade progress / list / hint ----------------------------------------------------------


def progress_report(course, progress, suggested):
    lines = [Text(course.title, style="bold"), ""]
    total = total_max = 0
    for section in course.sections:
        lines.append(Text(section.title, style="bold"))
        for topic in section.topics:
            lines.append(Text("  ") + _topic_row(course, topic, progress))
            entry = progress.topics.get(topic.id)
            if entry:
                total += entry["score"]
                total_max += entry["max_score"]
        lines.append("")
    lines.append(f"Points so far: {_points(total)}/{_points(total_max)} (visible checks of the topics you have run)")
    not_run = [t.id for t in course.topics if course.available(t.id) and t.id not in progress.topics]
    if not_run:
        lines.append(
            f"Not run yet ({len(not_run)} topic{'s' * (len(not_run) != 1)}, not in the points above): {', '.join(not_run)}"
        )
    if suggested is not None:
        lines.append(f"Suggested next: {suggested.id}, {suggested.title} (fmgrade check {suggested.id})")
    else:
        lines.append("Every available topic is complete.")
    return _lines(*lines)


def _topic_row(course, topic, progress):
    label = topic.id.ljust(15)
    if not course.available(topic.id):
        return Text.assemble(f"{label} ", ("not yet available", "dim"), f"  {topic.title}")
    entry = progress.topics.get(topic.id)
    if not entry:
        return Text(f"{label} [{' ' * BAR_WIDTH}] {'not run':>9}  {topic.title}")
    fraction = entry["score"] / entry["max_score"] if entry["max_score"] else 0.0
    filled = round(fraction * BAR_WIDTH)
    colour = "green" if fraction >= 1 else "yellow"
    row = Text.assemble(
        f"{label} [",
        ("█" * filled, colour),
        ("░" * (BAR_WIDTH - filled), "dim"),
        f"] {_points(entry['score']):>4}/{_points(entry['max_score']):<4}  {topic.title}",
    )
    if entry.get("import_error"):
        row.append("  (last run: does not import)", style="red")
    checked = sum(e.id in entry.get("exercises", {}) for e in topic.exercises)
    if 0 < checked < len(topic.exercises):  # `check TOPIC EXERCISE` only: the others count 0 until run
        row.append(f"  ({checked} of {len(topic.exercises)} exercises checked)", style="dim")
    return row


def hint_report(course, topic, exercise, shown=None, past_last=False):
    """The goal, the first `shown` hints (all when None) and the reading of an exercise; with
    `past_last` (every hint was shown already), a note that there are no more instead."""
    hints = exercise.hints if shown is None else exercise.hints[:shown]
    lines = [Text(f"{topic.id} · {exercise.id}", style="bold"), f"Goal: {exercise.goal}", ""]
    if exercise.hints and past_last:
        total = len(exercise.hints)
        lines.append(
            f"  No more hints: you have seen all {total} of this exercise. "
            f"`fmgrade hint {topic.id} {exercise.id} --all` shows them again."
        )
    elif exercise.hints:
        lines += [f"  {i}. {hint}" for i, hint in enumerate(hints, start=1)]
        left = len(exercise.hints) - len(hints)
        if left:
            lines.append(
                Text(
                    f"  {left} more hint{'s' * (left != 1)}: run `fmgrade hint {topic.id} {exercise.id}` "
                    "again for the next one, or add --all",
                    style="dim",
                )
            )
    else:
        lines.append("  No hints for this exercise yet.")
    if topic.material:
        lines += ["", "Reading:"] + [f"  - {m.title}: {m.url}" for m in topic.material]
    return _lines(*lines)


def list_report(course, progress):
    lines = []
    for topic in course.topics:
        if not course.available(topic.id):
            state = "not yet available"
        elif progress.complete(topic.id):
            state = "complete"
        elif topic.id in progress.topics:
            entry = progress.topics[topic.id]
            state = f"{_points(entry['score'])}/{_points(entry['max_score'])}"
        else:
            state = "not run"
        # a title that already says it is optional ("(Optional) Surveys ...") is not told twice
        optional = " (optional)" if topic.optional and "optional" not in topic.title.lower() else ""
        lines.append(f"{topic.id:<15} {state:<18} {topic.title}{optional}")
    return _lines(*lines)


def findings_table(findings):
    """`fmgrade dev check`'s table: one row per finding."""
    width = max((len(f.what) for f in findings), default=10)
    rows = []
    for f in findings:
        mark = style("✔", fg="green") if f.ok else style("✘", fg="red")
        detail = f.detail if len(f.detail) <= 100 else f.detail[:97] + "..."
        rows.append(f"{mark} {f.topic:<15} {f.what.ljust(width)}  {detail}")
    return "\n".join(rows)
