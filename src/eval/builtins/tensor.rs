//! Tensor builtins: constructors, shape manipulation, elementwise math and
//! reductions. Random tensors draw from ChaCha8 (seeded per call with `seed:`
//! or from the session seed) one element after another, so the numbers do not
//! depend on the platform or the thread count.

use std::rc::Rc;

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Axis, IxDyn, Zip};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::{check_size, Args, Builtin};
use crate::diag::Diag;
use crate::eval::dtype::{each_common, Common};
use crate::eval::interp::Interp;
use crate::eval::value::{any_tensor, Elem, Tensor, Value};
use crate::format::shape_str;
use crate::prim::Dtype;
use crate::prim::{Binary, Reduce, Unary};
use crate::tensor::{broadcast_shape, reduce};

type R = Result<Value, Diag>;

/// The builtin of an elementwise primitive: its name and doc come from the table.
macro_rules! unary {
    ($u:ident) => {
        Builtin {
            name: match Unary::$u.builtin() {
                Some(n) => n,
                None => panic!("a primitive with a builtin"),
            },
            sig: "x",
            doc: Unary::$u.doc(),
            run: |_, a| map(a, Unary::$u),
        }
    };
}

pub static BUILTINS: &[Builtin] = &[
    builtin!("zeros", "*shape", "A tensor of zeros: `zeros(3, 4)` or `zeros(shape(X))`.", |_, a| filled(a, 0.0)),
    builtin!("ones", "*shape", "A tensor of ones: `ones(3, 4)`.", |_, a| filled(a, 1.0)),
    builtin!("full", "shape, value", "A tensor of shape `shape` (an Int or a tuple) filled with `value`: `full((2, 3), 0.5)`.", full),
    builtin!("eye", "n, m=none", "The n × n identity (n × m if `m` is given).", eye),
    builtin!("randn", "*shape, seed=none", "Standard normal samples. `seed:` makes the call reproducible on its own; without it the session's generator (`--seed`) is used.", |i, a| random(i, a, true)),
    builtin!("rand", "*shape, seed=none", "Uniform samples in [0, 1). `seed:` as for `randn`.", |i, a| random(i, a, false)),
    builtin!("linspace", "start, stop, n=50", "`n` evenly spaced values from `start` to `stop`, both included.", linspace),
    builtin!("arange", "start, stop=none, step=1", "Values from `start` up to, not including, `stop` by `step` (one argument: from 0).", arange),
    builtin!("onehot", "labels, n", "One-hot rows: a (len(labels), n) tensor with a 1 at each label (labels are Ints in 0..n).", onehot),
    builtin!("concat", "*tensors, axis=0", "Join tensors along an existing axis: `concat(A, B, axis: 1)`; also takes one list of tensors.", concat),
    builtin!("hstack", "*tensors", "Join side by side: 1-D tensors end to end, matrices along columns.", |_, a| stack_like(a, true)),
    builtin!("vstack", "*tensors", "Stack as rows: 1-D tensors become rows of a matrix, matrices join along rows.", |_, a| stack_like(a, false)),
    builtin!("reshape", "x, *shape", "The same elements (row-major) in a new shape; one length may be -1 and is inferred.", reshape),
    builtin!("shape", "x", "The shape of a tensor, as a tuple of Ints.", |_, a| {
        let shape = a.shape(0)?;
        Ok(Value::Tuple(Rc::new(shape.iter().map(|&d| Value::Int(d as i64)).collect())))
    }),
    builtin!("rows", "x", "Length of the first axis.", |_, a| axis_len(a, 0)),
    builtin!("cols", "x", "Length of the second axis.", |_, a| axis_len(a, 1)),
    builtin!("len", "x", "Length: a tensor's first axis, or the number of items of a list, tuple, string, record or range.", len),
    builtin!("diag", "x", "A vector's diagonal matrix, or a matrix's diagonal.", diag),
    builtin!("outer", "a, b", "Outer product of two vectors: `outer(a, b)[i, j] == a[i] * b[j]`.", outer),
    builtin!("where", "cond, a, b", "Elementwise choice: `a` where `cond` is non-zero (or true), else `b`; broadcasts.", where_),
    builtin!("clip", "x, lo=none, hi=none", "Limit values to [lo, hi].", clip),
    unary!(Exp),
    unary!(Sqrt),
    unary!(Abs),
    unary!(Sin),
    unary!(Cos),
    unary!(Tanh),
    unary!(Sigmoid),
    unary!(Relu),
    unary!(Sign),
    unary!(Floor),
    unary!(Ceil),
    unary!(Round),
    builtin!("pow", "x, p", "Elementwise power, the same as `x ^ p`.", pow),
    builtin!("sum", "x, axis=none", "Sum of all elements, or along `axis:` (pairwise summation, as NumPy).", |_, a| reduction(a, Reduce::Sum)),
    builtin!("mean", "x, axis=none", "Mean of all elements, or along `axis:`.", |_, a| reduction(a, Reduce::Mean)),
    builtin!("max", "x, y=none, axis=none", "Largest element (or along `axis:`); with two arguments, the elementwise maximum `max(x, 0)`.", |_, a| extreme(a, true)),
    builtin!("min", "x, y=none, axis=none", "Smallest element (or along `axis:`); with two arguments, the elementwise minimum.", |_, a| extreme(a, false)),
    builtin!("argmax", "x, axis=none", "Index of the largest element (of the flattened tensor, or along `axis:`).", |_, a| arg_extreme(a, true)),
    builtin!("argsort", "x", "Indices that sort a vector in ascending order (stable; nan last): `argsort(-x)[0:3]` are the three largest.", argsort),
    builtin!("argmin", "x, axis=none", "Index of the smallest element (of the flattened tensor, or along `axis:`).", |_, a| arg_extreme(a, false)),
    builtin!("norm", "x, axis=none", "Euclidean norm (Frobenius for matrices), or along `axis:`.", |_, a| reduction(a, Reduce::Norm)),
    builtin!("var", "x, axis=none", "Variance (divides by n, as NumPy), or along `axis:`.", |_, a| reduction(a, Reduce::Var)),
    builtin!("std", "x, axis=none", "Standard deviation (divides by n), or along `axis:`.", |_, a| reduction(a, Reduce::Std)),
    builtin!("logsumexp", "x, axis=none", "log(sum(exp(x))) computed without overflow, or along `axis:`.", |_, a| reduction(a, Reduce::LogSumExp)),
    builtin!("any", "x, axis=none", "Whether any element is non-zero (along `axis:`: a 0/1 tensor).", |_, a| truth(a, true)),
    builtin!("all", "x, axis=none", "Whether every element is non-zero (along `axis:`: a 0/1 tensor).", |_, a| truth(a, false)),
];

