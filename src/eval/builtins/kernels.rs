//! Kernel builtins: `gram`, `krr`, `agop`, matrix alignment. What kernel and
//! predictor values do when called is `eval::kernel_values`.

use std::rc::Rc;

use super::{check_size, mat, Args, Builtin};
use crate::diag::Diag;
use crate::eval::format::kernel_repr;
use crate::eval::interp::Interp;
use crate::eval::value::{Tensor, Value};
use crate::format::shape_str;
use crate::kernel::{self, Agop, Kernel, Metric, Pool, Predictor};
use crate::linalg::{self, LinalgError};
use crate::progress::Progress;

type R = Result<Value, Diag>;

pub static BUILTINS: &[Builtin] = &[
    builtin!("gram", "k, X, Z=none, M=none, pool=none", "Kernel matrix `K[i, j] = k(X[i], Z[j])` (Z defaults to X) under the matrix M: none for the identity, a d × d PSD matrix, or a length-d vector for a diagonal M. For patches (n × P × d tensors from `patches`), `pool:` says how the patch kernel pools into one on images: `\"all\"` is the mean of k over all pairs of patches, `\"local\"` the mean over patches at the same position (M is then d × d per patch). Differentiable in X, Z, M and the kernel's hyperparameters (`grad(|s| f(gram(laplace(L: s), X)))`).", gram),
    builtin!("krr", "X, Y, k, M=none, reg=0.001, pool=none, solver=\"auto\", centers=none, tol=1e-7, max_iters=100, seed=none", "Kernel ridge regression: solves `(K + reg·I) alpha = Y`, K = gram(k, X, X, M: M). Returns a predictor `f` (call `f(Xnew)`) with fields `alpha`, `centers`, `M`, `kernel`, `reg`, `solver`, `iters` and `residual`. Y is a vector or an n × c matrix of outputs. `solver: \"cholesky\"` is exact (the centres are X): from 2048 rows it factors in f32 and refines in f64 to rounding level (`iters` is then the refinement steps), falling back to an f64 factor where K + reg·I is too ill-conditioned (as for ridgeless fits); `\"nystrom\"` draws `centers` rows (2000 by default; seeded by `seed:`, else the session's stream) and solves Falkon's system `(K_nmᵀK_nm + reg·K_mm) alpha = K_nmᵀY` by conjugate gradients preconditioned with m × m Cholesky factors, to a relative residual `tol` or `max_iters` iterations, never forming the n × n matrix (with `centers` ≥ n it is the exact fit); `\"auto\"` is exact while the n × n matrix (and its f32 copy) takes at most a quarter of the machine's memory, Nyström beyond, and says so once. An exact fit larger than the memory available is an error before anything is allocated. X may be n × P × d patches, with `pool:` as for `gram` (exact solver only); the predictor then takes patches too.", krr),
    builtin!("patches", "X, image, size, stride=1", "The size × size patches of images given as rows of X (each row an image of shape `image: (h, w)` or `(c, h, w)`, flattened in that order): an (n, P, c·size·size) tensor, P = ((h − size) / stride + 1) · ((w − size) / stride + 1) patches by position in row-major order, each flattened as (c, size, size), as PyTorch's `unfold(X.view(n, c, h, w), size, stride=stride).transpose(1, 2)`. Differentiable in X.", |_, a| {
            let (x, positions, shape) = patch_positions(a)?;
            let flat = x.as_standard_layout();
            let flat = flat.as_slice().expect("standard layout");
            let values: Vec<f64> = positions.iter().map(|&p| flat[p]).collect();
            Ok(Value::tensor(Tensor::from_shape_vec(shape, values).expect("n · P · c·s·s")))
        }),
    builtin!("krr_solve", "K, Y, reg=0.001", "Kernel ridge regression from a kernel matrix: the weights `alpha` solving `(K + reg·I) alpha = Y` by Cholesky, as `krr` does (a vector for a vector Y, else n × c). K is n × n and symmetric, e.g. `gram(k, X)`; predictions at new rows are `gram(k, Xnew, X) @ alpha`.", krr_solve),
    builtin!("agop", "f, X, diag=false, centering=false, sample=none, seed=none", "Average gradient outer product `(1/n) Σᵢ Jᵢᵀ Jᵢ` of f over the rows of X (Jᵢ the outputs × d Jacobian at X[i]); with `sample: s`, over s rows of X drawn without replacement (seeded by `seed:`, else the session's stream), as xRFM does for large X. For a predictor from `krr` it is exact, from the kernel's symbolic derivative; for a model or a differentiable function it comes from reverse-mode gradients, one pass per output over batches of rows (f must treat rows independently). `diag: true` gives the diagonal as a vector; `centering: true` subtracts the mean Jacobian first. For a predictor fitted on patches (`pool:`), X is patches and the result is d × d per patch: `(1/n) Σᵢ Σ_p ∇_{X[i, p]} f ∇_{X[i, p]} fᵀ`.", agop),
    builtin!("alignment", "A, B", "Cosine similarity of two tensors of the same shape, flattened: `sum(A * B) / (norm(A) * norm(B))`.", |_, a| similarity(a, false)),
    builtin!("corr", "A, B", "Pearson correlation of the entries of two tensors of the same shape (the alignment of A and B after subtracting each one's mean).", |_, a| similarity(a, true)),
];

