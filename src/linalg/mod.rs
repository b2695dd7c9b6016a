//! Dense linear algebra on faer, reading ndarray memory in place (no copies
//! into faer's own matrices for inputs). Multi-threaded through faer's global
//! parallelism, which `set_threads` configures once per process.
//!
//! faer 0.24 leaves the upper halves of the AVX registers dirty on the threads
//! it used, which makes later SSE code there (glibc's `exp`, `log`) about 25x
//! slower. `clean_avx_state` runs `vzeroupper` on every pool thread after each
//! faer call; `benches/linalg.rs` would show a regression.

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::{DenseSolveCore, Llt, Solve};
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use ndarray::{Array1, Array2, ArrayView2};
use std::sync::atomic::{AtomicBool, Ordering};

/// Products smaller than this many multiply-adds use ndarray's own kernel,
/// which has no thread start-up cost.
const FAER_GEMM_MIN: usize = 48 * 48 * 48;

pub fn set_threads(n: usize) {
    let n = n.max(1);
    faer::set_global_parallelism(if n == 1 { Par::Seq } else { Par::rayon(n) });
}

/// A faer view of an ndarray matrix, in place, whatever its strides.
pub fn view<'a>(a: &ArrayView2<'a, f64>) -> MatRef<'a, f64> {
    let (m, n) = a.dim();
    let s = a.strides();
    // SAFETY: the view's pointer, shape and strides describe valid memory for the borrow.
    unsafe { MatRef::from_raw_parts(a.as_ptr(), m, n, s[0], s[1]) }
}

/// A column-major view of a matrix that is symmetric, or whose transpose the
/// caller accounts for: faer's kernels are column-major, and a row-major
/// matrix is the column-major layout of its transpose.
fn col_major<'a>(a: &ArrayView2<'a, f64>) -> (MatRef<'a, f64>, bool) {
    let v = view(a);
    if a.strides()[1] == 1 && a.ncols() > 1 {
        (v.transpose(), true)
    } else {
        (v, false)
    }
}

fn view_mut(a: &mut Array2<f64>) -> MatMut<'_, f64> {
    let (m, n) = a.dim();
    let s = a.strides().to_vec();
    // SAFETY: as above, and the borrow is unique.
    unsafe { MatMut::from_raw_parts_mut(a.as_mut_ptr(), m, n, s[0], s[1]) }
}

fn to_array(m: MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Run `vzeroupper` on every thread of the pool and on this one.
pub fn clean_avx_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            fn zero() {
                // SAFETY: AVX support was checked at run time just above.
                unsafe { std::arch::x86_64::_mm256_zeroupper() }
            }
            rayon::broadcast(|_| zero());
            zero();
        }
    }
}

/// `a @ b` for row-major or strided matrices.
pub fn gemm(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    if m * n * k < FAER_GEMM_MIN || k == 0 {
        let mut c = Array2::<f64>::zeros((m, n));
        gemm_into(c.view_mut(), a, b, false);
        return c;
    }
    // faer overwrites every entry (`Accum::Replace`): no need to zero C first.
    let mut c = Array2::<f64>::uninit((m, n));
    // SAFETY: `MaybeUninit<f64>` has f64's layout, and faer writes every entry
    // of C before anything reads it.
    let view = unsafe { c.raw_view_mut().cast::<f64>().deref_into_view_mut() };
    gemm_into(view, a, b, false);
    // SAFETY: every entry was written just above.
    unsafe { c.assume_init() }
}

