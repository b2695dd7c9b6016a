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
root="$(cd "$here/../.." && pwd)"
export THREADS="${THREADS:-2}"
export SIZES="${SIZES:-1000 4000 10000}"

if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
(cd "$root" && cargo build --release --quiet)
# shellcheck disable=SC2086
"$here/.venv/bin/python" "$here/gen.py" "$here/data" $SIZES
"$here/.venv/bin/python" "$here/bench.py" "$root/target/release/flx" "$here"
