# Sourced by the benchmark scripts: builds flx, sets $flx, and defines
# `best CMD...`, the best wall time of 3 runs of CMD in seconds, and
# `baselines`, which sets $python to the environment with NumPy, SciPy and
# PyTorch (benches/rfm/requirements.txt), installing it on first use.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
flx="$root/target/release/flx"
baselines() {
    local venv="$root/benches/rfm/.venv"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet -r "$root/benches/rfm/requirements.txt"
    fi
    python="$venv/bin/python"
}
best() {
    local best=999999
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s.%N)
        "$@" > /dev/null
        t1=$(date +%s.%N)
        best=$(python3 -c "print(min($best, $t1 - $t0))")
    done
    echo "$best"
}