/// `c = a @ b` into existing storage (any strides). With `upper`, only the
/// entries on and above the diagonal, for a product known to be symmetric
/// such as `X M Xᵀ`: block rows of the upper triangle, each one ordinary
/// GEMM, about half the multiply-adds (faer's triangular product is no
/// faster than a full one here). Other entries are left as they are.
pub fn gemm_into(
    mut c: ndarray::ArrayViewMut2<f64>,
    a: ArrayView2<f64>,
    b: ArrayView2<f64>,
    upper: bool,
) {
    let (m, n) = c.dim();
    assert_eq!((a.nrows(), b.ncols(), a.ncols()), (m, n, b.nrows()));
    if !upper {
        into(c.view_mut(), a, b);
        return;
    }
    let block = (m / 8).clamp(128, 512);
    for i0 in (0..m).step_by(block) {
        let i1 = (i0 + block).min(m);
        into(
            c.slice_mut(ndarray::s![i0..i1, i0..]),
            a.slice(ndarray::s![i0..i1, ..]),
            b.slice(ndarray::s![.., i0..]),
        );
    }

    fn into(mut c: ndarray::ArrayViewMut2<f64>, a: ArrayView2<f64>, b: ArrayView2<f64>) {
        let (m, k) = a.dim();
        let n = b.ncols();
        if m * n * k < FAER_GEMM_MIN {
            ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut c);
            return;
        }
        // C is row-major: compute Cᵀ = Bᵀ Aᵀ, whose operands are column-major
        // when A and B are row-major.
        let (rows, cols) = (c.strides()[0], c.strides()[1]);
        // SAFETY: the pointer, shape and strides describe the unique borrow `c`.
        let dst = unsafe { MatMut::from_raw_parts_mut(c.as_mut_ptr(), m, n, rows, cols) };
        matmul(
            dst.transpose_mut(),
            Accum::Replace,
            view(&b).transpose(),
            view(&a).transpose(),
            1.0,
            faer::get_global_parallelism(),
        );
        clean_avx_state();
    }
}

#[derive(Debug)]
pub enum LinalgError {
    NotSquare,
    Shape(String),
    /// Cholesky met a non-positive pivot at this index.
    NotPositiveDefinite(usize),
    Singular,
    NoConvergence,
    /// The caller's stop flag was raised (Ctrl-C in the REPL).
    Interrupted,
}

fn square(a: &ArrayView2<f64>) -> Result<usize, LinalgError> {
    let (m, n) = a.dim();
    if m != n {
        return Err(LinalgError::NotSquare);
    }
    Ok(n)
}

fn is_symmetric(a: &ArrayView2<f64>) -> bool {
    let n = a.nrows();
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let tol = 1e-12 * scale;
    (0..n).all(|i| (0..i).all(|j| (a[(i, j)] - a[(j, i)]).abs() <= tol))
}

/// Cholesky factorisation of a symmetric matrix. Its column-major view (the
/// transpose of a row-major one) is the same matrix, so faer reads it in place.
fn llt(a: &ArrayView2<f64>) -> Result<Llt<f64>, LinalgError> {
    col_major(a).0.llt(Side::Lower).map_err(|e| match e {
        faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } => {
            LinalgError::NotPositiveDefinite(index)
        }
    })
}

/// The Cholesky factor `L` (lower) of a symmetric positive definite matrix.
pub fn cholesky(a: ArrayView2<f64>) -> Result<Array2<f64>, LinalgError> {
    square(&a)?;
    let llt = llt(&a);
    clean_avx_state();
    Ok(to_array(llt?.L()))
}

