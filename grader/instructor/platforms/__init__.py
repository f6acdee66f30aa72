"""Grading where courses already grade, each platform in a module of its own:

shards           `grade --shard I/N`: a stable share of a batch for one of N hosts or CI jobs
gradescope       Gradescope: autograder.zip and the run inside it (always a results.json)
nbgrader_layout  nbgrader's course folders: submitted/ in, autograded/ and feedback/ out
submission_files a submission's exercise files, wherever a platform put them (flat or exercises/)
ipynb            a learner's notebook as the module it stands for

GitHub Classroom's student side (`fmgrade classroom`) is a learner's command (grader.learner.classroom);
the two workflows are templates (grader/instructor/templates/); the Click commands are grader.cli.platforms.
"""