fn kernel_arg(a: &Args, i: usize) -> Result<Rc<Kernel>, Diag> {
    let Value::Kernel(k) = &a.vals[i] else {
        return Err(a.expected(i, "a Kernel").help("declare one with `kernel name(params) = body`, e.g. `kernel laplace(L = 10.0) = exp(-dist / L)`"));
    };
    let missing = k.missing();
    if let (false, Some(family)) = (missing.is_empty(), k.family()) {
        return Err(crate::eval::kernel_values::missing_hyper(
            &family.name,
            &missing,
            "",
            a.spans[i],
        ));
    }
    Ok(k.clone())
}

/// `pool:` (argument `i`): none, `"all"` or `"local"`.
fn pool_arg(a: &Args, i: usize) -> Result<Option<Pool>, Diag> {
    if a.is_none(i) {
        return Ok(None);
    }
    Ok(Pool::parse(a.one_of(i, &Pool::NAMES)?))
}

/// A data argument: an n × d matrix of rows, or with `pool` an n × P × d
/// tensor of patches (in standard layout). `pool_at` is the `pool:`
/// argument, none when the pooling is a predictor's.
fn data(
    a: &Args,
    i: usize,
    pool: Option<Pool>,
    pool_at: Option<usize>,
) -> Result<Rc<Tensor>, Diag> {
    let t = a.tensor(i)?;
    let name = a.name;
    let shape = shape_str(t.shape());
    match (t.ndim(), pool) {
        (2, None) | (3, Some(_)) => {}
        (3, None) if pool_at.is_some() => {
            return Err(a
                .error(
                    i,
                    "flx::shape::pool",
                    format!("`{name}` got patches of shape {shape} but no `pool:`"),
                )
                .help(
                    "say how the patch kernel pools: `pool: \"all\"` (all pairs of patches) or `pool: \"local\"` (the same positions)",
                ));
        }
        (_, Some(_)) => {
            let d = a.error(
                i,
                "flx::shape::pool",
                format!("pooling needs n × P × d patches, found shape {shape}"),
            );
            let d = match pool_at {
                Some(at) => d.with_label(a.spans[at], "pooling asked for here"),
                None => d.label("the predictor was fitted on patches"),
            };
            return Err(d.help("make patches of images with `patches(X, image: (h, w), size: 3)`"));
        }
        _ => {
            return Err(a
                .error(
                    i,
                    "flx::shape::not_matrix",
                    format!("`{name}` needs an n × d matrix of rows, found shape {shape}"),
                )
                .help("a single feature is a column: `reshape(x, len(x), 1)`"));
        }
    }
    if t.iter().any(|x| !x.is_finite()) {
        return Err(a.error(
            i,
            "flx::value::not_finite",
            format!("`{name}` needs finite inputs, found nan or inf"),
        ));
    }
    Ok(if t.ndim() == 3 && !t.is_standard_layout() {
        Rc::new(t.as_standard_layout().into_owned().into_shared())
    } else {
        t
    })
}

fn view3(t: &Tensor) -> ndarray::ArrayView3<'_, f64> {
    t.view().into_dimensionality().expect("checked 3-d")
}

/// Features per row (or per patch).
fn features(t: &Tensor) -> usize {
    *t.shape().last().expect("2-d or 3-d")
}

fn metric_arg(a: &Args, i: usize, d: usize) -> Result<Metric, Diag> {
    if a.is_none(i) {
        return Ok(Metric::Identity);
    }
    let m = a.tensor(i)?;
    let bad = || {
        a.error(
            i,
            "flx::shape::metric",
            format!(
                "M must be {d} × {d} (or a length-{d} diagonal) for {d} features, found shape {}",
                shape_str(m.shape())
            ),
        )
    };
    if m.iter().any(|x| !x.is_finite()) {
        return Err(a.error(i, "flx::value::not_finite", "M has nan or inf entries"));
    }
    match m.shape() {
        [n] if *n == d => Ok(Metric::Diag(
            m.view().into_dimensionality().expect("1-d").to_owned(),
        )),
        [r, c] if *r == d && *c == d => {
            let mm = mat(&m);
            symmetric(a, i, mm, "M")?;
            Ok(Metric::Full(mm.to_owned()))
        }
        _ => Err(bad()),
    }
}

