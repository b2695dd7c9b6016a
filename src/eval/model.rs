//! Instances of `model` declarations: named parameters with learning-rate
//! scales, and `forward` as a closure over the construction frame.
//!
//! An instance is a value like any other: `net.with(p)` builds a new instance
//! that shares everything but the parameters, which is how `grad` and `train`
//! put traced parameters into a model without touching the original.

use std::cell::RefCell;
use std::rc::Rc;

use super::value::{Closure, Record, Value};
use crate::diag::{Diag, Span};
use crate::syntax::ast::ModelDef;

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
            params: Rc::new(Record { fields }),
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
            "lr" => Value::Record(Rc::new(Record {
                fields: model
                    .params
                    .fields
                    .iter()
                    .zip(&model.lr)
                    .map(|((n, _), lr)| (n.clone(), Value::Float(*lr)))
                    .collect(),
            })),
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
                Value::Tensor(t) => format!("{n}: {}", super::format::shape_str(t.shape())),
                v => format!("{n}: {}", v.kind()),
            })
            .collect();
        format!("<model {}({})>", self.def.name.name, params.join(", "))
    }
}
