"""Hostile submissions: learner modules that attack the grader instead of solving the exercises.

Each file of tests/hostile/attention/ (except _prelude.py) is one attack: a `HOSTILE` dict of
metadata, then the attack's code. The learner module graded is

    solutions/attention.py + tests/hostile/attention/_prelude.py + the attack

so an attack either runs code at import or redefines one exercise (keeping the honest version
for the learner's own internal calls, see `_from_grader` in the prelude). Attack files are never
imported by the test process: their metadata is read with `ast`, their code runs only in the
grader's worker.

Every attack is graded at each isolation level of FMGRADE_HOSTILE_ISOLATION (default
"bwrap,process"; CI sets it, and then a level that cannot run here fails instead of skipping),
against a private copy of the course (0700 for the "user" level, which needs a kit others cannot
read). A few attacks also run with the worker of simulated macOS and Windows (`SIMULATED`).
Every report must name its level. What a level promises (grader.sandbox.isolation) is asserted; what it
does not promise (`contained_by`) is an xfail naming the level when the attack gets through.

The gradings run in grader subprocesses (`python tests/test_hostile.py BASE JOB...`), one per
core at a time, each grading a queue of jobs (see `Gradings`): the run takes less wall time, a
grader that an attack kills is seen as such instead of taking the test run with it, and each
grader's workers have user ids of their own (derived from the grader's pid), so stray processes
are told apart. Destructive attacks run only where a probe worker proved it is confined (a PID
namespace of its own, or a user id that can signal nothing outside itself), else they skip.

HOSTILE keys:
  attack             one line: what the attack does
  exercise           the exercise attacked; "*" for the whole module; None when the attack only
                     tries to forge a record or escape (then every exercise keeps its points)
  status, message    statuses allowed for the attacked exercise's checks, and a phrase every one
                     of their messages must contain (compared in lower case)
  hidden             grade hidden checks too (default False: the visible ones suffice)
  call_timeout       seconds for one call (short, for attacks that hang)
  forges             absolute paths the attack tries to write; none may change
  contained_by       the isolation levels that promise to stop it (default: every level); at the
                     others, an attack that gets through is an xfail naming the level
  needs_confinement  skip unless the probe proved the worker confined at this level
  needs_process_limit  skip unless the worker has a process limit (RLIMIT_NPROC) of its own
  grader_cwd         "course": the grader runs from the course's folder (default: a folder of its own)
  solo               grade it while no other grading runs (it loads the whole machine)
  known_hole         the attack currently succeeds: a strict xfail naming the hole, so the fix
                     turns it into a failure that asks for the mark to be removed

Placeholders in attack text: @COURSE_ROOT@ (the private copy graded), @REPO_ROOT@ (this
checkout), @GRADER_CWD@, @SITE_PACKAGES@, @PORT@, @UNIX_NAME@, @DROPBOX@ (a folder anyone may
write, outside the course: a surviving daemon leaves its mark there).
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
from grader.judge import runner
from grader.results import STATUSES, CheckResult, TopicResult
from grader.safe_text import safe_text
from grader.sandbox import ipc, isolation, proxy
from grader.sandbox import process as sandbox

ROOT = course_mod.find_root(__file__)

TOPIC = "attention"
BANK = Path(__file__).parent / "hostile" / TOPIC
ATTACKS = sorted(p.stem for p in BANK.glob("*.py") if not p.name.startswith("_"))
MARKER = "FMGRADE-HOSTILE-FORGERY"
SEED = 4321
GRADING_TIMEOUT = 180  # seconds for one grader subprocess; beyond it the grading counts as hung
KEYS = {
    "attack",
    "exercise",
    "status",
    "message",
    "hidden",
    "call_timeout",
    "forges",
    "contained_by",
    "needs_confinement",
    "needs_process_limit",
    "grader_cwd",
    "solo",
    "known_hole",
}
REQUIRED_LEVELS = os.environ.get("FMGRADE_HOSTILE_ISOLATION", "")
LEVELS = tuple(level for level in (REQUIRED_LEVELS or "bwrap,process").split(",") if level)
# Attacks on what differs on macOS and Windows: the transport (stdio), limits, exits, timeouts.
SIMULATED = {
    "macos": ("alloc_bytearray_50gb", "os_exit_in_call"),
    "windows": ("print_100mb", "write_fd1_100mb", "os_exit_in_call", "sys_exit_at_import", "infinite_loop"),
}


# --- the bank -----------------------------------------------------------------------------


def read_attack(name, substitutions=None):
    """(metadata, attack code) with placeholders filled; the code is never run here."""
    text = (BANK / f"{name}.py").read_text(encoding="utf-8")
    for key, value in (substitutions or {}).items():
        text = text.replace(f"@{key}@", str(value))
    meta = next(
        (
            ast.literal_eval(node.value)
            for node in ast.parse(text).body
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["HOSTILE"]
        ),
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
    return sandbox.worker_uids(grader_pid)


def _real_uid(pid):
    """From /proc/<pid>/status: a process that changed its user id is not dumpable, and its
    /proc folder then belongs to root."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return -1


