"""Single key presses from the terminal, where it allows them: cbreak mode through termios on
POSIX, msvcrt on Windows, nothing when stdin is not a terminal (a pipe, an IDE's output pane).

`reader(commands)` turns h, n, p and q into "hint", "next", "picture" and "quit" on the queue `commands`
while the `with` block runs, and always gives the terminal back its settings.
"""

import contextlib
import os
import sys
import threading

COMMANDS = {"h": "hint", "n": "next", "p": "picture", "q": "quit"}
WAKE_S = 0.2


@contextlib.contextmanager
def reader(commands, stream=None):
    """Yields True when keys are read, False when this terminal (or no terminal) does not allow it."""
    stream = stream if stream is not None else sys.stdin
    try:
        interactive = stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        interactive = False
    if not interactive:
        yield False
        return
    stop = threading.Event()
    if os.name == "nt":
        thread = threading.Thread(target=_read_windows, args=(commands, stop), daemon=True)
        thread.start()
        try:
            yield True
        finally:
            stop.set()
        return
    import termios
    import tty

    # A descriptor of our own for the terminal: pytest, run in this process by each check, puts
    # /dev/null on descriptor 0 while it runs, which would end a reader of descriptor 0.
    fd = os.dup(stream.fileno())
    try:
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)  # keys arrive one by one, without echo; Ctrl-C still interrupts
    except termios.error:
        os.close(fd)
        yield False
        return
    thread = threading.Thread(target=_read_posix, args=(fd, commands, stop), daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join(1)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        os.close(fd)


def _read_posix(fd, commands, stop):
    import select

    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], WAKE_S)
        if not ready:
            continue
        try:
            data = os.read(fd, 32)
        except OSError:
            return
        if not data:
            return
        _put(data.decode("utf-8", "replace"), commands)


def _read_windows(commands, stop):
    import msvcrt  # noqa: F401 - only on Windows

    while not stop.wait(WAKE_S / 4):
        while msvcrt.kbhit():
            _put(msvcrt.getwch(), commands)


def _put(text, commands):
    for key in text.lower():
        if key in COMMANDS:
            commands.put(COMMANDS[key])
