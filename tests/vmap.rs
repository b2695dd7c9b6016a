//! `vmap` replays one recorded call over the batch where the body allows it
//! (`eval::batched`), and calls the body once per slice where a replay could
//! differ. Both must equal a loop of calls over the slices; the replay
//! counter says which one ran.

use flx::eval::batched;
use flx::{Options, Session};

/// Runs `prelude` and then `check` (whose asserts compare `vmap` with a
/// loop over the slices) in a fresh session, and gives the number of
/// `vmap` calls that were replayed.
fn replays(check: &str) -> usize {
    let prelude = r#"
        let X = randn(6, 3, seed: 1)
        let Y = randn(6, 3, 3, seed: 2)
        let s = randn(6, seed: 3)
        let A = randn(2, 3, seed: 4)
        let w = randn(3, seed: 5)
        fn close(a, b) = max(abs(a - b)) <= 1e-14
        fn rows(f, n) = [f(i) for i in 0..n]
    "#;
    let host = flx::StdHost::new(std::io::sink());
    let mut session = Session::new(host, &Options::default());
    session
        .run_source("prelude", prelude, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("prelude: {}", e[0].message));
    let before = batched::replays();
    session
        .run_source("check", check, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("{check}: {}", e[0].message));
    batched::replays() - before
}

#[test]
fn replays_equal_a_loop_of_calls() {
    let cases = [
        // Broadcasting between per-example values of different ranks, and every arithmetic operator.
        "fn f(x, t) = x * t + exp(-x) / (1 + t ^ 2) - (1 + t ^ 2) ^ x[0] + x ^ 2
         assert(close(vmap(f)(X, s), rows(|i| f(X[i], s[i]), 6)))",
        // `@` of every shape: shared matrix or vector against per-example ones, both per example.
        "fn f(x, M) = (A @ x, x @ A.T, M @ x, x @ M, M @ M.T, x @ x, w @ M, M @ w, A @ M)
         let r = vmap(f)(X, Y)
         for k in 0..9 { assert(close(r[k], rows(|i| f(X[i], Y[i])[k], 6))) }",
        // Transposes, reductions, reshapes, indexing, tensor literals and concatenation.
        "fn f(x, M) = {t: M.T, a: sum(M, axis: 0), b: mean(M), c: max(x), d: norm(x),
                       e: logsumexp(M, axis: 1), v: var(M, axis: 1), r: reshape(M, 9),
                       g: x[1:], h: M[0, :], l: [x[0], 2 * x[1], 3.0], c2: concat([x, x])}
         let r = vmap(f)(X, Y)
         for name in [\"t\", \"a\", \"b\", \"c\", \"d\", \"e\", \"v\", \"r\", \"g\", \"h\", \"l\", \"c2\"] {
             assert(close(r[name], rows(|i| f(X[i], Y[i])[name], 6)), name)
         }",
        "fn f(x, M) = (mse(x, w), outer(x, w), outer(w, x), trace(M), tanh(x) + sigmoid(x) + relu(x))
         let r = vmap(f)(X, Y)
         for k in 0..5 { assert(close(r[k], rows(|i| f(X[i], Y[i])[k], 6))) }",
        // Parts that do not depend on the mapped arguments are repeated, as the loop stacks them.
        "let r = vmap(|x| (x, 2.0, 3, w))(X)
         assert(close(r[0], X) and close(r[1], 2.0 + 0 * s) and all(r[2] == 3) and close(r[3], rows(|i| w, 6)))",
        // Other axes.
        "assert(close(vmap(|x| x * 2, axes: (1,))(X), 2 * X.T))",
        // Per-example gradients and values, with respect to a record passed whole or to the mapped argument.
        "fn sq(p, x, t) = (tanh(x @ p.W) @ p.a - t) ^ 2 + sum(relu(p.W))
         let p = {W: randn(3, 4, seed: 6), a: randn(4, seed: 7)}
         let G = vmap(grad(sq), axes: (none, 0, 0))(p, X, s)
         assert(close(G.W, rows(|i| grad(sq)(p, X[i], s[i]).W, 6)))
         assert(close(G.a, rows(|i| grad(sq)(p, X[i], s[i]).a, 6)))
         let (v, g) = vmap(value_and_grad(|x, M| sum(M @ x) * x[0]))(X, Y)
         assert(close(v, rows(|i| sum(Y[i] @ X[i]) * X[i][0], 6)))
         assert(close(g, rows(|i| grad(|x| sum(Y[i] @ x) * x[0])(X[i]), 6)))",
        // A batch too large for one replay is replayed in pieces.
        "let Z = randn(70, 800, seed: 8)
         fn f(z) = sum(tanh(outer(z, z)), axis: 0)
         assert(close(vmap(f)(Z), rows(|i| f(Z[i]), 70)))",
    ];
    for case in cases {
        let calls = case.matches("vmap(").count();
        assert_eq!(replays(case), calls, "{case}");
    }
}

#[test]
fn what_a_replay_cannot_follow_runs_once_per_slice() {
    let cases = [
        // A branch on a mapped value.
        "fn f(x) = if sum(x) > 0 { x } else { -x }
         assert(close(vmap(f)(X), rows(|i| f(X[i]), 6)))",
        // A mask fixed by the first slice (`max` of two tensors).
        "assert(close(vmap(|x| max(x, 0.0))(X), rows(|i| max(X[i], 0.0), 6)))",
        // Effects, once per slice.
        "let r = vmap(|x| { print(x); x })(X)
         assert(close(r, X))",
        "let r = vmap(|x| x + randn(3))(X)
         assert(shape(r) == (6, 3))",
        // Not differentiable, so not traced: the loop calls f.
        "assert(all(vmap(|x| int(x > 0))(X) == int(X > 0)))",
        // `gram` computed for the first slice (of a kernel whose hyperparameter is mapped).
        "kernel laplace(L = 1.0) = exp(-dist / L)
         assert(close(vmap(|l| gram(laplace(L: l), X))(abs(s) + 1), rows(|i| gram(laplace(L: abs(s[i]) + 1), X), 6)))",
        // Int arguments are not traced.
        "assert(all(vmap(|k| k * 2)(int(X)) == 2 * int(X)))",
    ];
    for case in cases {
        assert_eq!(replays(case), 0, "{case}");
    }
}
