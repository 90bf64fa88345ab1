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
# Usage: examples/gnu_parallel.sh [JOBS]      (on several machines: parallel -S host1,host2
#        with a runs folder they all share)
set -euo pipefail
JOBS="${1:-2}"
RUNS="${MNISTEXP_RUNS_DIR:-runs}"

mnistexp sweep configs/sweeps/encodings.yaml --runs-dir "$RUNS" --emit commands \
  | parallel --jobs "$JOBS" --halt never --joblog "$RUNS/parallel.log" \
      env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 {}

# The same with xargs:   ... --emit commands | xargs -P "$JOBS" -I{} sh -c '{}'
mnistexp compare "$RUNS"
