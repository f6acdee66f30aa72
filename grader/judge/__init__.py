"""Recorded expectations: what the reference solution returned on each visible check's fixed
inputs, stored as data, so the student release can compare without a reference implementation.

- `data`:   a code-free JSON encoding of tensors, arrays, numbers, strings and containers, and
            the call keys (hashes of what was called with which arguments)
- `store`:  one topic's recording file (`tests/checks/<topic>/recorded.json`)
- `nodes`:  the `recorded` fixture: replays calls from a recording, or, for `fmgrade dev record`,
            makes them on the solution (and on each known mistake, for fingerprints)
- `record`: `fmgrade dev record`: runs the visible checks to fill a topic's recording
"""
