//! Nyström kernel ridge regression solved as Falkon does (Rudi, Carratino
//! and Rosasco 2017; Meanti et al. 2020): with m centres C, the weights α of
//! `f(x) = Σⱼ αⱼ k(x, cⱼ)` solve
//!
//! ```text
//! (K_nmᵀ K_nm / n + λ K_mm) α = K_nmᵀ Y / n,      λ = reg / n,
//! ```
//!
//! which for C = X is exact kernel ridge regression `(K + reg·I) α = Y`.
//! Conjugate gradients run on the system preconditioned by `B = T⁻¹ A⁻¹`,
//! with `TᵀT = K_mm` and `AᵀA = T Tᵀ / m + λ I` (so that `Bᵀ H B ≈ I` when
//! `K_nmᵀ K_nm / n ≈ K_mm² / m`): m × m factorisations, never an n × n
//! matrix. `K_nm` is computed in blocks of rows by GEMM and the kernel pass,
//! kept when the caller's memory budget allows and recomputed at each
//! iteration otherwise.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::{fill, gram, Kernel, Metric};
use crate::linalg::{self, gemm, LinalgError};

/// Most entries of one block of K_nm (2²² × 8 bytes = 32 MiB).
const BLOCK: usize = 1 << 22;
/// Entries of the rows multiplied at once within a block by GEMM, for many
/// columns (2¹⁷ × 8 bytes = 1 MiB, within a core's L2 cache).
const CHUNK_ENTRIES: usize = 1 << 17;
/// Up to this many columns, `normal_rows` goes row by row.
const ROW_BY_ROW_COLUMNS: usize = 4;

pub struct Options {
    /// Ridge term in the convention of exact kernel ridge regression.
    pub reg: f64,
    /// Stop once every column's preconditioned residual is this fraction of its first.
    pub tol: f64,
    pub max_iters: usize,
    /// Bytes K_nm may take to be kept between iterations.
    pub budget: u64,
}

/// What the solver reports while it runs; returning `false` stops it.
pub enum Step {
    /// Rows of K_nm computed so far, of n.
    Rows(usize, usize),
    /// A CG iteration done, with the largest relative residual over columns.
    Iteration(usize, f64),
}

pub struct Fit {
    /// m × c weights.
    pub alpha: Array2<f64>,
    pub iters: usize,
    /// The largest relative residual of the preconditioned system at the end.
    pub residual: f64,
    /// Whether K_nm was kept in memory (else recomputed at each iteration).
    pub stored: bool,
}

pub enum Error {
    /// K_mm is not positive definite even with jitter.
    Centers,
    Interrupted,
}

/// `m` distinct row indices of `n`, drawn uniformly, in increasing order:
/// the same rows as `sort(choice(n, m, seed: s))` with the same stream.
pub fn sample_rows(n: usize, m: usize, rng: &mut impl rand::Rng) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    let mut picks = order.partial_shuffle(rng, m.min(n)).0.to_vec();
    picks.sort_unstable();
    picks
}

/// The lower Cholesky factor of `a + jitter·I`, with the smallest jitter of
/// a few that succeeds (m·ε·max diag first, as Falkon; more for a kernel
/// whose Gram matrix of the centres is numerically singular).
fn factor_with_jitter(a: &Array2<f64>) -> Result<Array2<f64>, Error> {
    let m = a.nrows();
    let scale = a
        .diag()
        .iter()
        .fold(0.0f64, |s, &v| s.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let mut jitter = m as f64 * f64::EPSILON * scale;
    for _ in 0..6 {
        let mut shifted = a.clone();
        shifted.diag_mut().mapv_inplace(|v| v + jitter);
        match linalg::cholesky(shifted.view()) {
            Ok(l) => return Ok(l),
            Err(LinalgError::NotPositiveDefinite(_)) => jitter *= 100.0,
            Err(_) => return Err(Error::Centers),
        }
    }
    Err(Error::Centers)
}

/// Where the blocks of K_nm come from.
struct Rows<'a> {
    k: &'a Kernel,
    x: ArrayView2<'a, f64>,
    centers: ArrayView2<'a, f64>,
    metric: &'a Metric,
    per_block: usize,
    /// K_nm when kept: an m × n work matrix (`linalg::work_matrix`, so that
    /// the next fit of the same size reuses its pages instead of faulting in
    /// fresh ones), whose `rows_view` is K_nm with contiguous rows.
    stored: Option<faer::Mat<f64>>,
}

