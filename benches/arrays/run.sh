#!/usr/bin/env bash
# Views and dtypes (issue 19): `R.T @ v` against `v @ R`, `reshape` of 6.5M
# elements, an Int elementwise chain against the Float one; all measured in
# one flx run, so the figures are ratios on this machine.
# Usage: benches/arrays/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
"$flx" run "$here/arrays.flx"
