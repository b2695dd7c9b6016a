//! NumPy's array vocabulary beyond construction and reductions: stacking
//! and moving axes (views where NumPy makes views), sorting, cumulative
//! sums, masks of nan, softmax, sampling, order statistics, `kron`, `qr`
//! and `mpow`. Dtypes follow NumPy: moves keep them, sums keep Ints.

use ndarray::{concatenate, ArcArray, Array1, Array2, ArrayD, ArrayViewD, Axis, IxDyn};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::tensor::{int_lanes, scalar_or_tensor};
use super::{check_size, factor_flops, mat, Args, Builtin};
use crate::diag::Diag;
use crate::eval::dtype;
use crate::eval::dtype::{each_common, Common};
use crate::eval::interp::Interp;
use crate::eval::value::{any_tensor, Elem, Value};
use crate::format::shape_str;
use crate::prim::{math, Dtype};

type R = Result<Value, Diag>;

pub static BUILTINS: &[Builtin] = &[
    builtin!("stack", "*tensors, axis=0", "Join equal-shaped tensors along a new axis: `stack(a, b)` is 2 × len(a); also takes one list.", stack),
    builtin!("squeeze", "x, axis=none", "The same elements without axes of length 1 (or only `axis:`), as a view.", squeeze),
    builtin!("expand_dims", "x, axis", "A new axis of length 1 at `axis` (NumPy's `x[:, None]` is `expand_dims(x, 1)`), as a view.", expand_dims),
    builtin!("tile", "x, reps", "`x` repeated `reps` times (an Int, or a tuple per axis), as NumPy's `tile`.", tile),
    builtin!("repeat", "x, n, axis=none", "Each element repeated `n` times (of the flattened tensor, or along `axis:`).", repeat),
    builtin!("flip", "x, axis=none", "The elements in reverse order along `axis:` (every axis without it), as a view.", flip),
    builtin!("roll", "x, shift, axis=none", "Elements shifted by `shift` places, wrapping around (of the flattened tensor, or along `axis:`).", roll),
    builtin!("tril", "x, k=0", "The lower triangle of a matrix (on and below diagonal `k`), zeros above.", |_, a| triangle(a, true)),
    builtin!("triu", "x, k=0", "The upper triangle of a matrix (on and above diagonal `k`), zeros below.", |_, a| triangle(a, false)),
    builtin!("sort", "x, axis=-1", "The elements sorted ascending along `axis:` (the last by default; nan last).", sort),
    builtin!("unique", "x", "The distinct elements, sorted, as a vector (one nan at the end if any).", unique),
    builtin!("nonzero", "x", "Positions of the non-zero (true) elements: a vector for a 1-D tensor, a (k, ndim) Int matrix otherwise (NumPy's `argwhere`).", nonzero),
    builtin!("cumsum", "x, axis=none", "Running sums (of the flattened tensor, or along `axis:`); Ints stay Ints.", |_, a| cumulative(a, false)),
    builtin!("cumprod", "x, axis=none", "Running products (of the flattened tensor, or along `axis:`); Ints stay Ints.", |_, a| cumulative(a, true)),
    builtin!("prod", "x, axis=none", "Product of all elements, or along `axis:`; Ints stay Ints.", prod),
    builtin!("isnan", "x", "Elementwise: whether each element is nan (a Bool tensor).", |_, a| classify(a, f64::is_nan)),
    builtin!("isfinite", "x", "Elementwise: whether each element is finite (a Bool tensor).", |_, a| classify(a, f64::is_finite)),
    builtin!("softmax", "x, axis=-1", "exp(x) normalised to sum to 1 along `axis:` (the last by default), without overflow.", |_, a| softmax(a, false)),
    builtin!("log_softmax", "x, axis=-1", "log(softmax(x)) along `axis:`, computed as x - logsumexp(x).", |_, a| softmax(a, true)),
    builtin!("randint", "lo, hi, *shape, seed=none", "Uniform random Ints in [lo, hi): `randint(0, 10, 5)`. `seed:` as for `randn`.", randint),
    builtin!("permutation", "n, seed=none", "A random ordering of 0..n (an Int vector), or of a tensor's rows when `n` is a tensor.", permutation),
    builtin!("choice", "x, k, replace=false, seed=none", "`k` elements drawn from `x` (a vector, or an Int n for 0..n), without replacement unless `replace: true`.", choice),
    builtin!("median", "x, axis=none", "The median (the mean of the middle two for an even count), or along `axis:`.", |_, a| quantile_of(a, Some(0.5))),
    builtin!("quantile", "x, q, axis=none", "The `q`-quantile (0 ≤ q ≤ 1), interpolating linearly between order statistics as NumPy's default.", |_, a| quantile_of(a, None)),
    builtin!("einsum", "subscripts, *operands", "Einstein summation, as NumPy's `einsum`: `einsum(\"ij,jk->ik\", A, B)` is `A @ B`, `einsum(\"ij,ij->i\", X, X)` the squared norm of each row, `einsum(\"ii\", A)` the trace. Labels are letters; a label repeated in one operand takes its diagonal, one missing from the output (after `->`) is summed over, and `...` stands for broadcast axes. Without `->` the output is the labels that appear once, in alphabetical order. Operands are contracted pairwise, left to right, each contraction a matrix product; the result has the operands' common dtype (Bools as Ints, then `!= 0`).", einsum),
    builtin!("kron", "a, b", "The Kronecker product of two matrices (or vectors).", kron),
    builtin!("qr", "A", "Thin QR decomposition `(Q, R)`: `A == Q @ R`, Q with orthonormal columns, R upper triangular.", qr),
    builtin!("mpow", "A, p", "A symmetric positive semi-definite matrix to the power `p` (`mpow(G, 0.5)` is its square root), through its eigenvalues clipped at 0; a vector is a diagonal.", mpow),
];

