//! Function transforms: `grad(f)`, `value_and_grad(f)`, `jacobian(f)` (run by
//! `eval::traced`) and `vmap(f, axes:)`, values that are called like `f`.

use std::rc::Rc;

use super::index::{self, Index};
use super::interp::Interp;
use super::value::Value;
use crate::diag::{Diag, Span};
use crate::format::shape_str;

/// A transformed function: callable.
#[derive(Debug)]
pub struct Transform {
    pub f: Value,
    pub kind: TransformKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransformKind {
    Grad,
    ValueAndGrad,
    Jacobian,
    /// The axis mapped in each positional argument (`None`: passed whole);
    /// no list: every tensor argument on its leading axis.
    Vmap(Option<Rc<[Option<i64>]>>),
}

impl TransformKind {
    pub fn name(&self) -> &'static str {
        match self {
            TransformKind::Grad => "grad",
            TransformKind::ValueAndGrad => "value_and_grad",
            TransformKind::Jacobian => "jacobian",
            TransformKind::Vmap(_) => "vmap",
        }
    }
}

/// Calls `t` with the arguments.
pub fn call(
    interp: &mut Interp,
    t: &Transform,
    pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> Result<Value, Diag> {
    match &t.kind {
        TransformKind::Vmap(axes) => vmap(interp, &t.f, axes.as_deref(), pos, named, span),
        _ => super::traced::call_derivative(interp, t, pos, named, span),
    }
}

/// The shape of a tensor argument, traced or not.
fn tensor_shape(v: &Value) -> Option<Vec<usize>> {
    match v {
        Value::Traced(_) => tensor_shape(&super::traced::primal(v)),
        v if v.is_tensor() => v.shape().map(|s| s.to_vec()),
        _ => None,
    }
}

/// `vmap(f, axes:)(args...)`: `f` called on each slice of the mapped
/// arguments along their axis (the others passed whole), the results
/// stacked along a new leading axis. Named arguments are passed whole.
fn vmap(
    interp: &mut Interp,
    f: &Value,
    axes: Option<&[Option<i64>]>,
    pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> Result<Value, Diag> {
    if let Some(axes) = axes {
        if axes.len() != pos.len() {
            return Err(Diag::new(
                "flx::vmap::axes",
                format!(
                    "`vmap` was given {} axes for {} argument{}",
                    axes.len(),
                    pos.len(),
                    if pos.len() == 1 { "" } else { "s" }
                ),
            )
            .at(span)
            .help("give one entry per positional argument: an axis, or none to pass it whole"));
        }
    }
    // (argument, axis) for each mapped argument, and the common length.
    let mut mapped: Vec<Option<usize>> = Vec::with_capacity(pos.len());
    let mut len: Option<(usize, Span)> = None;
    for (i, (v, vspan)) in pos.iter().enumerate() {
        let shape = tensor_shape(v);
        let axis = match (axes.map(|a| a[i]), &shape) {
            (Some(None), _) | (None, None) => None,
            (None, Some(s)) if s.is_empty() => None,
            (None, Some(_)) => Some(0),
            (Some(Some(a)), Some(s)) if !s.is_empty() => {
                let n = s.len() as i64;
                if !(-n..n).contains(&a) {
                    return Err(Diag::new(
                        "flx::vmap::axes",
                        format!(
                            "axis {a} is out of range for an argument of shape {}",
                            shape_str(s)
                        ),
                    )
                    .at(*vspan));
                }
                Some(a.rem_euclid(n) as usize)
            }
            (Some(Some(a)), _) => {
                return Err(Diag::new(
                    "flx::vmap::axes",
                    format!(
                        "`vmap` maps axis {a} of this argument, but it is {}",
                        v.describe()
                    ),
                )
                .at(*vspan)
                .help("only tensors with at least one axis are mapped; use none to pass it whole"))
            }
        };
        if let (Some(a), Some(s)) = (axis, &shape) {
            match len {
                Some((n, first)) if n != s[a] => {
                    return Err(Diag::new(
                        "flx::vmap::sizes",
                        format!("`vmap`: mapped axes have sizes {n} and {}", s[a]),
                    )
                    .at(first)
                    .label(format!("size {n}"))
                    .with_label(*vspan, format!("size {}", s[a])))
                }
                Some(_) => {}
                None => len = Some((s[a], *vspan)),
            }
        }
        mapped.push(axis);
    }
    let Some((n, _)) = len else {
        return Err(Diag::new(
            "flx::vmap::axes",
            "`vmap` has no tensor argument to map over",
        )
        .at(span)
        .help("map the leading axis of a tensor argument: `vmap(f)(X)`"));
    };
    if n == 0 {
        return Err(
            Diag::new("flx::vmap::empty", "`vmap` over an axis of length 0")
                .at(span)
                .help("the results' shape is known only from a call of f"),
        );
    }
    if let Some(v) = super::batched::vmap(interp, f, &pos, &mapped, n, &named, span)? {
        return Ok(v);
    }
    let mut results = Vec::with_capacity(n);
    for k in 0..n {
        let mut args = Vec::with_capacity(pos.len());
        for ((v, vspan), axis) in pos.iter().zip(&mapped) {
            args.push(match axis {
                Some(a) => {
                    let mut idx: Vec<Index> = (0..*a)
                        .map(|_| Index::Slice(None, None, None, *vspan))
                        .collect();
                    idx.push(Index::At(Value::Int(k as i64), *vspan));
                    (index::index(v, &idx, *vspan)?, *vspan)
                }
                None => (v.clone(), *vspan),
            });
        }
        results.push(interp.call_value(f, args, named.clone(), span)?);
        interp.poll_interrupt(span)?;
    }
    stack(interp, results, span)
}

/// Results of the calls stacked along a new leading axis: numbers and
/// tensors by `stack`; tuples, lists and records part by part.
fn stack(interp: &mut Interp, results: Vec<Value>, span: Span) -> Result<Value, Diag> {
    let first = results[0].clone();
    let parts = |i: usize| -> Vec<Value> {
        results
            .iter()
            .map(|r| match r {
                Value::Tuple(t) | Value::List(t) => t.get(i).cloned().unwrap_or(Value::None),
                Value::Record(rec) => rec.fields.get(i).map_or(Value::None, |(_, v)| v.clone()),
                _ => Value::None,
            })
            .collect()
    };
    let same_structure = |r: &Value| match (&first, r) {
        (Value::Tuple(a), Value::Tuple(b)) | (Value::List(a), Value::List(b)) => a.len() == b.len(),
        (Value::Record(a), Value::Record(b)) => {
            a.fields.len() == b.fields.len()
                && a.fields
                    .iter()
                    .zip(&b.fields)
                    .all(|((x, _), (y, _))| x == y)
        }
        (Value::Tuple(_) | Value::List(_) | Value::Record(_), _)
        | (_, Value::Tuple(_) | Value::List(_) | Value::Record(_)) => false,
        _ => true,
    };
    if !results.iter().all(same_structure) {
        return Err(Diag::new(
            "flx::vmap::result",
            "`vmap`: the calls returned results of different structures",
        )
        .at(span));
    }
    match &first {
        Value::Tuple(t) | Value::List(t) => {
            let mut out = Vec::with_capacity(t.len());
            for i in 0..t.len() {
                out.push(stack(interp, parts(i), span)?);
            }
            Ok(match first {
                Value::Tuple(_) => Value::tuple(out),
                _ => Value::list(out),
            })
        }
        Value::Record(r) => {
            let mut out = Vec::with_capacity(r.fields.len());
            for (i, (name, _)) in r.fields.iter().enumerate() {
                out.push((name.clone(), stack(interp, parts(i), span)?));
            }
            Ok(Value::record(out))
        }
        // Numbers: a vector, as the tensor literal `[r0, r1, ...]` would be.
        v if super::traced::primal(v).is_number() || tensor_shape(v).is_some_and(|s| s.is_empty()) => {
            let vals = results.into_iter().map(|v| (v, span)).collect();
            super::ops::list_literal(vals, span)
        }
        v if v.is_tensor() || matches!(v, Value::Traced(_)) => {
            let stack = super::builtins::STATIC.lookup("stack").expect("a builtin");
            let args = results.into_iter().map(|v| (v, span)).collect();
            interp.call_value(&Value::Builtin(stack), args, Vec::new(), span)
        }
        other => Err(Diag::new(
            "flx::vmap::result",
            format!(
                "`vmap` stacks numbers, tensors, and tuples, lists and records of them, but f returned {}",
                other.describe()
            ),
        )
        .at(span)),
    }
}
