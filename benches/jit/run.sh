#!/usr/bin/env bash
# The Monte-Carlo π loop (10^7 steps) with the JIT, in flx's interpreter
# (--no-jit) and in CPython, in the same run; best of 3 each. The comparison
# with Rust itself is `cargo bench --bench jit -- pi_loop`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
t_jit=$(best "$flx" run "$here/pi.flx")
t_int=$(best "$flx" --no-jit run "$here/pi.flx")
t_py=$(best python3 "$here/pi.py")
python3 - "$t_jit" "$t_int" "$t_py" <<'PY'
import sys
j, i, p = map(float, sys.argv[1:])
print(f"pi, 10^7 steps: flx JIT {j:.3f} s   flx interpreter {i:.2f} s   CPython {sys.version.split()[0]} {p:.2f} s")
print(f"interpreter/JIT = {i / j:.0f}   CPython/JIT = {p / j:.0f}")
PY
