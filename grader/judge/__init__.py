"""Judging one topic: pytest runs the checks in the grader's process, never beside learner code.

- `runner`:     runs a topic's checks with pytest and collects a TopicResult
- `plugin`:     the pytest plugin: markers, check order, blocking, the fixtures `impl`, `helpers`,
                `recorded` and `seed`, and each check's verdict (one CheckResult)
- `verdict`:    the status and message of a check that raised
- `replay`:     the `recorded` fixture: replays calls from a recording, or, for `fmgrade dev record`,
                makes them on the solution (and on each known mistake, for fingerprints)
- `recordings`: one topic's recording file (`tests/checks/<topic>/recorded.json`)
- `inprocess`:  loading course modules in this process, for the instructor's own run

Hidden checks' `ref` (the live solution) is the instructor's: grader.instructor.live.
"""
