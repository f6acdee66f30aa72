"""Grading where courses already grade, each platform in a module of its own:

shards           `grade --shard I/N`: a stable share of a batch for one of N hosts or CI jobs
classroom        GitHub Classroom: the autograding reporter's result and the "Points X/Y" notice
workflows        the two GitHub Actions workflows (student repository, instructor's kit)
gradescope       Gradescope: autograder.zip and the run inside it (always a results.json)
nbgrader_layout  nbgrader's course folders: submitted/ in, autograded/ and feedback/ out
submission_files a submission's exercise files, wherever a platform put them (flat or exercises/)
commands         the Click commands these add to `fmgrade`
"""
