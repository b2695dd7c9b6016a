//! Patch kernels (ConvRFM): inputs are n × P × q tensors of patches (from
//! `patches`), and a kernel k on patches is pooled into a kernel on images:
//!
//! - `Pool::All`: `K(x, z) = (1/(P Q)) Σ_p Σ_q k(x_p, z_q)`, every patch against
//!   every patch (translation invariant; P and Q may differ);
//! - `Pool::Local`: `K(x, z) = (1/P) Σ_p k(x_p, z_p)`, patches at the same position.
//!
//! Both are built from the patch-level machinery of the parent module, a
//! block at a time: the (n·P) × (m·Q) patch matrix is never formed whole.
//! The AGOP of a pooled predictor is `(1/n) Σᵢ Σ_p ∇_{x_ip} f ∇_{x_ip} fᵀ`: with
//! "all" it is the patch-level AGOP of centres `z_jq` weighted `α_j / (P Q)` over
//! the n·P patch rows; with "local", a sum of one such AGOP per position.

use ndarray::{s, Array2, ArrayView2, ArrayView3, Axis};

use super::{
    add_jacobians, fill, fold, mirror_upper, Agop, GramGrads, JacobianSums, Kernel, Metric,
};
use crate::linalg::gemm;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    All,
    Local,
}

impl Pool {
    pub const NAMES: [&'static str; 2] = ["all", "local"];

    pub fn parse(name: &str) -> Option<Pool> {
        match name {
            "all" => Some(Pool::All),
            "local" => Some(Pool::Local),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pool::All => "all",
            Pool::Local => "local",
        }
    }
}

/// Most entries of a patch-level block formed at once (2²² × 8 bytes = 32 MiB).
const PATCH_BLOCK: usize = 1 << 22;

/// The n·P × q matrix of all patches (X in standard layout).
fn flat<'a>(x: &ArrayView3<'a, f64>) -> ArrayView2<'a, f64> {
    let (n, p, q) = x.dim();
    (*x).into_shape_with_order((n * p, q))
        .expect("patches in standard layout")
}

fn same_patches(x: &ArrayView3<f64>, z: &ArrayView3<f64>) -> bool {
    x.as_ptr() == z.as_ptr() && x.dim() == z.dim() && x.strides() == z.strides()
}

/// The pooled kernel matrix `K[i, j] = K(xᵢ, zⱼ)` for patches X (n × P × q)
/// and Z (m × Q × q), both in standard layout.
pub fn gram(
    k: &Kernel,
    x: ArrayView3<f64>,
    z: ArrayView3<f64>,
    m: &Metric,
    pool: Pool,
) -> Array2<f64> {
    let same = same_patches(&x, &z);
    let mut out = match pool {
        Pool::All => gram_all(k, x, z, m, same),
        Pool::Local => gram_local(k, x, z, m, same),
    };
    if same {
        mirror_upper(out.view_mut());
    }
    out
}

/// "all", by blocks of images on each side; with `same`, only the blocks on
/// and above the diagonal (the caller mirrors), and in those on it only the
/// patch pairs on and above the diagonal, mirrored, as `gram` of rows does
/// (so `gram_vjp` sees the same computation).
fn gram_all(
    k: &Kernel,
    x: ArrayView3<f64>,
    z: ArrayView3<f64>,
    m: &Metric,
    same: bool,
) -> Array2<f64> {
    let tape = &k.compiled().value;
    let ((n, p, _), (mz, pz, _)) = (x.dim(), z.dim());
    let (xf, zf) = (flat(&x), flat(&z));
    let images = ((PATCH_BLOCK / (p * pz).max(1)) as f64).sqrt().max(1.0) as usize;
    let mut out = Array2::<f64>::zeros((n, mz));
    let mut block = Array2::<f64>::zeros((images.min(n) * p, images.min(mz) * pz));
    let scale = 1.0 / (p * pz) as f64;
    for bi in (0..n).step_by(images) {
        let ni = images.min(n - bi);
        let first = if same { bi } else { 0 };
        for bj in (first..mz).step_by(images) {
            let nj = images.min(mz - bj);
            let xb = xf.slice(s![bi * p..(bi + ni) * p, ..]);
            let zb = zf.slice(s![bj * pz..(bj + nj) * pz, ..]);
            let mut view = block.slice_mut(s![..ni * p, ..nj * pz]);
            let diagonal = same && bi == bj;
            fill(tape, xb, zb, m, diagonal, &mut [view.view_mut()]);
            if diagonal {
                mirror_upper(view.view_mut());
            }
            for a in 0..ni {
                for b in 0..nj {
                    let pairs = view.slice(s![a * p..(a + 1) * p, b * pz..(b + 1) * pz]);
                    out[(bi + a, bj + b)] = pairs.sum() * scale;
                }
            }
        }
    }
    out
}

