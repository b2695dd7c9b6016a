//! Operators, indexing and literals over values. Arithmetic follows Python for
//! scalars (Int stays Int except under `/`; `%` takes the divisor's sign; Int
//! overflow is an error, never a wrap) and NumPy for tensors (broadcasting,
//! comparisons give 0/1 tensors).

use std::rc::Rc;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use super::value::{Tensor, Value};
use crate::diag::{Diag, Span};
use crate::format::shape_str;
use crate::syntax::ast::{BinOp, UnOp};
use crate::tensor;

pub fn unary(op: UnOp, v: Value) -> Result<Value, Diag> {
    match (op, v) {
        // The span comes from the caller (`or_at`).
        (op, v @ Value::Traced(_)) => super::traced::unary(op, v, Span::default()),
        (UnOp::Neg, Value::Int(i)) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
        (UnOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
        (UnOp::Neg, Value::Tensor(t)) => Ok(Value::tensor(t.mapv(crate::prim::math::neg))),
        (UnOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (op, v) => Err(Diag::new(
            "flx::type::operator",
            format!(
                "`{}` does not apply to {}",
                if op == UnOp::Neg { "-" } else { "not" },
                v.describe()
            ),
        )),
    }
}

fn overflow() -> Diag {
    Diag::new("flx::math::overflow", "integer overflow")
        .help("Int is 64-bit; convert to Float with `float(x)` for larger values")
}

/// The primitive of an elementwise operator (the caller has ruled out `@`, `and`, `or`).
fn float_op(op: BinOp) -> fn(f64, f64) -> f64 {
    op.elementwise()
        .expect("an elementwise operator")
        .function()
}

/// Elementwise `a op b` with broadcasting; the four arithmetic operators are
/// inlined, since a call through a function pointer per element costs
/// several times the arithmetic.
fn zip_op(op: BinOp, a: &Tensor, b: &Tensor) -> Result<ArrayD<f64>, tensor::ShapeError> {
    match op {
        BinOp::Add => tensor::zip_with(a, b, |x, y| x + y),
        BinOp::Sub => tensor::zip_with(a, b, |x, y| x - y),
        BinOp::Mul => tensor::zip_with(a, b, |x, y| x * y),
        BinOp::Div => tensor::zip_with(a, b, |x, y| x / y),
        _ => tensor::zip_with(a, b, float_op(op)),
    }
}

fn int_op(op: BinOp, a: i64, b: i64) -> Result<Value, Diag> {
    Ok(match op {
        BinOp::Add => Value::Int(a.checked_add(b).ok_or_else(overflow)?),
        BinOp::Sub => Value::Int(a.checked_sub(b).ok_or_else(overflow)?),
        BinOp::Mul => Value::Int(a.checked_mul(b).ok_or_else(overflow)?),
        BinOp::Div => Value::Float(a as f64 / b as f64),
        BinOp::Rem => {
            if b == 0 {
                return Err(Diag::new(
                    "flx::math::zero_division",
                    "integer modulo by zero",
                ));
            }
            Value::Int(
                a.checked_rem_euclid(b)
                    .map(|r| if b < 0 && r != 0 { r + b } else { r })
                    .ok_or_else(overflow)?,
            )
        }
        BinOp::Pow => {
            if b >= 0 {
                let e = u32::try_from(b).map_err(|_| overflow())?;
                Value::Int(a.checked_pow(e).ok_or_else(overflow)?)
            } else {
                Value::Float((a as f64).powf(b as f64))
            }
        }
        BinOp::Eq => Value::Bool(a == b),
        BinOp::Ne => Value::Bool(a != b),
        BinOp::Lt => Value::Bool(a < b),
        BinOp::Le => Value::Bool(a <= b),
        BinOp::Gt => Value::Bool(a > b),
        BinOp::Ge => Value::Bool(a >= b),
        BinOp::MatMul | BinOp::And | BinOp::Or => unreachable!("handled by the caller"),
    })
}

fn scalar_result(op: BinOp, x: f64) -> Value {
    if op.is_comparison() {
        Value::Bool(x != 0.0)
    } else {
        Value::Float(x)
    }
}

/// Structural equality for non-numeric values (`==` on records, strings, ...).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| values_equal(a, b))
        }
        (Value::Record(x), Value::Record(y)) => {
            x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        (Value::Tensor(x), Value::Tensor(y)) => {
            x.shape() == y.shape() && x.iter().zip(y.iter()).all(|(a, b)| a == b)
        }
        (Value::Range(a), Value::Range(b)) => a == b,
        (Value::Func(f), Value::Func(g)) => Rc::ptr_eq(f, g),
        (Value::Builtin(f), Value::Builtin(g)) => f == g,
        (x, y)
            if x.is_number()
                && y.is_number()
                && !matches!(x, Value::Bool(_))
                && !matches!(y, Value::Bool(_)) =>
        {
            x.as_f64() == y.as_f64()
        }
        _ => false,
    }
}

