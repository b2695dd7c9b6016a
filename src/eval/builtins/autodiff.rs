//! Automatic differentiation: `grad`, `value_and_grad` and `jacobian` (the tape and the
//! traced values are `eval::traced` and `ad`), and training: `train` with the
//! optimisers `gd`, `sgd` and `adam` (`eval::train`).

use std::rc::Rc;

use super::{Args, Builtin};
use crate::diag::Diag;
use crate::eval::interp::Interp;
use crate::eval::train::{self, Method, Optimizer, Plan, Problem};
use crate::eval::transform::{Transform, TransformKind};
use crate::eval::value::Value;

pub static BUILTINS: &[Builtin] = &[
    builtin!("grad", "f", "The gradient of `f`, a function with a Float result, with respect to its first argument (a Float, a tensor, or a tuple, list or record of them): `grad(f)(x)` is shaped like `x`. Reverse mode: one pass back through what `f` computed. It follows arithmetic, `@`, `.T`, indexing, assignment into tensors, tensor literals, and exp, log, sqrt, tanh, sigmoid, relu, abs, sin, cos, pow, sum, mean, var, std, norm, logsumexp, max and min (of a tensor, along `axis:` or not, or of two arguments), clip, where, reshape, concat, hstack, vstack, diag, outer, trace, solve, mse, xent and hinge, `gram` (in X, Z and M) and a predictor's call (in its inputs); anything else that depends on `x` is an error.", |_, a| derivative(a, TransformKind::Grad)),
    builtin!("value_and_grad", "f", "Like `grad`, but `value_and_grad(f)(x)` returns `(f(x), gradient)` from one evaluation.", |_, a| derivative(a, TransformKind::ValueAndGrad)),
    builtin!("jacobian", "f", "The Jacobian of `f` at `x`: for a Float or tensor `x`, `jacobian(f)(x)` has shape `shape(f(x)) + shape(x)`, entry [i, j] the derivative of output i with respect to input j; for a tuple, list or record of them, or a model, it is arranged like `x` (a model's like its `params`), each part shaped `shape(f(x)) + shape(part)`. One reverse pass per output element; follows what `grad` follows.", |_, a| derivative(a, TransformKind::Jacobian)),
    builtin!("vmap", "f, axes=none", "`vmap(f)(x, ...)` calls f on each slice of its mapped arguments and stacks the results along a new leading axis, as `jax.vmap`: by default every tensor argument is mapped along its leading axis and the others are passed whole; `axes:` gives one entry per positional argument, an axis (negative counts from the end) or none. f may return a number, a tensor, or a tuple, list or record of them (stacked part by part). Composes with `grad`, `jacobian` and itself: `vmap(grad(sq_err), axes: (none, 0, 0))(w, X, y)` is the per-example gradients. Batched: f runs once, recording its operations, which then run for all slices at once; a body that branches on a mapped value, has effects or uses per-slice data (`max(x, y)`, `where`, `gram`) is called once per slice instead.", |_, a| vmap(a)),
    builtin!("train", "model, loss, X, y, opt=none, steps=none, epochs=none, batch=none, every=none, on_step=none, seed=none, on_nonfinite=\"error\"", "Fit a model's parameters to minimise `loss(model(X), y)` with the optimiser `opt` (`gd`, `sgd` or `adam`), for `steps:` updates or `epochs:` passes over the rows. `batch:` sets the rows per mini-batch (`sgd`: 32 unless given; `adam`: all unless given), drawn without replacement in an order shuffled each epoch from `seed:` (or the session's generator). Every `every:` steps (default: once per epoch) and after the last, it records the step and the loss on all of X, and calls `on_step(step, model)`; the fields of a record it returns become columns of the history. Returns `{model, step, loss, diverged, ...}`: the trained model and its history; the model passed in is unchanged. A loss that becomes nan or inf is an error, or with `on_nonfinite: \"stop\"` ends training: the history then holds the steps recorded before it, `model` is the last one whose loss was finite, and `diverged` is true (a learning-rate sweep across the edge of stability).", run_train),
    builtin!("gd", "lr, momentum=0.0, weight_decay=0.0", "Full-batch gradient descent for `train`: `p -= lr · (g + weight_decay · p)`, with heavy-ball momentum as in `torch.optim.SGD`. Each parameter's `lr` scale in its model multiplies `lr`.", |_, a| optimizer(a, Method::Gd)),
    builtin!("sgd", "lr, momentum=0.0, weight_decay=0.0", "Stochastic gradient descent for `train`: the `gd` update on shuffled mini-batches (`train(..., batch: 32)` by default).", |_, a| optimizer(a, Method::Sgd)),
    builtin!("adam", "lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0", "Adam for `train`, as `torch.optim.Adam` (weight decay added to the gradient). Full batch unless `train` is given `batch:`.", |_, a| {
            let (beta1, beta2, eps) = (a.f64(1)?, a.f64(2)?, a.f64(3)?);
            optimizer(a, Method::Adam { beta1, beta2, eps })
        }),
];

