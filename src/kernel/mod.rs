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
pub mod tape;

use std::cell::OnceCell;
use std::rc::Rc;

use ndarray::{Array1, Array2, ArrayView2, Axis};

use self::expr::{Geo, Op};
pub use self::lower::Family;
use self::tape::{Rows, Tape};
use crate::linalg::gemm;

/// A kernel family with values for its hyperparameters (`laplace(L: 5.0)`).
/// The declaration itself is the instance with the defaults.
#[derive(Debug)]
pub struct Kernel {
    pub family: Rc<Family>,
    pub values: Vec<Option<f64>>,
    compiled: OnceCell<Rc<Compiled>>,
}

#[derive(Debug)]
struct Compiled {
    /// The body, for `gram`.
    value: Tape,
    /// The gradient coefficients `a` and `b` of `∇ₓk = a·Mx + b·Mz`.
    gradient: Tape,
}

impl Kernel {
    pub fn new(family: Rc<Family>, values: Vec<Option<f64>>) -> Kernel {
        Kernel {
            family,
            values,
            compiled: OnceCell::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.family.name
    }

    /// The names of hyperparameters that still need a value.
    pub fn missing(&self) -> Vec<&str> {
        self.family
            .params
            .iter()
            .zip(&self.values)
            .filter(|(_, v)| v.is_none())
            .map(|(p, _)| p.as_ref())
            .collect()
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let values: Vec<f64> = self.values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            let (mut g, roots) = self.family.graph.substitute(&[self.family.body], &values);
            let k = roots[0];
            let d = |g: &mut expr::Graph, q| g.derivative(k, q);
            let (k_dist, k_sq, k_dot, k_xn) = (
                d(&mut g, Geo::Dist),
                d(&mut g, Geo::Sqdist),
                d(&mut g, Geo::Dot),
                d(&mut g, Geo::Xnorm),
            );
            // ∇ₓ sqdist = 2M(x−z), ∇ₓ dist = M(x−z)/dist, ∇ₓ dot = Mz, ∇ₓ xnorm = Mx/xnorm.
            // Where dist (or xnorm) is 0 its term is taken as 0, as in the reference.
            let two = g.constant(2.0);
            let dist = g.geo(Geo::Dist);
            let xnorm = g.geo(Geo::Xnorm);
            let w1 = g.mul(two, k_sq);
            let w2 = g.binary(Op::SafeDiv, k_dist, dist);
            let w = g.add(w1, w2);
            let v = g.binary(Op::SafeDiv, k_xn, xnorm);
            let a = g.add(w, v);
            let b = g.sub(k_dot, w);
            Rc::new(Compiled {
                value: Tape::compile(&g, &[k]),
                gradient: Tape::compile(&g, &[a, b]),
            })
        })
    }
}

/// A kernel ridge regression fit: `f(x) = Σⱼ αⱼ k(x, xⱼ)` under M.
#[derive(Debug)]
pub struct Predictor {
    pub kernel: Rc<Kernel>,
    /// The training rows (the centres), n × d.
    pub centers: Rc<crate::eval::value::Tensor>,
    /// The weights: a vector for a single output (Y was a vector), else n × c.
    pub alpha: Rc<crate::eval::value::Tensor>,
    pub metric: Metric,
    pub reg: f64,
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
    /// `X M`.
    fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        match self {
            Metric::Identity => x.to_owned(),
            Metric::Diag(m) => &x * m,
            Metric::Full(m) => gemm(x, m.view()),
        }
    }

    /// `M A M`, for a symmetric `A`.
    fn sandwich(&self, a: Array2<f64>) -> Array2<f64> {
        match self {
            Metric::Identity => a,
            Metric::Diag(m) => {
                let mut a = a;
                for ((i, j), x) in a.indexed_iter_mut() {
                    *x *= m[i] * m[j];
                }
                a
            }
            Metric::Full(m) => {
                let r = gemm(gemm(m.view(), a.view()).view(), m.view());
                // Symmetric up to rounding: make it exactly so, for `eigh` and printing.
                (&r + &r.t()) * 0.5
            }
        }
    }
}

/// Row-wise squared norms under M: `xᵢᵀ M xᵢ`, given `XM`.
fn row_norms(xm: &Array2<f64>, x: ArrayView2<f64>) -> Vec<f64> {
    xm.outer_iter()
        .zip(x.outer_iter())
        .map(|(a, b)| a.iter().zip(b).map(|(p, q)| p * q).sum())
        .collect()
}

/// The geometry shared by `gram` and `agop`: the n × m matrix `X M Zᵀ` and both
/// row-norm vectors (only when the tape reads distances or norms).
fn geometry(
    tape: &Tape,
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    m: &Metric,
) -> (Array2<f64>, Vec<f64>, Vec<f64>) {
    let xm = m.apply(x);
    let dots = gemm(xm.view(), z.t());
    let norms = [Geo::Dist, Geo::Sqdist, Geo::Xnorm, Geo::Znorm]
        .iter()
        .any(|q| tape.reads(*q));
    if !norms {
        return (dots, vec![0.0; x.nrows()], vec![0.0; z.nrows()]);
    }
    let xn2 = row_norms(&xm, x);
    let same = x.as_ptr() == z.as_ptr() && x.dim() == z.dim() && x.strides() == z.strides();
    let zn2 = if same {
        xn2.clone()
    } else {
        row_norms(&m.apply(z), z)
    };
    (dots, xn2, zn2)
}