/// Scalar arithmetic without overflow or error cases, for scalar loops;
/// `None` sends the operation through `binary`, which handles (and reports) the rest.
#[inline]
pub fn scalar_fast(op: BinOp, l: &Value, r: &Value) -> Option<Value> {
    let (x, y) = match (l, r) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            return Some(match op {
                BinOp::Add => Value::Int(a.checked_add(b)?),
                BinOp::Sub => Value::Int(a.checked_sub(b)?),
                BinOp::Mul => Value::Int(a.checked_mul(b)?),
                BinOp::Rem if b > 0 => Value::Int(a.rem_euclid(b)),
                BinOp::Lt => Value::Bool(a < b),
                BinOp::Le => Value::Bool(a <= b),
                BinOp::Gt => Value::Bool(a > b),
                BinOp::Ge => Value::Bool(a >= b),
                BinOp::Eq => Value::Bool(a == b),
                BinOp::Ne => Value::Bool(a != b),
                _ => return None,
            });
        }
        (Value::Float(a), Value::Float(b)) => (*a, *b),
        (Value::Int(a), Value::Float(b)) => (*a as f64, *b),
        (Value::Float(a), Value::Int(b)) => (*a, *b as f64),
        _ => return None,
    };
    Some(match op {
        BinOp::Add => Value::Float(x + y),
        BinOp::Sub => Value::Float(x - y),
        BinOp::Mul => Value::Float(x * y),
        BinOp::Div => Value::Float(x / y),
        BinOp::Lt => Value::Bool(x < y),
        BinOp::Le => Value::Bool(x <= y),
        BinOp::Gt => Value::Bool(x > y),
        BinOp::Ge => Value::Bool(x >= y),
        _ => return None,
    })
}

