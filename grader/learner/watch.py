"""`fmgrade watch [TOPIC]`: re-check the exercise being edited on every save.

The first run checks every exercise of the topic. After that, each save re-runs the checks of
the exercises whose answer region changed (all of them when code outside the regions changed,
or the file no longer parses), and the other exercises keep their last result.

Every re-check imports the new source in a fresh worker, so nothing of the previous version
(module state, monkey-patched torch, a cache) survives; a spare worker (grader.sandbox.pool) has
already imported torch while the learner was typing. The checks are re-imported by the runner
each time too. File events come from watchfiles; where they do not arrive (network file
systems, WSL's Windows drives) it polls, either because it was asked to (`--poll`), because
the folder is on such a file system, or because the file changed without an event.

The loop talks to its screen only through `sink(event)`: Checking at once when a save starts
a check, Rechecked with the result, Notes. `commands` is a queue of "hint", "next" and "quit"
(the terminal's keys, or a test); "next" after the topic's last unfinished exercise moves the
watch to the topic `fmgrade progress` suggests.
"""

import ast
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader import catalog as checks_index
from grader.course import CourseError
from grader.judge import runner
from grader.learner import check, regions, reset
from grader.learner import progress as progress_mod
from grader.results import BLOCKED, PASSED, TopicResult, standing

STEP_MS = 50  # a save is handled once the folder has been quiet this long
WAKE_MS = 200  # the loop wakes this often to read keys and to stat the file
MISSED_EVENT_S = 1.0  # a change seen by stat but not reported by then means events do not arrive
NETWORK_FILE_SYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "v9fs",
    "drvfs",
    "fuse.sshfs",
    "sshfs",
    "vboxsf",
    "fuse.vmhgfs-fuse",
    "afs",
    "ceph",
    "fuse.rclone",
    "davfs",
    "fuse.gcsfuse",
}


@dataclass(frozen=True)
class Rechecked:
    result: TopicResult  # the whole topic; exercises not in `ran` keep their last result
    ran: tuple  # the exercises whose checks ran this time
    seconds: float  # from noticing the save to the result
    focus: str  # the exercise the screen is about


@dataclass(frozen=True)
class Checking:
    """Sent at once when a save starts a check: the results shown are stale until Rechecked."""

    exercises: tuple  # the exercises about to run
    every: bool  # all of the topic's exercises


@dataclass(frozen=True)
class SwitchTopic:
    """`n` after the last unfinished exercise: watch the next topic instead."""

    topic_id: str


@dataclass(frozen=True)
class Note:
    text: str
    kind: str = "info"  # "info", "hint", "focus", "problem", "picture"
    images: tuple = ()  # PNG files drawn for this note (a terminal that shows images draws them)


# --- which exercises a save touched ------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    regions: dict  # exercise -> its regions' text, or None when it cannot be found
    outside: str  # the code outside every region, blank and comment-only lines left out


