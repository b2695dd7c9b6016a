#!/usr/bin/env bash
# The vmap benchmark: per-example gradients of a two-layer MLP (d = 100,
# width 256, 1000 rows, float64) by vmap(grad(f)), against one grad of the
# mean loss, in flx and in PyTorch (torch.func) at the same thread count.
# Prints a Markdown row: seconds of each, vmap / grad within each,
# flx / PyTorch for the per-example gradients, and the seconds flx takes to
# write fresh memory of the output's size (docs/performance.md).
#
#   benches/vmap/run.sh            # 2 threads
#   THREADS=1 benches/vmap/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
baselines
threads="${THREADS:-2}"
flx_out=$("$flx" --threads "$threads" run "$here/vmap.flx")
torch_out=$("$python" "$here/vmap.py" "$threads")
read -r f_one f_each _ f_write <<< "$(echo $flx_out)"
read -r t_one t_each <<< "$(echo $torch_out)"
echo "| threads | flx grad (s) | flx vmap(grad) (s) | flx ratio | torch grad (s) | torch vmap(grad) (s) | torch ratio | vmap(grad) flx / torch | writing the output (s) | its ratio to grad |"
echo "|---|---|---|---|---|---|---|---|---|---|"
python3 -c "print(f'| $threads | {$f_one:.4f} | {$f_each:.4f} | {$f_each / $f_one:.1f} | {$t_one:.4f} | {$t_each:.4f} | {$t_each / $t_one:.1f} | {$f_each / $t_each:.1f} | {$f_write:.4f} | {$f_write / $f_one:.1f} |')"