/// Solve `A X = B` by Cholesky (A symmetric positive definite).
pub fn solve_spd(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<Array2<f64>, LinalgError> {
    let n = square(&a)?;
    if b.nrows() != n {
        return Err(LinalgError::Shape(format!(
            "A is {n}×{n} but B has {} rows",
            b.nrows()
        )));
    }
    let llt = llt(&a);
    let x = llt.map(|f| f.solve(view(&b)));
    clean_avx_state();
    Ok(to_array(x?.as_ref()))
}

/// Solve `A X = B` for a symmetric positive definite A, overwriting both:
/// A with its Cholesky factor, B with X. No n × n copy is made, which matters
/// for kernel matrices of tens of thousands of rows. Only the lower triangle
/// of A is read. A should come from `work_matrix` (faer's kernels run faster
/// on SIMD-aligned columns than on a plain allocation). With a `stop` flag
/// (the REPL's Ctrl-C), a large factorisation goes in panels and ends early
/// with `Interrupted` once the flag is raised.
pub fn cholesky_solve_in_place(
    mut a: MatMut<'_, f64>,
    b: &mut Array2<f64>,
    stop: Option<&AtomicBool>,
) -> Result<(), LinalgError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt;
    let n = a.nrows();
    if a.ncols() != n {
        return Err(LinalgError::NotSquare);
    }
    if b.nrows() != n {
        return Err(LinalgError::Shape(format!(
            "A is {n}×{n} but B has {} rows",
            b.nrows()
        )));
    }
    let par = faer::get_global_parallelism();
    let result = match stop {
        Some(stop) if n > ONE_CALL_MAX => factor_in_panels(a.as_mut(), PANEL, par, stop, -1.0),
        _ => factor_in_panels(a.as_mut(), n, par, &AtomicBool::new(false), -1.0),
    };
    if result.is_ok() {
        let cols = b.ncols();
        llt::solve::solve_in_place_with_conj(
            a.as_ref(),
            faer::Conj::No,
            view_mut(b),
            par,
            MemStack::new(&mut MemBuffer::new(
                llt::solve::solve_in_place_scratch::<f64>(n, cols, par),
            )),
        );
    }
    clean_avx_state();
    result
}

/// How `cholesky_solve_refined` solved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Precision {
    /// Factored in f32, then this many steps of iterative refinement in f64.
    Refined(usize),
    /// Factored in f64.
    Double,
}

/// From this order on, `cholesky_solve_refined` factors in f32: below it the
/// f64 factorisation is too quick for the refinement steps to pay.
pub const REFINED_MIN: usize = 2048;
/// Refinement gives up after this many steps, or once a step fails to halve
/// the residual, and the f64 factorisation is used instead.
const REFINE_STEPS: usize = 30;

/// Solve `A X = B` for a symmetric positive definite A as LAPACK's `dsposv`
/// does: Cholesky factor a single-precision copy (half the time and memory
/// traffic of f64), then refine X in f64 with residuals `B − A X` computed
/// from A itself, until their norm is at rounding level (`‖r‖ ≤ ε √n ‖A‖_F ‖x‖`
/// per column). Where the f32 factor fails or refinement stops converging (κ(A)
/// near 1/ε₃₂ ≈ 10⁷, as in ridgeless kernel regression) it falls back to
/// `cholesky_solve_in_place`. Only A's lower triangle is read; it is
/// overwritten (by its f64 factor) only on that fallback. Below `REFINED_MIN`
/// the f64 path is taken at once. The f32 copy takes n² × 4 bytes.
pub fn cholesky_solve_refined(
    mut a: MatMut<'_, f64>,
    b: &mut Array2<f64>,
    stop: Option<&AtomicBool>,
) -> Result<Precision, LinalgError> {
    let n = a.nrows();
    if n < REFINED_MIN || a.ncols() != n || b.nrows() != n {
        return cholesky_solve_in_place(a, b, stop).map(|()| Precision::Double);
    }
    match refine(a.as_ref(), b, stop) {
        Ok(Some(steps)) => Ok(Precision::Refined(steps)),
        Err(LinalgError::Interrupted) => Err(LinalgError::Interrupted),
        _ => cholesky_solve_in_place(a.as_mut(), b, stop).map(|()| Precision::Double),
    }
}