def fingerprint(stub, source, exercises):
    """None when the file does not parse (every exercise is then re-run)."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    lines, covered, texts = regions.lines_of(source), set(), {}
    for exercise in exercises:
        try:
            spans = regions.locate(stub, source, exercise)
        except (regions.LocateError, SyntaxError):
            texts[exercise] = None
            continue
        texts[exercise] = "".join(regions.text_of(source, span) for span in spans)
        for span in spans:
            covered.update(range(span.first, span.last + 1))
    outside = [
        line.strip()
        for number, line in enumerate(lines, start=1)
        if number not in covered and line.strip() and not line.strip().startswith("#")
    ]
    return Fingerprint(texts, "\n".join(outside))


def changed_exercises(before, after, exercises):
    """The exercises to re-run when the file went from fingerprint `before` to `after`."""
    if before is None or after is None or before.outside != after.outside:
        return list(exercises)
    return [e for e in exercises if after.regions.get(e) is None or before.regions.get(e) != after.regions.get(e)]


# --- the watcher's state ----------------------------------------------------------------


class Watch:
    """One topic being watched: the last result, the file as last checked, and the spare worker."""

    def __init__(self, course, topic_id, pool=None):
        self.course, self.topic = course, course.topic(topic_id)
        if not course.available(topic_id):
            raise CourseError(f"topic '{topic_id}' ({self.topic.title}) is not available yet in this course")
        self.path = course.exercise_path(topic_id)
        self.module_file = f"exercises/{topic_id}.py"
        self.exercise_ids = [e.id for e in self.topic.exercises]
        try:
            self.stub = reset.original_stub(course, topic_id)
        except reset.ResetError:
            self.stub = None  # no original to compare with: every save re-runs every exercise
        self.checks = checks_index.scan(course.checks_dir(topic_id))
        from grader.sandbox import pool as warm  # imports the sandbox: only when watching

        self.pool = pool if pool is not None else warm.SparePool()
        self.progress = progress_mod.load(course.root)  # read before learner code runs
        self.result = None
        self.checked_source = None
        self.checked_print = None
        self.focus = self.exercise_ids[0]
        self.delivered_state = None  # the file's (mtime, size) when it was last read for a check

    def close(self):
        self.pool.close()

    def file_state(self):
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def recheck(self, started=None, announce=None):
        """Re-run what the file's change calls for; None when nothing needs running.
        `announce(Checking(...))` is called before the checks start."""
        started = started if started is not None else time.perf_counter()
        source, problem = runner.read_learner_file(self.path, self.module_file)
        if source is not None and source == self.checked_source:
            return None
        print_now = fingerprint(self.stub, source, self.exercise_ids) if self.stub and source else None
        if self.result is None:
            ran = edited = list(self.exercise_ids)
        else:
            ran = changed_exercises(self.checked_print, print_now, self.exercise_ids)
            if not ran:
                self.checked_source, self.checked_print = source, print_now
                return Note("saved; no exercise's code changed, so nothing was re-run")
            edited, ran = ran, self.with_blocked_dependents(ran)
        only = [] if len(ran) == len(self.exercise_ids) else self._check_ids(ran)
        if announce is not None:
            announce(Checking(tuple(ran), not only))
        result = check.check_topic(self.course, self.topic.id, ran if only else (), worker_factory=self.pool)
        seconds = time.perf_counter() - started
        self.checked_source, self.checked_print = source, print_now
        self.result = result if self.result is None or not only else self._merge(result, ran)
        self.progress = progress_mod.record(self.course.root, self.result, self.progress, self.topic.exercises)
        self.pool.replenish(warm_up="optim" in (source or ""))  # after the run: they would share the CPU
        if len(ran) < len(self.exercise_ids):
            self.focus = edited[0]
        elif self._status(self.focus) == PASSED:
            self.focus = self._next_pending(self.focus) or self.focus
        return Rechecked(self.result, tuple(ran), seconds, self.focus)

    def with_blocked_dependents(self, exercises):
        """`exercises` and the blocked ones (course.yml `depends`) that may run now: all they
        build on is re-run or passes. In course order: an exercise runs after what it builds on."""
        chosen, grew = set(exercises), True
        while grew:
            grew = False
            for exercise in self.topic.exercises:
                depends = set(getattr(exercise, "depends", ()))
                if (
                    exercise.id not in chosen
                    and self._status(exercise.id) == BLOCKED
                    and depends & chosen
                    and all(d in chosen or self._status(d) == PASSED for d in depends)
                ):
                    chosen.add(exercise.id)
                    grew = True
        return [e for e in self.exercise_ids if e in chosen]

    def _check_ids(self, exercises):
        return [f"{c.file}::{c.name}" for e in exercises for c in self.checks.get(e, ()) if not c.hidden]

    def _merge(self, partial, ran):
        kept = [c for c in self.result.checks if c.exercise not in ran]
        order = {e: i for i, e in enumerate(self.exercise_ids)}
        checks = sorted(kept + partial.checks, key=lambda c: (order.get(c.exercise, len(order)), c.hidden))
        return TopicResult(
            self.topic.id,
            checks,
            isolation=partial.isolation,
            seed=partial.seed,
            import_error=partial.import_error,
            random_inputs=partial.random_inputs,
        )

    def _status(self, exercise):
        if self.result is None:
            return None
        return standing(self.result, self.topic.exercises).status(exercise)

    def _next_pending(self, after):
        """The next exercise after `after` (round the topic) to work on: not passed and not
        blocked (what it builds on comes first); never `after`."""
        ids = self.exercise_ids
        start = ids.index(after) + 1 if after in ids else 0
        for exercise in ids[start:] + ids[:start]:
            if exercise != after and self._status(exercise) not in (PASSED, BLOCKED):
                return exercise
        return None

    # keys
    def next_exercise(self):
        """`n`: the next unfinished exercise; when none is left, the next topic to watch."""
        following = self._next_pending(self.focus)
        if following is None:
            if self.result is not None and not standing(self.result, self.topic.exercises).complete:
                return Note(f"`{self.focus}` is the only exercise of {self.topic.id} to work on now", "focus")
            suggested = progress_mod.suggest_next(self.course, self.progress)
            if suggested is None or suggested.id == self.topic.id:
                return Note(f"every exercise of {self.topic.id} passes; nothing else is left to do", "focus")
            return SwitchTopic(suggested.id)
        self.focus = following
        exercise = self.topic.exercise(following)
        return Note(f"Next: `{following}`{self.where(following)}: {exercise.goal}", "focus")

    def hint(self):
        exercise = self.topic.exercise(self.focus)
        if not exercise.hints:
            return Note(f"`{exercise.id}` has no hints yet. Goal: {exercise.goal}", "hint")
        # past the last hint: say so, as `fmgrade hint` does (the note replaces the one before, so
        # the hints seen already are listed under it)
        past_last = progress_mod.hints_exhausted(self.progress, self.topic.id, exercise)
        # the level is kept with the progress, as `fmgrade hint` keeps it: either continues the other
        level = progress_mod.reveal_hint(self.course.root, self.progress, self.topic.id, exercise)
        shown = "\n".join(f"  {i}. {h}" for i, h in enumerate(exercise.hints[:level], start=1))
        if past_last:
            total = len(exercise.hints)
            return Note(
                f"No more hints for `{exercise.id}`: you have seen all {total}, listed again here.\n{shown}", "hint"
            )
        more = "" if level == len(exercise.hints) else f"\n  (h again for hint {level + 1} of {len(exercise.hints)})"
        return Note(f"Hints for `{exercise.id}`:\n{shown}{more}", "hint")

    def picture(self, isolation="auto"):
        """`p`: draw the focused exercise's picture from the saved file (grader.learner.pictures),
        or say why there is none."""
        from grader.learner import pictures

        try:
            drawn = pictures.show(self.course, self.topic.id, self.focus, isolation=isolation)
        except (pictures.PicturesUnavailable, CourseError) as exc:
            return Note(str(exc), "picture")
        lines = [
            item.path.relative_to(self.course.root).as_posix()
            if item.path is not None and item.path.is_relative_to(self.course.root)
            else pictures.line(item)
            for item in drawn
        ]
        images = tuple(item.path for item in drawn if item.path is not None)
        return Note(
            f"Picture of `{self.focus}` (your saved file beside the expected result):\n" + "\n".join(lines),
            "picture",
            images,
        )

    def where(self, exercise):
        """' at exercises/x.py:LINE' for the exercise's first region, or ''."""
        try:
            source = self.path.read_text(encoding="utf-8")
            spans = regions.locate(self.stub, source, exercise) if self.stub else []
        except (OSError, UnicodeDecodeError, SyntaxError, regions.LocateError):
            return ""
        return f" at {self.module_file}:{spans[0].first}" if spans else ""


