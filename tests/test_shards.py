"""`--shard I/N`: stable by student id, a partition of any batch, and N parallel graders writing
one PostgreSQL gradebook end with exactly the rows of one unsharded run."""

import csv
import io
import os
import subprocess
import sys
import uuid

import pytest
from click.testing import CliRunner

from grader import cli, course
from grader.instructor.platforms import shards

ROOT = course.find_root(__file__)
POSTGRES_ENV = "FMGRADE_TEST_POSTGRES_URL"


@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_parse(text, expected):
    shard = shards.parse(text)
    assert (shard.index, shard.count) == expected and str(shard) == f"{expected[0]}/{expected[1]}"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0/4", "between 1 and 4"),
        ("5/4", "between 1 and 4"),
        ("1/0", "at least 1"),
        ("2", "expected I/N"),
        ("a/b", "expected I/N"),
        ("-1/4", "expected I/N"),
    ],
)
def test_bad_specs_say_what_is_wrong(text, fragment):
    with pytest.raises(shards.ShardError, match=fragment):
        shards.parse(text)


def test_shards_partition_a_batch_and_do_not_depend_on_order_or_company():
    students = [f"student{i:04d}" for i in range(1000)]
    parts = [shards.select(students, shards.Shard(i, 4)) for i in range(1, 5)]
    assert sorted(s for part in parts for s in part) == students  # each exactly once
    assert all(200 < len(part) < 300 for part in parts)  # a hash spreads them (expected 250 each)
    # Same shard whatever else is in the batch, and whatever its order: chosen by id, not position.
    alone = {s: next(i for i in range(1, 5) if shards.Shard(i, 4).holds(s)) for s in students[:50]}
    reordered = list(reversed(students[:50])) + ["newcomer"]
    for i in range(1, 5):
        assert set(shards.select(reordered, shards.Shard(i, 4))) - {"newcomer"} == {
            s for s, k in alone.items() if k == i
        }


def test_the_hash_is_fixed_across_processes():
    """Python's hash() is salted per process; the shard must not be."""
    code = "from grader.instructor.platforms import shards; print([shards.shard_of(f's{i}', 7) for i in range(20)])"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str([shards.shard_of(f"s{i}", 7) for i in range(20)])


def test_merge_unions_topics_and_refuses_a_student_twice():
    a = "student,attention,total,max_total\nbob,3,3,45\n"
    b = "student,gpt3,total,max_total\nalice,38,38,38\n"
    merged = shards.merge_summaries([("a.csv", a), ("b.csv", b)])
    assert merged == "student,attention,gpt3,total,max_total\nalice,,38,38,38\nbob,3,,3,45\n"
    with pytest.raises(shards.ShardError, match="b.csv:2: student 'bob' is also in a.csv:2"):
        shards.merge_summaries([("a.csv", a), ("b.csv", a.replace("3,3", "4,4"))])
    with pytest.raises(shards.ShardError, match="not a summary.csv"):
        shards.merge_summaries([("x.csv", "name,score\n")])


