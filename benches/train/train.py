"""The training benchmark in PyTorch (CPU, float64): the same network, loss
and optimiser as train.flx. Prints the seconds the training loop took, then
the final loss.

    python train.py THREADS [steps]
"""
import sys
import time

import torch


def main():
    threads = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    n, d, h, lr = 4000, 100, 512, 0.005
    dt = torch.float64
    X = torch.randn(n, d, dtype=dt)
    y = X[:, 0:1] * X[:, 1:2]
    W = (torch.randn(d, h, dtype=dt) / d**0.5).requires_grad_()
    a = (torch.randn(h, 1, dtype=dt) / h**0.5).requires_grad_()
    opt = torch.optim.SGD([W, a], lr=lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((torch.relu(X @ W) @ a - y) ** 2)
        loss.backward()
        opt.step()
    print(time.perf_counter() - t0)
    with torch.no_grad():
        print(torch.mean((torch.relu(X @ W) @ a - y) ** 2).item())


if __name__ == "__main__":
    main()
