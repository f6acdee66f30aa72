# The instructor's own run: checks under tests/checks/ use the reference solutions in-process.
pytest_plugins = ["grader.pytest_plugin"]