/// `l1dist` is defined for a diagonal M only (argument `i` is M).
fn l1_needs_diagonal(a: &Args, i: usize, k: &Kernel, m: &Metric) -> Result<(), Diag> {
    if matches!(m, Metric::Full(_)) && k.reads_l1() {
        return Err(a
            .error(
                i,
                "flx::kernel::l1_metric",
                format!(
                    "kernel `{}` reads l1dist, which needs a diagonal M",
                    kernel_repr(k)
                ),
            )
            .label("a full matrix")
            .help("pass M's diagonal as a vector: `M: diag(M)`"));
    }
    Ok(())
}

/// X and Z (arguments i and j) have rows of the same length and, pooled
/// locally, the same number of patches.
fn same_features(
    a: &Args,
    (i, j): (usize, usize),
    x: &Tensor,
    z: &Tensor,
    pool: Option<Pool>,
) -> Result<(), Diag> {
    let (dx, dz) = (features(x), features(z));
    let name = a.name;
    if dx != dz {
        let per = if pool.is_some() { "patches" } else { "rows" };
        return Err(a.shapes_error(
            i,
            j,
            "flx::shape::features",
            format!("`{name}`: the {per} have {dx} and {dz} features"),
        ));
    }
    if pool == Some(Pool::Local) && x.shape()[1] != z.shape()[1] {
        return Err(a.shapes_error(
            i,
            j,
            "flx::shape::pool",
            format!(
                "`{name}` with `pool: \"local\"` pairs patches by position, but there are {} and {}",
                x.shape()[1],
                z.shape()[1]
            ),
        ));
    }
    Ok(())
}

/// About how many flops a (pooled) kernel matrix of X against Z takes.
fn pooled_flops(m: &Metric, x: &Tensor, z: &Tensor, pool: Option<Pool>) -> u64 {
    let (n, mz, d) = (x.shape()[0], z.shape()[0], features(x));
    match pool {
        None => m.gram_flops(n, mz, d),
        Some(Pool::All) => m.gram_flops(n * x.shape()[1], mz * z.shape()[1], d),
        Some(Pool::Local) => m.gram_flops(n, mz, d) * x.shape()[1] as u64,
    }
}

/// `gram(k, X, Z, M)`, pooled for patches.
pub fn pooled_gram(k: &Kernel, x: &Tensor, z: &Tensor, m: &Metric, pool: Option<Pool>) -> Tensor {
    match pool {
        None => kernel::gram(k, mat(x), mat(z), m),
        Some(pool) => kernel::pool::gram(k, view3(x), view3(z), m, pool),
    }
    .into_dyn()
    .into()
}

/// The checked arguments of `gram(k, X, Z, M:, pool:)`.
pub struct GramInputs {
    pub kernel: Rc<Kernel>,
    pub x: Rc<Tensor>,
    /// X when omitted.
    pub z: Rc<Tensor>,
    pub metric: Metric,
    pub pool: Option<Pool>,
}

pub fn gram_inputs(a: &Args) -> Result<GramInputs, Diag> {
    let kernel = kernel_arg(a, 0)?;
    let pool = pool_arg(a, 4)?;
    let x = data(a, 1, pool, Some(4))?;
    let z = if a.is_none(2) {
        x.clone()
    } else {
        data(a, 2, pool, Some(4))?
    };
    same_features(a, (1, 2), &x, &z, pool)?;
    let metric = metric_arg(a, 3, features(&x))?;
    l1_needs_diagonal(a, 3, &kernel, &metric)?;
    check_size(&[x.shape()[0], z.shape()[0]], a.call)?;
    Ok(GramInputs {
        kernel,
        x,
        z,
        metric,
        pool,
    })
}

fn gram(interp: &mut Interp, a: &mut Args) -> R {
    let g = gram_inputs(a)?;
    interp.charge(pooled_flops(&g.metric, &g.x, &g.z, g.pool), a.call)?;
    Ok(Value::tensor(pooled_gram(
        &g.kernel, &g.x, &g.z, &g.metric, g.pool,
    )))
}

