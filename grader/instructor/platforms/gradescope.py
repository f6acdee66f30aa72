"""Gradescope: the autograder.zip that `fmgrade release OUT --kit KIT --gradescope ZIP` writes,
and the run inside it (`python3 -m grader.instructor.platforms.gradescope`, called by run_autograder).

The bundle (Gradescope unpacks it into /autograder/source):

    setup.sh                  installs python3's venv, bubblewrap, the CPU torch and the kit
                              into /autograder/fmgrade-venv (once, when the image is built)
    run_autograder            per submission: that python3 runs this module; if it cannot even
                              start, the script writes a results.json naming the reason itself
    fmgrade-gradescope.json   topics, hidden checks' visibility, limits
    kit/                      the grading kit (solutions and hidden checks: keep the zip private)

Every path honours AUTOGRADER_ROOT (default /autograder), so the bundle runs anywhere.

Limits. Gradescope's default container has 768 MB of memory and half a CPU. The worker's
memory limit is on its address space, and importing torch alone maps about 640 MB of it (224 MB
resident), so a cap of M MB leaves a learner's code about M - 640 MB it can fill. Measured here
in a 768 MB, half-CPU cgroup (bench/gradescope_limits.py): a solved copy of the whole course
peaks near 510 MB; a submission that fills all the memory it can peaks at 514 MB with a cap of
768 and 642 MB with 896, while the scaling topic's curve fit needs more than 768 to run at all.
So the bundle caps every topic's worker at 896 MB (never raising a course's lower value): a
runaway allocation then fails that check instead of the container killing the grader.
Wall-clock timeouts are stretched by 1/cpu_share: the same work takes twice as long on half a CPU.
"""

import argparse
import dataclasses
import io
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import formats as reporters
from grader.instructor import kit as kit_mod
from grader.results import Report

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CONFIG_FILE = "fmgrade-gradescope.json"
VISIBILITIES = ("after_published", "after_due_date", "hidden", "visible")
TOPICS_ENV = "FMGRADE_GRADESCOPE_TOPICS"  # comma-separated: grade only these (trying a bundle quickly)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: a reproducible bundle


class BundleError(Exception):
    """The bundle cannot be built as asked; one line for a person."""


@dataclass(frozen=True)
class Config:
    topics: tuple = ()  # empty: every available topic of the kit
    hidden_visibility: str = "after_published"
    memory_mb: int = 896  # the worker's address-space cap, at most (see the module's docstring)
    cpu_share: float = 0.5  # of one CPU: wall-clock timeouts are divided by it
    isolation: str = "auto"
    seed: int = None  # None: each submitter's own, from the kit's secret (the same on every resubmission)

    def to_json(self):
        return (
            json.dumps(
                {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}, indent=2
            )
            + "\n"
        )

    @classmethod
    def read(cls, path):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        data["topics"] = tuple(data.get("topics") or ())
        config = cls(**data)
        if config.hidden_visibility not in VISIBILITIES:
            raise ValueError(f"{path}: hidden_visibility must be one of {', '.join(VISIBILITIES)}")
        if not 0 < config.cpu_share <= 64 or config.memory_mb < 256:
            raise ValueError(f"{path}: cpu_share must be in (0, 64] and memory_mb at least 256")
        return config


# --- building the bundle -----------------------------------------------------------------


def build_bundle(kit, zip_path, config=Config()):
    """Write autograder.zip from the kit folder `kit`; returns its path. Byte-identical for
    identical inputs (sorted entries, fixed times and permissions)."""
    kit, zip_path = Path(kit), Path(zip_path)
    if not (kit / "course.yml").is_file() or not (kit / "solutions").is_dir():
        raise BundleError(f"{kit} is not a grading kit (no course.yml or solutions/): build it with --kit first")
    if config.seed is None and not (kit / kit_mod.SECRET_FILE).is_file():
        raise BundleError(
            f"{kit} has no secret ({kit_mod.SECRET_FILE}): every upload would draw its own seed; rebuild it with --kit"
        )
    if config.hidden_visibility not in VISIBILITIES:
        raise BundleError(f"hidden checks' visibility must be one of {', '.join(VISIBILITIES)}")
    entries = [
        ("setup.sh", (TEMPLATES / "gradescope_setup.sh").read_bytes(), 0o755),
        ("run_autograder", (TEMPLATES / "gradescope_run_autograder").read_bytes(), 0o755),
        (CONFIG_FILE, config.to_json().encode("utf-8"), 0o644),
    ]
    for path in sorted(kit.rglob("*")):
        relative = path.relative_to(kit)
        if path.is_symlink() or not path.is_file() or "__pycache__" in relative.parts or ".git" in relative.parts:
            continue
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o600 if path.name == kit_mod.SECRET_FILE else 0o644
        entries.append((f"kit/{relative.as_posix()}", path.read_bytes(), mode))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600), "wb") as out:
        out.write(buffer.getvalue())
    os.chmod(tmp, 0o600)  # it holds the solutions (and the kit's secret): its owner's only, like the kit
    os.replace(tmp, zip_path)
    return zip_path


# --- the run inside Gradescope -----------------------------------------------------------


@dataclass
class Outcome:
    report: Report
    notes: list = field(default_factory=list)  # which files were graded, and any that could not be
    seed: int = None
    kit_hash: str = ""


