"""A batch an instructor can trust: each submission reaches the gradebook as it finishes, the
gradebook is checked before grading, `--resume` picks up where an interrupted batch stopped
(nothing lost, nothing doubled), and `gradebook import` loads JSON results later."""

import json

import pytest
from click.testing import CliRunner

from grader import cli, formats, interrupts
from grader import course as course_mod
from grader.instructor import grade, kit
from grader.results import CheckResult, Report, TopicResult

pytest.importorskip("nbgrader")

ORIGINAL = grade.grade_submission  # what the spies below call, however many are set

SOURCES = {
    "alice": "def double(x):\n    return 2 * x\n",
    "bob": "def double(x):\n    return 2 * x if x % 2 else x\n",
    "carol": "def double(x):\n    return x\n",
}


@pytest.fixture
def tiny_kit(make_tiny, tmp_path):
    folder = make_tiny(tmp_path / "kit")
    kit.make_secret(folder)
    return folder


def submissions(tmp_path):
    folders = []
    for name, source in SOURCES.items():
        (tmp_path / "subs" / name / "exercises").mkdir(parents=True)
        (tmp_path / "subs" / name / "exercises" / "tiny.py").write_text(source)
        folders.append(tmp_path / "subs" / name)
    return folders


def run(*args):
    return CliRunner().invoke(cli.main, list(map(str, args)), catch_exceptions=False)


def gradebook_rows(url):
    """(sorted (student, assignment, cell, score, timestamp) rows, row counts of the tables)."""
    from nbgrader import api

    with api.Gradebook(url) as gb:
        rows = sorted(
            (s.student.id, s.assignment.name, g.name, g.auto_score, s.timestamp)
            for s in gb.db.query(api.SubmittedAssignment)
            for notebook in s.notebooks
            for g in notebook.grades
        )
        counts = {m.__name__: gb.db.query(m).count() for m in (api.Student, api.SubmittedAssignment, api.Grade)}
    return rows, counts


def graded_names(monkeypatch, stop_at=None):
    """Spy on grade_submission: the names it grades; Ctrl-C (KeyboardInterrupt) at `stop_at`."""
    real, names = ORIGINAL, []

    def spy(course, sub, *args, **kwargs):
        if sub.name == stop_at:
            raise KeyboardInterrupt
        names.append(sub.name)
        return real(course, sub, *args, **kwargs)

    monkeypatch.setattr(grade, "grade_submission", spy)
    return names


def test_an_interrupted_batch_resumed_gives_exactly_the_rows_of_an_uninterrupted_one(tiny_kit, tmp_path, monkeypatch):
    subs = submissions(tmp_path)
    url, whole_url = f"sqlite:///{tmp_path / 'gb.db'}", f"sqlite:///{tmp_path / 'whole.db'}"
    out, whole = tmp_path / "out", tmp_path / "whole"
    common = ["--kit", tiny_kit, "--format", "json", "--gradebook"]

    names = graded_names(monkeypatch, stop_at="bob")
    first = run("grade", *subs, *common, url, "--output", out)
    assert first.exit_code == interrupts.EXIT_CODE, first.output
    assert names == ["alice"] and sorted(p.name for p in out.glob("*.json")) == ["alice.json"]
    rows, _ = gradebook_rows(url)
    assert {r[0] for r in rows} == {"alice"}  # written when alice finished, not at the end

    names = graded_names(monkeypatch)
    resumed = run("grade", *subs, *common, url, "--output", out, "--resume")
    assert resumed.exit_code == 1, resumed.output
    assert names == ["bob", "carol"] and "1 submission(s) already graded" in resumed.output

    names = graded_names(monkeypatch)
    assert run("grade", *subs, *common, whole_url, "--output", whole).exit_code == 1
    assert gradebook_rows(url) == gradebook_rows(whole_url)
    assert gradebook_rows(url)[1] == {"Student": 3, "SubmittedAssignment": 3, "Grade": 3}
    for student in SOURCES:
        assert (out / f"{student}.json").read_bytes() == (whole / f"{student}.json").read_bytes()
    assert (out / "summary.csv").read_text() == (whole / "summary.csv").read_text()

    names = graded_names(monkeypatch)  # everything is done: a second --resume grades nothing
    assert run("grade", *subs, *common, url, "--output", out, "--resume").exit_code == 1
    assert names == [] and gradebook_rows(url) == gradebook_rows(whole_url)


