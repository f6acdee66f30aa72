"""What a learner runs: check, watch (screen, keys), hint and progress, reset (regions), the
terminal renderings, the notebook magic and GitHub Classroom's visible run."""
