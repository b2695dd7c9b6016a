//! Instances of `model` declarations: named parameters with learning-rate
//! scales, and `forward` as a closure over the construction frame.
//!
//! An instance is a value like any other: `net.with(p)` builds a new instance
//! that shares everything but the parameters, which is how `grad` and `train`
//! put traced parameters into a model without touching the original.
//! Building an instance (`Interp::instantiate`) runs the declaration's items
//! in a fresh frame.

use std::cell::RefCell;
use std::rc::Rc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::interp::{too_deep, too_many_args, Interp, MAX_CALL_DEPTH};
use super::value::{Closure, FnKind, Record, Value};
use crate::diag::{Diag, Span};
use crate::syntax::ast::*;

#[derive(Debug)]
pub struct Model {
    pub def: Rc<ModelDef>,
    /// The `param` items, in declaration order.
    pub params: Rc<Record>,
    /// Each parameter's learning-rate scale (`lr 0.1`; 1 when not given).
    pub lr: Vec<f64>,
    pub forward: Rc<Closure>,
    /// For each parameter, the index of its cell among `forward`'s captures
    /// (`None`: `forward` does not read it).
    pub(super) param_capture: Vec<Option<usize>>,
}

/// The names `net.NAME` accepts.
pub const FIELDS: [&str; 3] = ["params", "with", "lr"];

