"""The kit's Slurm script on a real one-node Slurm: `grade-slurm.sh submit 3` sends an array of
three tasks (each finding its shard with `--shard auto` in the variables Slurm sets) and a merge
job, and the merged summary equals one unsharded run's.

The cluster is this machine: the fixture starts munged (when it is not running), slurmctld and
slurmd on a configuration of its own (free ports, state in a temporary folder) and shuts them down
after. It needs root and Debian's `slurm-wlm` and `munge` (`apt-get install slurm-wlm munge`);
without them the test is skipped, saying why."""

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import course
from grader.instructor import release

ROOT = course.find_root(__file__)
SLURM = release.TEMPLATES / "grade-slurm.sh"
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4096


def _config(folder):
    node = socket.gethostname().split(".")[0]  # slurmd finds its NodeName by the short host name
    ports = _free_port(), _free_port()
    lines = [
        "ClusterName=fmgradetest",
        f"SlurmctldHost={node}(127.0.0.1)",
        "SlurmUser=root",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "AuthType=auth/munge",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "ReturnToService=2",
        "MpiDefault=none",
        # The script asks 2 CPUs and 8 GB a task: the node offers this machine's CPUs and most of its memory.
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={max(os.cpu_count() or 1, 2)} RealMemory={_memory_mb() * 8 // 10}",
        f"PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP",
    ]
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    conf = folder / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _unavailable(reason):
    """Skip, or fail where CI asks for this test (.ci/run sets FMGRADE_TEST_SLURM)."""
    if os.environ.get("FMGRADE_TEST_SLURM"):
        pytest.fail(f"FMGRADE_TEST_SLURM is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The environment of a client of a running one-node Slurm (SLURM_CONF set)."""
    missing = [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if missing:
        _unavailable(f"no Slurm here ({', '.join(missing)} missing): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        _unavailable("slurmd runs as root, and this is not")
    if not Path("/etc/munge/munge.key").is_file():
        _unavailable("munge has no key (/etc/munge/munge.key)")
    started_munge = None
    if not MUNGE_SOCKET.exists():
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", _tool("munged")], check=True, timeout=30)
        started_munge = Path("/run/munge/munged.pid")
    folder = tmp_path_factory.mktemp("slurm")
    conf = _config(folder)
    env = os.environ | {"SLURM_CONF": str(conf)}
    subprocess.run([_tool("slurmctld"), "-f", str(conf), "-i"], env=env, check=True, timeout=60)
    subprocess.run([_tool("slurmd"), "-f", str(conf)], env=env, check=True, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while "idle" not in _run(["sinfo", "-h", "-o", "%T"], env).stdout:
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in folder.glob("*.log"))
                pytest.fail(f"the one-node Slurm did not come up:\n{logs}")
            time.sleep(0.5)
        yield env
    finally:
        _run(["scontrol", "shutdown"], env)  # this cluster's slurmctld and slurmd, by its configuration
        if started_munge is not None and started_munge.is_file():
            os.kill(int(started_munge.read_text().split()[0]), 15)


def _tool(name):
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _run(command, env, **kwargs):
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def _wait(jobs, env, seconds=900):
    deadline = time.monotonic() + seconds
    while _run(["squeue", "-h", "-j", ",".join(jobs)], env).stdout.strip():
        assert time.monotonic() < deadline, _run(["squeue"], env).stdout
        time.sleep(1)


def _summary(path):
    return {row["student"]: row for row in csv.DictReader(io.StringIO(path.read_text()))}


@pytest.mark.slow
def test_three_slurm_array_tasks_grade_what_one_run_grades(slurm, tmp_path):
    solved = (ROOT / "solutions" / "survey.py").read_text()
    stub = (ROOT / "exercises" / "survey.py").read_text()
    half = solved.replace('"bert": ENCODER_ONLY,', '"bert": DECODER_ONLY,')  # a known mistake (mutants.yml)
    assert half != solved
    sources = {"ana": solved, "ben": stub, "chen": None, "dara": half, "eli": solved, "fay": half}
    for student, source in sources.items():
        (tmp_path / "subs" / student / "exercises").mkdir(parents=True)
        if source is not None:
            (tmp_path / "subs" / student / "exercises" / "survey.py").write_text(source)
    kit = release.build_kit(course.load(ROOT), tmp_path / "kit")
    fmgrade = tmp_path / "fmgrade"  # this Python's fmgrade, as a venv on a shared filesystem would be
    fmgrade.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m grader "$@"\n')
    fmgrade.chmod(0o755)
    env = slurm | {
        "FMGRADE": str(fmgrade),
        "FMGRADE_KIT": str(kit),
        "FMGRADE_SUBMISSIONS": str(tmp_path / "subs"),
        "FMGRADE_RESULTS": str(tmp_path / "results"),
        "FMGRADE_GRADE_OPTIONS": "--topics survey --seed 11",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("FMGRADE_GRADEBOOK_URL", None)

    submitted = _run(["bash", str(SLURM), "submit", "3"], env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    jobs = re.findall(r"(?:array|job) (\d+)", submitted.stdout)
    assert len(jobs) == 2, submitted.stdout
    _wait(jobs, env)
    logs = {p.name: p.read_text() for p in tmp_path.glob("fmgrade-*.out")}
    assert len(logs) == 4, logs  # three array tasks and the merge
    found = "".join(logs.values())
    for index in (1, 2, 3):  # each task found its own shard in Slurm's variables
        assert f"--shard auto: shard {index}/3 (Slurm array task {index - 1} of 0-2)" in found, found

    whole = _run(
        [str(fmgrade), "grade", *sorted(str(p) for p in (tmp_path / "subs").iterdir())]
        + ["--kit", str(kit), "--topics", "survey", "--seed", "11", "--format", "json"]
        + ["--output", str(tmp_path / "whole")],
        env,
    )
    assert whole.returncode == 1, whole.stderr  # some checks fail (the stub, the mistake)
    merged = tmp_path / "results" / "summary.csv"
    assert merged.is_file(), found
    assert _summary(merged) == _summary(tmp_path / "whole" / "summary.csv")
    assert set(_summary(merged)) == set(sources)
    per_task = [len(_summary(p)) for p in sorted((tmp_path / "results").glob("shard-*/summary.csv"))]
    assert sum(per_task) == len(sources) and sum(1 for n in per_task if n) >= 2  # really split
