#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image (Ubuntu, with the
# bundle unpacked in $AUTOGRADER_ROOT/source). It prepares the python3 that run_autograder uses:
# a virtual environment with the CPU build of torch and the grading kit's fmgrade.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/fmgrade-venv"

# python3's venv module, and bubblewrap (the strongest sandbox for learner code, where the
# container allows it). Nothing to install where both are already there.
if ! python3 -c "import ensurepip, venv" 2>/dev/null || ! command -v bwrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null
fi

# FMGRADE_VENV_OPTIONS=--system-site-packages tries the bundle on a machine that has torch already.
# shellcheck disable=SC2086
python3 -m venv ${FMGRADE_VENV_OPTIONS:-} "$VENV"
# The CPU build: the default index would bring a CUDA build of several GB.
"$VENV/bin/python3" -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
"$VENV/bin/python3" -m pip install -q "$SOURCE/kit"
# Only root may read the kit: where the container allows no sandbox, learner code then runs as a
# user id of its own that cannot read it (isolation "user").
chmod -R go-rwx "$SOURCE"
# Fail the image build now, not at the first submission.
"$VENV/bin/python3" -c "import torch, grader.instructor.platforms.gradescope"
echo "fmgrade is ready in $VENV"
