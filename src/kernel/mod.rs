//! Kernel machines: kernel instances, Gram matrices and the exact AGOP.
//!
//! A kernel body is a scalar formula over the pair geometry under a PSD matrix
//! M (`dist`, `sqdist`, `dot`, `xnorm`, `znorm`). Everything here is built from
//! GEMMs over whole matrices plus one elementwise pass of the compiled body:
//!
//! - `gram`: `X M Zᵀ` and the row norms by GEMM, then the body (`tape`).
//! - the gradient: `∇ₓk(x, z) = a·Mx + b·Mz`, where the coefficients `a` and
//!   `b` come from the body's symbolic partial derivatives (`expr`), so any
//!   user-written kernel has an exact AGOP.
//! - `agop`: the Jacobians of a kernel predictor, contracted by GEMMs in the
//!   cheaper of two orders (see `agop`).

pub mod expr;
pub mod lower;
pub mod nystrom;
pub mod pool;
pub mod tape;

use std::cell::OnceCell;
use std::rc::Rc;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};

use self::expr::Geo;
pub use self::lower::Family;
pub use self::pool::Pool;
use self::tape::{Rows, Tape};
use crate::linalg::{gemm, gemm_into};
use crate::prim::{Binary, Unary};

/// A kernel: a declared family with values for its hyperparameters
/// (`laplace(L: 5.0)`; the declaration itself is the instance with the
/// defaults), or kernels combined (`laplace(L: 3.0) + 0.5 * poly(p: 2)`).
/// Either way it has one body, a formula over the geometry with every
/// hyperparameter substituted, so a combination gets its derivative, its
/// compiled program and its exact AGOP like a declared kernel.
#[derive(Debug)]
pub struct Kernel {
    pub form: Form,
    graph: expr::Graph,
    body: expr::Id,
    /// Instances and operations in the combination (1 for an instance).
    size: usize,
    compiled: OnceCell<Rc<Compiled>>,
}

#[derive(Debug)]
pub enum Form {
    Instance {
        family: Rc<Family>,
        values: Vec<Option<f64>>,
    },
    Sum(Rc<Kernel>, Rc<Kernel>),
    Product(Rc<Kernel>, Rc<Kernel>),
    /// A number ≥ 0 times a kernel.
    Scaled(f64, Rc<Kernel>),
    /// A kernel to a power ≥ 1.
    Power(Rc<Kernel>, u32),
}

/// Most distinct operations in a combined body, and most parts in a combination.
const MAX_COMBINED: usize = 2000;

/// Why kernels cannot be combined.
#[derive(Debug, PartialEq)]
pub enum CombineError {
    /// A part still needs a value for these hyperparameters.
    Missing(String, Vec<String>),
    TooLarge(usize),
}

#[derive(Debug)]
struct Compiled {
    /// The body, for `gram`.
    value: Tape,
    /// The gradient coefficients `a` and `b` of `∇ₓk = a·Mx + b·Mz`; only `a`
    /// when `b = -a` (kernels of `dist` and `sqdist` alone, the usual case).
    gradient: Tape,
    b_is_neg_a: bool,
    /// The body reads `l1dist`; the gradient tape's last output is `∂k/∂l1dist`.
    l1: bool,
    /// For `gram_vjp`: the coefficients `w`, `∂k/∂dot`, `vx`, `vz` (and
    /// `∂k/∂l1dist`) of `∇ₓk = w M(x−z) + ∂k/∂dot Mz + vx Mx (+ ∂k/∂l1dist m∘sign(x−z))`
    /// and `∇_z k = w M(z−x) + ∂k/∂dot Mx + vz Mz (+ ...)`.
    partials: Tape,
}

impl Kernel {
    pub fn new(family: Rc<Family>, values: Vec<Option<f64>>) -> Kernel {
        let numbers: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        let (graph, roots) = family.graph.substitute(&[family.body], &numbers);
        Kernel {
            form: Form::Instance { family, values },
            graph,
            body: roots[0],
            size: 1,
            compiled: OnceCell::new(),
        }
    }

    /// The hyperparameters of every instance in the kernel, left to right:
    /// θ as `hyper_derivative` numbers it.
    pub fn hyper_values(&self) -> Vec<f64> {
        match &self.form {
            Form::Instance { values, .. } => values.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
            Form::Sum(a, b) | Form::Product(a, b) => [a.hyper_values(), b.hyper_values()].concat(),
            Form::Scaled(_, k) | Form::Power(k, _) => k.hyper_values(),
        }
    }