def topic_in_progress(course, progress):
    """Where `watch` starts without a topic: the topic `fmgrade progress` suggests, else None."""
    suggested = progress_mod.suggest_next(course, progress)
    return suggested.id if suggested else None


# --- the loop ---------------------------------------------------------------------------


def network_file_system(path, mounts=None):
    """The type of the network file system `path` is on, or None (read from /proc/self/mounts
    on Linux, or the text `mounts` in that format; elsewhere None)."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return None
    mounts = mounts.splitlines()
    path, best = os.path.realpath(path), ("", None)
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
            best = (point, parts[2])
    return best[1] if best[1] in NETWORK_FILE_SYSTEMS else None


def run(course, topic_id, sink, *, stop=None, commands=None, poll=False, pool=None):
    """Watch until `stop` is set or "quit" arrives on `commands`; every outcome goes to `sink`."""
    import watchfiles  # only when watching

    stop = stop or threading.Event()
    commands = commands or queue.Queue()
    state = Watch(course, topic_id, pool)
    folder = state.path.parent
    remote = network_file_system(folder)
    polling = poll or remote is not None
    if remote and not poll:
        sink(Note(f"{folder} is on a {remote} file system, where file events may not arrive: watching by polling"))
    try:
        while not stop.is_set():
            changes = watchfiles.watch(
                folder,
                watch_filter=None,
                step=STEP_MS,
                stop_event=stop,
                rust_timeout=WAKE_MS,
                yield_on_timeout=True,
                raise_interrupt=False,
                force_polling=True if polling else None,
            )  # None: watchfiles polls on WSL itself
            first = next(changes, set())  # the watch is armed from here on: no save is missed while checking
            if state.result is None or any(_same_file(path, state.path) for _, path in first):
                _deliver(state, sink, time.perf_counter())
            unreported_since = None
            for batch in changes:
                noticed = time.perf_counter()
                command = _handle_commands(state, commands, sink, stop)
                if isinstance(command, SwitchTopic):
                    state = _switch(state, command.topic_id, sink, pool)
                    folder = state.path.parent
                    break  # restart the watch on the new topic's file
                if command:
                    break
                ours = any(_same_file(path, state.path) for _, path in batch)
                if not ours and state.file_state() != state.delivered_state:  # a change no event reported
                    unreported_since = unreported_since or noticed
                    if noticed - unreported_since < MISSED_EVENT_S:
                        continue
                    if not polling:
                        polling = True
                        sink(Note("file events do not arrive for this folder: watching by polling from now on"))
                        _deliver(state, sink, noticed)
                        break  # restart the watch, polling
                    ours = True
                if ours:
                    unreported_since = None
                    _deliver(state, sink, noticed)
            else:
                break
    finally:
        state.close()


def _deliver(state, sink, noticed):
    state.delivered_state = state.file_state()  # before the file is read: a save during the check still counts
    if not state.path.is_file():
        sink(Note(f"{state.module_file} is not there; waiting for it to come back", "problem"))
        return
    try:
        event = state.recheck(noticed, announce=sink)
    except CourseError as exc:
        event = Note(str(exc), "problem")
    if event is not None:
        sink(event)


def _handle_commands(state, commands, sink, stop):
    """Run the queued key commands; True when it is time to quit, or the SwitchTopic of `n`."""
    while True:
        try:
            command = commands.get_nowait()
        except queue.Empty:
            return stop.is_set()
        if command == "quit":
            sink(Note("stopping: closing the workers…"))
            stop.set()
            return True
        if command == "hint":
            sink(state.hint())
        elif command == "picture":
            sink(Note(f"drawing `{state.focus}`…"))
            sink(state.picture())
        elif command == "next":
            event = state.next_exercise()
            if isinstance(event, SwitchTopic):
                return event
            sink(event)


def _switch(state, topic_id, sink, pool=None):
    """Watch `topic_id` from now on (its first check runs at once); the old workers close."""
    state.close()
    topic = state.course.topic(topic_id)
    sink(Note(f"every exercise of {state.topic.id} passes. Next topic: {topic.id}, {topic.title}", "focus"))
    return Watch(state.course, topic_id, pool)


def _same_file(changed, path):
    try:
        return os.path.realpath(changed) == os.path.realpath(path)
    except OSError:
        return False