def test_pick_and_merge_commands(tmp_path):
    runner = CliRunner()
    ids = "\n".join(f"s{i}" for i in range(30)) + "\n"
    picked = [runner.invoke(cli.main, ["shards", "pick", f"{i}/3"], input=ids).output.split() for i in (1, 2, 3)]
    assert sorted(sum(picked, [])) == sorted(ids.split()) and all(picked)
    assert runner.invoke(cli.main, ["shards", "pick", "4/3"], input=ids).exit_code == 2

    (tmp_path / "one.csv").write_text("student,attention,total,max_total\nbob,3,3,45\n")
    (tmp_path / "expect.txt").write_text("bob\ncarol\n")
    result = runner.invoke(
        cli.main,
        [
            "shards",
            "merge",
            str(tmp_path / "one.csv"),
            "--output",
            str(tmp_path / "all.csv"),
            "--expect",
            str(tmp_path / "expect.txt"),
        ],
    )
    assert result.exit_code == 1 and "carol" in result.output
    assert (tmp_path / "all.csv").read_text() == "student,attention,total,max_total\nbob,3,3,45\n"
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe")
    result = runner.invoke(
        cli.main, ["shards", "merge", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2 and "bad.csv" in result.output


def test_grade_rejects_a_bad_shard_as_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli.main, ["grade", str(tmp_path), "--shard", "3/2"])
    assert result.exit_code == 2 and "between 1 and 2" in result.output


def test_an_empty_shard_writes_an_empty_summary(tmp_path):
    (tmp_path / "alice" / "exercises").mkdir(parents=True)
    mine = shards.shard_of("alice", 2)
    other = 3 - mine
    result = CliRunner().invoke(
        cli.main,
        [
            "grade",
            str(tmp_path / "alice"),
            "--kit",
            str(ROOT),
            "--topics",
            "survey",
            "--shard",
            f"{other}/2",
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "0 of 1 submission(s)" in result.output
    assert (tmp_path / "out" / "summary.csv").read_text() == "student,total,max_total,kit_hash,problem\n"


def test_merge_refuses_two_kits_and_leaves_out_failed_rows(tmp_path):
    head = "student,tiny,total,max_total,kit_hash,problem\n"
    good = head + "ana,2,2,2,k1,\n"
    failed = head + "ben,0,0,0,k1,cannot load the course\nchen,0,0,2,k1,not graded: its grading process died\n"
    old_kit = head + "dara,2,2,2,k0,\n"
    with pytest.raises(shards.ShardError, match="different kits are never merged: kit k0 .*kit k1"):
        shards.merge_summaries([("a.csv", good), ("b.csv", old_kit)])
    with pytest.raises(shards.ShardError, match="b.csv:2: student 'ben' was not graded"):
        shards.merge_summaries([("a.csv", good), ("b.csv", failed)])
    rejected = []
    assert shards.merge_summaries([("a.csv", good), ("b.csv", failed)], rejected) == good
    assert [line.split(":")[1] for line in rejected] == ["2", "3"] and "process died" in rejected[1]
    # an older summary without the columns: a 0/0 row is still no grade
    assert shards.merge_summaries([("o.csv", "student,total,max_total\nana,0,0\n")], []) == (
        "student,total,max_total\n"
    )

    (tmp_path / "a.csv").write_text(good)
    (tmp_path / "b.csv").write_text(failed)
    result = CliRunner().invoke(
        cli.main, ["shards", "merge", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--output", str(tmp_path / "m")]
    )
    assert result.exit_code == 1 and "2 row(s) left out" in result.output and "'chen' was not graded" in result.output
    assert (tmp_path / "m").read_text() == good


# --- N parallel shards against PostgreSQL ------------------------------------------------------


@pytest.fixture
def postgres_schemas():
    """Two fresh schemas on the CI server (.ci/run starts it and sets FMGRADE_TEST_POSTGRES_URL)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL: set {POSTGRES_ENV} (.ci/run sets up a local server)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from grader.instructor import gradebook

    engine = create_engine(gradebook.with_driver(url), isolation_level="AUTOCOMMIT")
    names = [f"fmgrade_shards_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with engine.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield [
            make_url(url).update_query_dict({"options": f"-csearch_path={n}"}).render_as_string(hide_password=False)
            for n in names
        ]
    finally:
        with engine.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def gradebook_rows(url):
    """Every grade in the gradebook as (student, assignment, notebook, cell, score, max_score)."""
    from nbgrader import api

    from grader.instructor import gradebook

    rows = []
    with api.Gradebook(gradebook.with_driver(url)) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    rows += [
                        (
                            submission.student.id,
                            assignment.name,
                            notebook.name,
                            grade.name,
                            grade.score,
                            grade.max_score,
                        )
                        for grade in notebook.grades
                    ]
    return sorted(rows)


def fmgrade(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", *args, "--kit", str(ROOT), "--topics", "survey", "--seed", "11"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_parallel_shards_write_exactly_the_rows_of_one_unsharded_run(tmp_path, postgres_schemas):
    sharded_url, whole_url = postgres_schemas
    solved = (ROOT / "solutions" / "survey.py").read_text()
    stub = (ROOT / "exercises" / "survey.py").read_text()
    half = solved.replace('"bert": ENCODER_ONLY,', '"bert": DECODER_ONLY,')  # a known mistake (mutants.yml)
    assert half != solved
    sources = {"ana": solved, "ben": stub, "chen": None, "dara": half, "eli": solved}
    folders = []
    for student, source in sources.items():
        (tmp_path / "subs" / student / "exercises").mkdir(parents=True)
        if source is not None:
            (tmp_path / "subs" / student / "exercises" / "survey.py").write_text(source)
        folders.append(str(tmp_path / "subs" / student))

    count = 3
    procs = [
        fmgrade(
            *folders, "--shard", f"{i}/{count}", "--gradebook", sharded_url, "--output", str(tmp_path / f"shard-{i}")
        )
        for i in range(1, count + 1)
    ]
    outcomes = [p.communicate(timeout=600) for p in procs]
    for proc, (_out, err) in zip(procs, outcomes):
        assert proc.returncode in (0, 1), err
    whole = fmgrade(*folders, "--gradebook", whole_url, "--output", str(tmp_path / "whole"))
    out, err = whole.communicate(timeout=600)
    assert whole.returncode == 1, err

    rows = gradebook_rows(whole_url)
    assert {r[0] for r in rows} == set(sources) and len(rows) == len(set(rows))
    assert any(r[4] > 0 for r in rows) and any(r[4] == 0 for r in rows)
    assert gradebook_rows(sharded_url) == rows

    merged = shards.merge_summaries([(str(p), p.read_text()) for p in sorted(tmp_path.glob("shard-*/summary.csv"))])
    assert merged == (tmp_path / "whole" / "summary.csv").read_text()
    per_shard = [
        len(list(csv.reader(io.StringIO(p.read_text())))) - 1 for p in sorted(tmp_path.glob("shard-*/summary.csv"))
    ]
    assert sum(per_shard) == len(sources) and sum(1 for n in per_shard if n) >= 2  # really split


def test_merged_summary_keeps_formula_like_ids_inert():
    """An id that a spreadsheet would run as a formula is written with an apostrophe (one CSV writer)."""
    text = 'student,attention,total,max_total\n"=HYPERLINK(""x"")",1,1,2\n-3,1,1,2\n'
    merged = shards.merge_summaries([("a.csv", text)])
    assert "'=HYPERLINK" in merged and "\n-3," in merged


# --- `--shard auto` ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, expected, named",
    [
        ({"FMGRADE_SHARD": "2/5"}, (2, 5), "FMGRADE_SHARD=2/5"),  # a GitHub matrix job, or anything
        ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3"}, (1, 3), "Slurm array task 0 of 0-2"),
        (  # sbatch --array=0-2 sets all four
            {
                "SLURM_ARRAY_TASK_ID": "2",
                "SLURM_ARRAY_TASK_COUNT": "3",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "2",
            },
            (3, 3),
            "Slurm array task 2 of 0-2",
        ),
        ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_MAX": "7"}, (2, 4), "4-7"),
        (  # --array=1-9:4 is tasks 1, 5, 9
            {
                "SLURM_ARRAY_TASK_ID": "9",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "9",
                "SLURM_ARRAY_TASK_STEP": "4",
            },
            (3, 3),
            "1-9:4",
        ),
        ({"JOB_COMPLETION_INDEX": "0", "FMGRADE_SHARD_COUNT": "4"}, (1, 4), "JOB_COMPLETION_INDEX=0"),
        ({"JOB_COMPLETION_INDEX": "3", "FMGRADE_SHARD_COUNT": "4"}, (4, 4), "FMGRADE_SHARD_COUNT=4"),
        (  # said outright wins over what the engine sets
            {"FMGRADE_SHARD": "1/2", "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"},
            (1, 2),
            "FMGRADE_SHARD",
        ),
    ],
)
def test_shard_auto_reads_each_engine(environ, expected, named):
    shard, where = shards.from_environment(environ)
    assert (shard.index, shard.count) == expected and named in where


@pytest.mark.parametrize(
    "environ, fragment",
    [
        ({}, "SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT"),
        ({"PATH": "/bin", "FMGRADE_SHARD": "  "}, "JOB_COMPLETION_INDEX with FMGRADE_SHARD_COUNT"),
        ({"FMGRADE_SHARD": "3/2"}, "FMGRADE_SHARD: '3/2': the shard I must be between 1 and 2"),
        ({"JOB_COMPLETION_INDEX": "1"}, "needs the number of shards in FMGRADE_SHARD_COUNT"),
        ({"JOB_COMPLETION_INDEX": "4", "FMGRADE_SHARD_COUNT": "4"}, "not a shard 1..N (shard 5 of 4)"),
        ({"JOB_COMPLETION_INDEX": "x", "FMGRADE_SHARD_COUNT": "4"}, "JOB_COMPLETION_INDEX='x': expected a whole"),
        ({"SLURM_ARRAY_TASK_ID": "1"}, "needs SLURM_ARRAY_TASK_COUNT, or SLURM_ARRAY_TASK_MIN and"),
        (  # --array=1,4,9: three tasks spanning 1-9, which no I/N describes
            {
                "SLURM_ARRAY_TASK_ID": "4",
                "SLURM_ARRAY_TASK_COUNT": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "9",
            },
            "has 3 tasks, not 9",
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "9",
                "SLURM_ARRAY_TASK_STEP": "4",
            },
            "not on the array's step 4",
        ),
    ],
)
def test_shard_auto_names_the_variables_when_it_cannot_tell(environ, fragment):
    with pytest.raises(shards.ShardError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        shards.from_environment(environ)


def test_shard_auto_every_task_of_an_array_gets_one_shard_of_a_partition():
    """Three array tasks each pick their shard from the environment alone; together they pick
    every student exactly once."""
    students = [f"s{i}" for i in range(60)]
    picked = []
    for task in range(3):
        environ = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "2"}
        picked += shards.select(students, shards.from_environment(environ)[0])
    assert sorted(picked) == sorted(students)


def test_shard_auto_on_the_command_line(monkeypatch):
    ids = "\n".join(f"s{i}" for i in range(30)) + "\n"
    for name in ("FMGRADE_SHARD", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    missing = runner.invoke(cli.main, ["shards", "pick", "auto"], input=ids)
    assert missing.exit_code == 2 and "--shard auto found no shard" in missing.output
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    monkeypatch.setenv("FMGRADE_SHARD_COUNT", "3")
    auto = runner.invoke(cli.main, ["shards", "pick", "auto"], input=ids)
    assert auto.exit_code == 0, auto.output
    assert "shard 2/3 (JOB_COMPLETION_INDEX=1 of FMGRADE_SHARD_COUNT=3)" in auto.output
    by_hand = runner.invoke(cli.main, ["shards", "pick", "2/3"], input=ids).output.split()
    assert auto.stdout.split() == by_hand  # the ids alone on stdout; where the shard came from on stderr