pub fn binary(op: BinOp, l: Value, r: Value, lspan: Span, rspan: Span) -> Result<Value, Diag> {
    if matches!(l, Value::Traced(_)) || matches!(r, Value::Traced(_)) {
        return super::traced::binary(op, l, r, lspan, rspan);
    }
    // The left operand is the primary span; both operands are labelled, never overlapping.
    let fail = |l: &Value, r: &Value| {
        Diag::new(
            "flx::type::operator",
            format!(
                "`{}` does not apply to {} and {}",
                op.symbol(),
                l.describe(),
                r.describe()
            ),
        )
        .at(lspan)
        .label(l.describe())
        .with_label(rspan, r.describe())
    };
    let at = |d: Diag| d.at(lspan.to(rspan));
    let prim = op.elementwise();
    match (&l, &r) {
        (Value::Int(a), Value::Int(b)) if prim.is_some() => int_op(op, *a, *b).map_err(at),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) if prim.is_some() => {
            let (a, b) = (l.as_f64().expect("number"), r.as_f64().expect("number"));
            Ok(scalar_result(op, float_op(op)(a, b)))
        }
        (Value::Tensor(a), Value::Tensor(b)) if op == BinOp::MatMul => tensor::matmul(a, b)
            .map(|t| {
                if t.ndim() == 0 {
                    Value::Float(t[[]])
                } else {
                    Value::tensor(t)
                }
            })
            .map_err(|e| {
                Diag::new("flx::shape::matmul", e.0)
                    .at(lspan)
                    .label(format!("shape {}", shape_str(a.shape())))
                    .with_label(rspan, format!("shape {}", shape_str(b.shape())))
                    .help("`A @ B` needs cols(A) == rows(B)")
            }),
        (Value::Tensor(a), Value::Tensor(b)) if prim.is_some() => zip_op(op, a, b)
            .map(Value::tensor)
            .map_err(|e| {
                Diag::new("flx::shape::broadcast", e.0)
                    .at(lspan)
                    .label(format!("shape {}", shape_str(a.shape())))
                    .with_label(rspan, format!("shape {}", shape_str(b.shape())))
                    .help("shapes broadcast when, from the last axis back, each pair of lengths is equal or one of them is 1")
            }),
        (Value::Tensor(a), Value::Int(_) | Value::Float(_)) if prim.is_some() => {
            let b = r.as_f64().expect("number");
            let f = float_op(op);
            Ok(Value::tensor(a.mapv(|x| f(x, b))))
        }
        (Value::Int(_) | Value::Float(_), Value::Tensor(b)) if prim.is_some() => {
            let a = l.as_f64().expect("number");
            let f = float_op(op);
            Ok(Value::tensor(b.mapv(|y| f(a, y))))
        }
        (Value::Str(a), Value::Str(b)) => match op {
            BinOp::Add => {
                too_long(a.len() + b.len(), lspan.to(rspan))?;
                Ok(Value::Str(Rc::new(format!("{a}{b}"))))
            }
            BinOp::Eq => Ok(Value::Bool(a == b)),
            BinOp::Ne => Ok(Value::Bool(a != b)),
            BinOp::Lt => Ok(Value::Bool(a < b)),
            BinOp::Le => Ok(Value::Bool(a <= b)),
            BinOp::Gt => Ok(Value::Bool(a > b)),
            BinOp::Ge => Ok(Value::Bool(a >= b)),
            _ => Err(fail(&l, &r)),
        },
        _ => match op {
            BinOp::Eq => Ok(Value::Bool(values_equal(&l, &r))),
            BinOp::Ne => Ok(Value::Bool(!values_equal(&l, &r))),
            BinOp::Add if matches!((&l, &r), (Value::List(_), Value::List(_))) => {
                let (Value::List(a), Value::List(b)) = (&l, &r) else {
                    unreachable!()
                };
                too_long(a.len() + b.len(), lspan.to(rspan))?;
                Ok(Value::List(Rc::new(
                    a.iter().chain(b.iter()).cloned().collect(),
                )))
            }
            _ => Err(fail(&l, &r)),
        },
    }
}

/// Strings and lists obey the same size limit as tensors.
fn too_long(n: usize, span: Span) -> Result<(), Diag> {
    if n > tensor::max_elements() {
        return Err(Diag::new(
            "flx::value::too_long",
            format!("a string or list of {n} items is too long"),
        )
        .at(span));
    }
    Ok(())
}

/// A literal `[a, b, ...]`: numbers make a 1-D tensor, equal-shaped tensors
/// stack along a new first axis (as `np.array` does), anything else is a list.
pub fn list_literal(vals: Vec<(Value, Span)>, span: Span) -> Result<Value, Diag> {
    if vals.iter().any(|(v, _)| matches!(v, Value::Traced(_))) {
        return super::traced::list_literal(vals, span);
    }
    if vals.is_empty() {
        return Ok(Value::List(Rc::new(Vec::new())));
    }
    if vals
        .iter()
        .all(|(v, _)| matches!(v, Value::Int(_) | Value::Float(_)))
    {
        let data: Vec<f64> = vals
            .iter()
            .map(|(v, _)| v.as_f64().expect("number"))
            .collect();
        return Ok(Value::tensor(
            ArrayD::from_shape_vec(IxDyn(&[data.len()]), data).expect("1-d"),
        ));
    }
    if let (Value::Tensor(first), _) = &vals[0] {
        let shape = first.shape().to_vec();
        if vals
            .iter()
            .all(|(v, _)| matches!(v, Value::Tensor(t) if t.shape() == shape.as_slice()))
        {
            let views: Vec<ArrayViewD<f64>> = vals
                .iter()
                .map(|(v, _)| {
                    if let Value::Tensor(t) = v {
                        t.view()
                    } else {
                        unreachable!()
                    }
                })
                .collect();
            return ndarray::stack(Axis(0), &views)
                .map(Value::tensor)
                .map_err(|e| Diag::new("flx::shape::stack", e.to_string()).at(span));
        }
        if let Some((v, s)) = vals.iter().find(|(v, _)| {
            matches!(v, Value::Tensor(t) if t.shape() != shape.as_slice()) || v.is_number()
        }) {
            return Err(Diag::new(
                "flx::shape::literal",
                "rows of a tensor literal must have equal shapes",
            )
            .at(*s)
            .label(format!("this is {}", v.describe()))
            .with_label(
                vals[0].1,
                format!("the first is shape {}", shape_str(&shape)),
            ));
        }
    }
    Ok(Value::List(Rc::new(
        vals.into_iter().map(|(v, _)| v).collect(),
    )))
}

