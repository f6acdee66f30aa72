"""report.html: one self-contained page (inline CSS and SVG, no script, no network).

Every piece of text that comes from results files (ids, student names, messages, which hold
what learner code printed) goes through `_e` (html.escape). A Content-Security-Policy forbids
scripts and any load from elsewhere, as a second line of defence.
"""

import html

from grader.instructor.classreport import mistake_pictures, plots
from grader.instructor.classreport.stats import status_columns
from grader.instructor.classreport.tables import number

MISTAKES_SHOWN = 10  # per exercise; mistakes.csv has them all
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f;
       max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 2px solid #e0e0e0; }
h3 { font-size: 16px; margin: 22px 0 6px; }
.lead { color: #555; margin-top: 0; } .note { background: #fff8e1; border-left: 4px solid #f9a825; padding: 8px 12px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border-bottom: 1px solid #e6e6e6; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.msg { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; color: #444; max-width: 560px;
       overflow-wrap: anywhere; }
svg { max-width: 100%; height: auto; } nav a { margin-right: 14px; }
"""


def _e(text):
    return html.escape(str(text), quote=True)


def render(context):
    """The page for a ReportContext (grader.instructor.classreport.build)."""
    stats, course = context.stats, context.course
    topics = stats.topic_rows(course)
    exercises = stats.exercise_rows(course)
    mistakes = stats.mistake_rows(course, context.messages)
    title = f"Class report: {course.title}" if course else "Class report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="lead">{_e(_lead(context))}</p>',
        '<nav><a href="#scores">Scores</a><a href="#exercises">Exercises</a><a href="#mistakes">Mistakes</a><a href="#unexplained">Unexplained</a>'
        '<a href="#checks">Checks to look at</a><a href="#problems">Time-outs and errors</a>'
        '<a href="#grading">Isolation and seeds</a></nav>',
        *_notes(context),
        *_scores(topics),
        *_exercises(exercises),
        *_mistakes(context, mistakes),
        *_unexplained(context, course),
        *_checks(context, course),
        *_problems(context, exercises),
        *_grading(context, topics),
        f'<p class="lead">Written by <code>fmgrade report</code>. {_e(_definitions())}</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _lead(context):
    stats = context.stats
    source = "an nbgrader gradebook" if context.from_gradebook else "results files"
    text = f"{stats.submissions} submission(s) from {source}"
    if not context.from_gradebook:
        text += f" · course version {context.version}"
    return text + f" · {len(context.skipped)} skipped"


def _notes(context):
    out = []
    if context.from_gradebook:
        out.append(
            '<p class="note">The source is a gradebook, which holds each exercise\'s points only: an exercise '
            "counts as passed when it has all its points. Named mistakes, check results, time-outs, errors, "
            "isolation levels and seeds are not in a gradebook; report from the JSON results "
            "(<code>fmgrade grade --format json --output DIR</code>) to see them.</p>"
        )
    if context.skipped:
        items = "".join(f"<li><code>{_e(s.source)}</code>: {_e(s.reason)}</li>" for s in context.skipped)
        out.append(
            f'<details class="note"><summary>{len(context.skipped)} results file(s) skipped</summary>'
            f"<ul>{items}</ul></details>"
        )
    for problem in context.problems:
        out.append(f'<p class="note">{_e(problem)}</p>')
    return out


def _table(header, rows, numeric=()):
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{v}</td>" for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _percent(value):
    return f"{100 * value:.0f}%"


def _scores(topics):
    out = ['<h2 id="scores">Score distribution per topic</h2>']
    if not topics:
        return out + ["<p>No topics graded.</p>"]
    out.append(plots.score_distributions(topics))
    rows = [
        (f"<code>{_e(t.id)}</code>", t.submissions, f"{t.mean_percent:.0f}%", f"{t.median_percent:.0f}%")
        for t in topics
    ]
    out.append(_table(("topic", "submissions", "mean", "median"), rows, numeric=(1, 2, 3)))
    return out


def _exercises(exercises):
    out = ['<h2 id="exercises">Pass rate per exercise</h2>']
    if not exercises:
        return out + ["<p>No exercises graded.</p>"]
    out.append(plots.exercise_statuses(exercises))
    statuses = status_columns()
    rows = [
        (
            f"<code>{_e(e.topic)}</code>",
            f"<code>{_e(e.id)}</code>",
            e.submissions,
            _percent(e.pass_rate),
            *(e.statuses[s] for s in statuses),
            f"{e.mean_score:.2f} / {number(e.max_score)}",
        )
        for e in exercises
    ]
    header = ("topic", "exercise", "submissions", "pass rate", *(s.replace("_", " ") for s in statuses), "mean points")
    out.append(_table(header, rows, numeric=tuple(range(2, 4 + len(statuses) + 1))))
    return out


def _mistakes(context, mistakes):
    out = ['<h2 id="mistakes">The class\'s named mistakes</h2>']
    if context.from_gradebook:
        return out + ["<p>Not available: a gradebook does not record which known mistake an answer matched.</p>"]
    if not mistakes:
        return out + ["<p>No check named a known mistake in these results.</p>"]
    out.append(
        "<p>Ranked per exercise by the submissions whose wrong answer matched a known mistake "
        "(from the topic's <code>tests/mutants/</code>). Share: of the submissions that attempted the "
        "exercise.</p>"
    )
    out.append(plots.top_mistakes(mistakes))
    by_exercise = {}
    for m in mistakes:
        by_exercise.setdefault((m.topic, m.exercise), []).append(m)
    for (topic, exercise), rows in by_exercise.items():
        out.append(f"<h3><code>{_e(topic)}</code> · <code>{_e(exercise)}</code></h3>")
        out.append(
            _table(
                ("rank", "mistake", "what it is", "submissions", "share"),
                [
                    (
                        m.rank,
                        f"<code>{_e(m.mistake)}</code>",
                        _e(m.message) if m.message else "<em>not in this course's mutants files</em>",
                        m.submissions,
                        _percent(m.share),
                    )
                    for m in rows[:MISTAKES_SHOWN]
                ],
                numeric=(0, 3, 4),
            )
        )
        if len(rows) > MISTAKES_SHOWN:
            out.append(f"<p>... and {len(rows) - MISTAKES_SHOWN} more, made by fewer submissions (mistakes.csv).</p>")
        out.append(mistake_pictures.picture_html(context.course, topic, exercise, rows[0].mistake))  # the most made
    return out


def _unexplained(context, course, shown=20):
    out = ['<h2 id="unexplained">Failures no known mistake explains</h2>']
    if not context.stats.has_checks:
        return out + ["<p>Not available: a gradebook has no per-check results.</p>"]
    rows = context.stats.unexplained_rows(course)
    if not rows:
        return out + ["<p>None: every failing check named a known mistake.</p>"]
    out.append(
        "<p>Failed checks (and errors) that named no known mistake, grouped by check and message shape "
        "(numbers shown as #, quoted text as '…'): candidates for new mutants. Most submissions first.</p>"
    )
    out.append(
        _table(
            ("topic", "exercise", "check", "message shape", "submissions", "example"),
            [
                (
                    f"<code>{_e(u.topic)}</code>",
                    f"<code>{_e(u.exercise)}</code>",
                    f"<code>{_e(u.check)}</code>",
                    _e(u.shape),
                    u.submissions,
                    _example(u.example),
                )
                for u in rows[:shown]
            ],
            numeric=(4,),
        )
    )
    if len(rows) > shown:
        out.append(f"<p>... and {len(rows) - shown} more groups (unexplained.csv).</p>")
    return out


def _checks(context, course):
    out = ['<h2 id="checks">Checks to look at</h2>']
    if not context.stats.has_checks:
        return out + ["<p>Not available: a gradebook has no per-check results.</p>"]
    never, always = context.stats.flagged_checks(course)
    out.append(f"<h3>Never failed: too easy? ({len(never)})</h3>")
    out.append("<p>Every submission whose code ran passed these checks.</p>" if never else "<p>None.</p>")
    if never:
        out.append(
            _table(
                ("topic", "exercise", "check", "attempts"),
                [
                    (
                        f"<code>{_e(c.topic)}</code>",
                        f"<code>{_e(c.exercise)}</code>",
                        f"<code>{_e(c.id)}</code>",
                        c.attempted,
                    )
                    for c in never
                ],
                numeric=(3,),
            )
        )
    out.append(f"<h3>Always failed: broken? ({len(always)})</h3>")
    out.append("<p>No submission whose code ran passed these checks.</p>" if always else "<p>None.</p>")
    if always:
        out.append(
            _table(
                ("topic", "exercise", "check", "attempts", "first problem seen"),
                [
                    (
                        f"<code>{_e(c.topic)}</code>",
                        f"<code>{_e(c.exercise)}</code>",
                        f"<code>{_e(c.id)}</code>",
                        c.attempted,
                        _example(c.example_failure),
                    )
                    for c in always
                ],
                numeric=(3,),
            )
        )
    return out


def _example(example):
    if not example:
        return ""
    student, line = example
    return f'<span class="msg">{_e(line)}</span> <small>({_e(student)})</small>'


def _problems(context, exercises):
    out = ['<h2 id="problems">Time-outs and errors per exercise</h2>']
    if not context.stats.has_checks:
        return out + ["<p>Not available: a gradebook does not record time-outs or errors.</p>"]
    rows = [e for e in exercises if e.timed_out or e.errored]
    if not rows:
        return out + ["<p>No check timed out or ended in an error.</p>"]
    out.append(
        "<p>Submissions in which some check of the exercise timed out, or ended in an error (the "
        "learner's code raised, crashed or returned something unusable).</p>"
    )
    out.append(
        _table(
            ("topic", "exercise", "timed out", "errors", "a time-out", "an error"),
            [
                (
                    f"<code>{_e(e.topic)}</code>",
                    f"<code>{_e(e.id)}</code>",
                    e.timed_out,
                    e.errored,
                    _example(e.example_timeout),
                    _example(e.example_error),
                )
                for e in rows
            ],
            numeric=(2, 3),
        )
    )
    return out


def _grading(context, topics):
    out = ['<h2 id="grading">Isolation and seeds</h2>']
    if context.from_gradebook:
        return out + ["<p>Not available: a gradebook does not record how submissions were graded.</p>"]
    weak = sorted({level for t in topics for level in t.isolation if level not in ("bwrap", "namespaces")})
    if weak:
        out.append(
            f'<p class="note">Some submissions were graded with weaker isolation ({_e(", ".join(weak))}): '
            "learner code could see the machine's files.</p>"
        )
    rows = [(f"<code>{_e(t.id)}</code>", _e(_counts(t.isolation)), _e(_seeds(t.seeds))) for t in topics]
    out.append(_table(("topic", "isolation (submissions)", "seeds (submissions)"), rows))
    return out


def _counts(counter):
    return ", ".join(f"{key}: {n}" for key, n in counter.most_common()) or "not recorded"


def _seeds(seeds, shown=8):
    if len(seeds) <= shown:
        return _counts(seeds)
    return f"{len(seeds)} seeds; most used: " + ", ".join(f"{k}: {n}" for k, n in seeds.most_common(shown))


def _definitions():
    return (
        "Pass rate: submissions passing every check of the exercise / submissions graded on it. "
        "Attempted: the learner's code ran (passed, failed, error or timeout; not 'not started' or 'blocked'). "
        "The same numbers are in exercises.csv, checks.csv and mistakes.csv beside this page."
    )
