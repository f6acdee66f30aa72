"""`python -m grader` is `fmgrade`."""
from grader.cli import main

main()
