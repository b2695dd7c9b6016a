//! Metrics of predictions against targets. Shapes must agree exactly: a
//! (n, 1) prediction against an (n,) target is an error here, not a silent
//! n × n broadcast.

use ndarray::{ArrayView1, Axis};

use super::{mat, Args, Builtin};
use crate::diag::Diag;
use crate::eval::interp::Interp;
use crate::eval::value::{Tensor, Value};
use crate::format::shape_str;
use crate::tensor::pairwise_sum;

type R = Result<Value, Diag>;

pub static BUILTINS: &[Builtin] = &[
    builtin!("mse", "pred, y", "Mean squared error over all entries; `pred` and `y` must have the same shape.", mse),
    builtin!("r2", "pred, y", "Coefficient of determination `1 - Σ(pred - y)² / Σ(y - mean(y))²` over all entries.", r2),
    builtin!("xent", "logits, y", "Softmax cross-entropy, the mean over rows of `logsumexp(logits[i]) - y[i] · logits[i]`: `logits` n × c, `y` one-hot (or probability) rows n × c or class indices (n). Differentiable in `logits`.", xent),
    builtin!("hinge", "pred, y", "Hinge loss `mean(max(0, 1 - y * pred))` for labels ±1; `pred` and `y` must have the same shape.", hinge),
    builtin!("accuracy", "pred, y", "Fraction of correct labels. `pred` an n × c matrix of scores: its row-wise argmax against `y`, one-hot rows (n × c) or class indices (n). `pred` a vector: signs against the signs of `y` (labels ±1).", accuracy),
];

fn same_shape(a: &Args) -> Result<(std::rc::Rc<Tensor>, std::rc::Rc<Tensor>), Diag> {
    let (p, y) = (a.tensor(0)?, a.tensor(1)?);
    if p.shape() != y.shape() {
        return Err(a
            .shapes_error(
                0,
                1,
                "flx::shape::mismatch",
                format!(
                    "`{}`: predictions of shape {} against targets of shape {}",
                    a.name,
                    shape_str(p.shape()),
                    shape_str(y.shape())
                ),
            )
            .help("reshape one of them, e.g. `reshape(p, len(p))` for a single-column matrix"));
    }
    if p.is_empty() {
        return Err(a.error(
            0,
            "flx::value::empty",
            format!("`{}` of empty tensors", a.name),
        ));
    }
    Ok((p, y))
}

fn mse(_: &mut Interp, a: &mut Args) -> R {
    let (p, y) = same_shape(a)?;
    let sq = (&*p - &*y).mapv(|e| e * e);
    Ok(Value::Float(pairwise_sum(&sq.view()) / p.len() as f64))
}

/// The targets of `xent` as rows: one-hot rows from class indices.
pub fn xent_targets(a: &Args, logits: &Tensor, y: &Tensor) -> Result<Tensor, Diag> {
    let fail = |what: String| {
        a.shapes_error(0, 1, "flx::shape::mismatch", what)
            .help("logits n × c with one-hot rows n × c or class indices (n,)")
    };
    if logits.ndim() != 2 || logits.is_empty() {
        return Err(fail(format!(
            "`xent`: logits must be an n × c matrix, found shape {}",
            shape_str(logits.shape())
        )));
    }
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    match y.ndim() {
        2 if y.shape() == logits.shape() => Ok(y.clone()),
        1 if y.len() == n => {
            let mut rows = Tensor::zeros(logits.raw_dim());
            for (i, &label) in y.iter().enumerate() {
                if label.fract() != 0.0 || label < 0.0 || label >= c as f64 {
                    return Err(a.error(
                        1,
                        "flx::value::label",
                        format!("`xent`: label {label} of row {i} is not a class index in 0..{c}"),
                    ));
                }
                rows[[i, label as usize]] = 1.0;
            }
            Ok(rows)
        }
        _ => Err(fail(format!(
            "`xent`: logits of shape {} against targets of shape {}",
            shape_str(logits.shape()),
            shape_str(y.shape())
        ))),
    }
}

fn xent(_: &mut Interp, a: &mut Args) -> R {
    let (z, y) = (a.tensor(0)?, a.tensor(1)?);
    let targets = xent_targets(a, &z, &y)?;
    let z2 = mat(&z);
    let per_row: Vec<f64> = z2
        .axis_iter(Axis(0))
        .zip(mat(&targets).axis_iter(Axis(0)))
        .map(|(row, t)| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + pairwise_sum(
                &row.mapv(|x| crate::prim::math::exp(x - m))
                    .into_dyn()
                    .view(),
            )
            .ln();
            lse - row.dot(&t)
        })
        .collect();
    let n = per_row.len() as f64;
    Ok(Value::Float(
        pairwise_sum(&ndarray::Array1::from(per_row).into_dyn().view()) / n,
    ))
}

fn hinge(_: &mut Interp, a: &mut Args) -> R {
    let (p, y) = same_shape(a)?;
    let margins = ndarray::Zip::from(&*p)
        .and(&*y)
        .map_collect(|p, y| (1.0 - y * p).max(0.0));
    Ok(Value::Float(pairwise_sum(&margins.view()) / p.len() as f64))
}

fn r2(_: &mut Interp, a: &mut Args) -> R {
    let (p, y) = same_shape(a)?;
    let mean = pairwise_sum(&y.view()) / y.len() as f64;
    let res = pairwise_sum(&(&*p - &*y).mapv(|e| e * e).view());
    let tot = pairwise_sum(&y.mapv(|v| (v - mean) * (v - mean)).view());
    Ok(Value::Float(1.0 - res / tot))
}

fn argmax(row: ArrayView1<f64>) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] || x.is_nan() {
            best = i;
            if x.is_nan() {
                break;
            }
        }
    }
    best
}

fn accuracy(_: &mut Interp, a: &mut Args) -> R {
    let (p, y) = (a.tensor(0)?, a.tensor(1)?);
    let n = p.shape().first().copied().unwrap_or(0);
    let rows_match = y.shape().first() == Some(&n);
    let ok = match (p.ndim(), y.ndim()) {
        (2, 2) => rows_match && p.shape() == y.shape(),
        (2, 1) | (1, 1) => rows_match,
        _ => false,
    };
    if !ok || n == 0 {
        return Err(a
            .shapes_error(
                0,
                1,
                "flx::shape::mismatch",
                format!(
                    "`accuracy`: scores of shape {} against labels of shape {}",
                    shape_str(p.shape()),
                    shape_str(y.shape())
                ),
            )
            .help("scores n × c with one-hot labels n × c or class indices (n,); or two vectors of ±1 labels"));
    }
    let correct = match p.ndim() {
        2 => {
            let p2 = mat(&p);
            let y2 = if y.ndim() == 2 {
                let y2 = mat(&y);
                y2.axis_iter(Axis(0))
                    .map(|r| argmax(r) as f64)
                    .collect::<Vec<_>>()
            } else {
                y.iter().copied().collect()
            };
            p2.axis_iter(Axis(0))
                .zip(y2)
                .filter(|(r, label)| argmax(r.view()) as f64 == *label)
                .count()
        }
        _ => p
            .iter()
            .zip(y.iter())
            .filter(|(p, y)| p.signum() == y.signum() && **p != 0.0)
            .count(),
    };
    Ok(Value::Float(correct as f64 / n as f64))
}
