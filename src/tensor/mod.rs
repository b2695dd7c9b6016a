//! Tensor arithmetic on `ndarray`: NumPy broadcasting, matrix products and
//! reductions. Knows nothing of flx values or syntax; errors are plain
//! `ShapeError`s that the interpreter turns into diagnostics with spans.

pub mod einsum;

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArcArray, ArrayBase, ArrayD, ArrayViewD, Data, IxDyn, Zip};

use crate::format::shape_str;
use crate::{linalg, prim};

/// A Float tensor: shared storage with its own shape, strides and offset, so
/// that `.T`, slices and reshapes are views; writing to one whose storage is
/// shared copies it first (`ArcArray`'s copy on write).
pub type Tensor = ArcArray<f64, IxDyn>;

/// Any Float array the functions here read: a `Tensor`, an owned array or a view.
pub type Floats<S> = ArrayBase<S, IxDyn>;

/// An Int tensor (i64), shared like `Tensor`.
pub type IntTensor = ArcArray<i64, IxDyn>;

/// A Bool tensor (comparisons, masks), shared like `Tensor`.
pub type BoolTensor = ArcArray<bool, IxDyn>;

#[derive(Debug)]
pub struct ShapeError(pub String);

/// Largest tensor flx allocates (default 2^30 elements, 8 GiB): beyond it an
/// operation fails with an error instead of aborting the process.
static MAX_ELEMENTS: AtomicUsize = AtomicUsize::new(1 << 30);

pub fn set_max_elements(n: usize) {
    MAX_ELEMENTS.store(n, Ordering::Relaxed);
}

pub fn max_elements() -> usize {
    MAX_ELEMENTS.load(Ordering::Relaxed)
}

/// This machine's memory in bytes, total and available now (Linux's
/// `/proc/meminfo`; `None` elsewhere): what decides whether an exact kernel
/// matrix fits and whether a Nyström solve keeps its `K_nm`.
pub fn system_memory() -> Option<(u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        let line = info.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// Most axes a tensor has, as in NumPy (`NPY_MAXDIMS`): a bound that keeps
/// nesting a list literal in itself (`x = [x]`) from building ever-longer shapes.
pub const MAX_AXES: usize = 64;

/// Refuse shapes with more than `MAX_AXES` axes.
pub fn check_axes(ndim: usize) -> Result<(), ShapeError> {
    if ndim > MAX_AXES {
        return Err(ShapeError(format!(
            "a tensor of {ndim} axes: flx, like NumPy, allows at most {MAX_AXES}"
        )));
    }
    Ok(())
}

/// Refuse shapes whose element count exceeds `max_elements()`.
pub fn check_elements(shape: &[usize]) -> Result<(), ShapeError> {
    let n = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX);
    if n > max_elements() {
        return Err(ShapeError(format!(
            "a tensor of shape {} is too large (flx allocates at most {} elements)",
            shape_str(shape),
            max_elements()
        )));
    }
    Ok(())
}

/// The broadcast shape of two shapes (NumPy rules), or `None` if incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Elementwise `f(a, b)` with broadcasting, for elements of any types.
pub fn zip_with<A: Copy, B: Copy, C, S: Data<Elem = A>, T: Data<Elem = B>>(
    a: &ArrayBase<S, IxDyn>,
    b: &ArrayBase<T, IxDyn>,
    mut f: impl FnMut(A, B) -> C,
) -> Result<ArrayD<C>, ShapeError> {
    if a.shape() == b.shape() {
        return Ok(Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)));
    }
    let shape = broadcast_shape(a.shape(), b.shape()).ok_or_else(|| {
        ShapeError(format!(
            "cannot broadcast shapes {} and {}",
            shape_str(a.shape()),
            shape_str(b.shape())
        ))
    })?;
    check_elements(&shape)?;
    let av = a.broadcast(IxDyn(&shape)).expect("checked broadcast");
    let bv = b.broadcast(IxDyn(&shape)).expect("checked broadcast");
    Ok(Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y)))
}

