"""krr + agop from `flx run` and from Python on the same data: prints the
best time of each and their ratio. Usage: bench.py FLX (N, THREADS from the
environment)."""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import flx

CODE = """kernel laplace(L = 10.0) = exp(-dist / L)
let f = krr(X, y, laplace, reg: 1e-3)
let M = agop(f, X)
"""


def main():
    exe, n, threads = sys.argv[1], int(os.environ["N"]), int(os.environ["THREADS"])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 100))
    y = X[:, 0] * X[:, 1]
    folder = tempfile.mkdtemp()
    np.save(f"{folder}/x.npy", X)
    np.save(f"{folder}/y.npy", y)
    # The script times the same code after loading the files.
    script = f"{folder}/bench.flx"
    with open(script, "w") as f:
        f.write(
            f'let X = load_npy("x.npy")\nlet y = load_npy("y.npy")\nlet start = time()\n{CODE}'
            'print("seconds", time() - start)\n'
        )
    s = flx.Session(threads=threads)
    cli, py = [], []
    for _ in range(5):
        out = subprocess.run([exe, "--threads", str(threads), "run", script], check=True,
                             capture_output=True, text=True).stdout
        cli.append(float(out.split("seconds")[1]))
        start = time.perf_counter()
        s["X"], s["y"] = X, y
        s.run(CODE)
        M = s["M"]
        py.append(time.perf_counter() - start)
        assert M.shape == (100, 100)
    print(f"n = {n}, {threads} threads: flx run {min(cli):.3f} s, from Python {min(py):.3f} s, "
          f"ratio {min(py) / min(cli):.3f}")


if __name__ == "__main__":
    main()
