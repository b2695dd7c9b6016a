#!/usr/bin/env bash
# The patch-kernel benchmark: krr + agop of a Laplace kernel on 3 × 3
# patches of 1000 random 16 × 16 images (10 outputs, float64), pooled
# "local" (stride 1, 196 patches) and "all" (stride 2, 49 patches), in flx
# and in PyTorch on the same data at the same thread count. Prints a
# Markdown table: seconds of each phase, flx / PyTorch, and the largest
# relative difference between the two AGOPs (docs/performance.md).
#
#   benches/patches/run.sh            # 2 threads
#   THREADS=1 benches/patches/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
baselines
threads="${THREADS:-2}"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
flx_out=$("$flx" --threads "$threads" run "$here/patches.flx" dir="$data")
torch_out=$("$python" "$here/patches.py" "$data" "$threads")
echo "| pool | flx krr (s) | flx agop (s) | torch krr (s) | torch agop (s) | flx / torch (total) | AGOP difference |"
echo "|---|---|---|---|---|---|---|"
paste <(echo "$flx_out") <(echo "$torch_out") | while read -r pool fk fa _ tk ta diff; do
    python3 -c "print(f'| $pool | {$fk:.3f} | {$fa:.3f} | {$tk:.3f} | {$ta:.3f} | {($fk + $fa) / ($tk + $ta):.2f} | {$diff:.1e} |')"
done
