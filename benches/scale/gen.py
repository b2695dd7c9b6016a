"""Write the scale benchmark's data as .npy: y = x0 * x1, x ~ N(0, I_100).

Usage: gen.py DIR N...  (one training set per N, one shared test set of 10 000 rows)
"""
import sys
from pathlib import Path

import numpy as np

D, N_TEST = 100, 10_000


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "x_test.npy").exists():
        xt = np.random.default_rng(0).standard_normal((N_TEST, D))
        np.save(out / "x_test.npy", xt)
        np.save(out / "y_test.npy", xt[:, 0] * xt[:, 1])
    for n in map(int, sys.argv[2:]):
        if (out / f"x_{n}.npy").exists():
            continue
        x = np.random.default_rng(n).standard_normal((n, D))
        np.save(out / f"x_{n}.npy", x)
        np.save(out / f"y_{n}.npy", x[:, 0] * x[:, 1])


if __name__ == "__main__":
    main()
