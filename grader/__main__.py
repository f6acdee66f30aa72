"""`python -m grader` is `fmgrade`."""

from grader.cli import main

if __name__ == "__main__":  # not when a spawned grading process imports this as its parent's main module
    main()
