"""A submission's exercise files are found flat, under exercises/ or one folder down, and copied
without following links, reading anything but regular files, or reading without end."""

import json
import os
import stat

import pytest

from grader.instructor.platforms import submission_files


def write(path, text="x = 1\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "layout", ["survey.py", "exercises/survey.py", "my-repo/exercises/survey.py", "upload/survey.py"]
)
def test_found_wherever_the_platform_put_it(tmp_path, layout):
    write(tmp_path / "sub" / layout, "ANSWER = 42\n")
    staged = submission_files.stage(tmp_path / "sub", ["survey", "gpt3"], tmp_path / "staged")
    assert (tmp_path / "staged" / "exercises" / "survey.py").read_text() == "ANSWER = 42\n"
    assert staged.found == {"survey": layout} and staged.problems == []
    assert not (tmp_path / "staged" / "exercises" / "gpt3.py").exists()


def test_exercises_folder_wins_over_a_flat_copy(tmp_path):
    write(tmp_path / "sub" / "survey.py", "old\n")
    write(tmp_path / "sub" / "exercises" / "survey.py", "new\n")
    submission_files.stage(tmp_path / "sub", ["survey"], tmp_path / "staged")
    assert (tmp_path / "staged" / "exercises" / "survey.py").read_text() == "new\n"


def test_links_are_never_followed(tmp_path):
    secret = write(tmp_path / "kit" / "solutions" / "survey.py", "THE SOLUTION\n")
    (tmp_path / "sub").mkdir()
    os.symlink(secret, tmp_path / "sub" / "survey.py")
    staged = submission_files.stage(tmp_path / "sub", ["survey"], tmp_path / "staged")
    assert staged.found == {} and "symbolic link" in staged.problems[0]
    assert not (tmp_path / "staged" / "exercises" / "survey.py").exists()

    (tmp_path / "sub2").mkdir()
    os.symlink(tmp_path / "kit" / "solutions", tmp_path / "sub2" / "exercises")  # a linked folder
    staged = submission_files.stage(tmp_path / "sub2", ["survey"], tmp_path / "staged2")
    assert staged.found == {} and "symbolic link" in staged.problems[0]


def test_only_small_regular_files_are_read(tmp_path):
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "survey.py")  # would block a plain open() forever
    write(tmp_path / "sub" / "gpt3.py", "x" * (submission_files.MAX_BYTES + 1))
    staged = submission_files.stage(tmp_path / "sub", ["survey", "gpt3"], tmp_path / "staged")
    assert staged.found == {}
    assert any("not a regular file" in p for p in staged.problems)
    assert any("larger than" in p for p in staged.problems)


def test_hard_links_and_devices_are_refused_like_in_grade(tmp_path):
    """Staging reads with grade's own reader: a hard link to the kit's solution and a link-free
    path to a device are both refused, and a device is never opened."""
    secret = write(tmp_path / "kit" / "solutions" / "survey.py", "THE SOLUTION\n")
    (tmp_path / "sub" / "exercises").mkdir(parents=True)
    os.link(secret, tmp_path / "sub" / "exercises" / "survey.py")
    if os.geteuid() == 0:  # only root may make a device node (this one is /dev/zero's)
        os.mknod(tmp_path / "sub" / "gpt3.py", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    staged = submission_files.stage(tmp_path / "sub", ["survey", "gpt3"], tmp_path / "staged")
    assert "survey" not in staged.found and any("hard link" in p for p in staged.problems)
    if os.geteuid() == 0:
        assert "gpt3" not in staged.found and any("character device" in p for p in staged.problems)
    assert not any("THE SOLUTION" in p for p in staged.problems)


def notebook(*cells):
    """An nbformat-4 notebook of (cell_type, source) pairs, sources as Jupyter writes them."""
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [
                {
                    "cell_type": kind,
                    "metadata": {},
                    "source": source.splitlines(keepends=True),
                    **(
                        {
                            "outputs": [
                                {"output_type": "stream", "name": "stdout", "text": ["ANSWER = 'from an output'\n"]}
                            ],
                            "execution_count": 1,
                        }
                        if kind == "code"
                        else {}
                    ),
                }
                for kind, source in cells
            ],
        }
    )


def test_a_notebook_is_staged_as_its_code_cells(tmp_path):
    write(
        tmp_path / "sub" / "exercises" / "survey.ipynb",
        notebook(
            ("markdown", "# Survey\nANSWER = 'from markdown'"),
            ("code", "%load_ext grader\nimport math\n"),
            ("code", "def f(x):\n    !echo hi\n    return math.sqrt(x)\n"),
            ("code", "%fmgrade check survey"),
        ),
    )
    staged = submission_files.stage(tmp_path / "sub", ["survey"], tmp_path / "staged")
    assert staged.found == {"survey": "exercises/survey.ipynb"} and staged.problems == []
    code = (tmp_path / "staged" / "exercises" / "survey.py").read_text()
    assert (
        code
        == "# %load_ext grader\nimport math\n\n\ndef f(x):\n    # !echo hi\n    return math.sqrt(x)\n\n\n# %fmgrade check survey\n"
    )
    namespace = {}
    exec(compile(code, "survey.py", "exec"), namespace)
    assert namespace["f"](9.0) == 3.0 and "ANSWER" not in namespace  # neither markdown nor outputs are code


def test_a_module_wins_over_its_notebook_and_a_broken_notebook_is_named(tmp_path):
    write(tmp_path / "sub" / "survey.py", "FROM = 'module'\n")
    write(tmp_path / "sub" / "survey.ipynb", notebook(("code", "FROM = 'notebook'\n")))
    write(tmp_path / "sub" / "gpt3.ipynb", "{not json")
    write(tmp_path / "sub" / "llama.ipynb", json.dumps({"cells": "nope"}))
    write(tmp_path / "sub" / "alpaca.ipynb", "[" * 1_000_000)  # a JSON bomb the size cap lets through
    staged = submission_files.stage(tmp_path / "sub", ["survey", "gpt3", "llama", "alpaca"], tmp_path / "staged")
    assert (tmp_path / "staged" / "exercises" / "survey.py").read_text() == "FROM = 'module'\n"
    assert staged.found == {"survey": "survey.py"}
    assert any(p.startswith("gpt3.ipynb is not a Jupyter notebook (not JSON") for p in staged.problems)
    assert any(p.startswith("llama.ipynb is not a Jupyter notebook (no list of cells") for p in staged.problems)
    assert "alpaca.ipynb is not a Jupyter notebook (nested too deeply)" in staged.problems


def test_a_notebook_is_read_like_any_learner_file(tmp_path):
    secret = write(tmp_path / "kit" / "solutions" / "survey.ipynb", notebook(("code", "THE_SOLUTION = 1\n")))
    (tmp_path / "sub").mkdir()
    os.symlink(secret, tmp_path / "sub" / "survey.ipynb")
    staged = submission_files.stage(tmp_path / "sub", ["survey"], tmp_path / "staged")
    assert staged.found == {} and "symbolic link" in staged.problems[0]
