"""The wall-clock time one submission may take in `fmgrade grade`, shared by its topics.

Its end is enforced where the time goes: a topic's time limit is cut to what is left, a
watchdog kills the worker when the budget runs out (the call in flight fails), and topics not
yet begun get a timeout for every check without starting learner code.
"""

import threading
import time

WORKER_START = 30  # seconds a worker may take to start and import the learner module (grader.sandbox.proxy)


def default_seconds(course, topics):
    """What every topic may take by its own limits, end to end: the longest honest grading.

    A topic's clock counts only checks that returned (grader.judge.plugin.TopicClock); each
    exercise may besides lose one call's timeout before its other checks are skipped."""
    return sum(_topic_seconds(course.topic(t)) for t in topics)


def _topic_seconds(topic):
    limits = topic.limits
    return limits.topic_timeout + max(len(topic.exercises), 1) * limits.call_timeout + WORKER_START


class Budget:
    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(self.end - time.monotonic(), 0.0)

    def spent(self):
        return time.monotonic() >= self.end

    @property
    def reason(self):
        return f"not finished: grading this submission took longer than its budget of {self.seconds:g} s"

    def watch(self, session):
        """Kill `session`'s worker when the budget runs out; returns the timer (cancel it)."""
        timer = threading.Timer(self.remaining(), session.stop, (self.reason,))
        timer.daemon = True
        timer.start()
        return timer