/// An axis argument that may be negative, for `ndim` axes.
fn axis_in(a: &Args, i: usize, ndim: usize) -> Result<usize, Diag> {
    a.axis(i, ndim)?.ok_or_else(|| a.expected(i, "an Int axis"))
}

fn stack(_: &mut Interp, a: &mut Args) -> R {
    let items: Vec<Value> = match a.rest.as_slice() {
        [(Value::List(t) | Value::Tuple(t), _)] => t.to_vec(),
        // One tensor is the sequence of its rows (as `np.stack(x)`).
        [(v, _)] if v.shape().is_some_and(|s| !s.is_empty()) => {
            let n = v.shape().expect("a tensor")[0];
            any_tensor!(v, t => (0..n).map(|i| crate::eval::index::tensor_item(t, i)).collect())
                .expect("a tensor")
        }
        other => other.iter().map(|(v, _)| v.clone()).collect(),
    };
    if items.is_empty() || items.iter().any(|v| !v.is_tensor()) {
        return Err(
            Diag::new("flx::type::argument", "`stack` needs one or more tensors").at(a.call),
        );
    }
    let ndim = items[0].shape().expect("a tensor").len();
    super::check_axes(ndim + 1, a.call)?;
    let axis = axis_in(a, 0, ndim + 1)?;
    fn join<T: Elem>(a: &Args, ts: &[ArcArray<T, IxDyn>], axis: usize) -> R {
        let views: Vec<ArrayViewD<T>> = ts.iter().map(|t| t.view()).collect();
        ndarray::stack(Axis(axis), &views)
            .map(Value::from)
            .map_err(|_| {
                let shapes: Vec<String> = ts.iter().map(|t| shape_str(t.shape())).collect();
                Diag::new(
                    "flx::shape::stack",
                    format!("`stack` needs equal shapes, found {}", shapes.join(", ")),
                )
                .at(a.call)
            })
    }
    each_common!(Common::of(&items), ts => join(a, &ts, axis))
}

fn squeeze(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let shape = v.shape().expect("a tensor").to_vec();
    let only = match a.axis(1, shape.len().max(1))? {
        Some(k) if shape.get(k) != Some(&1) => {
            return Err(a.error(
                1,
                "flx::shape::squeeze",
                format!(
                    "axis {k} of shape {} has length {}, not 1",
                    shape_str(&shape),
                    shape.get(k).copied().unwrap_or(0)
                ),
            ))
        }
        k => k,
    };
    Ok(any_tensor!(&v, t => {
        let mut out = (**t).clone();
        for k in (0..shape.len()).rev() {
            if shape[k] == 1 && only.is_none_or(|o| o == k) {
                out = out.index_axis_move(Axis(k), 0);
            }
        }
        Elem::tensor(out)
    })
    .expect("a tensor"))
}

