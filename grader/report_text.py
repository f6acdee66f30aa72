"""Terminal renderings of results and progress. Pure functions returning strings; click.style
adds colour, which click.echo strips when the output is not a terminal."""
import re

from click import style

from grader import submission
from grader.results import BLOCKED, ERROR, FAILED, NOT_STARTED, PASSED, TIMEOUT
from grader.verdict import SUSPECT_MARK

SYMBOL = {PASSED: ("✔", "green"), FAILED: ("✘", "red"), ERROR: ("!", "red"), TIMEOUT: ("⏱", "red"), NOT_STARTED: ("·", "yellow"), BLOCKED: ("–", "yellow")}
BAR_WIDTH = 20
ISOLATION_NOTES = {
    "process": "note: isolation: process (no sandbox): your code ran in a separate process with resource "
               "limits but could see this machine's files and network",
    "user": "note: isolation: user: your code ran as a user of its own that cannot read the grading kit, "
            "without a sandbox (it could use the network)",
    "in-process": "note: your code ran inside the grader's own process (no isolation)",
}


def _points(x):
    return f"{x:g}"


def topic_report(course, topic_result):
    topic = course.topic(topic_result.id)
    summaries = topic_result.exercises([e.id for e in topic.exercises])
    width = max((len(s.id) for s in summaries), default=10)
    head = f"{topic.id} · {topic.title}"
    score = f"{_points(topic_result.score)}/{_points(topic_result.max_score)} points"
    lines = [style(head, bold=True) + "  " + score, ""]
    for s in summaries:
        symbol, colour = SYMBOL[s.status]
        row = f"  {style(symbol, fg=colour)} {s.id.ljust(width)}  {_points(s.score):>3}/{_points(s.max_score):<3}"
        lines.append(row + ("  " + _first_line(s) if s.status != PASSED else ""))
    done = sum(s.status == PASSED for s in summaries)
    lines += ["", f"{done} of {len(summaries)} exercises done · {score}"]
    if topic_result.isolation in ISOLATION_NOTES:
        lines.append(style(ISOLATION_NOTES[topic_result.isolation], fg="yellow"))
    return "\n".join(lines)


def _first_line(summary):
    if summary.status == NOT_STARTED:
        return style("not started", fg="yellow")
    message = summary.message.strip().splitlines()[0] if summary.message.strip() else summary.status
    diagnosis = message.partition(SUSPECT_MARK)[2]
    if diagnosis:  # the named mistake teaches more than the numbers before it
        message = f"{message.split(':')[0]}: looks like you {diagnosis}"
    return message if len(message) <= 160 else message[:157] + "..."


def next_step(course, topic_result, exercise_path, suggested):
    """One line telling the learner what to do next."""
    topic = course.topic(topic_result.id)
    summaries = topic_result.exercises([e.id for e in topic.exercises])
    broken = [s for s in summaries if s.status in (FAILED, ERROR, TIMEOUT)]
    todo = [s for s in summaries if s.status == NOT_STARTED]
    if broken:
        s = broken[0]
        return (f"Next: fix `{s.id}`: {s.message.strip()}\n"
                f"      stuck? fmgrade hint {topic.id} {s.id}")
    if todo:
        s = todo[0]
        where = _todo_location(exercise_path, s.id)
        return f"Next: exercise `{s.id}`{where}: {topic.exercise(s.id).goal}\n      stuck? fmgrade hint {topic.id} {s.id}"
    if suggested is not None:
        return f"All visible checks of {topic.id} pass. Next topic: {suggested.id}, {suggested.title} (fmgrade check {suggested.id})"
    return f"All visible checks of {topic.id} pass."


def _todo_location(exercise_path, exercise_id):
    try:  # never follows a link nor waits on a FIFO; the check's own message says what is wrong
        text = submission.read_source(exercise_path.parent.parent, f"{exercise_path.parent.name}/{exercise_path.name}")
    except (submission.Unusable, AttributeError):
        return ""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.search(rf"#\s*TODO\({re.escape(exercise_id)}\)", line):
            return f" at {exercise_path.parent.name}/{exercise_path.name}:{number}"
    return ""


def progress_report(course, progress, suggested):
    lines = [style(course.title, bold=True), ""]
    total = total_max = 0
    for section in course.sections:
        lines.append(style(section.title, bold=True))
        for topic in section.topics:
            lines.append("  " + _topic_row(course, topic, progress))
            entry = progress.topics.get(topic.id)
            if entry:
                total += entry["score"]
                total_max += entry["max_score"]
        lines.append("")
    lines.append(f"Points so far: {_points(total)}/{_points(total_max)} (visible checks of the topics you have run)")
    if suggested is not None:
        lines.append(f"Suggested next: {suggested.id}, {suggested.title} (fmgrade check {suggested.id})")
    else:
        lines.append("Every available topic is complete.")
    return "\n".join(lines)


def _topic_row(course, topic, progress):
    label = topic.id.ljust(15)
    if not course.available(topic.id):
        return f"{label} {style('not yet available', dim=True)}  {topic.title}"
    entry = progress.topics.get(topic.id)
    if not entry:
        return f"{label} [{' ' * BAR_WIDTH}] {'not run':>9}  {topic.title}"
    fraction = entry["score"] / entry["max_score"] if entry["max_score"] else 0.0
    filled = round(fraction * BAR_WIDTH)
    colour = "green" if fraction >= 1 else "yellow"
    bar = style("█" * filled, fg=colour) + "░" * (BAR_WIDTH - filled)
    return f"{label} [{bar}] {_points(entry['score']):>4}/{_points(entry['max_score']):<4}  {topic.title}"


def hint_report(course, topic, exercise):
    lines = [style(f"{topic.id} · {exercise.id}", bold=True), f"Goal: {exercise.goal}", ""]
    if exercise.hints:
        lines += [f"  {i}. {hint}" for i, hint in enumerate(exercise.hints, start=1)]
    else:
        lines.append("  No hints for this exercise yet.")
    if topic.material:
        lines += ["", "Reading:"] + [f"  - {m.title}: {m.url}" for m in topic.material]
    return "\n".join(lines)


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
        optional = " (optional)" if topic.optional else ""
        lines.append(f"{topic.id:<15} {state:<18} {topic.title}{optional}")
    return "\n".join(lines)


def findings_table(findings):
    """`fmgrade dev check`'s table: one row per finding."""
    width = max((len(f.what) for f in findings), default=10)
    rows = []
    for f in findings:
        mark = style("✔", fg="green") if f.ok else style("✘", fg="red")
        detail = f.detail if len(f.detail) <= 100 else f.detail[:97] + "..."
        rows.append(f"{mark} {f.topic:<15} {f.what.ljust(width)}  {detail}")
    return "\n".join(rows)