/// Targets Y (argument `i`) as an n × c matrix, and whether Y was a vector.
/// `rows_arg` is the argument with the n rows.
fn targets(
    a: &Args,
    i: usize,
    n: usize,
    rows_arg: usize,
) -> Result<(ndarray::Array2<f64>, bool), Diag> {
    let y = a.tensor(i)?;
    let (rhs, vector) = match y.ndim() {
        1 => (
            y.view()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("1-d")
                .insert_axis(ndarray::Axis(1))
                .to_owned(),
            true,
        ),
        2 => (mat(&y).to_owned(), false),
        _ => return Err(a.expected(i, "a vector or an n × c matrix of targets")),
    };
    if rhs.nrows() != n {
        return Err(a.shapes_error(
            rows_arg,
            i,
            "flx::shape::krr",
            format!(
                "`{}`: {} has {n} rows but Y has {}",
                a.name,
                a.param_name(rows_arg),
                rhs.nrows()
            ),
        ));
    }
    if rhs.iter().any(|v| !v.is_finite()) {
        return Err(a.error(
            i,
            "flx::value::not_finite",
            format!("`{}` needs finite targets, found nan or inf", a.name),
        ));
    }
    Ok((rhs, vector))
}

fn reg_arg(a: &Args, i: usize) -> Result<f64, Diag> {
    let reg = a.f64(i)?;
    if !(reg >= 0.0 && reg.is_finite()) {
        return Err(a.error(
            i,
            "flx::value::reg",
            format!("`reg` must be a finite number ≥ 0, found {reg}"),
        ));
    }
    Ok(reg)
}

/// Solve `(K + reg·I) alpha = rhs` in place by Cholesky, where `kmat` holds
/// K's lower triangle (given back to the pool after); `k_arg` is the
/// argument a failure points at. Alpha is a vector when Y was.
fn ridge_solve(
    interp: &mut Interp,
    a: &Args,
    mut kmat: faer::Mat<f64>,
    mut rhs: ndarray::Array2<f64>,
    vector: bool,
    reg: f64,
    k_arg: usize,
) -> Result<(Tensor, linalg::Precision), Diag> {
    let n = kmat.nrows();
    for i in 0..n {
        kmat[(i, i)] += reg;
    }
    let stop = interp.interruptible.then(|| interp.interrupt_flag());
    let solved = linalg::cholesky_solve_refined(kmat.as_mut(), &mut rhs, stop);
    linalg::give_back(kmat);
    let solved = solved.map_err(|e| match e {
        LinalgError::Interrupted => interp.interrupted(a.call),
        LinalgError::NotPositiveDefinite(pivot) => Diag::new(
            "flx::linalg::not_pd",
            "the kernel matrix K + reg·I is not positive definite",
        )
        .at(a.spans[k_arg])
        .label(format!("Cholesky failed at row {pivot}"))
        .help(format!(
            "use a larger `reg:` (it is {}), or check that the kernel is positive definite",
            crate::format::float_repr(reg)
        )),
        other => Diag::new("flx::linalg::krr", format!("{other:?}")).at(a.call),
    })?;
    let alpha = if vector {
        rhs.into_shape_with_order(n).expect("column").into_dyn()
    } else {
        rhs.into_dyn()
    };
    Ok((alpha.into(), solved))
}

/// Cholesky of n × n with c right-hand sides: n³/3 multiply-adds, then the solves.
fn solve_flops(n: usize, c: usize) -> u64 {
    (n as u64).pow(3) / 3 * 2 + 2 * (n * n * c) as u64
}

/// Bytes of the exact solve's n × n matrix, with its f32 copy where the
/// factorisation is in f32 (`linalg::cholesky_solve_refined`).
fn exact_bytes(n: usize) -> u64 {
    let copy = if n >= linalg::REFINED_MIN { 4 } else { 0 };
    (n as u64).pow(2) * (8 + copy)
}

/// The exact solve is `auto`'s choice while its matrix takes at most this
/// fraction of the machine's memory (n ≤ 23 000 on 24 GiB, with the f32 copy).
const AUTO_EXACT_SHARE: u64 = 4;