def test_resume_grades_again_what_another_kit_or_seed_or_a_failed_run_produced(tiny_kit, tmp_path):
    subs = submissions(tmp_path)
    seeds = grade.seeds_for(course_mod.load(tiny_kit))
    out = tmp_path / "out"
    out.mkdir()
    report = Report([TopicResult("tiny", [CheckResult("t::c", "double", "passed", 1, 1)])])
    written = {
        "alice": formats.to_json(report, student="alice", seed=seeds("alice"), kit_hash="k1"),
        "bob": formats.to_json(report, student="bob", seed=seeds("bob") + 1, kit_hash="k1"),
        "carol": formats.to_json(report, student="carol", seed=seeds("carol"), kit_hash="k2"),
    }
    for student, text in written.items():
        (out / f"{student}.json").write_text(text)
    assert list(grade.finished_before(out, subs, seeds, "k1")) == ["alice"]
    failed = Report(report.topics, problem="not graded: its grading process died")
    (out / "alice.json").write_text(formats.to_json(failed, student="alice", seed=seeds("alice"), kit_hash="k1"))
    (out / "carol.json").write_text("{torn")
    assert grade.finished_before(out, subs, seeds, "k1") == {}


def test_an_unreachable_gradebook_fails_before_any_grading(tiny_kit, tmp_path, monkeypatch):
    names = graded_names(monkeypatch)
    bad = f"sqlite:///{tmp_path / 'no' / 'such' / 'gb.db'}"
    result = run("grade", *submissions(tmp_path), "--kit", tiny_kit, "--gradebook", bad)
    assert result.exit_code == 2 and "cannot open" in result.output and "nothing was graded" in result.output
    assert names == []


def test_resume_needs_json_results_in_a_folder(tiny_kit, tmp_path):
    result = run("grade", *submissions(tmp_path), "--kit", tiny_kit, "--resume", "--output", tmp_path / "out")
    assert result.exit_code == 2 and "--resume needs --format json" in result.output


def results_folder(folder, kit_hash="k1", **scores):
    folder.mkdir(parents=True, exist_ok=True)
    for student, score in scores.items():
        checks = [CheckResult("t::c", "double", "passed" if score else "failed", score, 2)]
        text = formats.to_json(Report([TopicResult("tiny", checks)]), student=student, seed=3, kit_hash=kit_hash)
        (folder / f"{student}.json").write_text(text)
    (folder / "summary.csv").write_text("student,total,max_total\n")  # left out of an import
    return folder


def test_gradebook_import_loads_results_once_however_often_it_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    results = results_folder(tmp_path / "out", alice=2, bob=0)
    first = run("gradebook", "import", results, "--gradebook", url)
    assert first.exit_code == 0, first.output
    assert "recorded 2 result(s)" in first.output
    rows, counts = gradebook_rows(url)
    assert [(r[0], r[3]) for r in rows] == [("alice", 2.0), ("bob", 0.0)]
    assert run("gradebook", "import", results / "alice.json", results / "bob.json", "--gradebook", url).exit_code == 0
    assert gradebook_rows(url) == (rows, counts)


def test_gradebook_import_never_mixes_kits_nor_reads_foreign_files(tmp_path):
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    old = results_folder(tmp_path / "old", kit_hash="k0", alice=1)
    new = results_folder(tmp_path / "new", kit_hash="k1", bob=2)
    mixed = run("gradebook", "import", old, new, "--gradebook", url)
    assert mixed.exit_code == 2 and "different kits are never mixed" in mixed.output
    assert "kit k0" in mixed.output and "kit k1" in mixed.output
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"score": 1}))
    refused = run("gradebook", "import", foreign, "--gradebook", url)
    assert refused.exit_code == 2 and "not results of `fmgrade grade --format json`" in refused.output
    assert not (tmp_path / "gb.db").exists()  # refused before the gradebook is touched
