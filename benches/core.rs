//! Core benchmarks, each measured against a baseline in the same run
//! (`cargo bench --bench core`; figures in docs/performance.md).
//!
//! - `spd_solve`: `solve(K, b)` from flx on a 2000 × 2000 SPD matrix, against
//!   the same faer Cholesky factor-and-solve called from Rust.
//! - `avx_state`: an `exp` pass right after a faer GEMM, against the same pass
//!   after an ndarray GEMM. If `linalg::clean_avx_state` stopped working, the
//!   first would be ~25x slower (faer 0.24 leaves the AVX upper state dirty).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use faer::linalg::solvers::Solve;
use flx::eval::value::Value;
use flx::{Options, Session};
use ndarray::{Array2, Ix1, Ix2};

fn session() -> Session {
    let threads = flx::default_threads();
    flx::set_threads(threads);
    Session::new(flx::StdHost::new(std::io::sink()), &Options::default())
}

fn tensor(s: &Session, name: &str) -> ndarray::ArrayD<f64> {
    match s.get(name) {
        Some(v @ Value::Tensor(_)) => v.to_array().expect("an array"),
        other => panic!("{name} is not a tensor: {other:?}"),
    }
}

fn spd_solve(c: &mut Criterion) {
    let mut s = session();
    let setup = "let Z = randn(2000, 2000, seed: 1)\nlet K = Z.T @ Z / 2000 + eye(2000)\nlet b = randn(2000, seed: 2)\n";
    s.run_source("setup", setup, Path::new("."))
        .expect("setup runs");
    let k = tensor(&s, "K")
        .into_dimensionality::<Ix2>()
        .expect("matrix");
    let b = tensor(&s, "b")
        .into_dimensionality::<Ix1>()
        .expect("vector");
    // The baseline is faer at its best: column-major matrices built outside the timing.
    let k_faer = faer::Mat::<f64>::from_fn(k.nrows(), k.ncols(), |i, j| k[(i, j)]);
    let b_faer = faer::Mat::<f64>::from_fn(b.len(), 1, |i, _| b[i]);

    let mut g = c.benchmark_group("spd_solve_2000");
    g.sample_size(10);
    g.bench_function("flx solve(K, b)", |bench| {
        bench.iter(|| {
            s.run_source("bench", "solve(K, b)", Path::new("."))
                .expect("solve runs")
        })
    });
    g.bench_function("faer llt + solve from Rust", |bench| {
        bench.iter(|| {
            let x = k_faer.llt(faer::Side::Lower).expect("SPD").solve(&b_faer);
            flx::linalg::clean_avx_state();
            x
        })
    });
    g.finish();
}

fn avx_state(c: &mut Criterion) {
    let a = Array2::from_shape_fn((200, 200), |(i, j)| ((i * 7 + j) % 13) as f64 / 13.0);
    let x = ndarray::Array1::from_shape_fn(1 << 20, |i| -((i % 1000) as f64) / 100.0);
    let mut g = c.benchmark_group("avx_state");
    g.bench_function("exp pass after faer gemm", |bench| {
        bench.iter(|| {
            let p = flx::linalg::gemm(a.view(), a.view());
            (p[(0, 0)], x.mapv(f64::exp))
        })
    });
    g.bench_function("exp pass after ndarray gemm (baseline)", |bench| {
        bench.iter(|| {
            let p = a.dot(&a);
            (p[(0, 0)], x.mapv(f64::exp))
        })
    });
    g.finish();
}

criterion_group!(benches, spd_solve, avx_state);
criterion_main!(benches);
