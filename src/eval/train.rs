//! `train(model, loss, X, y, ...)`: gradient descent on a model's parameters,
//! one tape per step (`traced::value_and_grad`), with the optimisers `gd`,
//! `sgd` and `adam` updating plain tensors in place between steps.
//!
//! Semantics follow `torch.optim`: weight decay is added to the gradient (L2,
//! coupled, also for Adam), momentum buffers start at the first gradient, and
//! Adam corrects its moment estimates for their zero start.

use std::rc::Rc;

use crate::progress::Progress;
use ndarray::Axis;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::interp::Interp;
use super::model::Model;
use super::traced;
use super::value::{Record, Tensor, Value};
use crate::diag::{Diag, Span};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    Gd,
    Sgd,
    Adam { beta1: f64, beta2: f64, eps: f64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Optimizer {
    pub method: Method,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Optimizer {
    pub fn name(&self) -> &'static str {
        match self.method {
            Method::Gd => "gd",
            Method::Sgd => "sgd",
            Method::Adam { .. } => "adam",
        }
    }

    /// What `gd(...)`, `sgd(...)` and `adam(...)` return: a record a user can
    /// read, and `train` reads back with `from_value`.
    pub fn to_value(&self) -> Value {
        let mut fields: Vec<(Rc<str>, Value)> = vec![
            ("opt".into(), Value::str(self.name())),
            ("lr".into(), Value::Float(self.lr)),
        ];
        match self.method {
            Method::Adam { beta1, beta2, eps } => {
                fields.push(("beta1".into(), Value::Float(beta1)));
                fields.push(("beta2".into(), Value::Float(beta2)));
                fields.push(("eps".into(), Value::Float(eps)));
            }
            _ => fields.push(("momentum".into(), Value::Float(self.momentum))),
        }
        fields.push(("weight_decay".into(), Value::Float(self.weight_decay)));
        Value::Record(Rc::new(Record::new(fields)))
    }

    pub fn from_value(v: &Value, span: Span) -> Result<Optimizer, Diag> {
        let bad = |why: String| {
            Diag::new("flx::train::opt", why)
                .at(span)
                .help("make one with `gd(lr: 0.1)`, `sgd(lr: 0.01)` or `adam(lr: 0.001)`")
        };
        let Value::Record(r) = v else {
            return Err(bad(format!("`opt` is an optimiser, not {}", v.describe())));
        };
        let num = |name: &str| match r.get(name).and_then(Value::as_f64) {
            Some(x) => Ok(x),
            None => Err(bad(format!("the optimiser has no number `{name}`"))),
        };
        let method = match r.get("opt") {
            Some(Value::Str(s)) if s.as_str() == "gd" => Method::Gd,
            Some(Value::Str(s)) if s.as_str() == "sgd" => Method::Sgd,
            Some(Value::Str(s)) if s.as_str() == "adam" => Method::Adam {
                beta1: num("beta1")?,
                beta2: num("beta2")?,
                eps: num("eps")?,
            },
            _ => return Err(bad("this record is not an optimiser".into())),
        };
        let momentum = match method {
            Method::Adam { .. } => 0.0,
            _ => num("momentum")?,
        };
        let opt = Optimizer {
            method,
            lr: num("lr")?,
            momentum,
            weight_decay: num("weight_decay")?,
        };
        opt.check().map_err(bad)?;
        Ok(opt)
    }

    /// The ranges `torch.optim` accepts.
    pub fn check(&self) -> Result<(), String> {
        let in_unit = |x: f64| (0.0..1.0).contains(&x);
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(format!(
                "the learning rate must be 0 or more, found {}",
                self.lr
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "`weight_decay` must be 0 or more, found {}",
                self.weight_decay
            ));
        }
        if !in_unit(self.momentum) {
            return Err(format!(
                "`momentum` must be in [0, 1), found {}",
                self.momentum
            ));
        }
        if let Method::Adam { beta1, beta2, eps } = self.method {
            if !in_unit(beta1) || !in_unit(beta2) {
                return Err(format!(
                    "`beta1` and `beta2` must be in [0, 1), found {beta1} and {beta2}"
                ));
            }
            if !(eps.is_finite() && eps > 0.0) {
                return Err(format!("`eps` must be more than 0, found {eps}"));
            }
        }
        Ok(())
    }
}

