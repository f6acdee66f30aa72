"""`--shard I/N`: split a batch over N graders so that each submission is graded exactly once.

A submission belongs to shard I (1 <= I <= N) when a hash of its student id, taken modulo N,
is I - 1. The hash is SHA-256, not Python's `hash()` (salted per process), so every host, CI job
or Kubernetes Indexed Job (`--shard $((JOB_COMPLETION_INDEX + 1))/N`) agrees on the split
without talking to the others, and a student keeps their shard when others join or leave the
batch (a position-based split would move everyone after them).
"""

import csv
import hashlib
import io
import re
from dataclasses import dataclass

from grader.spreadsheet import csv_text

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A bad shard spec or summary file; the message is one line for a person."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written on the command line
    count: int

    def __str__(self):
        return f"{self.index}/{self.count}"

    def holds(self, student):
        return shard_of(student, self.count) == self.index


def parse(text):
    """'2/4' -> Shard(2, 4); anything else raises ShardError naming what was wrong."""
    match = _SPEC.fullmatch(str(text))
    if not match:
        raise ShardError(f"expected I/N, e.g. 2/4 (the second of four shards), not {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ShardError(f"{text!r}: the number of shards N must be at least 1")
    if not 1 <= index <= count:
        raise ShardError(f"{text!r}: the shard I must be between 1 and {count}")
    return Shard(index, count)


def shard_of(student, count):
    """The 1-based shard of `student` among `count`."""
    digest = hashlib.sha256(str(student).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(items, shard, key=str):
    """The items of `shard` (all of them when shard is None), in their original order."""
    if shard is None:
        return list(items)
    return [item for item in items if shard.holds(key(item))]


META = ("kit_hash", "problem")  # summary.csv's columns after max_total (older files lack them)


def merge_summaries(texts, rejected=None):
    """One summary.csv from the summary.csv texts of several shards.

    Columns are `student`, the union of every topic column (sorted, as `grade` writes them),
    then `total` and `max_total` (and `kit_hash`, `problem` when the shards have them); a topic
    a shard did not grade is left empty. A student found in two shards (the shards were run with
    different N, or a file was copied twice) is an error: merging must not pick one of two
    scores silently. So are rows of two kits (last term's results mixed in). A row whose grading
    failed (a `problem`, or nothing graded: max_total 0) is never merged: it goes to `rejected`
    (a list, one line each) when given, else it is an error."""
    tail = ["total", "max_total"]
    rows, topics, seen, kits, has_meta = [], set(), {}, {}, False
    for origin, text in texts:
        reader = csv.DictReader(io.StringIO(text))
        header = list(reader.fieldnames or [])
        meta = [c for c in META if c in header[-len(META) :]]
        body = header[: len(header) - len(meta)]
        if not body or body[0] != "student" or body[-2:] != tail:
            raise ShardError(
                f"{origin}: not a summary.csv written by fmgrade grade (header {','.join(header) or 'empty'})"
            )
        has_meta = has_meta or bool(meta)
        topics.update(body[1:-2])
        for number, row in enumerate(reader, start=2):
            where, student = f"{origin}:{number}", row["student"]
            if student in seen:
                raise ShardError(f"{where}: student {student!r} is also in {seen[student]}")
            seen[student] = where
            failure = _failure(row)
            if failure:
                line = f"{where}: student {student!r} was not graded ({failure}): grade them again"
                if rejected is None:
                    raise ShardError(line)
                rejected.append(line)
                continue
            if row.get("kit_hash"):
                kits.setdefault(row["kit_hash"], where)
            rows.append(row)
    if len(kits) > 1:
        raise ShardError(
            "results of different kits are never merged: "
            + "; ".join(f"kit {kit} (e.g. {where})" for kit, where in sorted(kits.items()))
        )
    columns = ["student", *sorted(topics), *tail, *(META if has_meta else ())]
    return csv_text(
        columns, ([row.get(c, "") or "" for c in columns] for row in sorted(rows, key=lambda r: r["student"]))
    )


def _failure(row):
    """Why a summary row holds no grade ("" when it does)."""
    if (row.get("problem") or "").strip():
        return row["problem"].strip()[:200]
    try:
        nothing = float(row.get("max_total") or 0) == 0
    except ValueError:
        return f"max_total is {row.get('max_total')!r}"
    return "nothing was graded: max_total 0" if nothing else ""


# --- `--shard auto`: the shard from the environment of the engine that runs the grader ---------

AUTO = "auto"
SHARD_VARIABLE, COUNT_VARIABLE = "FMGRADE_SHARD", "FMGRADE_SHARD_COUNT"
SLURM_ID, SLURM_COUNT = "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"
SLURM_MIN, SLURM_MAX, SLURM_STEP = "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP"
K8S_INDEX = "JOB_COMPLETION_INDEX"


def from_environment(environ):
    """(Shard, where it came from) for `--shard auto`, read from `environ` (a mapping like
    os.environ), first match wins:

    - FMGRADE_SHARD=I/N: said outright (a GitHub Actions matrix sets it per job, or any engine);
    - a Slurm job array task (`sbatch --array=0-3`): SLURM_ARRAY_TASK_ID, with SLURM_ARRAY_TASK_MIN,
      _MAX and _STEP or SLURM_ARRAY_TASK_COUNT; task MIN is shard 1;
    - a Kubernetes Indexed Job: JOB_COMPLETION_INDEX (0-based) with FMGRADE_SHARD_COUNT, the Job's
      `completions`, which Kubernetes does not put in the environment.

    Raises ShardError naming the variables when none is set, or when they disagree."""
    if environ.get(SHARD_VARIABLE, "").strip():
        try:
            return parse(environ[SHARD_VARIABLE]), f"{SHARD_VARIABLE}={environ[SHARD_VARIABLE].strip()}"
        except ShardError as exc:
            raise ShardError(f"{SHARD_VARIABLE}: {exc}") from None
    if environ.get(SLURM_ID, "").strip():
        return _slurm(environ)
    if environ.get(K8S_INDEX, "").strip():
        index = _whole(environ, K8S_INDEX)
        if not environ.get(COUNT_VARIABLE, "").strip():
            raise ShardError(
                f"{K8S_INDEX}={index} (a Kubernetes Indexed Job) needs the number of shards in {COUNT_VARIABLE} "
                "(the Job's spec.completions)"
            )
        count = _whole(environ, COUNT_VARIABLE)
        return _checked(index + 1, count, f"{K8S_INDEX}={index} of {COUNT_VARIABLE}={count}")
    raise ShardError(
        f"--shard auto found no shard in the environment: set {SHARD_VARIABLE}=I/N, or run it as a Slurm array "
        f"task ({SLURM_ID} with {SLURM_COUNT} or {SLURM_MIN}/{SLURM_MAX}) or a Kubernetes Indexed Job "
        f"({K8S_INDEX} with {COUNT_VARIABLE})"
    )


def _slurm(environ):
    """The shard of a Slurm array task. Only evenly stepped arrays (`--array=0-9` or `1-20:2`)
    map onto shards 1..N; a list such as `--array=1,4,9` (whose count disagrees) is refused."""
    task = _whole(environ, SLURM_ID)
    low = _whole(environ, SLURM_MIN) if environ.get(SLURM_MIN, "").strip() else None
    high = _whole(environ, SLURM_MAX) if environ.get(SLURM_MAX, "").strip() else None
    step = _whole(environ, SLURM_STEP) if environ.get(SLURM_STEP, "").strip() else 1
    count = _whole(environ, SLURM_COUNT) if environ.get(SLURM_COUNT, "").strip() else None
    if step < 1:
        raise ShardError(f"{SLURM_STEP}={step}: expected a step of at least 1")
    if count is None and (low is None or high is None):
        raise ShardError(f"{SLURM_ID}={task} needs {SLURM_COUNT}, or {SLURM_MIN} and {SLURM_MAX}")
    if low is None:
        low = 0  # the array starts at 0 when Slurm does not say (`--array=0-(N-1)`)
    spanned = (high - low) // step + 1 if high is not None else None
    if count is None:
        count = spanned
    elif spanned is not None and spanned != count:
        raise ShardError(
            f"the Slurm array {low}-{high}:{step} has {count} tasks, not {spanned}: submit an evenly stepped "
            "array such as --array=0-3 (a list of task ids cannot map onto shards 1..N)"
        )
    if (task - low) % step:
        raise ShardError(f"{SLURM_ID}={task} is not on the array's step {step} from {low}")
    where = f"Slurm array task {task} of {low}-{high if high is not None else low + (count - 1) * step}"
    return _checked((task - low) // step + 1, count, where + (f":{step}" if step != 1 else ""))


def _checked(index, count, where):
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"{where}: not a shard 1..N (shard {index} of {count})")
    return Shard(index, count), where


def _whole(environ, name):
    text = environ.get(name, "").strip()
    if not re.fullmatch(r"-?\d+", text):
        raise ShardError(f"{name}={text!r}: expected a whole number")
    return int(text)