/// The f32 factor and the refinement of `cholesky_solve_refined`: the
/// number of steps, or `None` where refinement did not converge (B is then
/// untouched).
fn refine(
    a: MatRef<'_, f64>,
    b: &mut Array2<f64>,
    stop: Option<&AtomicBool>,
) -> Result<Option<usize>, LinalgError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt;
    use faer::linalg::matmul::triangular::{self, BlockStructure};
    let (n, cols) = (a.nrows(), b.ncols());
    let par = faer::get_global_parallelism();
    let mut low = Mat::<f32>::zeros(n, n);
    let mut frobenius = 0.0f64;
    for j in 0..n {
        for i in j..n {
            let v = a[(i, j)];
            low[(i, j)] = v as f32;
            frobenius += if i == j { v * v } else { 2.0 * v * v };
        }
    }
    let frobenius = frobenius.sqrt();
    let never = AtomicBool::new(false);
    let width = if stop.is_some() && n > ONE_CALL_MAX {
        PANEL
    } else {
        n
    };
    let factored = factor_in_panels(low.as_mut(), width, par, stop.unwrap_or(&never), -1.0f32);
    clean_avx_state();
    match factored {
        Err(LinalgError::NotPositiveDefinite(_)) => return Ok(None),
        other => other?,
    }
    let mut scratch = MemBuffer::new(llt::solve::solve_in_place_scratch::<f32>(n, cols, par));
    // x += A₃₂⁻¹ r, the correction solved in f32.
    let mut correct = |x: &mut Array2<f64>, r: &Array2<f64>| {
        let mut d = Mat::<f32>::from_fn(n, cols, |i, j| r[(i, j)] as f32);
        llt::solve::solve_in_place_with_conj(
            low.as_ref(),
            faer::Conj::No,
            d.as_mut(),
            par,
            MemStack::new(&mut scratch),
        );
        for j in 0..cols {
            for i in 0..n {
                x[(i, j)] += d[(i, j)] as f64;
            }
        }
    };
    // r = B − A x from the lower triangle: the triangle with the diagonal,
    // then the strict one transposed.
    let residual = |x: &Array2<f64>| {
        let mut r = b.clone();
        let xv = view(&x.view());
        triangular::matmul(
            view_mut(&mut r),
            BlockStructure::Rectangular,
            Accum::Add,
            a,
            BlockStructure::TriangularLower,
            xv,
            BlockStructure::Rectangular,
            -1.0,
            par,
        );
        triangular::matmul(
            view_mut(&mut r),
            BlockStructure::Rectangular,
            Accum::Add,
            a.transpose(),
            BlockStructure::StrictTriangularUpper,
            xv,
            BlockStructure::Rectangular,
            -1.0,
            par,
        );
        r
    };
    let norms = |m: &Array2<f64>| -> Vec<f64> {
        m.columns().into_iter().map(|c| c.dot(&c).sqrt()).collect()
    };
    let mut x = Array2::<f64>::zeros((n, cols));
    let mut r = b.clone();
    let mut last = norms(&r);
    let tolerance = f64::EPSILON * (n as f64).sqrt() * frobenius;
    let mut outcome = None;
    for step in 0..=REFINE_STEPS {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            clean_avx_state();
            return Err(LinalgError::Interrupted);
        }
        correct(&mut x, &r);
        r = residual(&x);
        let now = norms(&r);
        let xs = norms(&x);
        if now.iter().zip(&xs).all(|(&rn, &xn)| rn <= tolerance * xn) {
            outcome = Some(step);
            break;
        }
        // A step that fails to halve a residual (or gives nan) has stalled.
        let halved = |(&rn, &ln): (&f64, &f64)| rn <= 0.5 * ln;
        if !now.iter().zip(&last).all(halved) {
            break;
        }
        last = now;
    }
    clean_avx_state();
    if outcome.is_some() {
        *b = x;
    }
    Ok(outcome)
}

/// Matrices up to this size are factored by one faer call even when they
/// could be stopped (under a second here).
const ONE_CALL_MAX: usize = 4096;
/// Columns per panel above it: a Ctrl-C waits for at most one panel's update.
/// Panels cost about 7% over one call at n = 8000 (docs/performance.md), so
/// they are used only where a stop can come.
const PANEL: usize = 1024;

