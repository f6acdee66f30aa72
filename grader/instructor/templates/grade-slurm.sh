#!/bin/bash
# Grade a class on a Slurm cluster: a job array of N shards, each recording its students in the
# shared PostgreSQL gradebook, then one job that merges the shards' results.
#
# On a login node, with fmgrade installed from this kit (a venv on the shared filesystem) and the
# submissions in one folder per student:
#
#   export FMGRADE_KIT=/shared/kit FMGRADE_SUBMISSIONS=/shared/submissions FMGRADE_RESULTS=/shared/results
#   export FMGRADE_GRADEBOOK_URL=postgresql://grader@db.example/course   # optional
#   export FMGRADE=/shared/venv/bin/fmgrade                             # default: fmgrade on PATH
#   export FMGRADE_GRADE_OPTIONS="--topics attention,llama --seed 7"    # optional, for every task
#   bash grade-slurm.sh submit 8         # 8 array tasks (--array=0-7), then the merge
#
# `submit` runs `sbatch --array=0-(N-1) grade-slurm.sh grade` and then
# `sbatch --dependency=afterany:JOB grade-slurm.sh merge`. Each array task runs
# `fmgrade grade --shard auto`, which reads its shard from SLURM_ARRAY_TASK_ID and the array's
# bounds, so no task is told its index by hand; a student belongs to one shard by a hash of their
# id. The merge writes RESULTS/summary.csv (exit 1 naming any student without a result) and, where
# this fmgrade has it, RESULTS/report/. Slurm passes the submitting shell's environment on to
# every job (sbatch --export=ALL, its default), which is how the variables above reach them.
#
# The options below are each task's share of a node; fmgrade grades --jobs submissions at once
# (default: the task's CPUs). Install bubblewrap on the compute nodes for the strongest sandbox.
#SBATCH --job-name=fmgrade
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --output=fmgrade-%x-%A_%a.out
set -euo pipefail
shopt -s nullglob

step="${1:-grade}"
fmgrade="${FMGRADE:-fmgrade}"
kit="${FMGRADE_KIT:?set FMGRADE_KIT to the grading kit folder}"
submissions="${FMGRADE_SUBMISSIONS:?set FMGRADE_SUBMISSIONS to the folder with one folder per student}"
results="${FMGRADE_RESULTS:?set FMGRADE_RESULTS to a folder on the shared filesystem}"

case "$step" in
submit)
    shards="${2:?usage: grade-slurm.sh submit N (the number of shards)}"
    if ! [ "$shards" -ge 1 ] 2>/dev/null; then
        echo "grade-slurm.sh: N must be a whole number of at least 1, not '$shards'" >&2
        exit 2
    fi
    script="$(realpath "$0")"
    mkdir -p "$results"
    job="$(sbatch --parsable --array="0-$((shards - 1))" "$script" grade)"
    job="${job%%;*}" # --parsable prints JOBID or JOBID;CLUSTER
    merge="$(sbatch --parsable --dependency="afterany:$job" --job-name=fmgrade-merge "$script" merge)"
    echo "submitted grading array $job ($shards shards) and merge job ${merge%%;*}; results in $results"
    ;;
grade)
    : "${SLURM_ARRAY_TASK_ID:?the grade step runs as a Slurm array task (bash grade-slurm.sh submit N)}"
    folders=("$submissions"/*/)
    if [ "${#folders[@]}" -eq 0 ]; then
        echo "grade-slurm.sh: no submission folders in $submissions" >&2
        exit 2
    fi
    gradebook=()
    if [ -n "${FMGRADE_GRADEBOOK_URL:-}" ]; then
        gradebook=(--gradebook "$FMGRADE_GRADEBOOK_URL")
    fi
    # Exit status 1 means some check failed, which a class always has; 2 is a real problem.
    status=0
    read -r -a options <<<"${FMGRADE_GRADE_OPTIONS:-}" # a fixed --seed makes a re-run reproduce the hidden inputs
    "$fmgrade" grade "${folders[@]}" --kit "$kit" --shard auto --format json \
        --output "$results/shard-$SLURM_ARRAY_TASK_ID" --jobs "${SLURM_CPUS_PER_TASK:-1}" \
        "${gradebook[@]}" "${options[@]}" || status=$?
    [ "$status" -le 1 ]
    ;;
merge)
    mkdir -p "$results"
    summaries=("$results"/shard-*/summary.csv)
    if [ "${#summaries[@]}" -eq 0 ]; then
        echo "grade-slurm.sh: no shard wrote a summary.csv in $results/shard-*/" >&2
        exit 2
    fi
    students="$results/students.txt"
    for folder in "$submissions"/*/; do basename "$folder"; done >"$students"
    # Exit status 1: a student has no result (a task failed); the report is still made.
    status=0
    "$fmgrade" shards merge "${summaries[@]}" --expect "$students" --output "$results/summary.csv" || status=$?
    if "$fmgrade" report --help >/dev/null 2>&1; then
        "$fmgrade" report "$results"/shard-*/ --course "$kit" --output "$results/report" || status=1
    fi
    exit "$status"
    ;;
*)
    echo "usage: grade-slurm.sh submit N | grade | merge" >&2
    exit 2
    ;;
esac
