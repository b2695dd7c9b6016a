//! Automatic differentiation: `grad`, `value_and_grad` and `jacobian` (the tape and the
//! traced values are `eval::traced` and `ad`).

use std::rc::Rc;

use super::{Args, Builtin};
use crate::diag::Diag;
use crate::eval::traced::{Derivative, DerivativeKind};
use crate::eval::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "grad",
        sig: "f",
        doc: "The gradient of `f`, a function with a Float result, with respect to its first argument (a Float, a tensor, or a tuple, list or record of them): `grad(f)(x)` is shaped like `x`. Reverse mode: one pass back through what `f` computed. It follows arithmetic, `@`, `.T`, indexing, assignment into tensors, tensor literals, and exp, log, sqrt, tanh, sigmoid, relu, abs, sin, cos, pow, sum, mean, var, std, norm, logsumexp, max and min of two arguments, clip, where, reshape, concat, hstack, vstack, diag, outer, trace, solve, mse, xent and hinge; anything else that depends on `x` is an error.",
        run: |_, a| derivative(a, DerivativeKind::Grad),
    },
    Builtin {
        name: "value_and_grad",
        sig: "f",
        doc: "Like `grad`, but `value_and_grad(f)(x)` returns `(f(x), gradient)` from one evaluation.",
        run: |_, a| derivative(a, DerivativeKind::ValueAndGrad),
    },
    Builtin {
        name: "jacobian",
        sig: "f",
        doc: "The Jacobian of `f` at a Float or tensor `x`: `jacobian(f)(x)` has shape `shape(f(x)) + shape(x)`, entry [i, j] the derivative of output i with respect to input j. One reverse pass per output element; follows what `grad` follows.",
        run: |_, a| derivative(a, DerivativeKind::Jacobian),
    },
];

fn derivative(a: &mut Args, kind: DerivativeKind) -> Result<Value, Diag> {
    let f = a.vals[0].clone();
    if !matches!(f, Value::Func(_) | Value::Builtin(_) | Value::Derivative(_)) {
        return Err(a.error(
            0,
            "flx::type::call",
            format!("`{}` takes a function, not {}", a.name, f.describe()),
        ));
    }
    Ok(Value::Derivative(Rc::new(Derivative { f, kind })))
}
