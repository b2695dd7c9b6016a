//! The tree-walking interpreter. Variables live in one value stack: a call
//! pushes a frame of `frame_size` slots and every name was resolved to a slot
//! beforehand, so no lookup by string happens at run time.
//!
//! Invariants: every error carries a span; the step budget and the interrupt
//! flag are checked on every loop iteration and call, so no program can hang
//! a caller that set a budget.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::builtins::{self, Args};
use super::format;
use super::index;
use super::model::Model;
use super::ops;
use super::traced;
use super::value::{any_tensor, Closure, Elem, FnKind, Record, Value, MAX_DEPTH};
use crate::check::Linker;
use crate::diag::{Diag, Span};
use crate::host::Host;
use crate::progress::Progress;
use crate::signature::Signature;
use crate::syntax::ast::*;

/// Deepest nesting of flx calls (the interpreter runs on a thread with a large stack).
pub const MAX_CALL_DEPTH: u32 = 5_000;

/// Floating-point operations (a multiply-add is two) that count as one step
/// of the budget: a 256 × 256 matmul costs 512 steps.
pub const FLOPS_PER_STEP: u64 = 1 << 16;

pub enum Flow {
    Break,
    Continue,
    Return(Value),
    Error(Diag),
}

impl From<Diag> for Flow {
    fn from(d: Diag) -> Flow {
        Flow::Error(d)
    }
}

pub type Eval = Result<Value, Flow>;

/// Metric rows printed by `log(...)`: the header is repeated when the columns change.
#[derive(Default)]
pub struct LogState {
    pub columns: Vec<String>,
    pub widths: Vec<usize>,
}

/// What builtins keep between calls of one run.
pub struct Run {
    /// The session's random stream (`randn` without `seed:`).
    pub rng: ChaCha8Rng,
    pub log: LogState,
    /// Folder that relative paths in file builtins are resolved against.
    pub script_dir: std::path::PathBuf,
    /// What `run.json` records of this run.
    pub info: crate::outputs::RunInfo,
    /// The output folder came from the command line: `out(dir)` defers to it.
    pub outputs_from_command_line: bool,
    /// Notes already given (`Host::note`), each said once per run.
    pub noted: std::collections::HashSet<&'static str>,
}

/// The interpreter. Its parts: the linker (sources, builtins, modules), the
/// module-level values, the call stack and step budget (private), the host
/// through which every effect goes, the run's state, and the machine code
/// compiled so far.
pub struct Interp {
    pub(crate) linker: Linker,
    pub(crate) globals: Vec<Value>,
    /// Module-level names whose defining input stopped before giving them a
    /// value, with why ("was interrupted"): said when one is used.
    pub(crate) unfinished: HashMap<u32, &'static str>,
    modules_ready: Vec<bool>,
    pub(super) stack: Vec<Value>,
    pub(super) base: usize,
    pub(super) closure: Option<Rc<Closure>>,
    pub(super) depth: u32,
    pub(super) steps: u64,
    pub(crate) step_limit: u64,
    /// Printing, files, the clock, the output folder.
    pub(crate) host: Box<dyn Host>,
    /// The host's interrupt flag, or one nothing raises.
    interrupt: Arc<AtomicBool>,
    /// Whether anything can raise `interrupt`: long factorisations then run
    /// in stoppable panels.
    pub(crate) interruptible: bool,
    pub(crate) run: Run,
    /// Functions compiled to machine code, per argument types (`native`).
    pub(crate) native: super::native::Cache,
    /// Elementwise chains compiled to machine code (`fused`).
    pub(crate) fused: super::fused::Cache,
    /// The embedding program's functions: builtin `TABLE.len() + k` is `host_fns[k]`.
    host_fns: Vec<(Rc<Signature>, HostFn)>,
}

/// A function of the embedding program, callable from flx (`Session::define`).
pub type HostFn = Rc<dyn Fn(&Args) -> Result<Value, Diag>>;

impl Interp {
    pub fn new(host: Box<dyn Host>, seed: u64) -> Interp {
        let flag = host.interrupt();
        Interp {
            linker: Linker::new(builtins::STATIC.clone()),
            globals: Vec::new(),
            unfinished: HashMap::new(),
            modules_ready: Vec::new(),
            stack: Vec::with_capacity(1024),
            base: 0,
            closure: None,
            depth: 0,
            steps: 0,
            step_limit: u64::MAX,
            interruptible: flag.is_some(),
            interrupt: flag.unwrap_or_default(),
            host,
            run: Run {
                rng: ChaCha8Rng::seed_from_u64(seed),
                log: LogState::default(),
                script_dir: std::path::PathBuf::from("."),
                info: Default::default(),
                outputs_from_command_line: false,
                noted: Default::default(),
            },
            native: Default::default(),
            fused: Default::default(),
            host_fns: Vec::new(),
        }
    }

    /// Add a host function as the next builtin.
    pub(crate) fn define_host_fn(
        &mut self,
        name: &str,
        signature: &str,
        doc: &str,
        f: HostFn,
    ) -> Result<(), String> {
        let word = name.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !word || crate::syntax::lex::KEYWORDS.contains(&name) {
            return Err(format!(
                "`{name}` cannot name a function (a word that is not a keyword)"
            ));
        }
        let i = self.linker.builtins.add(name, signature, doc)?;
        debug_assert_eq!(i as usize, builtins::TABLE.len() + self.host_fns.len());
        let sig = Rc::new(self.linker.builtins.signature(i).clone());
        self.host_fns.push((sig, f));
        Ok(())
    }