fn expand_dims(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let ndim = v.shape().expect("a tensor").len();
    super::check_axes(ndim + 1, a.call)?;
    let k = axis_in(a, 1, ndim + 1)?;
    Ok(any_tensor!(&v, t => Elem::tensor((**t).clone().insert_axis(Axis(k)))).expect("a tensor"))
}

/// Non-negative Ints from an Int or a tuple or list of Ints.
fn counts(a: &Args, i: usize) -> Result<Vec<usize>, Diag> {
    let items = match &a.vals[i] {
        Value::Int(_) => vec![a.vals[i].clone()],
        Value::Tuple(t) | Value::List(t) => t.to_vec(),
        Value::IntTensor(t) => t.iter().map(|&x| Value::Int(x)).collect(),
        _ => return Err(a.expected(i, "an Int or a tuple of Ints")),
    };
    items
        .iter()
        .map(|v| match v {
            Value::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => Err(a.expected(i, "non-negative Ints")),
        })
        .collect()
}

fn tile(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let reps = counts(a, 1)?;
    let shape = v.shape().expect("a tensor").to_vec();
    // As NumPy: the shorter of shape and reps is padded with leading 1s.
    let n = shape.len().max(reps.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        std::iter::repeat_n(1, n - s.len())
            .chain(s.iter().copied())
            .collect()
    };
    let (shape, reps) = (pad(&shape), pad(&reps));
    let out: Vec<usize> = shape
        .iter()
        .zip(&reps)
        .map(|(s, r)| s.saturating_mul(*r))
        .collect();
    check_size(&out, a.call)?;
    // An empty tensor tiled many times is still bounded work.
    check_size(&reps, a.call)?;
    Ok(any_tensor!(&v, t => {
        let mut cur = t.view().into_shape_with_order(IxDyn(&shape)).map(|x| x.to_owned()).unwrap_or_else(|_| {
            t.to_shape(IxDyn(&shape)).expect("same size").into_owned()
        });
        for (k, &r) in reps.iter().enumerate() {
            if r != 1 {
                let views = vec![cur.view(); r];
                cur = concatenate(Axis(k), &views).expect("equal shapes");
            }
        }
        Value::from(cur)
    })
    .expect("a tensor"))
}

fn repeat(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let n = a.count(1)?;
    let shape = v.shape().expect("a tensor").to_vec();
    let axis = a.axis(2, shape.len().max(1))?;
    let total = shape.iter().product::<usize>().saturating_mul(n);
    check_size(&[total], a.call)?;
    if let Some(k) = axis {
        check_size(&[shape[k].saturating_mul(n)], a.call)?;
    }
    Ok(any_tensor!(&v, t => {
        match axis {
            None => Value::from(Array1::from_iter(t.iter().flat_map(|&x| std::iter::repeat_n(x, n)))),
            Some(k) => {
                let picks: Vec<usize> = (0..shape[k]).flat_map(|i| std::iter::repeat_n(i, n)).collect();
                Value::from(t.select(Axis(k), &picks))
            }
        }
    })
    .expect("a tensor"))
}

fn flip(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let ndim = v.shape().expect("a tensor").len();
    let axis = a.axis(1, ndim.max(1))?;
    Ok(any_tensor!(&v, t => {
        let mut out = (**t).clone();
        for k in 0..ndim {
            if axis.is_none_or(|x| x == k) {
                out.invert_axis(Axis(k));
            }
        }
        Elem::tensor(out)
    })
    .expect("a tensor"))
}

fn roll(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let shift = a.int(1)?;
    let shape = v.shape().expect("a tensor").to_vec();
    let axis = a.axis(2, shape.len().max(1))?;
    let order = |n: usize| -> Vec<usize> {
        let s = shift.rem_euclid(n.max(1) as i64) as usize;
        (0..n).map(|i| (i + n - s) % n.max(1)).collect()
    };
    Ok(any_tensor!(&v, t => match axis {
        None => {
            let flat: Vec<_> = t.iter().copied().collect();
            let picked: Vec<_> = order(flat.len()).into_iter().map(|i| flat[i]).collect();
            Value::from(ArrayD::from_shape_vec(IxDyn(&shape), picked).expect("same size"))
        }
        Some(k) => Value::from(t.select(Axis(k), &order(shape[k]))),
    })
    .expect("a tensor"))
}

