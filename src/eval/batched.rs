//! `vmap` batched: `f` runs once, on the first slice, recording a tape with
//! the mapped arguments as inputs (a probe); the tape is then replayed over
//! all slices at once (`ad::Batch`), pulled back per example for
//! `vmap(grad(f))`. Where the replay could differ from calling `f` per slice
//! (a branch on a mapped value, an effect, an operation without a batching
//! rule) the probe gives up and `vmap` calls `f` once per slice.

use std::rc::Rc;

use ndarray::{ArrayD, Axis, IxDyn};

use super::interp::Interp;
use super::traced;
use super::transform::TransformKind;
use super::value::Value;
use crate::ad::{Batch, Grad, Var};
use crate::diag::{Diag, Span};

/// Elements of one batch's recorded values (2²⁶, 512 MiB): a longer batch is
/// replayed in pieces.
const BATCH_ELEMENTS: usize = 1 << 26;

thread_local! {
    static REPLAYS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many `vmap` calls on this thread were replayed rather than looped
/// (tests/vmap.rs checks which bodies are batched).
pub fn replays() -> usize {
    REPLAYS.get()
}

/// `vmap(f)(args)` by one probe and a replay, or `None` where `f` must be
/// called once per slice. `mapped` holds each positional argument's mapped
/// axis; `n` is the common length.
pub fn vmap(
    interp: &mut Interp,
    f: &Value,
    pos: &[(Value, Span)],
    mapped: &[Option<usize>],
    n: usize,
    named: &[(Rc<str>, Value, Span)],
    span: Span,
) -> Result<Option<Value>, Diag> {
    let (body, kind) = match f {
        Value::Transform(t)
            if matches!(t.kind, TransformKind::Grad | TransformKind::ValueAndGrad) =>
        {
            (&t.f, Some(t.kind.clone()))
        }
        Value::Func(_) | Value::Model(_) => (f, None),
        Value::Builtin(b) if (*b as usize) < super::builtins::TABLE.len() => (f, None),
        _ => return Ok(None),
    };
    // Under `grad` (or another `vmap`'s probe) the loop's calls are recorded
    // on that tape instead.
    if traced::recording() || (kind.is_some() && pos.is_empty()) {
        return Ok(None);
    }
    // Each mapped argument with its mapped axis first; only Float tensors are traced.
    let mut stacked: Vec<Option<ArrayD<f64>>> = Vec::with_capacity(pos.len());
    for ((v, _), axis) in pos.iter().zip(mapped) {
        stacked.push(match (v, axis) {
            (Value::Tensor(t), Some(a)) => {
                let mut order: Vec<usize> = (0..t.ndim()).filter(|k| k != a).collect();
                order.insert(0, *a);
                Some(
                    t.view()
                        .permuted_axes(order)
                        .as_standard_layout()
                        .into_owned(),
                )
            }
            (_, Some(_)) => return Ok(None),
            (_, None) => None,
        });
    }
    let rng = interp.run.rng.clone();
    let result = traced::probe(span, |id| {
        let mut args = Vec::with_capacity(pos.len());
        // (input node, argument) of each mapped argument; the inputs `grad` differentiates.
        let mut inputs: Vec<(Var, usize)> = Vec::new();
        let mut wanted: Vec<Var> = Vec::new();
        for (i, ((v, vspan), whole)) in pos.iter().zip(&stacked).enumerate() {
            let arg = match whole {
                Some(t) => {
                    let mut vars = Vec::new();
                    let traced = traced::trace_inputs(&slice(t, 0), id, &mut vars, *vspan)?;
                    inputs.push((vars[0], i));
                    if i == 0 && kind.is_some() {
                        wanted = vars;
                    }
                    traced
                }
                None if i == 0 && kind.is_some() => {
                    traced::trace_inputs(v, id, &mut wanted, *vspan)?
                }
                None => v.clone(),
            };
            args.push((arg, *vspan));
        }
        let out = interp.call_value(body, args, named.to_vec(), span)?;
        Ok(traced::with_active_tape(|tape| {
            let chunk = (BATCH_ELEMENTS / tape.elements().max(1)).clamp(1, n);
            let mut pieces = Vec::new();
            for lo in (0..n).step_by(chunk) {
                let m = chunk.min(n - lo);
                let mapped = inputs
                    .iter()
                    .map(|&(var, i)| {
                        let t = stacked[i].as_ref().expect("a mapped argument");
                        (var, t.slice_axis(Axis(0), (lo..lo + m).into()).to_owned())
                    })
                    .collect();
                let piece = match &kind {
                    None => results(tape, &out, id, m, mapped)?,
                    Some(kind) => gradients(tape, &pos[0].0, &out, id, &wanted, m, mapped, kind)?,
                };
                pieces.push(piece?);
            }
            Some(concat(pieces))
        }))
    });
    if let Err(d) = &result {
        if d.code == "flx::run::interrupted" {
            return result;
        }
    }
    // Random numbers drawn from the session's generator differ from slice to
    // slice: the loop draws them as it would have.
    if interp.run.rng != rng {
        interp.run.rng = rng;
        return Ok(None);
    }
    match result {
        Ok(v) => {
            REPLAYS.set(REPLAYS.get() + usize::from(v.is_some()));
            Ok(v)
        }
        // What the probe could not do, the loop does (or reports as a call of f would).
        Err(_) => Ok(None),
    }
}

/// Slice `k` of `t` along its first axis, as `f` sees it.
fn slice(t: &ArrayD<f64>, k: usize) -> Value {
    let s = t.index_axis(Axis(0), k).to_owned();
    if s.ndim() == 0 {
        Value::Float(s[[]])
    } else {
        Value::tensor(s)
    }
}

/// A per-example value n × shape as a flx value (numbers: a vector).
fn tensor(x: Grad) -> Value {
    Value::tensor(x.into_shared())
}

/// `f`'s result for each of the `n` examples, stacked as the loop stacks
/// them: traced parts replayed, the rest repeated. `None` where the replay
/// has no rule, or a part is not a number or tensor.
fn results(
    tape: &crate::ad::Tape,
    out: &Value,
    id: u64,
    n: usize,
    mapped: Vec<(Var, Grad)>,
) -> Option<Option<Value>> {
    let mut vars = Vec::new();
    leaves(out, id, &mut vars)?;
    let Some(&last) = vars.iter().max() else {
        return Some(stacked(out, None, n));
    };
    let batch = tape.batch(n, mapped, last)?;
    Some(stacked(out, Some(&batch), n))
}

/// The tape nodes of `v`'s traced parts; `None` for a part `vmap` does not stack.
fn leaves(v: &Value, id: u64, vars: &mut Vec<Var>) -> Option<()> {
    match v {
        Value::Traced(t) if matches!(t.primal, Value::Float(_) | Value::Tensor(_)) => {
            debug_assert_eq!(t.tape, id);
            vars.push(t.var)
        }
        Value::Tuple(items) | Value::List(items) => {
            for x in items.iter() {
                leaves(x, id, vars)?;
            }
        }
        Value::Record(r) => {
            for (_, x) in &r.fields {
                leaves(x, id, vars)?;
            }
        }
        Value::Float(_) | Value::Int(_) | Value::Tensor(_) | Value::IntTensor(_) => {}
        _ => return None,
    }
    Some(())
}

/// `v` for each of the `n` examples, stacked as the loop stacks results:
/// traced parts from `batch`, the others repeated n times.
fn stacked(v: &Value, batch: Option<&Batch>, n: usize) -> Option<Value> {
    let over = |shape: &[usize]| -> Vec<usize> {
        std::iter::once(n).chain(shape.iter().copied()).collect()
    };
    let parts = |items: &[Value]| -> Option<Vec<Value>> {
        items.iter().map(|x| stacked(x, batch, n)).collect()
    };
    Some(match v {
        Value::Traced(t) => tensor(batch?.full(t.var).to_owned()),
        Value::Float(x) => tensor(Grad::from_elem(IxDyn(&[n]), *x)),
        Value::Int(x) => Value::from(ArrayD::from_elem(IxDyn(&[n]), *x)),
        Value::Tensor(t) => tensor(t.broadcast(IxDyn(&over(t.shape())))?.to_owned()),
        Value::IntTensor(t) => Value::from(t.broadcast(IxDyn(&over(t.shape())))?.to_owned()),
        Value::Tuple(items) => Value::tuple(parts(items)?),
        Value::List(items) => Value::list(parts(items)?),
        Value::Record(r) => Value::record(
            r.fields
                .iter()
                .map(|(name, x)| Some((name.clone(), stacked(x, batch, n)?)))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// `vmap(grad(f))` (or `value_and_grad`) for `n` examples: the gradient with
/// respect to `x` per example, arranged like `x` with a leading batch axis
/// on every part.
#[allow(clippy::too_many_arguments)]
fn gradients(
    tape: &crate::ad::Tape,
    x: &Value,
    out: &Value,
    id: u64,
    wanted: &[Var],
    n: usize,
    mapped: Vec<(Var, Grad)>,
    kind: &TransformKind,
) -> Option<Option<Value>> {
    let (value, out_var) = traced::untrace(out.clone(), id, Span::default()).ok()?;
    let Value::Float(value) = value else {
        return Some(None);
    };
    let last = out_var
        .into_iter()
        .chain(wanted.iter().copied())
        .max()
        .unwrap_or(0);
    let batch = tape.batch(n, mapped, last)?;
    let grads = match out_var {
        Some(o) => batch.pullback(o, Grad::ones(IxDyn(&[n])), wanted),
        None => vec![None; wanted.len()],
    };
    let mut leaves = wanted
        .iter()
        .zip(grads)
        .map(|(&w, g)| tensor(g.unwrap_or_else(|| Grad::zeros(batch.full(w).raw_dim()))));
    let grad = traced::arranged_like(x, &mut leaves);
    Some(Some(match kind {
        TransformKind::ValueAndGrad => {
            let values = match out_var {
                Some(o) => tensor(batch.full(o).to_owned()),
                None => tensor(Grad::from_elem(IxDyn(&[n]), value)),
            };
            Value::tuple(vec![values, grad])
        }
        _ => grad,
    }))
}

/// The pieces of a batch replayed in parts, joined along the batch axis.
fn concat(mut pieces: Vec<Value>) -> Value {
    if pieces.len() == 1 {
        return pieces.pop().expect("one piece");
    }
    let part = |i: usize| -> Vec<Value> {
        pieces
            .iter()
            .map(|p| match p {
                Value::Tuple(t) | Value::List(t) => t[i].clone(),
                Value::Record(r) => r.fields[i].1.clone(),
                _ => unreachable!("pieces of one structure"),
            })
            .collect()
    };
    match &pieces[0] {
        Value::Tuple(t) => Value::tuple((0..t.len()).map(|i| concat(part(i)))),
        Value::List(t) => Value::list((0..t.len()).map(|i| concat(part(i)))),
        Value::Record(r) => Value::record(
            r.fields
                .iter()
                .enumerate()
                .map(|(i, (name, _))| (name.clone(), concat(part(i)))),
        ),
        Value::IntTensor(_) => {
            let views: Vec<_> = pieces
                .iter()
                .map(|p| match p {
                    Value::IntTensor(t) => t.view(),
                    _ => unreachable!("pieces of one structure"),
                })
                .collect();
            Value::from(ndarray::concatenate(Axis(0), &views).expect("pieces of one shape"))
        }
        _ => {
            let views: Vec<_> = pieces
                .iter()
                .map(|p| match p {
                    Value::Tensor(t) => t.view(),
                    _ => unreachable!("pieces of one structure"),
                })
                .collect();
            tensor(ndarray::concatenate(Axis(0), &views).expect("pieces of one shape"))
        }
    }
}
