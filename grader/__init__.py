"""fmgrade: an auto-graded course on foundation models, and the grader that runs it."""