/// How long to train, and on what.
pub struct Plan {
    pub opt: Optimizer,
    /// Number of updates.
    pub steps: usize,
    /// Rows per mini-batch; `None`: the whole data set every step.
    pub batch: Option<usize>,
    /// Record the loss (and call `on_step`) every this many steps.
    pub every: usize,
    /// `on_step`, and where it was given.
    pub on_step: Option<(Value, Span)>,
    /// Shuffles mini-batches.
    pub rng: ChaCha8Rng,
    /// A nan or inf loss ends training (`diverged: true`) rather than the run.
    pub stop_on_nonfinite: bool,
}

impl Plan {
    /// `steps:` or `epochs:` (exactly one), `batch:` and `every:` as `train` takes them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opt: Optimizer,
        n: usize,
        steps: Option<usize>,
        epochs: Option<usize>,
        batch: Option<usize>,
        every: Option<usize>,
        on_step: Option<(Value, Span)>,
        seed: Option<u64>,
        interp: &mut Interp,
    ) -> Result<Plan, String> {
        let batch = match (opt.method, batch) {
            (Method::Gd, Some(_)) => return Err(
                "`gd` takes the whole data set every step; use `sgd` or `adam` for mini-batches"
                    .into(),
            ),
            (Method::Sgd, None) => Some(32),
            (_, b) => b,
        };
        let batch = match batch {
            Some(0) => return Err("`batch` must be at least 1".into()),
            Some(b) if b < n => Some(b),
            _ => None,
        };
        let per_epoch = batch.map_or(1, |b| n.div_ceil(b));
        let steps = match (steps, epochs) {
            (Some(s), None) => s,
            (None, Some(e)) => e.checked_mul(per_epoch).ok_or("too many epochs")?,
            (None, None) => return Err("say how long to train: `steps: N` or `epochs: N`".into()),
            (Some(_), Some(_)) => return Err("give `steps` or `epochs`, not both".into()),
        };
        let every = match every {
            Some(0) => return Err("`every` must be at least 1".into()),
            Some(k) => k,
            None => per_epoch,
        };
        // Only mini-batches draw from the session's generator.
        let seed = match (seed, batch) {
            (Some(s), _) => s,
            (None, Some(_)) => interp.run.rng.random::<u64>(),
            (None, None) => 0,
        };
        Ok(Plan {
            opt,
            steps,
            batch,
            every,
            on_step,
            rng: ChaCha8Rng::seed_from_u64(seed),
            stop_on_nonfinite: false,
        })
    }
}

/// The data and what to fit: `loss(model(X), y)`.
pub struct Problem<'a> {
    pub model: &'a Rc<Model>,
    pub loss: &'a Value,
    pub x: Rc<Tensor>,
    pub y: Rc<Tensor>,
    pub span: Span,
}

