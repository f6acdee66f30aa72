"""Hostile submissions: learner modules that attack the grader instead of solving the exercises.

Each file of tests/hostile/attention/ (except _prelude.py) is one attack: a `HOSTILE` dict of
metadata, then the attack's code. The learner module graded is

    solutions/attention.py + tests/hostile/attention/_prelude.py + the attack

so an attack either runs code at import or redefines one exercise (keeping the honest version
for the learner's own internal calls, see `_from_grader` in the prelude). Attack files are never
imported by the test process: their metadata is read with `ast`, their code runs only in the
grader's worker.

The gradings run in grader subprocesses (`python tests/test_hostile.py BASE JOB...`), one per
core at a time, each grading a queue of jobs (see `Gradings`): the run takes less wall time, a
grader that an attack kills is seen as such instead of taking the test run with it, and each
grader's workers have user ids of their own (derived from the grader's pid), so stray processes
are told apart.

HOSTILE keys:
  attack             one line: what the attack does
  exercise           the exercise attacked; "*" for the whole module; None when the attack only
                     tries to forge a record or escape (then every exercise keeps its points)
  status, message    statuses allowed for the attacked exercise's checks, and a phrase every one
                     of their messages must contain (compared in lower case)
  hidden             grade hidden checks too (default False: the visible ones suffice)
  call_timeout       seconds for one call (short, for attacks that hang)
  forges             absolute paths the attack tries to write; none may change
  bwrap_only         "process" isolation cannot stop it (files, network not hidden): xfail there
  needs_confinement  skip unless the worker is confined (bwrap, or a user id of its own as root)
  solo               grade it while no other grading runs (it loads the whole machine)
  known_hole         the attack currently succeeds: a strict xfail naming the hole, so the fix
                     turns it into a failure that asks for the mark to be removed

Placeholders in attack text: @COURSE_ROOT@, @GRADER_CWD@, @SITE_PACKAGES@, @PORT@, @UNIX_NAME@.
"""
import ast
import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from pathlib import Path

import pytest

from grader import course as course_mod
from grader import runner, sandbox
from grader.results import STATUSES, CheckResult, TopicResult

ROOT = course_mod.find_root(__file__)


TOPIC = "attention"
BANK = Path(__file__).parent / "hostile" / TOPIC
ATTACKS = sorted(p.stem for p in BANK.glob("*.py") if not p.name.startswith("_"))
MARKER = "FMGRADE-HOSTILE-FORGERY"
SEED = 4321
GRADING_TIMEOUT = 180  # seconds for one grader subprocess; beyond it the grading counts as hung
KEYS = {"attack", "exercise", "status", "message", "hidden", "call_timeout", "forges", "bwrap_only",
        "needs_confinement", "solo", "known_hole"}


# --- the bank -----------------------------------------------------------------------------


def read_attack(name, substitutions=None):
    """(metadata, attack code) with placeholders filled; the code is never run here."""
    text = (BANK / f"{name}.py").read_text(encoding="utf-8")
    for key, value in (substitutions or {}).items():
        text = text.replace(f"@{key}@", str(value))
    meta = next(
        (ast.literal_eval(node.value) for node in ast.parse(text).body
         if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["HOSTILE"]),
        None,
    )
    assert isinstance(meta, dict), f"{name}.py: needs a literal `HOSTILE = {{...}}` dict"
    assert set(meta) <= KEYS, f"{name}.py: unknown HOSTILE keys {set(meta) - KEYS}"
    return meta, text


def hostile_source(attack_text):
    solution = (ROOT / "solutions" / f"{TOPIC}.py").read_text(encoding="utf-8")
    prelude = (BANK / "_prelude.py").read_text(encoding="utf-8")
    return f"{solution.rstrip()}\n\n\n{prelude.rstrip()}\n\n\n# --- the attack ---\n{attack_text}"


def course_with(call_timeout=None, root=ROOT):
    return _with_call_timeout(course_mod.load(root), call_timeout)


