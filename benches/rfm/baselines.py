"""RFM baselines for the benchmark: the same run as rfm.flx in NumPy (with
SciPy's Cholesky) and in PyTorch (CPU, float64), written as an experienced user would: BLAS GEMMs for
the geometry, a Cholesky solve, and the AGOP through GEMMs (no loop over rows).

Usage: baselines.py numpy|torch DATA_DIR N REPEATS
Prints one line of `key=value` fields per repeat (seconds per phase).
"""
import sys
import time

import numpy as np

L, REG, ITERS = 10.0, 1e-3, 5




class Numpy:
    name = "numpy"

    @staticmethod
    def asarray(a):
        return np.ascontiguousarray(a)

    @staticmethod
    def sqdist(X, Z, M):
        XM = X @ M
        xn = np.einsum("ij,ij->i", XM, X)
        zn = np.einsum("ij,ij->i", Z @ M, Z)
        d2 = XM @ Z.T
        d2 *= -2
        d2 += xn[:, None]
        d2 += zn[None, :]
        np.maximum(d2, 0, out=d2)
        return d2

    @staticmethod
    def kernel(d2):
        K = np.sqrt(d2)
        K *= -1 / L
        np.exp(K, out=K)
        return K

    @staticmethod
    def solve(K, y):
        import scipy.linalg

        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(K, overwrite_a=True), y)

    @staticmethod
    def agop(X, alpha, M, K, d2):
        dist = np.sqrt(d2)
        with np.errstate(divide="ignore", invalid="ignore"):
            W = np.where(dist < 1e-10, 0.0, K / dist) * (-1 / L)
        # J_i = (W alpha)_i x_i M - sum_j W_ij alpha_j x_j M, for one output
        J = (W @ alpha)[:, None] * X - (W * alpha[None, :]) @ X
        J = J @ M
        return J.T @ J / len(X)

    @staticmethod
    def eye(d):
        return np.eye(d)

    @staticmethod
    def mse(p, y):
        return float(np.mean((p - y) ** 2))


class Torch:
    name = "torch"

    def __init__(self):
        import torch

        self.t = torch

    def asarray(self, a):
        return self.t.from_numpy(np.ascontiguousarray(a))

    def sqdist(self, X, Z, M):
        XM = X @ M
        xn = (XM * X).sum(1)
        zn = ((Z @ M) * Z).sum(1)
        d2 = XM @ Z.T
        d2.mul_(-2).add_(xn[:, None]).add_(zn[None, :]).clamp_(min=0)
        return d2

    def kernel(self, d2):
        return d2.sqrt().mul_(-1 / L).exp_()

    def solve(self, K, y):
        c = self.t.linalg.cholesky(K)
        return self.t.cholesky_solve(y[:, None], c)[:, 0]

    def agop(self, X, alpha, M, K, d2):
        dist = d2.sqrt()
        W = self.t.where(dist < 1e-10, 0.0, K / dist).mul_(-1 / L)
        J = (W @ alpha)[:, None] * X - (W * alpha[None, :]) @ X
        J = J @ M
        return J.T @ J / len(X)

    def eye(self, d):
        return self.t.eye(d, dtype=self.t.float64)

    def mse(self, p, y):
        return float(((p - y) ** 2).mean())


def run(impl, X, y, Xt, yt):
    times = dict(gram=0.0, solve=0.0, predict=0.0, agop=0.0)
    start = time.perf_counter()
    M = impl.eye(X.shape[1])
    for t in range(ITERS + 1):
        a = time.perf_counter()
        d2 = impl.sqdist(X, X, M)
        K = impl.kernel(d2)
        b = time.perf_counter()
        Kr = K.copy() if impl.name == "numpy" else K.clone()
        Kr[np.diag_indices(len(X))] += REG
        alpha = impl.solve(Kr, y)
        del Kr
        c = time.perf_counter()
        mse = impl.mse(impl.kernel(impl.sqdist(Xt, X, M)) @ alpha, yt)
        e = time.perf_counter()
        times["gram"] += b - a
        times["solve"] += c - b
        times["predict"] += e - c
        if t == ITERS:
            break
        M = impl.agop(X, alpha, M, K, d2)
        times["agop"] += time.perf_counter() - e
    times["total"] = time.perf_counter() - start
    times["mse"] = mse
    return times


def main():
    which, data, n, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    impl = Numpy() if which == "numpy" else Torch()
    load = lambda f: impl.asarray(np.loadtxt(f"{data}/{f}.csv", delimiter=",", ndmin=1))
    X, y, Xt, yt = load(f"x_{n}"), load(f"y_{n}"), load("x_test"), load("y_test")
    for _ in range(repeats):
        r = run(impl, X, y, Xt, yt)
        print(f"impl={impl.name} n={n} " + " ".join(f"{k}={v:.6g}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
