# The same Monte-Carlo estimate of pi as pi.flx, in plain CPython.
def estimate_pi(steps, seed):
    state = seed
    inside = 0
    for i in range(steps):
        state = (1103515245 * state + 12345) % 2147483648
        x = float(state) / 2147483648.0
        state = (1103515245 * state + 12345) % 2147483648
        y = float(state) / 2147483648.0
        if x * x + y * y < 1.0:
            inside += 1
    return 4.0 * float(inside) / float(steps)
print(estimate_pi(10000000, 42))