/// Row `i` of a tensor: a Float for 1-D, a tensor otherwise.
pub fn tensor_item(t: &Tensor, i: usize) -> Value {
    let row = t.index_axis(Axis(0), i);
    if row.ndim() == 0 {
        Value::Float(row[[]])
    } else {
        Value::tensor(row.to_owned())
    }
}

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

fn int_list(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Tensor(t) if t.ndim() == 1 && t.iter().all(|x| x.fract() == 0.0) => {
            Some(t.iter().map(|&x| x as i64).collect())
        }
        Value::List(items) if items.iter().all(|x| matches!(x, Value::Int(_))) => Some(
            items
                .iter()
                .map(|x| if let Value::Int(i) = x { *i } else { 0 })
                .collect(),
        ),
        Value::Range(r) if (r.1.saturating_sub(r.0) as u64) <= tensor::max_elements() as u64 => {
            Some((r.0..r.1).collect())
        }
        _ => None,
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
    Diag::new(
        "flx::index::type",
        format!(
            "an index must be an Int, a slice or a list of Ints, found {}",
            v.describe()
        ),
    )
    .at(span)
    .help(if matches!(v, Value::Float(_)) {
        "convert with `int(x)`"
    } else {
        "write `x[i]`, `x[a:b]` or `x[:, j]`"
    })
}