/// Train; returns `{model, step, loss, ...}` with one entry per recorded step
/// (every `every` steps and the last), plus the fields of the records
/// `on_step` returned.
pub fn train(interp: &mut Interp, p: &Problem, mut plan: Plan) -> Result<Value, Diag> {
    let span = p.span;
    let n = p.x.shape()[0];
    let mut params: Vec<Tensor> = p
        .model
        .params
        .fields
        .iter()
        .map(|(_, v)| tensor_of(v))
        .collect();
    let mut state = vec![(None::<Tensor>, None::<Tensor>); params.len()];
    let mut history = History::default();
    let mut order: Vec<usize> = (0..n).collect();
    let mut next_row = n;
    let progress = Progress::new(
        Some(plan.steps as u64),
        "train {prefix} [{bar:30}] {pos}/{len} steps, loss {msg} ({eta} left)",
        &p.model.def.name.name,
    );
    let mut model = p.model.clone();
    // The model before the last update: what a diverged run returns.
    let mut last_finite = model.clone();
    let stop = plan.stop_on_nonfinite;
    let diverged = move |loss: f64| stop && !loss.is_finite();
    for s in 0..plan.steps {
        // The rows of this step.
        let (xb, yb) = match plan.batch {
            None => (p.x.clone(), p.y.clone()),
            Some(b) => {
                if next_row >= n {
                    order.shuffle(&mut plan.rng);
                    next_row = 0;
                }
                let rows = &order[next_row..(next_row + b).min(n)];
                next_row += rows.len();
                (
                    Rc::new(p.x.select(Axis(0), rows).into()),
                    Rc::new(p.y.select(Axis(0), rows).into()),
                )
            }
        };
        let (value, grads) = traced::value_and_grad(
            interp,
            "train",
            &Value::Model(model.clone()),
            span,
            span,
            |interp, traced| loss_of(interp, p, &traced, xb, yb),
        )?;
        if diverged(value) {
            return Ok(history.into_value(last_finite, true));
        }
        let value = finite(value, s, span)?;
        if s % plan.every == 0 {
            // A full-batch step's loss is the loss on all of X already.
            let loss = match plan.batch {
                None => value,
                Some(_) => full_loss(interp, p, &model)?,
            };
            if diverged(loss) {
                return Ok(history.into_value(last_finite, true));
            }
            history.observe(interp, &plan, s, &model, finite(loss, s, span)?)?;
        }
        let Value::Record(grads) = grads else {
            unreachable!("a model's gradient is a record")
        };
        for (k, ((_, g), param)) in grads.fields.iter().zip(params.iter_mut()).enumerate() {
            let lr = plan.opt.lr * p.model.lr[k];
            update(&plan.opt, s + 1, lr, param, tensor_of(g), &mut state[k]);
        }
        last_finite = model;
        model = Rc::new(with_params(p.model, &params, span)?);
        progress.message(format!("{value:.4e}"));
        progress.set(s as u64 + 1);
        interp.poll_interrupt(span)?;
    }
    let loss = full_loss(interp, p, &model)?;
    if diverged(loss) {
        return Ok(history.into_value(last_finite, true));
    }
    history.observe(
        interp,
        &plan,
        plan.steps,
        &model,
        finite(loss, plan.steps, span)?,
    )?;
    Ok(history.into_value(model, false))
}

/// A parameter or its gradient as a tensor (a Float as a 0-d one).
fn tensor_of(v: &Value) -> Tensor {
    match v {
        Value::Tensor(t) => (**t).clone(),
        v => Tensor::from_elem(ndarray::IxDyn(&[]), v.as_f64().unwrap_or(f64::NAN)),
    }
}

/// The recorded steps, their losses, and the columns `on_step` returned.
#[derive(Default)]
struct History {
    steps: Vec<i64>,
    losses: Vec<f64>,
    columns: Vec<(Rc<str>, Vec<Value>)>,
}

impl History {
    /// Record step `s`, and call `on_step(s, model)`, keeping the fields of
    /// the record it returns.
    fn observe(
        &mut self,
        interp: &mut Interp,
        plan: &Plan,
        s: usize,
        model: &Rc<Model>,
        loss: f64,
    ) -> Result<(), Diag> {
        self.steps.push(s as i64);
        self.losses.push(loss);
        let Some((f, span)) = &plan.on_step else {
            return Ok(());
        };
        let span = *span;
        let args = vec![
            (Value::Int(s as i64), span),
            (Value::Model(model.clone()), span),
        ];
        let r = match interp.call_value(f, args, Vec::new(), span)? {
            Value::None => return Ok(()),
            Value::Record(r) => r,
            v => {
                return Err(Diag::new(
                    "flx::train::on_step",
                    format!(
                        "`on_step` returns a record of figures or nothing, not {}",
                        v.describe()
                    ),
                )
                .at(span)
                .help("e.g. `on_step: |s, m| {test: mse(m(Xt), yt)}`"))
            }
        };
        let changed = || {
            Diag::new(
                "flx::train::on_step",
                "`on_step` must return records with the same fields every time",
            )
            .at(span)
        };
        let row = self.steps.len() - 1;
        for (name, v) in &r.fields {
            if matches!(name.as_ref(), "model" | "step" | "loss" | "diverged") {
                return Err(Diag::new(
                    "flx::train::on_step",
                    format!("`on_step` returned a field `{name}`, which the history already has"),
                )
                .at(span)
                .help("rename it"));
            }
            match self.columns.iter_mut().find(|(n, _)| n == name) {
                Some((_, vals)) if vals.len() == row => vals.push(v.clone()),
                None if row == 0 => self.columns.push((name.clone(), vec![v.clone()])),
                _ => return Err(changed()),
            }
        }
        if self.columns.iter().any(|(_, vals)| vals.len() != row + 1) {
            return Err(changed());
        }
        Ok(())
    }