/// The kernel matrix `K[i, j] = k(xᵢ, zⱼ)` under M.
pub fn gram(k: &Kernel, x: ArrayView2<f64>, z: ArrayView2<f64>, m: &Metric) -> Array2<f64> {
    let tape = &k.compiled().value;
    let (mut g, xn2, zn2) = geometry(tape, x, z, m);
    let rows = Rows {
        xn2: &xn2,
        zn2: &zn2,
    };
    tape.run(&rows, g.as_slice_mut().expect("standard layout"), &mut []);
    g
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
/// formed in whichever order costs less:
/// - by output: `Ĵ_c = diag(P_c) X + (B ∘ α_cᵀ) Z`, one n × d block at a time
///   (c·n·m·d multiply-adds; memory O(n·m + n·d));
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
    let tape = &k.compiled().gradient;
    let (mut a, xn2, zn2) = geometry(tape, x, centers, m);
    let mut b = Array2::<f64>::zeros(a.dim());
    let rows = Rows {
        xn2: &xn2,
        zn2: &zn2,
    };
    tape.run(
        &rows,
        a.as_slice_mut().expect("standard layout"),
        &mut [b.as_slice_mut().expect("standard layout")],
    );
    let (n, c) = (x.nrows(), alpha.ncols());
    let (nm, d) = (centers.nrows(), x.ncols());
    let p = gemm(a.view(), alpha);
    drop(a);
    let mut core = if nm < c * d {
        core_by_gram(x, centers, alpha, &p, &b, centering)
    } else {
        core_by_output(x, centers, alpha, &p, &b, centering)
    };
    core /= n.max(1) as f64;
    let g = m.sandwich(core);
    if diag {
        Agop::Diag(g.diag().to_owned())
    } else {
        Agop::Full(g)
    }
}

fn core_by_output(
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    alpha: ArrayView2<f64>,
    p: &Array2<f64>,
    b: &Array2<f64>,
    centering: bool,
) -> Array2<f64> {
    let d = x.ncols();
    let mut core = Array2::<f64>::zeros((d, d));
    let mut scaled = Array2::<f64>::zeros(b.dim());
    for out in 0..alpha.ncols() {
        let a_c = alpha.column(out);
        ndarray::Zip::from(scaled.rows_mut())
            .and(b.rows())
            .for_each(|mut s, b| {
                ndarray::Zip::from(&mut s)
                    .and(&b)
                    .and(&a_c)
                    .for_each(|s, &b, &a| *s = b * a)
            });
        let mut j = gemm(scaled.view(), z);
        for ((mut row, xr), &pc) in j.rows_mut().into_iter().zip(x.rows()).zip(p.column(out)) {
            row.scaled_add(pc, &xr);
        }
        if centering {
            let mean = j.mean_axis(Axis(0)).expect("rows");
            j -= &mean;
        }
        core += &gemm(j.t(), j.view());
    }
    core
}

fn core_by_gram(
    x: ArrayView2<f64>,
    z: ArrayView2<f64>,
    alpha: ArrayView2<f64>,
    p: &Array2<f64>,
    b: &Array2<f64>,
    centering: bool,
) -> Array2<f64> {
    let n = x.nrows();
    // Zᵀ (BᵀB ∘ ααᵀ) Z
    let mut s = gemm(b.t(), b.view());
    s *= &gemm(alpha, alpha.t());
    let mut core = gemm(gemm(z.t(), s.view()).view(), z);
    drop(s);
    // Xᵀ H Z and its transpose
    let mut h = gemm(p.view(), alpha.t());
    h *= b;
    let xhz = gemm(gemm(x.t(), h.view()).view(), z);
    drop(h);
    core += &xhz;
    core += &xhz.t();
    // Xᵀ diag(Σ_c P²) X
    let weights = p.map_axis(Axis(1), |r| r.dot(&r));
    let wx = &x * &weights.insert_axis(Axis(1));
    core += &gemm(x.t(), wx.view());
    if centering && n > 0 {
        // Σᵢ (Ĵᵢ − μ)ᵀ(Ĵᵢ − μ) = Σᵢ ĴᵢᵀĴᵢ − n μᵀμ, with
        // n μ_c = Xᵀ P_c + Zᵀ (α_c ∘ Bᵀ1).
        let colsum = b.sum_axis(Axis(0));
        let weighted = &alpha * &colsum.insert_axis(Axis(1));
        let mut mu = gemm(x.t(), p.view());
        mu += &gemm(z.t(), weighted.view());
        let outer = gemm(mu.view(), mu.t());
        core.scaled_add(-1.0 / n as f64, &outer);
    }
    core
}
