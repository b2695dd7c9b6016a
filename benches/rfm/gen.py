"""Write the benchmark's data: y = x0 * x1 with x ~ N(0, I_100), as CSV.

Usage: gen.py DIR N...  (one training set per N, one shared test set of 1000 rows)
"""
import sys
from pathlib import Path

import numpy as np

D, N_TEST = 100, 1000


def write(path, a):
    np.savetxt(path, a, delimiter=",", fmt="%.17g")


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    xt = rng.standard_normal((N_TEST, D))
    if not (out / "x_test.csv").exists():
        write(out / "x_test.csv", xt)
        write(out / "y_test.csv", xt[:, 0] * xt[:, 1])
    for n in map(int, sys.argv[2:]):
        if (out / f"x_{n}.csv").exists():
            continue
        x = np.random.default_rng(n).standard_normal((n, D))
        write(out / f"x_{n}.csv", x)
        write(out / f"y_{n}.csv", x[:, 0] * x[:, 1])


if __name__ == "__main__":
    main()
