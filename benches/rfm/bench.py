"""Run rfm.flx and baselines.py interleaved, collect their `key=value` lines
and print medians and ratios as a Markdown table.

Usage: bench.py FLX_BINARY BENCH_DIR   (THREADS and SIZES from the environment)
"""
import os
import statistics
import subprocess
import sys

PHASES = ["gram", "solve", "predict", "agop", "total"]


def run(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               OPENBLAS_NUM_THREADS=threads)
    # /usr/bin/time -f reports the peak resident memory of the run (KiB).
    out = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", *cmd], env=env,
                         capture_output=True, text=True, check=True)
    rss = int(out.stderr.strip().splitlines()[-1].split("=")[1])
    rows = []
    for line in out.stdout.splitlines():
        if line.startswith("impl="):
            rows.append(dict(kv.split("=") for kv in line.split()))
    for r in rows:
        r["maxrss_gib"] = rss / 2**20
    return rows


def main():
    flx, here = sys.argv[1], sys.argv[2]
    threads = os.environ["THREADS"]
    sizes = [int(n) for n in os.environ["SIZES"].split()]
    data = os.path.join(here, "data")
    py = os.path.join(here, ".venv", "bin", "python")
    results = {}
    for n in sizes:
        # Each process repeats the run and the first repeat (one-time costs) is
        # dropped; large n runs once, in one round.
        repeats, rounds = (3, 2) if n <= 4000 else (1, 1)
        impls = {
            "flx": [flx, "--threads", threads, "run", os.path.join(here, "rfm.flx"),
                    f"n={n}", f"data={data}", f"repeats={repeats}"],
            "torch": [py, os.path.join(here, "baselines.py"), "torch", data, str(n), str(repeats)],
        }
        if n <= 4000 or os.environ.get("NUMPY_LARGE"):
            impls["numpy"] = [py, os.path.join(here, "baselines.py"), "numpy", data, str(n), str(repeats)]
        for rnd in range(rounds):  # interleaved rounds, against a noisy machine
            for name, cmd in impls.items():
                rows = run(cmd, threads)
                results.setdefault((n, name), []).extend(rows[1:] or rows)
                print(f"n={n} {name} round {rnd}: total {rows[-1]['total']} s", file=sys.stderr)
    print(f"| n | impl | {' | '.join(PHASES)} | test MSE | peak memory | total / torch |")
    print("|---|---|" + "---|" * (len(PHASES) + 3))
    for n in sizes:
        med = {}
        for name in ["flx", "torch", "numpy"]:
            rows = results.get((n, name))
            if rows:
                med[name] = {k: statistics.median(float(r[k]) for r in rows)
                             for k in PHASES + ["mse", "maxrss_gib"]}
        for name, m in med.items():
            ratio = m["total"] / med["torch"]["total"]
            cells = " | ".join(f"{m[p]:.3f}" for p in PHASES)
            print(f"| {n} | {name} | {cells} | {m['mse']:.6g} | {m['maxrss_gib']:.2f} GiB | {ratio:.2f} |")


if __name__ == "__main__":
    main()