/// `solver: "auto"` without memory figures: exact up to this many rows.
const AUTO_EXACT_ROWS: usize = 20_000;

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn krr(interp: &mut Interp, a: &mut Args) -> R {
    let pool = pool_arg(a, 5)?;
    let x = data(a, 0, pool, Some(5))?;
    let n = x.shape()[0];
    let (rhs, vector) = targets(a, 1, n, 0)?;
    let k = kernel_arg(a, 2)?;
    let m = metric_arg(a, 3, features(&x))?;
    l1_needs_diagonal(a, 3, &k, &m)?;
    let reg = reg_arg(a, 4)?;
    let memory = crate::tensor::system_memory();
    let nystrom = match a.one_of(6, &["auto", "cholesky", "nystrom"])? {
        "cholesky" => false,
        "nystrom" => true,
        _ => {
            let exact = match memory {
                Some((total, _)) => exact_bytes(n) <= total / AUTO_EXACT_SHARE,
                None => n <= AUTO_EXACT_ROWS,
            };
            if !exact && pool.is_none() && interp.run.noted.insert("krr auto") {
                interp.host.note(&format!(
                    "note: krr: the exact kernel matrix of {n} rows would take {}; solving by Nyström with {} centres (choose with `solver:` and `centers:`)",
                    gib(exact_bytes(n)),
                    centers_arg(a, n)?
                ));
            }
            !exact && pool.is_none()
        }
    };
    if nystrom {
        if pool.is_some() {
            return Err(a
                .error(
                    6,
                    "flx::krr::solver",
                    "the Nyström solver fits rows, not patches",
                )
                .help("use `solver: \"cholesky\"` for patches"));
        }
        return nystrom_krr(interp, a, x, rhs, vector, k, m, reg);
    }
    if let Some((_, available)) = memory {
        if exact_bytes(n) > available {
            return Err(a
                .error(
                    0,
                    "flx::memory::exact_krr",
                    format!(
                        "an exact fit of {n} rows needs a {n} × {n} kernel matrix{} ({}), more than the memory available",
                        if n >= linalg::REFINED_MIN { " and its f32 copy" } else { "" },
                        gib(exact_bytes(n)),
                    ),
                )
                .help("use `solver: \"nystrom\"` (with `centers:`), which never forms the n × n matrix"));
        }
    }
    check_size(&[n, n], a.call)?;
    // The kernel matrix (its lower half), then Cholesky.
    let flops = pooled_flops(&m, &x, &x, pool) / 2 + solve_flops(n, rhs.ncols());
    interp.charge(flops, a.call)?;
    // Seconds of work from about this many rows on: say what is happening.
    let progress = (n >= 4096).then(|| {
        Progress::new(
            None,
            "krr {spinner} {prefix}: {msg} ({elapsed})",
            &format!("{n} rows"),
        )
    });
    let phase = |msg: &'static str| progress.as_ref().inspect(|p| p.message(msg));
    phase("kernel matrix");
    let kmat = match pool {
        None => kernel::gram_lower(&k, mat(&x), &m),
        Some(pool) => {
            let mut kmat = linalg::work_matrix(n, n);
            let g = kernel::pool::gram(&k, view3(&x), view3(&x), &m, pool);
            linalg::rows_view(&mut kmat).assign(&g);
            kmat
        }
    };
    if let Err(d) = interp.poll_interrupt(a.call) {
        linalg::give_back(kmat);
        return Err(d);
    }
    let finite = (0..n).all(|j| kmat.col(j).iter().skip(j).all(|v| v.is_finite()));
    if !finite {
        linalg::give_back(kmat);
        return Err(not_finite(a, &k, "the training rows"));
    }
    phase("Cholesky factor and solve");
    let (alpha, precision) = ridge_solve(interp, a, kmat, rhs, vector, reg, 2)?;
    Ok(Value::Predictor(Rc::new(Predictor {
        kernel: k,
        centers: x,
        alpha: Rc::new(alpha),
        metric: m,
        reg,
        pool,
        solver: kernel::Solver::Cholesky {
            refined: match precision {
                linalg::Precision::Refined(steps) => Some(steps),
                linalg::Precision::Double => None,
            },
        },
    })))
}

fn not_finite(a: &Args, k: &Kernel, rows: &str) -> Diag {
    a.error(
        2,
        "flx::kernel::not_finite",
        format!("kernel `{}` gave nan or inf on {rows}", kernel_repr(k)),
    )
    .help("check the body at dist = 0 (e.g. `log(dist)`), and the hyperparameters")
}

/// Nyström centres: `centers:` (argument 7), by default `NYSTROM_CENTERS`,
/// at most n.
fn centers_arg(a: &Args, n: usize) -> Result<usize, Diag> {
    let m = match a.opt_int(7)? {
        None => NYSTROM_CENTERS,
        Some(m) if m >= 1 => m as usize,
        Some(m) => {
            return Err(a.error(
                7,
                "flx::value::centers",
                format!("`centers` must be at least 1, found {m}"),
            ))
        }
    };
    Ok(m.min(n))
}

