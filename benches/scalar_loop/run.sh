#!/usr/bin/env bash
# The interpreter alone against CPython 3 on the same scalar loop (10^7
# iterations of arithmetic and a function call), in the same run.
# Usage: benches/scalar_loop/run.sh   (prints the best of 3 runs of each, and the ratio)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
t_flx=$(best "$flx" run "$here/loop.flx")
t_py=$(best python3 "$here/loop.py")
python3 - "$t_flx" "$t_py" <<'PY'
import sys
f, p = map(float, sys.argv[1:])
print(f"flx interpreter: {f:.2f} s   CPython {sys.version.split()[0]}: {p:.2f} s   flx/CPython = {f / p:.2f}")
PY