impl Model {
    /// The same model with other parameter values, checked against the current
    /// ones: the same names, each a Float or a tensor of the same shape.
    pub fn with(&self, p: &Value, span: Span) -> Result<Model, Diag> {
        let Value::Record(r) = p else {
            return Err(Diag::new(
                "flx::model::params",
                format!("`with` takes a record of parameters, not {}", p.describe()),
            )
            .at(span)
            .help("pass a record like `net.params`"));
        };
        let names = || {
            self.params
                .fields
                .iter()
                .map(|(n, _)| n.as_ref())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if r.fields.len() != self.params.fields.len() {
            return Err(Diag::new(
                "flx::model::params",
                format!(
                    "`{}` has {} parameters, but the record has {} fields",
                    self.def.name.name,
                    self.params.fields.len(),
                    r.fields.len()
                ),
            )
            .at(span)
            .help(format!("its parameters: {}", names())));
        }
        let mut fields = Vec::with_capacity(r.fields.len());
        for (name, old) in &self.params.fields {
            let Some(new) = r.get(name) else {
                return Err(Diag::new(
                    "flx::model::params",
                    format!("the record has no parameter `{name}`"),
                )
                .at(span)
                .help(format!("its parameters: {}", names())));
            };
            let shape = |v: &Value| match super::traced::primal(v) {
                Value::Float(_) => Some(Vec::new()),
                Value::Tensor(t) => Some(t.shape().to_vec()),
                _ => None,
            };
            if shape(new).is_none() || shape(new) != shape(old) {
                return Err(Diag::new(
                    "flx::model::params",
                    format!(
                        "parameter `{name}` is {}, but the record gives {}",
                        old.describe(),
                        new.describe()
                    ),
                )
                .at(span));
            }
            fields.push((name.clone(), new.clone()));
        }
        let mut captures = self.forward.captures.clone();
        for ((_, v), k) in fields.iter().zip(&self.param_capture) {
            if let Some(k) = k {
                captures[*k] = Rc::new(RefCell::new(v.clone()));
            }
        }
        Ok(Model {
            def: self.def.clone(),
            params: Rc::new(Record::new(fields)),
            lr: self.lr.clone(),
            forward: Rc::new(Closure {
                def: self.forward.def.clone(),
                captures,
                kind: self.forward.kind,
            }),
            param_capture: self.param_capture.clone(),
        })
    }

    /// `net.NAME`.
    pub fn field(model: &Rc<Model>, name: &str) -> Option<Value> {
        Some(match name {
            "params" => Value::Record(model.params.clone()),
            "with" => Value::ModelWith(model.clone()),
            "lr" => Value::record(
                model
                    .params
                    .fields
                    .iter()
                    .zip(&model.lr)
                    .map(|((n, _), lr)| (n.clone(), Value::Float(*lr))),
            ),
            _ => return None,
        })
    }

    /// How a model prints: `two_layer(W: (100, 256), a: (256, 1))`.
    pub fn repr(&self) -> String {
        let params: Vec<String> = self
            .params
            .fields
            .iter()
            .map(|(n, v)| match super::traced::primal(v) {
                Value::Tensor(t) => format!("{n}: {}", crate::format::shape_str(t.shape())),
                v => format!("{n}: {}", v.kind()),
            })
            .collect();
        format!("<model {}({})>", self.def.name.name, params.join(", "))
    }
}

impl Interp {
    /// `two_layer(d: 100, h: 256, seed: 1)`: run the declaration's items in a
    /// fresh frame. With `seed:`, random initialisers draw from the instance's
    /// own stream, and the session's stream is left where it was.
    pub(super) fn instantiate(
        &mut self,
        def: &Rc<ModelDef>,
        pos: Vec<(Value, Span)>,
        mut named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<Value, Diag> {
        let seed = match named.iter().position(|(n, ..)| n.as_ref() == "seed") {
            Some(k) => match named.remove(k) {
                (_, Value::Int(s), _) if s >= 0 => Some(s as u64),
                (_, v, vspan) => {
                    return Err(Diag::new(
                        "flx::type::argument",
                        format!("`seed` is a non-negative Int, not {}", v.describe()),
                    )
                    .at(vspan))
                }
            },
            None => None,
        };
        let n = def.params.len();
        if pos.len() > n {
            return Err(too_many_args(&def.name.name, n, &pos));
        }
        if self.depth >= MAX_CALL_DEPTH {
            return Err(too_deep(span));
        }
        let new_base = self.stack.len();
        let npos = pos.len();
        self.stack.extend(pos.into_iter().map(|(v, _)| v));
        self.stack.resize(
            new_base + (def.frame_size.get() as usize).max(npos),
            Value::None,
        );
        let saved_base = std::mem::replace(&mut self.base, new_base);
        let saved_closure = self.closure.take();
        let saved_rng =
            seed.map(|s| std::mem::replace(&mut self.run.rng, ChaCha8Rng::seed_from_u64(s)));
        self.depth += 1;
        let result = self.build_model(def, npos, named, span);
        self.depth -= 1;
        if let Some(rng) = saved_rng {
            self.run.rng = rng;
        }
        self.stack.truncate(new_base);
        self.base = saved_base;
        self.closure = saved_closure;
        result.map_err(|d| d.in_call(&def.name.name, span))
    }

    fn build_model(
        &mut self,
        def: &Rc<ModelDef>,
        npos: usize,
        named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<Value, Diag> {
        self.bind_args(&def.name.name, &def.params, npos, named, span)?;
        let value = |interp: &mut Interp, e: &Expr| {
            interp.eval_value(e, "flx::syntax::control", "control flow in a model item")
        };
        let (mut params, mut lr, mut slots) = (Vec::new(), Vec::new(), Vec::new());
        let mut forward = None;
        for item in &def.items {
            match item {
                ModelItem::Param {
                    name,
                    init,
                    lr: scale,
                } => {
                    let v = match value(self, init)? {
                        Value::Int(i) => Value::Float(i as f64),
                        v @ (Value::Float(_) | Value::Tensor(_)) => v,
                        v => {
                            return Err(Diag::new(
                                "flx::model::param",
                                format!(
                                    "parameter `{}` must be a Float or a tensor, not {}",
                                    name.ident.name,
                                    v.describe()
                                ),
                            )
                            .at(init.span))
                        }
                    };
                    let s = match scale {
                        None => 1.0,
                        Some(e) => match value(self, e)?.as_f64() {
                            Some(s) if s.is_finite() && s >= 0.0 => s,
                            _ => {
                                return Err(Diag::new(
                                    "flx::model::lr",
                                    "a learning-rate scale is a number, zero or more",
                                )
                                .at(e.span))
                            }
                        },
                    };
                    self.bind_slot(name.slot.get(), v.clone());
                    params.push((name.ident.name.clone(), v));
                    lr.push(s);
                    slots.push(match name.slot.get() {
                        Slot::Local(i) | Slot::Boxed(i) => Some(i),
                        _ => None,
                    });
                }
                ModelItem::Let(pat, e) => {
                    let v = value(self, e)?;
                    self.bind_pattern(pat, v)?;
                }
                ModelItem::Forward(f) => forward = Some(self.make_closure(f, FnKind::Fn)),
            }
        }
        let Some(Value::Func(forward)) = forward else {
            return Err(
                Diag::new("flx::model::forward", "a model needs a `forward`").at(def.name.span),
            );
        };
        let param_capture = slots
            .iter()
            .map(|slot| {
                let captures = forward.def.captures.borrow();
                captures
                    .iter()
                    .position(|c| matches!((c, slot), (CaptureFrom::Local(j), Some(i)) if j == i))
            })
            .collect();
        Ok(Value::Model(Rc::new(Model {
            def: def.clone(),
            params: Rc::new(Record::new(params)),
            lr,
            forward,
            param_capture,
        })))
    }
}
