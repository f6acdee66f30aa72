"""Gradescope: autograder.zip holds setup.sh, run_autograder, its settings and the kit; a run
always leaves a results.json, naming the reason when grading could not happen; limits fit
Gradescope's default container."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.instructor import release
from grader.instructor.platforms import gradescope

ROOT = course.find_root(__file__)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return release.build_kit(course.load(ROOT), tmp_path_factory.mktemp("k") / "kit")


@pytest.fixture(scope="module")
def bundle(kit, tmp_path_factory):
    return gradescope.build_bundle(
        kit,
        tmp_path_factory.mktemp("z") / "autograder.zip",
        gradescope.Config(topics=("survey",), hidden_visibility="hidden"),
    )


def test_bundle_holds_the_scripts_settings_and_kit(bundle, kit):
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        config = json.loads(archive.read(gradescope.CONFIG_FILE))
        setup = archive.read("setup.sh").decode()
    assert {
        "setup.sh",
        "run_autograder",
        gradescope.CONFIG_FILE,
        "kit/course.yml",
        "kit/pyproject.toml",
        "kit/solutions/survey.py",
        "kit/grader/instructor/platforms/gradescope.py",
    } <= set(names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755 and modes["kit/course.yml"] == 0o644
    assert not [n for n in names if "__pycache__" in n]
    assert config["topics"] == ["survey"] and config["hidden_visibility"] == "hidden" and config["memory_mb"] == 896
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert '"$VENV/bin/python3" -m pip install -q "$SOURCE/kit"' in setup
    assert "kit/" + "tests/checks/survey/test_families.py" in names  # hidden checks travel in the (private) zip


def test_bundle_is_reproducible(bundle, kit, tmp_path):
    again = gradescope.build_bundle(
        kit, tmp_path / "again.zip", gradescope.Config(topics=("survey",), hidden_visibility="hidden")
    )
    assert again.read_bytes() == bundle.read_bytes()


def test_scripts_are_valid_shell_and_agree_on_the_python(tmp_path):
    setup = (gradescope.TEMPLATES / "gradescope_setup.sh").read_text()
    run = (gradescope.TEMPLATES / "gradescope_run_autograder").read_text()
    for name in ("gradescope_setup.sh", "gradescope_run_autograder"):
        subprocess.run(["bash", "-n", str(gradescope.TEMPLATES / name)], check=True)
        if shutil.which("shellcheck"):
            done = subprocess.run(["shellcheck", str(gradescope.TEMPLATES / name)], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout
    assert 'VENV="$ROOT/fmgrade-venv"' in setup and 'PYTHON="$ROOT/fmgrade-venv/bin/python3"' in run
    assert 'ROOT="${AUTOGRADER_ROOT:-/autograder}"' in setup and 'ROOT="${AUTOGRADER_ROOT:-/autograder}"' in run


def test_release_writes_the_bundle_only_with_a_kit(tmp_path, monkeypatch):
    result = CliRunner().invoke(cli.main, ["release", str(tmp_path / "out"), "--gradescope", str(tmp_path / "a.zip")])
    assert result.exit_code == 2 and "--gradescope needs --kit" in result.output
    with pytest.raises(gradescope.BundleError, match="not a grading kit"):
        gradescope.build_bundle(tmp_path, tmp_path / "a.zip")


def test_limits_fit_the_container(kit):
    loaded = course.load(kit)
    fitted = gradescope.fit_limits(loaded, gradescope.Config(memory_mb=896, cpu_share=0.5))
    for before, after in zip(loaded.topics, fitted.topics):
        assert after.limits.memory_mb == min(before.limits.memory_mb, 896)
        assert after.limits.call_timeout == 2 * before.limits.call_timeout
        assert after.limits.topic_timeout == 2 * before.limits.topic_timeout
    assert fitted.topic("attention").limits.memory_mb == 896 < loaded.topic("attention").limits.memory_mb
    assert [t.id for s in fitted.sections for t in s.topics] == [t.id for t in fitted.topics]
    lower = gradescope.fit_limits(fitted, gradescope.Config(memory_mb=2048, cpu_share=1))
    assert lower.topic("attention").limits.memory_mb == 896  # never raised


def test_a_run_that_cannot_grade_still_writes_results_naming_why(tmp_path):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / gradescope.CONFIG_FILE).write_text('{"hidden_visibility": "after_published"}')
    gradescope.run(tmp_path)  # no kit in source/
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    assert data["score"] == 0 and isinstance(data["execution_time"], int)
    failed = [t for t in data["tests"] if t["name"] == "autograder failed"]
    assert len(failed) == 1 and "course.yml" in failed[0]["output"] and failed[0]["visibility"] == "visible"

    (tmp_path / "source" / gradescope.CONFIG_FILE).write_text('{"hidden_visibilty": "visible"}')
    gradescope.run(tmp_path)
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    assert "unknown setting(s) hidden_visibilty" in data["tests"][-1]["output"]


@pytest.mark.parametrize(
    "python, reason",
    [
        (None, "setup.sh did not finish"),
        ("#!/bin/sh\nexit 3\n", "exit status 3"),
    ],
)
def test_run_autograder_writes_results_when_python_itself_fails(tmp_path, python, reason):
    if python is not None:
        venv = tmp_path / "fmgrade-venv" / "bin"
        venv.mkdir(parents=True)
        (venv / "python3").write_text(python)
        (venv / "python3").chmod(0o755)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text('{"score": 99}')  # a stale file is never kept
    subprocess.run(
        ["bash", str(gradescope.TEMPLATES / "gradescope_run_autograder")],
        check=True,
        env={**os.environ, "AUTOGRADER_ROOT": str(tmp_path)},
        capture_output=True,
    )
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    assert data["score"] == 0 and reason in data["output"]
    assert data["tests"][0]["name"] == "autograder failed" and reason in data["tests"][0]["output"]


def prepared_root(bundle, tmp_path):
    """A folder laid out like /autograder after setup.sh: source/ (the bundle) and the venv.

    Offline, the venv's python3 is this Python (which has torch), started with the kit's grader
    first on its path, instead of a venv that downloads both. (A `--system-site-packages` venv
    would see only the base interpreter's packages, and a fresh machine has torch in the
    project's venv alone.)"""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    python = root / "fmgrade-venv" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    kit = shlex.quote(str(root / "source" / "kit"))
    python.write_text(f'#!/bin/sh\nPYTHONPATH={kit} exec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    (root / "submission").mkdir()
    return root


def as_notebook(source):
    """The module as Jupyter saves a percent-format file: each `# %%` cell a code cell."""
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": cell.splitlines(keepends=True),
        }
        for cell in source.split("# %%")
    ]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