    /// ∂k/∂θᵢ (θ numbered as `hyper_values`), a kernel of the same geometry
    /// whose Gram matrix is ∂K/∂θᵢ (not positive definite in general): the
    /// body's symbolic derivative for an instance, the rules of sums,
    /// products and powers for a combination.
    pub fn hyper_derivative(&self, i: usize) -> Result<Kernel, CombineError> {
        let left = |a: &Kernel| a.hyper_values().len();
        match &self.form {
            Form::Instance { family, values } => {
                let mut graph = family.graph.clone();
                let d = graph.hyper_derivative(family.body, i as u16);
                let numbers: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
                let (graph, roots) = graph.substitute(&[d], &numbers);
                Ok(Kernel {
                    form: Form::Instance {
                        family: family.clone(),
                        values: values.clone(),
                    },
                    graph,
                    body: roots[0],
                    size: 1,
                    compiled: OnceCell::new(),
                })
            }
            Form::Sum(a, b) if i < left(a) => a.hyper_derivative(i),
            Form::Sum(a, b) => b.hyper_derivative(i - left(a)),
            Form::Product(a, b) if i < left(a) => {
                Kernel::product(Rc::new(a.hyper_derivative(i)?), b.clone())
            }
            Form::Product(a, b) => {
                Kernel::product(a.clone(), Rc::new(b.hyper_derivative(i - left(a))?))
            }
            Form::Scaled(c, k) => Kernel::scaled(*c, Rc::new(k.hyper_derivative(i)?)),
            // (k^p)' = p k^(p-1) k'.
            Form::Power(k, 1) => k.hyper_derivative(i),
            Form::Power(k, p) => {
                let lower = match p - 1 {
                    1 => k.clone(),
                    q => Rc::new(Kernel::power(k.clone(), q)?),
                };
                let chain = Kernel::product(lower, Rc::new(k.hyper_derivative(i)?))?;
                Kernel::scaled(*p as f64, Rc::new(chain))
            }
        }
    }

    /// An instance's family; a combination has none.
    pub fn family(&self) -> Option<&Family> {
        match &self.form {
            Form::Instance { family, .. } => Some(family),
            _ => None,
        }
    }

    /// The names of hyperparameters that still need a value.
    pub fn missing(&self) -> Vec<&str> {
        match &self.form {
            Form::Instance { family, values } => family
                .params
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_none())
                .map(|(p, _)| p.as_ref())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The body with every hyperparameter substituted (a copy).
    pub fn body(&self) -> (expr::Graph, expr::Id) {
        (self.graph.clone(), self.body)
    }

    pub fn sum(a: Rc<Kernel>, b: Rc<Kernel>) -> Result<Kernel, CombineError> {
        Kernel::combine(Form::Sum(a, b))
    }

    pub fn product(a: Rc<Kernel>, b: Rc<Kernel>) -> Result<Kernel, CombineError> {
        Kernel::combine(Form::Product(a, b))
    }

    /// `c * k`; the caller checks that `c` is a finite number ≥ 0.
    pub fn scaled(c: f64, k: Rc<Kernel>) -> Result<Kernel, CombineError> {
        Kernel::combine(Form::Scaled(c, k))
    }

    /// `k ^ p`; the caller checks that `p` ≥ 1.
    pub fn power(k: Rc<Kernel>, p: u32) -> Result<Kernel, CombineError> {
        Kernel::combine(Form::Power(k, p))
    }

    fn combine(form: Form) -> Result<Kernel, CombineError> {
        let parts: Vec<&Rc<Kernel>> = match &form {
            Form::Sum(a, b) | Form::Product(a, b) => vec![a, b],
            Form::Scaled(_, k) | Form::Power(k, _) => vec![k],
            Form::Instance { .. } => unreachable!("instances are not combined"),
        };
        for k in &parts {
            let missing = k.missing();
            if let (Form::Instance { family, .. }, false) = (&k.form, missing.is_empty()) {
                return Err(CombineError::Missing(
                    family.name.to_string(),
                    missing.iter().map(|m| m.to_string()).collect(),
                ));
            }
        }
        let size = 1 + parts.iter().map(|k| k.size).sum::<usize>();
        let mut graph = expr::Graph::default();
        let roots: Vec<expr::Id> = parts
            .iter()
            .map(|k| k.graph.copy_into(&mut graph, k.body, &[]))
            .collect();
        let body = match &form {
            Form::Sum(..) => graph.binary(Binary::Add, roots[0], roots[1]),
            Form::Product(..) => graph.binary(Binary::Mul, roots[0], roots[1]),
            Form::Scaled(c, _) => {
                let c = graph.constant(*c);
                graph.binary(Binary::Mul, c, roots[0])
            }
            Form::Power(_, p) => {
                let p = graph.constant(*p as f64);
                graph.binary(Binary::Pow, roots[0], p)
            }
            Form::Instance { .. } => unreachable!(),
        };
        let largest = size.max(graph.nodes.len());
        if largest > MAX_COMBINED {
            return Err(CombineError::TooLarge(MAX_COMBINED));
        }
        Ok(Kernel {
            form,
            graph,
            body,
            size,
            compiled: OnceCell::new(),
        })
    }

    /// Whether the body reads `l1dist`, which needs M diagonal (or none).
    pub fn reads_l1(&self) -> bool {
        self.graph.uses(self.body, Geo::L1dist)
    }

    /// The compiled body and the compiled gradient coefficients (for
    /// benchmarks and tests of the tapes themselves).
    pub fn tapes(&self) -> (&Tape, &Tape) {
        let c = self.compiled();
        (&c.value, &c.gradient)
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let (mut g, k) = self.body();
            let d = |g: &mut expr::Graph, q| g.derivative(k, q);
            let (k_dist, k_sq, k_dot, k_xn, k_zn) = (
                d(&mut g, Geo::Dist),
                d(&mut g, Geo::Sqdist),
                d(&mut g, Geo::Dot),
                d(&mut g, Geo::Xnorm),
                d(&mut g, Geo::Znorm),
            );
            // ∇ₓ sqdist = 2M(x−z), ∇ₓ dist = M(x−z)/dist, ∇ₓ dot = Mz, ∇ₓ xnorm = Mx/xnorm.
            // Where dist (or xnorm) is 0 its term is taken as 0, as in the reference.
            let two = g.constant(2.0);
            let dist = g.geo(Geo::Dist);
            let xnorm = g.geo(Geo::Xnorm);
            let w1 = g.mul(two, k_sq);
            let w2 = g.term(Binary::SafeDiv, k_dist, dist);
            let w = g.add(w1, w2);
            let v = g.term(Binary::SafeDiv, k_xn, xnorm);
            let a = g.add(w, v);
            let b = g.sub(k_dot, w);
            let both_zero = a == b && g.as_const(a) == Some(0.0);
            let b_is_neg_a = both_zero || g.node(b) == expr::Node::Unary(Unary::Neg, a);
            let mut outputs = if b_is_neg_a { vec![a] } else { vec![a, b] };
            let znorm = g.geo(Geo::Znorm);
            let vz = g.term(Binary::SafeDiv, k_zn, znorm);
            let mut partials = vec![w, k_dot, v, vz];
            // ∇ₓ l1dist = M sign(x − z): its coefficient comes last.
            let l1 = g.uses(k, Geo::L1dist);
            if l1 {
                let e = d(&mut g, Geo::L1dist);
                outputs.push(e);
                partials.push(e);
            }
            Rc::new(Compiled {
                value: Tape::compile(&g, &[k]),
                gradient: Tape::compile(&g, &outputs),
                b_is_neg_a,
                l1,
                partials: Tape::compile(&g, &partials),
            })
        })
    }
}

