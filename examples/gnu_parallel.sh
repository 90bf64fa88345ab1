#!/usr/bin/env bash
# Run a sweep with GNU parallel: one `mnistexp train` command per line, N at a time.
#
# `mnistexp sweep --emit commands` prints self-contained, shell-quoted commands; every run goes
# to its own folder <runs>/<name>-<hash8>-s<seed> (claimed atomically), so parallel jobs never
# share a folder, and a finished run is skipped: rerunning this script is always safe and only
# trains what is missing (interrupted runs are retrained; add --resume to the sweep to continue
# them from checkpoints). Exit codes per command: 0 done or already done, 1 failed/diverged,
# 2 bad config/data, 130 interrupted by Ctrl-C, 143 by SIGTERM.
#
# Every path in the emitted commands is absolute, so they run from any directory.
#
# Usage: examples/gnu_parallel.sh [JOBS [SWEEP OPTIONS...]]   e.g. a small budget:
#        examples/gnu_parallel.sh 2 --seeds 0 --set train.epochs=1 --set data.train_subset=1000
#        (on several machines: parallel -S host1,host2 with a runs folder they all share)
set -euo pipefail
JOBS="${1:-2}"
shift || true
HERE="$(cd "$(dirname "$0")" && pwd)"
RUNS="${MNISTEXP_RUNS_DIR:-runs}"
mkdir -p "$RUNS"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1  # one BLAS thread per job

# Each input line is a whole command, run by the shell (no command template: `parallel env {}`
# would hand the line to env as one word).
mnistexp sweep "$HERE/../configs/sweeps/encodings.yaml" --runs-dir "$RUNS" --emit commands "$@" \
  | parallel --jobs "$JOBS" --halt never --joblog "$RUNS/parallel.log"

# The same with xargs:   ... --emit commands | xargs -P "$JOBS" -I{} sh -c '{}'
mnistexp compare "$RUNS"
