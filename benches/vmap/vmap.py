# The PyTorch side of benches/vmap/run.sh: torch.func.vmap(grad(f)) for the
# per-example gradients, and one grad of the mean loss; float64, best of 3.
import sys, time
import torch
from torch.func import grad, vmap

torch.set_num_threads(int(sys.argv[1]))
torch.set_default_dtype(torch.float64)
n, d, h = 1000, 100, 256
g = torch.Generator().manual_seed(0)
X = torch.randn(n, d, generator=g)
y = X[:, 0] * X[:, 1]
p = {"W": torch.randn(d, h, generator=g) / d ** 0.5, "a": torch.randn(h, generator=g) / h ** 0.5}

def loss_one(p, x, t):
    return (torch.tanh(x @ p["W"]) @ p["a"] - t) ** 2

def loss_all(p, X, y):
    return ((torch.tanh(X @ p["W"]) @ p["a"] - y) ** 2).mean()

one = each = 1e9
for _ in range(3):
    t0 = time.perf_counter()
    grad(loss_all)(p, X, y)
    one = min(one, time.perf_counter() - t0)
    t1 = time.perf_counter()
    vmap(grad(loss_one), in_dims=(None, 0, 0))(p, X, y)
    each = min(each, time.perf_counter() - t1)
print(one)
print(each)
