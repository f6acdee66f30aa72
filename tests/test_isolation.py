"""The isolation policy: `grade` runs learner code only in a sandbox (or with an explicit
`--isolation process`, which every report names); `check` takes the strongest level there is.
The probes are replaced here by what a machine without them would answer."""

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader import formats as reporters
from grader.learner import rendering as report_text
from grader.results import CheckResult, Report, TopicResult
from grader.sandbox import isolation

ROOT = course.find_root(__file__)


@pytest.fixture
def bare_machine(monkeypatch):
    """No bwrap, no namespaces, not root: what a plain container or laptop offers."""
    monkeypatch.setattr(
        isolation,
        "_probes",
        {
            "bwrap": (None, "bwrap is not installed"),
            "unshare": (None, "unshare cannot make namespaces here (EPERM)"),
            "mounts": False,
        },
    )
    monkeypatch.setattr(isolation, "PLATFORM", isolation.Platform("linux", pass_fds=True, posix=True))
    monkeypatch.setattr(isolation.Platform, "root", property(lambda self: False))
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)


@pytest.fixture
def open_dir():
    """A folder others may enter (pytest's tmp_path lies in a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="fmgrade-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_grading_without_a_sandbox_is_refused_with_one_line(bare_machine):
    with pytest.raises(isolation.IsolationUnavailable) as info:
        isolation.for_grading("auto", [ROOT])
    message = str(info.value)
    assert "\n" not in message
    assert "bwrap is not installed" in message and "apt-get install bubblewrap" in message
    assert "--isolation process" in message and "every report" in message


def test_bwrap_installed_but_refused_gets_the_namespace_fix(bare_machine, monkeypatch):
    monkeypatch.setattr(
        isolation,
        "_probes",
        dict(
            isolation._probes,
            bwrap=(None, "bwrap cannot make namespaces here (bwrap: setting up uid map: Permission denied)"),
        ),
    )
    monkeypatch.setattr(isolation.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(isolation.IsolationUnavailable) as info:
        isolation.for_grading("auto", [ROOT])
    assert "apparmor_restrict_unprivileged_userns=0" in str(info.value) and "root" in str(info.value)


def test_an_explicit_process_level_is_allowed_and_check_falls_back(bare_machine):
    assert isolation.for_grading("process", [ROOT]) == "process"
    assert isolation.for_checking("auto") == "process"
    with pytest.raises(isolation.IsolationUnavailable, match="--isolation bwrap is not possible here: bwrap is not"):
        isolation.for_grading("bwrap", [ROOT])


def test_grade_exits_2_naming_the_fix(bare_machine, tmp_path):
    (tmp_path / "alice" / "exercises").mkdir(parents=True)
    result = CliRunner().invoke(
        cli.main, ["grade", str(tmp_path / "alice"), "--kit", str(ROOT), "--topics", "attention"]
    )
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "apt-get install bubblewrap" in error[0] and "--isolation process" in error[0]
    assert "Traceback" not in result.output


def test_user_level_needs_root_and_a_kit_others_cannot_read(monkeypatch, open_dir):
    kit = open_dir / "kit"
    for part in ("solutions", "tests"):
        (kit / part).mkdir(parents=True, mode=0o755)
    kit.chmod(0o755)
    monkeypatch.setattr(isolation, "own_user_plan", lambda: (True, []))
    assert "readable by other users" in isolation.unavailable_reason("user", [kit])
    kit.chmod(0o700)
    assert isolation.unavailable_reason("user", [kit]) is None
    monkeypatch.setattr(isolation, "own_user_plan", lambda: (False, "the grader is not root"))
    assert "not root" in isolation.unavailable_reason("user", [kit])


def test_grade_takes_the_user_level_only_when_asked_for_it(bare_machine, monkeypatch, open_dir):
    """`user` hides the kit but not the rest of the machine (a checkout or a clone of the course
    elsewhere): like `process`, `grade` runs there only on an explicit --isolation user."""
    kit = open_dir / "kit"
    kit.mkdir(mode=0o700)
    kit.chmod(0o700)
    monkeypatch.setattr(isolation, "own_user_plan", lambda: (True, []))
    assert isolation.unavailable_reason("user", [kit]) is None  # the level works here...
    with pytest.raises(isolation.IsolationUnavailable) as info:
        isolation.for_grading("auto", [kit])  # ...but is not chosen on its own
    assert "--isolation user" in str(info.value) and "--isolation process" in str(info.value)
    assert isolation.for_grading("user", [kit]) == "user"


def test_python_in_a_0700_home_is_shown_by_covering_the_home(open_dir):
    """A user id of its own cannot enter a 0700 home; covered by a 0755 tmpfs in a private
    mount namespace, with Python bound back, it can run Python and sees nothing else there."""
    home = open_dir / "home"
    python = home / ".pyenv" / "versions" / "3.11"
    python.mkdir(parents=True)
    home.chmod(0o700)
    for folder in (home / ".pyenv", home / ".pyenv" / "versions", python):
        folder.chmod(0o755)
    assert not isolation.others_can_reach(python)
    assert isolation.blocking_folders([python]) == [str(home)]
    assert isolation.others_can_reach(python, stubs=[str(home)])


def test_bwrap_is_run_by_the_absolute_path_found_on_the_graders_path(monkeypatch, tmp_path):
    real = isolation.shutil.which("bwrap")
    if real is None:
        pytest.skip("bwrap is not installed")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "bwrap").symlink_to(real)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(isolation, "_probes", {})
    path, why = isolation.bwrap_path()
    assert path == str(tmp_path / "bin" / "bwrap") and why is None, why


def _report(level):
    check = CheckResult(id="test_a.py::test_x", exercise="x", status="passed", score=1, max_score=1)
    return Report([TopicResult("attention", [check], isolation=level, seed=1)])


def test_every_report_names_the_level():
    report = _report("process")
    assert json.loads(reporters.to_json(report))["topics"][0]["isolation"] == "process"
    props = {p.get("name"): p.get("value") for p in ET.fromstring(reporters.to_junit(report)).iter("property")}
    assert props["isolation"] == "process"
    assert "isolation: process" in json.loads(reporters.to_gradescope(report))["output"]
    text = report_text.topic_report(course.load(ROOT), report.topics[0])
    assert "isolation: process (no sandbox)" in text


def test_the_sandbox_levels_need_no_note_in_the_text_report():
    for level in ("bwrap", "namespaces"):
        assert "note:" not in report_text.topic_report(course.load(ROOT), _report(level).topics[0])


@pytest.mark.slow
def test_grade_with_explicit_process_isolation_warns_and_the_report_says_so(tmp_path):
    submission = tmp_path / "bob"
    (submission / "exercises").mkdir(parents=True)
    (submission / "exercises" / "attention.py").write_text(ROOT.joinpath("exercises", "attention.py").read_text())
    result = CliRunner().invoke(
        cli.main,
        [
            "grade",
            str(submission),
            "--kit",
            str(ROOT),
            "--topics",
            "attention",
            "--isolation",
            "process",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "warning: --isolation process" in result.output
    assert "isolation: process (no sandbox)" in result.output