impl Rows<'_> {
    fn blocks(&self) -> usize {
        self.x.nrows().div_ceil(self.per_block)
    }

    fn compute(&self, b: usize) -> Array2<f64> {
        let start = b * self.per_block;
        let end = (start + self.per_block).min(self.x.nrows());
        gram(
            self.k,
            self.x.slice(s![start..end, ..]),
            self.centers,
            self.metric,
        )
    }

    /// `K_nmᵀ (K_nm v)`, summed block by block in order (the same figures
    /// whatever the thread count); recomputed blocks are reported.
    fn normal_product(
        &self,
        v: &Array2<f64>,
        report: &mut dyn FnMut(Step) -> bool,
    ) -> Option<Array2<f64>> {
        let parts: Vec<Array2<f64>> = match &self.stored {
            Some(store) => {
                let knm = linalg::rows_ref(store);
                let blocks: Vec<_> = knm.axis_chunks_iter(Axis(0), self.per_block).collect();
                blocks
                    .par_iter()
                    .map(|kb| normal_rows(kb.view(), v))
                    .collect()
            }
            None => {
                let mut parts = Vec::with_capacity(self.blocks());
                for b in 0..self.blocks() {
                    parts.push(normal_rows(self.compute(b).view(), v));
                    let done = ((b + 1) * self.per_block).min(self.x.nrows());
                    if !report(Step::Rows(done, self.x.nrows())) {
                        return None;
                    }
                }
                parts
            }
        };
        let mut sum = Array2::zeros((self.centers.nrows(), v.ncols()));
        for p in parts {
            sum += &p;
        }
        Some(sum)
    }
}

/// `Kᵀ (K v)` for a block K of K_nm, reading K from memory once: row by row
/// for a few columns (each row's dot product, then its multiple added, while
/// the row is in L1), else a few hundred rows at a time by GEMM (the second
/// product then reads them from cache). The memory traffic is what bounds a
/// CG iteration with K_nm kept.
fn normal_rows(k: ArrayView2<f64>, v: &Array2<f64>) -> Array2<f64> {
    let (m, c) = v.dim();
    if c > ROW_BY_ROW_COLUMNS || !k.is_standard_layout() {
        let mut out = Array2::<f64>::zeros((m, c));
        for rows in k.axis_chunks_iter(Axis(0), CHUNK_ENTRIES.div_ceil(m.max(1))) {
            out += &rows.t().dot(&rows.dot(v));
        }
        return out;
    }
    let columns: Vec<Vec<f64>> = v.columns().into_iter().map(|c| c.to_vec()).collect();
    let mut sums = vec![vec![0.0; m]; c];
    for row in k.rows() {
        let row = row.to_slice().expect("standard layout");
        for (col, sum) in columns.iter().zip(&mut sums) {
            let u = dot(row, col);
            for (s, &r) in sum.iter_mut().zip(row) {
                *s += u * r;
            }
        }
    }
    Array2::from_shape_fn((m, c), |(i, j)| sums[j][i])
}