/// `a @ b` with NumPy's rules for 1-D operands. A 1-D @ 1-D product is a 0-d tensor.
pub fn matmul<S: Data<Elem = f64>, T: Data<Elem = f64>>(
    a: &Floats<S>,
    b: &Floats<T>,
) -> Result<ArrayD<f64>, ShapeError> {
    let err = || {
        ShapeError(format!(
            "cannot multiply shapes {} and {}",
            shape_str(a.shape()),
            shape_str(b.shape())
        ))
    };
    match (a.ndim(), b.ndim()) {
        (2, 2) => {
            if a.shape()[1] != b.shape()[0] {
                return Err(err());
            }
            check_elements(&[a.shape()[0], b.shape()[1]])?;
            let a2 = a.view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
            let b2 = b.view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
            Ok(linalg::gemm(a2, b2).into_dyn())
        }
        (2, 1) => {
            if a.shape()[1] != b.shape()[0] {
                return Err(err());
            }
            let b2 = b
                .view()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("1-d")
                .insert_axis(ndarray::Axis(1));
            let a2 = a.view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
            let c = linalg::gemm(a2, b2);
            Ok(c.into_shape_with_order(a.shape()[0])
                .expect("column")
                .into_dyn())
        }
        (1, 2) => {
            if a.shape()[0] != b.shape()[0] {
                return Err(err());
            }
            let a2 = a
                .view()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("1-d")
                .insert_axis(ndarray::Axis(0));
            let b2 = b.view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
            let c = linalg::gemm(a2, b2);
            Ok(c.into_shape_with_order(b.shape()[1])
                .expect("row")
                .into_dyn())
        }
        (1, 1) => {
            if a.len() != b.len() {
                return Err(err());
            }
            let a1 = a.view().into_dimensionality::<ndarray::Ix1>().expect("1-d");
            let b1 = b.view().into_dimensionality::<ndarray::Ix1>().expect("1-d");
            Ok(ndarray::arr0(a1.dot(&b1)).into_dyn())
        }
        _ => Err(ShapeError(format!(
            "`@` needs 1-D or 2-D operands, found shapes {} and {}",
            shape_str(a.shape()),
            shape_str(b.shape())
        ))),
    }
}

/// `a @ b` for Int matrices and vectors (NumPy's shapes, as `matmul`),
/// with checked arithmetic: an overflow is an error, never a wrap.
pub fn int_matmul<S: Data<Elem = i64>, T: Data<Elem = i64>>(
    a: &ArrayBase<S, IxDyn>,
    b: &ArrayBase<T, IxDyn>,
) -> Result<ArrayD<i64>, Result<ShapeError, prim::IntError>> {
    let err = || {
        Ok(ShapeError(format!(
            "cannot multiply shapes {} and {}",
            shape_str(a.shape()),
            shape_str(b.shape())
        )))
    };
    let (m, k) = match a.shape() {
        [k] => (None, *k),
        [m, k] => (Some(*m), *k),
        _ => return Err(err()),
    };
    let (k2, n) = match b.shape() {
        [k] => (*k, None),
        [k, n] => (*k, Some(*n)),
        _ => return Err(err()),
    };
    if k != k2 {
        return Err(err());
    }
    let (rows, cols) = (m.unwrap_or(1), n.unwrap_or(1));
    check_elements(&[rows, cols]).map_err(Ok)?;
    let a2 = a.to_shape((rows, k)).expect("same size");
    let b2 = b.to_shape((k, cols)).expect("same size");
    let mut out = ndarray::Array2::<i64>::zeros((rows, cols));
    for i in 0..rows {
        for l in 0..k {
            let x = a2[[i, l]];
            for j in 0..cols {
                let p = x
                    .checked_mul(b2[[l, j]])
                    .ok_or(Err(prim::IntError::Overflow))?;
                out[[i, j]] = out[[i, j]]
                    .checked_add(p)
                    .ok_or(Err(prim::IntError::Overflow))?;
            }
        }
    }
    let shape: Vec<usize> = m.into_iter().chain(n).collect();
    Ok(out.into_shape_with_order(IxDyn(&shape)).expect("same size"))
}