fn optimizer(a: &mut Args, method: Method) -> Result<Value, Diag> {
    let last = a.vals.len() - 1;
    let opt = Optimizer {
        method,
        lr: a.f64(0)?,
        momentum: if matches!(method, Method::Adam { .. }) {
            0.0
        } else {
            a.f64(1)?
        },
        weight_decay: a.f64(last)?,
    };
    opt.check()
        .map_err(|why| Diag::new("flx::train::opt", why).at(a.call))?;
    Ok(opt.to_value())
}

fn run_train(interp: &mut Interp, a: &mut Args) -> Result<Value, Diag> {
    let Value::Model(model) = &a.vals[0] else {
        return Err(a.expected(0, "a model"));
    };
    let model = model.clone();
    let loss = a.vals[1].clone();
    if !matches!(loss, Value::Func(_) | Value::Builtin(_)) {
        return Err(a.expected(1, "a loss function"));
    }
    let (x, y) = (a.tensor(2)?, a.tensor(3)?);
    let n = x.shape().first().copied().unwrap_or(0);
    if x.ndim() == 0 || y.ndim() == 0 || y.shape()[0] != n || n == 0 {
        return Err(a.shapes_error(
            2,
            3,
            "flx::shape::rows",
            format!(
                "`train` needs X and y with the same number of rows, at least one, found {} and {}",
                crate::format::shape_str(x.shape()),
                crate::format::shape_str(y.shape())
            ),
        ));
    }
    if a.is_none(4) {
        return Err(Diag::new("flx::train::opt", "`train` needs an optimiser")
            .at(a.call)
            .help("add e.g. `opt: gd(lr: 0.1)`, `opt: sgd(lr: 0.01)` or `opt: adam()`"));
    }
    let opt = Optimizer::from_value(&a.vals[4], a.spans[4])?;
    let count = |a: &Args, i: usize| -> Result<Option<usize>, Diag> {
        if a.is_none(i) {
            Ok(None)
        } else {
            a.count(i).map(Some)
        }
    };
    let (steps, epochs, batch, every) = (count(a, 5)?, count(a, 6)?, count(a, 7)?, count(a, 8)?);
    let on_step = (!a.is_none(9)).then(|| (a.vals[9].clone(), a.spans[9]));
    let seed = count(a, 10)?.map(|s| s as u64);
    let stop_on_nonfinite = a.one_of(11, &["error", "stop"])? == "stop";
    let mut plan = Plan::new(opt, n, steps, epochs, batch, every, on_step, seed, interp)
        .map_err(|why| Diag::new("flx::train::plan", why).at(a.call))?;
    plan.stop_on_nonfinite = stop_on_nonfinite;
    let problem = Problem {
        model: &model,
        loss: &loss,
        x,
        y,
        span: a.call,
    };
    train::train(interp, &problem, plan)
}

fn derivative(a: &mut Args, kind: TransformKind) -> Result<Value, Diag> {
    let f = a.vals[0].clone();
    let callable = match f {
        Value::Func(_) | Value::Builtin(_) | Value::Transform(_) => true,
        // A model or a predictor is mapped over rows, not differentiated.
        Value::Model(_) | Value::Predictor(_) => matches!(kind, TransformKind::Vmap(_)),
        _ => false,
    };
    if !callable {
        return Err(a.error(
            0,
            "flx::type::call",
            format!("`{}` takes a function, not {}", a.name, f.describe()),
        ));
    }
    Ok(Value::Transform(Rc::new(Transform { f, kind })))
}

fn vmap(a: &mut Args) -> Result<Value, Diag> {
    let axes = if a.is_none(1) {
        None
    } else {
        let items: Vec<Value> = match &a.vals[1] {
            Value::Tuple(t) | Value::List(t) => t.iter().cloned().collect(),
            v @ (Value::Int(_) | Value::None) => vec![v.clone()],
            _ => return Err(a.expected(1, "a tuple of axes (Ints or none)")),
        };
        let mut axes = Vec::with_capacity(items.len());
        for v in items {
            axes.push(match v {
                Value::Int(i) => Some(i),
                Value::None => None,
                _ => return Err(a.expected(1, "a tuple of axes (Ints or none)")),
            });
        }
        Some(Rc::from(axes))
    };
    derivative(a, TransformKind::Vmap(axes))
}
