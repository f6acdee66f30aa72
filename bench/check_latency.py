"""`fmgrade check attention` (solutions dropped in) against `python -c "import torch"`.

Prints the medians and their ratio (budget: 2.0). It also times the same command on a copy
without the `copy_task` exercise, whose checks train a model for about a second (plus the
0.9 s `torch._dynamo` import that any torch optimizer triggers): that ratio is the grader's
own cost, the design's "2x import torch plus the checks' own compute".
Usage: python bench/check_latency.py [--runs N]
"""

import argparse
import ast
import shutil
import sys

import yaml
from _common import fmgrade_command, median_wall, solved_copy

from grader.instructor.release import _remove_nodes

HEAVY = "copy_task"


def without_exercise(course_root, topic, exercise):
    """Drop one exercise and its checks from a course copy."""
    outline = yaml.safe_load((course_root / "course.yml").read_text())
    for section in outline["sections"]:
        for entry in section["topics"]:
            if entry["id"] == topic:
                entry["exercises"] = [e for e in entry["exercises"] if e["id"] != exercise]
    (course_root / "course.yml").write_text(yaml.safe_dump(outline, sort_keys=False))
    for path in (course_root / "tests" / "checks" / topic).glob("test_*.py"):
        source = path.read_text()
        drop = [
            node
            for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef)
            and f'exercise("{exercise}")' in "".join(ast.unparse(d) for d in node.decorator_list).replace("'", '"')
        ]
        if drop:
            path.write_text(_remove_nodes(source, drop))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--topic", default="attention")
    args = parser.parse_args()
    course, light = solved_copy(), solved_copy()
    if args.topic == "attention":
        without_exercise(light, "attention", HEAVY)
    try:
        torch_import = median_wall([sys.executable, "-c", "import torch"], args.runs)
        check = median_wall(fmgrade_command() + ["check", args.topic], args.runs, cwd=course)
        check_light = median_wall(fmgrade_command() + ["check", args.topic], args.runs, cwd=light)
    finally:
        shutil.rmtree(course.parent, ignore_errors=True)
        shutil.rmtree(light.parent, ignore_errors=True)
    print(f"python -c 'import torch'             median {torch_import:.2f} s over {args.runs} runs")
    print(f"fmgrade check {args.topic:<21} median {check:.2f} s   ratio {check / torch_import:.2f} (budget 2.0)")
    if args.topic == "attention":
        print(
            f"  same without the {HEAVY} checks     median {check_light:.2f} s   ratio {check_light / torch_import:.2f}"
            f"   (the training checks' own compute: {check - check_light:.2f} s)"
        )


if __name__ == "__main__":
    main()
