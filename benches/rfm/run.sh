#!/usr/bin/env bash
# The RFM benchmark: the same run (Laplace, L = 10, reg = 1e-3, 5 updates of
# M, d = 100) in flx, NumPy and PyTorch (CPU, float64), on the same CSVs, with
# the same number of threads, interleaved and repeated; prints a Markdown
# table of per-phase times and ratios (docs/performance.md).
#
#   benches/rfm/run.sh                 # n = 1000 4000 10000, 2 threads
#   THREADS=1 SIZES="1000 4000" benches/rfm/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
baselines
export THREADS="${THREADS:-2}"
export SIZES="${SIZES:-1000 4000 10000}"
# shellcheck disable=SC2086
"$python" "$here/gen.py" "$here/data" $SIZES
"$python" "$here/bench.py" "$flx" "$here"
