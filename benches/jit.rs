//! The JIT's benchmarks, each against a baseline in the same run
//! (`cargo bench --bench jit`; figures in docs/performance.md).
//!
//! - `kernel_pass`: a Laplace body over a 4000 × 4000 geometry matrix (the
//!   pass after the GEMM), compiled by the JIT, run by the tape interpreter,
//!   and as a hand-written Rust loop.
//! - `gram`: `gram` with a Laplace body at n = 4000, d = 100 (GEMM, norms
//!   and the fused pass), with the JIT and with the tape, against faer's GEMM
//!   followed by a hand-written Rust loop.
//! - `pi_loop`: `benches/jit/pi.flx` (a Monte-Carlo estimate of π with a
//!   hand-written LCG, 10^7 steps) compiled by the JIT, against the same
//!   loop in Rust. `benches/jit/run.sh` adds the interpreter and CPython.
//! - `chain_1e7`: `exp(-(a - b) ^ 2 / s) * c` over 10^7 elements as one
//!   compiled loop, against the interpreter's operator-by-operator path
//!   (`--no-jit`); `chain_size` the same at sizes around `FUSE_MIN`, where
//!   the two meet.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use flx::eval::value::Value;
use flx::kernel::tape::Rows;
use flx::{Options, Session};
use ndarray::{Array2, Ix2};
use rayon::prelude::*;

fn session() -> Session {
    flx::set_threads(flx::default_threads());
    Session::new(flx::StdHost::new(std::io::sink()), &Options::default())
}

fn run(s: &mut Session, src: &str) -> Value {
    s.run_source("bench", src, Path::new(".")).expect("runs")
}

/// The Laplace body by hand, as a researcher would write it in Rust.
fn laplace_pass(dot: &mut Array2<f64>, xn2: &[f64], zn2: &[f64], l: f64) {
    let m = zn2.len();
    dot.as_slice_mut()
        .expect("contiguous")
        .par_chunks_mut(m)
        .enumerate()
        .for_each(|(i, row)| {
            for (g, z) in row.iter_mut().zip(zn2) {
                let sq = (xn2[i] + z - 2.0 * *g).max(0.0);
                *g = (-sq.sqrt() / l).exp();
            }
        });
}

fn kernel_pass(c: &mut Criterion) {
    let mut s = session();
    run(&mut s, "kernel laplace(L = 10.0) = exp(-dist / L)\nlet k = laplace(L: 10.0)\nlet X = randn(4000, 100, seed: 1)\nlet D = X @ X.T\nlet n2 = sum(X * X, axis: 1)");
    let Value::Kernel(k) = run(&mut s, "k") else {
        panic!("a kernel")
    };
    let Value::Tensor(d) = run(&mut s, "D") else {
        panic!("a tensor")
    };
    let Value::Tensor(n2) = run(&mut s, "n2") else {
        panic!("a tensor")
    };
    let d = (*d)
        .to_owned()
        .into_dimensionality::<Ix2>()
        .expect("matrix");
    let n2: Vec<f64> = n2.iter().copied().collect();
    let tape = k.tapes().0;
    let rows = Rows {
        xn2: &n2,
        zn2: &n2,
        l1: None,
    };
    let mut g = c.benchmark_group("kernel_pass_4000");
    g.sample_size(10);
    let mut out = d.clone();
    for (name, jit) in [("flx JIT", true), ("flx tape", false)] {
        g.bench_function(name, |b| {
            flx::jit::set_enabled(jit);
            b.iter(|| {
                out.assign(&d);
                tape.run(&rows, false, &mut [out.view_mut()]);
            })
        });
    }
    g.bench_function("hand-written Rust", |b| {
        b.iter(|| {
            out.assign(&d);
            laplace_pass(&mut out, &n2, &n2, 10.0);
        })
    });
    g.bench_function("copy only (subtract from each)", |b| {
        b.iter(|| out.assign(&d))
    });
    g.finish();
    flx::jit::set_enabled(true);
}

/// `gram` of the Laplace kernel as a researcher would write it in Rust: faer's
/// GEMM for `X Zᵀ`, then one parallel loop over its columns.
fn gram_by_hand(x: faer::MatRef<f64>, z: faer::MatRef<f64>, l: f64) -> faer::Mat<f64> {
    let (n, m) = (x.nrows(), z.nrows());
    let mut g = faer::Mat::<f64>::zeros(n, m);
    faer::linalg::matmul::matmul(
        g.as_mut(),
        faer::Accum::Replace,
        x,
        z.transpose(),
        1.0,
        faer::Par::rayon(flx::default_threads()),
    );
    let norms = |a: faer::MatRef<f64>| -> Vec<f64> {
        (0..a.nrows())
            .map(|i| (0..a.ncols()).map(|k| a[(i, k)] * a[(i, k)]).sum())
            .collect()
    };
    let (xn2, zn2) = (norms(x), norms(z));
    let stride = g.col_stride() as usize;
    let base = g.as_ptr_mut() as usize;
    (0..m).into_par_iter().for_each(|j| {
        // SAFETY: column j of `g`, one task per column.
        let col = unsafe { std::slice::from_raw_parts_mut((base as *mut f64).add(j * stride), n) };
        for (i, g) in col.iter_mut().enumerate() {
            let sq = (xn2[i] + zn2[j] - 2.0 * *g).max(0.0);
            *g = (-sq.sqrt() / l).exp();
        }
    });
    g
}

