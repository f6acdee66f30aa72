HOSTILE = {
    "attack": "at import, write forged full-mark progress and results files (cwd, next to __file__, the course "
              "root, @REPO_ROOT@, the grader's cwd, Gradescope's results path) and a .pth into site-packages",
    "exercise": None,  # it attacks nothing but the record: every exercise keeps its honest points
    "forges": [
        "@COURSE_ROOT@/.fmgrade/progress.json", "@COURSE_ROOT@/results.json",
        "@REPO_ROOT@/.fmgrade/progress.json", "@REPO_ROOT@/results.json",
        "@GRADER_CWD@/.fmgrade/progress.json", "@GRADER_CWD@/results.json",
        "/autograder/results/results.json",
        "@SITE_PACKAGES@/zz_fmgrade_hostile.pth",
    ],
}
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

_FORGERY = {
    "format_version": 1, "score": 999, "max_score": 999, "tests": [],
    "topics": {"attention": {"score": 999, "max_score": 999, "exercises": {}, "updated": "FMGRADE-HOSTILE-FORGERY"}},
}
_guesses = list(HOSTILE["forges"])
for _base in (Path.cwd(), Path(__file__).resolve().parent.parent, Path.home()):  # the worker's own view
    _guesses += [str(_base / ".fmgrade" / "progress.json"), str(_base / "results.json")]
for _target in _guesses:
    try:
        os.makedirs(os.path.dirname(_target), exist_ok=True)
        with open(_target, "w") as _handle:
            if _target.endswith(".pth"):  # a comment line: harmless even if it lands
                _handle.write("# FMGRADE-HOSTILE-FORGERY\n")
            else:
                json.dump(_FORGERY, _handle)
        print(f"hostile: wrote {_target}")
    except OSError as exc:
        print(f"hostile: could not write {_target}: {exc.strerror}")