/// Lower Cholesky factor in place, `width` columns at a time: factor the
/// diagonal block, solve the block column under it, subtract its outer
/// product from the lower triangle that remains; `stop` is checked after
/// each panel. The panels' GEMMs keep the speed of one call.
fn factor_in_panels<T: faer::traits::ComplexField + Copy>(
    mut a: MatMut<'_, T>,
    width: usize,
    par: Par,
    stop: &AtomicBool,
    minus_one: T,
) -> Result<(), LinalgError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt;
    use faer::linalg::matmul::triangular::{self, BlockStructure};
    use faer::reborrow::*;
    // Larger blocks than faer's defaults (64, 128): about 10% faster for
    // n in the thousands on the 2-core machines measured (docs/performance.md).
    let mut params: llt::factor::LltParams = faer::Auto::<T>::auto();
    params.recursion_threshold = 128;
    params.block_size = 256;
    let n = a.nrows();
    let mut buf = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<T>(
        width,
        par,
        params.into(),
    ));
    let mut k = 0;
    while k < n {
        let w = width.min(n - k);
        let (mut a11, _, mut a21, a22) = a
            .rb_mut()
            .submatrix_mut(k, k, n - k, n - k)
            .split_at_mut(w, w);
        llt::factor::cholesky_in_place(
            a11.rb_mut(),
            Default::default(),
            par,
            MemStack::new(&mut buf),
            params.into(),
        )
        .map_err(|llt::factor::LltError::NonPositivePivot { index }| {
            LinalgError::NotPositiveDefinite(k + index)
        })?;
        if k + w < n {
            // A21 ← A21 L11⁻ᵀ, as L11 A21ᵀ = A21ᵀ.
            faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                a11.rb(),
                a21.rb_mut().transpose_mut(),
                par,
            );
            // A22 ← A22 − A21 A21ᵀ, lower triangle only.
            triangular::matmul(
                a22,
                BlockStructure::TriangularLower,
                Accum::Add,
                a21.rb(),
                BlockStructure::Rectangular,
                a21.rb().transpose(),
                BlockStructure::Rectangular,
                minus_one,
                par,
            );
            if stop.load(Ordering::Relaxed) {
                return Err(LinalgError::Interrupted);
            }
        }
        k += w;
    }
    Ok(())
}

/// Solve `L X = B` in place, or `Lᵀ X = B` with `transposed`, for a lower
/// triangular L (only its lower triangle is read).
pub fn solve_lower_in_place(l: ArrayView2<f64>, b: &mut Array2<f64>, transposed: bool) {
    use faer::linalg::triangular_solve as tri;
    assert_eq!(l.nrows(), b.nrows());
    let par = faer::get_global_parallelism();
    if transposed {
        tri::solve_upper_triangular_in_place(view(&l).transpose(), view_mut(b), par);
    } else {
        tri::solve_lower_triangular_in_place(view(&l), view_mut(b), par);
    }
    clean_avx_state();
}

thread_local! {
    /// Large work matrices given back after use, reused by the next request
    /// of the same size (an RFM loop asks for the same n × n matrix at every
    /// step): on some machines touching a fresh 100 MB allocation costs as
    /// much as a GEMM over it (page faults). At most `SPARES` are kept.
    static SPARE: std::cell::RefCell<Vec<Mat<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}
const SPARES: usize = 2;
/// Smaller matrices are not worth keeping.
const SPARE_MIN: usize = 1 << 20;

/// A rows × cols work matrix, SIMD-aligned, with arbitrary contents.
pub fn work_matrix(rows: usize, cols: usize) -> Mat<f64> {
    let reused = SPARE.with(|s| {
        let mut s = s.borrow_mut();
        let i = s
            .iter()
            .position(|m| m.nrows() == rows && m.ncols() == cols)?;
        Some(s.remove(i))
    });
    reused.unwrap_or_else(|| Mat::zeros(rows, cols))
}

/// Free the kept work matrices (a session does so after each input, so that
/// an idle REPL holds no large buffers).
pub fn release_work_matrices() {
    SPARE.with(|s| s.borrow_mut().clear());
}

/// Return a matrix from `work_matrix` for reuse.
pub fn give_back(m: Mat<f64>) {
    if m.nrows() * m.ncols() < SPARE_MIN {
        return;
    }
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        s.insert(0, m);
        s.truncate(SPARES);
    });
}