/// A kernel ridge regression fit: `f(x) = Σⱼ αⱼ k(x, xⱼ)` under M.
#[derive(Debug)]
pub struct Predictor {
    pub kernel: Rc<Kernel>,
    /// The training rows (the centres), n × d; or n × P × d patches, pooled.
    pub centers: Rc<crate::tensor::Tensor>,
    /// The weights: a vector for a single output (Y was a vector), else n × c.
    pub alpha: Rc<crate::tensor::Tensor>,
    pub metric: Metric,
    pub reg: f64,
    /// How patches are pooled, for a predictor fitted on patches.
    pub pool: Option<Pool>,
    pub solver: Solver,
}

/// How a predictor's weights were found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Solver {
    /// Exactly, by Cholesky (the centres are the training rows): in f64, or
    /// in f32 with this many steps of refinement in f64
    /// (`linalg::cholesky_solve_refined`).
    Cholesky { refined: Option<usize> },
    /// By Nyström and preconditioned CG (`nystrom::fit`): its iterations and
    /// final relative residual.
    Nystrom { iters: usize, residual: f64 },
}

impl Solver {
    pub fn name(self) -> &'static str {
        match self {
            Solver::Cholesky { .. } => "cholesky",
            Solver::Nystrom { .. } => "nystrom",
        }
    }
}

impl Predictor {
    /// Features per row (per patch for a pooled predictor).
    pub fn features(&self) -> usize {
        *self.centers.shape().last().expect("2-d or 3-d centres")
    }

    /// The weights as an n × c matrix (one column for a single output).
    pub fn alpha_columns(&self) -> ArrayView2<'_, f64> {
        let a = self.alpha.view();
        match a.ndim() {
            1 => a
                .into_dimensionality::<ndarray::Ix1>()
                .expect("1-d")
                .insert_axis(ndarray::Axis(1)),
            _ => a.into_dimensionality().expect("2-d"),
        }
    }
}

/// The matrix M of the geometry: none (the identity, never multiplied), a
/// diagonal given as a vector, or a full d × d matrix.
#[derive(Clone, Debug)]
pub enum Metric {
    Identity,
    Diag(Array1<f64>),
    Full(Array2<f64>),
}

impl Metric {
    /// About how many flops a kernel matrix of `n` × `m` rows of `d`
    /// features takes under this metric (`X M`, `Z M`, then the products).
    pub fn gram_flops(&self, n: usize, m: usize, d: usize) -> u64 {
        let (n, m, d) = (n as u64, m as u64, d as u64);
        let scaled = match self {
            Metric::Full(_) => 2 * (n + m) * d * d,
            _ => 0,
        };
        scaled + 2 * n * m * d
    }

    /// `X M`.
    fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        match self {
            Metric::Identity => x.to_owned(),
            Metric::Diag(m) => &x * m,
            Metric::Full(m) => gemm(x, m.view()),
        }
    }

    /// `M A M`, for a symmetric `A`, made exactly symmetric (GEMMs leave
    /// rounding-level asymmetry, which `eigh` and printing should not see).
    fn sandwich(&self, a: Array2<f64>) -> Array2<f64> {
        let r = match self {
            Metric::Identity => a,
            Metric::Diag(m) => {
                let mut a = a;
                for ((i, j), x) in a.indexed_iter_mut() {
                    *x *= m[i] * m[j];
                }
                a
            }
            Metric::Full(m) => gemm(gemm(m.view(), a.view()).view(), m.view()),
        };
        (&r + &r.t()) * 0.5
    }
}

