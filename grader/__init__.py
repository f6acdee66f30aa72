"""fmgrade: an auto-graded course on foundation models, and the grader that runs it."""


def load_ipython_extension(ipython):
    """`%load_ext grader` in IPython or Jupyter: the `%fmgrade check TOPIC` magic (grader.learner.notebook)."""
    from grader.learner import notebook  # IPython only when asked for

    notebook.load_ipython_extension(ipython)