/// Reduce along `axis` (or over everything when `None`) with `f` over each lane.
pub fn reduce<S: Data<Elem = f64>>(
    x: &Floats<S>,
    axis: Option<usize>,
    f: impl Fn(&[f64]) -> f64,
) -> ArrayD<f64> {
    let Some(ax) = axis else {
        // All elements in memory order, as NumPy reduces them.
        let value = match x.as_slice_memory_order() {
            Some(s) => f(s),
            None => f(x.as_standard_layout().as_slice().expect("standard layout")),
        };
        return ndarray::arr0(value).into_dyn();
    };
    // Lay the lanes out contiguously (a copy only when `ax` is not the last
    // axis of a standard-layout tensor), so that each lane is a slice: the same
    // elements in the same order, so the same result, and no strided walk.
    let mut order: Vec<usize> = (0..x.ndim()).filter(|&k| k != ax).collect();
    order.push(ax);
    let shape: Vec<usize> = order[..order.len() - 1]
        .iter()
        .map(|&k| x.shape()[k])
        .collect();
    let lanes = x.view().permuted_axes(order);
    let lanes: std::borrow::Cow<[f64]> = match lanes.as_slice() {
        Some(s) => s.into(),
        // A matrix is copied through a fixed-rank view: a dynamic-rank copy
        // pays for index arithmetic on every element.
        None => match lanes.view().into_dimensionality::<ndarray::Ix2>() {
            Ok(m) => m
                .as_standard_layout()
                .into_owned()
                .into_raw_vec_and_offset()
                .0
                .into(),
            Err(_) => lanes
                .as_standard_layout()
                .into_owned()
                .into_raw_vec_and_offset()
                .0
                .into(),
        },
    };
    let n = x.shape()[ax];
    let values: Vec<f64> = if n == 0 {
        vec![f(&[]); shape.iter().product()]
    } else {
        lanes.chunks_exact(n).map(&f).collect()
    };
    ArrayD::from_shape_vec(shape, values).expect("one value per lane")
}

/// `prim::math::pairwise_sum` of a view's elements in memory order.
pub fn pairwise_sum(v: &ArrayViewD<f64>) -> f64 {
    if let Some(s) = v.as_slice_memory_order() {
        return prim::math::pairwise_sum(s);
    }
    let owned: Vec<f64> = v.iter().copied().collect();
    prim::math::pairwise_sum(&owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn broadcast_rules_follow_numpy() {
        assert_eq!(broadcast_shape(&[3, 1], &[1, 4]), Some(vec![3, 4]));
        assert_eq!(broadcast_shape(&[5, 3], &[3]), Some(vec![5, 3]));
        assert_eq!(broadcast_shape(&[], &[2, 2]), Some(vec![2, 2]));
        assert_eq!(broadcast_shape(&[2, 3], &[2]), None);
        assert_eq!(
            broadcast_shape(&[8, 1, 6, 1], &[7, 1, 5]),
            Some(vec![8, 7, 6, 5])
        );
    }

    #[test]
    fn zip_with_broadcasts_a_column_against_a_row() {
        let a = array![[1.0], [2.0]].into_dyn();
        let b = array![10.0, 20.0, 30.0].into_dyn();
        let c = zip_with(&a, &b, |x, y| x + y).unwrap();
        assert_eq!(c, array![[11.0, 21.0, 31.0], [12.0, 22.0, 32.0]].into_dyn());
        assert!(zip_with(
            &array![1.0, 2.0].into_dyn(),
            &array![1.0, 2.0, 3.0].into_dyn(),
            |x, y| x + y
        )
        .is_err());
    }

    #[test]
    fn matmul_handles_vectors_like_numpy() {
        let a = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
        let v = array![1.0, 1.0].into_dyn();
        assert_eq!(matmul(&a, &v).unwrap(), array![3.0, 7.0].into_dyn());
        assert_eq!(matmul(&v, &a).unwrap(), array![4.0, 6.0].into_dyn());
        assert_eq!(matmul(&v, &v).unwrap(), ndarray::arr0(2.0).into_dyn());
        assert!(matmul(&a, &array![1.0, 2.0, 3.0].into_dyn()).is_err());
    }
}