def _with_call_timeout(course, call_timeout):
    if call_timeout is None:
        return course
    topics = tuple(
        dataclasses.replace(t, limits=dataclasses.replace(t.limits, call_timeout=call_timeout)) if t.id == TOPIC else t
        for t in course.topics
    )
    return dataclasses.replace(course, topics=topics)


# --- one grading, inside a grader subprocess ----------------------------------------------


def worker_uids(grader_pid):
    """The user ids the workers of grader `grader_pid` run as (sandbox.WorkerProcess), if root."""
    if os.getuid() != 0:
        return range(0)
    base = 200000 + (grader_pid % 10000) * 100
    return range(base, base + 100)


def stray_processes(grader_pid):
    """Processes left behind by a grader: its children, or anything running as its workers' uids."""
    uids, found = worker_uids(grader_pid), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (grader_pid, os.getpid()):
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == grader_pid or entry.stat().st_uid in uids:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def collect_strays(grader_pid, grace=5.0):
    """Strays still there after `grace` seconds; they are then killed (they are ours)."""
    deadline = time.monotonic() + grace
    while (strays := stray_processes(grader_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return strays


def _snapshot(paths):
    state = {}
    for path in paths:
        try:
            state[path] = Path(path).read_bytes()
        except OSError:
            state[path] = None
    return state


def _remove_forgeries(paths):
    for path in paths:
        try:
            if MARKER in Path(path).read_text(errors="replace"):
                Path(path).unlink()
        except OSError:
            pass


def _marked_files(root, since):
    """Files under the course root changed since `since` that carry the forgery marker."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in (".git", ".venv", "__pycache__")]
        for name in files:
            path = Path(folder, name)
            try:
                if path.stat().st_mtime >= since and MARKER.encode() in path.read_bytes():
                    found.append(str(path))
            except OSError:
                pass
    return found


def _accepted(sock):
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def grade_honest(hidden, workdir):
    os.chdir(workdir)
    course = course_with()
    result = runner.run_topic(course, TOPIC, course.solution_path(TOPIC), hidden=hidden, seed=SEED, isolation="auto")
    return {"result": result.to_dict()}


def grade_attack(name, workdir, course=None):
    """Grade one hostile module in this process and record what happened around it."""
    workdir = Path(workdir)
    course = course or course_with()
    grader_cwd = workdir / "grader-cwd"
    grader_cwd.mkdir(parents=True)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_name = f"fmgrade-hostile-{uuid.uuid4().hex}"
    unix.bind("\0" + unix_name)
    for sock in (tcp, unix):
        sock.listen(8)
        sock.setblocking(False)
    meta, attack = read_attack(name, {
        "COURSE_ROOT": course.root, "GRADER_CWD": grader_cwd, "SITE_PACKAGES": sysconfig.get_paths()["purelib"],
        "PORT": tcp.getsockname()[1], "UNIX_NAME": unix_name,
    })
    learner = workdir / f"{TOPIC}.py"
    learner.write_text(hostile_source(attack), encoding="utf-8")
    forges = list(meta.get("forges", ()))
    before = _snapshot(forges)
    os.chdir(grader_cwd)
    started, since = time.monotonic(), time.time() - 1
    try:
        result = runner.run_topic(_with_call_timeout(course, meta.get("call_timeout")), TOPIC, learner,
                                  hidden=meta.get("hidden", False), seed=SEED, isolation="auto")
    finally:
        elapsed = time.monotonic() - started
        strays = collect_strays(os.getpid())
        after = _snapshot(forges)
        _remove_forgeries(forges)
    return {
        "result": result.to_dict(), "elapsed": elapsed, "strays": strays,
        "changed": [p for p in forges if after[p] != before[p]] + _marked_files(course.root, since),
        "cwd": sorted(os.listdir(grader_cwd)),
        "network": [label for label, sock in (("tcp loopback", tcp), ("abstract unix socket", unix)) if _accepted(sock)],
    }


def grade_with_course_parent_on_sys_path(name, workdir):
    """Grade attack `name` against a copy of the course in workdir/kit/course while the grader's
    sys.path holds workdir/kit, as when the grader is started with `python -m` from the folder
    above a grading kit, or with that folder on PYTHONPATH."""
    kit = Path(workdir) / "kit"
    root = kit / "course"
    root.mkdir(parents=True)
    shutil.copy(ROOT / "course.yml", root / "course.yml")
    for folder in ("exercises", "solutions", "tests/checks"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(kit))
    try:
        return grade_attack(name, workdir, course_mod.load(root))
    finally:
        sys.path.remove(str(kit))


def _main(base, job_ids):
    """A grader subprocess: grade `job_ids` one after the other, each into base/<job id>/."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for job_id in job_ids:
        workdir = Path(base, job_id)
        workdir.mkdir()
        (workdir / "started").touch()
        kind, _, arg = job_id.partition("-")
        try:
            grade = {"honest": lambda: grade_honest(arg == "hidden", workdir), "attack": lambda: grade_attack(arg, workdir),
                     "parentonpath": lambda: grade_with_course_parent_on_sys_path(arg, workdir)}[kind]
            outcome = grade()
        except Exception:  # noqa: BLE001 - reported to the test that waits for this job
            import traceback

            outcome = {"crash": traceback.format_exc()}
        (workdir / "outcome.json").write_text(json.dumps(outcome), encoding="utf-8")


# --- running the gradings: a few grader subprocesses, each grading a queue of jobs ---------


class Gradings:
    """Grades every job the session needs in the background; `get(job_id)` waits for one.

    Jobs are spread over one queue per core, each queue graded by one grader subprocess at a
    time (so the grader imports torch once per queue, not once per job). When an attack kills
    or hangs its grader, that job is reported as such and a fresh grader takes the rest.
    Jobs marked `solo` run last, alone, as they load the whole machine.
    """

    def __init__(self, names, extra_jobs, base):
        self.base = base
        metas = {name: read_attack(name)[0] for name in names}
        jobs = ["honest-visible"] + ["honest-hidden"] * any(m.get("hidden") for m in metas.values())
        jobs += [f"attack-{n}" for n in names if not metas[n].get("solo")] + extra_jobs
        solos = [f"attack-{n}" for n in names if metas[n].get("solo")]
        self.futures = {job: concurrent.futures.Future() for job in jobs + solos}
        self.procs, self.closed = set(), False
        queues = [([], [0.0]) for _ in range(max(1, min(4, os.cpu_count() or 1)))]
        cost = {job: 3 + metas.get(job.partition("-")[2], {}).get("call_timeout", 0) for job in jobs}
        for job in sorted(jobs, key=lambda j: (j.startswith("attack"), -cost[j])):  # baselines, then longest first
            queue, load = min(queues, key=lambda q: q[1][0])
            queue.append(job)
            load[0] += cost[job]
        queues = [q for q, _ in queues]
        threads = [threading.Thread(target=self._run_queue, args=(q,), daemon=True) for q in queues if q]
        for thread in threads:
            thread.start()
        threading.Thread(target=self._after, args=(threads, solos), daemon=True).start()

    def _after(self, threads, solos):
        for thread in threads:
            thread.join()
        self._run_queue(solos)

    def _run_queue(self, pending):
        try:
            self._grade_queue(pending)
        except BaseException as exc:  # noqa: BLE001 - no test may wait forever for a job
            for job in pending:
                if not self.futures[job].done():
                    self.futures[job].set_exception(exc)

    def _grade_queue(self, pending):
        batch = 0
        while pending:
            batch += 1
            log_path = self.base / f"grader-{pending[0]}-{batch}.log"
            with open(log_path, "wb") as log:
                if self.closed:
                    return
                proc = subprocess.Popen([sys.executable, __file__, str(self.base), *pending], cwd=self.base,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                self.procs.add(proc)
                hung = None
                while proc.poll() is None:
                    self._harvest(pending)
                    current = next((j for j in pending if (self.base / j / "started").exists()), None)
                    started = current and (self.base / current / "started").stat().st_mtime
                    if current and time.time() - started > GRADING_TIMEOUT:
                        hung = current
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                    time.sleep(0.2)
            strays = collect_strays(proc.pid, grace=2.0)  # a backstop: each job checked its own
            self._harvest(pending, strays)
            if not pending:
                return
            output = log_path.read_bytes().decode("utf-8", "replace")[-3000:]
            # The job in progress took its grader with it (or, if none started, the grader never ran).
            lost = pending[:1] if (self.base / pending[0] / "started").exists() else pending[:]
            for job in lost:
                pending.remove(job)
                self.futures[job].set_result({"outcome": None, "returncode": proc.returncode, "hung": job == hung,
                                              "output": output, "strays_after_exit": strays})

    def _harvest(self, pending, strays=()):
        for job in list(pending):
            outcome_file = self.base / job / "outcome.json"
            if outcome_file.is_file():
                try:
                    outcome = json.loads(outcome_file.read_text(encoding="utf-8"))
                except ValueError:
                    continue  # still being written
                pending.remove(job)
                self.futures[job].set_result({"outcome": outcome, "returncode": 0, "hung": False, "output": "",
                                              "strays_after_exit": list(strays)})

    def get(self, job_id):
        return self.futures[job_id].result()

    def close(self):
        """When the session ends early (-x, Ctrl-C): stop the graders still running (ours, by pid)."""
        self.closed = True
        for proc in list(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="session")
def gradings(request, tmp_path_factory):
    tests = [(getattr(item, "originalname", ""), item) for item in request.session.items]
    names = sorted({item.callspec.params["name"] for name, item in tests if name == "test_hostile_submission"})
    extra = ["parentonpath-read_solution"] * any(
        name == "test_course_stays_hidden_when_sys_path_holds_its_parent" for name, _ in tests)
    runs = Gradings(names, extra, tmp_path_factory.mktemp("hostile"))
    yield runs
    runs.close()


def _topic_result(data):
    return TopicResult(data["id"], [CheckResult(**c) for c in data["checks"]], data["isolation"], data["seed"])


def _graded(gradings, job_id):
    """The TopicResult of a job that must have finished normally (the baselines, the sys.path case)."""
    run = gradings.get(job_id)
    outcome = run["outcome"] or {}
    assert "result" in outcome, f"{job_id}: {outcome.get('crash') or run['output']}"
    return _topic_result(outcome["result"])


def _params():
    params = []
    for name in ATTACKS:
        hole = read_attack(name)[0].get("known_hole")
        marks = [pytest.mark.xfail(strict=True, reason=f"HOLE: {hole}")] if hole else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


# --- the test ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _params())
def test_hostile_submission(name, gradings):
    meta = read_attack(name)[0]
    isolation = sandbox.choose_isolation("auto")
    if meta.get("needs_confinement") and isolation != "bwrap" and os.getuid() != 0:
        pytest.skip("the worker would run as this user without bwrap: the attack could kill the test run itself")
    run = gradings.get(f"attack-{name}")
    assert not run["hung"], f"grading did not finish within {GRADING_TIMEOUT} s:\n{run['output']}"
    assert run["outcome"], f"the attack killed the grader (exit status {run['returncode']}):\n{run['output']}"
    outcome = run["outcome"]
    assert "crash" not in outcome, f"grading raised:\n{outcome.get('crash')}"
    result = _topic_result(outcome["result"])
    honest = _graded(gradings, "honest-hidden" if meta.get("hidden") else "honest-visible")
    summary = "\n".join(f"  {c.id} [{c.exercise}] {c.status} {c.score}/{c.max_score}: {c.message[:300]}"
                        + (f"\n    output: {c.output[:300]!r}" if c.output else "") for c in result.checks)
    print(f"{name} ({result.isolation}, graded in {outcome['elapsed']:.1f} s): {meta['attack']}\n{summary}")

    # (5) no side effects: no stray process, no file written, nothing reached over the network
    assert not outcome["strays"] and not run["strays_after_exit"], (
        f"processes left behind: {outcome['strays']} {run['strays_after_exit']}")
    exercises = {e.id for e in course_mod.load(ROOT).topic(TOPIC).exercises}
    attacked = {"*": exercises, None: set()}.get(meta["exercise"], {meta["exercise"]})
    gained = any(c.score for c in result.checks if c.exercise in attacked)
    escaped = outcome["changed"] or outcome["cwd"] or outcome["network"]
    if meta.get("bwrap_only") and result.isolation != "bwrap" and (escaped or gained):
        pytest.xfail(f"{result.isolation} isolation hides neither the course's files nor the network")
    assert not outcome["changed"], f"learner code wrote {outcome['changed']}"
    assert not outcome["cwd"], f"learner code wrote into the grader's cwd: {outcome['cwd']}"
    assert not outcome["network"], f"learner code reached the grader's {outcome['network']}"

    # (1) a complete report: every check the reference solution gets has a result, and only those
    assert result.isolation == isolation
    assert sorted(c.id for c in result.checks) == sorted(c.id for c in honest.checks), summary
    assert all(c.status in STATUSES for c in result.checks), summary

    # (2) the attacked exercise earns nothing, with (4) a plain status and message
    assert attacked <= exercises, f"{name}.py attacks an unknown exercise {meta['exercise']!r}"
    for check in (c for c in result.checks if c.exercise in attacked):
        assert check.score == 0, f"{check.id} gained {check.score} points:\n{summary}"
        assert check.status in meta["status"], f"{check.id}: {check.status}, expected {meta['status']}\n{summary}"
        assert meta.get("message", "").lower() in check.message.lower(), (
            f"{check.id}: message {check.message!r} does not mention {meta.get('message')!r}")
        assert "Traceback" not in check.message and len(check.message) < 2500, check.message

    # (3) the honest exercises keep the points the reference solution gets (all of them, unless a
    # check is broken: the honest run is the yardstick), so the total is the honest part's and no more
    honest_score = {e.id: e.score for e in honest.exercises()}
    by_exercise = {e.id: e for e in result.exercises()}
    lost = {e: f"{by_exercise[e].score} of {honest_score[e]} ({by_exercise[e].status}: {by_exercise[e].message[:300]})"
            for e in sorted(exercises - attacked) if by_exercise[e].score != honest_score[e]}
    assert not lost, f"honest exercises lost points: {lost}\n{summary}"
    assert result.score == sum(honest_score[e] for e in exercises - attacked)


def test_reference_solution_gets_full_marks_in_the_sandbox(gradings):
    """The yardstick of "the honest exercises keep their points"."""
    result = _graded(gradings, "honest-visible")
    problems = [f"{c.id}: {c.status}: {c.message}" for c in result.checks if c.status != "passed"]
    assert not problems, "\n".join(problems)


def test_course_stays_hidden_when_sys_path_holds_its_parent(gradings):
    result = _graded(gradings, "parentonpath-read_solution")
    attention = [c for c in result.checks if c.exercise == "attention"]
    found = [c.id for c in attention if "found the reference solution" in c.output]
    assert not found, f"learner code read the reference solution in {found}"
    assert all(c.status == "not_started" and c.score == 0 for c in attention), [(c.id, c.status) for c in attention]


def test_the_bank_is_well_formed():
    """Every attack names a known exercise and what it expects; none is a copy of the solution."""
    exercises = {e.id for e in course_mod.load(ROOT).topic(TOPIC).exercises}
    assert len(ATTACKS) >= 17
    for name in ATTACKS:
        meta, text = read_attack(name)
        assert meta["exercise"] in exercises | {"*", None}, name
        if meta["exercise"] is not None:
            assert set(meta["status"]) <= set(STATUSES), name
        assert len(text.splitlines()) < 100, f"{name}.py: an attack, not a copy of the solution"


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2:])
