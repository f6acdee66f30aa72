"""CSV text for spreadsheets: the one writer of every CSV fmgrade produces (summary.csv, the class
report's tables, merged shard summaries).

A cell that starts like a formula (`=`, `+`, `-`, `@`, a tab or a carriage return) and is not a
number is written with a leading apostrophe, so a student id or a message never runs as a formula
when the instructor opens the file (CWE-1236).
"""

import csv
import io

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(header, rows):
    """The CSV text (lines end in \\n) of `header` and `rows`, every cell made inert."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([inert(cell) for cell in header])
    writer.writerows([inert(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def inert(cell):
    """`cell` as a spreadsheet shows it without evaluating it."""
    if not isinstance(cell, str) or not cell.startswith(FORMULA_STARTS) or _is_number(cell):
        return cell
    return "'" + cell


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
