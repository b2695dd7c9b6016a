#!/usr/bin/env bash
# The scale benchmark (docs/performance.md, "Kernel machines at scale"): on
# the same data (d = 100, y = x₀·x₁) in one run, 5 RFM updates each:
#   n = 4 000:   exact, flx against PyTorch f64 (benches/rfm's runs);
#   n = 20 000:  exact against Nyström (Laplace, m = 4 000; Gaussian, m = 2 000);
#   n = 100 000: flx Nyström against xRFM 0.4.5 on the CPU;
#   n = 10⁶:     examples/scale.flx.
# Prints a Markdown table: seconds, test MSE and peak memory per run.
#
#   benches/scale/run.sh                 # all of it: about an hour on 2 cores
#   STEPS="4000 20000" benches/scale/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
baselines
"$python" -m pip install --quiet xrfm==0.4.5
steps="${STEPS:-4000 20000 100000 1000000}"
threads="${THREADS:-2}"
data="$here/data"
# shellcheck disable=SC2086
"$python" "$here/gen.py" "$data" 20000 100000
row() { # NAME CMD...: a table row from the run's last result lines and its peak memory
    local name="$1"; shift
    /usr/bin/time -o "$here/.rss" -f "%M" "$@" > "$here/.out"
    local line
    line=$(grep -E "impl=|^total:|^iteration 5:" "$here/.out" | tr '\n' ' ')
    echo "| $name | $line | $(python3 -c "print(f'{$(cat "$here/.rss") / 2**20:.2f} GiB')") |"
}
if [[ " $steps " == *" 4000 "* ]]; then # benches/rfm's table, at n = 4000
    "$python" "$here/../rfm/gen.py" "$here/../rfm/data" 4000
    THREADS=$threads SIZES=4000 "$python" "$here/../rfm/bench.py" "$flx" "$here/../rfm"
    echo
fi
echo "| run | result | peak memory |"
echo "|---|---|---|"
for s in $steps; do
    case $s in
    20000)
        for args in "family=laplace solver=cholesky" "family=laplace solver=nystrom centers=4000" \
                    "family=gaussian solver=cholesky power=0.5" \
                    "family=gaussian solver=nystrom centers=2000 power=0.5 max_iters=40"; do
            # shellcheck disable=SC2086
            row "n = 20000 $args" "$flx" --threads "$threads" run "$here/rfm.flx" n=20000 data="$data" $args
        done ;;
    100000)
        row "n = 100000 flx gaussian nystrom m = 2000" "$flx" --threads "$threads" run "$here/rfm.flx" \
            n=100000 data="$data" family=gaussian solver=nystrom centers=2000 power=0.5 max_iters=40
        row "n = 100000 flx laplace nystrom m = 2000" "$flx" --threads "$threads" run "$here/rfm.flx" \
            n=100000 data="$data" family=laplace solver=nystrom centers=2000
        row "n = 100000 xRFM 0.4.5 CPU, leaves ≤ 20000" env OMP_NUM_THREADS="$threads" \
            "$python" "$here/xrfm_baseline.py" "$data" 100000 20000 ;;
    1000000)
        row "n = 10⁶ examples/scale.flx" "$flx" --threads "$threads" run "$root/examples/scale.flx" ;;
    esac
done
rm -f "$here/.rss" "$here/.out"