/// Row-wise squared norms under M: `xᵢᵀ M xᵢ`, given `XM`.
fn row_norms(xm: &Array2<f64>, x: ArrayView2<f64>) -> Vec<f64> {
    xm.outer_iter()
        .zip(x.outer_iter())
        .map(|(a, b)| a.iter().zip(b).map(|(p, q)| p * q).sum())
        .collect()
}

fn same_rows(x: &ArrayView2<f64>, z: &ArrayView2<f64>) -> bool {
    x.as_ptr() == z.as_ptr() && x.dim() == z.dim() && x.strides() == z.strides()
}

/// Write `X M Zᵀ` into `out` (only its upper triangle with `upper`, when Z
/// is X) and return both row-norm vectors (zeros when the tape reads no
/// distance or norm).
fn geometry(
    tape: &Tape,
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    m: &Metric,
    upper: bool,
    mut out: ArrayViewMut2<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let reads = |qs: &[Geo]| qs.iter().any(|q| tape.reads(*q));
    let norms = reads(&[Geo::Dist, Geo::Sqdist, Geo::Xnorm, Geo::Znorm]);
    if !norms && !reads(&[Geo::Dot]) {
        // l1dist alone (or a constant): no product and no norms.
        return (vec![0.0; x.nrows()], vec![0.0; z.nrows()]);
    }
    let xm = m.apply(x);
    gemm_into(out.view_mut(), xm.view(), z.t(), upper);
    if !norms {
        return (vec![0.0; x.nrows()], vec![0.0; z.nrows()]);
    }
    let xn2 = row_norms(&xm, x);
    let zn2 = if same_rows(&x, &z) {
        // A row against itself: make `x M xᵀ` equal the norm exactly, so that
        // sqdist is exactly 0 there rather than GEMM's rounding, which `dist`
        // (a square root) would magnify to ~1e-8.
        for (i, &v) in xn2.iter().enumerate() {
            out[(i, i)] = v;
        }
        xn2.clone()
    } else {
        row_norms(&m.apply(z), z)
    };
    (xn2, zn2)
}

/// Evaluate a tape over all pairs of rows of X and Z into `outs`.
fn fill(
    tape: &Tape,
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    m: &Metric,
    upper: bool,
    outs: &mut [ArrayViewMut2<f64>],
) {
    let (xn2, zn2) = geometry(tape, x, z, m, upper, outs[0].view_mut());
    let zt = tape
        .reads(Geo::L1dist)
        .then(|| z.t().as_standard_layout().into_owned());
    let l1 = zt.as_ref().map(|zt| tape::L1 {
        x,
        zt: zt.view(),
        m: match m {
            Metric::Identity => None,
            Metric::Diag(w) => Some(w.as_slice().expect("contiguous")),
            Metric::Full(_) => unreachable!("callers refuse a full M for l1dist"),
        },
    });
    let rows = Rows {
        xn2: &xn2,
        zn2: &zn2,
        l1,
    };
    tape.run(&rows, upper, outs);
}

/// The kernel matrix `K[i, j] = k(xᵢ, zⱼ)` under M.
pub fn gram(k: &Kernel, x: ArrayView2<f64>, z: ArrayView2<f64>, m: &Metric) -> Array2<f64> {
    let tape = &k.compiled().value;
    let mut g = Array2::<f64>::zeros((x.nrows(), z.nrows()));
    if same_rows(&x, &z) {
        fill(tape, x, x, m, true, &mut [g.view_mut()]);
        mirror_upper(g.view_mut());
    } else {
        fill(tape, x, z, m, false, &mut [g.view_mut()]);
    }
    g
}

/// Predictions `gram(k, X, Z, M) @ alpha` of a kernel machine with centres Z.
pub fn predict(
    k: &Kernel,
    x: ArrayView2<f64>,
    centers: ArrayView2<f64>,
    m: &Metric,
    alpha: ArrayView2<f64>,
) -> Array2<f64> {
    let mut store = crate::linalg::work_matrix(centers.nrows(), x.nrows());
    let mut g = crate::linalg::rows_view(&mut store);
    fill(
        &k.compiled().value,
        x,
        centers,
        m,
        false,
        &mut [g.view_mut()],
    );
    let out = gemm(g.view(), alpha);
    crate::linalg::give_back(store);
    out
}

/// The lower triangle (with the diagonal) of `gram(k, X, X, M)`, all a
/// Cholesky factorisation reads, in a work matrix (`linalg::work_matrix`;
/// its strictly upper part is garbage): half the work of `gram`.
pub fn gram_lower(k: &Kernel, x: ArrayView2<f64>, m: &Metric) -> faer::Mat<f64> {
    let mut g = crate::linalg::work_matrix(x.nrows(), x.nrows());
    // The upper triangle of the row view is the lower one of the matrix.
    fill(
        &k.compiled().value,
        x,
        x,
        m,
        true,
        &mut [crate::linalg::rows_view(&mut g)],
    );
    g
}

