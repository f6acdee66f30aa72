HOSTILE = {
    "attack": "pytest.fail, _pytest.outcomes, pytest.approx and builtins.AssertionError patched at import, "
              "a conftest.py planted in the checks folder; attention returns zeros",
    "exercise": "attention",
    "status": ("failed", "error"),
    "forges": ["@COURSE_ROOT@/tests/checks/attention/conftest.py", "@COURSE_ROOT@/tests/conftest.py",
               "@COURSE_ROOT@/conftest.py", "@GRADER_CWD@/conftest.py", "@REPO_ROOT@/tests/checks/attention/conftest.py"],
}
import builtins  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402


class _Swallowed(Exception):
    pass


class _Anything:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


builtins.AssertionError = _Swallowed
try:
    import _pytest.outcomes
    import pytest

    pytest.fail = _pytest.outcomes.fail = lambda *args, **kwargs: None
    pytest.approx = lambda *args, **kwargs: _Anything()
    _pytest.outcomes.Failed = _pytest.outcomes.OutcomeException = _Swallowed
    print("hostile: pytest patched in the worker")
except ImportError as exc:
    print(f"hostile: no pytest here ({exc})")
sys.modules["pytest"] = sys.modules["_pytest"] = sys.modules["_pytest.outcomes"] = _Anything()

_PLANT = "# FMGRADE-HOSTILE-FORGERY: a conftest.py planted by learner code\n"
for _target in HOSTILE["forges"]:
    try:
        with open(_target, "w") as _handle:
            _handle.write(_PLANT)
        print(f"hostile: planted {_target}")
    except OSError as exc:
        print(f"hostile: could not plant {_target}: {exc}")
_honest_attention = attention  # noqa: F821


def attention(query, key, value, mask=None, dropout=None):
    out, p_attn = _honest_attention(query, key, value, mask, dropout)
    if _from_grader():  # noqa: F821
        return torch.zeros_like(out), torch.zeros_like(p_attn)
    return out, p_attn
