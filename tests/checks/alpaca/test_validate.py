"""Checks for validate_records: every problem of a broken data file is reported, in the
documented formats, and nothing crashes.

Each message is read back into (record index, kind, detail); visible checks compare with the
problems planted in hand-made records, hidden checks with the reference on random ones.
"""
import re

import pytest
import torch

from grader.checking import fail

pytestmark = pytest.mark.exercise("validate_records")

_FORMATS = [
    ("not a list", re.compile(r"^records: expected a list of records, got (?P<detail>\w+)$")),
    ("not a dict", re.compile(r"^record (?P<index>\d+): expected a dict, got (?P<detail>\w+)$")),
    ("missing", re.compile(r"^record (?P<index>\d+): missing field '(?P<detail>\w+)'$")),
    ("not a string", re.compile(r"^record (?P<index>\d+): field '(?P<detail>\w+)' must be a string, got (?P<type>\w+)$")),
    ("empty", re.compile(r"^record (?P<index>\d+): empty field '(?P<detail>\w+)'$")),
    ("duplicate", re.compile(r"^record (?P<index>\d+): duplicate of record (?P<detail>\d+)$")),
]


def _parse(message, what):
    if not isinstance(message, str):
        fail(f"{what}: every problem must be a message (str), got {type(message).__name__}: {message!r}.")
    for kind, pattern in _FORMATS:
        m = pattern.match(message)
        if m:
            index = int(m["index"]) if "index" in pattern.groupindex else None
            detail = m["detail"] + (f" ({m['type']})" if kind == "not a string" else "")
            return index, kind, detail
    fail(f"{what}: the problem {message!r} does not follow the formats of the docstring, e.g. "
         "\"record 3: missing field 'output'\" or \"record 5: duplicate of record 2\".")


def _describe(problem):
    index, kind, detail = problem
    where = "records" if index is None else f"record {index}"
    return f"{where}: {kind} {detail}"


def _expect_problems(impl, records, expected, what):
    got = impl.validate_records(records)
    if not isinstance(got, (list, tuple)):
        fail(f"{what}: expected a list of problems (messages), got {type(got).__name__}.")
    found = [_parse(m, what) for m in got]
    expected = set(expected)
    missed = sorted(expected - set(found), key=str)
    extra = sorted(set(found) - expected, key=str)
    if missed:
        advice = {
            "not a list": "check the type of `records` first and return at once if it is not a list",
            "not a dict": "check that each record is a dict before reading its fields",
            "missing": "every record needs 'instruction', 'input' and 'output'",
            "not a string": "each field must be a str (None, numbers and lists are not)",
            "empty": "an instruction or output that is '' or only whitespace is empty (an empty input is fine)",
            "duplicate": "a record whose instruction and input, stripped, equal an earlier record's is a duplicate "
                         "of the first record with that pair",
        }[missed[0][1]]
        fail(f"{what}: missed {len(missed)} problem(s), e.g. {_describe(missed[0])}: {advice}. "
             f"You reported {[_describe(p) for p in found]}.")
    if extra:
        fail(f"{what}: reported a problem that is not there: {_describe(extra[0])}. Input may be '', other fields are "
             "allowed, and a record that is not a dict gets only the one 'expected a dict' problem.")
    if len(found) != len(set(found)):
        fail(f"{what}: reported the same problem twice: {got}.")


GOOD = {"instruction": "Name a color.", "input": "", "output": "Blue."}


@pytest.mark.points(2)
def test_validate_records_finds_every_problem(impl):
    records = [
        GOOD,  # 0: fine
        "just a string",  # 1: not a dict
        {"instruction": "Add 2 and 3.", "output": "5"},  # 2: no input
        {"instruction": None, "input": "", "output": 5},  # 3: two wrong types
        {"instruction": "Name a color.", "input": "", "output": "Red."},  # 4: same instruction and input as 0
        {"instruction": "  ", "input": "x", "output": ""},  # 5: empty instruction and output
        {"instruction": " Name a color. ", "input": "", "output": "Green.", "source": "seed"},  # 6: duplicate of 0
        {"instruction": "Name a color.", "input": "warm", "output": "Red."},  # 7: another input: fine
    ]
    expected = {(1, "not a dict", "str"), (2, "missing", "input"), (3, "not a string", "instruction (NoneType)"),
                (3, "not a string", "output (int)"), (4, "duplicate", "0"), (5, "empty", "instruction"),
                (5, "empty", "output"), (6, "duplicate", "0")}
    _expect_problems(impl, records, expected, "`validate_records` on 8 hand-made records")


def test_validate_records_clean_data_and_wrong_containers(impl):
    clean = [GOOD, {"instruction": "Add 2 and 3.", "input": "2, 3", "output": "5"}]
    _expect_problems(impl, clean, set(), "`validate_records` on two good records")
    _expect_problems(impl, [], set(), "`validate_records([])`")
    for value, name in (({"instruction": "x"}, "dict"), ("[{...}]", "str"), (None, "NoneType")):
        _expect_problems(impl, value, {(None, "not a list", name)}, f"`validate_records({value!r})`")


def _random_records(g):
    def coin(p):
        return float(torch.rand((), generator=g)) < p

    instructions = ["Name a color.", "Add 2 and 3.", "Write a haiku.", "List three fruits."]
    records = []
    for _ in range(int(torch.randint(3, 10, (), generator=g))):
        if coin(0.1):
            records.append([1, 2] if coin(0.5) else 42)
            continue
        record = {"instruction": instructions[int(torch.randint(4, (), generator=g))],
                  "input": "" if coin(0.5) else "some input",
                  "output": "An answer."}
        for field in ("instruction", "input", "output"):
            if coin(0.1):
                del record[field]
            elif coin(0.1):
                record[field] = [None, 3, 1.5, ["x"]][int(torch.randint(4, (), generator=g))]
            elif coin(0.1):
                record[field] = ["", "   "][int(torch.randint(2, (), generator=g))]
        records.append(record)
    return records


@pytest.mark.hidden
def test_validate_records_random_match_reference(impl, ref, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        records = _random_records(g)
        expected = {_parse(m, "the reference") for m in ref.validate_records(records)}
        _expect_problems(impl, records, expected, f"`validate_records({records})`")
