"""A grade is a fact: each submission's hidden seed is an HMAC of the kit's secret and the
student id, the same on every run, `--jobs` value and shard; `--seed` replays one; results
say the seed and the kit's hash; a folder that is not a kit is refused."""

import hashlib
import hmac
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from grader import cli, formats
from grader import course as course_mod
from grader.instructor import grade, kit
from grader.results import CheckResult, Report, TopicResult

# double() is right for odd inputs only: its hidden check (on `seed`) passes exactly when the seed is odd
PARITY = "def double(x):\n    return 2 * x if x % 2 else x\n"
SOLVED = "def double(x):\n    return 2 * x\n"


@pytest.fixture
def tiny_kit(make_tiny, tmp_path):
    return make_tiny(tmp_path / "kit")


def submissions(tmp_path, sources):
    folders = []
    for name, source in sources.items():
        folder = tmp_path / "subs" / name
        (folder / "exercises").mkdir(parents=True)
        (folder / "exercises" / "tiny.py").write_text(source)
        folders.append(folder)
    return folders


def run(*args):
    return CliRunner().invoke(cli.main, ["grade", *map(str, args)], catch_exceptions=False)


# --- the rule ----------------------------------------------------------------------------------


def test_the_seed_is_an_hmac_of_the_secret_and_the_student_id():
    secret = b"ab" * 32
    expected = int.from_bytes(hmac.new(secret, b"alice", hashlib.sha256).digest()[:8], "big") % 2**31
    assert kit.seed_for(secret, "alice") == expected == kit.seed_for(secret, "alice")
    assert kit.seed_for(secret, "bob") != expected
    assert kit.seed_for(b"cd" * 32, "alice") != expected


def test_the_secret_is_private_kept_and_never_read_through_a_link(tmp_path):
    first = kit.make_secret(tmp_path)
    path = kit.secret_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600 and len(first) == 64
    assert kit.make_secret(tmp_path) == first == kit.read_secret(tmp_path)
    path.write_text("not a secret\n")
    with pytest.raises(kit.KitError, match="not a kit secret"):
        kit.read_secret(tmp_path)
    path.unlink()
    other = tmp_path / "elsewhere"
    other.write_text("ab" * 32)
    path.symlink_to(other)
    with pytest.raises(kit.KitError, match="not a regular file"):
        kit.read_secret(tmp_path)


def test_seeds_come_from_the_secret_unless_overridden_and_a_shard_never_makes_one(tiny_kit):
    loaded = course_mod.load(tiny_kit)
    assert grade.seeds_for(loaded, override=5)("anyone") == 5
    with pytest.raises(kit.KitError, match="has no secret"):
        grade.seeds_for(loaded, create=False)
    assert not kit.secret_path(tiny_kit).exists()
    seeds = grade.seeds_for(loaded)
    assert seeds("alice") == kit.seed_for(kit.read_secret(tiny_kit), "alice")


def test_the_kit_hash_follows_checks_and_solutions_not_permissions(tiny_kit):
    before = kit.kit_hash(tiny_kit)
    kit.protect(tiny_kit)
    assert kit.kit_hash(tiny_kit) == before
    (tiny_kit / "README.md").write_text("not graded\n")
    assert kit.kit_hash(tiny_kit) == before
    solution = tiny_kit / "solutions" / "tiny.py"
    solution.write_text(solution.read_text().replace("2 * x", "x + x"))
    assert kit.kit_hash(tiny_kit) != before


# --- every format says the seed and the kit --------------------------------------------------