/// Centres when `centers:` is not given.
const NYSTROM_CENTERS: usize = 2000;

/// `krr(..., solver: "nystrom")`: Falkon's preconditioned CG (`kernel::nystrom`).
#[allow(clippy::too_many_arguments)]
fn nystrom_krr(
    interp: &mut Interp,
    a: &Args,
    x: Rc<Tensor>,
    rhs: ndarray::Array2<f64>,
    vector: bool,
    k: Rc<Kernel>,
    metric: Metric,
    reg: f64,
) -> R {
    use kernel::nystrom::{self, Step};
    let n = x.shape()[0];
    let m = centers_arg(a, n)?;
    let tol = a.f64(8)?;
    if !(tol.is_finite() && tol > 0.0 && tol < 1.0) {
        return Err(a.error(
            8,
            "flx::value::tol",
            format!("`tol` must be between 0 and 1, found {tol}"),
        ));
    }
    let max_iters = a.count(9)?;
    if reg == 0.0 {
        return Err(a
            .error(4, "flx::value::reg", "the Nyström solver needs `reg` > 0")
            .help("its preconditioner factors K_mm / m + reg / n · I"));
    }
    // The centres: all rows in order for m = n (the exact fit), else a seeded sample.
    let centers: Rc<Tensor> = if m == n {
        x.clone()
    } else {
        let mut local = None;
        let rng = super::arrays::rng_of(interp, a, 10, &mut local)?;
        let picks = nystrom::sample_rows(n, m, rng);
        Rc::new(mat(&x).select(ndarray::Axis(0), &picks).into_dyn().into())
    };
    let d = features(&x) as u64;
    let (nu, mu) = (n as u64, m as u64);
    // K_nm and K_mm; then per iteration two products with K_nm (and its
    // recomputation when it is not kept), charged for the first few.
    let flops = metric.gram_flops(n, m, d as usize) + 4 * nu * mu * (max_iters.min(20) as u64);
    interp.charge(flops, a.call)?;
    // Keep K_nm when it takes at most three quarters of the memory available
    // now (recomputing it costs a GEMM and a kernel pass per CG iteration).
    let budget = crate::tensor::system_memory().map_or(1 << 30, |(_, available)| available / 4 * 3);
    let options = nystrom::Options {
        reg,
        tol,
        max_iters,
        budget,
    };
    let progress = (n >= 4096).then(|| {
        Progress::new(
            None,
            "krr {spinner} {prefix}: {msg} ({elapsed})",
            &format!("{n} rows, {m} centres"),
        )
    });
    let flag = interp.interrupt_flag();
    let mut report = |step: Step| {
        if let Some(p) = &progress {
            match step {
                Step::Rows(done, total) => p.message(format!("kernel rows {done}/{total}")),
                Step::Iteration(i, r) => p.message(format!("CG iteration {i}, residual {r:.2e}")),
            }
        }
        !flag.load(std::sync::atomic::Ordering::Relaxed)
    };
    let fit = nystrom::fit(
        &k,
        mat(&x),
        rhs.view(),
        mat(&centers),
        &metric,
        &options,
        &mut report,
    );
    drop(progress);
    let fit = fit.map_err(|e| match e {
        nystrom::Error::Interrupted => interp.interrupted(a.call),
        nystrom::Error::Centers => a
            .error(
                2,
                "flx::linalg::not_pd",
                format!("the kernel matrix of the {m} centres is not positive definite"),
            )
            .help("check that the kernel is positive definite, and that X has no repeated rows"),
    })?;
    if !fit.alpha.iter().all(|v| v.is_finite()) {
        return Err(not_finite(a, &k, "the training rows or the centres"));
    }
    let alpha: Tensor = if vector {
        fit.alpha
            .into_shape_with_order(m)
            .expect("column")
            .into_dyn()
    } else {
        fit.alpha.into_dyn()
    }
    .into();
    Ok(Value::Predictor(Rc::new(Predictor {
        kernel: k,
        centers,
        alpha: Rc::new(alpha),
        metric,
        reg,
        pool: None,
        solver: kernel::Solver::Nystrom {
            iters: fit.iters,
            residual: fit.residual,
        },
    })))
}

/// X, each result element's flat position in X, and the result's shape.
pub type PatchPositions = (Rc<Tensor>, Vec<usize>, Vec<usize>);

