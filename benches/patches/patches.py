# The PyTorch side of benches/patches/run.sh: the same patch kernel machine
# (Laplace, L = 10, on 3 × 3 patches, reg 1e-3) on flx's data, float64:
# krr by Cholesky of the pooled kernel matrix, then the exact patch AGOP
# (1/n) Σᵢ Σ_p ∇_{x_ip} f ∇_{x_ip} fᵀ from the kernel's gradient, both by
# blocks as an expert would write them. Prints the seconds of each phase and
# the largest relative difference from flx's AGOP.
import sys, time
import numpy as np
import torch

torch.set_num_threads(int(sys.argv[2]))
torch.set_default_dtype(torch.float64)
d = sys.argv[1]
X = torch.from_numpy(np.load(f"{d}/X.npy"))
Y = torch.from_numpy(np.load(f"{d}/Y.npy"))
n, L, reg = X.shape[0], 10.0, 1e-3
side = int(X.shape[1] ** 0.5)

def patches(X, stride):
    u = torch.nn.functional.unfold(X.view(n, 1, side, side), 3, stride=stride)
    return u.transpose(1, 2).contiguous()  # n × P × 9

def laplace(A, B):
    D = torch.cdist(A, B)
    return torch.exp(-D / L), D

def gram_local(P):
    K = torch.zeros(n, n)
    for p in range(P.shape[1]):
        K += laplace(P[:, p], P[:, p])[0]
    return K / P.shape[1]

def gram_all(P, block=100):
    m = P.shape[1]
    flat = P.reshape(-1, P.shape[2])
    K = torch.empty(n, n)
    for i in range(0, n, block):
        k = laplace(flat[i * m:(i + block) * m], flat)[0]
        K[i:i + block] = k.view(-1, m, n, m).mean(dim=(1, 3))
    return K

def jacobian_sums(x, z, w):
    """Σ over rows of x of Σ_c J_cᵀ J_c, with J_c[i] = Σ_j w_jc ∇k(x_i, z_j)."""
    K, D = laplace(x, z)
    A = torch.where(D > 1e-10, -K / (L * D), torch.zeros_like(D))  # ∇ₓk = A (x − z)
    Pw = A @ w
    G = torch.zeros(x.shape[1], x.shape[1])
    for c in range(w.shape[1]):
        J = Pw[:, c:c + 1] * x - A @ (w[:, c:c + 1] * z)
        G += J.T @ J
    return G

def agop_local(P, alpha):
    m = P.shape[1]
    return sum(jacobian_sums(P[:, p], P[:, p], alpha / m) for p in range(m)) / n

def agop_all(P, alpha, block=1000):
    m = P.shape[1]
    flat = P.reshape(-1, P.shape[2])
    w = alpha.repeat_interleave(m, dim=0) / (m * m)
    G = sum(jacobian_sums(flat[i:i + block], flat, w) for i in range(0, flat.shape[0], block))
    return G / n

for pool, stride, gram, agop in [("local", 1, gram_local, agop_local), ("all", 2, gram_all, agop_all)]:
    P = patches(X, stride)
    t0 = time.perf_counter()
    K = gram(P)
    K.diagonal().add_(reg)
    alpha = torch.cholesky_solve(Y, torch.linalg.cholesky(K))
    t1 = time.perf_counter()
    G = agop(P, alpha)
    t2 = time.perf_counter()
    ref = np.load(f"{d}/G_{pool}.npy")
    diff = np.abs(G.numpy() - ref).max() / np.abs(ref).max()
    print(pool, t1 - t0, t2 - t1, diff)