/// The transpose of a column-major faer matrix as an ndarray view with
/// contiguous rows (for a symmetric matrix, the matrix itself).
pub fn rows_view(a: &mut Mat<f64>) -> ndarray::ArrayViewMut2<'_, f64> {
    let (n, m) = (a.nrows(), a.ncols());
    let stride = a.col_stride();
    // SAFETY: column j of `a` is `n` contiguous values at `stride * j`; the
    // view's row j is that column, and the borrow of `a` is unique.
    unsafe {
        ndarray::ArrayViewMut2::from_shape_ptr(
            ndarray::ShapeBuilder::strides((m, n), (stride as usize, 1)),
            a.as_ptr_mut(),
        )
    }
}

/// `rows_view` for reading.
pub fn rows_ref(a: &Mat<f64>) -> ndarray::ArrayView2<'_, f64> {
    let (n, m) = (a.nrows(), a.ncols());
    let stride = a.col_stride();
    // SAFETY: as in `rows_view`, for a shared borrow.
    unsafe {
        ndarray::ArrayView2::from_shape_ptr(
            ndarray::ShapeBuilder::strides((m, n), (stride as usize, 1)),
            a.as_ptr(),
        )
    }
}

/// Solve `A X = B`: Cholesky when A is symmetric positive definite (in f32
/// with refinement from `REFINED_MIN` rows, `cholesky_solve_refined`), LU
/// with partial pivoting otherwise.
pub fn solve(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<Array2<f64>, LinalgError> {
    let n = square(&a)?;
    if b.nrows() != n {
        return Err(LinalgError::Shape(format!(
            "A is {n}×{n} but B has {} rows",
            b.nrows()
        )));
    }
    if is_symmetric(&a) {
        let spd = if n >= REFINED_MIN {
            let mut work = work_matrix(n, n);
            rows_view(&mut work).assign(&a);
            let mut x = b.to_owned();
            let solved = cholesky_solve_refined(work.as_mut(), &mut x, None);
            give_back(work);
            solved.map(|_| x)
        } else {
            solve_spd(a.view(), b.view())
        };
        match spd {
            Err(LinalgError::NotPositiveDefinite(_)) => {}
            other => return other,
        }
    }
    let lu = to_faer(a).partial_piv_lu();
    let singular = lu_is_singular(lu.U());
    let x = if singular {
        None
    } else {
        Some(lu.solve(view(&b)))
    };
    clean_avx_state();
    x.map(|x| to_array(x.as_ref())).ok_or(LinalgError::Singular)
}

fn lu_is_singular(u: MatRef<'_, f64>) -> bool {
    let n = u.nrows();
    if n == 0 {
        return false;
    }
    let max = (0..n).map(|i| u[(i, i)].abs()).fold(0.0, f64::max);
    (0..n).any(|i| u[(i, i)].abs() <= max * f64::EPSILON * n as f64) || max == 0.0
}

pub fn inv(a: ArrayView2<f64>) -> Result<Array2<f64>, LinalgError> {
    square(&a)?;
    let lu = to_faer(a).partial_piv_lu();
    let result = if lu_is_singular(lu.U()) {
        None
    } else {
        Some(lu.inverse())
    };
    clean_avx_state();
    result
        .map(|m| to_array(m.as_ref()))
        .ok_or(LinalgError::Singular)
}

pub fn det(a: ArrayView2<f64>) -> Result<f64, LinalgError> {
    square(&a)?;
    // det(Aᵀ) = det(A).
    let d = col_major(&a).0.determinant();
    clean_avx_state();
    Ok(d)
}

/// Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix.
pub fn eigh(a: ArrayView2<f64>) -> Result<(Array1<f64>, Array2<f64>), LinalgError> {
    let n = square(&a)?;
    let evd = col_major(&a)
        .0
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| LinalgError::NoConvergence);
    clean_avx_state();
    let evd = evd?;
    let s = evd.S();
    let values = Array1::from_shape_fn(n, |i| s[i]);
    Ok((values, to_array(evd.U())))
}

/// Thin QR: `A = Q R` with Q (m × min(m, n)) orthonormal columns and R upper triangular.
pub fn qr(a: ArrayView2<f64>) -> (Array2<f64>, Array2<f64>) {
    let f = view(&a).qr();
    let (q, r) = (f.compute_thin_Q(), f.thin_R().to_owned());
    clean_avx_state();
    (to_array(q.as_ref()), to_array(r.as_ref()))
}

