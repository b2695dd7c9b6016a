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

use std::ops::Range;

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

/// The blocks of images "all" computes for n images of P patches against m
/// of Q, as (images of X, images of Z), each side about √(PATCH_BLOCK / PQ)
/// images; with `same`, only the blocks on and above the diagonal. `gram_all`
/// and `gram_vjp` walk the same blocks.
fn image_blocks(
    (n, p): (usize, usize),
    (m, q): (usize, usize),
    same: bool,
) -> Vec<(Range<usize>, Range<usize>)> {
    let images = ((PATCH_BLOCK / (p * q).max(1)) as f64).sqrt().max(1.0) as usize;
    let mut blocks = Vec::new();
    for i in (0..n).step_by(images) {
        let first = if same { i } else { 0 };
        for j in (first..m).step_by(images) {
            blocks.push((i..(i + images).min(n), j..(j + images).min(m)));
        }
    }
    blocks
}

/// The patches at position `pos` of X and, unless `same`, of Z: "local"
/// pairs these (the caller uses X's for Z's with `same`).
fn position(
    x: &ArrayView3<f64>,
    z: &ArrayView3<f64>,
    same: bool,
    pos: usize,
) -> (Array2<f64>, Option<Array2<f64>>) {
    let xp = x.index_axis(Axis(1), pos).to_owned();
    let zp = (!same).then(|| z.index_axis(Axis(1), pos).to_owned());
    (xp, zp)
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
    let mut out = Array2::<f64>::zeros((n, mz));
    let scale = 1.0 / (p * pz) as f64;
    let blocks = image_blocks((n, p), (mz, pz), same);
    // One buffer for all blocks: the first is the largest.
    let (rows, cols) = blocks
        .first()
        .map_or((0, 0), |(is, js)| (is.len(), js.len()));
    let mut buffer = Array2::<f64>::zeros((rows * p, cols * pz));
    for (is, js) in blocks {
        let xb = xf.slice(s![is.start * p..is.end * p, ..]);
        let zb = zf.slice(s![js.start * pz..js.end * pz, ..]);
        let mut block = buffer.slice_mut(s![..xb.nrows(), ..zb.nrows()]);
        let diagonal = same && is == js;
        fill(tape, xb, zb, m, diagonal, &mut [block.view_mut()]);
        if diagonal {
            mirror_upper(block.view_mut());
        }
        for (a, i) in is.clone().enumerate() {
            for (b, j) in js.clone().enumerate() {
                let pairs = block.slice(s![a * p..(a + 1) * p, b * pz..(b + 1) * pz]);
                out[(i, j)] = pairs.sum() * scale;
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
        let (xp, zp) = position(&x, &z, same, pos);
        let zv = zp.as_ref().map_or(xp.view(), |z| z.view());
        fill(tape, xp.view(), zv, m, same, &mut [one.view_mut()]);
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
                let (xp, zp) = position(&x, &centers, same, pos);
                let zv = zp.as_ref().map_or(xp.view(), |z| z.view());
                add_jacobians(k, zv, weights.view(), m, xp.view(), &mut sums);
            }
        }
    }
    sums.finish(n, diag)
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
            let scale = 1.0 / (p * pz) as f64;
            for (is, js) in image_blocks((n, p), (mz, pz), same) {
                let xb = xf.slice(s![is.start * p..is.end * p, ..]);
                let zb = zf.slice(s![js.start * pz..js.end * pz, ..]);
                // Each image pair's gradient, spread over its patch pairs.
                let mut expanded = Array2::<f64>::zeros((xb.nrows(), zb.nrows()));
                for (a, i) in is.clone().enumerate() {
                    for (b, j) in js.clone().enumerate() {
                        expanded
                            .slice_mut(s![a * p..(a + 1) * p, b * pz..(b + 1) * pz])
                            .fill(g[(i, j)] * scale);
                    }
                }
                let r = super::gram_vjp(k, xb, zb, m, expanded.view(), want);
                if let (Some(dx), Some(rx)) = (dx.as_mut(), r.x) {
                    let rx = rx
                        .into_shape_with_order((is.len(), p, q))
                        .expect("patch rows");
                    let mut part = dx.slice_mut(s![is, .., ..]);
                    part += &rx;
                }
                if let (Some(dz), Some(rz)) = (dz.as_mut(), r.z) {
                    let rz = rz
                        .into_shape_with_order((js.len(), pz, q))
                        .expect("patch rows");
                    let mut part = dz.slice_mut(s![js, .., ..]);
                    part += &rz;
                }
                add_m(r.m);
            }
        }
        Pool::Local => {
            let g = &g / p.max(1) as f64;
            for pos in 0..p {
                let (xp, zp) = position(&x, &z, same, pos);
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