fn triangle(a: &mut Args, lower: bool) -> R {
    let v = a.any_tensor(0)?;
    let k = a.int(1)?;
    match v.shape() {
        Some([_, _]) => {}
        _ => return Err(a.expected(0, "a matrix")),
    }
    Ok(any_tensor!(&v, t => {
        let mut out = (**t).to_owned();
        for ((i, j), x) in out.view_mut().into_dimensionality::<ndarray::Ix2>().expect("2-d").indexed_iter_mut() {
            let d = j as i64 - i as i64;
            if (lower && d > k) || (!lower && d < k) {
                *x = Elem::zero();
            }
        }
        Value::from(out)
    })
    .expect("a tensor"))
}

/// Ascending order with every nan last (NumPy's sort order).
fn ascending<T: Elem>(x: &T, y: &T) -> std::cmp::Ordering {
    let (p, q) = (x.to_f64(), y.to_f64());
    match (p.is_nan(), q.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => x.partial_cmp(y).expect("ordered"),
    }
}

fn sort(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let ndim = v.shape().expect("a tensor").len();
    if ndim == 0 {
        return Ok(v);
    }
    let axis = a.axis(1, ndim)?.unwrap_or(ndim - 1);
    Ok(any_tensor!(&v, t => {
        let mut out = (**t).to_owned();
        for mut lane in out.lanes_mut(Axis(axis)) {
            let mut items: Vec<_> = lane.iter().copied().collect();
            items.sort_by(ascending);
            lane.iter_mut().zip(items).for_each(|(o, x)| *o = x);
        }
        Value::from(out)
    })
    .expect("a tensor"))
}

fn unique(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    Ok(any_tensor!(&v, t => {
        let mut items: Vec<_> = t.iter().copied().collect();
        items.sort_by(ascending);
        // Equal elements are adjacent; so are the nans, which NumPy keeps one of.
        items.dedup_by(|x, y| x == y || (x.to_f64().is_nan() && y.to_f64().is_nan()));
        Value::from(Array1::from(items))
    })
    .expect("a tensor"))
}

fn nonzero(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let hits: Vec<IxDyn> = any_tensor!(&v, t => t
        .indexed_iter()
        .filter(|(_, x)| x.to_f64() != 0.0)
        .map(|(i, _)| i)
        .collect())
    .expect("a tensor");
    let ndim = v.shape().expect("a tensor").len();
    Ok(match ndim {
        1 => Value::from(Array1::from_iter(hits.iter().map(|i| i[0] as i64))),
        _ => Value::from(Array2::from_shape_fn((hits.len(), ndim), |(r, c)| {
            hits[r][c] as i64
        })),
    })
}

/// A running or whole reduction's lanes: the flattened tensor, or each lane along `axis`.
fn lanes_of<T: Copy>(
    t: &ArcArray<T, IxDyn>,
    axis: Option<usize>,
) -> (Vec<Vec<T>>, Vec<usize>, Option<usize>) {
    match axis {
        None => (vec![t.iter().copied().collect()], vec![t.len()], None),
        Some(k) => {
            let mut order: Vec<usize> = (0..t.ndim()).filter(|&d| d != k).collect();
            order.push(k);
            let moved = t.view().permuted_axes(order.clone());
            let lanes = moved
                .lanes(Axis(t.ndim() - 1))
                .into_iter()
                .map(|l| l.iter().copied().collect())
                .collect();
            (
                lanes,
                order.iter().map(|&d| t.shape()[d]).collect(),
                Some(k),
            )
        }
    }
}

/// Lanes back into a tensor laid out as `lanes_of` took them.
fn from_lanes<T: Elem>(lanes: Vec<Vec<T>>, moved_shape: Vec<usize>, axis: Option<usize>) -> Value {
    let flat: Vec<T> = lanes.into_iter().flatten().collect();
    let moved = ArrayD::from_shape_vec(IxDyn(&moved_shape), flat).expect("same size");
    match axis {
        None => Value::from(moved),
        Some(k) => {
            // Undo the permutation that moved axis k last.
            let n = moved_shape.len();
            let mut inverse: Vec<usize> = (0..n - 1).collect();
            inverse.insert(k, n - 1);
            Value::from(
                moved
                    .permuted_axes(inverse)
                    .as_standard_layout()
                    .into_owned(),
            )
        }
    }
}