/// Copy the upper triangle of a square matrix onto the lower one, in tiles
/// (a plain transposing loop misses the cache on every write).
fn mirror_upper(mut g: ArrayViewMut2<f64>) {
    const TILE: usize = 64;
    let n = g.nrows();
    for bi in (0..n).step_by(TILE) {
        for bj in (0..=bi).step_by(TILE) {
            for i in bi..(bi + TILE).min(n) {
                for j in bj..(bj + TILE).min(i) {
                    g[(i, j)] = g[(j, i)];
                }
            }
        }
    }
}

/// What `agop` returns: the full d × d matrix or its diagonal.
pub enum Agop {
    Full(Array2<f64>),
    Diag(Array1<f64>),
}

/// The average gradient outer product `(1/n) Σᵢ Jᵢᵀ Jᵢ` of the predictor
/// `f(x) = Σⱼ αⱼ k(x, zⱼ)` over the rows xᵢ of X, where Jᵢ is the c × d
/// Jacobian at xᵢ; with `centering`, the Jacobians minus their mean.
///
/// With `∇ₓk(xᵢ, zⱼ) = Aᵢⱼ Mxᵢ + Bᵢⱼ Mzⱼ`, each Jacobian is `Ĵᵢ M`, where
/// `Ĵᵢ[c, :] = Pᵢc xᵢ + Σⱼ Bᵢⱼ αⱼc zⱼ` and `P = A α`. The sum `Σᵢ Ĵᵢᵀ Ĵᵢ` is
/// formed a block of rows of X at a time (`add_jacobians`), in whichever
/// order costs less (each block's sum is then taken through M, so that the
/// result is a Gram matrix of the `Ĵᵢ M` even where M is nearly singular and
/// Ĵ large across its null directions, as late in an RFM loop):
/// - by output: `Ĵ_c = diag(P_c) X + (B ∘ α_cᵀ) Z`, a block of outputs at a
///   time (c·n·m·d multiply-adds; memory O(n·m) plus at most `JACOBIAN_BLOCK`);
/// - by Gram matrix, when m < c·d: `Xᵀ diag(Σ_c P²) X + Xᵀ H Z + (Xᵀ H Z)ᵀ +
///   Zᵀ (BᵀB ∘ ααᵀ) Z` with `H = (P αᵀ) ∘ B` (n·m² multiply-adds, whatever c and d).
pub fn agop(
    k: &Kernel,
    centers: ArrayView2<f64>,
    alpha: ArrayView2<f64>,
    m: &Metric,
    x: ArrayView2<f64>,
    diag: bool,
    centering: bool,
) -> Agop {
    let mut sums = JacobianSums::new(alpha.ncols(), x.ncols(), centering);
    add_jacobians(k, centers, alpha, m, x, &mut sums);
    sums.finish(x.nrows(), diag)
}

/// Most entries of an evaluation-rows × centres matrix formed at once by
/// `add_jacobians` (2²⁴ × 8 bytes = 128 MiB each, for A and at most B and E).
const AGOP_BLOCK: usize = 1 << 24;

/// `Σ JᵢᵀJᵢ` over the rows seen so far, centred on their mean `J` with
/// centering; blocks of rows are merged by the pairwise update of Chan,
/// Golub and LeVeque, so a block's own centring stays exact.
struct JacobianSums {
    rows: usize,
    core: Array2<f64>,
    /// The mean `J` (c × d), kept with centering only.
    mean: Option<Array2<f64>>,
}

impl JacobianSums {
    fn new(outputs: usize, d: usize, centering: bool) -> JacobianSums {
        JacobianSums {
            rows: 0,
            core: Array2::zeros((d, d)),
            mean: centering.then(|| Array2::zeros((outputs, d))),
        }
    }

    /// A block of `rows` rows: its `Σ JᵢᵀJᵢ` (centred on its own mean, given
    /// with centering).
    fn add(&mut self, rows: usize, core: Array2<f64>, mean: Option<Array2<f64>>) {
        if let (Some(acc), Some(block)) = (self.mean.as_mut(), mean) {
            let total = self.rows + rows;
            if total > 0 {
                let delta = &block - &*acc;
                let w = self.rows as f64 * rows as f64 / total as f64;
                self.core.scaled_add(w, &gemm(delta.t(), delta.view()));
                acc.scaled_add(rows as f64 / total as f64, &delta);
            }
        }
        self.core += &core;
        self.rows += rows;
    }

    /// `Σ / divisor`, or its diagonal.
    fn finish(self, divisor: usize, diag: bool) -> Agop {
        let g = self.core / divisor.max(1) as f64;
        // Exactly symmetric (GEMMs leave rounding-level asymmetry, which
        // `eigh` and printing should not see).
        let g = (&g + &g.t()) * 0.5;
        if diag {
            Agop::Diag(g.diag().to_owned())
        } else {
            Agop::Full(g)
        }
    }
}