fn gram(c: &mut Criterion) {
    let mut s = session();
    run(&mut s, "kernel laplace(L = 10.0) = exp(-dist / L)\nlet k = laplace(L: 10.0)\nlet X = randn(4000, 100, seed: 1)\nlet Z = randn(4000, 100, seed: 2)");
    let faer_of = |name: &str, s: &mut Session| {
        let Value::Tensor(t) = run(s, name) else {
            panic!("a tensor")
        };
        faer::Mat::<f64>::from_fn(t.shape()[0], t.shape()[1], |i, j| t[[i, j]])
    };
    let (x, z) = (faer_of("X", &mut s), faer_of("Z", &mut s));
    let Value::Tensor(flx_g) = run(&mut s, "gram(k, X, Z)") else {
        panic!("a tensor")
    };
    let by_hand = gram_by_hand(x.as_ref(), z.as_ref(), 10.0);
    let worst = (0..4000)
        .flat_map(|i| (0..4000).map(move |j| (i, j)))
        .map(|(i, j)| (flx_g[[i, j]] - by_hand[(i, j)]).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "flx and the Rust loop differ by {worst}");
    let mut g = c.benchmark_group("gram_4000");
    g.sample_size(10);
    for (name, jit) in [("flx JIT", true), ("flx tape", false)] {
        g.bench_function(format!("{name}, gram(k, X, Z)"), |b| {
            flx::jit::set_enabled(jit);
            b.iter(|| run(&mut s, "gram(k, X, Z)"))
        });
    }
    g.bench_function("flx JIT, gram(k, X, X) (symmetric: half the GEMM)", |b| {
        flx::jit::set_enabled(true);
        b.iter(|| run(&mut s, "gram(k, X, X)"))
    });
    g.bench_function("faer GEMM + hand-written Rust loop", |b| {
        b.iter(|| gram_by_hand(x.as_ref(), z.as_ref(), 10.0))
    });
    g.finish();
    flx::jit::set_enabled(true);
}

/// `estimate_pi` of `benches/jit/pi.flx`, as a researcher would write it in Rust.
fn estimate_pi(steps: i64, seed: i64) -> f64 {
    let mut state = seed;
    let mut inside = 0i64;
    for _ in 0..steps {
        state = (1103515245 * state + 12345) % 2147483648;
        let x = state as f64 / 2147483648.0;
        state = (1103515245 * state + 12345) % 2147483648;
        let y = state as f64 / 2147483648.0;
        if x * x + y * y < 1.0 {
            inside += 1;
        }
    }
    4.0 * inside as f64 / steps as f64
}

fn pi_loop(c: &mut Criterion) {
    let mut s = session();
    let src = std::fs::read_to_string("benches/jit/pi.flx").expect("pi.flx");
    // Define `estimate_pi` (the script's own print runs once here).
    run(&mut s, &src);
    let Value::Float(flx_pi) = run(&mut s, "estimate_pi(10000000, 42)") else {
        panic!("a Float")
    };
    assert_eq!(flx_pi, estimate_pi(10_000_000, 42));
    let mut g = c.benchmark_group("pi_loop_1e7");
    g.sample_size(10);
    g.bench_function("flx JIT", |b| {
        b.iter(|| run(&mut s, "estimate_pi(10000000, 42)"))
    });
    g.bench_function("Rust", |b| {
        b.iter(|| estimate_pi(std::hint::black_box(10_000_000), std::hint::black_box(42)))
    });
    g.finish();
}

/// The chain both ways over vectors of `n` elements, in one group.
fn chain_both_ways(c: &mut Criterion, group: &str, sizes: &[usize]) {
    // Fused at every size, so that the sizes below the threshold measure it too.
    flx::eval::fused::set_fuse_min(1);
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for &n in sizes {
        for (name, jit) in [("fused", true), ("unfused", false)] {
            let mut s = Session::new(
                flx::StdHost::new(std::io::sink()),
                &Options {
                    no_jit: !jit,
                    ..Options::default()
                },
            );
            run(&mut s, &format!("let a = randn({n}, seed: 1)\nlet b = randn({n}, seed: 2)\nlet c = randn({n}, seed: 3)\nlet s = 2.0"));
            let chain = "exp(-(a - b) ^ 2 / s) * c";
            run(&mut s, chain); // compiled here, once
            g.bench_function(format!("{name}/{n}"), |b| b.iter(|| run(&mut s, chain)));
        }
    }
    g.finish();
    flx::jit::set_enabled(true);
    flx::eval::fused::set_fuse_min(flx::eval::fused::FUSE_MIN);
}

fn chain(c: &mut Criterion) {
    flx::set_threads(flx::default_threads());
    chain_both_ways(c, "chain_1e7", &[10_000_000]);
    let around = flx::eval::fused::FUSE_MIN;
    chain_both_ways(
        c,
        "chain_size",
        &[
            around / 8,
            around / 4,
            around / 2,
            around,
            2 * around,
            8 * around,
        ],
    );
}

criterion_group!(benches, kernel_pass, gram, pi_loop, chain);
criterion_main!(benches);
