#!/usr/bin/env bash
# The training benchmark: 1000 full-batch gradient-descent steps of a
# two-layer ReLU network (d = 100, width 512, n = 4000, float64) in flx and in
# PyTorch CPU, same thread count, interleaved and repeated 3 times; prints a
# Markdown row of the best times and their ratio (docs/performance.md).
#
#   benches/train/run.sh               # 2 threads, 1000 steps
#   THREADS=1 STEPS=200 benches/train/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
baselines
threads="${THREADS:-2}"
steps="${STEPS:-1000}"
flx_best=999999
torch_best=999999
for _ in 1 2 3; do
    out=$("$flx" --threads "$threads" run "$here/train.flx" "steps=$steps")
    t=$(echo "$out" | head -1)
    flx_loss=$(echo "$out" | tail -1)
    flx_best=$(python3 -c "print(min($flx_best, $t))")
    out=$("$python" "$here/train.py" "$threads" "$steps")
    t=$(echo "$out" | head -1)
    torch_loss=$(echo "$out" | tail -1)
    torch_best=$(python3 -c "print(min($torch_best, $t))")
done
echo "| threads | steps | flx (s) | PyTorch (s) | flx / PyTorch | final loss flx / PyTorch |"
echo "|---|---|---|---|---|---|"
python3 -c "print(f'| $threads | $steps | {$flx_best:.2f} | {$torch_best:.2f} | {$flx_best / $torch_best:.2f} | {$flx_loss:.4g} / {$torch_loss:.4g} |')"
