"""grader.spreadsheet: the one CSV writer; nothing a learner controls runs as a formula."""

import csv
import io

import pytest

from grader.spreadsheet import csv_text, inert


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\r=1", '=HYPERLINK("http://x")'])
def test_formula_like_text_is_made_inert(cell):
    assert inert(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["alice", "-1.5", "+3", "12", "", 7, 2.5, None])
def test_names_and_numbers_are_kept(cell):
    assert inert(cell) == cell


def test_csv_text_round_trips_through_a_reader():
    text = csv_text(["student", "total"], [["=evil()", "3"], ["bob, jr", "-1"]])
    assert list(csv.reader(io.StringIO(text))) == [["student", "total"], ["'=evil()", "3"], ["bob, jr", "-1"]]
