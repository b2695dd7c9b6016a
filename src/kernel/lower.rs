//! From a `kernel` declaration's syntax tree to a symbolic expression.
//!
//! Run by the resolver (so `flx check` reports a body it cannot
//! differentiate) and again when the declaration runs.

use std::collections::HashMap;
use std::rc::Rc;

use super::expr::{Geo, Graph, Id};
use crate::diag::{Diag, Span};
use crate::prim::{Binary, Differentiable, Unary};
use crate::signature::Builtins;
use crate::syntax::ast::*;

/// A kernel family as declared: hyperparameters and the body over them.
#[derive(Debug)]
pub struct Family {
    pub name: Rc<str>,
    pub params: Vec<Rc<str>>,
    pub defaults: Vec<Option<f64>>,
    pub graph: Graph,
    pub body: Id,
    pub span: Span,
}

/// Most distinct operations in a kernel body: its derivatives are a few
/// times larger, and each operation holds a chunk-sized register per thread.
const MAX_NODES: usize = 500;

const ALLOWED: &str = "arithmetic (+ - * / ^), numbers, the hyperparameters, \
    dist, sqdist, dot, xnorm, znorm, l1dist and exp log sqrt abs pow min max tanh sin cos sigmoid relu";

impl Family {
    /// `builtins` names the builtins that the body's calls resolved to.
    pub fn lower(def: &FnDef, builtins: &Builtins) -> Result<Family, Vec<Diag>> {
        let np = def.params.len();
        let mut l = Lower {
            builtins,
            graph: Graph::default(),
            np,
            lets: HashMap::new(),
            errors: Vec::new(),
            in_default: false,
        };
        let body = l.expr(&def.body);
        l.in_default = true;
        let mut defaults = Vec::with_capacity(np);
        for p in &def.params {
            defaults.push(p.default.as_ref().and_then(|d| {
                let id = l.expr(d);
                let c = l.graph.as_const(id);
                if c.is_none() && l.errors.is_empty() {
                    l.errors.push(
                        Diag::new(
                            "flx::kernel::default",
                            "a kernel hyperparameter's default must be a number",
                        )
                        .at(d.span),
                    );
                }
                c
            }));
        }
        if l.errors.is_empty() && l.graph.nodes.len() > MAX_NODES {
            l.errors.push(
                Diag::new(
                    "flx::kernel::too_large",
                    format!(
                        "this kernel body has {} distinct operations; the limit is {MAX_NODES}",
                        l.graph.nodes.len()
                    ),
                )
                .at(def.body.span),
            );
        }
        if !l.errors.is_empty() {
            return Err(l.errors);
        }
        Ok(Family {
            name: def.name.name.clone(),
            params: def
                .params
                .iter()
                .map(|p| p.name.ident.name.clone())
                .collect(),
            defaults,
            graph: l.graph,
            body,
            span: def.name.span,
        })
    }
}

struct Lower<'a> {
    builtins: &'a Builtins,
    graph: Graph,
    np: usize,
    /// Values of `let`s inside the body, by frame slot.
    lets: HashMap<u32, Id>,
    errors: Vec<Diag>,
    in_default: bool,
}