/// "local": one n × m kernel matrix per position, summed.
fn gram_local(
    k: &Kernel,
    x: ArrayView3<f64>,
    z: ArrayView3<f64>,
    m: &Metric,
    same: bool,
) -> Array2<f64> {
    let tape = &k.compiled().value;
    let ((n, p, _), mz) = (x.dim(), z.dim().0);
    let mut out = Array2::<f64>::zeros((n, mz));
    let mut one = Array2::<f64>::zeros((n, mz));
    for pos in 0..p {
        let xp = x.index_axis(Axis(1), pos).to_owned();
        if same {
            fill(tape, xp.view(), xp.view(), m, true, &mut [one.view_mut()]);
        } else {
            let zp = z.index_axis(Axis(1), pos).to_owned();
            fill(tape, xp.view(), zp.view(), m, false, &mut [one.view_mut()]);
        }
        out += &one;
    }
    out / p.max(1) as f64
}

/// Predictions `gram(k, X, centres, M, pool) @ alpha` of a pooled predictor.
pub fn predict(
    k: &Kernel,
    x: ArrayView3<f64>,
    centers: ArrayView3<f64>,
    m: &Metric,
    alpha: ArrayView2<f64>,
    pool: Pool,
) -> Array2<f64> {
    gemm(gram(k, x, centers, m, pool).view(), alpha)
}

/// The AGOP `(1/n) Σᵢ Σ_p ∇_{x_ip} f ∇_{x_ip} fᵀ` (q × q) of the pooled
/// predictor with centres Z (m × Q × q) and weights α (m × c), over the
/// patches X (n × P × q); `centering` subtracts the mean patch Jacobian.
#[allow(clippy::too_many_arguments)]
pub fn agop(
    k: &Kernel,
    centers: ArrayView3<f64>,
    alpha: ArrayView2<f64>,
    m: &Metric,
    x: ArrayView3<f64>,
    pool: Pool,
    diag: bool,
    centering: bool,
) -> Agop {
    let ((n, p, q), pz) = (x.dim(), centers.dim().1);
    let mut sums = JacobianSums::new(alpha.ncols(), q, centering);
    match pool {
        Pool::All => {
            // Centre z_jq carries α_j / (P Q).
            let scale = 1.0 / (p * pz) as f64;
            let mut weights = Array2::<f64>::zeros((alpha.nrows() * pz, alpha.ncols()));
            for (j, a) in alpha.outer_iter().enumerate() {
                for r in 0..pz {
                    weights.row_mut(j * pz + r).assign(&(&a * scale));
                }
            }
            let (xf, zf) = (flat(&x), flat(&centers));
            add_jacobians(k, zf, weights.view(), m, xf, &mut sums);
        }
        Pool::Local => {
            let weights = &alpha / p as f64;
            let same = same_patches(&x, &centers);
            for pos in 0..p {
                let xp = x.index_axis(Axis(1), pos).to_owned();
                let zp = (!same).then(|| centers.index_axis(Axis(1), pos).to_owned());
                let zp = zp.as_ref().map_or(xp.view(), |z| z.view());
                add_jacobians(k, zp, weights.view(), m, xp.view(), &mut sums);
            }
        }
    }
    sums.finish(n, m, diag)
}