@pytest.mark.slow
@pytest.mark.parametrize("upload", ["survey.py", "survey.ipynb"])
def test_run_autograder_end_to_end_on_a_flat_upload(bundle, tmp_path, upload):
    root = prepared_root(bundle, tmp_path)
    solution = (ROOT / "solutions" / "survey.py").read_text()
    (root / "submission" / upload).write_text(solution if upload.endswith(".py") else as_notebook(solution))
    (root / "submission" / "notes.txt").write_text("not graded")
    done = subprocess.run(
        [str(root / "source" / "run_autograder")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "AUTOGRADER_ROOT": str(root)},
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == data["max_score"] > 0, data["output"]
    assert f"graded {upload} as survey" in data["output"]
    assert isinstance(data["execution_time"], int) and data["execution_time"] >= 0
    hidden = [t for t in data["tests"] if t["visibility"] != "visible"]
    assert hidden and {t["visibility"] for t in hidden} == {"hidden"}  # as the bundle was told
    assert not [t for t in data["tests"] if t["name"] == "autograder failed"]


# --- reproducible grades, private bundle -------------------------------------------------


def test_the_bundle_is_private_and_carries_the_kit_secret(bundle, kit):
    from grader.instructor import kit as kit_mod

    assert bundle.stat().st_mode & 0o777 == 0o600  # it holds the solutions
    with zipfile.ZipFile(bundle) as archive:
        assert archive.read(f"kit/{kit_mod.SECRET_FILE}") == kit_mod.secret_path(kit).read_bytes()


def test_a_kit_without_its_secret_makes_no_bundle(make_tiny, tmp_path):
    folder = make_tiny(tmp_path / "kit")
    with pytest.raises(gradescope.BundleError, match="has no secret"):
        gradescope.build_bundle(folder, tmp_path / "autograder.zip")
    assert not (tmp_path / "autograder.zip").exists()


@pytest.mark.parametrize(
    "users, expected",
    [
        ([{"email": "a@x", "id": 7, "sid": "s1"}], "s1"),
        ([{"email": "b@x", "id": 8, "sid": ""}, {"email": "a@x", "id": 7, "sid": None}], "a@x+b@x"),
        ([{"id": 9}], "9"),
        ([], None),
    ],
)
def test_the_submitter_id_is_stable_across_resubmissions(tmp_path, users, expected):
    (tmp_path / gradescope.METADATA_FILE).write_text(json.dumps({"users": users, "id": 123}))
    assert gradescope.submitter_id(tmp_path) == expected
    assert gradescope.submitter_id(tmp_path / "missing") is None


def test_every_resubmission_gets_the_submitters_own_seed(make_tiny, tmp_path):
    from grader.instructor import kit as kit_mod

    root = tmp_path / "autograder"
    kit = make_tiny(root / "source" / "kit")
    secret = kit_mod.make_secret(kit)
    (root / "submission").mkdir()
    (root / "submission" / "tiny.py").write_text("def double(x):\n    return 2 * x if x % 2 else x\n")
    (root / gradescope.METADATA_FILE).write_text(json.dumps({"users": [{"email": "ana@x", "sid": "ana"}]}))
    config = gradescope.Config(isolation="process")
    outcomes = [gradescope.grade_upload(root, config) for _ in range(2)]
    seed = kit_mod.seed_for(secret, "ana")
    assert [o.seed for o in outcomes] == [seed, seed]
    assert [o.report.score for o in outcomes] == [2 if seed % 2 else 1] * 2
    data = json.loads(gradescope.results_json(outcomes[0], config, 1.0))
    assert data["extra_data"] == {"seed": seed, "kit_hash": kit_mod.kit_hash(kit)}


def test_a_missing_upload_names_what_was_uploaded_instead(make_tiny, tmp_path):
    from grader.instructor import kit as kit_mod

    root = tmp_path / "autograder"
    kit_mod.make_secret(make_tiny(root / "source" / "kit"))
    (root / "submission").mkdir()
    (root / "submission" / "tiny (1).py").write_text("def double(x):\n    return 2 * x\n")
    (root / "submission" / "GPT3.py").write_text("x = 1\n")
    outcome = gradescope.grade_upload(root, gradescope.Config(isolation="process"))
    assert outcome.report.score == 0
    assert any("not found: tiny.py" in n and "'GPT3.py', 'tiny (1).py'" in n for n in outcome.notes), outcome.notes