pub fn index(v: &Value, idx: &[Index], span: Span) -> Result<Value, Diag> {
    match v {
        Value::Traced(_) => super::traced::index(v, idx, span),
        Value::Tensor(t) => index_tensor(t, idx),
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
                    let picked = slice_positions(items.len(), sl)
                        .into_iter()
                        .map(|i| items[i].clone())
                        .collect();
                    Ok(if tuple {
                        Value::Tuple(Rc::new(picked))
                    } else {
                        Value::List(Rc::new(picked))
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

fn slice_positions(len: usize, sl: Slice) -> Vec<usize> {
    let end = sl.end.unwrap_or(len as isize) as usize;
    let start = sl.start as usize;
    let step = sl.step.unsigned_abs();
    let mut v: Vec<usize> = (start..end).step_by(step.max(1)).collect();
    if sl.step < 0 {
        // ndarray semantics: a negative step walks from the end of [start, end).
        v = (start..end).rev().step_by(step).collect();
    }
    v
}

fn index_tensor(t: &Tensor, idx: &[Index]) -> Result<Value, Diag> {
    let fancy = idx
        .iter()
        .any(|i| matches!(i, Index::At(v, _) if !matches!(v, Value::Int(_))));
    let out: Tensor = if !fancy {
        // Ints and slices make a view of the same storage.
        select(t.clone(), idx, t.ndim())?
    } else {
        // Index lists copy (as in NumPy); take them one axis at a time.
        let mut cur = t.clone();
        let mut axis = 0;
        for item in idx {
            if axis >= cur.ndim() {
                return Err(too_many(t.ndim(), idx.len(), index_span(item)));
            }
            match item {
                Index::At(v, s) if !matches!(v, Value::Int(_)) => {
                    let Some(list) = int_list(v) else {
                        return Err(bad_index(v, *s));
                    };
                    let len = cur.shape()[axis];
                    let picked = list
                        .iter()
                        .map(|&i| normalize(i, len, *s, axis))
                        .collect::<Result<Vec<_>, _>>()?;
                    cur = cur.select(Axis(axis), &picked).into();
                    axis += 1;
                }
                other => {
                    let dropped = matches!(other, Index::At(..));
                    cur = select_axis(cur, other, axis)?;
                    if !dropped {
                        axis += 1;
                    }
                }
            }
        }
        cur
    };
    Ok(if out.ndim() == 0 {
        Value::Float(out[[]])
    } else {
        Value::tensor(out)
    })
}

/// Apply one Int or slice item at `axis` (an Int drops the axis).
fn select_axis<S: ndarray::RawData<Elem = f64>>(
    mut view: ArrayBase<S, IxDyn>,
    item: &Index,
    axis: usize,
) -> Result<ArrayBase<S, IxDyn>, Diag> {
    match item {
        Index::At(Value::Int(i), s) => {
            let k = normalize(*i, view.shape()[axis], *s, axis)?;
            Ok(view.index_axis_move(Axis(axis), k))
        }
        Index::At(v, s) => Err(if int_list(v).is_some() {
            Diag::new(
                "flx::index::assign",
                "assigning through a list of indices is not supported",
            )
            .at(*s)
            .help("assign each index in a loop, or build the tensor with `where`")
        } else {
            bad_index(v, *s)
        }),
        Index::Slice(a, b, c, _) => {
            let sl = python_slice(view.shape()[axis], *a, *b, *c);
            view.slice_axis_inplace(Axis(axis), sl);
            Ok(view)
        }
    }
}

/// Select with Int and slice items only, without copying (a view in, a view out).
fn select<S: ndarray::RawData<Elem = f64>>(
    mut view: ArrayBase<S, IxDyn>,
    idx: &[Index],
    ndim: usize,
) -> Result<ArrayBase<S, IxDyn>, Diag> {
    let mut axis = 0;
    for item in idx {
        if axis >= view.ndim() {
            return Err(too_many(ndim, idx.len(), index_span(item)));
        }
        let dropped = matches!(item, Index::At(..));
        view = select_axis(view, item, axis)?;
        if !dropped {
            axis += 1;
        }
    }
    Ok(view)
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
    let tensor = matches!(target, Value::Tensor(_) | Value::Traced(_));
    if tensor && (matches!(target, Value::Traced(_)) || matches!(rhs, Value::Traced(_))) {
        *target = super::traced::index_assign(target, idx, rhs, span, rhs_span)?;
        return Ok(());
    }
    match target {
        Value::Tensor(t) => {
            let t = Rc::make_mut(t);
            let ndim = t.ndim();
            let mut part = select(t.view_mut(), idx, ndim)?;
            match &rhs {
                v if v.is_number() && !matches!(v, Value::Bool(_)) => {
                    part.fill(v.as_f64().expect("number"))
                }
                Value::Tensor(r) => {
                    let Some(b) = r.broadcast(part.raw_dim()) else {
                        return Err(Diag::new(
                            "flx::shape::assign",
                            format!(
                                "cannot assign shape {} into a part of shape {}",
                                shape_str(r.shape()),
                                shape_str(part.shape())
                            ),
                        )
                        .at(rhs_span)
                        .with_label(span, format!("shape {}", shape_str(part.shape()))));
                    };
                    part.assign(&b);
                }
                other => {
                    return Err(Diag::new(
                        "flx::type::assign",
                        format!("cannot store {} in a tensor", other.describe()),
                    )
                    .at(rhs_span))
                }
            }
            Ok(())
        }
        Value::List(items) => {
            let i = list_position(idx, items.len(), span)?;
            Rc::make_mut(items)[i] = rhs;
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
                Value::List(Rc::new(vec![Value::Int(1), Value::Int(0)])),
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
    fn scalar_arithmetic_is_pythonic() {
        let b = |op, l, r| binary(op, l, r, sp(), sp()).unwrap();
        assert!(matches!(b(BinOp::Div, Value::Int(7), Value::Int(2)), Value::Float(f) if f == 3.5));
        assert!(matches!(
            b(BinOp::Rem, Value::Int(-7), Value::Int(3)),
            Value::Int(2)
        ));
        assert!(matches!(
            b(BinOp::Rem, Value::Int(7), Value::Int(-3)),
            Value::Int(-2)
        ));
        assert!(matches!(
            b(BinOp::Pow, Value::Int(2), Value::Int(10)),
            Value::Int(1024)
        ));
        assert!(
            matches!(b(BinOp::Pow, Value::Int(2), Value::Int(-1)), Value::Float(f) if f == 0.5)
        );
        assert!(binary(BinOp::Mul, Value::Int(i64::MAX), Value::Int(2), sp(), sp()).is_err());
        assert!(binary(BinOp::Rem, Value::Int(1), Value::Int(0), sp(), sp()).is_err());
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