/// The pullback of `gram(k, X, Z, M, pool)` for the output's gradient `g`
/// (n × m): the gradients with respect to the patches X (n × P × q), Z and
/// M, by `super::gram_vjp` on the blocks `gram` computed. With X = Z, `gram`
/// computed each image pair once (i ≤ j) and mirrored it, so the pair carries
/// `G[i, j] + G[j, i]`; on diagonal blocks `super::gram_vjp` folds the patch
/// pairs the same way.
pub fn gram_vjp(
    k: &Kernel,
    x: ArrayView3<f64>,
    z: ArrayView3<f64>,
    m: &Metric,
    g: ArrayView2<f64>,
    pool: Pool,
    want: [bool; 3],
) -> GramGrads {
    let same = same_patches(&x, &z);
    let ((n, p, q), (mz, pz, _)) = (x.dim(), z.dim());
    let mut dx = want[0].then(|| ndarray::Array3::<f64>::zeros((n, p, q)));
    let mut dz = want[1].then(|| ndarray::Array3::<f64>::zeros((mz, pz, q)));
    let mut dm: Option<ndarray::ArrayD<f64>> = None;
    let mut add_m = |r: Option<ndarray::ArrayD<f64>>| {
        if let Some(r) = r {
            match dm.as_mut() {
                Some(acc) => *acc += &r,
                None => dm = Some(r),
            }
        }
    };
    match pool {
        Pool::All => {
            let g = if same { fold(g) } else { g.to_owned() };
            let (xf, zf) = (flat(&x), flat(&z));
            let images = ((PATCH_BLOCK / (p * pz).max(1)) as f64).sqrt().max(1.0) as usize;
            let scale = 1.0 / (p * pz) as f64;
            for bi in (0..n).step_by(images) {
                let ni = images.min(n - bi);
                let first = if same { bi } else { 0 };
                for bj in (first..mz).step_by(images) {
                    let nj = images.min(mz - bj);
                    let mut expanded = Array2::<f64>::zeros((ni * p, nj * pz));
                    for a in 0..ni {
                        for b in 0..nj {
                            let v = g[(bi + a, bj + b)] * scale;
                            expanded
                                .slice_mut(s![a * p..(a + 1) * p, b * pz..(b + 1) * pz])
                                .fill(v);
                        }
                    }
                    let xb = xf.slice(s![bi * p..(bi + ni) * p, ..]);
                    let zb = zf.slice(s![bj * pz..(bj + nj) * pz, ..]);
                    let r = super::gram_vjp(k, xb, zb, m, expanded.view(), want);
                    if let (Some(dx), Some(rx)) = (dx.as_mut(), r.x) {
                        let rx = rx.into_shape_with_order((ni, p, q)).expect("patch rows");
                        let mut part = dx.slice_mut(s![bi..bi + ni, .., ..]);
                        part += &rx;
                    }
                    if let (Some(dz), Some(rz)) = (dz.as_mut(), r.z) {
                        let rz = rz.into_shape_with_order((nj, pz, q)).expect("patch rows");
                        let mut part = dz.slice_mut(s![bj..bj + nj, .., ..]);
                        part += &rz;
                    }
                    add_m(r.m);
                }
            }
        }
        Pool::Local => {
            let g = &g / p.max(1) as f64;
            for pos in 0..p {
                let xp = x.index_axis(Axis(1), pos).to_owned();
                let zp = (!same).then(|| z.index_axis(Axis(1), pos).to_owned());
                let zv = zp.as_ref().map_or(xp.view(), |z| z.view());
                let r = super::gram_vjp(k, xp.view(), zv, m, g.view(), want);
                if let (Some(dx), Some(rx)) = (dx.as_mut(), r.x) {
                    dx.index_axis_mut(Axis(1), pos).assign(&rx);
                }
                if let (Some(dz), Some(rz)) = (dz.as_mut(), r.z) {
                    dz.index_axis_mut(Axis(1), pos).assign(&rz);
                }
                add_m(r.m);
            }
        }
    }
    GramGrads {
        x: dx.map(|a| a.into_dyn()),
        z: dz.map(|a| a.into_dyn()),
        m: dm,
    }
}
