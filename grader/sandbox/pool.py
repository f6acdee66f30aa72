"""Workers that have imported torch before they are needed.

`fmgrade watch` re-checks on every save in a fresh worker (the new source must not meet any
state of the old one), but starting a worker costs an `import torch`. A SparePool keeps one
worker that has already imported torch and waits for its source; a re-check takes it, and the
next spare starts once the re-check is over (not during it: they would share the CPU).
"""

import threading

from grader.sandbox import process as sandbox


class SparePool:
    """A `worker_factory` for proxy.Session that hands out the spare when it fits."""

    def __init__(self):
        self._lock = threading.Lock()
        self._spare = None  # (key, WorkerProcess)
        self._key = None  # the arguments of the last worker asked for
        self.hits = self.misses = 0

    def __call__(self, module_file, source, limits, isolation, hidden_roots=(), **options):
        key = (module_file, limits, isolation, tuple(str(r) for r in hidden_roots), tuple(sorted(options.items())))
        with self._lock:
            spare, self._spare = self._spare, None
            self._key = key
        if spare is not None and spare[0] == key and spare[1].proc.poll() is None:
            try:
                spare[1].load(source)
                self.hits += 1
                return spare[1]
            except sandbox.WorkerDied:
                pass
        if spare is not None:
            spare[1].close()
        self.misses += 1
        return sandbox.WorkerProcess(module_file, source, limits, isolation, hidden_roots, **options)

    def expect(self, module_file, limits, isolation, hidden_roots=()):
        """Start a spare for the worker about to be asked for with these arguments (`check`
        starts it before importing torch itself: the two imports then share the two cores)."""
        with self._lock:
            self._key = (module_file, limits, isolation, tuple(str(r) for r in hidden_roots), ())
        self.replenish()

    def replenish(self, warm_up=False):
        """Start the next spare (like the last worker asked for), unless one is waiting."""
        with self._lock:
            if self._key is None or self._spare is not None:
                return
            module_file, limits, isolation, hidden_roots, options = self._key
            self._spare = (
                self._key,
                sandbox.WorkerProcess(
                    module_file, None, limits, isolation, hidden_roots, warm_up=warm_up, **dict(options)
                ),
            )

    def close(self):
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare[1].close()
