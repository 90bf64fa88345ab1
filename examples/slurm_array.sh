#!/usr/bin/env bash
# Run a sweep as a Slurm job array: task k runs line k of a command file.
#
# `--emit slurm-array FILE` writes one `mnistexp train ...` command per line to FILE and prints
# an sbatch line like
#   sbatch --array=1-30%8 --job-name=mnistexp-sweep --cpus-per-task=1 \
#     --output=/abs/runs/slurm-%A_%a.out --wrap 'sed -n "${SLURM_ARRAY_TASK_ID}p" /abs/runs/sweep.txt | bash'
# Every path in the commands is absolute, so the line can be submitted from any directory (see
# README, "On a cluster", for what was tested on a real cluster). Runs land in the shared runs folder (it must be on a filesystem every node sees). Finished
# runs are skipped, so resubmitting the same array after a timeout or preemption only trains
# what is missing; with `--set train.checkpoint_every=N --resume` below, a run that hit the
# time limit (Slurm sends SIGTERM: the run is marked interrupted, exit 143) continues from
# its last checkpoint instead of starting over. A run left `running` by a job killed hard
# (SIGKILL, node crash) on another node stops refreshing its heartbeat; once that is older than
# the lease (MNISTEXP_LEASE_SECONDS, default 300 s) the next submission retrains it.
#
# Usage: examples/slurm_array.sh [MAX_AT_ONCE [SWEEP OPTIONS...]]
set -euo pipefail
LIMIT="${1:-8}"
shift || true
HERE="$(cd "$(dirname "$0")" && pwd)"
RUNS="${MNISTEXP_RUNS_DIR:-$PWD/runs}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1  # sbatch passes the env on

# Print the snippet, then submit it (drop the `| tail -1 | bash` to only look at it).
mnistexp sweep "$HERE/../configs/sweeps/encodings.yaml" --runs-dir "$RUNS" \
  --set train.checkpoint_every=1 --resume "$@" \
  --emit slurm-array "$RUNS/sweep.txt" --array-limit "$LIMIT" | tee /dev/stderr | tail -1 | bash

# When the array is done:   mnistexp compare "$RUNS"
