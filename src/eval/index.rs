//! Indexing as NumPy does it, for tensors of every dtype, and for lists,
//! tuples, strings and records. Ints and slices make views of the same
//! storage; Int tensors (any shape) and lists of Ints gather, Bool tensors
//! select, and both copy. When several index arrays are given they broadcast
//! together, and their axes go where NumPy puts them (in place when they are
//! adjacent, first otherwise).

use std::rc::Rc;

use ndarray::{ArcArray, ArrayBase, ArrayD, Axis, Dimension, IxDyn, RawData, Slice};

use super::value::{any_tensor, Elem, Value};
use crate::diag::{Diag, Span};
use crate::format::shape_str;
use crate::tensor;

/// One evaluated index item.
pub enum Index {
    At(Value, Span),
    Slice(Option<i64>, Option<i64>, Option<i64>, Span),
}

fn index_span(i: &Index) -> Span {
    match i {
        Index::At(_, s) | Index::Slice(.., s) => *s,
    }
}

fn normalize(i: i64, len: usize, span: Span, axis: usize) -> Result<usize, Diag> {
    let n = len as i64;
    let k = if i < 0 { i + n } else { i };
    if k < 0 || k >= n {
        return Err(Diag::new(
            "flx::index::range",
            format!("index {i} is out of range for axis {axis} with length {len}"),
        )
        .at(span)
        .label(format!("valid: {} to {}", -n, n - 1)));
    }
    Ok(k as usize)
}

/// Python's slice semantics, as an ndarray `Slice` (which reverses negative steps from the end).
fn python_slice(len: usize, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Slice {
    let n = len as i64;
    let step = step.unwrap_or(1);
    let clamp = |v: i64, lo: i64, hi: i64| v.clamp(lo, hi);
    if step > 0 {
        let s = start.map_or(0, |s| clamp(if s < 0 { s + n } else { s }, 0, n));
        let t = stop.map_or(n, |t| clamp(if t < 0 { t + n } else { t }, 0, n));
        Slice::new(s as isize, Some(t.max(s) as isize), step as isize)
    } else {
        let s = start.map_or(n - 1, |s| clamp(if s < 0 { s + n } else { s }, -1, n - 1));
        let t = stop.map_or(-1, |t| clamp(if t < 0 { t + n } else { t }, -1, n - 1));
        if s <= t {
            Slice::new(0, Some(0), 1)
        } else {
            Slice::new((t + 1) as isize, Some((s + 1) as isize), step as isize)
        }
    }
}

fn slice_positions(len: usize, sl: Slice) -> Vec<usize> {
    let end = sl.end.unwrap_or(len as isize) as usize;
    let start = sl.start as usize;
    let step = sl.step.unsigned_abs();
    if sl.step < 0 {
        // ndarray semantics: a negative step walks from the end of [start, end).
        (start..end).rev().step_by(step).collect()
    } else {
        (start..end).step_by(step.max(1)).collect()
    }
}

fn too_many(ndim: usize, given: usize, span: Span) -> Diag {
    Diag::new(
        "flx::index::too_many",
        format!("too many indices: the tensor has {ndim} axes but {given} were given"),
    )
    .at(span)
}

fn bad_index(v: &Value, span: Span) -> Diag {
    let float = matches!(v, Value::Float(_) | Value::Tensor(_))
        || matches!(v, Value::List(items) if items.iter().any(|x| matches!(x, Value::Float(_))));
    Diag::new(
        "flx::index::type",
        format!(
            "an index must be an Int, a slice, an Int tensor or a Bool mask, found {}",
            v.describe()
        ),
    )
    .at(span)
    .help(if float {
        "a Float is not a position: convert with `int(x)`"
    } else {
        "write `x[i]`, `x[a:b]`, `x[:, j]`, `x[idx]` or `x[x > 0]`"
    })
}

/// `v[idx]`.
pub fn index(v: &Value, idx: &[Index], span: Span) -> Result<Value, Diag> {
    if let Value::Traced(_) = v {
        return super::traced::index(v, idx, span);
    }
    if let Some(r) = any_tensor!(v, t => index_tensor(t, idx)) {
        return r;
    }
    match v {
        Value::List(items) | Value::Tuple(items) => {
            let tuple = matches!(v, Value::Tuple(_));
            if idx.len() != 1 {
                return Err(Diag::new(
                    "flx::index::too_many",
                    format!("a {} takes one index", v.kind()),
                )
                .at(index_span(&idx[1])));
            }
            match &idx[0] {
                Index::At(Value::Int(i), s) => {
                    Ok(items[normalize(*i, items.len(), *s, 0)?].clone())
                }
                Index::At(other, s) => Err(bad_index(other, *s)),
                Index::Slice(a, b, c, _) => {
                    let sl = python_slice(items.len(), *a, *b, *c);
                    let picked: Vec<Value> = slice_positions(items.len(), sl)
                        .into_iter()
                        .map(|i| items[i].clone())
                        .collect();
                    Ok(if tuple {
                        Value::tuple(picked)
                    } else {
                        Value::list(picked)
                    })
                }
            }
        }
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            match idx {
                [Index::At(Value::Int(i), sp)] => Ok(Value::str(
                    &chars[normalize(*i, chars.len(), *sp, 0)?].to_string(),
                )),
                [Index::Slice(a, b, c, _)] => {
                    let sl = python_slice(chars.len(), *a, *b, *c);
                    Ok(Value::str(
                        &slice_positions(chars.len(), sl)
                            .into_iter()
                            .map(|i| chars[i])
                            .collect::<String>(),
                    ))
                }
                _ => Err(Diag::new(
                    "flx::index::type",
                    "a string takes one Int index or a slice",
                )
                .at(span)),
            }
        }
        Value::Record(r) => match idx {
            [Index::At(Value::Str(k), sp)] => r.get(k).cloned().ok_or_else(|| {
                Diag::new("flx::record::field", format!("record has no field `{k}`")).at(*sp)
            }),
            _ => Err(Diag::new(
                "flx::index::type",
                "a record is indexed by a field name: `r[\"name\"]` or `r.name`",
            )
            .at(span)),
        },
        other => Err(Diag::new(
            "flx::index::type",
            format!("{} cannot be indexed", other.describe()),
        )
        .at(span)),
    }
}