/// The shape given as `3, 4`, as one tuple `(3, 4)`, or as one Int.
fn shape_arg(a: &Args) -> Result<Vec<usize>, Diag> {
    let items: Vec<(Value, crate::diag::Span)> = match a.rest.as_slice() {
        [(Value::Tuple(t) | Value::List(t), s)] => t.iter().map(|v| (v.clone(), *s)).collect(),
        other => other.to_vec(),
    };
    let mut shape = Vec::with_capacity(items.len());
    for (v, s) in items {
        match v {
            Value::Int(n) if n >= 0 => shape.push(n as usize),
            Value::Int(n) => {
                return Err(Diag::new(
                    "flx::shape::negative",
                    format!("a shape cannot have a negative length ({n})"),
                )
                .at(s))
            }
            other => {
                return Err(Diag::new(
                    "flx::type::argument",
                    format!("a shape is made of Ints, found {}", other.describe()),
                )
                .at(s)
                .help("write `zeros(3, 4)` or `zeros(shape(X))`"))
            }
        }
    }
    check_size(&shape, a.call)?;
    Ok(shape)
}

fn filled(a: &mut Args, x: f64) -> R {
    let shape = shape_arg(a)?;
    Ok(Value::tensor(ArrayD::from_elem(IxDyn(&shape), x)))
}