def stray_processes(grader_pid, spare=()):
    """Processes left behind by a grader: its children, or anything running as its workers' uids."""
    uids, found = worker_uids(grader_pid), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (grader_pid, os.getpid(), *spare):
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == grader_pid or _real_uid(entry.name) in uids:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def collect_strays(grader_pid, grace=5.0, spare=()):
    """Strays still there after `grace` seconds; they are then killed (they are ours)."""
    deadline = time.monotonic() + grace
    while (strays := stray_processes(grader_pid, spare)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return strays


def ipc_left_behind(before, grader_pid, port, unix_name):
    """System V objects and /dev/shm files made during this grading by its workers and still
    there after it; they are then removed (they are ours). As root a worker has a user id of its
    own; otherwise the attacks' objects are known by the keys and name of this grading (@PORT@,
    @UNIX_NAME@), so nothing of another program or another grading is touched."""
    uids = set(worker_uids(grader_pid))
    keys = {0x46000000 + port * 4 + i for i in range(4)}
    left, paths = [], []
    for kind, ident, row in ipc.sysv_objects():
        owners = {int(row.get(key, -1)) for key in ("uid", "cuid")}
        if (kind, ident) not in before.sysv and (owners & uids or int(row.get("key", 0)) in keys):
            left.append(f"System V {kind} {ident} of uid {row.get('uid')}")
            ipc._remove_sysv(kind, ident)
    for path, (owner, inode) in ipc.posix_objects().items():
        if before.posix.get(path) != (owner, inode) and (owner in uids or path.endswith(unix_name)):
            left.append(f"{path} of uid {owner}")
            paths.append(path)
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass
    return left


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
    """Files under `root` changed since `since` that carry the forgery marker."""
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


def private_course(workdir, level):
    """A copy of the course to grade against: attacks may write into it. For the "user" level
    its folder is 0700, as `grade` requires a kit that others cannot read."""
    kit = Path(workdir) / "kit"
    root = kit / "course"
    root.mkdir(parents=True)
    shutil.copy(ROOT / "course.yml", root / "course.yml")
    for folder in ("exercises", "solutions", "tests/checks"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    kit.chmod(0o700 if level == "user" else 0o755)
    return course_mod.load(root)


def parse_level(level):
    """ "process+windows" -> ("process", "windows"); "bwrap" -> ("bwrap", None)."""
    base, _, simulated = level.partition("+")
    return base, simulated or None


def grade_honest(hidden, workdir, level):
    base, _ = parse_level(level)
    course = private_course(workdir, base)
    os.chdir(workdir)
    result = runner.run_topic(course, TOPIC, course.solution_path(TOPIC), hidden=hidden, seed=SEED, isolation=base)
    return {"result": result.to_dict()}


def grade_attack(name, workdir, level, parent_on_sys_path=False):
    """Grade one hostile module in this process and record what happened around it."""
    workdir = Path(workdir)
    base, _ = parse_level(level)
    course = private_course(workdir, base)
    if parent_on_sys_path:  # as when the grader starts with `python -m` from the folder above a kit
        sys.path.insert(0, str(course.root.parent))
    grader_cwd = workdir / "grader-cwd"
    grader_cwd.mkdir(parents=True)
    dropbox = workdir / "dropbox"
    dropbox.mkdir()
    dropbox.chmod(0o1777)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_name = f"fmgrade-hostile-{uuid.uuid4().hex}"
    unix.bind("\0" + unix_name)
    for sock in (tcp, unix):
        sock.listen(8)
        sock.setblocking(False)
    meta, attack = read_attack(
        name,
        {
            "COURSE_ROOT": course.root,
            "REPO_ROOT": ROOT,
            "GRADER_CWD": grader_cwd,
            "DROPBOX": dropbox,
            "SITE_PACKAGES": sysconfig.get_paths()["purelib"],
            "PORT": tcp.getsockname()[1],
            "UNIX_NAME": unix_name,
        },
    )
    learner = workdir / f"{TOPIC}.py"
    learner.write_text(hostile_source(attack), encoding="utf-8")
    forges = list(meta.get("forges", ()))
    before = _snapshot(forges)
    os.chdir(course.root if meta.get("grader_cwd") == "course" else grader_cwd)
    ipc_before = ipc.Snapshot()
    # A process of the grader's user outside the worker: it must outlive every attack.
    canary = subprocess.Popen(["sleep", "600"], start_new_session=True)
    started, since = time.monotonic(), time.time() - 1
    try:
        result = runner.run_topic(
            _with_call_timeout(course, meta.get("call_timeout")),
            TOPIC,
            learner,
            hidden=meta.get("hidden", False),
            seed=SEED,
            isolation=base,
        )
    finally:
        elapsed = time.monotonic() - started
        strays = collect_strays(os.getpid(), spare=(canary.pid,))
        ipc_left = ipc_left_behind(ipc_before, os.getpid(), tcp.getsockname()[1], unix_name)
        canary_alive = canary.poll() is None
        canary.kill()
        canary.wait()
        after = _snapshot(forges)
        _remove_forgeries(forges)
        if parent_on_sys_path:
            sys.path.remove(str(course.root.parent))
    changed = [p for p in forges if after[p] != before[p]]
    changed += [p for p in _marked_files(course.root, since) + _marked_files(ROOT, since) if p not in changed]
    return {
        "result": result.to_dict(),
        "elapsed": elapsed,
        "strays": strays,
        "ipc": ipc_left,
        "canary_alive": canary_alive,
        "changed": changed,
        "cwd": sorted(os.listdir(grader_cwd)),
        "dropbox": sorted(os.listdir(dropbox)),
        "network": [
            label for label, sock in (("tcp loopback", tcp), ("abstract unix socket", unix)) if _accepted(sock)
        ],
    }


def _main(base, job_ids):
    """A grader subprocess: grade `job_ids` one after the other, each into base/<job id>/."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for job_id in job_ids:
        workdir = Path(base, job_id)
        workdir.mkdir()
        (workdir / "started").touch()
        job, _, level = job_id.partition("@")
        kind, _, arg = job.partition("-")
        simulated = parse_level(level)[1]
        isolation.PLATFORM = isolation.Platform.simulate(simulated) if simulated else isolation.Platform.current()
        try:
            grade = {
                "honest": lambda: grade_honest(arg == "hidden", workdir, level),
                "attack": lambda: grade_attack(arg, workdir, level),
                "parentonpath": lambda: grade_attack(arg, workdir, level, parent_on_sys_path=True),
            }[kind]
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

    def __init__(self, jobs, base):
        self.base = base
        solos = [job for job in jobs if _job_meta(job).get("solo")]
        jobs = [job for job in jobs if job not in solos]
        self.futures = {job: concurrent.futures.Future() for job in jobs + solos}
        self.procs, self.closed = set(), False
        queues = [([], [0.0]) for _ in range(max(1, min(4, os.cpu_count() or 1)))]
        cost = {job: 3 + _job_meta(job).get("call_timeout", 0) for job in jobs}
        for job in sorted(jobs, key=lambda j: (not j.startswith("honest"), -cost[j])):  # baselines, then longest first
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
                proc = subprocess.Popen(
                    [sys.executable, __file__, str(self.base), *pending],
                    cwd=self.base,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
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
                self.futures[job].set_result(
                    {
                        "outcome": None,
                        "returncode": proc.returncode,
                        "hung": job == hung,
                        "output": output,
                        "strays_after_exit": strays,
                    }
                )

    def _harvest(self, pending, strays=()):
        for job in list(pending):
            outcome_file = self.base / job / "outcome.json"
            if outcome_file.is_file():
                try:
                    outcome = json.loads(outcome_file.read_text(encoding="utf-8"))
                except ValueError:
                    continue  # still being written
                pending.remove(job)
                self.futures[job].set_result(
                    {
                        "outcome": outcome,
                        "returncode": 0,
                        "hung": False,
                        "output": "",
                        "strays_after_exit": list(strays),
                    }
                )

    def get(self, job_id):
        return self.futures[job_id].result()

    def close(self):
        """When the session ends early (-x, Ctrl-C): stop the graders still running (ours, by pid)."""
        self.closed = True
        for proc in list(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _job_meta(job):
    kind, _, arg = job.partition("@")[0].partition("-")
    return read_attack(arg)[0] if kind in ("attack", "parentonpath") else {}


# --- which levels run, and which attacks may run at each ------------------------------------

PROBE_SOURCE = """
import os


def probe(grader):
    me = os.getpid()
    signalable = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                os.kill(int(name), 0)
                signalable.append(int(name))
            except OSError:
                pass
    try:
        os.kill(grader, 0)
        grader_reachable = True
    except OSError:
        grader_reachable = False
    try:
        import resource
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    except ImportError:
        nproc = -1
    return {"uid": os.getuid(), "pid_ns": os.readlink("/proc/self/ns/pid"), "signalable": signalable,
            "grader_reachable": grader_reachable, "nproc": nproc}
"""
_probed = {}


def level_unavailable(level):
    """Why `level` cannot run here, or None. "user" is graded against a 0700 kit."""
    base, simulated = parse_level(level)
    if simulated:
        return None if isolation.Platform.current().linux else "simulated platforms run on Linux"
    if base == "user":
        ok, why = isolation.own_user_plan()
        return None if ok else f"no user id of its own for the worker ({why})"
    return isolation.unavailable_reason(base)


def confinement(level):
    """{"confined": bool, "why": str, "nproc_limited": bool} for a worker at `level`: a probe
    worker must neither reach the grader nor signal any process outside its own PID namespace
    (or, without one, outside itself). Probed once per level, in this process."""
    if level not in _probed:
        _probed[level] = _probe(level)
    return _probed[level]


def _probe(level):
    base, simulated = parse_level(level)
    if simulated:
        return {
            "confined": False,
            "why": f"the simulated {simulated} worker has no user id of its own",
            "nproc_limited": False,
        }
    session = proxy.Session("exercises/probe.py", PROBE_SOURCE, course_mod.Limits(call_timeout=30), base)
    try:
        seen = session.module().probe(os.getpid())
    finally:
        session.close()
    own_namespace = seen["pid_ns"] != os.readlink("/proc/self/ns/pid")
    outside = [] if own_namespace else seen["signalable"]
    why = (
        f"the worker (uid {seen['uid']}) can signal the grader"
        if seen["grader_reachable"]
        else f"the worker (uid {seen['uid']}) can signal {len(outside)} process(es) outside itself, e.g. {outside[:5]}"
        if outside
        else ""
    )
    nproc = seen["nproc"]
    return {"confined": not why, "why": why or "confined", "nproc_limited": 0 <= nproc <= 1024}


def skip_reason(name, level):
    """Why attack `name` must not run at `level` (None: it may)."""
    why = level_unavailable(level)
    if why:
        return f"isolation {level} is not available here: {why}"
    meta = read_attack(name)[0]
    if meta.get("needs_confinement") or meta.get("needs_process_limit"):
        probe = confinement(level)
        if not probe["confined"]:
            return f"the worker is not confined at {level} ({probe['why']}): this attack could hit the machine"
        if meta.get("needs_process_limit") and not probe["nproc_limited"]:
            return f"the worker has no process limit of its own at {level}"
    return None


def _skip(reason, level):
    if parse_level(level)[0] in REQUIRED_LEVELS.split(",") and "not available" in reason:
        pytest.fail(f"FMGRADE_HOSTILE_ISOLATION requires {level}: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gradings(request, tmp_path_factory):
    """Every grading the selected tests need, started at once; none whose test will skip (an
    attack that needs confinement is never even started where the worker is not confined)."""
    jobs = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        level, name = params.get("level"), params.get("name")
        if level is None or level_unavailable(level):
            continue
        if getattr(item, "originalname", "") == "test_hostile_submission":
            if skip_reason(name, level) is None:
                meta = read_attack(name)[0]
                jobs |= {f"attack-{name}@{level}", f"honest-{'hidden' if meta.get('hidden') else 'visible'}@{level}"}
        elif getattr(item, "originalname", "") == "test_reference_solution_gets_full_marks_in_the_sandbox":
            jobs.add(f"honest-visible@{level}")
        elif getattr(item, "originalname", "") == "test_course_stays_hidden_when_sys_path_holds_its_parent":
            jobs.add(f"parentonpath-read_solution@{level}")
    runs = Gradings(sorted(jobs), tmp_path_factory.mktemp("hostile"))
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
    cases = [(name, level) for level in LEVELS for name in ATTACKS]
    cases += [(name, f"process+{platform}") for platform, names in SIMULATED.items() for name in names]
    for name, level in cases:
        hole = read_attack(name)[0].get("known_hole")
        marks = [pytest.mark.xfail(strict=True, reason=f"HOLE: {hole}")] if hole else []
        params.append(pytest.param(name, level, marks=marks, id=f"{name}@{level}"))
    return params


# --- the test ---------------------------------------------------------------------------------


@pytest.mark.slow  # the bank takes minutes a level on 2 cores
@pytest.mark.parametrize("name, level", _params())
def test_hostile_submission(name, level, gradings):
    meta = read_attack(name)[0]
    why = skip_reason(name, level)
    if why:
        _skip(why, level)
    base = parse_level(level)[0]
    run = gradings.get(f"attack-{name}@{level}")
    assert not run["hung"], f"grading did not finish within {GRADING_TIMEOUT} s:\n{run['output']}"
    assert run["outcome"], f"the attack killed the grader (exit status {run['returncode']}):\n{run['output']}"
    outcome = run["outcome"]
    assert "crash" not in outcome, f"grading raised:\n{outcome.get('crash')}"
    result = _topic_result(outcome["result"])
    honest = _graded(gradings, f"honest-{'hidden' if meta.get('hidden') else 'visible'}@{level}")
    summary = "\n".join(
        f"  {c.id} [{c.exercise}] {c.status} {c.score}/{c.max_score}: {c.message[:300]}"
        + (f"\n    output: {c.output[:300]!r}" if c.output else "")
        for c in result.checks
    )
    print(f"{name} ({result.isolation}, graded in {outcome['elapsed']:.1f} s): {meta['attack']}\n{summary}")

    # (0) the report names the level the worker ran at
    assert result.isolation == base, f"the report says {result.isolation}, the grading asked for {base}"

    # (5) no side effects: no stray process, no process outside the worker killed, no file
    # written, nothing reached over the network; where the level does not promise it, an xfail
    exercises = {e.id for e in course_mod.load(ROOT).topic(TOPIC).exercises}
    attacked = {"*": exercises, None: set()}.get(meta["exercise"], {meta["exercise"]})
    gained = any(c.score for c in result.checks if c.exercise in attacked)
    strays = outcome["strays"] + run["strays_after_exit"]
    escaped = (
        outcome["changed"]
        or outcome["cwd"]
        or outcome["network"]
        or outcome["dropbox"]
        or strays
        or outcome.get("ipc")
        or not outcome["canary_alive"]
    )
    if (escaped or gained) and base not in meta.get("contained_by", isolation.LEVELS):
        pytest.xfail(
            f"isolation {base} does not promise to stop this attack (only {', '.join(meta['contained_by'])} do)"
        )
    if (escaped or gained) and not confinement(level)["confined"]:
        pytest.xfail(f"the worker is not confined at {level}: {confinement(level)['why']}")
    assert outcome["canary_alive"], "the attack killed a process outside the worker"
    assert not strays, f"processes left behind: {strays}"
    assert not outcome.get("ipc"), f"IPC objects left behind: {outcome['ipc']}"
    assert not outcome["dropbox"], f"a process of the worker wrote after it ended: {outcome['dropbox']}"
    assert not outcome["changed"], f"learner code wrote {outcome['changed']}"
    assert not outcome["cwd"], f"learner code wrote into the grader's cwd: {outcome['cwd']}"
    assert not outcome["network"], f"learner code reached the grader's {outcome['network']}"

    # (6) learner text is data: every message and output is safe text (grader.safe_text)
    for check in result.checks:
        for field in (check.message, check.output):
            assert safe_text(field) == field, f"{check.id}: unsafe text reached the result: {field[:300]!r}"

    # (1) a complete report: every check the reference solution gets has a result, and only those
    assert sorted(c.id for c in result.checks) == sorted(c.id for c in honest.checks), summary
    assert all(c.status in STATUSES for c in result.checks), summary

    # (2) the attacked exercise earns nothing, with (4) a plain status and message
    assert attacked <= exercises, f"{name}.py attacks an unknown exercise {meta['exercise']!r}"
    topic = course_mod.load(ROOT).topic(TOPIC)
    for check in (c for c in result.checks if c.exercise in attacked):
        assert check.score == 0, f"{check.id} gained {check.score} points:\n{summary}"
        if check.status == "blocked" and set(topic.exercise(check.exercise).depends) & attacked:
            continue  # it builds on another attacked exercise (the whole module is attacked)
        assert check.status in meta["status"], f"{check.id}: {check.status}, expected {meta['status']}\n{summary}"
        assert meta.get("message", "").lower() in check.message.lower(), (
            f"{check.id}: message {check.message!r} does not mention {meta.get('message')!r}"
        )
        assert "Traceback" not in check.message and len(check.message) < 2500, check.message
        assert "grader error" not in check.message, check.message

    # (3) exercises that build on an attacked one (course.yml `depends`) are blocked; the other
    # honest exercises keep the points the reference solution gets (all of them, unless a check is
    # broken: the honest run is the yardstick), so the total is the honest part's and no more
    blocked = builds_on(topic, attacked)
    wrongly = [c.id for c in result.checks if c.exercise in blocked and (c.status != "blocked" or c.score)]
    assert not wrongly, f"checks of exercises that build on {sorted(attacked)} are not blocked: {wrongly}\n{summary}"
    honest_part = exercises - attacked - blocked
    honest_score = {e.id: e.score for e in honest.exercises()}
    by_exercise = {e.id: e for e in result.exercises()}
    lost = {
        e: f"{by_exercise[e].score} of {honest_score[e]} ({by_exercise[e].status}: {by_exercise[e].message[:300]})"
        for e in sorted(honest_part)
        if by_exercise[e].score != honest_score[e]
    }
    assert not lost, f"honest exercises lost points: {lost}\n{summary}"
    assert result.score == sum(honest_score[e] for e in honest_part)


def builds_on(topic, attacked):
    """The exercises that depend, directly or not, on one of `attacked`."""
    found = set()
    while True:
        more = {e.id for e in topic.exercises if e.id not in attacked | found and set(e.depends) & (attacked | found)}
        if not more:
            return found
        found |= more


ALL_LEVELS = LEVELS + tuple(f"process+{platform}" for platform in SIMULATED)


@pytest.mark.slow
@pytest.mark.parametrize("level", ALL_LEVELS)
def test_reference_solution_gets_full_marks_in_the_sandbox(level, gradings):
    """The yardstick of "the honest exercises keep their points", at every level and on the
    simulated macOS and Windows workers."""
    why = level_unavailable(level)
    if why:
        _skip(f"isolation {level} is not available here: {why}", level)
    result = _graded(gradings, f"honest-visible@{level}")
    assert result.isolation == parse_level(level)[0]
    problems = [f"{c.id}: {c.status}: {c.message}" for c in result.checks if c.status != "passed"]
    assert not problems, "\n".join(problems)
    assert result.score == result.max_score > 0


@pytest.mark.slow
@pytest.mark.parametrize("level", [level for level in LEVELS if level in ("bwrap", "namespaces")])
def test_course_stays_hidden_when_sys_path_holds_its_parent(level, gradings):
    why = level_unavailable(level)
    if why:
        _skip(f"isolation {level} is not available here: {why}", level)
    run = gradings.get(f"parentonpath-read_solution@{level}")
    assert run["outcome"] and "result" in run["outcome"], run
    result = _topic_result(run["outcome"]["result"])
    attention = [c for c in result.checks if c.exercise == "attention"]
    found = [c.id for c in attention if "found the reference solution" in c.output]
    assert not found, f"learner code read the reference solution in {found}"
    assert all(c.status == "not_started" and c.score == 0 for c in attention), [(c.id, c.status) for c in attention]


def test_the_bank_is_well_formed():
    """Every attack names a known exercise and what it expects; none is a copy of the solution."""
    exercises = {e.id for e in course_mod.load(ROOT).topic(TOPIC).exercises}
    assert len(ATTACKS) >= 20
    for name in ATTACKS:
        meta, text = read_attack(name)
        assert meta["exercise"] in exercises | {"*", None}, name
        if meta["exercise"] is not None:
            assert set(meta["status"]) <= set(STATUSES), name
        assert set(meta.get("contained_by", ())) <= set(isolation.LEVELS), name
        assert len(text.splitlines()) < 100, f"{name}.py: an attack, not a copy of the solution"
    for names in SIMULATED.values():
        assert set(names) <= set(ATTACKS)


def test_destructive_attacks_need_confinement():
    """kill(-1), kill(1), kill(parent) and the fork bomb never start where the worker is not
    confined: the probe decides, not the grader's user id."""
    for name in ("kill_everything", "kill_pid1", "kill_parent", "fork_bomb"):
        assert read_attack(name)[0].get("needs_confinement"), name


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2:])
