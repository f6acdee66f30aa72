"""Name the learner's mistake, not a neighbour's.

A check that fails names the known mistake whose recorded (or live) answer the learner's answer
matches. A later check sees the answers of everything it builds on, so one wrong upstream line
can give the answer some other known mistake gives there: a filter that keeps the same
instructions, a pick of the same choice. A check therefore names a mistake only when

- no check of its own exercise that it builds on (marker `builds_on("test_name", ...)`) fails;
- the mistake belongs to the exercise under test (the recording says which exercise each
  mistake's code is in), and either no exercise it builds on (course.yml `depends`) fails or
  every mistake the answer matched belongs to the exercise under test.

Otherwise the message says what to look at first: the failing check or upstream exercise.
"""

from dataclasses import dataclass

from grader.results import SUSPECT_MARK


@dataclass(frozen=True)
class Upstream:
    """What the check under test builds on, and how it went in this run."""

    exercise: str  # the exercise under test
    failing_checks: tuple = ()  # checks it builds on (`builds_on`) that did not pass
    failing_exercises: tuple = ()  # exercises it builds on (course.yml `depends`) that did not pass
    exercise_failed: object = None  # exercise id -> True when it ran and did not pass


def decide(matches, homes, upstream):
    """(mistake to name or "", what to look at first or "") for a check whose answer matched
    the known mistakes `matches` (first the one it would name); `homes`: mistake -> exercise."""
    if upstream.failing_checks:
        first = upstream.failing_checks[0]
        return "", f"`{first}` fails too, and this check builds on it: look at it first"
    own = [m for m in matches if (homes.get(m) or upstream.exercise) == upstream.exercise]
    others = [homes[m] for m in matches if m not in own]
    failed = upstream.exercise_failed or (lambda exercise: False)
    elsewhere = [e for e in dict.fromkeys(others) if failed(e)]
    blockers = list(dict.fromkeys([*upstream.failing_exercises, *elsewhere]))
    if own and (not blockers or not others):
        return own[0], ""
    if blockers:
        first = blockers[0]
        return (
            "",
            f"exercise `{first}` does not pass yet, and this answer is what a slip there gives: look at `{first}` first",
        )
    return "", ""


def _plain(message):
    at = message.find(SUSPECT_MARK)
    return (message[:at] if at >= 0 else message).rstrip()


def rewrite(message, advice):
    """The check's message without its named mistake, and `advice` in its place (if any)."""
    plain = _plain(message)
    return f"{plain} {advice[0].upper()}{advice[1:]}." if advice else plain


def rename(message, mistake_message):
    """The check's message naming another known mistake (`mistake_message`) instead."""
    return f"{_plain(message)} {SUSPECT_MARK}{mistake_message}."