fn cumulative(a: &mut Args, product: bool) -> R {
    let v = a.any_tensor(0)?;
    let axis = a.axis(1, v.shape().expect("a tensor").len().max(1))?;
    if matches!(v.dtype(), Some(Dtype::Int | Dtype::Bool)) {
        let t = dtype::ints(&v).expect("Ints").into_owned().into_shared();
        let (mut lanes, shape, axis) = lanes_of(&t, axis);
        for lane in &mut lanes {
            let mut acc: i64 = if product { 1 } else { 0 };
            for x in lane.iter_mut() {
                acc = if product {
                    acc.checked_mul(*x)
                } else {
                    acc.checked_add(*x)
                }
                .ok_or_else(|| a.overflow())?;
                *x = acc;
            }
        }
        return Ok(from_lanes(lanes, shape, axis));
    }
    let t = (*a.tensor(0)?).clone();
    let (mut lanes, shape, axis) = lanes_of(&t, axis);
    for lane in &mut lanes {
        let mut acc = if product { 1.0 } else { 0.0 };
        for x in lane.iter_mut() {
            acc = if product { acc * *x } else { acc + *x };
            *x = acc;
        }
    }
    Ok(from_lanes(lanes, shape, axis))
}

fn prod(_: &mut Interp, a: &mut Args) -> R {
    let lane = |v: ArrayViewD<i64>| v.iter().try_fold(1i64, |p, &x| p.checked_mul(x));
    if let Some(v) = int_lanes(a, 1, false, true, lane)? {
        return Ok(v);
    }
    let t = a.tensor(0)?;
    let axis = a.axis(1, t.ndim().max(1))?;
    Ok(scalar_or_tensor(crate::tensor::reduce(&*t, axis, |v| {
        v.iter().product()
    })))
}

fn classify(a: &mut Args, test: fn(f64) -> bool) -> R {
    match &a.vals[0] {
        Value::Float(x) => Ok(Value::Bool(test(*x))),
        Value::Int(_) | Value::Bool(_) => Ok(Value::Bool(test(0.0))),
        v if v.is_tensor() => {
            let x = dtype::floats(v).expect("a tensor");
            Ok(Value::from(x.mapv(test)))
        }
        _ => Err(a.expected(0, "a number or a tensor")),
    }
}

/// `softmax` and `log_softmax` along an axis; `grad` follows them through
/// `logsumexp` (`eval::traced`).
fn softmax(a: &mut Args, log: bool) -> R {
    let t = a.tensor(0)?;
    if t.ndim() == 0 {
        return Err(a.expected(0, "a tensor with at least one axis"));
    }
    let axis = a.axis(1, t.ndim())?.unwrap_or(t.ndim() - 1);
    let lse = crate::tensor::reduce(&*t, Some(axis), math::logsumexp).insert_axis(Axis(axis));
    let out = &*t - &lse;
    Ok(Value::from(if log { out } else { out.mapv(math::exp) }))
}

/// The generator a `seed:` argument asks for, or the session's.
pub(super) fn rng_of<'a>(
    interp: &'a mut Interp,
    a: &Args,
    i: usize,
    local: &'a mut Option<ChaCha8Rng>,
) -> Result<&'a mut ChaCha8Rng, Diag> {
    Ok(match a.opt_int(i)? {
        Some(seed) => local.insert(ChaCha8Rng::seed_from_u64(seed as u64)),
        None => &mut interp.run.rng,
    })
}

fn randint(interp: &mut Interp, a: &mut Args) -> R {
    let (lo, hi) = (a.int(0)?, a.int(1)?);
    if lo >= hi {
        return Err(a.error(
            1,
            "flx::value::range",
            format!("`randint` needs lo < hi, found {lo} and {hi}"),
        ));
    }
    let mut shape = Vec::new();
    for (v, s) in &a.rest {
        match v {
            Value::Int(n) if *n >= 0 => shape.push(*n as usize),
            other => {
                return Err(Diag::new(
                    "flx::type::argument",
                    format!("a shape is made of Ints, found {}", other.describe()),
                )
                .at(*s))
            }
        }
    }
    check_size(&shape, a.call)?;
    let mut local = None;
    let rng = rng_of(interp, a, 2, &mut local)?;
    let n: usize = shape.iter().product();
    let data: Vec<i64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Ok(Value::from(
        ArrayD::from_shape_vec(IxDyn(&shape), data).expect("one per element"),
    ))
}

