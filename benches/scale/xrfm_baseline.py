"""xRFM 0.4.5 on the CPU on the scale benchmark's data: its tree with RFM
leaves (Laplace 'l2' kernel, bandwidth 10, reg 1e-3, 5 iterations, M
normalised and the AGOP on at most 20 000 rows, as its defaults), leaves of
at most LEAF rows so that each leaf's exact solve fits in memory.

Usage: xrfm_baseline.py DATA_DIR N LEAF   (prints one key=value line)
"""
import sys
import time

import numpy as np
import torch


def main():
    from xrfm import xRFM

    data, n, leaf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = np.load(f"{data}/x_{n}.npy")
    y = np.load(f"{data}/y_{n}.npy")[:, None]
    Xt = np.load(f"{data}/x_test.npy")
    yt = np.load(f"{data}/y_test.npy")[:, None]
    torch.manual_seed(0)
    # xRFM tunes on validation data: a tenth of the training rows.
    nv = n // 10
    start = time.perf_counter()
    model = xRFM(
        rfm_params={"model": {"kernel": "l2", "bandwidth": 10.0, "exponent": 1.0,
                              "diag": False, "bandwidth_mode": "constant"},
                    "fit": {"reg": 1e-3, "iters": 5, "verbose": False,
                            "early_stop_rfm": False}},
        max_leaf_size=leaf, device=torch.device("cpu"), tuning_metric="mse", verbose=False)
    model.fit(X[nv:], y[nv:], X[:nv], y[:nv])
    total = time.perf_counter() - start
    mse = float(np.mean((model.predict(Xt) - yt) ** 2))
    print(f"impl=xrfm n={n} leaf={leaf} total={total:.6g} mse={mse:.6g}")


if __name__ == "__main__":
    main()
