"""A learner's Jupyter notebook (.ipynb) as the Python module it stands for.

An exercise file is a percent-format notebook: opened in Jupyter (jupytext) and saved as .ipynb,
its code cells in order are the module again. Platforms receive such uploads (nbgrader, a
Gradescope upload), so staging turns one into TOPIC.py: code cells joined in order, markdown and
raw cells dropped, outputs never read as code. IPython-only lines (`%magic`, `!shell`) become
comments, so a notebook that ran `%fmgrade check attention` still imports; line numbers of the
code are kept within each cell. The JSON is parsed with `json` only: a notebook is data.
"""

import json

MAX_NOTEBOOK_BYTES = 8 * 1024 * 1024  # outputs (plots) make notebooks larger than their code


class NotANotebook(ValueError):
    """The file is not a notebook this reader understands; the message says why."""


def module_source(data, shown):
    """The Python source of the notebook bytes `data` (named `shown` in messages)."""
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotANotebook(f"{shown} is not a Jupyter notebook (not JSON: {exc})") from None
    except RecursionError:  # "[[[[..." a million deep
        raise NotANotebook(f"{shown} is not a Jupyter notebook (nested too deeply)") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise NotANotebook(f"{shown} is not a Jupyter notebook (no list of cells; nbformat 4 is read)")
    parts = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise NotANotebook(f"{shown}: cell {number} is not a notebook cell")
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise NotANotebook(f"{shown}: cell {number} has a source that is not text")
        parts.append("\n".join(_without_magics(source.splitlines())))
    return "\n\n\n".join(part for part in parts if part.strip()) + "\n"


def _without_magics(lines):
    for line in lines:
        stripped = line.lstrip()
        yield f"{line[: len(line) - len(stripped)]}# {stripped}" if stripped.startswith(("%", "!")) else line