fn permutation(interp: &mut Interp, a: &mut Args) -> R {
    let rows = match &a.vals[0] {
        Value::Int(_) => None,
        v if v.is_tensor() => Some(v.clone()),
        _ => return Err(a.expected(0, "an Int or a tensor")),
    };
    let n = match &rows {
        Some(v) => v
            .shape()
            .and_then(|s| s.first().copied())
            .ok_or_else(|| a.expected(0, "a tensor with rows"))?,
        None => a.count(0)?,
    };
    check_size(&[n], a.call)?;
    let mut local = None;
    let rng = rng_of(interp, a, 1, &mut local)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    Ok(match rows {
        None => Value::from(Array1::from_iter(order.into_iter().map(|i| i as i64))),
        Some(v) => any_tensor!(&v, t => Value::from(t.select(Axis(0), &order))).expect("a tensor"),
    })
}

fn choice(interp: &mut Interp, a: &mut Args) -> R {
    let from = match &a.vals[0] {
        Value::Int(_) => {
            let n = a.count(0)?;
            check_size(&[n], a.call)?;
            Value::from(Array1::from_iter(0..n as i64))
        }
        v if v.shape().is_some_and(|s| s.len() == 1) => v.clone(),
        _ => return Err(a.expected(0, "a vector or an Int")),
    };
    let n = from.shape().expect("a vector")[0];
    let k = a.count(1)?;
    let replace = a.bool(2)?;
    if !replace && k > n {
        return Err(a
            .error(
                1,
                "flx::value::choice",
                format!("cannot draw {k} of {n} without replacement"),
            )
            .help("pass `replace: true`"));
    }
    if replace && n == 0 && k > 0 {
        return Err(a.error(0, "flx::value::empty", "`choice` from nothing"));
    }
    check_size(&[k], a.call)?;
    let mut local = None;
    let rng = rng_of(interp, a, 3, &mut local)?;
    let picks: Vec<usize> = if replace {
        (0..k).map(|_| rng.random_range(0..n)).collect()
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.partial_shuffle(rng, k).0.to_vec()
    };
    Ok(any_tensor!(&from, t => Value::from(t.select(Axis(0), &picks))).expect("a vector"))
}

/// NumPy's default ("linear") quantile of a sorted lane.
fn linear_quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let w = pos - lo as f64;
    // NumPy's lerp: exact at both ends.
    if w < 0.5 {
        sorted[lo] + (sorted[hi] - sorted[lo]) * w
    } else {
        sorted[hi] - (sorted[hi] - sorted[lo]) * (1.0 - w)
    }
}

fn quantile_of(a: &mut Args, fixed: Option<f64>) -> R {
    let t = a.tensor(0)?;
    let (q, axis_at) = match fixed {
        Some(q) => (q, 1),
        None => (a.f64(1)?, 2),
    };
    if !(0.0..=1.0).contains(&q) {
        return Err(a.error(
            1,
            "flx::value::quantile",
            format!("a quantile is in [0, 1], found {q}"),
        ));
    }
    if t.is_empty() {
        return Err(a.error(
            0,
            "flx::value::empty",
            format!("`{}` of an empty tensor", a.name),
        ));
    }
    let axis = a.axis(axis_at, t.ndim().max(1))?;
    let lane = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(ascending);
        linear_quantile(&s, q)
    };
    let out = crate::tensor::reduce(&*t, axis, lane);
    Ok(if out.ndim() == 0 {
        Value::Float(out[[]])
    } else {
        Value::from(out)
    })
}