    /// `f(args)` for the host function that is builtin `b`.
    fn call_host_fn(
        &mut self,
        b: usize,
        pos: Vec<(Value, Span)>,
        named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<Value, Diag> {
        let (sig, f) = self.host_fns[b - builtins::TABLE.len()].clone();
        // What a host function does is its own: under `vmap`, once per slice.
        if traced::probing() {
            return Err(traced::unbatchable(span));
        }
        if pos.iter().any(|(v, _)| traced::holds_traced(v))
            || named.iter().any(|(_, v, _)| traced::holds_traced(v))
        {
            return Err(Diag::new(
                "flx::grad::not_differentiable",
                format!("the host function `{}` is not differentiable", sig.name),
            )
            .at(span));
        }
        let args = Args::bind(&sig, pos, named, span)?;
        if let Err(Flow::Error(d)) = self.tick(span) {
            return Err(d);
        }
        let value = f(&args).map_err(|d| d.or_at(span))?;
        self.poll_interrupt(span)?;
        value.check_depth(span)?;
        Ok(value)
    }

    /// The flag compiled code polls.
    pub(crate) fn interrupt_flag(&self) -> &AtomicBool {
        &self.interrupt
    }

    /// Make room for every global slot and module the linker has handed out.
    pub(crate) fn sync_globals(&mut self) {
        let n = self.linker.n_globals as usize;
        if self.globals.len() < n {
            self.globals.resize(n, Value::Undefined);
        }
        if self.modules_ready.len() < self.linker.modules.len() {
            self.modules_ready.resize(self.linker.modules.len(), false);
        }
    }

    /// Run a resolved module's top-level code; the value of its last statement is returned.
    pub fn run_module(&mut self, module: &Module) -> Result<Value, Diag> {
        self.sync_globals();
        let saved_base = self.base;
        let saved_closure = self.closure.take();
        self.base = self.stack.len();
        self.stack
            .resize(self.base + module.frame_size.get() as usize, Value::None);
        // Module-level functions capture nothing, so all of them exist before the
        // top level runs: a script may call a function defined further down.
        for stmt in &module.stmts {
            if let ExprKind::Fn(def) | ExprKind::Proc(def) | ExprKind::Loss(def) = &stmt.kind {
                let kind = fn_kind(&stmt.kind);
                let f = self.make_closure(def, kind);
                self.bind_slot(def.binding.get(), f);
            }
        }
        let mut result = Ok(Value::None);
        // Kernels capture nothing either; their declarations run first too.
        for stmt in &module.stmts {
            if let ExprKind::Kernel(def) = &stmt.kind {
                match super::kernel_values::declare(def, &self.linker.builtins) {
                    Ok(k) => self.bind_slot(def.binding.get(), k),
                    Err(d) => {
                        result = Err(d);
                        break;
                    }
                }
            }
        }
        let hoisted = result.is_ok();
        for stmt in module.stmts.iter().filter(|_| hoisted) {
            if matches!(
                stmt.kind,
                ExprKind::Fn(_) | ExprKind::Proc(_) | ExprKind::Loss(_) | ExprKind::Kernel(_)
            ) {
                continue;
            }
            match self.exec(stmt) {
                Ok(v) => result = Ok(v),
                Err(Flow::Error(d)) => {
                    result = Err(d);
                    break;
                }
                Err(_) => {
                    result = Err(
                        Diag::new("flx::internal", "control flow escaped the module").at(stmt.span),
                    );
                    break;
                }
            }
        }
        self.stack.truncate(self.base);
        self.base = saved_base;
        self.closure = saved_closure;
        result
    }

    pub(super) fn tick(&mut self, span: Span) -> Result<(), Flow> {
        self.steps += 1;
        if self.steps > self.step_limit {
            return Err(self.out_of_steps(span).into());
        }
        if self.steps & 0x3ff == 0 {
            self.poll_interrupt(span)?;
        }
        Ok(())
    }

    /// Count `flops` of work a builtin is about to do against the step
    /// budget (one step per `FLOPS_PER_STEP`), so that a budget bounds the
    /// work inside builtins too: a program that asks `krr` or `@` for hours
    /// is stopped before it starts, not after.
    pub fn charge(&mut self, flops: u64, span: Span) -> Result<(), Diag> {
        self.steps = self.steps.saturating_add(flops / FLOPS_PER_STEP);
        if self.steps > self.step_limit {
            return Err(self.out_of_steps(span));
        }
        Ok(())
    }

    fn out_of_steps(&self, span: Span) -> Diag {
        Diag::new(
            "flx::run::step_limit",
            format!("stopped after {} steps", self.step_limit),
        )
        .at(span)
    }

    /// Stop with "interrupted" if Ctrl-C was pressed (the REPL sets the flag).
    /// Checked every 1024 steps, after every builtin call, and between the
    /// phases of long builtins.
    pub fn poll_interrupt(&self, span: Span) -> Result<(), Diag> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(self.interrupted(span));
        }
        Ok(())
    }

    /// The "interrupted" error, for code that saw the flag itself; lowers it.
    pub fn interrupted(&self, span: Span) -> Diag {
        self.interrupt.store(false, Ordering::Relaxed);
        Diag::new("flx::run::interrupted", "interrupted").at(span)
    }

    // ---- variables ------------------------------------------------------------

    #[inline]
    fn read_slot(&self, slot: Slot, name: &Ident) -> Result<Value, Diag> {
        match slot {
            Slot::Local(i) => return Ok(self.stack[self.base + i as usize].clone()),
            Slot::Global(g) => {
                if let Some(v) = self.globals.get(g as usize) {
                    if !matches!(v, Value::Undefined) {
                        return Ok(v.clone());
                    }
                }
            }
            _ => {}
        }
        self.read_slot_slow(slot, name)
    }

    #[inline(never)]
    fn read_slot_slow(&self, slot: Slot, name: &Ident) -> Result<Value, Diag> {
        let v = match slot {
            Slot::Local(i) => self.stack[self.base + i as usize].clone(),
            Slot::Boxed(i) => match &self.stack[self.base + i as usize] {
                Value::Cell(c) => c.borrow().clone(),
                _ => Value::Undefined,
            },
            Slot::Capture(i) => match &self.closure {
                Some(c) => c.captures[i as usize].borrow().clone(),
                None => Value::Undefined,
            },
            Slot::Global(g) => self
                .globals
                .get(g as usize)
                .cloned()
                .unwrap_or(Value::Undefined),
            Slot::Builtin(b) => Value::Builtin(b),
            Slot::Constant(k) => Value::Float(CONSTANTS[k as usize].1),
            Slot::Unresolved => {
                return Err(
                    Diag::new("flx::internal", format!("`{}` was not resolved", name.name))
                        .at(name.span),
                )
            }
        };
        if let (Value::Undefined, Slot::Global(g)) = (&v, slot) {
            if let Some(why) = self.unfinished.get(&g) {
                return Err(Diag::new(
                    "flx::name::undefined",
                    format!(
                        "`{}` has no value: the input that defines it {why}",
                        name.name
                    ),
                )
                .at(name.span)
                .help(format!(
                    "run its definition again to give `{}` a value",
                    name.name
                )));
            }
        }
        if let Value::Undefined = v {
            return Err(Diag::new(
                "flx::name::undefined",
                format!("`{}` is used before it is defined", name.name),
            )
            .at(name.span)
            .help("a function may use a module-level name only after its `let` has run"));
        }
        Ok(v)
    }

    /// Bind a new variable (a `let`, a parameter, a loop variable).
    pub(super) fn bind_slot(&mut self, slot: Slot, v: Value) {
        match slot {
            Slot::Local(i) => self.stack[self.base + i as usize] = v,
            Slot::Boxed(i) => {
                self.stack[self.base + i as usize] = Value::Cell(Rc::new(RefCell::new(v)))
            }
            Slot::Global(g) => self.globals[g as usize] = v,
            Slot::Capture(_) | Slot::Builtin(_) | Slot::Constant(_) | Slot::Unresolved => {}
        }
    }

    /// Re-assign an existing variable.
    fn write_slot(&mut self, slot: Slot, v: Value) {
        match slot {
            Slot::Local(i) => self.stack[self.base + i as usize] = v,
            Slot::Boxed(i) => {
                if let Value::Cell(c) = &self.stack[self.base + i as usize] {
                    *c.borrow_mut() = v;
                }
            }
            Slot::Capture(i) => {
                if let Some(c) = &self.closure {
                    *c.captures[i as usize].borrow_mut() = v;
                }
            }
            Slot::Global(g) => self.globals[g as usize] = v,
            Slot::Builtin(_) | Slot::Constant(_) | Slot::Unresolved => {}
        }
    }

    /// Take a variable's value out for an in-place update (no copy when unshared).
    fn take_slot(&mut self, slot: Slot) -> Value {
        match slot {
            Slot::Local(i) => {
                std::mem::replace(&mut self.stack[self.base + i as usize], Value::None)
            }
            Slot::Global(g) => std::mem::replace(&mut self.globals[g as usize], Value::None),
            Slot::Boxed(i) => match &self.stack[self.base + i as usize] {
                Value::Cell(c) => std::mem::replace(&mut *c.borrow_mut(), Value::None),
                _ => Value::Undefined,
            },
            Slot::Capture(i) => match &self.closure {
                Some(c) => {
                    std::mem::replace(&mut *c.captures[i as usize].borrow_mut(), Value::None)
                }
                None => Value::Undefined,
            },
            Slot::Builtin(_) | Slot::Constant(_) | Slot::Unresolved => Value::Undefined,
        }
    }

    #[inline(never)]
    pub(super) fn bind_pattern(&mut self, pat: &Pattern, v: Value) -> Result<(), Diag> {
        match pat {
            Pattern::Bind(name) => {
                self.bind_slot(name.slot.get(), v);
                Ok(())
            }
            Pattern::Tuple(parts, span) => {
                let items: Vec<Value> = match &v {
                    Value::Tuple(t) | Value::List(t) => t.to_vec(),
                    v if v.shape().is_some_and(|s| !s.is_empty()) => {
                        let n = v.shape().expect("a tensor")[0];
                        any_tensor!(v, t => (0..n).map(|i| index::tensor_item(t, i)).collect())
                            .expect("a tensor")
                    }
                    other => {
                        return Err(Diag::new(
                            "flx::type::destructure",
                            format!(
                                "cannot unpack {} into {} names",
                                other.describe(),
                                parts.len()
                            ),
                        )
                        .at(*span))
                    }
                };
                if items.len() != parts.len() {
                    return Err(Diag::new(
                        "flx::type::destructure",
                        format!(
                            "cannot unpack {} values into {} names",
                            items.len(),
                            parts.len()
                        ),
                    )
                    .at(*span));
                }
                for (p, item) in parts.iter().zip(items) {
                    self.bind_pattern(p, item)?;
                }
                Ok(())
            }
        }
    }

    // ---- statements and expressions ------------------------------------------

    fn exec_block(&mut self, block: &Block) -> Eval {
        let mut last = Value::None;
        for s in &block.stmts {
            // `eval` hands declarations to `exec`; everything else it runs directly.
            last = self.eval(s)?;
        }
        Ok(last)
    }

    #[inline(never)]
    fn exec(&mut self, e: &Expr) -> Eval {
        match &e.kind {
            ExprKind::Let(pat, value) => {
                let v = self.eval(value)?;
                self.bind_pattern(pat, v)?;
                Ok(Value::None)
            }
            ExprKind::Fn(def) | ExprKind::Proc(def) | ExprKind::Loss(def) => {
                let kind = fn_kind(&e.kind);
                // A nested recursive fn captures its own cell: make the cell first.
                self.bind_slot(def.binding.get(), Value::None);
                let f = self.make_closure(def, kind);
                self.write_slot(def.binding.get(), f);
                Ok(Value::None)
            }
            ExprKind::Kernel(def) => {
                let k = super::kernel_values::declare(def, &self.linker.builtins)?;
                self.bind_slot(def.binding.get(), k);
                Ok(Value::None)
            }
            ExprKind::Model(def) => {
                self.bind_slot(def.binding.get(), Value::ModelDecl(def.clone()));
                Ok(Value::None)
            }
            ExprKind::Use(u) => {
                let id = u.module.get() as usize;
                self.sync_globals();
                if !self.modules_ready[id] {
                    self.modules_ready[id] = true;
                    let ast = self.linker.modules[id].ast.clone();
                    self.run_module(&ast).map_err(|d| {
                        d.in_call(&format!("use {}", self.linker.modules[id].name), e.span)
                    })?;
                }
                self.bind_slot(u.binding.slot.get(), Value::Module(id as u32));
                Ok(Value::None)
            }
            _ => self.eval(e),
        }
    }

    pub fn eval(&mut self, e: &Expr) -> Eval {
        match &e.kind {
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Float(f) => Ok(Value::Float(*f)),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::None => Ok(Value::None),
            ExprKind::Str(parts) => self.eval_string(parts),
            ExprKind::Name(n) => Ok(self.read_slot(n.slot.get(), &n.ident)?),
            ExprKind::Binary(..) | ExprKind::Unary(..) | ExprKind::Call(..)
                if super::fused::is_chain(e) && crate::jit::enabled() =>
            {
                self.eval_chain(e)
            }
            ExprKind::Binary(op, a, b) => self.eval_binary(*op, a, b),
            ExprKind::Unary(op, x) => {
                let v = self.eval(x)?;
                Ok(ops::unary(*op, v).map_err(|d| d.or_at(e.span))?)
            }
            ExprKind::Call(callee, args) => self.eval_call(callee, args, e.span),
            ExprKind::Index(x, items) => {
                let v = self.eval(x)?;
                let idx = self.eval_index(items)?;
                Ok(index::index(&v, &idx, x.span)?)
            }
            ExprKind::Field(x, field) => {
                let v = self.eval(x)?;
                self.field(v, field)
            }
            ExprKind::List(items) => {
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    vals.push((self.eval(i)?, i.span));
                }
                Ok(ops::list_literal(vals, e.span)?)
            }
            ExprKind::Tuple(items) => {
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    vals.push(self.eval(i)?);
                }
                let tuple = Value::tuple(vals);
                tuple.check_depth(e.span)?;
                Ok(tuple)
            }
            ExprKind::Record(fields) => {
                let mut rec = Vec::with_capacity(fields.len());
                for (name, v) in fields {
                    rec.push((name.name.clone(), self.eval(v)?));
                }
                let rec = Value::Record(Rc::new(Record::new(rec)));
                rec.check_depth(e.span)?;
                Ok(rec)
            }
            ExprKind::Range {
                start,
                end,
                inclusive,
            } => {
                let s = self.eval(start)?;
                let t = self.eval(end)?;
                let (Value::Int(s), Value::Int(t)) = (&s, &t) else {
                    let bad = if matches!(s, Value::Int(_)) {
                        (end, t)
                    } else {
                        (start, s)
                    };
                    return Err(Diag::new(
                        "flx::type::range",
                        format!("range bounds must be Int, found {}", bad.1.describe()),
                    )
                    .at(bad.0.span)
                    .help("use `linspace` or `arange` for ranges of floats")
                    .into());
                };
                let end = if *inclusive { t.saturating_add(1) } else { *t };
                Ok(Value::Range(Rc::new((*s, end))))
            }
            ExprKind::Lambda(def) => Ok(self.make_closure(def, FnKind::Closure)),
            ExprKind::If(cond, then, otherwise) => {
                if self.condition(cond)? {
                    self.exec_block(then)
                } else if let Some(o) = otherwise {
                    self.eval(o)
                } else {
                    Ok(Value::None)
                }
            }
            ExprKind::Block(b) => self.exec_block(b),
            ExprKind::Try(body, name, handler) => match self.exec_block(body) {
                Err(Flow::Error(d)) if caught(&d) => {
                    let e = self.error_record(&d);
                    self.bind_slot(name.slot.get(), e);
                    self.exec_block(handler)
                }
                other => other,
            },
            ExprKind::For(pat, iter, body) => self.eval_for(pat, iter, body),
            ExprKind::Comprehension(elem, clauses) => {
                let mut out = Vec::new();
                self.comprehension(elem, clauses, &mut out)?;
                Ok(ops::list_literal(out, e.span)?)
            }
            ExprKind::While(cond, body) => {
                loop {
                    self.tick(e.span)?;
                    if !self.condition(cond)? {
                        break;
                    }
                    match self.exec_block(body) {
                        Ok(_) | Err(Flow::Continue) => {}
                        Err(Flow::Break) => break,
                        Err(other) => return Err(other),
                    }
                }
                Ok(Value::None)
            }
            ExprKind::Break => Err(Flow::Break),
            ExprKind::Continue => Err(Flow::Continue),
            ExprKind::Return(v) => {
                let v = match v {
                    Some(v) => self.eval(v)?,
                    None => Value::None,
                };
                Err(Flow::Return(v))
            }
            ExprKind::Assign(place, op, value) => {
                let rhs = self.eval(value)?;
                if place.path.is_empty() && op.is_none() {
                    self.write_slot(place.root.slot.get(), rhs);
                } else {
                    self.assign(place, *op, rhs, value.span)?;
                }
                Ok(Value::None)
            }
            ExprKind::Let(..)
            | ExprKind::Fn(_)
            | ExprKind::Proc(_)
            | ExprKind::Loss(_)
            | ExprKind::Kernel(_)
            | ExprKind::Model(_)
            | ExprKind::Use(_) => self.exec(e),
        }
    }

    #[inline(never)]
    fn condition(&mut self, cond: &Expr) -> Result<bool, Flow> {
        match self.eval(cond)? {
            Value::Bool(b) => Ok(b),
            other => Err(Diag::new(
                "flx::type::condition",
                format!("a condition must be Bool, found {}", other.describe()),
            )
            .at(cond.span)
            .help(match other {
                v if v.is_tensor() => "reduce it first, e.g. `all(x > 0)` or `any(x > 0)`",
                _ => "compare it, e.g. `n > 0` or `x != none`",
            })
            .into()),
        }
    }

    fn eval_binary(&mut self, op: BinOp, a: &Expr, b: &Expr) -> Eval {
        if matches!(op, BinOp::And | BinOp::Or) {
            // Numbers short-circuit; Bool tensors combine elementwise.
            let l = self.logic_operand(op, a)?;
            if let Value::Bool(x) = l {
                if (op == BinOp::And) != x {
                    return Ok(l);
                }
                return self.logic_operand(op, b);
            }
            let r = self.logic_operand(op, b)?;
            return ops::logic(op, &l, &r, a.span, b.span).map_err(Flow::from);
        }
        let l = self.eval(a)?;
        let r = self.eval(b)?;
        if let Some(v) = ops::scalar_fast(op, &l, &r) {
            return Ok(v);
        }
        if op == BinOp::MatMul {
            if let (Some(x), Some(y)) = (l.shape(), r.shape()) {
                self.charge(matmul_flops(x, y), a.span)?;
            }
        }
        ops::binary(op, l, r, a.span, b.span).map_err(Flow::from)
    }

    #[inline(never)]
    fn logic_operand(&mut self, op: BinOp, e: &Expr) -> Result<Value, Flow> {
        match self.eval(e)? {
            v @ (Value::Bool(_) | Value::BoolTensor(_)) => Ok(v),
            other => Err(Diag::new(
                "flx::type::logic",
                format!(
                    "`{}` needs Bool operands, found {}",
                    op.symbol(),
                    other.describe()
                ),
            )
            .at(e.span)
            .help(if other.is_tensor() {
                "`and`, `or` and `not` are elementwise on Bool tensors: compare first, e.g. `(x > 0) and (x < 1)`"
            } else {
                "compare it first, e.g. `n > 0`"
            })
            .into()),
        }
    }

    #[inline(never)]
    fn eval_for(&mut self, pat: &Pattern, iter: &Expr, body: &Block) -> Eval {
        let (it, label) = match self.eval(iter)? {
            Value::Progress(p) => (p.0.clone(), Some(p.1.clone())),
            it => (it, None),
        };
        let n = iteration_count(&it).ok_or_else(|| {
            Diag::new(
                "flx::type::iterate",
                format!("cannot iterate over {}", it.describe()),
            )
            .at(iter.span)
            .help("iterate over a range `0..n`, a list, a tuple, a record or a tensor's rows")
        })?;
        let bar = label.map(|l| {
            Progress::new(
                Some(n),
                "{prefix} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)",
                l.as_deref().map_or("", String::as_str),
            )
        });
        for i in 0..n {
            let v = iteration_item(&it, i);
            self.tick(iter.span)?;
            match pat {
                Pattern::Bind(name) => self.bind_slot(name.slot.get(), v),
                _ => self.bind_pattern(pat, v)?,
            }
            match self.exec_block(body) {
                Ok(_) | Err(Flow::Continue) => {}
                Err(Flow::Break) => break,
                Err(other) => return Err(other),
            }
            if let Some(b) = &bar {
                b.set(i + 1);
            }
        }
        Ok(Value::None)
    }

    /// What `catch e` binds: `{code, message, line}` (line 0 when the error has no place).
    fn error_record(&self, d: &Diag) -> Value {
        let line = d
            .span
            .map_or(0, |s| self.linker.sources.line_col(s.file, s.start).0);
        Value::record([
            ("code", Value::str(d.code)),
            ("message", Value::str(&d.message)),
            ("line", Value::Int(line as i64)),
        ])
    }

    /// The elements of `[elem clauses...]`, depth first, into `out`.
    #[inline(never)]
    fn comprehension(
        &mut self,
        elem: &Expr,
        clauses: &[Clause],
        out: &mut Vec<(Value, Span)>,
    ) -> Result<(), Flow> {
        match clauses {
            [] => {
                out.push((self.eval(elem)?, elem.span));
                ops::too_long(out.len(), elem.span)?;
            }
            [Clause::If(c), rest @ ..] => {
                if self.condition(c)? {
                    self.comprehension(elem, rest, out)?;
                }
            }
            [Clause::For(pat, iter), rest @ ..] => {
                let it = self.eval(iter)?;
                let n = iteration_count(&it).ok_or_else(|| {
                    Diag::new(
                        "flx::type::iterate",
                        format!("cannot iterate over {}", it.describe()),
                    )
                    .at(iter.span)
                })?;
                for i in 0..n {
                    self.tick(iter.span)?;
                    self.bind_pattern(pat, iteration_item(&it, i))?;
                    self.comprehension(elem, rest, out)?;
                }
            }
        }
        Ok(())
    }

    #[inline(never)]
    fn eval_string(&mut self, parts: &[StrPart]) -> Eval {
        let mut s = String::new();
        for p in parts {
            match p {
                StrPart::Text(t) => s.push_str(t),
                StrPart::Interp { expr, spec } => {
                    let v = self.eval(expr)?;
                    if traced::probing() && traced::is_traced(&v) {
                        return Err(traced::unbatchable(expr.span).into());
                    }
                    match spec {
                        None => s.push_str(&format::display(&v)),
                        Some((spec, span)) => {
                            let text = format::apply_spec(&v, spec).map_err(|msg| {
                                Diag::new("flx::format::spec", msg).at(*span).help(
                                    "format specs follow Python's: `.3`, `.2e`, `>8.4f`, `,d`",
                                )
                            })?;
                            s.push_str(&text);
                        }
                    }
                }
            }
        }
        Ok(Value::Str(Rc::new(s)))
    }

    #[inline(never)]
    fn eval_index(&mut self, items: &[IndexItem]) -> Result<Vec<index::Index>, Flow> {
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            out.push(match it {
                IndexItem::At(x) => index::Index::At(self.eval(x)?, x.span),
                IndexItem::Slice {
                    start,
                    stop,
                    step,
                    span,
                } => {
                    let mut bound = |b: &Option<Expr>| -> Result<Option<i64>, Flow> {
                        match b {
                            None => Ok(None),
                            Some(x) => match self.eval(x)? {
                                Value::Int(i) => Ok(Some(i)),
                                Value::None => Ok(None),
                                other => Err(Diag::new(
                                    "flx::index::type",
                                    format!("slice bounds must be Int, found {}", other.describe()),
                                )
                                .at(x.span)
                                .into()),
                            },
                        }
                    };
                    let (a, b, c) = (bound(start)?, bound(stop)?, bound(step)?);
                    if c == Some(0) {
                        return Err(Diag::new("flx::index::step", "slice step cannot be zero")
                            .at(*span)
                            .into());
                    }
                    index::Index::Slice(a, b, c, *span)
                }
            });
        }
        Ok(out)
    }

    /// The names `v.NAME` accepts, for completion; kept beside `field`, which reads them.
    pub fn field_names(&self, v: &Value) -> Vec<String> {
        match v {
            Value::Record(r) => r.fields.iter().map(|(n, _)| n.to_string()).collect(),
            Value::Module(id) => self.linker.modules[*id as usize]
                .order
                .iter()
                .map(|n| n.to_string())
                .collect(),
            Value::Tuple(t) => (0..t.len()).map(|i| i.to_string()).collect(),
            v if v.is_tensor() => vec!["T".into()],
            Value::Kernel(k) => k.family().map_or_else(Vec::new, |f| {
                f.params.iter().map(|p| p.to_string()).collect()
            }),
            Value::Predictor(_) => super::kernel_values::PREDICTOR_FIELDS
                .iter()
                .map(|f| f.to_string())
                .collect(),
            Value::Model(_) => super::model::FIELDS.iter().map(|f| f.to_string()).collect(),
            Value::Builtin(group) => self
                .linker
                .builtins
                .members(*group)
                .iter()
                .map(|f| f.to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `v.name` where reading it computes nothing (records, modules, tuples):
    /// what completion may look into.
    pub fn member(&self, v: &Value, name: &str) -> Option<Value> {
        match v {
            Value::Record(r) => r.get(name).cloned(),
            Value::Module(id) => {
                let g = self.linker.modules[*id as usize].exports.get(name)?;
                self.globals.get(g.index as usize).cloned()
            }
            Value::Tuple(t) => t.get(name.parse::<usize>().ok()?).cloned(),
            Value::Builtin(group) => self
                .linker
                .builtins
                .member(*group, name)
                .map(Value::Builtin),
            _ => None,
        }
    }

    #[inline(never)]
    fn field(&mut self, v: Value, field: &Ident) -> Eval {
        let name = field.name.as_ref();
        if let Some(r) = super::kernel_values::field(&v, name, field.span) {
            return r.map_err(Flow::from);
        }
        if let Value::Model(m) = &v {
            if let Some(x) = Model::field(m, name) {
                return Ok(x);
            }
        }
        match &v {
            Value::Record(r) => match r.get(name) {
                Some(x) => Ok(x.clone()),
                None => {
                    let mut d = Diag::new(
                        "flx::record::field",
                        format!("record has no field `{name}`"),
                    )
                    .at(field.span);
                    let names: Vec<&str> = r.fields.iter().map(|(n, _)| n.as_ref()).collect();
                    d = d.help(
                        match crate::diag::did_you_mean(name, names.iter().copied()) {
                            Some(m) => m,
                            None => format!("its fields: {}", names.join(", ")),
                        },
                    );
                    Err(d.into())
                }
            },
            Value::Builtin(group) if self.linker.builtins.member(*group, name).is_some() => Ok(
                Value::Builtin(self.linker.builtins.member(*group, name).expect("a member")),
            ),
            Value::Module(id) => {
                let m = &self.linker.modules[*id as usize];
                match m.exports.get(name) {
                    Some(g) => {
                        let g = g.index;
                        self.read_slot(Slot::Global(g), field).map_err(Flow::from)
                    }
                    None => Err(Diag::new(
                        "flx::module::member",
                        format!("module has no member `{name}`"),
                    )
                    .at(field.span)
                    .into()),
                }
            }
            Value::Tuple(t) if name.bytes().all(|b| b.is_ascii_digit()) => {
                let i: usize = name.parse().unwrap_or(usize::MAX);
                t.get(i).cloned().ok_or_else(|| {
                    Diag::new(
                        "flx::index::range",
                        format!(
                            "tuple index {name} is out of range for a tuple of {}",
                            t.len()
                        ),
                    )
                    .at(field.span)
                    .into()
                })
            }
            v if name == "T" && v.is_tensor() => Ok(
                any_tensor!(v, t => Elem::tensor((**t).clone().reversed_axes())).expect("a tensor"),
            ),
            Value::Traced(_) if name == "T" => Ok(traced::transpose(v, field.span)?),
            _ => Err(Diag::new(
                "flx::type::field",
                format!("{} has no field `{name}`", v.describe()),
            )
            .at(field.span)
            .help(if v.is_tensor() {
                "tensors have `.T`; use `shape(x)`, `rows(x)`, `cols(x)`"
            } else if matches!(v, Value::Model(_)) {
                "models have `.params`, `.with(params)` and `.lr`"
            } else {
                "fields belong to records and modules"
            })
            .into()),
        }
    }

    // ---- assignment -------------------------------------------------------------

    #[inline(never)]
    fn assign(
        &mut self,
        place: &Place,
        op: Option<BinOp>,
        rhs: Value,
        rhs_span: Span,
    ) -> Result<(), Flow> {
        let slot = place.root.slot.get();
        if place.path.is_empty() {
            let v = match op {
                None => rhs,
                Some(op) => {
                    let cur = self.read_slot(slot, &place.root.ident)?;
                    ops::binary(op, cur, rhs, place.span, rhs_span)?
                }
            };
            self.write_slot(slot, v);
            return Ok(());
        }
        // Evaluate index expressions before taking the value out of its slot.
        let mut steps = Vec::with_capacity(place.path.len());
        for step in &place.path {
            steps.push(match step {
                PlaceStep::Index(items, span) => (Some(self.eval_index(items)?), None, *span),
                PlaceStep::Field(f) => (None, Some(f), f.span),
            });
        }
        self.read_slot(slot, &place.root.ident)?;
        if rhs.depth() + steps.len() as u32 > MAX_DEPTH {
            return Err(Diag::new(
                "flx::value::too_deep",
                format!("this assignment nests values more than {MAX_DEPTH} deep"),
            )
            .at(rhs_span)
            .into());
        }
        let mut root = self.take_slot(slot);
        let result = assign_path(&mut root, &steps, op, rhs, rhs_span);
        self.write_slot(slot, root);
        result.map_err(Flow::from)
    }

    // ---- calls ------------------------------------------------------------------

    #[inline(never)]
    pub fn make_closure(&mut self, def: &Rc<FnDef>, kind: FnKind) -> Value {
        let captures = def
            .captures
            .borrow()
            .iter()
            .map(|c| match c {
                CaptureFrom::Local(i) => match &self.stack[self.base + *i as usize] {
                    Value::Cell(c) => c.clone(),
                    // Not yet bound (a closure that refers to a later `let`): give it its own empty cell.
                    _ => {
                        let cell = Rc::new(RefCell::new(Value::Undefined));
                        self.stack[self.base + *i as usize] = Value::Cell(cell.clone());
                        cell
                    }
                },
                CaptureFrom::Capture(i) => match &self.closure {
                    Some(cl) => cl.captures[*i as usize].clone(),
                    None => Rc::new(RefCell::new(Value::Undefined)),
                },
            })
            .collect();
        Value::Func(Rc::new(Closure {
            def: def.clone(),
            captures,
            kind,
        }))
    }

    #[inline(never)]
    fn eval_call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Eval {
        let f = self.eval(callee)?;
        if let Value::Func(c) = &f {
            if args.iter().all(|a| a.name.is_none()) && args.len() <= c.def.params.len() {
                // Fast path: evaluate positional arguments straight into the new frame.
                let new_base = self.stack.len();
                for a in args {
                    match self.eval(&a.value) {
                        Ok(v) => self.stack.push(v),
                        Err(e) => {
                            self.stack.truncate(new_base);
                            return Err(e);
                        }
                    }
                }
                let c = c.clone();
                return self
                    .enter(&c, new_base, args.len(), Vec::new(), span)
                    .map_err(Flow::from);
            }
        }
        let mut pos = Vec::with_capacity(args.len());
        let mut named = Vec::new();
        for a in args {
            let v = self.eval(&a.value)?;
            match &a.name {
                None => pos.push((v, a.value.span)),
                Some(n) => named.push((n.name.clone(), v, n.span.to(a.value.span))),
            }
        }
        self.call_value(&f, pos, named, span).map_err(Flow::from)
    }

    /// Call any callable value with evaluated arguments.
    #[inline(never)]
    pub fn call_value(
        &mut self,
        f: &Value,
        pos: Vec<(Value, Span)>,
        named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<Value, Diag> {
        match f {
            Value::Func(c) => {
                let c = c.clone();
                let n = c.def.params.len();
                if pos.len() > n {
                    return Err(too_many_args(&c.def.name.name, n, &pos));
                }
                let new_base = self.stack.len();
                let npos = pos.len();
                self.stack.extend(pos.into_iter().map(|(v, _)| v));
                self.enter(&c, new_base, npos, named, span)
            }
            Value::Builtin(b) if *b as usize >= builtins::TABLE.len() => {
                self.call_host_fn(*b as usize, pos, named, span)
            }
            Value::Builtin(i) => {
                let b = builtins::get(*i);
                if traced::probing() && traced::effectful(b.name) {
                    return Err(traced::unbatchable(span));
                }
                if pos.iter().any(|(v, _)| traced::holds_traced(v))
                    || named.iter().any(|(_, v, _)| traced::holds_traced(v))
                {
                    return traced::call_builtin(self, *i, pos, named, span);
                }
                let mut args = Args::bind(builtins::STATIC.signature(*i), pos, named, span)?;
                if let Err(Flow::Error(d)) = self.tick(span) {
                    return Err(d);
                }
                let value = (b.run)(self, &mut args).map_err(|d| d.or_at(span))?;
                self.poll_interrupt(span)?;
                value.check_depth(span)?;
                Ok(value)
            }
            Value::Transform(t) => {
                let t = t.clone();
                super::transform::call(self, &t, pos, named, span)
            }
            Value::Kernel(k) => {
                if pos.iter().any(|(v, _)| traced::is_traced(v))
                    || named.iter().any(|(_, v, _)| traced::is_traced(v))
                {
                    return traced::kernel_with_hyper(k, pos, named, span);
                }
                super::kernel_values::with_hyper(k, pos, named, span)
            }
            Value::Predictor(p) => {
                if let Some(rows) = pos.first().and_then(|(x, _)| x.shape()?.first().copied()) {
                    let (m, d) = (p.centers.shape()[0], p.centers.shape()[1]);
                    self.charge(p.metric.gram_flops(rows, m, d), span)?;
                }
                match pos.as_slice() {
                    [(x, xspan)] if named.is_empty() && super::traced::is_traced(x) => {
                        super::traced::predict(self, &p.clone(), x.clone(), *xspan, span)
                    }
                    _ => super::kernel_values::predict(p, pos, named, span),
                }
            }
            Value::ModelDecl(def) => self.instantiate(&def.clone(), pos, named, span),
            Value::Model(m) => {
                let forward = Value::Func(m.forward.clone());
                self.call_value(&forward, pos, named, span)
                    .map_err(|d| d.in_call(&m.def.name.name, span))
            }
            Value::ModelWith(m) => match (pos.as_slice(), named.first()) {
                ([(p, pspan)], None) => Ok(Value::Model(Rc::new(m.with(p, *pspan)?))),
                (_, Some((_, _, nspan))) => Err(Diag::new(
                    "flx::call::unknown_arg",
                    "`with` takes one record of parameters, by position",
                )
                .at(*nspan)),
                _ => Err(
                    Diag::new("flx::call::arity", "`with` takes one record of parameters").at(span),
                ),
            },
            other => Err(Diag::new(
                "flx::type::call",
                format!("{} is not callable", other.describe()),
            )
            .at(span)),
        }
    }

    /// Run a closure whose first `npos` arguments are already on the stack at `new_base`.
    fn enter(
        &mut self,
        c: &Rc<Closure>,
        new_base: usize,
        npos: usize,
        named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<Value, Diag> {
        let def = &c.def;
        if self.depth >= MAX_CALL_DEPTH {
            self.stack.truncate(new_base);
            return Err(too_deep(span));
        }
        if let Err(Flow::Error(d)) = self.tick(span) {
            self.stack.truncate(new_base);
            return Err(d);
        }
        let frame = def.frame_size.get() as usize;
        self.stack.resize(new_base + frame.max(npos), Value::None);
        let saved_base = std::mem::replace(&mut self.base, new_base);
        let saved_closure = self.closure.replace(c.clone());
        self.depth += 1;
        let mut result = self.enter_body(def, npos, named, span);
        if c.kind == FnKind::Loss {
            result = result.and_then(|v| loss_value(def, v));
        }
        self.depth -= 1;
        self.stack.truncate(new_base);
        self.base = saved_base;
        self.closure = saved_closure;
        result.map_err(|d| {
            if def.name.name.as_ref() == "<closure>" {
                d.in_call("closure", span)
            } else {
                d.in_call(&def.name.name, span)
            }
        })
    }

    #[inline(never)]
    fn enter_body(
        &mut self,
        def: &FnDef,
        npos: usize,
        named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<Value, Diag> {
        // Fast path: every argument given by position is already in its frame slot.
        if named.is_empty()
            && npos == def.params.len()
            && def
                .params
                .iter()
                .all(|p| matches!(p.name.slot.get(), Slot::Local(_)))
        {
            return self.run_body(def);
        }
        self.bind_args(&def.name.name, &def.params, npos, named, span)?;
        self.run_body(def)
    }

    /// Bind a call's arguments to `params`: the first `npos` are already in
    /// their frame slots, the rest come by name or from defaults.
    pub(super) fn bind_args(
        &mut self,
        name: &str,
        params: &[Param],
        npos: usize,
        named: Vec<(Rc<str>, Value, Span)>,
        span: Span,
    ) -> Result<(), Diag> {
        let mut named: Vec<Option<(Rc<str>, Value, Span)>> = named.into_iter().map(Some).collect();
        for (i, p) in params.iter().enumerate() {
            let slot = p.name.slot.get();
            let v = if i < npos {
                std::mem::replace(&mut self.stack[self.base + i], Value::None)
            } else if let Some(n) = named.iter_mut().find(|n| {
                n.as_ref()
                    .is_some_and(|(name, ..)| *name == p.name.ident.name)
            }) {
                n.take().expect("found").1
            } else if let Some(d) = &p.default {
                self.eval_value(d, "flx::syntax::default", "control flow in a default value")?
            } else {
                return Err(Diag::new(
                    "flx::call::missing_arg",
                    format!("`{name}` is missing argument `{}`", p.name.ident.name),
                )
                .at(span));
            };
            self.bind_slot(slot, v);
        }
        if let Some((arg, _, nspan)) = named.into_iter().flatten().next() {
            let given_positionally = params.iter().take(npos).any(|p| p.name.ident.name == arg);
            let msg = if given_positionally {
                format!("argument `{arg}` is given both by position and by name")
            } else {
                format!("`{name}` has no parameter `{arg}`")
            };
            return Err(Diag::new("flx::call::unknown_arg", msg).at(nspan));
        }
        Ok(())
    }

    /// The value of an expression that must not `break`, `continue` or
    /// `return` (a default, a model item): such control flow is the error `code`.
    pub(super) fn eval_value(
        &mut self,
        e: &Expr,
        code: &'static str,
        msg: &str,
    ) -> Result<Value, Diag> {
        match self.eval(e) {
            Ok(v) => Ok(v),
            Err(Flow::Error(d)) => Err(d),
            Err(_) => Err(Diag::new(code, msg.to_string()).at(e.span)),
        }
    }

    fn run_body(&mut self, def: &FnDef) -> Result<Value, Diag> {
        if crate::jit::enabled() {
            if let Some(v) = self.call_native(def) {
                return Ok(v);
            }
        }
        match self.eval(&def.body) {
            Ok(v) | Err(Flow::Return(v)) => Ok(v),
            Err(Flow::Error(e)) => Err(e),
            Err(Flow::Break) | Err(Flow::Continue) => {
                Err(Diag::new("flx::internal", "loop control escaped a function").at(def.span))
            }
        }
    }
}

fn fn_kind(kind: &ExprKind) -> FnKind {
    match kind {
        ExprKind::Proc(_) => FnKind::Proc,
        ExprKind::Loss(_) => FnKind::Loss,
        _ => FnKind::Fn,
    }
}

/// About how many flops `x @ y` takes for operands of these shapes (any
/// batch axes included): 2 · (rows of x) · (inner size) · (columns of y).
fn matmul_flops(x: &[usize], y: &[usize]) -> u64 {
    let size = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
    let cols = if y.len() >= 2 {
        y[y.len() - 1] as u64
    } else {
        1
    };
    let rows = if x.len() >= 2 {
        x[x.len() - 2] as u64
    } else {
        1
    };
    2 * (size(x).saturating_mul(cols)).max(size(y).saturating_mul(rows))
}

type PlaceStepValue<'a> = (Option<Vec<index::Index>>, Option<&'a Ident>, Span);

fn assign_path(
    target: &mut Value,
    steps: &[PlaceStepValue],
    op: Option<BinOp>,
    rhs: Value,
    rhs_span: Span,
) -> Result<(), Diag> {
    let (index, field, span) = &steps[0];
    let last = steps.len() == 1;
    if let Some(f) = field {
        let Value::Record(r) = target else {
            return Err(Diag::new(
                "flx::type::field",
                format!("cannot set field `{}` of {}", f.name, target.describe()),
            )
            .at(*span));
        };
        let r = Rc::make_mut(r);
        let pos = r.fields.iter().position(|(n, _)| *n == f.name);
        if last {
            let new = match (op, pos) {
                (None, _) => rhs,
                (Some(op), Some(i)) => {
                    ops::binary(op, r.fields[i].1.clone(), rhs, *span, rhs_span)?
                }
                (_, None) => {
                    return Err(Diag::new(
                        "flx::record::field",
                        format!("record has no field `{}`", f.name),
                    )
                    .at(*span))
                }
            };
            match pos {
                Some(i) => r.update(i, |v| *v = new),
                None => r.push(f.name.clone(), new),
            }
            return Ok(());
        }
        let Some(i) = pos else {
            return Err(Diag::new(
                "flx::record::field",
                format!("record has no field `{}`", f.name),
            )
            .at(*span));
        };
        return r.update(i, |v| assign_path(v, &steps[1..], op, rhs, rhs_span));
    }
    let index = index.as_ref().expect("an index step");
    if last {
        let rhs = match op {
            None => rhs,
            Some(op) => {
                let cur = index::index(target, index, *span)?;
                ops::binary(op, cur, rhs, *span, rhs_span)?
            }
        };
        return index::index_assign(target, index, rhs, *span, rhs_span);
    }
    match target {
        Value::List(items) => {
            let i = index::list_position(index, items.len(), *span)?;
            Rc::make_mut(items).update(i, |x| assign_path(x, &steps[1..], op, rhs, rhs_span))
        }
        other => Err(Diag::new(
            "flx::type::index",
            format!("cannot assign into part of {}", other.describe()),
        )
        .at(*span)),
    }
}

/// A `loss` must give one number (a Float, traced or not).
fn loss_value(def: &FnDef, v: Value) -> Result<Value, Diag> {
    match &v {
        Value::Float(_) => Ok(v),
        Value::Traced(t) if matches!(t.primal, Value::Float(_)) => Ok(v),
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        other => Err(Diag::new(
            "flx::loss::scalar",
            format!(
                "loss `{}` must return a Float, but it returned {}",
                def.name.name,
                other.describe()
            ),
        )
        .at(def.name.span)
        .label("declared here")
        .help("reduce it to one number, e.g. with `mean` or `sum`")),
    }
}

pub(super) fn too_many_args(name: &str, n: usize, pos: &[(Value, Span)]) -> Diag {
    Diag::new(
        "flx::call::arity",
        format!(
            "`{name}` takes {n} argument{}, but {} were given",
            if n == 1 { "" } else { "s" },
            pos.len()
        ),
    )
    .at(pos[n].1)
    .label("unexpected argument")
}

pub(super) fn too_deep(span: Span) -> Diag {
    Diag::new(
        "flx::run::recursion",
        format!("calls nested more than {MAX_CALL_DEPTH} deep"),
    )
    .at(span)
    .help("is a recursion missing its base case?")
}

/// How many items `for` takes from a value it can iterate over.
/// Whether `try` catches an error: not an interrupt, nor a resource limit
/// (steps, call depth, the allocation limit), which stop the run.
fn caught(d: &Diag) -> bool {
    !matches!(
        d.code,
        "flx::run::interrupted"
            | "flx::run::step_limit"
            | "flx::run::recursion"
            | "flx::shape::too_large"
    )
}

/// Item `i` of an iterable that `iteration_count` counted.
fn iteration_item(it: &Value, i: u64) -> Value {
    match it {
        Value::Range(r) => Value::Int(r.0 + i as i64),
        Value::List(items) | Value::Tuple(items) => items[i as usize].clone(),
        Value::Record(r) => {
            let (k, v) = &r.fields[i as usize];
            Value::tuple(vec![Value::str(k), v.clone()])
        }
        v => any_tensor!(v, t => index::tensor_item(t, i as usize)).expect("counted"),
    }
}

pub fn iteration_count(v: &Value) -> Option<u64> {
    Some(match v {
        Value::Range(r) => r.1.saturating_sub(r.0).max(0) as u64,
        Value::List(items) | Value::Tuple(items) => items.len() as u64,
        v if v.shape().is_some_and(|s| !s.is_empty()) => v.shape().expect("a tensor")[0] as u64,
        Value::Record(r) => r.fields.len() as u64,
        _ => return None,
    })
}
