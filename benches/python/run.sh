#!/usr/bin/env bash
# The boundary benchmark (docs/performance.md, "flx from Python"): the same
# krr + agop (Laplace, n = 4000, d = 100) run by `flx run` and called from
# Python on NumPy arrays (the array in, the fit, M back out), interleaved,
# best of 5 each. The ratio should be at most 1.05: no hidden copies at the
# boundary. Builds the package (release) into benches/rfm's environment.
#
#   benches/python/run.sh            # n = 4000, 2 threads
#   N=10000 benches/python/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
baselines
"$python" -m pip install --quiet --force-reinstall --no-deps "$root/python"
THREADS="${THREADS:-2}" N="${N:-4000}" "$python" "$here/bench.py" "$flx"
