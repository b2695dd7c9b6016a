//! Operators and literals over values. Arithmetic follows Python for
//! numbers (Int stays Int except under `/`; `%` takes the divisor's sign;
//! Int overflow is an error, never a wrap) and NumPy for tensors
//! (broadcasting; dtypes by `prim`'s rules: comparisons give Bool tensors,
//! `/` Floats, Ints stay Ints, still never wrapping).

use std::rc::Rc;

use ndarray::{ArcArray, Array1, ArrayBase, ArrayD, Axis, IxDyn};

use super::dtype;
use super::value::{Elem, Tensor, Value};
use crate::diag::{Diag, Span};
use crate::format::shape_str;
use crate::prim::{Binary, Dtype, IntError, Unary};
use crate::syntax::ast::{BinOp, UnOp};
use crate::tensor::{self, ShapeError};

pub fn unary(op: UnOp, v: Value) -> Result<Value, Diag> {
    match (op, v) {
        // The span comes from the caller (`or_at`).
        (op, v @ Value::Traced(_)) => super::traced::unary(op, v, Span::default()),
        (UnOp::Neg, Value::Int(i)) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
        (UnOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
        (UnOp::Neg, v @ (Value::Tensor(_) | Value::IntTensor(_) | Value::BoolTensor(_))) => {
            map_unary(Unary::Neg, &v)
        }
        (UnOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (UnOp::Not, Value::BoolTensor(t)) => Ok(Value::from(t.mapv(|b| !b))),
        (op, v) => Err(Diag::new(
            "flx::type::operator",
            format!(
                "`{}` does not apply to {}",
                if op == UnOp::Neg { "-" } else { "not" },
                v.describe()
            ),
        )
        .help(if op == UnOp::Not && v.is_tensor() {
            "`not` is elementwise on Bool tensors; compare first, e.g. `not (x > 0)`"
        } else {
            "`not` takes a Bool, `-` a number or tensor"
        })),
    }
}

/// An elementwise primitive of a tensor or number of any dtype, with the
/// dtype `prim` gives it: Ints stay Ints where the primitive keeps them.
pub fn map_unary(u: Unary, v: &Value) -> Result<Value, Diag> {
    let from = v.dtype().expect("a tensor or number");
    match (u.result_dtype(from), u.int_function()) {
        (Dtype::Int, Some(f)) => {
            let x = dtype::ints(v).expect("an Int or Bool operand");
            let out = checked(x.view(), f, u.name())?;
            Ok(match v {
                Value::Int(_) | Value::Bool(_) => Value::Int(out[[]]),
                _ => Value::from(out),
            })
        }
        _ => {
            let x = dtype::floats(v).expect("a number or tensor");
            let out = crate::eval::builtins::tensor::apply_unary(u, &x.view());
            Ok(if v.is_number() {
                Value::Float(out[[]])
            } else {
                Value::from(out)
            })
        }
    }
}

/// `f` of every element, stopping at the first Int error.
fn checked<A: Copy>(
    x: ndarray::ArrayViewD<A>,
    f: impl Fn(A) -> Result<i64, IntError>,
    name: &str,
) -> Result<ArrayD<i64>, Diag> {
    let mut err = None;
    let out = x.mapv(|a| {
        f(a).unwrap_or_else(|e| {
            err.get_or_insert(e);
            0
        })
    });
    match err {
        Some(e) => Err(int_error(e, name)),
        None => Ok(out),
    }
}

fn overflow() -> Diag {
    Diag::new("flx::math::overflow", "integer overflow")
        .help("Int is 64-bit; convert to Float with `float(x)` for larger values")
}

fn int_error(e: IntError, op: &str) -> Diag {
    match e {
        IntError::Overflow => {
            Diag::new("flx::math::overflow", format!("integer overflow in `{op}`"))
                .help("Int is 64-bit; convert to Float with `float(x)` for larger values")
        }
        IntError::ZeroDivision => Diag::new(
            "flx::math::zero_division",
            format!("integer `{op}` by zero"),
        )
        .help("Floats divide by zero to inf or nan: `float(x)`"),
        IntError::NegativePower => Diag::new(
            "flx::math::negative_power",
            "an Int tensor to a negative Int power is not an Int (as in NumPy)",
        )
        .help("make the base Float: `float(x) ^ p`"),
    }
}

/// Elementwise `a op b` on Float tensors with broadcasting; the four
/// arithmetic operators are inlined, since a call through a function
/// pointer per element costs several times the arithmetic.
fn zip_op<S, T>(
    op: Binary,
    a: &ArrayBase<S, IxDyn>,
    b: &ArrayBase<T, IxDyn>,
) -> Result<ArrayD<f64>, ShapeError>
where
    S: ndarray::Data<Elem = f64>,
    T: ndarray::Data<Elem = f64>,
{
    match op {
        Binary::Add => tensor::zip_with(a, b, |x, y| x + y),
        Binary::Sub => tensor::zip_with(a, b, |x, y| x - y),
        Binary::Mul => tensor::zip_with(a, b, |x, y| x * y),
        Binary::Div => tensor::zip_with(a, b, |x, y| x / y),
        _ => tensor::zip_with(a, b, op.function()),
    }
}

/// A Float tensor `op` a number, the inlined operators as in `zip_op`.
fn map_op(op: Binary, a: &Tensor, y: f64, swap: bool) -> ArrayD<f64> {
    macro_rules! each {
        ($f:expr) => {
            if swap {
                a.mapv(|x| $f(y, x))
            } else {
                a.mapv(|x| $f(x, y))
            }
        };
    }
    match op {
        Binary::Add => each!(|x, y| x + y),
        Binary::Sub => each!(|x, y| x - y),
        Binary::Mul => each!(|x, y| x * y),
        Binary::Div => each!(|x, y| x / y),
        _ => each!(op.function()),
    }
}

/// A comparison of two Float or two Int arrays, as Bools.
fn compare<A: Copy + PartialOrd, S, T>(
    op: Binary,
    a: &ArrayBase<S, IxDyn>,
    b: &ArrayBase<T, IxDyn>,
) -> Result<ArrayD<bool>, ShapeError>
where
    S: ndarray::Data<Elem = A>,
    T: ndarray::Data<Elem = A>,
{
    match op {
        Binary::Eq => tensor::zip_with(a, b, |x, y| x == y),
        Binary::Ne => tensor::zip_with(a, b, |x, y| x != y),
        Binary::Lt => tensor::zip_with(a, b, |x, y| x < y),
        Binary::Le => tensor::zip_with(a, b, |x, y| x <= y),
        Binary::Gt => tensor::zip_with(a, b, |x, y| x > y),
        Binary::Ge => tensor::zip_with(a, b, |x, y| x >= y),
        _ => unreachable!("a comparison"),
    }
}

/// Why an elementwise operation on tensors failed.
enum Failure {
    Shape(ShapeError),
    Int(IntError),
}

/// `l op r` for tensors and numbers of any dtype (at least one a tensor),
/// computed in the dtype `prim` says and given the dtype it says.
fn elementwise(op: Binary, l: &Value, r: &Value) -> Result<Value, Failure> {
    let (dl, dr) = (
        l.dtype().expect("an operand"),
        r.dtype().expect("an operand"),
    );
    let out = op.result_dtype(dl, dr);
    if op.compute_dtype(dl, dr) == Dtype::Float {
        if op.is_comparison() {
            let (a, b) = (dtype::floats(l).expect("a"), dtype::floats(r).expect("b"));
            return compare(op, &a, &b).map(Value::from).map_err(Failure::Shape);
        }
        let t = match (l, r) {
            (Value::Tensor(a), Value::Tensor(b)) => zip_op(op, &**a, &**b),
            (Value::Tensor(a), n) if n.is_number() => {
                Ok(map_op(op, a, n.as_f64().expect("a number"), false))
            }
            (n, Value::Tensor(b)) if n.is_number() => {
                Ok(map_op(op, b, n.as_f64().expect("a number"), true))
            }
            _ => zip_op(
                op,
                &dtype::floats(l).expect("a"),
                &dtype::floats(r).expect("b"),
            ),
        };
        return t.map(Value::from).map_err(Failure::Shape);
    }
    let (a, b) = (dtype::ints(l).expect("a"), dtype::ints(r).expect("b"));
    if op.is_comparison() {
        return compare(op, &a, &b).map(Value::from).map_err(Failure::Shape);
    }
    let t = int_zip(op, &a, &b)?;
    Ok(match out {
        // `max`/`min` of two Bools.
        Dtype::Bool => Value::from(t.mapv(|x| x != 0)),
        _ => Value::from(t),
    })
}

/// `a op b` on Int arrays with broadcasting, checked. `+ - *` are inlined
/// and branch-free (an overflow flag per element, tested once), with a
/// number operand mapped rather than broadcast, so that they vectorise.
fn int_zip(
    op: Binary,
    a: &ndarray::CowArray<i64, IxDyn>,
    b: &ndarray::CowArray<i64, IxDyn>,
) -> Result<ArrayD<i64>, Failure> {
    macro_rules! inline {
        ($f:ident) => {{
            let mut over = false;
            let t = match (a.ndim(), b.ndim()) {
                (_, 0) => {
                    let y = b[[]];
                    a.mapv(|x| {
                        let (r, o) = x.$f(y);
                        over |= o;
                        r
                    })
                }
                (0, _) => {
                    let x = a[[]];
                    b.mapv(|y| {
                        let (r, o) = x.$f(y);
                        over |= o;
                        r
                    })
                }
                _ => tensor::zip_with(a, b, |x, y| {
                    let (r, o) = x.$f(y);
                    over |= o;
                    r
                })
                .map_err(Failure::Shape)?,
            };
            if over {
                return Err(Failure::Int(IntError::Overflow));
            }
            Ok(t)
        }};
    }
    match op {
        Binary::Add => inline!(overflowing_add),
        Binary::Sub => inline!(overflowing_sub),
        Binary::Mul => inline!(overflowing_mul),
        _ => {
            let mut err = None;
            let t = tensor::zip_with(a, b, |x, y| {
                op.apply_int(x, y).unwrap_or_else(|e| {
                    err.get_or_insert(e);
                    0
                })
            })
            .map_err(Failure::Shape)?;
            match err {
                Some(e) => Err(Failure::Int(e)),
                None => Ok(t),
            }
        }
    }
}

/// `a @ b`: Floats by GEMM; two Int (or Bool) operands by checked Int
/// arithmetic, as NumPy keeps them Int.
fn matmul(l: &Value, r: &Value) -> Result<Value, Failure> {
    let t = match (l, r) {
        (Value::Tensor(a), Value::Tensor(b)) => tensor::matmul(&**a, &**b),
        _ if l.dtype().max(r.dtype()) == Some(Dtype::Float) => {
            tensor::matmul(&dtype::floats(l).expect("a"), &dtype::floats(r).expect("b"))
        }
        _ => {
            let (a, b) = (dtype::ints(l).expect("a"), dtype::ints(r).expect("b"));
            let out = tensor::int_matmul(&a, &b).map_err(|e| match e {
                Ok(s) => Failure::Shape(s),
                Err(e) => Failure::Int(e),
            })?;
            return Ok(if out.ndim() == 0 {
                Value::Int(out[[]])
            } else {
                Value::from(out)
            });
        }
    }
    .map_err(Failure::Shape)?;
    Ok(if t.ndim() == 0 {
        Value::Float(t[[]])
    } else {
        Value::from(t)
    })
}

/// Two Ints (or Bools, which count as Ints), by Python's rules: `/` and a
/// negative power give Floats, comparisons Bools.
fn int_op(op: Binary, a: i64, b: i64) -> Result<Value, Diag> {
    Ok(match op {
        Binary::Div => Value::Float(a as f64 / b as f64),
        Binary::Pow if b < 0 => Value::Float((a as f64).powf(b as f64)),
        _ if op.is_comparison() => Value::Bool(op.apply_int(a, b).expect("a comparison") != 0),
        _ => Value::Int(op.apply_int(a, b).map_err(|e| int_error(e, op.name()))?),
    })
}

fn scalar_result(op: Binary, x: f64) -> Value {
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
        (x, y) if x.is_tensor() && y.is_tensor() => {
            let (p, q) = (dtype::floats(x).expect("a"), dtype::floats(y).expect("b"));
            p.shape() == q.shape() && p.iter().zip(q.iter()).all(|(a, b)| a == b)
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
    let numeric = |v: &Value| v.is_tensor() || matches!(v, Value::Int(_) | Value::Float(_));
    let either_tensor = l.is_tensor() || r.is_tensor();
    match (&l, &r) {
        _ if op == BinOp::MatMul && l.is_tensor() && r.is_tensor() => matmul(&l, &r).map_err(|f| {
            failure(
                f,
                op.symbol(),
                [(&l, lspan), (&r, rspan)],
                "flx::shape::matmul",
                "`A @ B` needs cols(A) == rows(B)",
            )
        }),
        _ if numeric(&l) && numeric(&r)
            || either_tensor
                && (l.is_number() || l.is_tensor())
                && (r.is_number() || r.is_tensor()) =>
        {
            match op.elementwise() {
                Some(p) => apply_binary(p, &l, &r, lspan, rspan),
                None => Err(fail(&l, &r)),
            }
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
        (Value::Kernel(_), _) | (_, Value::Kernel(_)) if !matches!(op, BinOp::Eq | BinOp::Ne) => {
            super::kernel_values::combine(op, &l, &r, lspan, rspan)
                .unwrap_or_else(|| Err(fail(&l, &r)))
        }
        _ => match op {
            BinOp::Eq => Ok(Value::Bool(values_equal(&l, &r))),
            BinOp::Ne => Ok(Value::Bool(!values_equal(&l, &r))),
            BinOp::Add if matches!((&l, &r), (Value::List(_), Value::List(_))) => {
                let (Value::List(a), Value::List(b)) = (&l, &r) else {
                    unreachable!()
                };
                too_long(a.len() + b.len(), lspan.to(rspan))?;
                Ok(Value::list(a.iter().chain(b.iter()).cloned()))
            }
            _ => Err(fail(&l, &r)),
        },
    }
}

/// `l and r`, `l or r` where one side is a Bool tensor: elementwise, broadcast.
pub fn logic(op: BinOp, l: &Value, r: &Value, lspan: Span, rspan: Span) -> Result<Value, Diag> {
    let bools = |v: &Value| match v {
        Value::BoolTensor(t) => t.view().into_owned(),
        Value::Bool(b) => ndarray::arr0(*b).into_dyn(),
        _ => unreachable!("checked Bool operands"),
    };
    let (a, b) = (bools(l), bools(r));
    let out = if op == BinOp::And {
        tensor::zip_with(&a, &b, |x, y| x && y)
    } else {
        tensor::zip_with(&a, &b, |x, y| x || y)
    };
    out.map(Value::from).map_err(|e| {
        Diag::new("flx::shape::broadcast", e.0)
            .at(lspan)
            .label(l.describe())
            .with_label(rspan, r.describe())
    })
}

/// The diagnostic for a failed operation on tensors, at its operands.
fn failure(
    f: Failure,
    name: &str,
    [(l, lspan), (r, rspan)]: [(&Value, Span); 2],
    code: &'static str,
    help: &str,
) -> Diag {
    match f {
        Failure::Shape(e) => {
            let shape = |v: &Value| match v.shape() {
                Some(s) => format!("shape {}", shape_str(s)),
                None => v.describe(),
            };
            Diag::new(code, e.0)
                .at(lspan)
                .label(shape(l))
                .with_label(rspan, shape(r))
                .help(help.to_string())
        }
        Failure::Int(e) => int_error(e, name).at(lspan.to(rspan)),
    }
}

/// An elementwise primitive of two numbers or tensors (any dtypes), as the
/// operators and `max`/`min` apply it: numbers by Python's rules, tensors by
/// NumPy's.
pub fn apply_binary(
    p: Binary,
    l: &Value,
    r: &Value,
    lspan: Span,
    rspan: Span,
) -> Result<Value, Diag> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => int_op(p, *a, *b).map_err(|d| d.at(lspan.to(rspan))),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (a, b) = (l.as_f64().expect("number"), r.as_f64().expect("number"));
            Ok(scalar_result(p, p.apply(a, b)))
        }
        _ => elementwise(p, l, r).map_err(|f| {
            failure(f, p.name(), [(l, lspan), (r, rspan)], "flx::shape::broadcast", "shapes broadcast when, from the last axis back, each pair of lengths is equal or one of them is 1")
        }),
    }
}

/// Strings and lists (also while a comprehension builds one) obey the same size limit as tensors.
pub fn too_long(n: usize, span: Span) -> Result<(), Diag> {
    if n > tensor::max_elements() {
        return Err(Diag::new(
            "flx::value::too_long",
            format!("a string or list of {n} items is too long"),
        )
        .at(span));
    }
    Ok(())
}

/// A literal `[a, b, ...]`: numbers make a 1-D tensor of their largest
/// dtype, equal-shaped tensors stack along a new first axis (as `np.array`
/// does, promoted to the largest dtype), anything else is a list.
pub fn list_literal(vals: Vec<(Value, Span)>, span: Span) -> Result<Value, Diag> {
    if vals.iter().any(|(v, _)| matches!(v, Value::Traced(_))) {
        return super::traced::list_literal(vals, span);
    }
    if vals.is_empty() {
        return Ok(Value::list(Vec::new()));
    }
    let to = vals.iter().filter_map(|(v, _)| v.dtype()).max();
    if vals.iter().all(|(v, _)| v.is_number()) {
        return Ok(match to.expect("numbers") {
            Dtype::Float => Value::from(Array1::from_iter(
                vals.iter().map(|(v, _)| v.as_f64().expect("number")),
            )),
            Dtype::Int => Value::from(Array1::from_iter(vals.iter().map(|(v, _)| match v {
                Value::Int(i) => *i,
                Value::Bool(b) => *b as i64,
                _ => unreachable!("Ints and Bools"),
            }))),
            Dtype::Bool => Value::from(Array1::from_iter(
                vals.iter().map(|(v, _)| matches!(v, Value::Bool(true))),
            )),
        });
    }
    let Some(shape) = vals[0].0.shape().map(<[usize]>::to_vec) else {
        let list = Value::list(vals.into_iter().map(|(v, _)| v));
        list.check_depth(span)?;
        return Ok(list);
    };
    if let Some((v, s)) = vals
        .iter()
        .find(|(v, _)| v.shape() != Some(shape.as_slice()))
        .filter(|(v, _)| v.is_tensor() || v.is_number())
    {
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
    if !vals.iter().all(|(v, _)| v.is_tensor()) {
        let list = Value::list(vals.into_iter().map(|(v, _)| v));
        list.check_depth(span)?;
        return Ok(list);
    }
    fn stack<T: Elem>(parts: Vec<ArcArray<T, IxDyn>>, span: Span) -> Result<Value, Diag> {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::stack(Axis(0), &views)
            .map(Value::from)
            .map_err(|e| Diag::new("flx::shape::stack", e.to_string()).at(span))
    }
    super::builtins::check_axes(shape.len() + 1, span)?;
    let items: Vec<Value> = vals.into_iter().map(|(v, _)| v).collect();
    dtype::each_common!(dtype::Common::of(&items), ts => stack(ts, span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> Span {
        Span::default()
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
    fn tensor_arithmetic_follows_numpy_dtypes() {
        let b = |op, l, r| binary(op, l, r, sp(), sp()).unwrap();
        let ints = || Value::from(ndarray::array![-7i64, 7]);
        // np.array([-7, 7]) // 2 == [-4, 3]; % 3 == [2, 1]; / 2 is Float.
        assert!(
            matches!(b(BinOp::FloorDiv, ints(), Value::Int(2)), Value::IntTensor(t) if t.iter().eq([-4, 3].iter()))
        );
        assert!(
            matches!(b(BinOp::Rem, ints(), Value::Int(3)), Value::IntTensor(t) if t.iter().eq([2, 1].iter()))
        );
        assert!(matches!(
            b(BinOp::Div, ints(), Value::Int(2)),
            Value::Tensor(_)
        ));
        assert!(
            matches!(b(BinOp::Lt, ints(), Value::Float(0.5)), Value::BoolTensor(t) if t.iter().eq([true, false].iter()))
        );
        assert!(binary(
            BinOp::Mul,
            Value::from(ndarray::array![i64::MAX]),
            Value::Int(2),
            sp(),
            sp()
        )
        .is_err());
        assert!(binary(BinOp::FloorDiv, ints(), Value::Int(0), sp(), sp()).is_err());
    }
}
