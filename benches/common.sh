# Sourced by the benchmark scripts: builds flx, sets $flx, and defines
# `best CMD...`, the best wall time of 3 runs of CMD in seconds.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
flx="$root/target/release/flx"
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
