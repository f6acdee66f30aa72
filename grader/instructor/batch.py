"""Running a batch's gradings in parallel processes, losing none and waiting on none forever.

A small pool of long-lived grading processes (each imports torch once): the parent knows which
process grades which submission, so
  - a result is handed over (`on_result`) the moment it arrives;
  - a process that dies, or overruns its hard time limit, costs only its own submission, which
    then gets a result from `fallback(index, reason)` computed in a fresh process;
  - Ctrl-C or SIGTERM stops every process: each one gets SIGTERM, which grader.interrupts turns
    into KeyboardInterrupt, so it kills its learner-code worker and removes its scratch folder;
    nothing is recorded for the submissions in flight, and KeyboardInterrupt reaches the caller.
"""

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections import deque

from grader import interrupts

STOP_GRACE = 60  # seconds an interrupted grading process may take to clean up (a loaded machine is slow) before SIGKILL


def _context():
    methods = multiprocessing.get_all_start_methods()
    # forkserver: children start clean (no torch threads inherited) and import torch once each.
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _die_with_parent():
    """Linux: a grading process gets SIGTERM when its parent dies (even by SIGKILL), so it
    still cleans up its worker. Its parent is the grader, or the forkserver that lives as long."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _release_the_forkserver():
    """A forkserver's child inherits the grader's end of the pipe whose closing tells the
    forkserver that the grader is gone. Kept open here, a grader killed outright would leave
    the forkserver, and with it this process (see _die_with_parent), running for ever."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        os.close(fd)
        server._forkserver_alive_fd = None


def _serve(conn):
    """A grading process: run (index, function, args) requests until told to stop."""
    interrupts.install()
    _release_the_forkserver()
    _die_with_parent()
    sys.dont_write_bytecode = True  # the grader writes nothing into the kit (see grader.instructor.kit)
    try:
        while True:
            message = conn.recv()
            if message is None:
                return
            index, function, args = message
            try:
                outcome = ("ok", function(*args))
            except Exception as exc:  # noqa: BLE001 - the parent decides; keep this process alive
                outcome = ("raise", _picklable(exc))
            conn.send((index, outcome))
    except KeyboardInterrupt:
        sys.exit(interrupts.EXIT_CODE)
    except (EOFError, OSError):  # the parent is gone
        return


def _picklable(exc):
    import pickle

    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class _Process:
    def __init__(self, context):
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.index = self.deadline = None
        self.reason = None  # set while it computes a fallback: why the real grading was lost

    @property
    def fallback(self):
        return self.reason is not None

    def give(self, index, function, args, deadline, reason=None):
        self.index, self.deadline, self.reason = index, deadline, reason
        self.conn.send((index, function, args))

    def receive(self):
        """Its reply, or None when it ended without one."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        self.process.join(5)
        return None

    def stop(self, interrupt):
        """Ask it to end (interrupt: SIGTERM, so work in flight is abandoned and cleaned up)."""
        if not self.process.is_alive():
            return
        if interrupt:
            self.process.terminate()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.terminate()

    def reap(self, deadline):
        self.process.join(max(deadline - time.monotonic(), 0))
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def run(count, task, fallback, last_resort, jobs, on_result, time_limit=None):
    """Compute `count` results in up to `jobs` processes; returns them in order.

    task(i) -> (function, args): what computes result i in a grading process.
    fallback(i, reason) -> (function, args): a stand-in for result i, when the process computing
    it died or overran `time_limit` seconds; last_resort(i, reason): a stand-in computed here,
    when the fallback's process failed too. on_result(i, result) is called as each arrives.
    An exception raised by `function` is raised here, after every process has been stopped.
    """
    context = _context()
    pending, results = deque((i, None) for i in range(count)), [None] * count
    processes, aborted = [], True

    def finish(index, result):
        results[index] = result
        with interrupts.protected():  # a finished result is always handed over whole
            on_result(index, result)

    try:
        while pending or any(p.index is not None for p in processes):
            with interrupts.protected():  # no process is left started but unknown
                _give_out(processes, pending, jobs, context, task, fallback, time_limit)
            busy = [p for p in processes if p.index is not None]
            deadlines = [p.deadline for p in busy if p.deadline is not None]
            timeout = max(min(deadlines) - time.monotonic(), 0) if deadlines else None
            ready = multiprocessing.connection.wait(
                [p.conn for p in busy] + [p.process.sentinel for p in busy], timeout
            )
            for process in busy:
                lost = None
                if process.conn in ready or process.process.sentinel in ready:
                    reply = process.receive()
                    if reply is not None:
                        index, (kind, value) = reply
                        if kind == "raise":
                            raise value
                        process.index = process.deadline = None
                        finish(index, value)
                        continue
                    if process.process.exitcode == interrupts.EXIT_CODE:  # Ctrl-C or SIGTERM reached it
                        raise KeyboardInterrupt
                    lost = f"its grading process died ({_exit_text(process.process.exitcode)})"
                elif process.deadline is not None and time.monotonic() >= process.deadline:
                    lost = f"its grading did not finish within {time_limit:g} s, so it was stopped"
                if lost:
                    index, was_fallback = process.index, process.fallback
                    processes.remove(process)
                    with interrupts.protected():
                        process.stop(interrupt=True)
                        process.reap(time.monotonic() + STOP_GRACE)
                    if was_fallback:
                        finish(index, last_resort(index, process.reason))
                    else:
                        pending.appendleft((index, f"not graded: {lost}"))
        aborted = False
        return results
    finally:
        with interrupts.protected():
            for process in processes:
                process.stop(interrupt=aborted)
            end = time.monotonic() + STOP_GRACE
            for process in processes:
                process.reap(end)


def _give_out(processes, pending, jobs, context, task, fallback, time_limit):
    """Hand pending work to idle processes, starting new ones up to `jobs`."""
    processes[:] = [p for p in processes if p.index is not None or p.process.is_alive()]
    for process in [p for p in processes if p.index is None] + [None] * (jobs - len(processes)):
        if not pending:
            return
        if process is None:
            process = _Process(context)
            processes.append(process)
        index, reason = pending.popleft()
        function, args = fallback(index, reason) if reason else task(index)
        try:
            process.give(index, function, args, time.monotonic() + time_limit if time_limit else None, reason)
        except OSError:  # it died while idle: the work goes back, the next round starts another
            pending.appendleft((index, reason))
            process.index = None


def _exit_text(code):
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