/// The arguments of `patches` checked: X, and for each element of the
/// (n, P, c·s·s) result its flat position in X.
pub fn patch_positions(a: &Args) -> Result<PatchPositions, Diag> {
    let x = a.matrix(0)?;
    let dims: Vec<usize> = match &a.vals[1] {
        Value::Tuple(t) => t
            .iter()
            .map(|v| match v {
                Value::Int(i) if *i > 0 => Some(*i as usize),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .filter(|d| d.len() == 2 || d.len() == 3)
            .ok_or_else(|| a.expected(1, "(h, w) or (c, h, w), positive Ints"))?,
        _ => return Err(a.expected(1, "(h, w) or (c, h, w), positive Ints")),
    };
    let (c, h, w) = match dims[..] {
        [h, w] => (1, h, w),
        [c, h, w] => (c, h, w),
        _ => unreachable!("2 or 3 dimensions"),
    };
    let (s, stride) = (a.count(2)?, a.count(3)?);
    let d = x.shape()[1];
    if c.checked_mul(h).and_then(|ch| ch.checked_mul(w)) != Some(d) {
        return Err(a.shapes_error(
            0,
            1,
            "flx::shape::patches",
            format!("`patches`: rows of {d} values are not images of {c} × {h} × {w}"),
        ));
    }
    if s == 0 || s > h || s > w {
        return Err(a.error(
            2,
            "flx::value::patches",
            format!("a patch size must be between 1 and the image's sides ({h} × {w}), found {s}"),
        ));
    }
    if stride == 0 {
        return Err(a.error(3, "flx::value::patches", "`stride` must be at least 1"));
    }
    let (ph, pw) = ((h - s) / stride + 1, (w - s) / stride + 1);
    let (n, per) = (x.shape()[0], c * s * s);
    check_size(&[n, ph * pw, per], a.call)?;
    let mut positions = Vec::with_capacity(n * ph * pw * per);
    for i in 0..n {
        for pi in 0..ph {
            for pj in 0..pw {
                for ch in 0..c {
                    for ki in 0..s {
                        let row = pi * stride + ki;
                        let start = i * d + ch * h * w + row * w + pj * stride;
                        positions.extend(start..start + s);
                    }
                }
            }
        }
    }
    Ok((x, positions, vec![n, ph * pw, per]))
}

/// `krr_solve(K, Y, reg:)`: the weights of kernel ridge regression from a
/// Gram matrix, by the same Cholesky as `krr`.
fn krr_solve(interp: &mut Interp, a: &mut Args) -> R {
    let kt = a.matrix(0)?;
    let n = kt.shape()[0];
    if kt.shape()[1] != n {
        return Err(a.error(
            0,
            "flx::shape::not_square",
            format!(
                "`krr_solve` needs a square kernel matrix, found shape {}",
                shape_str(kt.shape())
            ),
        ));
    }
    let km = mat(&kt);
    if km.iter().any(|v| !v.is_finite()) {
        return Err(a.error(0, "flx::value::not_finite", "K has nan or inf entries"));
    }
    symmetric(a, 0, km, "K")?;
    let (rhs, vector) = targets(a, 1, n, 0)?;
    let reg = reg_arg(a, 2)?;
    interp.charge(solve_flops(n, rhs.ncols()), a.call)?;
    let mut kmat = linalg::work_matrix(n, n);
    linalg::rows_view(&mut kmat).assign(&km);
    let (alpha, _) = ridge_solve(interp, a, kmat, rhs, vector, reg, 0)?;
    Ok(Value::tensor(alpha))
}

/// A symmetric matrix argument, to rounding (`what` names it).
fn symmetric(a: &Args, i: usize, mm: ndarray::ArrayView2<f64>, what: &str) -> Result<(), Diag> {
    let d = mm.nrows();
    let scale = mm.iter().fold(0.0f64, |s, x| s.max(x.abs()));
    let asym = (0..d)
        .flat_map(|i| (0..i).map(move |j| (i, j)))
        .map(|(i, j)| (mm[(i, j)] - mm[(j, i)]).abs())
        .fold(0.0f64, f64::max);
    if asym > 1e-10 * scale {
        return Err(a
            .error(
                i,
                "flx::value::not_symmetric",
                format!("{what} must be symmetric"),
            )
            .label(format!(
                "entries differ from their transpose by up to {}",
                crate::format::float_repr(asym)
            ))
            .help(format!("use ({what} + {what}.T) / 2")));
    }
    Ok(())
}

fn agop(interp: &mut Interp, a: &mut Args) -> R {
    let Value::Predictor(f) = &a.vals[0] else {
        return function_agop(interp, a);
    };
    let f = f.clone();
    let x = subsample(interp, a, data(a, 1, f.pool, None)?)?;
    let d = f.features();
    let local_mismatch = f.pool == Some(Pool::Local) && x.shape()[1] != f.centers.shape()[1];
    if features(&x) != d || local_mismatch {
        let fitted = match f.pool {
            None => format!("{d} features"),
            Some(Pool::All) => format!("patches of {d} features"),
            Some(Pool::Local) => format!("{} patches of {d} features", f.centers.shape()[1]),
        };
        return Err(a.error(
            1,
            "flx::shape::features",
            format!(
                "the predictor was fitted on {fitted}, but X has shape {}",
                shape_str(x.shape())
            ),
        ));
    }
    if x.shape()[0] == 0 {
        return Err(a.error(1, "flx::shape::empty", "`agop` needs at least one row"));
    }
    let (diag, centering) = (a.bool(2)?, a.bool(3)?);
    // A and B are n × m; the Gram-matrix order of the contraction makes m × m ones.
    let side = x.shape()[0].max(f.centers.shape()[0]);
    check_size(&[side, side], a.call)?;
    // The Gram matrix, its derivative's contraction with the centres, the outer products.
    // The Gram matrix and its derivative's contraction with the centres (per
    // output), then the outer products.
    let rows: usize = x.shape()[..x.ndim() - 1].iter().product();
    let outputs = f.alpha_columns().ncols() as u64;
    let flops = (2 + outputs) * pooled_flops(&f.metric, &x, &f.centers, f.pool)
        + 2 * outputs * (rows * d * d) as u64;
    interp.charge(flops, a.call)?;
    let (k, alpha, m) = (&f.kernel, f.alpha_columns(), &f.metric);
    let g = match f.pool {
        None => kernel::agop(k, mat(&f.centers), alpha, m, mat(&x), diag, centering),
        Some(pool) => {
            let (z, x) = (view3(&f.centers), view3(&x));
            kernel::pool::agop(k, z, alpha, m, x, pool, diag, centering)
        }
    };
    Ok(Value::tensor(match g {
        Agop::Full(g) => g.into_dyn(),
        Agop::Diag(g) => g.into_dyn(),
    }))
}

/// The rows of X `agop` averages over: all of them, or `sample:` (argument
/// 4) of them drawn without replacement, in their order in X.
fn subsample(interp: &mut Interp, a: &Args, x: Rc<Tensor>) -> Result<Rc<Tensor>, Diag> {
    let Some(s) = a.opt_int(4)? else {
        return Ok(x);
    };
    if s < 1 {
        return Err(a.error(
            4,
            "flx::value::sample",
            format!("`sample` must be at least 1, found {s}"),
        ));
    }
    let n = x.shape()[0];
    if s as usize >= n {
        return Ok(x);
    }
    let mut local = None;
    let rng = super::arrays::rng_of(interp, a, 5, &mut local)?;
    let picks = kernel::nystrom::sample_rows(n, s as usize, rng);
    Ok(Rc::new(x.select(ndarray::Axis(0), &picks).into()))
}

/// `agop` of any differentiable function or model, through its gradients.
fn function_agop(interp: &mut Interp, a: &mut Args) -> R {
    if !matches!(
        a.vals[0],
        Value::Func(_) | Value::Model(_) | Value::Builtin(_) | Value::Transform(_)
    ) {
        return Err(a.expected(0, "a Predictor (from `krr`), a model or a function"));
    }
    let x = subsample(interp, a, a.matrix(1)?)?;
    if x.shape()[0] == 0 {
        return Err(a.error(1, "flx::shape::empty", "`agop` needs at least one row"));
    }
    let d = x.shape()[1];
    check_size(&[d, d], a.call)?;
    let f = a.vals[0].clone();
    let options = (a.bool(2)?, a.bool(3)?);
    crate::eval::traced::agop(interp, &f, &x, options, a.spans[1], a.call)
}

fn similarity(a: &Args, centered: bool) -> R {
    let (x, y) = (a.tensor(0)?, a.tensor(1)?);
    if x.shape() != y.shape() {
        return Err(a.shapes_error(
            0,
            1,
            "flx::shape::mismatch",
            format!(
                "`{}` needs two tensors of the same shape, found {} and {}",
                a.name,
                shape_str(x.shape()),
                shape_str(y.shape())
            ),
        ));
    }
    let n = x.len().max(1) as f64;
    let (mx, my) = if centered {
        (x.sum() / n, y.sum() / n)
    } else {
        (0.0, 0.0)
    };
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(y.iter()) {
        let (p, q) = (p - mx, q - my);
        xy += p * q;
        xx += p * p;
        yy += q * q;
    }
    Ok(Value::Float(xy / (xx.sqrt() * yy.sqrt())))
}
