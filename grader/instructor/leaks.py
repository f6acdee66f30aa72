"""Find solution code in release files even when its names were changed.

Every answer region of the solutions becomes a sequence of normalised tokens: local names
become `N`, numbers `0`, strings `S`; keywords, operators and attribute names (`.softmax`,
`.masked_fill`: the library calls that carry what the code does) are kept. A release file
leaks when it shares a run of NGRAM such tokens with a region. Comments and docstrings are
not code, so a region's prose may be quoted; its code may not, however renamed.
"""

import io
import keyword
import tokenize
from pathlib import Path

from grader import stubgen

NGRAM = 16  # tokens: a line or two of code; shorter runs are common idioms (`x = x.view(...)`)
MIN_DISTINCT = 6  # `N(N, N, N, N, N, N, N)` is any call with seven arguments, not evidence
_SKIP = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def normalised_tokens(source):
    """[(token, line)] of Python `source`; [] when it does not tokenize."""
    out, previous = [], None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in _SKIP:
                continue
            if tok.type == tokenize.STRING:
                if previous is None or previous in (":", "NEWLINE"):
                    previous = "S"
                    continue  # a docstring or a bare string statement: prose, not code
                text = "S"
            elif tok.type == tokenize.NUMBER:
                text = "0"
            elif tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                text = tok.string if previous == "." else "N"
            else:
                text = tok.string
            out.append((text, tok.start[0]))
            previous = text
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    return out


def solution_ngrams(course):
    """{ngram: (topic, 'solutions/x.py:LINE')} over every answer region (a shorter region: whole),
    less what the topic's stub already shows (code given around the TODOs is not a leak)."""
    found = {}
    for topic in course.topics:
        path = course.solution_path(topic.id)
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8")
        tokens = normalised_tokens(source)
        stub = course.exercise_path(topic.id)
        given = _all_ngrams(normalised_tokens(stub.read_text(encoding="utf-8")) if stub.is_file() else [])
        for region in stubgen.regions(source, str(path)):
            inside = [t for t, line in tokens if region.begin < line < region.end]
            size = min(NGRAM, len(inside))
            if size < 8:
                continue  # `return x * factor`: too short to be evidence
            for start in range(len(inside) - size + 1):
                ngram = tuple(inside[start : start + size])
                if ngram in given or len(set(ngram)) < MIN_DISTINCT:
                    continue
                found.setdefault(
                    tuple(inside[start : start + size]), (topic.id, f"solutions/{topic.id}.py:{region.begin + 1}")
                )
    return found


def _all_ngrams(tokens):
    texts = [t for t, _ in tokens]
    return {tuple(texts[i : i + size]) for size in range(8, NGRAM + 1) for i in range(len(texts) - size + 1)}


def find_copies(course, folder):
    """['path:LINE: renamed solution code (from solutions/x.py:N)'] for Python files in `folder`.

    A topic's checks and stub are held against that topic's solution (across topics, sixteen
    tokens of tensor idiom recur by chance); any other file against every solution."""
    ngrams = solution_ngrams(course)
    sizes = {len(g) for g in ngrams}
    leaks = []
    for path in sorted(Path(folder).rglob("*.py")):
        relative = path.relative_to(folder)
        if relative.parts[0] == "grader":
            continue  # the grader's own code
        own_topic = _topic_of(relative)
        tokens = normalised_tokens(path.read_text(encoding="utf-8", errors="replace"))
        texts = [t for t, _ in tokens]
        reported = set()
        for size in sizes:
            for start in range(len(texts) - size + 1):
                topic, origin = ngrams.get(tuple(texts[start : start + size]), (None, None))
                if origin and origin not in reported and own_topic in (None, topic):
                    reported.add(origin)
                    leaks.append(f"{relative}:{tokens[start][1]}: solution code with other names (from {origin})")
    return leaks


def _topic_of(relative):
    """The topic a release file belongs to: tests/checks/<topic>/... or exercises/<topic>.py."""
    if relative.parts[:2] == ("tests", "checks") and len(relative.parts) > 3:
        return relative.parts[2]
    if (
        relative.parts[0] == "exercises"
        and len(relative.parts) == 2
        or relative.parts[:2] == ("exercises", ".original")
    ):
        return relative.stem  # exercises/.original/<topic>.py: the stub as released, for `fmgrade reset`
    return None
