"""The report's plots as inline SVG, drawn with matplotlib's SVG backend.

matplotlib is the `instructor` extra (pip install 'fmgrade[instructor]') and is imported only
here, when a report is drawn. Figures are made with matplotlib.figure.Figure (no pyplot, so no
GUI backend or global state); text stays text (svg.fonttype none), math parsing is off (ids may
hold `$`), and each figure's ids get their own salt so several SVGs can share one page.
"""

import io

from grader.results import BLOCKED, ERROR, FAILED, NOT_STARTED, PASSED, TIMEOUT

COLOURS = {
    PASSED: "#2e7d32",
    FAILED: "#c62828",
    ERROR: "#ef6c00",
    TIMEOUT: "#6a1b9a",
    NOT_STARTED: "#9e9e9e",
    BLOCKED: "#d7ccc8",
}
BAR = "#1565c0"


class PlotsUnavailable(Exception):
    """matplotlib is not installed; the message says how to install it."""


def require():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotsUnavailable("the report's plots need matplotlib: pip install 'fmgrade[instructor]'") from None


def _figure(width, height):
    require()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))  # laid out by hand: a layout engine costs ~0.5 s a figure


def _left_margin(labels, width):
    """The fraction of a `width`-inch figure that 8-point y labels need."""
    return min(0.6, (0.3 + 0.062 * max((len(label) for label in labels), default=0)) / width)


def _svg(figure, name):
    import matplotlib

    buffer = io.StringIO()
    settings = {"svg.fonttype": "none", "svg.hashsalt": name, "svg.id": f"plot-{name}", "text.parse_math": False}
    with matplotlib.rc_context(settings):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: it is inlined in HTML


def score_distributions(topics):
    """Histograms of each topic's scores (% of its points), one panel per topic."""
    columns = min(3, max(1, len(topics)))
    rows = -(-len(topics) // columns) or 1
    figure = _figure(3.6 * columns, 2.4 * rows)
    figure.subplots_adjust(
        left=0.65 / (3.6 * columns),
        right=0.98,
        bottom=0.55 / (2.4 * rows),
        top=1 - 0.3 / (2.4 * rows),
        wspace=0.42,
        hspace=0.62,
    )
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    edges = list(range(0, 101, 10))
    for ax, topic in zip(axes, topics):
        with _no_math():
            ax.hist(topic.percents, bins=edges, color=BAR, edgecolor="white")
            ax.set_title(f"{topic.id} (n={topic.submissions})", fontsize=10)
            ax.set_xlim(0, 100)
            ax.set_xlabel("% of the topic's points", fontsize=8)
            ax.set_ylabel("submissions", fontsize=8)
            ax.tick_params(labelsize=8)
            if topic.percents:
                ax.axvline(topic.mean_percent, color="black", linestyle="--", linewidth=1)
    for ax in axes[len(topics) :]:
        ax.set_visible(False)
    return _svg(figure, "scores")


def exercise_statuses(exercises):
    """One bar per exercise, split by how its submissions ended (passed first)."""
    labels = [f"{e.topic} · {e.id}" for e in exercises]
    height = 1.1 + 0.24 * max(1, len(exercises))
    figure = _figure(9, height)
    figure.subplots_adjust(left=_left_margin(labels, 9), right=0.98, top=1 - 0.55 / height, bottom=0.5 / height)
    ax = figure.subplots()
    positions = range(len(exercises))
    left = [0.0] * len(exercises)
    with _no_math():
        for status, colour in COLOURS.items():
            widths = [100.0 * e.statuses[status] / e.submissions if e.submissions else 0.0 for e in exercises]
            if any(widths):
                ax.barh(positions, widths, left=left, color=colour, label=status.replace("_", " "), height=0.75)
                left = [a + b for a, b in zip(left, widths)]
        ax.set_yticks(list(positions), labels, fontsize=8)
        ax.set_ylim(len(exercises) - 0.5, -0.5)  # first exercise on top, no empty band
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of submissions", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(COLOURS), fontsize=8, frameon=False)
    return _svg(figure, "exercises")


def top_mistakes(mistakes, limit=15):
    """The `limit` named mistakes made by most submissions, across exercises."""
    top = sorted(mistakes, key=lambda m: (-m.submissions, m.topic, m.exercise, m.mistake))[:limit]
    labels = [f"{m.topic} · {m.exercise}: {m.mistake}" for m in top]
    height = 0.8 + 0.28 * max(1, len(top))
    figure = _figure(9, height)
    figure.subplots_adjust(left=_left_margin(labels, 9), right=0.98, top=1 - 0.15 / height, bottom=0.5 / height)
    ax = figure.subplots()
    with _no_math():
        ax.barh(range(len(top)), [m.submissions for m in top], color=COLOURS[FAILED], height=0.7)
        ax.set_yticks(list(range(len(top))), labels, fontsize=8)
        ax.set_ylim(len(top) - 0.5, -0.5)
        ax.set_xlabel("submissions that made the mistake", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    return _svg(figure, "mistakes")


def _no_math():
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False})