fn full(_: &mut Interp, a: &mut Args) -> R {
    let shape: Vec<usize> = match &a.vals[0] {
        Value::Int(n) if *n >= 0 => vec![*n as usize],
        Value::Tuple(t) | Value::List(t) => t
            .iter()
            .map(|v| match v {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(a.expected(0, "an Int or a tuple of Ints")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(a.expected(0, "an Int or a tuple of Ints")),
    };
    check_size(&shape, a.call)?;
    let d = IxDyn(&shape);
    Ok(match &a.vals[1] {
        Value::Int(i) => Value::from(ArrayD::from_elem(d, *i)),
        Value::Bool(b) => Value::from(ArrayD::from_elem(d, *b)),
        _ => Value::tensor(ArrayD::from_elem(d, a.f64(1)?)),
    })
}

fn eye(_: &mut Interp, a: &mut Args) -> R {
    let n = a.count(0)?;
    let m = match a.opt_int(1)? {
        None => n,
        Some(_) => a.count(1)?,
    };
    check_size(&[n, m], a.call)?;
    let mut e = Array2::<f64>::zeros((n, m));
    for i in 0..n.min(m) {
        e[(i, i)] = 1.0;
    }
    Ok(Value::tensor(e.into_dyn()))
}

fn random(interp: &mut Interp, a: &mut Args, normal: bool) -> R {
    let shape = shape_arg(a)?;
    let n: usize = shape.iter().product();
    let mut local;
    let rng: &mut ChaCha8Rng = match a.opt_int(0)? {
        Some(seed) => {
            local = ChaCha8Rng::seed_from_u64(seed as u64);
            &mut local
        }
        None => &mut interp.run.rng,
    };
    let data: Vec<f64> = if normal {
        (0..n).map(|_| rng.sample(StandardNormal)).collect()
    } else {
        (0..n).map(|_| rng.random::<f64>()).collect()
    };
    Ok(Value::tensor(
        ArrayD::from_shape_vec(IxDyn(&shape), data).expect("shape matches length"),
    ))
}

fn linspace(_: &mut Interp, a: &mut Args) -> R {
    let (lo, hi, n) = (a.f64(0)?, a.f64(1)?, a.count(2)?);
    check_size(&[n], a.call)?;
    let v = if n == 1 {
        Array1::from_elem(1, lo)
    } else {
        Array1::from_shape_fn(n, |i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
    };
    Ok(Value::tensor(v.into_dyn()))
}

fn arange(_: &mut Interp, a: &mut Args) -> R {
    if let (Value::Int(x), y @ (Value::Int(_) | Value::None), Value::Int(step)) =
        (&a.vals[0], &a.vals[1], &a.vals[2])
    {
        // As NumPy: Int arguments give an Int tensor.
        let (start, stop) = match y {
            Value::Int(y) => (*x, *y),
            _ => (0, *x),
        };
        if *step == 0 {
            return Err(a.error(2, "flx::value::step", "`arange` needs a non-zero step"));
        }
        let n = (stop as i128 - start as i128 + *step as i128 - step.signum() as i128)
            .div_euclid(*step as i128)
            .max(0);
        if n > crate::tensor::max_elements() as i128 {
            return Err(Diag::new(
                "flx::shape::too_large",
                "`arange` would make too many values",
            )
            .at(a.call));
        }
        return Ok(Value::from(Array1::from_shape_fn(n as usize, |i| {
            start + step * i as i64
        })));
    }
    let (start, stop) = match a.opt_f64(1)? {
        Some(stop) => (a.f64(0)?, stop),
        None => (0.0, a.f64(0)?),
    };
    let step = a.f64(2)?;
    if step == 0.0 || !step.is_finite() {
        return Err(a.error(
            2,
            "flx::value::step",
            "`arange` needs a non-zero, finite step",
        ));
    }
    let n = ((stop - start) / step).ceil().max(0.0);
    if !n.is_finite() || n > crate::tensor::max_elements() as f64 {
        return Err(Diag::new(
            "flx::shape::too_large",
            "`arange` would make too many values",
        )
        .at(a.call));
    }
    Ok(Value::tensor(
        Array1::from_shape_fn(n as usize, |i| start + step * i as f64).into_dyn(),
    ))
}

fn onehot(_: &mut Interp, a: &mut Args) -> R {
    let labels = a.tensor(0)?;
    let n = a.count(1)?;
    if labels.ndim() != 1 {
        return Err(a.error(
            0,
            "flx::shape::onehot",
            format!(
                "`onehot` needs a 1-D tensor of labels, found shape {}",
                shape_str(labels.shape())
            ),
        ));
    }
    check_size(&[labels.len(), n], a.call)?;
    let mut out = Array2::<f64>::zeros((labels.len(), n));
    for (i, &l) in labels.iter().enumerate() {
        if l.fract() != 0.0 || l < 0.0 || l >= n as f64 {
            return Err(a.error(
                0,
                "flx::value::label",
                format!("label {l} at position {i} is not an Int in 0..{n}"),
            ));
        }
        out[(i, l as usize)] = 1.0;
    }
    Ok(Value::tensor(out.into_dyn()))
}

/// The tensors of a variadic call, or of one list argument, in their
/// common dtype (the largest; numbers join as 0-d tensors would not).
fn tensor_list(a: &Args) -> Result<Common, Diag> {
    let items: Vec<(Value, crate::diag::Span)> = match a.rest.as_slice() {
        [(Value::List(t) | Value::Tuple(t), s)] => t.iter().map(|v| (v.clone(), *s)).collect(),
        other => other.to_vec(),
    };
    if items.is_empty() {
        return Err(Diag::new(
            "flx::call::missing_arg",
            format!("`{}` needs at least one tensor", a.name),
        )
        .at(a.call));
    }
    if let Some((other, s)) = items.iter().find(|(v, _)| !v.is_tensor()) {
        return Err(Diag::new(
            "flx::type::argument",
            format!("`{}` joins tensors, found {}", a.name, other.describe()),
        )
        .at(*s));
    }
    let values: Vec<Value> = items.into_iter().map(|(v, _)| v).collect();
    Ok(Common::of(&values))
}

fn join<T: Elem>(a: &Args, tensors: &[ArrayViewD<T>], axis: usize) -> R {
    let shapes: Vec<String> = tensors.iter().map(|t| shape_str(t.shape())).collect();
    if tensors.iter().any(|t| t.ndim() <= axis) {
        return Err(Diag::new(
            "flx::index::axis",
            format!(
                "axis {axis} is out of range for shapes {}",
                shapes.join(", ")
            ),
        )
        .at(a.call));
    }
    ndarray::concatenate(Axis(axis), tensors)
        .map(Value::from)
        .map_err(|_| {
            Diag::new(
                "flx::shape::concat",
                format!("cannot join shapes {} along axis {axis}", shapes.join(", ")),
            )
            .at(a.call)
            .help("all lengths except along the joining axis must agree")
        })
}

fn concat(_: &mut Interp, a: &mut Args) -> R {
    let ts = tensor_list(a)?;
    each_common!(&ts, ts => {
        let views: Vec<ArrayViewD<_>> = ts.iter().map(|t| t.view()).collect();
        let ndim = views[0].ndim();
        let axis = a.axis(0, ndim.max(1))?.unwrap_or(0);
        join(a, &views, axis)
    })
}

fn stack_like(a: &mut Args, horizontal: bool) -> R {
    let ts = tensor_list(a)?;
    each_common!(&ts, ts => {
        let all_1d = ts.iter().all(|t| t.ndim() == 1);
        let views: Vec<ArrayViewD<_>> = ts
            .iter()
            .map(|t| {
                if !horizontal && t.ndim() == 1 {
                    t.view().insert_axis(Axis(0))
                } else {
                    t.view()
                }
            })
            .collect();
        join(a, &views, if horizontal && !all_1d { 1 } else { 0 })
    })
}

fn reshape(_: &mut Interp, a: &mut Args) -> R {
    let v = a.any_tensor(0)?;
    let from = v.shape().expect("a tensor").to_vec();
    let len: usize = from.iter().product();
    let items: Vec<(Value, crate::diag::Span)> = match a.rest.as_slice() {
        [(Value::Tuple(t) | Value::List(t), s)] => t.iter().map(|v| (v.clone(), *s)).collect(),
        other => other.to_vec(),
    };
    let mut dims: Vec<i64> = Vec::new();
    for (v, s) in &items {
        match v {
            Value::Int(n) if *n >= -1 => dims.push(*n),
            other => {
                return Err(Diag::new(
                    "flx::type::argument",
                    format!(
                        "a shape is made of Ints (or one -1), found {}",
                        other.describe()
                    ),
                )
                .at(*s))
            }
        }
    }
    let inferred = dims.iter().filter(|&&d| d == -1).count();
    let known: usize = dims
        .iter()
        .filter(|&&d| d >= 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d as usize))
        .unwrap_or(usize::MAX);
    let bad = || {
        Diag::new(
            "flx::shape::reshape",
            format!(
                "cannot reshape {} elements (shape {}) into {:?}",
                len,
                shape_str(&from),
                dims
            ),
        )
        .at(a.call)
    };
    if inferred > 1 {
        return Err(bad().help("only one length may be -1"));
    }
    let shape: Vec<usize> = if inferred == 1 {
        if known == 0 || !len.is_multiple_of(known) {
            return Err(bad());
        }
        dims.iter()
            .map(|&d| if d == -1 { len / known } else { d as usize })
            .collect()
    } else {
        dims.iter().map(|&d| d as usize).collect()
    };
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(len) {
        return Err(bad());
    }
    super::check_axes(shape.len(), a.call)?;
    // A view of the same storage where the strides allow (as NumPy), else a copy.
    any_tensor!(&v, t => (**t)
        .clone()
        .into_shape_clone(IxDyn(&shape))
        .map(Elem::tensor)
        .map_err(|_| bad()))
    .expect("a tensor")
}

fn axis_len(a: &mut Args, axis: usize) -> R {
    let t = a.shape(0)?;
    if t.len() <= axis {
        return Err(a.error(
            0,
            "flx::index::axis",
            format!(
                "`{}` needs at least {} axes, found shape {}",
                a.name,
                axis + 1,
                shape_str(&t)
            ),
        ));
    }
    Ok(Value::Int(t[axis] as i64))
}

fn len(_: &mut Interp, a: &mut Args) -> R {
    Ok(Value::Int(match &a.vals[0] {
        v if v.shape().is_some_and(|s| !s.is_empty()) => v.shape().expect("a tensor")[0] as i64,
        Value::List(l) | Value::Tuple(l) => l.len() as i64,
        Value::Str(s) => s.chars().count() as i64,
        Value::Record(r) => r.fields.len() as i64,
        Value::Range(r) => r.1.saturating_sub(r.0).max(0),
        _ => {
            return Err(a.expected(
                0,
                "a tensor with at least one axis, a list, a tuple, a string, a record or a range",
            ))
        }
    }))
}

fn diag(_: &mut Interp, a: &mut Args) -> R {
    let t = a.tensor(0)?;
    match t.ndim() {
        1 => {
            check_size(&[t.len(), t.len()], a.call)?;
            let v = t.view().into_dimensionality::<ndarray::Ix1>().expect("1-d");
            Ok(Value::tensor(Array2::from_diag(&v).into_dyn()))
        }
        2 => {
            let m = t.view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
            Ok(Value::tensor(m.diag().to_owned().into_dyn()))
        }
        _ => Err(a.error(
            0,
            "flx::shape::diag",
            format!(
                "`diag` takes a vector or a matrix, found shape {}",
                shape_str(t.shape())
            ),
        )),
    }
}

fn outer(_: &mut Interp, a: &mut Args) -> R {
    let (x, y) = (a.tensor(0)?, a.tensor(1)?);
    check_size(&[x.len(), y.len()], a.call)?;
    let xs: Vec<f64> = x.iter().copied().collect();
    let ys: Vec<f64> = y.iter().copied().collect();
    Ok(Value::tensor(
        Array2::from_shape_fn((xs.len(), ys.len()), |(i, j)| xs[i] * ys[j]).into_dyn(),
    ))
}

fn where_(_: &mut Interp, a: &mut Args) -> R {
    if let Value::Bool(c) = a.vals[0] {
        return Ok(a.vals[if c { 1 } else { 2 }].clone());
    }
    let c = match &a.vals[0] {
        Value::BoolTensor(c) => c.view().into_owned(),
        _ => a.tensor(0)?.mapv(|x| x != 0.0),
    };
    // The branches' common dtype, as NumPy's `where`.
    let common = a.vals[1].dtype().max(a.vals[2].dtype());
    let numbers = a.vals[1].dtype().is_some() && a.vals[2].dtype().is_some();
    if numbers && common == Some(Dtype::Bool) {
        let bools = |v: &Value| match v {
            Value::BoolTensor(t) => t.view().into_owned(),
            Value::Bool(b) => ndarray::arr0(*b).into_dyn(),
            _ => unreachable!("Bools"),
        };
        return choose(a, &c, &bools(&a.vals[1]), &bools(&a.vals[2]));
    }
    if numbers && common == Some(Dtype::Int) {
        let (x, y) = (
            crate::eval::dtype::ints(&a.vals[1]).expect("Ints"),
            crate::eval::dtype::ints(&a.vals[2]).expect("Ints"),
        );
        return choose(a, &c, &x, &y);
    }
    let (x, y) = (a.tensor(1)?, a.tensor(2)?);
    choose(a, &c, &x, &y)
}

/// `x` where `c`, else `y`, broadcast.
fn choose<T: Elem, S1, S2, S3>(
    a: &Args,
    c: &ndarray::ArrayBase<S1, IxDyn>,
    x: &ndarray::ArrayBase<S2, IxDyn>,
    y: &ndarray::ArrayBase<S3, IxDyn>,
) -> R
where
    S1: ndarray::Data<Elem = bool>,
    S2: ndarray::Data<Elem = T>,
    S3: ndarray::Data<Elem = T>,
{
    let shape = broadcast_shape(c.shape(), x.shape())
        .and_then(|s| broadcast_shape(&s, y.shape()))
        .ok_or_else(|| {
            Diag::new(
                "flx::shape::broadcast",
                format!(
                    "cannot broadcast shapes {}, {} and {}",
                    shape_str(c.shape()),
                    shape_str(x.shape()),
                    shape_str(y.shape())
                ),
            )
            .at(a.call)
        })?;
    check_size(&shape, a.call)?;
    let d = IxDyn(&shape);
    let (cv, xv, yv) = (
        c.broadcast(d.clone()).expect("checked"),
        x.broadcast(d.clone()).expect("checked"),
        y.broadcast(d).expect("checked"),
    );
    Ok(Value::from(
        Zip::from(&cv)
            .and(&xv)
            .and(&yv)
            .map_collect(|&c, &x, &y| if c { x } else { y }),
    ))
}

fn clip(_: &mut Interp, a: &mut Args) -> R {
    let lo = a.opt_f64(1)?.unwrap_or(f64::NEG_INFINITY);
    let hi = a.opt_f64(2)?.unwrap_or(f64::INFINITY);
    if lo > hi {
        return Err(Diag::new(
            "flx::value::clip",
            format!("`clip` needs lo <= hi, found {lo} > {hi}"),
        )
        .at(a.call));
    }
    let int_bound = |i: usize| matches!(a.vals[i], Value::Int(_) | Value::None);
    match &a.vals[0] {
        // Ints clipped by Int bounds stay Ints.
        Value::Int(x) if int_bound(1) && int_bound(2) => {
            Ok(Value::Int((*x as f64).clamp(lo, hi) as i64))
        }
        Value::IntTensor(t) if int_bound(1) && int_bound(2) => {
            let (lo, hi) = (
                a.opt_int(1)?.unwrap_or(i64::MIN),
                a.opt_int(2)?.unwrap_or(i64::MAX),
            );
            Ok(Value::from(t.mapv(|x| x.clamp(lo, hi))))
        }
        Value::Int(_) | Value::Float(_) => Ok(Value::Float(a.f64(0)?.clamp(lo, hi))),
        v if v.is_tensor() => Ok(Value::tensor(a.tensor(0)?.mapv(|x| x.clamp(lo, hi)))),
        _ => Err(a.expected(0, "a number or a Tensor")),
    }
}

/// Apply an elementwise primitive to a number (giving a Float) or to each
/// element of a tensor.
pub fn map(a: &Args, f: Unary) -> R {
    match &a.vals[0] {
        v if v.is_tensor() || matches!(v, Value::Int(_) | Value::Float(_)) => {
            crate::eval::ops::map_unary(f, v).map_err(|d| d.at(a.call))
        }
        _ => Err(a.expected(0, "a number or a Tensor")),
    }
}

/// `f` of every element; contiguous data goes through `apply_slice`.
pub fn apply_unary<S: ndarray::Data<Elem = f64>>(
    f: Unary,
    t: &crate::tensor::Floats<S>,
) -> ArrayD<f64> {
    match t.as_slice() {
        Some(x) => {
            use rayon::prelude::*;
            let mut out = vec![0.0; x.len()];
            // Elementwise, so every split gives the same elements: in
            // parallel pieces when it is large.
            const PIECE: usize = 1 << 15;
            if x.len() >= 4 * PIECE {
                out.par_chunks_mut(PIECE)
                    .zip(x.par_chunks(PIECE))
                    .for_each(|(o, x)| f.apply_slice(x, o));
            } else {
                f.apply_slice(x, &mut out);
            }
            ArrayD::from_shape_vec(t.raw_dim(), out).expect("one per element")
        }
        None => t.mapv(|x| f.apply(x)),
    }
}

fn pow(_: &mut Interp, a: &mut Args) -> R {
    crate::eval::ops::binary(
        crate::syntax::ast::BinOp::Pow,
        a.vals[0].clone(),
        a.vals[1].clone(),
        a.spans[0],
        a.spans[1],
    )
}

pub(super) fn scalar_or_tensor(t: impl Into<Tensor>) -> Value {
    let t = t.into();
    if t.ndim() == 0 {
        Value::Float(t[[]])
    } else {
        Value::tensor(t)
    }
}

fn reduction(a: &mut Args, r: Reduce) -> R {
    if r == Reduce::Sum {
        if let Some(v) = int_reduction(a, r)? {
            return Ok(v);
        }
    }
    let t = a.tensor(0)?;
    let axis = a.axis(1, t.ndim())?;
    if t.is_empty() && !r.empty_ok() {
        return Err(a.error(
            0,
            "flx::value::empty",
            format!("`{}` of an empty tensor", r.name()),
        ));
    }
    if let Some(ax) = axis {
        // `sum(zeros(0, n), axis: 0)` has n elements, from none.
        let mut out = t.shape().to_vec();
        out.remove(ax);
        check_size(&out, a.call)?;
    }
    Ok(scalar_or_tensor(reduce(&t, axis, |v| r.apply(v))))
}

/// `max`/`min`: the elementwise primitive of two arguments, or the
/// reduction of one (along `axis:`).
fn extreme(a: &mut Args, largest: bool) -> R {
    let (pair, lane) = if largest {
        (Binary::Max, Reduce::Max)
    } else {
        (Binary::Min, Reduce::Min)
    };
    if a.is_none(1) {
        let t = a.tensor(0)?;
        let axis = a.axis(2, t.ndim())?;
        if t.is_empty() {
            return Err(a.error(
                0,
                "flx::value::empty",
                format!("`{}` of an empty tensor", a.name),
            ));
        }
        if let Some(v) = int_reduction(a, lane)? {
            return Ok(v);
        }
        return Ok(scalar_or_tensor(reduce(&t, axis, |v| lane.apply(v))));
    }
    if !a.is_none(2) {
        return Err(a.error(
            2,
            "flx::call::conflict",
            format!("`{}(x, y)` is elementwise and takes no `axis:`", a.name),
        ));
    }
    let operand =
        |v: &Value| v.is_tensor() || matches!(v, Value::Int(_) | Value::Float(_) | Value::Bool(_));
    if !operand(&a.vals[0]) {
        return Err(a.expected(0, "a number or a Tensor"));
    }
    if !operand(&a.vals[1]) {
        return Err(a.expected(1, "a number or a Tensor"));
    }
    // The elementwise primitive, with the operators' dtype rules (`min(3, 5)` is 3).
    crate::eval::ops::apply_binary(pair, &a.vals[0], &a.vals[1], a.spans[0], a.spans[1])
}

/// `sum`, `max` or `min` of an Int or Bool tensor, with NumPy's dtypes: the
/// sum of either is an Int (checked), the extremes keep the dtype. `None`
/// for Float operands.
fn int_reduction(a: &Args, r: Reduce) -> Result<Option<Value>, Diag> {
    let keep_bool = r != Reduce::Sum;
    let axis_at = if r == Reduce::Sum { 1 } else { 2 };
    int_lanes(a, axis_at, keep_bool, r == Reduce::Sum, |v| match r {
        Reduce::Sum => v.iter().try_fold(0i64, |s, &x| s.checked_add(x)),
        Reduce::Max => v.iter().copied().max(),
        _ => v.iter().copied().min(),
    })
}

/// An Int or Bool tensor reduced by `lane` (`None`: an overflow), whole or
/// along the axis argument `axis_at`; a Bool result stays Bool where
/// `keep_bool`. `None` for Float operands.
pub(super) fn int_lanes(
    a: &Args,
    axis_at: usize,
    keep_bool: bool,
    empty_ok: bool,
    lane: impl Fn(ndarray::ArrayViewD<i64>) -> Option<i64>,
) -> Result<Option<Value>, Diag> {
    let dt = a.vals[0].dtype();
    if !matches!(dt, Some(Dtype::Int | Dtype::Bool)) || !a.vals[0].is_tensor() {
        return Ok(None);
    }
    let x = crate::eval::dtype::ints(&a.vals[0]).expect("Ints");
    let axis = a.axis(axis_at, x.ndim())?;
    if x.is_empty() && !empty_ok {
        return Err(a.error(
            0,
            "flx::value::empty",
            format!("`{}` of an empty tensor", a.name),
        ));
    }
    let keep_bool = keep_bool && dt == Some(Dtype::Bool);
    let out = match axis {
        None => {
            let v = lane(x.view()).ok_or_else(|| a.overflow())?;
            return Ok(Some(if keep_bool {
                Value::Bool(v != 0)
            } else {
                Value::Int(v)
            }));
        }
        Some(ax) => {
            let mut bad = false;
            let out = x.map_axis(Axis(ax), |l| {
                lane(l.into_dyn()).unwrap_or_else(|| {
                    bad = true;
                    0
                })
            });
            if bad {
                return Err(a.overflow());
            }
            out
        }
    };
    Ok(Some(if keep_bool {
        Value::from(out.mapv(|v| v != 0))
    } else {
        Value::from(out)
    }))
}

fn arg_extreme(a: &mut Args, largest: bool) -> R {
    let t = a.tensor(0)?;
    let axis = a.axis(1, t.ndim())?;
    if t.is_empty() {
        return Err(a.error(
            0,
            "flx::value::empty",
            format!("`{}` of an empty tensor", a.name),
        ));
    }
    let best = |v: ArrayViewD<f64>| {
        let mut bi = 0;
        let mut bv = f64::NAN;
        for (i, &x) in v.iter().enumerate() {
            if x.is_nan() {
                return i as i64;
            }
            if i == 0 || (largest && x > bv) || (!largest && x < bv) {
                bi = i;
                bv = x;
            }
        }
        bi as i64
    };
    match axis {
        None => Ok(Value::Int(best(t.view()))),
        Some(ax) => Ok(Value::from(
            t.map_axis(Axis(ax), |lane| best(lane.into_dyn())),
        )),
    }
}

fn truth(a: &mut Args, any: bool) -> R {
    if let Value::Bool(b) = a.vals[0] {
        return Ok(Value::Bool(b));
    }
    let t = a.tensor(0)?;
    let axis = a.axis(1, t.ndim())?;
    let f = |v: ArrayViewD<f64>| {
        if any {
            v.iter().any(|&x| x != 0.0)
        } else {
            v.iter().all(|&x| x != 0.0)
        }
    };
    match axis {
        None => Ok(Value::Bool(f(t.view()))),
        Some(ax) => Ok(Value::from(t.map_axis(Axis(ax), |lane| f(lane.into_dyn())))),
    }
}

fn argsort(_: &mut Interp, a: &mut Args) -> R {
    let t = a.tensor(0)?;
    if t.ndim() != 1 {
        return Err(a.error(
            0,
            "flx::shape::not_vector",
            format!(
                "`argsort` needs a vector, found shape {}",
                shape_str(t.shape())
            ),
        ));
    }
    let mut idx: Vec<usize> = (0..t.len()).collect();
    idx.sort_by(|&i, &j| t[i].total_cmp(&t[j]).then(i.cmp(&j)));
    // total_cmp puts -nan first; NumPy puts every nan last.
    idx.sort_by_key(|&i| t[i].is_nan());
    Ok(Value::from(Array1::from_iter(
        idx.into_iter().map(|i| i as i64),
    )))
}