    /// `{model, step, loss, diverged, ...}`: numeric columns as tensors of
    /// their common dtype (as a list literal of them would be), others as lists.
    fn into_value(self, model: Rc<Model>, diverged: bool) -> Value {
        let mut fields: Vec<(Rc<str>, Value)> = vec![
            ("model".into(), Value::Model(model)),
            (
                "step".into(),
                Value::from(ndarray::Array1::from(self.steps)),
            ),
            (
                "loss".into(),
                Value::from(ndarray::Array1::from(self.losses)),
            ),
            ("diverged".into(), Value::Bool(diverged)),
        ];
        for (name, vals) in self.columns {
            let column = if vals.iter().all(Value::is_number) {
                let numbers = vals.into_iter().map(|v| (v, Span::default())).collect();
                super::ops::list_literal(numbers, Span::default()).expect("numbers stack")
            } else {
                Value::list(vals)
            };
            fields.push((name, column));
        }
        Value::Record(Rc::new(Record::new(fields)))
    }
}

/// A run whose loss is no longer a number stops, rather than record NaNs.
fn finite(loss: f64, s: usize, span: Span) -> Result<f64, Diag> {
    if loss.is_finite() {
        return Ok(loss);
    }
    Err(Diag::new(
        "flx::train::diverged",
        format!("the training loss became {loss} at step {s}"),
    )
    .at(span)
    .help("lower the learning rate, or pass `on_nonfinite: \"stop\"` to end training there"))
}

/// `loss(model(x), y)`, the thing `train` minimises.
fn loss_of(
    interp: &mut Interp,
    p: &Problem,
    model: &Value,
    x: Rc<Tensor>,
    y: Rc<Tensor>,
) -> Result<Value, Diag> {
    let span = p.span;
    let pred = interp.call_value(model, vec![(Value::Tensor(x), span)], Vec::new(), span)?;
    interp.call_value(
        p.loss,
        vec![(pred, span), (Value::Tensor(y), span)],
        Vec::new(),
        span,
    )
}

/// The loss on the whole training set, with no tape.
fn full_loss(interp: &mut Interp, p: &Problem, model: &Rc<Model>) -> Result<f64, Diag> {
    let model = Value::Model(model.clone());
    let loss = loss_of(interp, p, &model, p.x.clone(), p.y.clone())?;
    let Some(loss) = loss.as_f64() else {
        return Err(Diag::new(
            "flx::grad::scalar",
            format!(
                "the loss must be a Float, but it returned {}",
                loss.describe()
            ),
        )
        .at(p.span));
    };
    Ok(loss)
}

fn with_params(model: &Model, params: &[Tensor], span: Span) -> Result<Model, Diag> {
    let fields = model
        .params
        .fields
        .iter()
        .zip(params)
        .map(|((n, old), p)| {
            let v = match old {
                Value::Tensor(_) => Value::tensor(p.clone()),
                _ => Value::Float(p.iter().next().copied().unwrap_or(f64::NAN)),
            };
            (n.clone(), v)
        })
        .collect();
    model.with(&Value::Record(Rc::new(Record::new(fields))), span)
}

/// One update of one parameter at step `t` (from 1) with learning rate `lr`;
/// `state` holds the momentum buffer, or Adam's two moment estimates.
fn update(
    opt: &Optimizer,
    t: usize,
    lr: f64,
    p: &mut Tensor,
    mut g: Tensor,
    state: &mut (Option<Tensor>, Option<Tensor>),
) {
    if opt.weight_decay != 0.0 {
        g.scaled_add(opt.weight_decay, p);
    }
    match opt.method {
        Method::Gd | Method::Sgd => {
            if opt.momentum != 0.0 {
                let buf = state.0.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
                *buf *= opt.momentum;
                *buf += &g;
                p.scaled_add(-lr, buf);
            } else {
                p.scaled_add(-lr, &g);
            }
        }
        Method::Adam { beta1, beta2, eps } => {
            let m = state.0.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
            let v = state.1.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
            let (c1, c2) = (1.0 - beta1.powi(t as i32), 1.0 - beta2.powi(t as i32));
            ndarray::Zip::from(p)
                .and(m)
                .and(v)
                .and(&g)
                .for_each(|p, m, v, &g| {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                });
        }
    }
}