/// `(U, S, Vt)` of a thin SVD.
pub type SvdFactors = (Array2<f64>, Array1<f64>, Array2<f64>);

/// Thin SVD: `A = U diag(S) Vt` with singular values descending.
pub fn svd(a: ArrayView2<f64>) -> Result<SvdFactors, LinalgError> {
    // For a row-major A we factor Aᵀ = U S Vᵀ (column-major), so A = V S Uᵀ.
    let (m, transposed) = col_major(&a);
    let svd = m.thin_svd().map_err(|_| LinalgError::NoConvergence);
    clean_avx_state();
    let svd = svd?;
    let s = svd.S();
    let k = svd.U().ncols();
    let values = Array1::from_shape_fn(k, |i| s[i]);
    if transposed {
        Ok((to_array(svd.V()), values, to_array(svd.U().transpose())))
    } else {
        Ok((to_array(svd.U()), values, to_array(svd.V().transpose())))
    }
}

/// Moore–Penrose pseudo-inverse, cutting singular values below
/// `max(m, n) · eps · s_max` (NumPy's default).
pub fn pinv(a: ArrayView2<f64>) -> Result<Array2<f64>, LinalgError> {
    let (m, n) = a.dim();
    if m == 0 || n == 0 {
        return Ok(Array2::zeros((n, m)));
    }
    let (u, s, vt) = svd(a)?;
    let cutoff = m.max(n) as f64 * f64::EPSILON * s.iter().cloned().fold(0.0, f64::max);
    let mut vs = vt.t().to_owned();
    for (j, &sj) in s.iter().enumerate() {
        let inv = if sj > cutoff { 1.0 / sj } else { 0.0 };
        vs.column_mut(j).mapv_inplace(|x| x * inv);
    }
    Ok(gemm(vs.view(), u.t()))
}

