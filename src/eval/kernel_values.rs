//! Kernel and predictor values: a `kernel` declaration's value, calling a
//! kernel (new hyperparameters) or a predictor (predictions), and their fields.

use std::rc::Rc;

use ndarray::{Array2, Ix2};

use super::builtins::{check_size, mat};
use super::format::kernel_repr;
use super::value::{Tensor, Value};
use crate::diag::{did_you_mean, Diag, Span};
use crate::format::shape_str;
use crate::kernel::{self, CombineError, Family, Form, Kernel, Metric, Predictor, Solver};
use crate::signature::Builtins;
use crate::syntax::ast::{BinOp, FnDef};

type R = Result<Value, Diag>;

/// The value of a `kernel` declaration: the family with its default hyperparameters.
pub fn declare(def: &FnDef, builtins: &Builtins) -> R {
    let family = Family::lower(def, builtins).map_err(|mut e| e.remove(0))?;
    let values = family.defaults.clone();
    Ok(Value::Kernel(Rc::new(Kernel::new(Rc::new(family), values))))
}

/// `k(L: 2.0)`: the same kernel with some hyperparameters changed.
pub fn with_hyper(
    k: &Kernel,
    pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> R {
    let Form::Instance { family, values } = &k.form else {
        return Err(combined_has_no_hyper(k, span));
    };
    let params = &family.params;
    let name = &family.name;
    let mut values = values.clone();
    if let Some((_, span)) = pos.get(params.len()) {
        return Err(Diag::new(
            "flx::call::arity",
            format!(
                "kernel `{name}` has {} hyperparameter{}",
                params.len(),
                if params.len() == 1 { "" } else { "s" }
            ),
        )
        .at(*span)
        .label("unexpected argument"));
    }
    let number = |v: &Value, span: Span, name: &str| {
        v.as_f64()
            .filter(|_| !matches!(v, Value::Bool(_)))
            .ok_or_else(|| {
                Diag::new(
                    "flx::type::argument",
                    format!(
                        "hyperparameter `{name}` must be a number, found {}",
                        v.describe()
                    ),
                )
                .at(span)
            })
    };
    for (i, (v, span)) in pos.iter().enumerate() {
        values[i] = Some(number(v, *span, &params[i])?);
    }
    for (name, v, span) in &named {
        if let Some(i) = params.iter().take(pos.len()).position(|p| p == name) {
            return Err(Diag::new(
                "flx::call::duplicate_arg",
                format!("hyperparameter `{name}` is given both by position and by name"),
            )
            .at(*span)
            .with_label(pos[i].1, "given by position here"));
        }
        let Some(i) = params.iter().position(|p| p == name) else {
            let mut d = Diag::new(
                "flx::call::unknown_arg",
                format!("kernel `{}` has no hyperparameter `{name}`", family.name),
            )
            .at(*span);
            d = d.help(
                match did_you_mean(name, params.iter().map(|p| p.as_ref())) {
                    Some(m) => m,
                    None if params.is_empty() => "it has no hyperparameters".to_string(),
                    None => format!("its hyperparameters: {}", params.join(", ")),
                },
            );
            return Err(d);
        };
        values[i] = Some(number(v, *span, name)?);
    }
    Ok(Value::Kernel(Rc::new(Kernel::new(family.clone(), values))))
}

/// Kernel `name` (at `span`) has no value for the hyperparameters `missing`
/// (at least one), which it needs `when`.
pub fn missing_hyper(name: &str, missing: &[impl AsRef<str>], when: &str, span: Span) -> Diag {
    let listed: Vec<String> = missing
        .iter()
        .map(|m| format!("`{}`", m.as_ref()))
        .collect();
    Diag::new(
        "flx::kernel::hyperparameter",
        format!(
            "kernel `{name}` needs a value for {}{when}",
            listed.join(", ")
        ),
    )
    .at(span)
    .help(format!("e.g. `{name}({}: 1.0)`", missing[0].as_ref()))
}

/// A combination's hyperparameters belong to its parts.
fn combined_has_no_hyper(k: &Kernel, span: Span) -> Diag {
    Diag::new(
        "flx::kernel::combined",
        "a combined kernel has no hyperparameters of its own",
    )
    .at(span)
    .label(kernel_repr(k))
    .help("set them on its parts before combining, e.g. `laplace(L: 2.0) + poly(p: 3)`")
}

/// Why kernels could not be combined, at `span`.
pub fn combine_error(e: CombineError, span: Span) -> Diag {
    match e {
        CombineError::Missing(name, missing) => {
            missing_hyper(&name, &missing, " before it is combined", span)
        }
        CombineError::TooLarge(limit) => Diag::new(
            "flx::kernel::too_large",
            format!("this combined kernel has more than {limit} parts or operations"),
        )
        .at(span),
    }
}

/// `a + b`, `a * b`, `c * k` (either side), `k ^ p` of kernels: the combined
/// kernel, or `None` where the operands are not kernels.
pub fn combine(op: BinOp, l: &Value, r: &Value, lspan: Span, rspan: Span) -> Option<R> {
    let whole = lspan.to(rspan);
    let done = |c: Result<Kernel, CombineError>| {
        c.map(|k| Value::Kernel(Rc::new(k)))
            .map_err(|e| combine_error(e, whole))
    };
    let scale = |c: &Value, span: Span, k: &Rc<Kernel>| {
        let c = c.as_f64().filter(|c| c.is_finite() && *c >= 0.0);
        match c {
            Some(c) => done(Kernel::scaled(c, k.clone())),
            None => Err(Diag::new(
                "flx::kernel::scale",
                "a kernel can be scaled only by a finite number ≥ 0",
            )
            .at(span)
            .help("a negative multiple of a kernel is not positive definite")),
        }
    };
    let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
    Some(match (op, l, r) {
        (BinOp::Add, Value::Kernel(a), Value::Kernel(b)) => done(Kernel::sum(a.clone(), b.clone())),
        (BinOp::Mul, Value::Kernel(a), Value::Kernel(b)) => {
            done(Kernel::product(a.clone(), b.clone()))
        }
        (BinOp::Mul, c, Value::Kernel(k)) if number(c) => scale(c, lspan, k),
        (BinOp::Mul, Value::Kernel(k), c) if number(c) => scale(c, rspan, k),
        (BinOp::Pow, Value::Kernel(k), p) => match p {
            Value::Int(p) if (1..=u32::MAX as i64).contains(p) => {
                done(Kernel::power(k.clone(), *p as u32))
            }
            _ => Err(Diag::new(
                "flx::kernel::power",
                format!(
                    "a kernel's power must be an Int ≥ 1, found {}",
                    p.describe()
                ),
            )
            .at(rspan)
            .help("`k ^ 2` is the kernel k(x, z)²")),
        },
        _ => return None,
    })
}

/// `f(Xnew)`: predictions of a fitted kernel machine.
pub fn predict(
    p: &Predictor,
    pos: Vec<(Value, Span)>,
    named: Vec<(Rc<str>, Value, Span)>,
    span: Span,
) -> R {
    if let Some((name, _, s)) = named.first() {
        return Err(Diag::new(
            "flx::call::unknown_arg",
            format!("a predictor takes its inputs only, not `{name}:`"),
        )
        .at(*s));
    }
    let [(x, xspan)] = <[_; 1]>::try_from(pos).map_err(|pos: Vec<_>| {
        Diag::new(
            "flx::call::arity",
            format!(
                "a predictor takes 1 argument (the inputs), but {} were given",
                pos.len()
            ),
        )
        .at(span)
    })?;
    let Value::Tensor(x) = &x else {
        return Err(Diag::new(
            "flx::type::argument",
            format!(
                "a predictor takes a Tensor of inputs, found {}",
                x.describe()
            ),
        )
        .at(xspan));
    };
    if let Some(pool) = p.pool {
        return predict_patches(p, pool, x, xspan);
    }
    let d = p.features();
    let single = x.ndim() == 1;
    let rows = match x.ndim() {
        1 => x
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .ok()
            .map(|r| r.insert_axis(ndarray::Axis(0))),
        2 => x.view().into_dimensionality::<Ix2>().ok(),
        _ => None,
    };
    let Some(rows) = rows.filter(|r| r.ncols() == d) else {
        return Err(wrong_features(d, x.shape(), xspan));
    };
    check_size(&[rows.nrows(), p.centers.shape()[0]], xspan)?;
    let out = kernel::predict(
        &p.kernel,
        rows,
        mat(&p.centers),
        &p.metric,
        p.alpha_columns(),
    );
    shape_predictions(p, out, single)
}

/// Predictions (n × c) shaped like the weights, without the row axis for
/// a `single` input.
fn shape_predictions(p: &Predictor, out: Array2<f64>, single: bool) -> R {
    let out = if p.alpha.ndim() == 1 {
        out.index_axis_move(ndarray::Axis(1), 0).into_dyn()
    } else {
        out.into_dyn()
    };
    let out = if single {
        out.index_axis_move(ndarray::Axis(0), 0)
    } else {
        out
    };
    Ok(match out.ndim() {
        0 => Value::Float(out.first().copied().unwrap_or(0.0)),
        _ => Value::tensor(out),
    })
}

/// `f(P)` of a predictor fitted on patches: n × P × d patches, or one
/// image's P × d.
fn predict_patches(p: &Predictor, pool: kernel::Pool, x: &Tensor, xspan: Span) -> R {
    check_patches(p, pool, x.shape(), xspan)?;
    let single = x.ndim() == 2;
    let x = if single {
        x.clone().insert_axis(ndarray::Axis(0))
    } else {
        x.clone()
    };
    let x = x.as_standard_layout();
    let x: ndarray::ArrayView3<f64> = x.view().into_dimensionality().expect("3-d");
    check_size(&[x.dim().0, p.centers.shape()[0]], xspan)?;
    let centers = p.centers.view().into_dimensionality().expect("3-d");
    let out = kernel::pool::predict(&p.kernel, x, centers, &p.metric, p.alpha_columns(), pool);
    shape_predictions(p, out, single)
}

/// Inputs of `shape` (at `span`) for a predictor fitted on patches: n × P × d
/// or one image's P × d, with the centres' P for "local".
pub fn check_patches(
    p: &Predictor,
    pool: kernel::Pool,
    shape: &[usize],
    span: Span,
) -> Result<(), Diag> {
    let (positions, d) = (p.centers.shape()[1], p.features());
    let fits = (shape.len() == 2 || shape.len() == 3)
        && shape.last() == Some(&d)
        && (pool == kernel::Pool::All || shape[shape.len() - 2] == positions);
    if fits {
        return Ok(());
    }
    let fitted = match pool {
        kernel::Pool::All => format!("patches of {d} features"),
        kernel::Pool::Local => format!("{positions} patches of {d} features"),
    };
    Err(Diag::new(
        "flx::shape::predict",
        format!(
            "the predictor was fitted on {fitted}, but the inputs have shape {}",
            shape_str(shape)
        ),
    )
    .at(span)
    .help("pass n × P × d patches from `patches`, or one image's P × d"))
}

/// Inputs of `shape` at `span` given to a predictor fitted on `d` features.
pub fn wrong_features(d: usize, shape: &[usize], span: Span) -> Diag {
    Diag::new(
        "flx::shape::predict",
        format!(
            "the predictor was fitted on {d} features, but the inputs have shape {}",
            shape_str(shape)
        ),
    )
    .at(span)
    .help(format!("pass an n × {d} matrix (or one row of length {d})"))
}

/// The fields of a fitted predictor, in the order its help lists them.
pub const PREDICTOR_FIELDS: [&str; 9] = [
    "alpha", "centers", "M", "kernel", "reg", "pool", "solver", "iters", "residual",
];

/// Fields of kernels (`k.L`) and predictors (`f.alpha`, `f.centers`, `f.M`, ...).
pub fn field(v: &Value, name: &str, span: Span) -> Option<R> {
    match v {
        Value::Kernel(k) => {
            let Form::Instance { family, values } = &k.form else {
                return Some(Err(combined_has_no_hyper(k, span)));
            };
            let i = family.params.iter().position(|p| p.as_ref() == name);
            Some(match i {
                Some(i) => match values[i] {
                    Some(x) => Ok(Value::Float(x)),
                    None => Ok(Value::None),
                },
                None => Err(Diag::new(
                    "flx::type::field",
                    format!("kernel `{}` has no hyperparameter `{name}`", family.name),
                )
                .at(span)
                .help(format!("its hyperparameters: {}", family.params.join(", ")))),
            })
        }
        Value::Predictor(p) => Some(match name {
            "alpha" => Ok(Value::Tensor(p.alpha.clone())),
            "centers" => Ok(Value::Tensor(p.centers.clone())),
            "solver" => Ok(Value::Str(Rc::new(p.solver.name().into()))),
            "iters" => Ok(match p.solver {
                Solver::Cholesky { refined: None } => Value::None,
                Solver::Cholesky {
                    refined: Some(steps),
                } => Value::Int(steps as i64),
                Solver::Nystrom { iters, .. } => Value::Int(iters as i64),
            }),
            "residual" => Ok(match p.solver {
                Solver::Cholesky { .. } => Value::None,
                Solver::Nystrom { residual, .. } => Value::Float(residual),
            }),
            "kernel" => Ok(Value::Kernel(p.kernel.clone())),
            "reg" => Ok(Value::Float(p.reg)),
            "pool" => Ok(p
                .pool
                .map_or(Value::None, |pool| Value::Str(Rc::new(pool.name().into())))),
            "M" => {
                let d = p.features();
                Ok(Value::tensor(match &p.metric {
                    Metric::Identity => Array2::<f64>::eye(d).into_dyn(),
                    Metric::Diag(m) => m.clone().into_dyn(),
                    Metric::Full(m) => m.clone().into_dyn(),
                }))
            }
            _ => Err(Diag::new(
                "flx::type::field",
                format!("a predictor has no field `{name}`"),
            )
            .at(span)
            .help(format!("its fields: {}", PREDICTOR_FIELDS.join(", ")))),
        }),
        _ => None,
    }
}