/// Row `i` of a tensor: a number for 1-D, a view of the row otherwise.
pub fn tensor_item<T: Elem>(t: &ArcArray<T, IxDyn>, i: usize) -> Value {
    let row = t.clone().index_axis_move(Axis(0), i);
    if row.ndim() == 0 {
        row[[]].scalar()
    } else {
        T::tensor(row)
    }
}

/// The element or view a result of no dimensions is.
fn value_of<T: Elem>(t: ArcArray<T, IxDyn>) -> Value {
    if t.ndim() == 0 {
        t[[]].scalar()
    } else {
        T::tensor(t)
    }
}

/// An index array: positions along one axis, in any shape.
struct Gather {
    /// The axis of the (sliced) tensor it picks along.
    axis: usize,
    positions: ArrayD<usize>,
}

/// How an index applies: the basic part (Ints and slices, a view) and the
/// index arrays that follow it (`gathers`, empty for a view).
struct Plan {
    /// Per item of the basic part: the Int to drop an axis at, or the slice.
    basic: Vec<(usize, Basic)>,
    gathers: Vec<Gather>,
}

enum Basic {
    Drop(usize),
    Slice(Slice),
}

/// The positions an index value picks along an axis of length `len`, or the
/// positions along several axes that a Bool mask of that many axes selects.
fn positions(
    v: &Value,
    shape: &[usize],
    axis: usize,
    span: Span,
) -> Result<Vec<ArrayD<usize>>, Diag> {
    let len = shape[0];
    let norm = |i: i64| normalize(i, len, span, axis);
    match v {
        Value::Int(i) => Ok(vec![ndarray::arr0(norm(*i)?).into_dyn()]),
        Value::IntTensor(t) => {
            let mut out = ArrayD::zeros(t.raw_dim());
            for (o, &i) in out.iter_mut().zip(t.iter()) {
                *o = norm(i)?;
            }
            Ok(vec![out])
        }
        Value::BoolTensor(m) => {
            let k = m.ndim();
            if k == 0 || k > shape.len() || m.shape() != &shape[..k] {
                return Err(Diag::new(
                    "flx::index::mask",
                    format!(
                        "a mask of shape {} does not match axes of lengths {}",
                        shape_str(m.shape()),
                        shape_str(&shape[..k.min(shape.len())])
                    ),
                )
                .at(span)
                .help("a mask selects along the axes it covers, so its shape must be theirs"));
            }
            let hits: Vec<IxDyn> = m
                .indexed_iter()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect();
            Ok((0..k)
                .map(|a| ArrayD::from_shape_fn(IxDyn(&[hits.len()]), |i| hits[i[0]][a]))
                .collect())
        }
        Value::List(items) if items.iter().all(|x| matches!(x, Value::Int(_))) => {
            let picked = items
                .iter()
                .map(|x| match x {
                    Value::Int(i) => norm(*i),
                    _ => unreachable!(),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(vec![
                ArrayD::from_shape_vec(IxDyn(&[picked.len()]), picked).expect("1-d")
            ])
        }
        Value::Range(r) => {
            if (r.1.saturating_sub(r.0) as u64) > tensor::max_elements() as u64 {
                return Err(bad_index(v, span));
            }
            let picked = (r.0..r.1).map(norm).collect::<Result<Vec<_>, _>>()?;
            Ok(vec![
                ArrayD::from_shape_vec(IxDyn(&[picked.len()]), picked).expect("1-d")
            ])
        }
        other => Err(bad_index(other, span)),
    }
}

fn is_array_index(v: &Value) -> bool {
    !matches!(v, Value::Int(_))
}

/// Work out how `idx` applies to a tensor of `shape`.
fn plan(shape: &[usize], idx: &[Index]) -> Result<Plan, Diag> {
    let arrays = idx
        .iter()
        .any(|i| matches!(i, Index::At(v, _) if is_array_index(v)));
    let mut basic = Vec::new();
    let mut gathers = Vec::new();
    // `axis` counts axes of the input; `kept` those of the view after dropping Ints.
    let (mut axis, mut kept) = (0, 0);
    for item in idx {
        if axis >= shape.len() {
            return Err(too_many(shape.len(), idx.len(), index_span(item)));
        }
        match item {
            Index::Slice(a, b, c, _) => {
                basic.push((kept, Basic::Slice(python_slice(shape[axis], *a, *b, *c))));
                axis += 1;
                kept += 1;
            }
            // Without index arrays an Int drops its axis (a view); with them it
            // is a 0-d index array, as in NumPy.
            Index::At(Value::Int(i), s) if !arrays => {
                basic.push((kept, Basic::Drop(normalize(*i, shape[axis], *s, axis)?)));
                axis += 1;
            }
            Index::At(v, s) => {
                let parts = positions(v, &shape[axis..], axis, *s)?;
                for p in parts {
                    gathers.push(Gather {
                        axis: kept,
                        positions: p,
                    });
                    axis += 1;
                    kept += 1;
                }
            }
        }
    }
    Ok(Plan { basic, gathers })
}

/// The basic part of a plan applied to a view or shared tensor: no copy.
fn apply_basic<S: RawData>(
    mut view: ArrayBase<S, IxDyn>,
    basic: &[(usize, Basic)],
) -> ArrayBase<S, IxDyn> {
    for (axis, b) in basic {
        match b {
            Basic::Drop(k) => view = view.index_axis_move(Axis(*axis), *k),
            Basic::Slice(sl) => view.slice_axis_inplace(Axis(*axis), *sl),
        }
    }
    view
}

/// The index arrays broadcast together, flattened (one position list per
/// array), with the broadcast shape.
fn broadcast_gathers(
    gathers: &[Gather],
    span: Span,
) -> Result<(Vec<Vec<usize>>, Vec<usize>), Diag> {
    let mut shape: Vec<usize> = Vec::new();
    for g in gathers {
        shape = tensor::broadcast_shape(&shape, g.positions.shape()).ok_or_else(|| {
            Diag::new(
                "flx::index::broadcast",
                format!(
                    "index arrays of shapes {} and {} do not broadcast together",
                    shape_str(&shape),
                    shape_str(g.positions.shape())
                ),
            )
            .at(span)
        })?;
    }
    tensor::check_elements(&shape).map_err(|e| Diag::new("flx::shape::too_large", e.0).at(span))?;
    let flat = gathers
        .iter()
        .map(|g| {
            g.positions
                .broadcast(IxDyn(&shape))
                .expect("checked")
                .iter()
                .copied()
                .collect()
        })
        .collect();
    Ok((flat, shape))
}

/// Where the broadcast index axes go in the result: at the first index
/// array's place when the arrays are on adjacent axes, else first (NumPy).
fn gathered_place(gathers: &[Gather]) -> usize {
    let adjacent = gathers.windows(2).all(|w| w[1].axis == w[0].axis + 1);
    if adjacent {
        gathers[0].axis
    } else {
        0
    }
}

/// The view's axes with the gathered ones first (in order), then the rest.
fn gathered_first(ndim: usize, gathers: &[Gather]) -> Vec<usize> {
    let mut order: Vec<usize> = gathers.iter().map(|g| g.axis).collect();
    order.extend((0..ndim).filter(|a| !gathers.iter().any(|g| g.axis == *a)));
    order
}

fn index_tensor<T: Elem>(t: &ArcArray<T, IxDyn>, idx: &[Index]) -> Result<Value, Diag> {
    let span = idx.first().map(index_span).unwrap_or_default();
    let p = plan(t.shape(), idx)?;
    let view = apply_basic(t.clone(), &p.basic);
    if p.gathers.is_empty() {
        return Ok(value_of(view));
    }
    if let [g] = p.gathers.as_slice() {
        // One index array: a `select` along its axis, reshaped to its shape.
        let flat: Vec<usize> = g.positions.iter().copied().collect();
        let picked = view.select(Axis(g.axis), &flat);
        let mut shape = view.shape().to_vec();
        shape.splice(g.axis..=g.axis, g.positions.shape().iter().copied());
        let out = picked
            .into_shape_clone(IxDyn(&shape))
            .expect("as many elements");
        return Ok(value_of(out.into_shared()));
    }
    let (flat, bshape) = broadcast_gathers(&p.gathers, span)?;
    let moved = view
        .view()
        .permuted_axes(gathered_first(view.ndim(), &p.gathers));
    let rest = &moved.shape()[p.gathers.len()..];
    let mut shape = bshape.clone();
    shape.extend_from_slice(rest);
    tensor::check_elements(&shape).map_err(|e| Diag::new("flx::shape::too_large", e.0).at(span))?;
    let mut out = Vec::with_capacity(shape.iter().product());
    for j in 0..flat[0].len() {
        let mut sub = moved.view();
        for f in &flat {
            sub = sub.index_axis_move(Axis(0), f[j]);
        }
        out.extend(sub.iter().copied());
    }
    let out = ArrayD::from_shape_vec(IxDyn(&shape), out).expect("one per element");
    // Move the broadcast axes to where NumPy puts them.
    let place = gathered_place(&p.gathers);
    let b = bshape.len();
    let order: Vec<usize> = (b..b + place)
        .chain(0..b)
        .chain(b + place..shape.len())
        .collect();
    Ok(value_of(out.permuted_axes(order).into_shared()))
}

/// The element position a single-index assignment into a list targets.
pub fn list_position(idx: &[Index], len: usize, span: Span) -> Result<usize, Diag> {
    match idx {
        [Index::At(Value::Int(i), s)] => normalize(*i, len, *s, 0),
        _ => Err(Diag::new(
            "flx::index::type",
            "a list element is assigned by one Int index",
        )
        .at(span)),
    }
}

/// `target[idx] = rhs`, broadcasting `rhs` over the selected part.
pub fn index_assign(
    target: &mut Value,
    idx: &[Index],
    rhs: Value,
    span: Span,
    rhs_span: Span,
) -> Result<(), Diag> {
    let traced = matches!(target, Value::Traced(_)) || matches!(rhs, Value::Traced(_));
    if traced && (target.is_tensor() || matches!(target, Value::Traced(_))) {
        *target = super::traced::index_assign(target, idx, rhs, span, rhs_span)?;
        return Ok(());
    }
    match target {
        Value::Tensor(t) => assign_tensor(Rc::make_mut(t), idx, &rhs, span, rhs_span),
        Value::IntTensor(t) => assign_tensor(Rc::make_mut(t), idx, &rhs, span, rhs_span),
        Value::BoolTensor(t) => assign_tensor(Rc::make_mut(t), idx, &rhs, span, rhs_span),
        Value::List(items) => {
            let i = list_position(idx, items.len(), span)?;
            Rc::make_mut(items).update(i, |x| *x = rhs);
            Ok(())
        }
        other => Err(Diag::new(
            "flx::type::index",
            format!("cannot assign into {}", other.describe()),
        )
        .at(span)
        .help("tuples and strings are immutable")),
    }
}

/// The values `rhs` stores in a tensor of `T`: a number or a tensor whose
/// dtype converts without loss (a Float into an Int tensor does not).
fn stored<T: Elem>(rhs: &Value, rhs_span: Span) -> Result<ArcArray<T, IxDyn>, Diag> {
    let refuse = || {
        Diag::new(
            "flx::type::assign",
            format!(
                "cannot store {} in a{} {} tensor",
                rhs.describe(),
                if T::DTYPE == crate::prim::Dtype::Int {
                    "n"
                } else {
                    ""
                },
                match T::DTYPE {
                    crate::prim::Dtype::Float => "Float",
                    crate::prim::Dtype::Int => "Int",
                    crate::prim::Dtype::Bool => "Bool",
                }
            ),
        )
        .at(rhs_span)
    };
    let Some(d) = rhs.dtype() else {
        return Err(refuse());
    };
    if d > T::DTYPE {
        return Err(refuse().help(match T::DTYPE {
            crate::prim::Dtype::Int => {
                "convert it with `int(x)`, or make the tensor Float with `float(t)`"
            }
            _ => "convert it with `bool(x)`, or make the tensor Int or Float first",
        }));
    }
    let v = super::dtype::cast(rhs, T::DTYPE).map_err(|_| refuse())?;
    match T::of_scalar(&v) {
        Some(x) => Ok(ndarray::arr0(x).into_dyn().into_shared()),
        None => T::of_tensor(&v).map(|t| (**t).clone()).ok_or_else(refuse),
    }
}

fn assign_tensor<T: Elem>(
    t: &mut ArcArray<T, IxDyn>,
    idx: &[Index],
    rhs: &Value,
    span: Span,
    rhs_span: Span,
) -> Result<(), Diag> {
    let p = plan(t.shape(), idx)?;
    let values = stored::<T>(rhs, rhs_span)?;
    let mut view = apply_basic(t.view_mut(), &p.basic);
    let mismatch = |part: &[usize]| {
        Diag::new(
            "flx::shape::assign",
            format!(
                "cannot assign shape {} into a part of shape {}",
                shape_str(values.shape()),
                shape_str(part)
            ),
        )
        .at(rhs_span)
        .with_label(span, format!("shape {}", shape_str(part)))
    };
    if p.gathers.is_empty() {
        let b = values
            .broadcast(view.raw_dim())
            .ok_or_else(|| mismatch(view.shape()))?;
        view.assign(&b);
        return Ok(());
    }
    let (flat, bshape) = broadcast_gathers(&p.gathers, span)?;
    let ndim = view.ndim();
    let mut moved = view.permuted_axes(gathered_first(ndim, &p.gathers));
    let rest = moved.shape()[p.gathers.len()..].to_vec();
    // The part's shape as the read would give it, and the values broadcast to
    // it, then with the broadcast axes first (as `moved` has them).
    let place = gathered_place(&p.gathers);
    let mut part: Vec<usize> = rest[..place].to_vec();
    part.extend_from_slice(&bshape);
    part.extend_from_slice(&rest[place..]);
    let b = values
        .broadcast(IxDyn(&part))
        .ok_or_else(|| mismatch(&part))?;
    let nb = bshape.len();
    let order: Vec<usize> = (place..place + nb)
        .chain(0..place)
        .chain(place + nb..part.len())
        .collect();
    let b = b.permuted_axes(order);
    // Later positions win where an index repeats (as in NumPy).
    for (j, at) in ndarray::indices(IxDyn(&bshape)).into_iter().enumerate() {
        let mut sub = moved.view_mut();
        for f in &flat {
            sub = sub.index_axis_move(Axis(0), f[j]);
        }
        let mut from = b.view();
        for &k in at.slice() {
            from = from.index_axis_move(Axis(0), k);
        }
        sub.assign(&from);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn sp() -> Span {
        Span::default()
    }

    fn t(v: Value) -> ArrayD<f64> {
        v.to_array().expect("a tensor")
    }

    #[test]
    fn slicing_follows_python() {
        let v = Value::tensor(array![0.0, 1.0, 2.0, 3.0, 4.0].into_dyn());
        let s = |a, b, c| t(index(&v, &[Index::Slice(a, b, c, sp())], sp()).unwrap());
        assert_eq!(s(Some(1), Some(3), None), array![1.0, 2.0].into_dyn());
        assert_eq!(
            s(None, None, Some(-1)),
            array![4.0, 3.0, 2.0, 1.0, 0.0].into_dyn()
        );
        assert_eq!(s(Some(-2), None, None), array![3.0, 4.0].into_dyn());
        assert_eq!(s(Some(3), Some(0), Some(-2)), array![3.0, 1.0].into_dyn());
        assert_eq!(s(Some(10), Some(20), None).len(), 0);
        assert_eq!(s(None, None, Some(2)), array![0.0, 2.0, 4.0].into_dyn());
        assert!(index(&v, &[Index::At(Value::Int(5), sp())], sp()).is_err());
        assert_eq!(
            t(index(&v, &[Index::At(Value::Int(-1), sp())], sp()).unwrap()),
            ndarray::arr0(4.0).into_dyn()
        );
    }

    #[test]
    fn two_dimensional_indexing_drops_axes() {
        let m = Value::tensor(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn());
        let col = index(
            &m,
            &[
                Index::Slice(None, None, None, sp()),
                Index::At(Value::Int(1), sp()),
            ],
            sp(),
        )
        .unwrap();
        assert_eq!(t(col), array![2.0, 5.0].into_dyn());
        let row = index(&m, &[Index::At(Value::Int(-1), sp())], sp()).unwrap();
        assert_eq!(t(row), array![4.0, 5.0, 6.0].into_dyn());
        let pick = index(
            &m,
            &[Index::At(
                Value::list(vec![Value::Int(1), Value::Int(0)]),
                sp(),
            )],
            sp(),
        )
        .unwrap();
        assert_eq!(t(pick), array![[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]].into_dyn());
        assert!(index(
            &m,
            &[
                Index::At(Value::Int(0), sp()),
                Index::At(Value::Int(0), sp()),
                Index::At(Value::Int(0), sp())
            ],
            sp()
        )
        .is_err());
    }

    #[test]
    fn assignment_broadcasts_into_a_slice() {
        let mut m = Value::tensor(ndarray::Array2::<f64>::zeros((2, 3)).into_dyn());
        index_assign(
            &mut m,
            &[
                Index::Slice(None, None, None, sp()),
                Index::At(Value::Int(0), sp()),
            ],
            Value::Float(7.0),
            sp(),
            sp(),
        )
        .unwrap();
        index_assign(
            &mut m,
            &[Index::At(Value::Int(1), sp())],
            Value::tensor(array![1.0, 2.0, 3.0].into_dyn()),
            sp(),
            sp(),
        )
        .unwrap();
        assert_eq!(t(m), array![[7.0, 0.0, 0.0], [1.0, 2.0, 3.0]].into_dyn());
    }
}
