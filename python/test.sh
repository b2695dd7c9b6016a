#!/usr/bin/env bash
# The Python package's tests (python/tests, with pytest): builds python/ with
# maturin into a virtual environment (python/.venv, made on first use, or
# $FLX_VENV) with NumPy, pytest, IPython, ipykernel, jupyter_client and
# nbclient from PyPI, then runs the tests, the example notebook among them.
# The extension is built with Cargo's dev profile, whose settings the test
# profile shares (Cargo.toml), so that it reuses what `cargo test` compiled.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${FLX_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# What the tests need: the magic through IPython, the kernel through
# jupyter_client, the notebook through nbclient.
"$venv/bin/python" -m pip install --quiet numpy pytest ipython ipykernel jupyter_client nbclient nbformat
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$here"
cd "$here"
# The pytest script, not `python -m pytest`: the folder flx/ here has no
# extension module in it, and must not shadow the installed package.
exec "$venv/bin/pytest" -q tests "$@"