/// Add the Jacobians of `f(x) = Σⱼ αⱼ k(x, zⱼ)` at the rows of X to `sums`,
/// `AGOP_BLOCK / m` rows at a time (all at once when they fit, which lets a
/// training set against itself use the symmetric form of `by_gram`).
fn add_jacobians(
    k: &Kernel,
    centers: ArrayView2<f64>,
    alpha: ArrayView2<f64>,
    m: &Metric,
    x: ArrayView2<f64>,
    sums: &mut JacobianSums,
) {
    let per_block = (AGOP_BLOCK / centers.nrows().max(1)).max(1);
    if x.nrows() > per_block {
        for start in (0..x.nrows()).step_by(per_block) {
            let end = (start + per_block).min(x.nrows());
            let block = x.slice(ndarray::s![start..end, ..]);
            add_jacobians(k, centers, alpha, m, block, sums);
        }
        return;
    }
    let compiled = k.compiled();
    let tape = &compiled.gradient;
    let mut a_store = crate::linalg::work_matrix(centers.nrows(), x.nrows());
    let mut a = crate::linalg::rows_view(&mut a_store);
    let zeros = || Array2::<f64>::zeros(a.dim());
    let mut b = (!compiled.b_is_neg_a).then(zeros);
    let mut e = compiled.l1.then(zeros);
    let mut outs = vec![a.view_mut()];
    outs.extend(b.as_mut().map(|b| b.view_mut()));
    outs.extend(e.as_mut().map(|e| e.view_mut()));
    fill(tape, x, centers, m, false, &mut outs);
    drop(outs);
    let a = a.view();
    let (c, d) = (alpha.ncols(), x.ncols());
    let p = gemm(a.view(), alpha);
    // With b = -a, B is -A: keep A and flip the sign of the terms in B.
    let (b, sign) = match &b {
        Some(b) => (b.view(), 1.0),
        None => (a, -1.0),
    };
    let terms = Terms {
        x,
        z: centers,
        alpha,
        p: &p,
        b,
        sign,
        l1: e.as_ref().map(|e| e.view()),
        m,
    };
    let centering = sums.mean.is_some();
    // The l1 terms have no Gram-matrix form: they are summed by output.
    let (core, mean) = if centers.nrows() < c * d && e.is_none() {
        // B is symmetric when it is -A for X = Z and a body symmetric in x and z.
        let symmetric = compiled.b_is_neg_a
            && same_rows(&x, &centers)
            && !tape.reads(Geo::Xnorm)
            && !tape.reads(Geo::Znorm);
        terms.by_gram(symmetric, centering)
    } else {
        terms.by_output(centering)
    };
    crate::linalg::give_back(a_store);
    sums.add(x.nrows(), core, mean);
}

/// Largest block of Jacobian rows × outputs formed at once (2²⁴ × 8 bytes = 128 MiB).
const JACOBIAN_BLOCK: usize = 1 << 24;

/// The inputs of the AGOP's contraction: evaluation rows X, centres Z, the
/// weights α, `P = A α`, the coefficient matrix B (times `sign`) and, for a
/// body that reads l1dist, the matrix E of `∂k/∂l1dist`, and M.
struct Terms<'a> {
    x: ArrayView2<'a, f64>,
    z: ArrayView2<'a, f64>,
    alpha: ArrayView2<'a, f64>,
    p: &'a Array2<f64>,
    b: ArrayView2<'a, f64>,
    sign: f64,
    l1: Option<ArrayView2<'a, f64>>,
    m: &'a Metric,
}

