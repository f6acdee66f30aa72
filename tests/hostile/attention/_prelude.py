# --- fmgrade hostile bank: appended after the reference solution, before the attack -----
# Not an attack: tests/test_hostile.py builds every hostile learner module as
#   solutions/attention.py + this file + one attack file of this folder.
# An attack file is never imported by the test process; only the worker runs it.
import sys as _hostile_sys


def _from_grader():
    """True when the attacked function was called by the grader (a check through the proxy,
    or a check's helper); False when the learner's own code calls it (greedy_decode calling
    subsequent_mask, MultiHeadedAttention calling attention). Attacks fire only in the
    first case, so points lost elsewhere are the sandbox's fault, not the attack's."""
    return _hostile_sys._getframe(2).f_globals is not globals()