def test_every_format_carries_the_seed_and_the_kit_hash():
    report = Report([TopicResult("tiny", [CheckResult("t.py::c", "double", "passed", 1, 1)], "bwrap", 42)])
    data = json.loads(formats.to_json(report, student="alice", seed=42, kit_hash="f00d"))
    assert (data["seed"], data["kit_hash"]) == (42, "f00d")
    junit = formats.to_junit(report, seed=42, kit_hash="f00d")
    assert '<property name="seed" value="42"' in junit and '<property name="kit_hash" value="f00d"' in junit
    scope = json.loads(formats.to_gradescope(report, seed=42, kit_hash="f00d"))
    assert scope["extra_data"] == {"seed": 42, "kit_hash": "f00d"}
    assert "42" not in scope["output"]  # students see the output; the seed stays with the instructor
    failed = formats.to_junit(Report(problem="boom"), seed=7, kit_hash="f00d")
    assert '<property name="seed" value="7"' in failed


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strip", ["solutions", "hidden"])
def test_a_folder_without_solutions_or_hidden_checks_is_refused_as_a_kit(tiny_kit, tmp_path, strip):
    if strip == "solutions":
        shutil.rmtree(tiny_kit / "solutions")
        expected = "no solutions/tiny.py"
    else:
        checks = tiny_kit / "tests" / "checks" / "tiny" / "test_tiny.py"
        checks.write_text(checks.read_text().split("@pytest.mark.hidden")[0])
        expected = "no check of tiny is hidden"
    (sub,) = submissions(tmp_path, {"alice": SOLVED})
    result = run(sub, "--kit", tiny_kit, "--output", tmp_path / "out.json", "--format", "json")
    assert result.exit_code == 2
    assert "is not a grading kit" in result.output and expected in result.output
    assert json.loads((tmp_path / "out.json").read_text())["problem"].startswith(f"{tiny_kit} is not a grading kit")


def test_a_shard_refuses_a_kit_without_its_secret(tiny_kit, tmp_path):
    subs = submissions(tmp_path, {"alice": SOLVED})
    result = run(*subs, "--kit", tiny_kit, "--shard", "1/1", "--output", tmp_path / "out")
    assert result.exit_code == 2 and "has no secret" in result.output
    assert not kit.secret_path(tiny_kit).exists()
    assert run(*subs, "--kit", tiny_kit, "--shard", "1/1", "--seed", "3", "--output", tmp_path / "o2").exit_code == 0


# --- reproducible batches ----------------------------------------------------------------------


def test_each_student_is_graded_with_their_own_seed_and_seed_overrides(tiny_kit, tmp_path):
    subs = submissions(tmp_path, {"alice": PARITY, "bob": PARITY})
    result = run(*subs, "--kit", tiny_kit, "--format", "json", "--output", tmp_path / "out")
    assert result.exit_code in (0, 1), result.output
    secret = kit.read_secret(tiny_kit)
    assert kit.secret_path(tiny_kit).stat().st_mode & 0o777 == 0o600
    for student in ("alice", "bob"):
        data = json.loads((tmp_path / "out" / f"{student}.json").read_text())
        seed = kit.seed_for(secret, student)
        assert data["seed"] == data["topics"][0]["seed"] == seed
        assert data["kit_hash"] == kit.kit_hash(tiny_kit)
        assert data["score"] == (2 if seed % 2 else 1)  # the hidden check really drew from this seed
    replay = run(*subs, "--kit", tiny_kit, "--format", "json", "--output", tmp_path / "replay", "--seed", "8")
    assert replay.exit_code == 1
    for student in ("alice", "bob"):
        data = json.loads((tmp_path / "replay" / f"{student}.json").read_text())
        assert (data["seed"], data["score"]) == (8, 1)


@pytest.mark.slow
def test_regrading_with_jobs_or_shards_gives_byte_identical_results(tiny_kit, tmp_path):
    subs = submissions(tmp_path, {"alice": PARITY, "bob": PARITY, "carol": SOLVED})
    runs = {
        "once": [],
        "again": [],
        "jobs": ["--jobs", 2],
        "shard-1": ["--shard", "1/2"],
        "shard-2": ["--shard", "2/2"],
    }
    kit.make_secret(tiny_kit)  # shards need the kit's own secret
    for name, extra in runs.items():
        result = run(*subs, "--kit", tiny_kit, "--format", "json", "--output", tmp_path / name, *extra)
        assert result.exit_code in (0, 1), result.output
    once = {p.name: p.read_bytes() for p in (tmp_path / "once").glob("*.json")}
    assert sorted(once) == ["alice.json", "bob.json", "carol.json"]
    for name in ("again", "jobs"):
        assert {p.name: p.read_bytes() for p in (tmp_path / name).glob("*.json")} == once, name
    sharded = {p.name: p.read_bytes() for d in ("shard-1", "shard-2") for p in (tmp_path / d).glob("*.json")}
    assert sharded == once
    assert os.listdir(tmp_path / "shard-1") != os.listdir(tmp_path / "shard-2")