impl Terms<'_> {
    /// `Σᵢ JᵢᵀJᵢ` by output, `J_c = Ĵ_c M` with `Ĵ_c = diag(P_c) X + sign · B (α_c ∘ Z)`, where
    /// `(α_c ∘ Z)` scales the rows of Z, so all outputs of a block come from
    /// one GEMM `B [α₁∘Z | α₂∘Z | …]`; plus, with l1dist, `Σⱼ Eᵢⱼ αⱼc sign(xᵢ − zⱼ)`
    /// (`M` is diagonal then, so that term's `M` factors out like the others').
    /// With centering, each output's Jacobians are centred on their mean,
    /// which comes back too (c × d).
    fn by_output(&self, centering: bool) -> (Array2<f64>, Option<Array2<f64>>) {
        let Terms {
            x,
            z,
            alpha,
            p,
            b,
            sign,
            l1,
            m,
        } = *self;
        let (n, d, c) = (x.nrows(), x.ncols(), alpha.ncols());
        let per_block = (JACOBIAN_BLOCK / (n * d).max(1)).clamp(1, c.max(1));
        let mut core = Array2::<f64>::zeros((d, d));
        let mut means = centering.then(|| Array2::<f64>::zeros((c, d)));
        for first in (0..c).step_by(per_block) {
            let outs = first..(first + per_block).min(c);
            let mut scaled = Array2::<f64>::zeros((z.nrows(), outs.len() * d));
            for (k, out) in outs.clone().enumerate() {
                let mut block = scaled.slice_mut(ndarray::s![.., k * d..(k + 1) * d]);
                block.assign(&z);
                block *= &alpha.column(out).insert_axis(Axis(1));
            }
            let mut jac = gemm(b.view(), scaled.view());
            drop(scaled);
            jac *= sign;
            if let Some(e) = l1 {
                add_sign_terms(jac.view_mut(), e, x, z, alpha, outs.clone());
            }
            for (k, out) in outs.enumerate() {
                let mut j = jac.slice(ndarray::s![.., k * d..(k + 1) * d]).to_owned();
                for ((mut row, xr), &pc) in
                    j.rows_mut().into_iter().zip(x.rows()).zip(p.column(out))
                {
                    row.scaled_add(pc, &xr);
                }
                let mut j = m.apply(j.view());
                if let Some(means) = means.as_mut() {
                    let mean = j.mean_axis(Axis(0)).expect("rows");
                    j -= &mean;
                    means.row_mut(out).assign(&mean);
                }
                core += &gemm(j.t(), j.view());
            }
        }
        (core, means)
    }

    /// `Σᵢ JᵢᵀJᵢ` by Gram matrix (see `agop`), `M (Σᵢ ĴᵢᵀĴᵢ) M`; `symmetric`: B
    /// is, so BᵀB = B². With centering, as `by_output`.
    fn by_gram(&self, symmetric: bool, centering: bool) -> (Array2<f64>, Option<Array2<f64>>) {
        let Terms {
            x,
            z,
            alpha,
            p,
            b,
            sign,
            l1: _,
            m,
        } = *self;
        let n = x.nrows();
        // Zᵀ (BᵀB ∘ ααᵀ) Z
        let mut s = if symmetric {
            // BᵀB = B² for a symmetric B: the upper half, mirrored.
            let mut s = Array2::<f64>::zeros((b.ncols(), b.ncols()));
            gemm_into(s.view_mut(), b, b, true);
            mirror_upper(s.view_mut());
            s
        } else {
            gemm(b.t(), b.view())
        };
        s *= &gemm(alpha, alpha.t());
        let mut core = gemm(gemm(z.t(), s.view()).view(), z);
        drop(s);
        // Xᵀ H Z and its transpose
        let mut h = gemm(p.view(), alpha.t());
        h *= &b;
        h *= sign;
        let xhz = gemm(gemm(x.t(), h.view()).view(), z);
        drop(h);
        core += &xhz;
        core += &xhz.t();
        // Xᵀ diag(Σ_c P²) X
        let weights = p.map_axis(Axis(1), |r| r.dot(&r));
        let wx = &x * &weights.insert_axis(Axis(1));
        core += &gemm(x.t(), wx.view());
        let mean = (centering && n > 0).then(|| {
            // Σᵢ (Ĵᵢ − μ)ᵀ(Ĵᵢ − μ) = Σᵢ ĴᵢᵀĴᵢ − n μᵀμ, with
            // n μ_c = Xᵀ P_c + Zᵀ (α_c ∘ Bᵀ1).
            let colsum = b.sum_axis(Axis(0)) * sign;
            let weighted = &alpha * &colsum.insert_axis(Axis(1));
            let mut mu = gemm(x.t(), p.view());
            mu += &gemm(z.t(), weighted.view());
            let outer = gemm(mu.view(), mu.t());
            core.scaled_add(-1.0 / n as f64, &outer);
            m.apply((mu.t().to_owned() / n as f64).view())
        });
        (m.sandwich(core), mean)
    }
}

/// `jac[i, k·d + f] += Σⱼ e[i, j] α[j, c] sign(x[i, f] − z[j, f])` for the
/// k-th output c of `outs`: the l1 part of each Jacobian row, a row of X per
/// task (every entry sums over j in order, whatever the thread count).
fn add_sign_terms(
    mut jac: ArrayViewMut2<f64>,
    e: ArrayView2<f64>,
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    alpha: ArrayView2<f64>,
    outs: std::ops::Range<usize>,
) {
    use rayon::prelude::*;
    let d = x.ncols();
    let rows: Vec<_> = jac.outer_iter_mut().collect();
    rows.into_par_iter().enumerate().for_each_init(
        || vec![0.0; d],
        |sign, (i, mut row)| {
            let xi = x.row(i);
            for (j, zj) in z.outer_iter().enumerate() {
                let eij = e[(i, j)];
                if eij == 0.0 {
                    continue;
                }
                for ((s, &xf), &zf) in sign.iter_mut().zip(xi).zip(zj) {
                    let t = xf - zf;
                    *s = if t > 0.0 {
                        1.0
                    } else if t < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                }
                for (k, c) in outs.clone().enumerate() {
                    let w = eij * alpha[(j, c)];
                    let mut r = row.slice_mut(ndarray::s![k * d..(k + 1) * d]);
                    r.zip_mut_with(&ndarray::aview1(sign), |o, &s| *o += w * s);
                }
            }
        },
    );
}

/// What `gram_vjp` returns: the gradients of `Σᵢⱼ Gᵢⱼ k(xᵢ, zⱼ)` with respect
/// to X (n × d), Z (m × d) and M (d × d for a full M, the diagonal's d for a
/// diagonal one, `None` for the identity or when not wanted).
pub struct GramGrads {
    pub x: Option<ndarray::ArrayD<f64>>,
    pub z: Option<ndarray::ArrayD<f64>>,
    pub m: Option<ndarray::ArrayD<f64>>,
}

