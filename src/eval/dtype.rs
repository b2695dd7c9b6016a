//! Values as tensors of a dtype: the conversions that promotion, `float`,
//! `int` and `bool` make. The rules (which dtype an operation computes in and
//! gives) are `prim`'s; this module only moves elements between dtypes.

use std::rc::Rc;

use ndarray::{arr0, CowArray, IxDyn};

use super::value::{BoolTensor, Elem, IntTensor, Tensor, Value};
use crate::prim::Dtype;

/// The value's elements as Floats (Bools are 0 and 1): a tensor of any
/// dtype or a number as a 0-d array; a Float tensor is borrowed.
pub fn floats(v: &Value) -> Option<CowArray<'_, f64, IxDyn>> {
    Some(match v {
        Value::Tensor(t) => CowArray::from(t.view()),
        Value::IntTensor(t) => t.mapv(|x| x as f64).into(),
        Value::BoolTensor(t) => t.mapv(bool::to_f64).into(),
        v => arr0(number(v)?.0).into_dyn().into(),
    })
}

/// The value's elements as Ints: an Int or Bool tensor or number (a Float is
/// not an Int: the caller has chosen the dtype by `prim`'s rules).
pub fn ints(v: &Value) -> Option<CowArray<'_, i64, IxDyn>> {
    Some(match v {
        Value::IntTensor(t) => CowArray::from(t.view()),
        Value::BoolTensor(t) => t.mapv(|b| b as i64).into(),
        Value::Int(i) => arr0(*i).into_dyn().into(),
        Value::Bool(b) => arr0(*b as i64).into_dyn().into(),
        _ => return None,
    })
}

/// A number as a Float, with its dtype.
fn number(v: &Value) -> Option<(f64, Dtype)> {
    match v {
        Value::Float(f) => Some((*f, Dtype::Float)),
        Value::Int(i) => Some((*i as f64, Dtype::Int)),
        Value::Bool(b) => Some((*b as u8 as f64, Dtype::Bool)),
        _ => None,
    }
}

/// A tensor (any dtype) as a Float tensor; a Float tensor is shared, not copied.
pub fn float_tensor(v: &Value) -> Option<Rc<Tensor>> {
    match v {
        Value::Tensor(t) => Some(t.clone()),
        Value::IntTensor(_) | Value::BoolTensor(_) => Some(Rc::new(
            floats(v).expect("a tensor").into_owned().into_shared(),
        )),
        _ => None,
    }
}

/// Why a value cannot be converted to a dtype.
pub enum CastError {
    /// `int(nan)`, `int(inf)` or a Float beyond the range of Int.
    NotFinite(f64),
    NotANumber,
}

/// The value with elements of dtype `to`: `float` exactly (Bools as 0 and 1),
/// `int` toward zero, `bool` as `x != 0`. Tensors stay tensors, numbers numbers.
pub fn cast(v: &Value, to: Dtype) -> Result<Value, CastError> {
    if v.dtype() == Some(to) {
        return Ok(v.clone());
    }
    if let Some((x, _)) = number(v) {
        return Ok(match to {
            Dtype::Float => Value::Float(x),
            Dtype::Int => Value::Int(float_to_int(x)?),
            Dtype::Bool => Value::Bool(x != 0.0),
        });
    }
    let f = floats(v).ok_or(CastError::NotANumber)?;
    Ok(match to {
        Dtype::Float => Value::from(f.into_owned()),
        Dtype::Int => match v {
            Value::BoolTensor(t) => Value::from(t.mapv(|b| b as i64)),
            _ => {
                let mut bad = None;
                let out = f.mapv(|x| {
                    float_to_int(x).unwrap_or_else(|_| {
                        bad.get_or_insert(x);
                        0
                    })
                });
                if let Some(x) = bad {
                    return Err(CastError::NotFinite(x));
                }
                Value::from(out)
            }
        },
        Dtype::Bool => Value::from(f.mapv(|x| x != 0.0)),
    })
}

/// A Float toward zero, where it is an Int.
fn float_to_int(x: f64) -> Result<i64, CastError> {
    // i64::MAX as f64 is 2^63, itself out of range.
    if x.is_finite() && x.trunc() >= -(2f64.powi(63)) && x.trunc() < 2f64.powi(63) {
        Ok(x.trunc() as i64)
    } else {
        Err(CastError::NotFinite(x))
    }
}

/// Tensors (any dtypes) converted to their largest dtype, as NumPy joins them.
pub enum Common {
    Float(Vec<Tensor>),
    Int(Vec<IntTensor>),
    Bool(Vec<BoolTensor>),
}

impl Common {
    pub fn of(values: &[Value]) -> Common {
        match values.iter().filter_map(Value::dtype).max() {
            Some(Dtype::Bool) => Common::Bool(
                values
                    .iter()
                    .map(|v| (**bool::of_tensor(v).expect("Bool tensors")).clone())
                    .collect(),
            ),
            Some(Dtype::Int) => Common::Int(
                values
                    .iter()
                    .map(|v| ints(v).expect("Ints").into_owned().into_shared())
                    .collect(),
            ),
            _ => Common::Float(
                values
                    .iter()
                    .map(|v| (*float_tensor(v).expect("tensors")).clone())
                    .collect(),
            ),
        }
    }
}

/// `$body` (generic over `Elem`) with `$ts` bound to the tensors of a `Common`.
macro_rules! each_common {
    ($c:expr, $ts:ident => $body:expr) => {
        match $c {
            $crate::eval::dtype::Common::Float($ts) => $body,
            $crate::eval::dtype::Common::Int($ts) => $body,
            $crate::eval::dtype::Common::Bool($ts) => $body,
        }
    };
}
pub(crate) use each_common;