METADATA_FILE = "submission_metadata.json"  # Gradescope writes it beside submission/


def submitter_id(root):
    """Whose upload this is, for the seed: each submitter's `sid` (the course's student id), else
    email, else Gradescope user id, sorted and joined with '+'. Every resubmission of the same
    student (or group) gets the same id, hence the same seed and the same grade."""
    try:
        data = json.loads((Path(root) / METADATA_FILE).read_text(encoding="utf-8"))
        users = data.get("users") or []
        ids = sorted(str(u.get("sid") or u.get("email") or u.get("id") or "").strip() for u in users)
    except (OSError, ValueError, AttributeError):
        return None
    ids = [i for i in ids if i]
    return "+".join(ids) or None


def fit_limits(course, config):
    """`course` with every topic's limits fitted to the container: memory capped, timeouts
    stretched for a CPU share below one."""
    stretch = 1 / config.cpu_share if config.cpu_share < 1 else 1

    def fitted(topic):
        limits = topic.limits
        return dataclasses.replace(
            topic,
            limits=dataclasses.replace(
                limits,
                memory_mb=min(limits.memory_mb, config.memory_mb),
                call_timeout=limits.call_timeout * stretch,
                topic_timeout=limits.topic_timeout * stretch,
            ),
        )

    topics = {t.id: fitted(t) for t in course.topics}
    sections = tuple(dataclasses.replace(s, topics=tuple(topics[t.id] for t in s.topics)) for s in course.sections)
    return dataclasses.replace(course, topics=tuple(topics[t.id] for t in course.topics), sections=sections)


def grade_upload(root, config):
    """Grade ROOT/submission with the kit in ROOT/source/kit; never raises for the submission's
    sake (a missing file scores 0 with a message), only when the grader itself cannot run."""
    from grader import course as course_mod
    from grader.instructor import grade as grade_mod
    from grader.instructor.platforms import submission_files
    from grader.sandbox import isolation

    root = Path(root)
    course = fit_limits(course_mod.load(root / "source" / "kit"), config)
    wanted = [t.strip() for t in os.environ.get(TOPICS_ENV, "").split(",") if t.strip()] or list(config.topics)
    topics = grade_mod.select_topics(course, wanted or None)
    staging = Path(tempfile.mkdtemp(prefix="fmgrade-gradescope-"))
    try:
        staged = submission_files.stage(root / "submission", topics, staging / "submission")
        student = submitter_id(root)
        seed = grade_mod.seeds_for(course, config.seed, create=False)(student or "")
        # grade's policy: a sandbox, or an explicit "process" (IsolationUnavailable names the fix)
        level = isolation.for_grading(config.isolation, [course.root])
        graded = grade_mod.grade_submission(course, staged.folder, topics, seed, level)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    notes = [f"graded {where} as {topic}" for topic, where in staged.found.items()]
    if student is None and config.seed is None:
        notes.append(f"no submitter in {METADATA_FILE}: graded with the seed of an anonymous upload")
    missing = [t for t in topics if t not in staged.found]
    if missing:
        notes.append(
            "not found: "
            + ", ".join(f"{t}.py" for t in missing)
            + " (upload TOPIC.py files, or a folder exercises/ holding them)"
            + _uploaded(root / "submission")
        )
    notes += staged.problems
    return Outcome(graded.report, notes, seed=seed, kit_hash=kit_mod.kit_hash(course.root))


def _uploaded(folder, shown=12):
    """ "; the upload holds 'attention (1).py', 'GPT3.py'": what was there instead (names capped)."""
    names = []
    for path, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__MACOSX")))
        relative = Path(path).relative_to(folder)
        names += [(relative / f).as_posix() for f in sorted(files) if not f.startswith(".")]
        if len(names) > shown:
            break
    if not names:
        return "; the upload is empty"
    more = " and more" if len(names) > shown else ""
    return "; the upload holds " + ", ".join(repr(n[:60]) for n in names[:shown]) + more


def run(root):
    """Write ROOT/results/results.json, whatever happens; returns the results' text."""
    started = time.monotonic()
    root = Path(root)
    config = Config()
    try:
        config = Config.read(root / "source" / CONFIG_FILE)
        outcome = grade_upload(root, config)
    except Exception as exc:  # the grader could not run: still a results.json that says why
        outcome = Outcome(Report(problem=f"{type(exc).__name__}: {exc}"))
    text = results_json(outcome, config, time.monotonic() - started)
    destination = root / "results" / "results.json"
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(".results.json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, destination)
    return text


def results_json(outcome, config, execution_time):
    data = json.loads(
        reporters.to_gradescope(
            outcome.report, config.hidden_visibility, execution_time, seed=outcome.seed, kit_hash=outcome.kit_hash
        )
    )
    if outcome.notes:
        data["output"] = "\n".join([*outcome.notes, data["output"]])
    return json.dumps(data, indent=2) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m grader.instructor.platforms.gradescope",
        description="Grade a Gradescope submission (run by run_autograder).",
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("AUTOGRADER_ROOT", "/autograder"),
        help="the autograder folder (default: $AUTOGRADER_ROOT or /autograder)",
    )
    args = parser.parse_args(argv)
    text = run(args.root)
    data = json.loads(text)
    print(
        f"fmgrade: {data.get('score', 0):g}/{data.get('max_score', 0):g}; results in {Path(args.root) / 'results' / 'results.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
