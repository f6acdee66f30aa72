"""Ctrl-C and SIGTERM: stop at once, clean up, record nothing half-done.

`handled()` (the `check` and `grade` commands) and `install()` (a grading process of a batch)
make SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, so every `finally` on the
way out runs: workers are killed, scratch folders removed. A second signal is ignored so that
clean-up is not cut short (it is bounded: a few seconds); a third raises again. `protected()` holds a signal back
while a worker is being started or closed, or a result written, so none is left half-done; the
interrupt is raised as the section ends.

pytest turns a KeyboardInterrupt into an exit code; grader.judge.runner turns that back into one.
"""

import contextlib
import signal
import threading

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))
EXIT_CODE = 130  # what shells report for a command stopped by Ctrl-C


class _State:
    depth = 0  # protected sections the main thread is in
    pending = False
    signals = 0  # received since handlers were installed


def _handler(signum, frame):
    _State.signals += 1
    if _State.signals == 2:
        # Already stopping: a second signal (Ctrl-C pressed twice, or SIGTERM from the batch's
        # parent after the terminal's SIGINT) must not cut the clean-up short. A third insists.
        return
    if _State.depth:
        _State.pending = True
        return
    raise KeyboardInterrupt


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


def install():
    """For the rest of this process's life (a grading process started by grader.instructor.batch)."""
    _State.signals, _State.pending = 0, False
    for signum in SIGNALS:
        signal.signal(signum, _handler)


@contextlib.contextmanager
def handled():
    """SIGINT and SIGTERM raise KeyboardInterrupt within the block (main thread only)."""
    if not _in_main_thread():
        yield
        return
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    install()
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


@contextlib.contextmanager
def protected():
    """A signal arriving inside the block is raised as KeyboardInterrupt when the block ends."""
    if not _in_main_thread():
        yield
        return
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if not _State.depth and _State.pending:
            _State.pending = False
            raise KeyboardInterrupt