/// A dot product with eight running sums (which the compiler keeps in SIMD
/// registers; one sum would be a chain of dependent adds).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Fit the weights for targets Y (n × c) with centres C (m × d) under M.
pub fn fit(
    k: &Kernel,
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    centers: ArrayView2<f64>,
    metric: &Metric,
    options: &Options,
    report: &mut dyn FnMut(Step) -> bool,
) -> Result<Fit, Error> {
    let (n, m, c) = (x.nrows(), centers.nrows(), y.ncols());
    let lambda = options.reg / n as f64;
    let kmm = gram(k, centers, centers, metric);
    let t = factor_with_jitter(&kmm)?;
    let mut inner = gemm(t.t(), t.view()) / m as f64;
    inner.diag_mut().mapv_inplace(|v| v + lambda);
    let a = factor_with_jitter(&inner)?;
    drop(inner);
    // B v = T⁻¹ A⁻¹ v and Bᵀ v = A⁻ᵀ T⁻ᵀ v, with the lower factors L = Tᵀ, La = Aᵀ.
    let apply_b = |v: &Array2<f64>| {
        let mut v = v.clone();
        linalg::solve_lower_in_place(a.view(), &mut v, true);
        linalg::solve_lower_in_place(t.view(), &mut v, true);
        v
    };
    let apply_bt = |v: Array2<f64>| {
        let mut v = v;
        linalg::solve_lower_in_place(t.view(), &mut v, false);
        linalg::solve_lower_in_place(a.view(), &mut v, false);
        v
    };

    // K_nm in blocks: kept if it fits the budget; K_nmᵀ Y from the same pass.
    let per_block = (BLOCK / m.max(1)).clamp(1, n.max(1));
    let keep = (n as u64) * (m as u64) * 8 <= options.budget;
    let mut rows = Rows {
        k,
        x,
        centers,
        metric,
        per_block,
        stored: None,
    };
    let mut store = keep.then(|| linalg::work_matrix(m, n));
    let mut rhs = Array2::<f64>::zeros((m, c));
    for b in 0..rows.blocks() {
        let start = b * per_block;
        let end = (start + per_block).min(n);
        let fresh;
        let kb = match store.as_mut() {
            Some(store) => {
                let mut kb = linalg::rows_view(store);
                let mut kb = kb.slice_mut(s![start..end, ..]);
                fill(
                    &k.compiled().value,
                    x.slice(s![start..end, ..]),
                    centers,
                    metric,
                    false,
                    &mut [kb.view_mut()],
                );
                linalg::rows_ref(store).slice_move(s![start..end, ..])
            }
            None => {
                fresh = rows.compute(b);
                fresh.view()
            }
        };
        rhs += &kb.t().dot(&y.slice(s![start..end, ..]));
        if !report(Step::Rows(end, n)) {
            if let Some(store) = store {
                linalg::give_back(store);
            }
            return Err(Error::Interrupted);
        }
    }
    rows.stored = store;
    let rhs = apply_bt(rhs / n as f64);

    // W β = Bᵀ (K_nmᵀ K_nm / n + λ K_mm) B β.
    let w = |p: &Array2<f64>, report: &mut dyn FnMut(Step) -> bool| -> Option<Array2<f64>> {
        let v = apply_b(p);
        let mut h = rows.normal_product(&v, report)? / n as f64;
        h.scaled_add(lambda, &kmm.dot(&v));
        Some(apply_bt(h))
    };
    let norms = |r: &Array2<f64>| -> Array1<f64> { r.map_axis(Axis(0), |col| col.dot(&col)) };
    let mut beta = Array2::<f64>::zeros((m, c));
    let mut r = rhs;
    let first: Array1<f64> = norms(&r).mapv(f64::sqrt);
    let relative = |rs: &Array1<f64>| {
        rs.iter()
            .zip(&first)
            .map(|(&s, &f)| if f > 0.0 { s.sqrt() / f } else { 0.0 })
            .fold(0.0, f64::max)
    };
    let mut rs = norms(&r);
    let mut residual = relative(&rs);
    let mut p = r.clone();
    let mut iters = 0;
    while residual > options.tol && iters < options.max_iters {
        let wp = w(&p, report).ok_or(Error::Interrupted)?;
        let curvature = (&p * &wp).sum_axis(Axis(0));
        for j in 0..c {
            // A converged (or zero) column stays as it is.
            if rs[j] == 0.0 || curvature[j] <= 0.0 {
                continue;
            }
            let step = rs[j] / curvature[j];
            beta.column_mut(j).scaled_add(step, &p.column(j));
            r.column_mut(j).scaled_add(-step, &wp.column(j));
        }
        let next = norms(&r);
        for j in 0..c {
            let ratio = if rs[j] > 0.0 { next[j] / rs[j] } else { 0.0 };
            let rj = r.column(j).to_owned();
            let mut pj = p.column_mut(j);
            pj *= ratio;
            pj += &rj;
        }
        rs = next;
        iters += 1;
        residual = relative(&rs);
        if !report(Step::Iteration(iters, residual)) {
            return Err(Error::Interrupted);
        }
    }
    let stored = rows.stored.take().map(linalg::give_back).is_some();
    Ok(Fit {
        alpha: apply_b(&beta),
        iters,
        residual,
        stored,
    })
}