fn einsum(interp: &mut Interp, a: &mut Args) -> R {
    use crate::tensor::einsum::{self, EinsumError};
    let spec = a.str(0)?;
    let mut operands = Vec::with_capacity(a.rest.len());
    for (v, s) in &a.rest {
        operands.push(match v {
            v if v.is_tensor() => v.clone(),
            Value::Int(i) => Value::from(ndarray::arr0(*i).into_dyn()),
            Value::Bool(b) => Value::from(ndarray::arr0(*b).into_dyn()),
            Value::Float(x) => Value::from(ndarray::arr0(*x).into_dyn()),
            other => {
                return Err(Diag::new(
                    "flx::type::argument",
                    format!("`einsum` takes tensors, found {}", other.describe()),
                )
                .at(*s))
            }
        });
    }
    let failed = |e: EinsumError| match e {
        EinsumError::Spec(msg) => Diag::new("flx::einsum::subscripts", msg).at(a.spans[0]),
        EinsumError::Shape(e) => Diag::new("flx::shape::too_large", e.0).at(a.call),
        EinsumError::Int(_) => a.overflow(),
    };
    let shapes: Vec<&[usize]> = operands
        .iter()
        .map(|v| v.shape().expect("a tensor"))
        .collect();
    let plan = einsum::Plan::new(&spec, &shapes).map_err(failed)?;
    interp.charge(plan.flops(), a.call)?;
    fn scalar_or<T: Elem>(out: ArrayD<T>) -> Value {
        if out.ndim() == 0 {
            T::scalar(out[[]])
        } else {
            Value::from(out)
        }
    }
    Ok(match Common::of(&operands) {
        Common::Float(ts) => {
            let views: Vec<_> = ts.iter().map(|t| t.view()).collect();
            scalar_or(plan.run(&views).map_err(failed)?)
        }
        Common::Int(ts) => {
            let views: Vec<_> = ts.iter().map(|t| t.view()).collect();
            scalar_or(plan.run(&views).map_err(failed)?)
        }
        Common::Bool(ts) => {
            let ints: Vec<ArrayD<i64>> = ts.iter().map(|t| t.mapv(i64::from)).collect();
            let views: Vec<_> = ints.iter().map(|t| t.view()).collect();
            scalar_or(plan.run(&views).map_err(failed)?.mapv(|x| x != 0))
        }
    })
}

fn kron(_: &mut Interp, a: &mut Args) -> R {
    let as2 = |i: usize| -> Result<Array2<f64>, Diag> {
        let t = a.tensor(i)?;
        match t.ndim() {
            1 => Ok(t
                .view()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("1-d")
                .insert_axis(Axis(0))
                .to_owned()),
            2 => Ok(mat(&t).to_owned()),
            _ => Err(a.expected(i, "a vector or a matrix")),
        }
    };
    let vectors = a.tensor(0)?.ndim() == 1 && a.tensor(1)?.ndim() == 1;
    let (x, y) = (as2(0)?, as2(1)?);
    let (m, n) = (x.nrows() * y.nrows(), x.ncols() * y.ncols());
    check_size(&[m, n], a.call)?;
    let (p, q) = y.dim();
    let out = Array2::from_shape_fn((m, n), |(i, j)| x[(i / p, j / q)] * y[(i % p, j % q)]);
    Ok(if vectors {
        Value::from(out.index_axis_move(Axis(0), 0))
    } else {
        Value::from(out)
    })
}

fn qr(interp: &mut Interp, a: &mut Args) -> R {
    let m = a.matrix(0)?;
    interp.charge(factor_flops(&m, 4), a.call)?;
    if m.iter().any(|x| !x.is_finite()) {
        return Err(a.error(
            0,
            "flx::linalg::not_finite",
            "`qr` of a matrix with nan or inf entries",
        ));
    }
    let (q, r) = crate::linalg::qr(mat(&m));
    Ok(Value::tuple(vec![Value::from(q), Value::from(r)]))
}

fn mpow(interp: &mut Interp, a: &mut Args) -> R {
    let g = a.tensor(0)?;
    if g.ndim() == 2 {
        interp.charge(factor_flops(&g, 12), a.call)?;
    }
    let p = a.f64(1)?;
    match g.ndim() {
        1 => Ok(Value::from(g.mapv(|x| math::pow(x.max(0.0), p)))),
        2 if g.shape()[0] == g.shape()[1] => {
            if g.iter().any(|x| !x.is_finite()) {
                return Err(a.error(
                    0,
                    "flx::linalg::not_finite",
                    "`mpow` of a matrix with nan or inf entries",
                ));
            }
            if p == 1.0 {
                return Ok(Value::Tensor(g));
            }
            let (w, v) = crate::linalg::eigh(mat(&g)).map_err(|_| {
                a.error(
                    0,
                    "flx::linalg::no_convergence",
                    "the eigen-decomposition did not converge",
                )
            })?;
            let scaled = &v * &w.mapv(|x| math::pow(x.max(0.0), p));
            Ok(Value::from(crate::linalg::gemm(scaled.view(), v.t())))
        }
        _ => Err(a.expected(0, "a square matrix or a vector (a diagonal)")),
    }
}