/// Minimum-norm least-squares solution of `A X ≈ B`.
pub fn lstsq(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<Array2<f64>, LinalgError> {
    if a.nrows() != b.nrows() {
        return Err(LinalgError::Shape(format!(
            "A has {} rows but B has {}",
            a.nrows(),
            b.nrows()
        )));
    }
    let p = pinv(a)?;
    Ok(gemm(p.view(), b))
}

/// A column-major copy, for factorisations of general (non-symmetric) matrices.
fn to_faer(a: ArrayView2<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn close(a: &Array2<f64>, b: &Array2<f64>, tol: f64) -> bool {
        a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= tol)
    }

    fn spd(n: usize) -> Array2<f64> {
        // A well-conditioned SPD matrix: B Bᵀ + n I with a fixed B.
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5);
        b.dot(&b.t()) + Array2::<f64>::eye(n) * n as f64
    }

    #[test]
    fn gemm_matches_ndarray_on_both_paths() {
        for &n in &[3usize, 70] {
            let a = Array2::from_shape_fn((n, n + 1), |(i, j)| (i as f64 - j as f64) / 7.0);
            let b = Array2::from_shape_fn((n + 1, n + 2), |(i, j)| (i * j) as f64 / 13.0 - 1.0);
            assert!(close(&gemm(a.view(), b.view()), &a.dot(&b), 1e-9));
            // Transposed (non-contiguous) operands too.
            assert!(close(&gemm(b.t(), a.t()), &b.t().dot(&a.t()), 1e-9));
        }
    }

    #[test]
    fn cholesky_reconstructs_and_solves() {
        let a = spd(50);
        let l = cholesky(a.view()).unwrap();
        assert!(close(&l.dot(&l.t()), &a, 1e-9));
        assert_eq!(l[(0, 1)], 0.0);
        let x_true = Array2::from_shape_fn((50, 3), |(i, j)| (i + j) as f64);
        let b = a.dot(&x_true);
        assert!(close(
            &solve_spd(a.view(), b.view()).unwrap(),
            &x_true,
            1e-8
        ));
        assert!(matches!(
            cholesky(array![[1.0, 2.0], [2.0, 1.0]].view()),
            Err(LinalgError::NotPositiveDefinite(1))
        ));
    }

    #[test]
    fn cholesky_in_panels_matches_one_call_and_stops_when_asked() {
        let n = 300;
        let a = spd(n);
        let factor = |width: usize, stop: bool| {
            let mut m = Mat::from_fn(n, n, |i, j| a[(i, j)]);
            let r = factor_in_panels(m.as_mut(), width, Par::Seq, &AtomicBool::new(stop), -1.0);
            (
                r,
                Array2::from_shape_fn((n, n), |(i, j)| if i >= j { m[(i, j)] } else { 0.0 }),
            )
        };
        let (r, whole) = factor(n, false);
        assert!(r.is_ok());
        for width in [64, 100, 299] {
            let (r, panels) = factor(width, false);
            assert!(r.is_ok());
            assert!(close(&panels, &whole, 1e-9), "width {width}");
        }
        assert!(matches!(factor(64, true).0, Err(LinalgError::Interrupted)));
        // A pivot that fails in a later panel is reported at its row.
        let mut bad = Mat::from_fn(n, n, |i, j| a[(i, j)]);
        bad[(250, 250)] = -1e6;
        assert!(matches!(
            factor_in_panels(bad.as_mut(), 64, Par::Seq, &AtomicBool::new(false), -1.0),
            Err(LinalgError::NotPositiveDefinite(250))
        ));
    }

    #[test]
    fn solve_uses_lu_for_general_matrices() {
        let a = array![[0.0, 2.0, 1.0], [1.0, 0.0, 0.0], [3.0, 1.0, 4.0]];
        let x = array![[1.0], [2.0], [3.0]];
        let b = a.dot(&x);
        assert!(close(&solve(a.view(), b.view()).unwrap(), &x, 1e-12));
        assert!(matches!(
            solve(
                array![[1.0, 2.0], [2.0, 4.0]].view(),
                array![[1.0], [1.0]].view()
            ),
            Err(LinalgError::Singular)
        ));
        // Symmetric but indefinite: falls back to LU.
        let s = array![[1.0, 2.0], [2.0, 1.0]];
        let y = solve(s.view(), array![[3.0], [3.0]].view()).unwrap();
        assert!(close(&y, &array![[1.0], [1.0]], 1e-12));
    }

    #[test]
    fn inverse_determinant_known_values() {
        let a = array![[4.0, 7.0], [2.0, 6.0]];
        assert!(close(
            &inv(a.view()).unwrap(),
            &array![[0.6, -0.7], [-0.2, 0.4]],
            1e-12
        ));
        assert!((det(a.view()).unwrap() - 10.0).abs() < 1e-12);
        assert!(matches!(
            inv(array![[1.0, 2.0], [2.0, 4.0]].view()),
            Err(LinalgError::Singular)
        ));
    }

    #[test]
    fn eigh_of_a_known_matrix() {
        let a = array![[2.0, 1.0], [1.0, 2.0]];
        let (w, v) = eigh(a.view()).unwrap();
        assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12);
        let recon = v.dot(&Array2::from_diag(&w)).dot(&v.t());
        assert!(close(&recon, &a, 1e-12));
    }

    #[test]
    fn svd_and_pinv_and_lstsq() {
        let a = array![[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]];
        let (u, s, vt) = svd(a.view()).unwrap();
        assert!((s[0] - 3.0).abs() < 1e-12 && (s[1] - 2.0).abs() < 1e-12);
        assert!(close(&u.dot(&Array2::from_diag(&s)).dot(&vt), &a, 1e-12));
        let p = pinv(a.view()).unwrap();
        assert!(close(
            &p,
            &array![[1.0 / 3.0, 0.0, 0.0], [0.0, -0.5, 0.0]],
            1e-12
        ));
        // Rank-deficient: the minimum-norm solution.
        let r = array![[1.0, 1.0], [1.0, 1.0]];
        let x = lstsq(r.view(), array![[2.0], [2.0]].view()).unwrap();
        assert!(close(&x, &array![[1.0], [1.0]], 1e-12));
    }
}