impl Lower<'_> {
    fn fail(&mut self, d: Diag) -> Id {
        self.errors.push(d);
        self.graph.constant(0.0)
    }

    fn refuse(&mut self, span: Span, what: &str) -> Id {
        self.fail(
            Diag::new(
                "flx::kernel::body",
                format!("{what} cannot appear in a kernel body"),
            )
            .at(span)
            .help(format!("a kernel body is a scalar formula: {ALLOWED}")),
        )
    }

    fn expr(&mut self, e: &Expr) -> Id {
        match &e.kind {
            ExprKind::Int(i) => self.graph.constant(*i as f64),
            ExprKind::Float(f) => self.graph.constant(*f),
            ExprKind::Name(n) => self.name(n),
            ExprKind::Unary(UnOp::Neg, x) => {
                let x = self.expr(x);
                self.graph.neg(x)
            }
            ExprKind::Binary(op, a, b) => {
                let Some(o) = op.elementwise() else {
                    return self.refuse(e.span, &format!("`{}`", op.symbol()));
                };
                if let Some(refused) = self.binary_refused(o, e.span) {
                    return refused;
                }
                let (a, b) = (self.expr(a), self.expr(b));
                self.graph.binary(o, a, b)
            }
            ExprKind::Call(callee, args) => self.call(callee, args, e.span),
            ExprKind::Block(b) => {
                let Some((last, init)) = b.stmts.split_last() else {
                    return self.refuse(b.span, "an empty block");
                };
                for s in init {
                    match &s.kind {
                        ExprKind::Let(Pattern::Bind(n), v) => {
                            let v = self.expr(v);
                            if let Slot::Local(i) | Slot::Boxed(i) = n.slot.get() {
                                self.lets.insert(i, v);
                            }
                        }
                        _ => {
                            self.refuse(s.span, "a statement other than `let`");
                        }
                    }
                }
                self.expr(last)
            }
            ExprKind::If(..) => self.fail(
                Diag::new("flx::kernel::body", "a kernel body cannot branch")
                    .at(e.span)
                    .help("write the cases with `min`, `max` or `abs`, which have derivatives almost everywhere"),
            ),
            ExprKind::Bool(_) => self.refuse(e.span, "a Bool"),
            ExprKind::Str(_) => self.refuse(e.span, "a string"),
            ExprKind::Lambda(_) => self.refuse(e.span, "a closure"),
            ExprKind::Index(..) => self.refuse(e.span, "indexing"),
            _ => self.refuse(e.span, "this expression"),
        }
    }

    fn name(&mut self, n: &Name) -> Id {
        match n.slot.get() {
            Slot::Local(i) | Slot::Boxed(i) => {
                let i = i as usize;
                if self.in_default {
                    return self.fail(
                        Diag::new(
                            "flx::kernel::default",
                            "a kernel hyperparameter's default must be a number",
                        )
                        .at(n.ident.span),
                    );
                }
                if i < self.np {
                    self.graph.hyper(i as u16)
                } else if i < self.np + Geo::ALL.len() {
                    self.graph.geo(Geo::ALL[i - self.np])
                } else {
                    match self.lets.get(&(i as u32)) {
                        Some(&v) => v,
                        None => self.refuse(n.ident.span, "this name"),
                    }
                }
            }
            // Already reported by the resolver.
            Slot::Unresolved => self.graph.constant(0.0),
            Slot::Global(_) | Slot::Capture(_) => self.fail(
                Diag::new(
                    "flx::kernel::body",
                    format!(
                        "a kernel body cannot read `{}`, which is defined outside it",
                        n.ident.name
                    ),
                )
                .at(n.ident.span)
                .help(format!(
                    "make it a hyperparameter, e.g. `kernel k(..., {} = 1.0)`",
                    n.ident.name
                )),
            ),
            Slot::Builtin(_) => self.refuse(n.ident.span, "a function used as a value"),
            Slot::Constant(k) => self
                .graph
                .constant(crate::syntax::ast::CONSTANTS[k as usize].1),
        }
    }

    fn not_differentiable(&mut self, span: Span, what: &str) -> Id {
        self.fail(
            Diag::new(
                "flx::kernel::not_differentiable",
                format!("{what} is not differentiable, so a kernel body cannot use it"),
            )
            .at(span)
            .help("`gram`, `krr` and `agop` need the body's derivative; use a smooth formula"),
        )
    }

    fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Id {
        let ExprKind::Name(n) = &callee.kind else {
            return self.refuse(callee.span, "this call");
        };
        let Slot::Builtin(b) = n.slot.get() else {
            if n.slot.get() == Slot::Unresolved {
                return self.graph.constant(0.0);
            }
            return self.fail(
                Diag::new(
                    "flx::kernel::body",
                    format!("a kernel body cannot call `{}`", n.ident.name),
                )
                .at(callee.span)
                .help("write the formula inline; only elementwise math builtins are allowed"),
            );
        };
        let name = self.builtins.name(b);
        if let Some(a) = args.iter().find(|a| a.name.is_some()) {
            return self.refuse(a.value.span, "a named argument");
        }
        let prim = match (Unary::by_builtin(name), name) {
            (Some(u), _) => Ok(u),
            (None, "pow") => Err(Binary::Pow),
            (None, "min") => Err(Binary::Min),
            (None, "max") => Err(Binary::Max),
            (None, "argmax" | "argmin" | "clip" | "where") => {
                return self.not_differentiable(callee.span, &format!("`{name}`"))
            }
            (None, _) => {
                return self.fail(
                    Diag::new(
                        "flx::kernel::body",
                        format!(
                            "`{name}` is not a scalar function, so a kernel body cannot use it"
                        ),
                    )
                    .at(callee.span)
                    .help(format!("a kernel body is a scalar formula: {ALLOWED}")),
                )
            }
        };
        if let Ok(u) = prim {
            if !u.in_kernels() {
                return self.not_differentiable(callee.span, &format!("`{name}`"));
            }
        }
        let arity = if prim.is_ok() { 1 } else { 2 };
        if args.len() != arity {
            return self.fail(
                Diag::new(
                    "flx::kernel::body",
                    format!(
                        "in a kernel body `{name}` takes {arity} argument{}",
                        if arity == 1 { "" } else { "s" }
                    ),
                )
                .at(span),
            );
        }
        let a: Vec<Id> = args.iter().map(|a| self.expr(&a.value)).collect();
        match prim {
            Ok(u) => self.graph.unary(u, a[0]),
            Err(op) => self.graph.binary(op, a[0], a[1]),
        }
    }

    /// The diagnostic for an operator a kernel body cannot write, if it is one.
    fn binary_refused(&mut self, op: Binary, span: Span) -> Option<Id> {
        if op.in_kernels() {
            return None;
        }
        Some(match op.differentiable() {
            Differentiable::No => self.not_differentiable(span, &format!("`{}`", op.name())),
            Differentiable::Yes | Differentiable::Flat => {
                self.refuse(span, &format!("`{}`", op.name()))
            }
        })
    }
}
