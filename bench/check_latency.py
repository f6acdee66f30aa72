"""`fmgrade check attention` (solutions dropped in) against `python -c "import torch"`.

Prints the medians and their ratio; the budget is a ratio of at most 2.0.
Usage: python bench/check_latency.py [--runs N]
"""
import argparse
import shutil
import sys

from _common import fmgrade_command, median_wall, solved_copy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--topic", default="attention")
    args = parser.parse_args()
    course = solved_copy()
    try:
        torch_import = median_wall([sys.executable, "-c", "import torch"], args.runs)
        check = median_wall(fmgrade_command() + ["check", args.topic], args.runs, cwd=course)
    finally:
        shutil.rmtree(course.parent, ignore_errors=True)
    print(f"python -c 'import torch'     median {torch_import:.2f} s over {args.runs} runs")
    print(f"fmgrade check {args.topic:<13} median {check:.2f} s over {args.runs} runs")
    print(f"ratio {check / torch_import:.2f} (budget 2.0)")


if __name__ == "__main__":
    main()