/// The pullback of `gram(k, X, Z, M)` for the output's gradient `g`, from the
/// body's symbolic partial derivatives (see `Compiled::partials`), by GEMMs:
/// with `H = G∘(∂k/∂dot − w)`, `dX = (diag(rowsum(G∘(w + vx))) X + H Z) M` and
/// `dZ = (diag(colsum(G∘(w + vz))) Z + Hᵀ X) M`; `dM` the same sums as outer
/// products. `want` says which of X, Z, M are needed.
pub fn gram_vjp(
    k: &Kernel,
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    m: &Metric,
    g: ArrayView2<f64>,
    want: [bool; 3],
) -> GramGrads {
    let c = k.compiled();
    let (n, mm) = (x.nrows(), z.nrows());
    let count = 4 + c.l1 as usize;
    let mut parts: Vec<Array2<f64>> = (0..count).map(|_| Array2::zeros((n, mm))).collect();
    {
        let mut views: Vec<ArrayViewMut2<f64>> = parts.iter_mut().map(|p| p.view_mut()).collect();
        fill(&c.partials, x, z, m, false, &mut views);
    }
    // `gram(k, X)` computes k(xᵢ, xⱼ) for i ≤ j and mirrors it: entry (i, j)
    // above the diagonal stands for both, so it carries G[i, j] + G[j, i].
    let g = if same_rows(&x, &z) {
        fold(g)
    } else {
        g.to_owned()
    };
    for p in &mut parts {
        *p *= &g;
    }
    let (gw, gd, gx, gz) = (&parts[0], &parts[1], &parts[2], &parts[3]);
    let ge = parts.get(4);
    let rows_w = gw.sum_axis(Axis(1)) + gx.sum_axis(Axis(1));
    let cols_w = gw.sum_axis(Axis(0)) + gz.sum_axis(Axis(0));
    let h = gd - gw;
    let scale_rows = |a: ArrayView2<f64>, w: &Array1<f64>| &a * &w.view().insert_axis(Axis(1));
    let ones = |len: usize| Array2::<f64>::ones((len, 1));
    let weights = match m {
        Metric::Diag(w) => Some(w),
        _ => None,
    };
    // The gradient for the rows of `a` against those of `b` (X against Z, or
    // Z against X with the pair matrices transposed):
    // (diag(sums) a + H b) M, plus M's diagonal times Σ E sign(a − b).
    let side = |a: ArrayView2<f64>,
                b: ArrayView2<f64>,
                sums: &Array1<f64>,
                h: ArrayView2<f64>,
                e: Option<ArrayView2<f64>>| {
        let mut out = scale_rows(a, sums);
        out += &gemm(h, b);
        let mut out = m.apply(out.view());
        if let Some(e) = e {
            let mut s = Array2::<f64>::zeros(out.dim());
            add_sign_terms(s.view_mut(), e, a, b, ones(b.nrows()).view(), 0..1);
            if let Some(w) = weights {
                s *= w;
            }
            out += &s;
        }
        out
    };
    let dx = want[0].then(|| side(x, z, &rows_w, h.view(), ge.map(|e| e.view())));
    let dz = want[1].then(|| side(z, x, &cols_w, h.t(), ge.map(|e| e.t())));
    let dm = (want[2] && !matches!(m, Metric::Identity)).then(|| {
        // ½Xᵀdiag(rows)X + ½Zᵀdiag(cols)Z + XᵀG∂Z − ½(XᵀGwZ + (XᵀGwZ)ᵀ)
        let mut dm = gemm(x.t(), scale_rows(x, &rows_w).view()) * 0.5;
        dm.scaled_add(0.5, &gemm(z.t(), scale_rows(z, &cols_w).view()));
        dm += &gemm(gemm(x.t(), gd.view()).view(), z);
        let p = gemm(gemm(x.t(), gw.view()).view(), z);
        dm.scaled_add(-0.5, &p);
        dm.scaled_add(-0.5, &p.t());
        match m {
            Metric::Diag(_) => {
                let mut diag = dm.diag().to_owned();
                if let Some(e) = ge {
                    diag += &l1_metric_grad(e.view(), x, z);
                }
                diag.into_dyn()
            }
            _ => dm.into_dyn(),
        }
    });
    GramGrads {
        x: dx.map(|a| a.into_dyn()),
        z: dz.map(|a| a.into_dyn()),
        m: dm,
    }
}

/// `G[i, j] + G[j, i]` above the diagonal, `G[i, i]` on it and 0 below: the
/// gradient each computed entry of a mirrored matrix carries.
fn fold(g: ArrayView2<f64>) -> Array2<f64> {
    let mut s = &g + &g.t();
    for ((i, j), v) in s.indexed_iter_mut() {
        if j < i {
            *v = 0.0;
        } else if i == j {
            *v = g[(i, i)];
        }
    }
    s
}

/// `Σᵢⱼ e[i, j] |x[i, f] − z[j, f]|` for each feature f: the l1 part of the
/// gradient with respect to M's diagonal (a row of X per task, summed in order).
fn l1_metric_grad(e: ArrayView2<f64>, x: ArrayView2<f64>, z: ArrayView2<f64>) -> Array1<f64> {
    use rayon::prelude::*;
    let d = x.ncols();
    let mut per_row = Array2::<f64>::zeros((x.nrows(), d));
    let rows: Vec<_> = per_row.outer_iter_mut().collect();
    rows.into_par_iter().enumerate().for_each(|(i, mut row)| {
        for (j, zj) in z.outer_iter().enumerate() {
            let eij = e[(i, j)];
            for ((o, &xf), &zf) in row.iter_mut().zip(x.row(i)).zip(zj) {
                *o += eij * (xf - zf).abs();
            }
        }
    });
    per_row.sum_axis(Axis(0))
}
