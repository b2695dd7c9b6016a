//! Values on the autodiff tape. While `grad(f)(x)` runs `f`, the Floats and
//! tensors of `x` are `Value::Traced`: a primal value and a node on this
//! thread's tape (`ad::Tape`). Operators and differentiable builtins on traced
//! values compute the primal with the interpreter's own code, so results are
//! the same as without `grad`, and record the operation; anything that is not
//! differentiable is a diagnostic naming it. No tape exists outside `grad`.

use std::cell::RefCell;
use std::rc::Rc;

use ndarray::arr0;

use super::builtins::Args;
use super::index;
use super::interp::Interp;
use super::ops;
use super::transform::{Transform, TransformKind};
use super::value::{Record, Tensor, Value};
use crate::ad::{Op, Tape, Var};
use crate::diag::{Diag, Span};
use crate::prim::{Reduce, Unary};
use crate::syntax::ast::{BinOp, UnOp};

/// A Float or tensor recorded on the tape.
#[derive(Debug)]
pub struct Traced {
    pub primal: Value,
    pub var: Var,
    /// Which `grad` call recorded it.
    pub tape: u64,
}

struct Active {
    id: u64,
    tape: Tape,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
    /// Whether the active tape is `vmap`'s probe (`eval::batched`).
    static PROBING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a tape is recording (inside `grad`, or `vmap`'s probe).
pub fn recording() -> bool {
    ACTIVE.with_borrow(|a| a.is_some())
}

/// Whether `vmap` is recording one call to replay it over the batch. What a
/// replay cannot reproduce (a branch on a traced value, text made from one,
/// printing, the session's random numbers) stops the probe with
/// `unbatchable`, and `vmap` calls the function once per slice instead.
pub fn probing() -> bool {
    PROBING.get()
}

/// Stops `vmap`'s probe; never shown (`vmap` falls back to its loop).
pub fn unbatchable(span: Span) -> Diag {
    Diag::new(
        "flx::vmap::unbatchable",
        "this call cannot be replayed over the batch",
    )
    .at(span)
}

/// Builtins whose every call is an effect: under `vmap` they run once per slice.
pub fn effectful(name: &str) -> bool {
    matches!(
        name,
        "print"
            | "log"
            | "out"
            | "progress"
            | "time"
            | "save_csv"
            | "save_npy"
            | "plot"
            | "train"
            | "gd"
            | "sgd"
            | "adam"
    )
}

pub fn is_traced(v: &Value) -> bool {
    matches!(v, Value::Traced(_))
}

/// Whether an argument is traced or holds a traced value (`concat([a, b])`).
pub fn holds_traced(v: &Value) -> bool {
    match v {
        Value::Traced(_) => true,
        Value::List(items) | Value::Tuple(items) => items.iter().any(is_traced),
        _ => false,
    }
}

/// The value without its tape node.
pub fn primal(v: &Value) -> Value {
    match v {
        Value::Traced(t) => t.primal.clone(),
        v => v.clone(),
    }
}

/// A constant operand as a Float tensor (Int and Bool tensors are constants under `grad`).
fn as_tensor(v: &Value) -> Rc<Tensor> {
    super::dtype::float_tensor(v)
        .unwrap_or_else(|| Rc::new(arr0(v.as_f64().expect("a number")).into_dyn().into()))
}

fn leaked(span: Span) -> Diag {
    Diag::new(
        "flx::grad::leak",
        "a value from inside `grad` is used after `grad` returned",
    )
    .at(span)
    .help("return what you need from the function instead of storing it")
}

/// The tape node of `v` on the active tape: its own, or a new constant.
fn var_of(active: &mut Active, v: &Value, span: Span) -> Result<Var, Diag> {
    match v {
        Value::Traced(t) if t.tape == active.id => Ok(t.var),
        Value::Traced(_) => Err(leaked(span)),
        v => Ok(active.tape.constant(as_tensor(v))),
    }
}

/// Records `out` (a Float or tensor), computed from `inputs` by `op`.
fn record(
    out: Value,
    inputs: &[(&Value, Span)],
    op: impl FnOnce(&[Var]) -> Op,
) -> Result<Value, Diag> {
    ACTIVE.with_borrow_mut(|active| {
        let Some(active) = active else {
            return Err(leaked(inputs[0].1));
        };
        let mut vars = Vec::with_capacity(inputs.len());
        for (v, span) in inputs {
            vars.push(var_of(active, v, *span)?);
        }
        let var = active.tape.push(op(&vars), as_tensor(&out));
        Ok(Value::Traced(Rc::new(Traced {
            primal: out,
            var,
            tape: active.id,
        })))
    })
}

fn not_differentiable(what: &str, span: Span) -> Diag {
    Diag::new(
        "flx::grad::not_differentiable",
        format!("{what} is not differentiable"),
    )
    .at(span)
    .label("inside a function being differentiated")
    .help("`grad` follows arithmetic, `@`, `.T`, indexing, tensor literals and the builtins listed by `:help grad`")
}

/// `l op r` where either side is traced.
pub fn binary(op: BinOp, l: Value, r: Value, lspan: Span, rspan: Span) -> Result<Value, Diag> {
    let out = ops::binary(op, primal(&l), primal(&r), lspan, rspan)?;
    if matches!(out, Value::Kernel(_)) {
        return combined_kernel(out, &l, &r, lspan, rspan);
    }
    let make: fn(Var, Var) -> Op = match op {
        BinOp::Add => Op::Add,
        BinOp::Sub => Op::Sub,
        BinOp::Mul => Op::Mul,
        BinOp::Div => Op::Div,
        BinOp::Pow => Op::Pow,
        BinOp::MatMul => Op::MatMul,
        BinOp::Rem => {
            return Err(not_differentiable("`%`", lspan.to(rspan)));
        }
        // Comparisons and logic: no gradient flows through a Bool, and a
        // replay could not follow a branch on one.
        _ if probing() => return Err(unbatchable(lspan.to(rspan))),
        _ => return Ok(out),
    };
    record(out, &[(&l, lspan), (&r, rspan)], |v| make(v[0], v[1]))
}

/// `l op r` of kernels (`+`, `*`, a number times a kernel, a kernel to a
/// power) where a part has traced hyperparameters: the combination, traced
/// through its parts' hyperparameters laid end to end (`Kernel::hyper_values`).
fn combined_kernel(
    out: Value,
    l: &Value,
    r: &Value,
    lspan: Span,
    rspan: Span,
) -> Result<Value, Diag> {
    let is_kernel = |v: &Value| matches!(primal(v), Value::Kernel(_));
    if [l, r].iter().any(|v| is_traced(v) && !is_kernel(v)) {
        return Err(
            not_differentiable("a kernel's scale or power", lspan.to(rspan)).help(
                "make the scale a hyperparameter: `kernel scaled(s = 1.0, L = 1.0) = s * exp(-dist / L)`",
            ),
        );
    }
    let Value::Kernel(k) = &out else {
        unreachable!("a kernel")
    };
    let hypers = |k: &crate::kernel::Kernel| {
        Rc::new(
            ndarray::Array1::from(k.hyper_values())
                .into_dyn()
                .into_shared(),
        )
    };
    let values = hypers(k);
    let sources = Rc::new((1..=values.len()).collect());
    ACTIVE.with_borrow_mut(|active| {
        let Some(active) = active else {
            return Err(leaked(lspan));
        };
        let mut vars = Vec::new();
        for (v, span) in [(l, lspan), (r, rspan)] {
            match v {
                Value::Traced(t) if t.tape == active.id => vars.push(t.var),
                Value::Traced(_) => return Err(leaked(span)),
                Value::Kernel(k) => vars.push(active.tape.constant(hypers(k))),
                _ => {}
            }
        }
        let var = active.tape.push(Op::Rearrange(vars, sources), values);
        Ok(Value::Traced(Rc::new(Traced {
            primal: out.clone(),
            var,
            tape: active.id,
        })))
    })
}

/// `op v` where `v` is traced.
pub fn unary(op: UnOp, v: Value, span: Span) -> Result<Value, Diag> {
    let out = ops::unary(op, primal(&v))?;
    match op {
        UnOp::Neg => record(out, &[(&v, span)], |x| Op::Neg(x[0])),
        UnOp::Not if probing() => Err(unbatchable(span)),
        UnOp::Not => Ok(out),
    }
}

/// `v.T` where `v` is traced.
pub fn transpose(v: Value, span: Span) -> Result<Value, Diag> {
    match primal(&v) {
        Value::Tensor(t) => {
            let out = Value::tensor((*t).clone().reversed_axes());
            record(out, &[(&v, span)], |x| Op::Transpose(x[0]))
        }
        p => Err(Diag::new(
            "flx::record::field",
            format!("{} has no field `T`", p.describe()),
        )
        .at(span)),
    }
}

/// A tensor shaped like `t` holding each element's flat (row-major) position.
fn flat_positions(t: &Tensor) -> Value {
    let positions = (0..t.len() as i64).collect();
    Value::from(ndarray::ArrayD::from_shape_vec(t.raw_dim(), positions).expect("one per element"))
}

/// `v[idx]` where `v` is traced: the interpreter's indexing, and for the
/// pullback the same indexing of a tensor of flat positions.
pub fn index(v: &Value, idx: &[index::Index], span: Span) -> Result<Value, Diag> {
    let x = primal(v);
    let out = index::index(&x, idx, span)?;
    let Value::Tensor(t) = &x else {
        return index::index(&x, idx, span);
    };
    let picked = match index::index(&flat_positions(t), idx, span)? {
        Value::IntTensor(p) => p.iter().map(|&k| k as usize).collect(),
        Value::Int(k) => vec![k as usize],
        _ => return Ok(out),
    };
    record(out, &[(v, span)], |x| Op::Gather(x[0], Rc::new(picked)))
}

/// `target[idx] = rhs` where the tensor `target` or `rhs` is traced: the
/// interpreter's assignment on the primals, recorded with the flat positions
/// it wrote.
pub fn index_assign(
    target: &Value,
    idx: &[index::Index],
    rhs: Value,
    span: Span,
    rhs_span: Span,
) -> Result<Value, Diag> {
    let mut out = primal(target);
    index::index_assign(&mut out, idx, primal(&rhs), span, rhs_span)?;
    let Value::Tensor(t) = primal(target) else {
        return Ok(out);
    };
    let written = match index::index(&flat_positions(&t), idx, span)? {
        Value::IntTensor(p) => Rc::new(p.mapv(|k| k as f64).into_shared()),
        Value::Int(k) => Rc::new(arr0(k as f64).into_dyn().into()),
        _ => return Ok(out),
    };
    record(out, &[(target, span), (&rhs, rhs_span)], |v| {
        Op::Assign(v[0], v[1], written)
    })
}

/// Builtins that only look at a value: they see the primal, and no gradient
/// flows (`log` with named arguments records metrics).
const INSPECT: &[&str] = &["shape", "rows", "cols", "len", "print", "str", "assert"];

/// A call of builtin `index` (of the table) with a traced argument.
pub fn call_builtin(
    interp: &mut Interp,
    index: u32,
    pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> Result<Value, Diag> {
    let b = super::builtins::get(index);
    let primals: Vec<(Value, Span)> = pos.iter().map(|(v, s)| (primal(v), *s)).collect();
    let stripped_named: Vec<(Rc<str>, Value, Span)> = named
        .iter()
        .map(|(n, v, s)| (n.clone(), primal(v), *s))
        .collect();
    if b.name == "gram" {
        let sig = super::builtins::STATIC.signature(index);
        let traced = Args::bind(sig, pos, named, span)?;
        let mut plain = Args::bind(sig, primals, stripped_named, span)?;
        let inputs = super::builtins::kernels::gram_inputs(&plain)?;
        let out = (b.run)(&mut *interp, &mut plain)?;
        // X, Z (X when omitted) and M (none: a constant placeholder).
        let operand = |i: usize| match &traced.vals[i] {
            Value::None if i == 2 => (traced.vals[1].clone(), traced.spans[1]),
            Value::None => (Value::Float(0.0), traced.spans[i]),
            v => (v.clone(), traced.spans[i]),
        };
        let mut pullback = GramPullback {
            kernel: inputs.kernel,
            x: inputs.x,
            z: inputs.z,
            metric: inputs.metric,
            pool: inputs.pool,
            hyper: Vec::new(),
        };
        let mut operands = vec![operand(1), operand(2), operand(3)];
        if is_traced(&traced.vals[0]) {
            operands.push((traced.vals[0].clone(), traced.spans[0]));
            pullback.hyper = (0..pullback.kernel.hyper_values().len())
                .map(|i| pullback.kernel.hyper_derivative(i))
                .collect::<Result<_, _>>()
                .map_err(|e| super::kernel_values::combine_error(e, traced.spans[0]))?;
        }
        return record_gram(out, &operands, pullback);
    }
    let inspect = INSPECT.contains(&b.name) || (b.name == "log" && pos.is_empty());
    if named.iter().any(|(_, v, _)| is_traced(v)) && !inspect {
        return Err(not_differentiable(
            &format!("a named argument of `{}`", b.name),
            span,
        ));
    }
    let sig = super::builtins::STATIC.signature(index);
    let bind = |args| Args::bind(sig, args, stripped_named.clone(), span);
    let mut run = |args| (b.run)(&mut *interp, &mut bind(args)?);
    if inspect {
        if probing() && !matches!(b.name, "shape" | "rows" | "cols" | "len") {
            return Err(unbatchable(span));
        }
        return run(primals);
    }
    let only_first = pos.iter().skip(1).all(|(v, _)| !is_traced(v));
    let first = (&pos[0].0, pos[0].1);
    let both = || [(&pos[0].0, pos[0].1), (&pos[1].0, pos[1].1)];
    let unary = Unary::by_builtin(b.name).filter(|u| u.derivative().is_some());
    if let (Some(f), true, 1) = (unary, only_first, pos.len()) {
        let out = run(primals)?;
        return record(out, &[first], |x| Op::Map(f, x[0]));
    }
    // `max(x)` and `min(x)` reduce; with two arguments they are elementwise (below).
    let reduction = Reduce::by_builtin(b.name).filter(|_| pos.len() == 1);
    if let (Some(r), true) = (reduction, only_first) {
        let args = bind(primals.clone())?;
        let extreme = matches!(r, Reduce::Max | Reduce::Min);
        if extreme && !args.is_none(1) {
            return Err(not_differentiable(&format!("`{}` with `y:`", b.name), span));
        }
        let axis = args.axis(if extreme { 2 } else { 1 }, ndim(&primals[0].0))?;
        let out = run(primals)?;
        return record(out, &[first], |v| Op::Reduce(r, v[0], axis));
    }
    match b.name {
        "pow" if pos.len() == 2 => {
            let [(x, xs), (p, ps)] = [pos[0].clone(), pos[1].clone()];
            return binary(BinOp::Pow, x, p, xs, ps);
        }
        "mse" | "outer" | "solve" if pos.len() == 2 => {
            let out = run(primals)?;
            let make: fn(Var, Var) -> Op = match b.name {
                "mse" => Op::Mse,
                "outer" => Op::Outer,
                _ => Op::Solve,
            };
            return record(out, &both(), |v| make(v[0], v[1]));
        }
        "xent" | "hinge" if only_first => {
            let args = bind(primals.clone())?;
            let (x, y) = (args.tensor(0)?, args.tensor(1)?);
            let out = run(primals)?;
            return if b.name == "xent" {
                let targets = Rc::new(super::builtins::metrics::xent_targets(&args, &x, &y)?);
                record(out, &[first], |v| Op::Xent(v[0], targets))
            } else {
                record(out, &[first], |v| Op::Hinge(v[0], y))
            };
        }
        "patches" if only_first => {
            let args = bind(primals.clone())?;
            let (_, positions, _) = super::builtins::kernels::patch_positions(&args)?;
            let out = run(primals)?;
            return record(out, &[first], |v| Op::Gather(v[0], Rc::new(positions)));
        }
        "trace" | "reshape" if only_first => {
            let out = run(primals)?;
            let make: fn(Var) -> Op = if b.name == "trace" {
                Op::Trace
            } else {
                Op::Reshape
            };
            return record(out, &[first], |v| make(v[0]));
        }
        "max" | "min" if pos.len() == 2 && named.is_empty() => {
            let out = run(primals.clone())?;
            let (x, y) = (as_tensor(&primals[0].0), as_tensor(&primals[1].0));
            let largest = b.name == "max";
            // The gradient of the branch taken, the second on ties (as a
            // kernel body's derivative, `kernel::expr`).
            let mask = crate::tensor::zip_with(&x, &y, |a, b| {
                ((if largest { a > b } else { a < b }) as u8) as f64
            })
            .map_err(|e| Diag::new("flx::shape::broadcast", e.0).at(span))?;
            return record(out, &both(), |v| {
                Op::Select(v[0], v[1], Rc::new(mask.into()))
            });
        }
        "clip" if only_first => {
            let x = as_tensor(&primals[0].0);
            let out = run(primals)?;
            let mask =
                crate::tensor::zip_with(&x, &as_tensor(&out), |a, c| ((a == c) as u8) as f64)
                    .expect("same shape");
            let zero = Value::Float(0.0);
            return record(out, &[first, (&zero, span)], |v| {
                Op::Select(v[0], v[1], Rc::new(mask.into()))
            });
        }
        "where" if pos.len() == 3 && !is_traced(&pos[0].0) => {
            let cond = as_tensor(&primals[0].0);
            let out = run(primals)?;
            let mask = cond
                .broadcast(as_tensor(&out).raw_dim())
                .map(|c| c.mapv(|c| ((c != 0.0) as u8) as f64))
                .ok_or_else(|| {
                    Diag::new("flx::shape::broadcast", "`where`: shapes do not broadcast").at(span)
                })?;
            let (a, b2) = ((&pos[1].0, pos[1].1), (&pos[2].0, pos[2].1));
            return record(out, &[a, b2], |v| {
                Op::Select(v[0], v[1], Rc::new(mask.into()))
            });
        }
        "concat" | "hstack" | "vstack" | "diag" | "stack" => return track_moves(&pos, run),
        // One tensor moved; the other arguments say how.
        "squeeze" | "expand_dims" | "tile" | "repeat" | "flip" | "roll" | "tril" | "triu"
            if only_first =>
        {
            let rest = primals[1..].to_vec();
            return track_moves(&pos[..1], |first| {
                run(first.into_iter().chain(rest.iter().cloned()).collect())
            });
        }
        "softmax" | "log_softmax" if only_first => {
            // x - logsumexp(x) along the axis, through the differentiable builtins.
            let args = bind(primals.clone())?;
            let x = &pos[0];
            let n = ndim(&primals[0].0);
            if n == 0 {
                return run(primals);
            }
            let axis = args.axis(1, n)?.unwrap_or(n - 1);
            let mut kept: Vec<usize> = match &primals[0].0 {
                Value::Tensor(t) => t.shape().to_vec(),
                _ => unreachable!("a tensor"),
            };
            kept[axis] = 1;
            let by_name = |name: &str| super::builtins::STATIC.lookup(name).expect("a builtin");
            let axis_arg = vec![(Rc::from("axis"), Value::Int(axis as i64), span)];
            let lse = call_builtin(
                interp,
                by_name("logsumexp"),
                vec![x.clone()],
                axis_arg,
                span,
            )?;
            let lse = reshape(interp, lse, &kept, span)?;
            let out = binary(BinOp::Sub, x.0.clone(), lse, x.1, span)?;
            return if b.name == "log_softmax" {
                Ok(out)
            } else {
                call_builtin(interp, by_name("exp"), vec![(out, span)], vec![], span)
            };
        }
        _ => {}
    }
    let at = pos
        .iter()
        .find(|(v, _)| is_traced(v))
        .map_or(span, |(_, s)| *s);
    Err(not_differentiable(&format!("`{}`", b.name), span)
        .with_label(at, "this depends on the input"))
}

/// `k(θ...)`, a kernel instance, where a hyperparameter is traced: the
/// instance, traced through a vector of all its hyperparameters in order
/// (`gram` of it is differentiable in them).
pub fn kernel_with_hyper(
    k: &crate::kernel::Kernel,
    pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> Result<Value, Diag> {
    let primals = pos.iter().map(|(v, s)| (primal(v), *s)).collect();
    let named_primals = named
        .iter()
        .map(|(n, v, s)| (n.clone(), primal(v), *s))
        .collect();
    let instance = super::kernel_values::with_hyper(k, primals, named_primals, span)?;
    let Value::Kernel(kernel) = &instance else {
        unreachable!("an instance")
    };
    let (Some(family), crate::kernel::Form::Instance { values, .. }) =
        (kernel.family(), &kernel.form)
    else {
        unreachable!("an instance")
    };
    // Each hyperparameter: the traced argument that set it, or its value.
    let mut slots: Vec<(Value, Span)> = values
        .iter()
        .map(|v| (Value::Float(v.unwrap_or(f64::NAN)), span))
        .collect();
    for (i, (v, s)) in pos.into_iter().enumerate() {
        slots[i] = (v, s);
    }
    for (name, v, s) in named {
        let i = family
            .params
            .iter()
            .position(|p| *p == name)
            .expect("checked by with_hyper");
        slots[i] = (v, s);
    }
    let slots = slots
        .into_iter()
        .map(|(v, s)| match v {
            Value::Int(i) => (Value::Float(i as f64), s),
            v => (v, s),
        })
        .collect();
    let Value::Traced(packed) = list_literal(slots, span)? else {
        unreachable!("a traced hyperparameter")
    };
    Ok(Value::Traced(Rc::new(Traced {
        primal: instance,
        var: packed.var,
        tape: packed.tape,
    })))
}

/// The number of axes of a tensor; 0 for a number.
fn ndim(v: &Value) -> usize {
    match v {
        Value::Tensor(t) => t.ndim(),
        _ => 0,
    }
}

/// Position encoding for operations that only move elements: a traced Float
/// or tensor becomes 1 + the place of each element among the traced inputs
/// seen so far (pushed onto `parts`); a constant becomes zeros.
struct Positions {
    next: f64,
    parts: Vec<(Value, Span)>,
}

impl Positions {
    fn encode(&mut self, v: &Value, span: Span) -> Value {
        let p = primal(v);
        let t = match &p {
            Value::Tensor(t) => (**t).clone(),
            p if p.is_number() => arr0(0.0).into_dyn().into(),
            Value::List(items) => return Value::list(items.iter().map(|x| self.encode(x, span))),
            _ => return p,
        };
        let encoded = if is_traced(v) {
            self.parts.push((v.clone(), span));
            t.mapv(|_| {
                self.next += 1.0;
                self.next - 1.0
            })
        } else {
            t.mapv(|_| 0.0)
        };
        match p {
            Value::Tensor(_) => Value::tensor(encoded),
            _ => Value::Float(encoded[[]]),
        }
    }

    /// Records `out`, whose position-encoded twin is `placed`.
    fn record(self, out: Value, placed: Value) -> Result<Value, Diag> {
        let sources: Vec<usize> = match placed {
            Value::Tensor(t) => t.iter().map(|&k| k as usize).collect(),
            Value::Float(k) => vec![k as usize],
            _ => return Ok(out),
        };
        if self.parts.is_empty() || !matches!(out, Value::Tensor(_) | Value::Float(_)) {
            return Ok(out);
        }
        let inputs: Vec<(&Value, Span)> = self.parts.iter().map(|(v, s)| (v, *s)).collect();
        record(out, &inputs, |v| {
            Op::Rearrange(v.to_vec(), Rc::new(sources))
        })
    }
}

/// Runs `op`, which only moves elements (`concat`, `hstack`, `vstack`, `diag`,
/// a tensor literal), on the primals of `args`, and again on their positions
/// to see where each element went.
fn track_moves(
    args: &[(Value, Span)],
    mut op: impl FnMut(Vec<(Value, Span)>) -> Result<Value, Diag>,
) -> Result<Value, Diag> {
    let mut positions = Positions {
        next: 1.0,
        parts: Vec::new(),
    };
    let encoded = args
        .iter()
        .map(|(v, s)| (positions.encode(v, *s), *s))
        .collect();
    let stripped = args.iter().map(|(v, s)| (strip_deep(v), *s)).collect();
    let out = op(stripped)?;
    let placed = op(encoded)?;
    positions.record(out, placed)
}

fn strip_deep(v: &Value) -> Value {
    match v {
        Value::List(items) => Value::List(Rc::new(items.iter().map(primal).collect())),
        v => primal(v),
    }
}

/// A tensor literal with traced elements: `[v[0], 2 * v[1]]`.
pub fn list_literal(vals: Vec<(Value, Span)>, span: Span) -> Result<Value, Diag> {
    track_moves(&vals, |vals| ops::list_literal(vals, span))
}

/// Ends the active tape however the call ends.
struct TapeGuard;

impl Drop for TapeGuard {
    fn drop(&mut self) {
        ACTIVE.with_borrow_mut(|a| *a = None);
    }
}

/// `grad(f)(x, ...)` or `value_and_grad(f)(x, ...)`: the gradient of the scalar
/// `f(x, ...)` with respect to `x` (a Float, a tensor, or a tuple, list or
/// record of them), shaped like `x`. `jacobian(f)(x, ...)`: for a Float or
/// tensor `x`, the derivative of every element of `f(x, ...)` with respect to
/// every element of `x`, shaped `shape(f(x)) + shape(x)`.
pub fn call_derivative(
    interp: &mut Interp,
    d: &Transform,
    mut pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> Result<Value, Diag> {
    let name = d.kind.name();
    if pos.is_empty() {
        return Err(Diag::new(
            "flx::call::arity",
            format!("`{name}(f)` is called with the point to differentiate at: `{name}(f)(x)`"),
        )
        .at(span));
    }
    let (x, xspan) = pos[0].clone();
    if d.kind == TransformKind::Jacobian {
        return with_tape(name, span, |id| {
            let mut inputs = Vec::new();
            pos[0].0 = trace_inputs(&x, id, &mut inputs, xspan)?;
            let out = interp.call_value(&d.f, pos, named, span)?;
            let (value, out_var) = untrace(out, id, span)?;
            jacobian(&x, &value, out_var, &inputs, span)
        });
    }
    let (value, grad) = value_and_grad(interp, name, &x, xspan, span, |interp, traced| {
        pos[0].0 = traced;
        interp.call_value(&d.f, pos, named, span)
    })?;
    Ok(if d.kind == TransformKind::ValueAndGrad {
        Value::tuple(vec![Value::Float(value), grad])
    } else {
        grad
    })
}

/// Run `body` with a new tape recording (one at a time: `name` is what the
/// user called, for the diagnostic about nesting).
fn with_tape<T>(
    name: &str,
    span: Span,
    body: impl FnOnce(u64) -> Result<T, Diag>,
) -> Result<T, Diag> {
    if ACTIVE.with_borrow(|a| a.is_some()) {
        return Err(Diag::new(
            "flx::grad::nested",
            format!("`{name}` inside a function being differentiated is not supported yet"),
        )
        .at(span));
    }
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    ACTIVE.with_borrow_mut(|a| {
        *a = Some(Active {
            id,
            tape: Tape::default(),
        })
    });
    let _guard = TapeGuard;
    body(id)
}

/// `with_tape` for `vmap`'s probe: `probing()` holds while `body` runs.
pub(super) fn probe<T>(span: Span, body: impl FnOnce(u64) -> Result<T, Diag>) -> Result<T, Diag> {
    struct Probe;
    impl Drop for Probe {
        fn drop(&mut self) {
            PROBING.set(false);
        }
    }
    PROBING.set(true);
    let _probe = Probe;
    with_tape("vmap", span, body)
}

pub(super) fn with_active_tape<T>(f: impl FnOnce(&Tape) -> T) -> T {
    ACTIVE.with_borrow(|a| f(&a.as_ref().expect("the active tape").tape))
}

/// A result of the function being differentiated: its value, and its node
/// on tape `id` (`None`: it does not depend on the inputs).
pub(super) fn untrace(out: Value, id: u64, span: Span) -> Result<(Value, Option<Var>), Diag> {
    Ok(match out {
        Value::Traced(t) if t.tape == id => (t.primal.clone(), Some(t.var)),
        Value::Traced(_) => return Err(leaked(span)),
        v if v.is_number() => (Value::Float(v.as_f64().expect("a number")), None),
        v => (v, None),
    })
}

/// The value of the scalar `f(x)` and its gradient with respect to `x` (a
/// Float, a tensor, a model, or a tuple, list or record of them), shaped like
/// `x` (a model's gradient is shaped like its `params`).
pub fn value_and_grad(
    interp: &mut Interp,
    name: &str,
    x: &Value,
    xspan: Span,
    span: Span,
    f: impl FnOnce(&mut Interp, Value) -> Result<Value, Diag>,
) -> Result<(f64, Value), Diag> {
    with_tape(name, span, |id| {
        let mut inputs = Vec::new();
        let traced = trace_inputs(x, id, &mut inputs, xspan)?;
        let (value, out) = untrace(f(interp, traced)?, id, span)?;
        let Value::Float(value) = value else {
            return Err(Diag::new(
                "flx::grad::scalar",
                format!(
                    "`{name}` needs a function with a Float result, but it returned {}",
                    value.describe()
                ),
            )
            .at(span)
            .help("reduce the result to one number, e.g. with `sum` or `mean`"));
        };
        let grads = out.map(|v| with_active_tape(|tape| tape.gradients(v)));
        let mut at = 0;
        Ok((value, gradient_like(x, &inputs, &mut at, grads.as_deref())))
    })
}

/// The Jacobian of `value` (recorded as `out`) with respect to `x`: one
/// pullback per element of `value`. For a Float or tensor `x` it has shape
/// `shape(value) + shape(x)`; for a tuple, list, record or model, it is
/// arranged like `x` (a model's like its `params`), one such block per leaf.
fn jacobian(
    x: &Value,
    value: &Value,
    out: Option<Var>,
    inputs: &[Var],
    span: Span,
) -> Result<Value, Diag> {
    let out_shape: Vec<usize> = match value {
        Value::Tensor(t) => t.shape().to_vec(),
        Value::Float(_) => Vec::new(),
        other => {
            return Err(Diag::new(
                "flx::grad::scalar",
                format!(
                    "`jacobian` needs a function with a Float or tensor result, but it returned {}",
                    other.describe()
                ),
            )
            .at(span))
        }
    };
    let m = out_shape.iter().product::<usize>();
    let in_shapes: Vec<Vec<usize>> = with_active_tape(|tape| {
        inputs
            .iter()
            .map(|&v| tape.value(v).shape().to_vec())
            .collect()
    });
    let mut blocks = Vec::with_capacity(inputs.len());
    for shape in &in_shapes {
        let n = shape.iter().product::<usize>();
        crate::tensor::check_elements(&[m, n])
            .map_err(|e| Diag::new("flx::value::too_large", e.0).at(span))?;
        blocks.push(vec![0.0; m * n]);
    }
    if let Some(out) = out {
        with_active_tape(|tape| {
            for i in 0..m {
                let mut seed = vec![0.0; m];
                seed[i] = 1.0;
                let seed = crate::ad::Grad::from_shape_vec(out_shape.clone(), seed)
                    .expect("one per element");
                let grads = tape.pullback(out, seed);
                for (block, &input) in blocks.iter_mut().zip(inputs) {
                    if let Some(Some(g)) = grads.get(input) {
                        let n = g.len();
                        for (j, &v) in g.iter().enumerate() {
                            block[i * n + j] = v;
                        }
                    }
                }
            }
        });
    }
    let mut leaves = blocks.into_iter().zip(&in_shapes).map(|(rows, shape)| {
        let full: Vec<usize> = out_shape.iter().chain(shape).copied().collect();
        let j = Tensor::from_shape_vec(full, rows).expect("m × n elements");
        if j.ndim() == 0 {
            Value::Float(j[[]])
        } else {
            Value::tensor(j)
        }
    });
    Ok(arranged_like(x, &mut leaves))
}

/// `x` with each Float and tensor replaced by the next of `leaves`, in the
/// order `trace_inputs` met them (a model becomes a record like its `params`).
pub(super) fn arranged_like(x: &Value, leaves: &mut dyn Iterator<Item = Value>) -> Value {
    match x {
        Value::Float(_) | Value::Tensor(_) => leaves.next().expect("one per input"),
        Value::Tuple(items) => Value::tuple(items.iter().map(|v| arranged_like(v, leaves))),
        Value::List(items) => Value::list(items.iter().map(|v| arranged_like(v, leaves))),
        Value::Record(r) => Value::record(
            r.fields
                .iter()
                .map(|(n, v)| (n.clone(), arranged_like(v, leaves))),
        ),
        Value::Model(m) => arranged_like(&Value::Record(m.params.clone()), leaves),
        other => other.clone(),
    }
}

/// `x` with each Float and tensor made an input of the active tape; their
/// nodes are appended to `inputs` in order.
pub(super) fn trace_inputs(
    x: &Value,
    id: u64,
    inputs: &mut Vec<Var>,
    span: Span,
) -> Result<Value, Diag> {
    Ok(match x {
        Value::Float(_) | Value::Tensor(_) => {
            let var = ACTIVE.with_borrow_mut(|a| {
                a.as_mut()
                    .expect("the active tape")
                    .tape
                    .input(as_tensor(x))
            });
            inputs.push(var);
            Value::Traced(Rc::new(Traced {
                primal: x.clone(),
                var,
                tape: id,
            }))
        }
        Value::Tuple(items) | Value::List(items) => {
            let traced = items
                .iter()
                .map(|v| trace_inputs(v, id, inputs, span))
                .collect::<Result<Vec<_>, _>>()?;
            match x {
                Value::Tuple(_) => Value::tuple(traced),
                _ => Value::list(traced),
            }
        }
        Value::Record(r) => {
            let mut fields = Vec::with_capacity(r.fields.len());
            for (n, v) in &r.fields {
                fields.push((n.clone(), trace_inputs(v, id, inputs, span)?));
            }
            Value::Record(Rc::new(Record::new(fields)))
        }
        // A model: its parameters are the inputs, and `f` sees the model with
        // traced parameters.
        Value::Model(m) => {
            let params = trace_inputs(&Value::Record(m.params.clone()), id, inputs, span)?;
            Value::Model(Rc::new(m.with(&params, span)?))
        }
        other => {
            return Err(Diag::new(
                "flx::grad::input",
                format!(
                    "`grad` differentiates with respect to Floats and tensors, not {}",
                    other.describe()
                ),
            )
            .at(span)
            .label(other.describe())
            .help(if matches!(other, Value::Int(_)) {
                "write the number as a Float: `1.0`, not `1`"
            } else {
                "pass a Float, a tensor, a model, or a tuple, list or record of them"
            }))
        }
    })
}

/// The gradients of `inputs`, arranged like `x` (zero where `f` did not depend on it).
fn gradient_like(
    x: &Value,
    inputs: &[Var],
    at: &mut usize,
    grads: Option<&[Option<crate::ad::Grad>]>,
) -> Value {
    match x {
        Value::Float(_) | Value::Tensor(_) => {
            let var = inputs[*at];
            *at += 1;
            let g = grads.and_then(|g| g.get(var).cloned().flatten());
            match (x, g) {
                (Value::Float(_), g) => {
                    Value::Float(g.map_or(0.0, |g| g.iter().next().copied().unwrap_or(0.0)))
                }
                (Value::Tensor(t), Some(g)) if g.shape() == t.shape() => Value::tensor(g),
                (Value::Tensor(t), _) => Value::tensor(Tensor::zeros(t.raw_dim())),
                _ => unreachable!(),
            }
        }
        Value::Tuple(items) => {
            Value::tuple(items.iter().map(|v| gradient_like(v, inputs, at, grads)))
        }
        Value::List(items) => {
            Value::list(items.iter().map(|v| gradient_like(v, inputs, at, grads)))
        }
        Value::Record(r) => Value::record(
            r.fields
                .iter()
                .map(|(n, v)| (n.clone(), gradient_like(v, inputs, at, grads))),
        ),
        // A model's gradient is a record shaped like its `params`.
        Value::Model(m) => gradient_like(&Value::Record(m.params.clone()), inputs, at, grads),
        other => other.clone(),
    }
}

/// Rows per batch in `agop` of a function: bounds the tape's memory.
const AGOP_BATCH: usize = 2048;

/// `agop(f, X)` for a differentiable function or model: `(1/n) Σᵢ JᵢᵀJᵢ`, Jᵢ
/// the Jacobian of row i of `f(X)` with respect to `X[i]`. `f` runs on batches
/// of rows and must treat rows independently (as a model's forward does); then
/// one pullback per output column gives every row's gradient at once.
pub fn agop(
    interp: &mut Interp,
    f: &Value,
    x: &Tensor,
    (diag, centering): (bool, bool),
    xspan: Span,
    span: Span,
) -> Result<Value, Diag> {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let mut gram = ndarray::Array2::<f64>::zeros((d, d));
    let mut squares = ndarray::Array1::<f64>::zeros(d);
    // Σᵢ Jᵢ, one row per output (for centering).
    let mut sums: Vec<ndarray::Array1<f64>> = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + AGOP_BATCH).min(n);
        let xb = Value::tensor(x.slice(ndarray::s![start..end, ..]).to_owned().into_dyn());
        with_tape("agop", span, |id| {
            let mut inputs = Vec::new();
            let traced = trace_inputs(&xb, id, &mut inputs, xspan)?;
            let out = interp.call_value(f, vec![(traced, xspan)], Vec::new(), span)?;
            let (value, out) = untrace(out, id, span)?;
            let shape = match &value {
                Value::Tensor(t) if t.shape()[0] == end - start && t.ndim() <= 2 => t.shape().to_vec(),
                v => {
                    return Err(Diag::new(
                        "flx::agop::output",
                        format!(
                            "`agop` needs f to map the {} rows it is given to a vector or a matrix with one row each, but it returned {}",
                            end - start,
                            v.describe()
                        ),
                    )
                    .at(span))
                }
            };
            let outputs = if shape.len() == 1 { 1 } else { shape[1] };
            sums.resize(outputs, ndarray::Array1::zeros(d));
            for (k, sum) in sums.iter_mut().enumerate() {
                let Some(out) = out else { break };
                let mut seed = crate::ad::Grad::zeros(shape.clone());
                match shape.len() {
                    1 => seed.fill(1.0),
                    _ => seed.index_axis_mut(ndarray::Axis(1), k).fill(1.0),
                }
                let grads = with_active_tape(|tape| tape.pullback(out, seed));
                let Some(Some(g)) = grads.get(inputs[0]) else {
                    continue;
                };
                let g = g
                    .view()
                    .into_dimensionality::<ndarray::Ix2>()
                    .expect("rows × d");
                if diag {
                    squares += &g.map(|v| v * v).sum_axis(ndarray::Axis(0));
                } else {
                    gram += &crate::linalg::gemm(g.t(), g);
                }
                *sum += &g.sum_axis(ndarray::Axis(0));
            }
            Ok(())
        })?;
        interp.poll_interrupt(span)?;
        start = end;
    }
    let n = n as f64;
    let mean_jacobians = sums.iter().map(|s| s / n);
    Ok(if diag {
        let mut g = squares / n;
        if centering {
            for m in mean_jacobians {
                g -= &(&m * &m);
            }
        }
        Value::tensor(g.into_dyn())
    } else {
        let mut g = gram / n;
        if centering {
            for m in mean_jacobians {
                let col = m.view().insert_axis(ndarray::Axis(1));
                g -= &col.dot(&col.t());
            }
        }
        Value::tensor(g.into_dyn())
    })
}

/// The pullback of a Gram matrix with respect to X, Z and M
/// (`kernel::gram_vjp`), at the primal values it was computed from.
#[derive(Debug)]
struct GramPullback {
    kernel: Rc<crate::kernel::Kernel>,
    x: Rc<Tensor>,
    z: Rc<Tensor>,
    metric: crate::kernel::Metric,
    /// Patches (n × P × q) pooled so, or rows (n × d).
    pool: Option<crate::kernel::Pool>,
    /// ∂k/∂θᵢ for each hyperparameter, when the kernel is traced.
    hyper: Vec<crate::kernel::Kernel>,
}

impl crate::ad::Pullback for GramPullback {
    fn pull(&self, g: &crate::ad::Grad, wanted: &[bool]) -> Vec<Option<crate::ad::Grad>> {
        let view2 = super::builtins::mat;
        let g = g
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .expect("n × m");
        let want = [wanted[0], wanted[1], wanted[2]];
        let (k, m) = (&self.kernel, &self.metric);
        let r = match self.pool {
            None => crate::kernel::gram_vjp(k, view2(&self.x), view2(&self.z), m, g, want),
            Some(pool) => {
                let x = self.x.view().into_dimensionality().expect("patches");
                let z = self.z.view().into_dimensionality().expect("patches");
                crate::kernel::pool::gram_vjp(k, x, z, m, g, pool, want)
            }
        };
        let mut grads = vec![r.x, r.z, r.m];
        // The hyperparameters (a traced kernel's fourth operand): Σ G ∘ ∂K/∂θ,
        // ∂K/∂θ the Gram matrix of the body's symbolic derivative.
        if wanted.get(3) == Some(&true) {
            let dk: Vec<f64> = self
                .hyper
                .iter()
                .map(|d| {
                    let dk = super::builtins::kernels::pooled_gram(
                        d,
                        &self.x,
                        &self.z,
                        &self.metric,
                        self.pool,
                    );
                    (&dk * &g.into_dyn()).sum()
                })
                .collect();
            grads.push(Some(ndarray::Array1::from(dk).into_dyn()));
        }
        grads
    }
}

/// Records a Gram matrix computed from X, Z and M (the operands, each traced
/// or constant; M is `0.0` when none), and the kernel's hyperparameters
/// when it has traced ones.
fn record_gram(
    out: Value,
    operands: &[(Value, Span)],
    pullback: GramPullback,
) -> Result<Value, Diag> {
    let inputs: Vec<(&Value, Span)> = operands.iter().map(|(v, s)| (v, *s)).collect();
    let pullback: Rc<dyn crate::ad::Pullback> = Rc::new(pullback);
    record(out, &inputs, |v| Op::Custom(v.to_vec(), pullback))
}

/// `f(X)` of a predictor at traced inputs: `gram(k, X, centres, M) @ alpha`,
/// differentiable in X (a row, or an n × d matrix).
pub fn predict(
    interp: &mut Interp,
    p: &crate::kernel::Predictor,
    x: Value,
    xspan: Span,
    span: Span,
) -> Result<Value, Diag> {
    let primal_x = as_tensor(&primal(&x));
    let shape = primal_x.shape();
    // One input (a row, or one image's patches) gets a leading axis of 1.
    let single = match p.pool {
        None => {
            let d = p.features();
            if !(shape.len() == 1 || shape.len() == 2) || shape.last() != Some(&d) {
                return Err(super::kernel_values::wrong_features(d, shape, xspan));
            }
            shape.len() == 1
        }
        Some(pool) => {
            super::kernel_values::check_patches(p, pool, shape, xspan)?;
            shape.len() == 2
        }
    };
    let x = if single {
        let dims: Vec<usize> = std::iter::once(1).chain(shape.iter().copied()).collect();
        reshape(interp, x, &dims, xspan)?
    } else {
        x
    };
    let rows = as_tensor(&primal(&x));
    let rows = if rows.is_standard_layout() {
        rows
    } else {
        Rc::new(rows.as_standard_layout().into_owned().into_shared())
    };
    super::builtins::check_size(&[rows.shape()[0], p.centers.shape()[0]], xspan)?;
    let g = match p.pool {
        None => {
            let view2 = super::builtins::mat;
            crate::kernel::gram(&p.kernel, view2(&rows), view2(&p.centers), &p.metric)
        }
        Some(pool) => {
            let x = rows.view().into_dimensionality().expect("patches");
            let z = p.centers.view().into_dimensionality().expect("patches");
            crate::kernel::pool::gram(&p.kernel, x, z, &p.metric, pool)
        }
    };
    let g = record_gram(
        Value::tensor(g.into_dyn()),
        &[
            (x, xspan),
            (Value::Tensor(p.centers.clone()), span),
            (Value::Float(0.0), span),
        ],
        GramPullback {
            kernel: p.kernel.clone(),
            x: rows,
            z: p.centers.clone(),
            metric: p.metric.clone(),
            pool: p.pool,
            hyper: Vec::new(),
        },
    )?;
    let g = if single {
        reshape(interp, g, &[p.centers.shape()[0]], span)?
    } else {
        g
    };
    binary(BinOp::MatMul, g, Value::Tensor(p.alpha.clone()), span, span)
}

/// `reshape(v, dims...)` of a traced value, recorded on the tape.
fn reshape(interp: &mut Interp, v: Value, dims: &[usize], span: Span) -> Result<Value, Diag> {
    let reshape = super::builtins::STATIC
        .lookup("reshape")
        .expect("a builtin");
    let shape = Value::tuple(dims.iter().map(|&n| Value::Int(n as i64)));
    call_builtin(
        interp,
        reshape,
        vec![(v, span), (shape, span)],
        vec![],
        span,
    )
}
