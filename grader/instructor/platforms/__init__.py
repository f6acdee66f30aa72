"""Grading where courses already grade, each platform in a module of its own:

shards           `grade --shard I/N|auto`: a stable share of a batch for one of N hosts, CI jobs,
                 Slurm array tasks or Kubernetes Indexed Job pods (auto: I/N from their environment)
lms              `export canvas|moodle`: an LMS's gradebook import CSV from grade's JSON results
gradescope       Gradescope: autograder.zip and the run inside it (always a results.json)
nbgrader_layout  nbgrader's course folders: submitted/ in, autograded/ and feedback/ out
submission_files a submission's exercise files, wherever a platform put them (flat or exercises/)
ipynb            a learner's notebook as the module it stands for

GitHub Classroom's student side (`fmgrade classroom`) is a learner's command (grader.learner.classroom);
the two workflows, the Slurm array script, the Kubernetes Indexed Job manifest and the kit's Dockerfile
are templates (grader/instructor/templates/); the Click commands are grader.cli.platforms.
"""
