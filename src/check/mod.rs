//! Name resolution and static checks, run over a whole module before any of it
//! runs. Every variable use is resolved to a `Slot` (frame slot, captured cell,
//! global or builtin) so the interpreter never searches by name. All errors are
//! collected and reported together.
//!
//! Checked here: unknown names (with "did you mean"), arity and named arguments
//! of calls whose callee is known statically (builtins, declared functions,
//! module members), assignment to undeclared or constant names, duplicate
//! definitions, `break`/`continue` outside a loop, `return` outside a function,
//! and module-level names used before their definition.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::diag::{did_you_mean, Diag, SourceMap, Span};
use crate::signature::{self, Builtins, Signature};
use crate::syntax::ast::*;
use crate::syntax::{parse_module, KERNEL_GEOMETRY};

/// What a module-level name is, as far as static checks care.
#[derive(Clone, Debug)]
pub enum GlobalKind {
    /// A `let` binding (re-assignable).
    Var,
    Fn(Rc<FnDef>),
    Proc(Rc<FnDef>),
    Loss(Rc<FnDef>),
    Kernel(Rc<FnDef>),
    Model(Rc<ModelDef>),
    Module(u32),
}

#[derive(Clone, Debug)]
pub struct GlobalMeta {
    pub name: Rc<str>,
    pub index: u32,
    pub kind: GlobalKind,
    pub span: Span,
}

/// A loaded module: its syntax tree and its top-level names.
pub struct ModuleInfo {
    pub name: String,
    pub ast: Rc<Module>,
    pub exports: HashMap<Rc<str>, GlobalMeta>,
    /// Order of definition, for listings.
    pub order: Vec<Rc<str>>,
}

/// Where the embedded standard library lives: `use std.NAME` reads `stdlib/NAME.flx`
/// from the binary itself, so a built `flx` runs anywhere.
pub fn stdlib_source(name: &str) -> Option<&'static str> {
    STDLIB
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The standard library, embedded so that a built `flx` runs anywhere: `use std.NAME`.
pub static STDLIB: &[(&str, &str)] = &[
    ("linreg", include_str!("../../stdlib/linreg.flx")),
    ("rfm", include_str!("../../stdlib/rfm.flx")),
    ("xrfm", include_str!("../../stdlib/xrfm.flx")),
];

/// Everything resolution shares across modules of one session: sources, the
/// global slot table, loaded modules.
#[derive(Default)]
pub struct Linker {
    pub sources: SourceMap,
    /// The session's builtins: the interpreter's table and any host functions.
    pub builtins: Builtins,
    pub n_globals: u32,
    pub modules: Vec<ModuleInfo>,
    by_path: HashMap<String, u32>,
    loading: Vec<String>,
}

impl Linker {
    /// A linker for a session with these builtins.
    pub fn new(builtins: Builtins) -> Linker {
        Linker {
            builtins,
            ..Linker::default()
        }
    }

    fn new_global(&mut self) -> u32 {
        self.n_globals += 1;
        self.n_globals - 1
    }

    /// Parse and resolve a module (once); returns its index in `modules`.
    fn load(&mut self, target: &UseTarget, from_dir: &Path, span: Span) -> Result<u32, Vec<Diag>> {
        let (key, name, text) = match target {
            UseTarget::Std(parts) => {
                let name = parts[1].name.to_string();
                let key = format!("std.{name}");
                match stdlib_source(&name) {
                    Some(t) => (key, format!("std/{name}.flx"), t.to_string()),
                    None => {
                        let names: Vec<&str> = STDLIB.iter().map(|(n, _)| *n).collect();
                        let mut d = Diag::new(
                            "flx::module::unknown",
                            format!("no standard module `std.{name}`"),
                        )
                        .at(parts[1].span)
                        .label("not in stdlib/");
                        d = d.help(match did_you_mean(&name, names.iter().copied()) {
                            Some(m) => m,
                            None => format!("standard modules: {}", names.join(", ")),
                        });
                        return Err(vec![d]);
                    }
                }
            }
            UseTarget::File(path, pspan) => {
                let full: PathBuf = from_dir.join(path);
                let key = full
                    .canonicalize()
                    .unwrap_or(full.clone())
                    .display()
                    .to_string();
                match std::fs::read_to_string(&full) {
                    Ok(t) => (key, full.display().to_string(), t),
                    Err(e) => {
                        return Err(vec![Diag::new(
                            "flx::module::missing",
                            format!("cannot read module `{path}`: {e}"),
                        )
                        .at(*pspan)
                        .help(format!("looked for {}", full.display()))])
                    }
                }
            }
        };
        if let Some(&id) = self.by_path.get(&key) {
            return Ok(id);
        }
        if self.loading.contains(&key) {
            return Err(vec![Diag::new(
                "flx::module::cycle",
                format!("module `{name}` uses itself (through `use`)"),
            )
            .at(span)
            .help(format!(
                "the chain: {} -> {name}",
                self.loading.join(" -> ")
            ))]);
        }
        let file = self.sources.add(name.clone(), text.as_str());
        let module = parse_module(&text, file).map_err(|d| vec![d])?;
        let dir = match target {
            UseTarget::File(..) => Path::new(&name)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            UseTarget::Std(_) => PathBuf::new(),
        };
        self.loading.push(key.clone());
        let mut scope = ModuleScope::default();
        let result = resolve_module(self, &module, &mut scope, &dir, false);
        self.loading.pop();
        result?;
        let id = self.modules.len() as u32;
        self.modules.push(ModuleInfo {
            name: name.clone(),
            ast: Rc::new(module),
            exports: scope.names,
            order: scope.order,
        });
        self.by_path.insert(key, id);
        Ok(id)
    }
}

/// Module-level names of one module (or of the REPL session).
#[derive(Clone, Default)]
pub struct ModuleScope {
    pub names: HashMap<Rc<str>, GlobalMeta>,
    pub order: Vec<Rc<str>>,
}

impl ModuleScope {
    /// Define (or redefine) `name` as a `let` binding; returns its global slot.
    pub fn define_var(&mut self, linker: &mut Linker, name: &str) -> u32 {
        if let Some(g) = self.names.get_mut(name) {
            g.kind = GlobalKind::Var;
            return g.index;
        }
        let name: Rc<str> = Rc::from(name);
        let index = linker.new_global();
        self.order.push(name.clone());
        self.names.insert(
            name.clone(),
            GlobalMeta {
                name,
                index,
                kind: GlobalKind::Var,
                span: Span::default(),
            },
        );
        index
    }
}

/// Resolve `module` against `scope` (which persists across REPL inputs).
/// `redefine` lets a top-level `let` or `fn` replace an earlier one (REPL).
pub fn resolve_module(
    linker: &mut Linker,
    module: &Module,
    scope: &mut ModuleScope,
    dir: &Path,
    redefine: bool,
) -> Result<(), Vec<Diag>> {
    let mut r = Resolver {
        linker,
        scope,
        dir,
        errors: Vec::new(),
        fns: Vec::new(),
        redefine,
        deferred: Vec::new(),
    };
    r.fns.push(FnScope::new(true));
    r.predeclare(&module.stmts);
    for stmt in &module.stmts {
        r.stmt(stmt, true);
    }
    let top = r.fns.pop().expect("module scope");
    // Bodies of module-level functions see every module-level name.
    let deferred = std::mem::take(&mut r.deferred);
    for d in deferred {
        match d {
            Deferred::Fn(def) => r.function(def, false, &[]),
            Deferred::Kernel(def) => {
                r.function(def, false, &KERNEL_GEOMETRY);
                // A body that cannot be differentiated is an error of the declaration.
                if let Err(errors) = crate::kernel::Family::lower(def, &r.linker.builtins) {
                    r.errors.extend(errors);
                }
            }
            Deferred::Model(def) => r.model(def),
        }
    }
    module.frame_size.set(top.n_locals);
    top.apply_patches();
    if r.errors.is_empty() {
        Ok(())
    } else {
        r.errors.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
        Err(r.errors)
    }
}

struct Local {
    index: u32,
    span: Span,
    /// Declared by `fn` (cannot be re-assigned).
    constant: bool,
    def: Option<Rc<FnDef>>,
}

struct FnScope<'a> {
    scopes: Vec<HashMap<Rc<str>, Local>>,
    n_locals: u32,
    captured: Vec<bool>,
    captures: Vec<CaptureFrom>,
    /// Variables of enclosing functions already captured: (fn level, slot) -> capture index.
    capture_index: HashMap<(usize, Slot), u32>,
    /// Slots to re-check once `captured` is final: a captured local's uses read its cell.
    patch: Vec<(&'a Cell<Slot>, u32)>,
    loops: u32,
    is_module: bool,
}

impl FnScope<'_> {
    /// Uses and bindings of captured locals go through their cell.
    fn apply_patches(&self) {
        for (cell, idx) in &self.patch {
            if self.captured[*idx as usize] {
                cell.set(Slot::Boxed(*idx));
            }
        }
    }

    fn new(is_module: bool) -> Self {
        FnScope {
            scopes: vec![HashMap::new()],
            n_locals: 0,
            captured: Vec::new(),
            captures: Vec::new(),
            capture_index: HashMap::new(),
            patch: Vec::new(),
            loops: 0,
            is_module,
        }
    }
}

struct Resolver<'a, 'l> {
    linker: &'l mut Linker,
    scope: &'l mut ModuleScope,
    dir: &'l Path,
    errors: Vec<Diag>,
    fns: Vec<FnScope<'a>>,
    redefine: bool,
    deferred: Vec<Deferred<'a>>,
}

/// Module-level bodies, resolved once every module-level name is known.
enum Deferred<'a> {
    Fn(&'a FnDef),
    Kernel(&'a FnDef),
    Model(&'a ModelDef),
}

/// What a callee is known to be, for static call checks.
enum Callee {
    User(Rc<FnDef>),
    Builtin(u32),
    Model(Rc<ModelDef>),
    Unknown,
}

impl<'a> Resolver<'a, '_> {
    fn error(&mut self, d: Diag) {
        self.errors.push(d);
    }

    fn at_module_top(&self) -> bool {
        self.fns.len() == 1 && self.fns[0].is_module && self.fns[0].scopes.len() == 1
    }

    /// Module-level declarations are visible from the start of the module.
    fn predeclare(&mut self, stmts: &[Expr]) {
        for stmt in stmts {
            let (ident, kind, binding) = match &stmt.kind {
                ExprKind::Fn(d) => (&d.name, GlobalKind::Fn(d.clone()), &d.binding),
                ExprKind::Proc(d) => (&d.name, GlobalKind::Proc(d.clone()), &d.binding),
                ExprKind::Loss(d) => (&d.name, GlobalKind::Loss(d.clone()), &d.binding),
                ExprKind::Kernel(d) => (&d.name, GlobalKind::Kernel(d.clone()), &d.binding),
                ExprKind::Model(d) => (&d.name, GlobalKind::Model(d.clone()), &d.binding),
                _ => continue,
            };
            let g = self.define_global(ident, kind);
            binding.set(Slot::Global(g));
        }
    }

    fn define_global(&mut self, ident: &Ident, kind: GlobalKind) -> u32 {
        if let Some(prev) = self.scope.names.get(&ident.name) {
            if !self.redefine {
                let prev_span = prev.span;
                let index = prev.index;
                let what = match kind {
                    GlobalKind::Var => "use `name = value` to re-assign it",
                    _ => "choose another name",
                };
                self.error(
                    Diag::new(
                        "flx::name::duplicate",
                        format!("`{}` is already defined", ident.name),
                    )
                    .at(ident.span)
                    .label("defined again here")
                    .with_label(prev_span, "first defined here")
                    .help(what),
                );
                return index;
            }
        }
        let index = match self.scope.names.get(&ident.name) {
            Some(prev) => prev.index,
            None => self.linker.new_global(),
        };
        if !self.scope.names.contains_key(&ident.name) {
            self.scope.order.push(ident.name.clone());
        }
        self.scope.names.insert(
            ident.name.clone(),
            GlobalMeta {
                name: ident.name.clone(),
                index,
                kind,
                span: ident.span,
            },
        );
        index
    }

    fn declare_local(&mut self, ident: &Ident, constant: bool, def: Option<Rc<FnDef>>) -> u32 {
        let f = self.fns.last_mut().expect("a function scope");
        let scope = f.scopes.last_mut().expect("a block scope");
        if let Some(prev) = scope.get(&ident.name) {
            let prev_span = prev.span;
            let index = prev.index;
            self.error(
                Diag::new(
                    "flx::name::duplicate",
                    format!("`{}` is already defined in this block", ident.name),
                )
                .at(ident.span)
                .label("defined again here")
                .with_label(prev_span, "first defined here")
                .help("use `name = value` to re-assign it, or choose another name"),
            );
            return index;
        }
        let index = f.n_locals;
        f.n_locals += 1;
        f.captured.push(false);
        scope.insert(
            ident.name.clone(),
            Local {
                index,
                span: ident.span,
                constant,
                def,
            },
        );
        index
    }

    /// Bind a pattern introduced by `let`, `for` or a parameter.
    fn bind(&mut self, pat: &'a Pattern) {
        match pat {
            Pattern::Bind(name) => {
                if self.at_module_top() {
                    let g = self.define_global(&name.ident, GlobalKind::Var);
                    name.slot.set(Slot::Global(g));
                } else {
                    let i = self.declare_local(&name.ident, false, None);
                    self.bind_local_slot(&name.slot, i);
                }
            }
            Pattern::Tuple(parts, _) => {
                for p in parts {
                    self.bind(p);
                }
            }
        }
    }

    fn bind_local_slot(&mut self, slot: &'a Cell<Slot>, index: u32) {
        slot.set(Slot::Local(index));
        self.fns.last_mut().expect("fn").patch.push((slot, index));
    }

    fn all_visible_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for f in &self.fns {
            for s in &f.scopes {
                names.extend(s.keys().map(|k| k.to_string()));
            }
        }
        names.extend(self.scope.names.keys().map(|k| k.to_string()));
        names.extend(self.linker.builtins.names().map(String::from));
        names
    }

    /// Resolve a variable use; reports unknown names.
    fn lookup(&mut self, name: &'a Name) -> Option<Callee> {
        let ident = &name.ident;
        let level = self.fns.len() - 1;
        // Innermost function first, then enclosing ones (captures).
        for l in (0..=level).rev() {
            let found = self.fns[l]
                .scopes
                .iter()
                .rev()
                .find_map(|s| s.get(&ident.name))
                .map(|loc| (loc.index, loc.def.clone()));
            if let Some((index, def)) = found {
                if l == level {
                    self.bind_local_slot(&name.slot, index);
                } else {
                    self.fns[l].captured[index as usize] = true;
                    let c = self.capture(l, Slot::Local(index), level);
                    name.slot.set(Slot::Capture(c));
                }
                return Some(def.map_or(Callee::Unknown, Callee::User));
            }
        }
        if let Some(g) = self.scope.names.get(&ident.name) {
            name.slot.set(Slot::Global(g.index));
            return Some(match &g.kind {
                GlobalKind::Fn(d) | GlobalKind::Proc(d) | GlobalKind::Loss(d) => {
                    Callee::User(d.clone())
                }
                GlobalKind::Model(m) => Callee::Model(m.clone()),
                _ => Callee::Unknown,
            });
        }
        if let Some(i) = self.linker.builtins.lookup(&ident.name) {
            name.slot.set(Slot::Builtin(i));
            return Some(Callee::Builtin(i));
        }
        if let Some(k) = CONSTANTS.iter().position(|(c, _)| *c == &*ident.name) {
            name.slot.set(Slot::Constant(k as u8));
            return Some(Callee::Unknown);
        }
        let mut d = Diag::new(
            "flx::name::unknown",
            format!("unknown name `{}`", ident.name),
        )
        .at(ident.span)
        .label("not defined");
        let names = self.all_visible_names();
        if let Some(m) = did_you_mean(&ident.name, names.iter().map(String::as_str)) {
            d = d.help(m);
        }
        self.error(d);
        None
    }

    /// Thread a capture of `slot` (in function `from`) down to function `to`.
    fn capture(&mut self, from: usize, slot: Slot, to: usize) -> u32 {
        let mut src = match slot {
            Slot::Local(i) => CaptureFrom::Local(i),
            Slot::Capture(i) => CaptureFrom::Capture(i),
            _ => unreachable!("only locals and captures are captured"),
        };
        let mut index = 0;
        for l in from + 1..=to {
            let key = (from, slot);
            let f = &mut self.fns[l];
            index = match f.capture_index.get(&key) {
                Some(&i) => i,
                None => {
                    let i = f.captures.len() as u32;
                    f.captures.push(src);
                    f.capture_index.insert(key, i);
                    i
                }
            };
            src = CaptureFrom::Capture(index);
        }
        index
    }

    fn block(&mut self, block: &'a Block) {
        self.fns.last_mut().expect("fn").scopes.push(HashMap::new());
        for s in &block.stmts {
            self.stmt(s, false);
        }
        self.fns.last_mut().expect("fn").scopes.pop();
    }

    fn stmt(&mut self, e: &'a Expr, top: bool) {
        match &e.kind {
            ExprKind::Fn(def)
            | ExprKind::Proc(def)
            | ExprKind::Loss(def)
            | ExprKind::Kernel(def) => {
                if top && self.at_module_top() {
                    self.deferred
                        .push(if matches!(e.kind, ExprKind::Kernel(_)) {
                            Deferred::Kernel(def)
                        } else {
                            Deferred::Fn(def)
                        });
                } else {
                    if !matches!(e.kind, ExprKind::Fn(_)) {
                        self.error(
                            Diag::new("flx::syntax::nested_decl", "only `fn` can be declared inside a block")
                                .at(def.name.span)
                                .help("declare `proc`, `kernel`, `loss` and `model` at the top level of a file"),
                        );
                    }
                    let i = self.declare_local(&def.name, true, Some(def.clone()));
                    self.bind_local_slot(&def.binding, i);
                    self.function(def, true, &[]);
                }
            }
            ExprKind::Model(def) => {
                if !(top && self.at_module_top()) {
                    self.error(
                        Diag::new(
                            "flx::syntax::nested_decl",
                            "a `model` is declared at the top level of a file",
                        )
                        .at(def.name.span),
                    );
                    return;
                }
                self.deferred.push(Deferred::Model(def));
            }
            ExprKind::Use(u) => {
                if !self.at_module_top() {
                    self.error(
                        Diag::new(
                            "flx::syntax::nested_decl",
                            "`use` belongs at the top level of a file",
                        )
                        .at(e.span),
                    );
                    return;
                }
                match self.linker.load(&u.target, self.dir, e.span) {
                    Ok(id) => {
                        let g = self.define_global(&u.binding.ident, GlobalKind::Module(id));
                        u.binding.slot.set(Slot::Global(g));
                        u.module.set(id);
                    }
                    Err(errs) => self.errors.extend(errs),
                }
            }
            _ => self.expr(e),
        }
    }

    /// Declare parameters in the current frame: duplicates are errors, and a
    /// default may use the parameters before it.
    fn params(&mut self, params: &'a [Param]) {
        for (k, p) in params.iter().enumerate() {
            if let Some(d) = &p.default {
                self.expr(d);
            }
            let ident = &p.name.ident;
            if let Some(prev) = params[..k].iter().find(|q| q.name.ident.name == ident.name) {
                self.error(
                    Diag::new(
                        "flx::name::duplicate",
                        format!("parameter `{}` is declared twice", ident.name),
                    )
                    .at(ident.span)
                    .with_label(prev.name.ident.span, "first declared here"),
                );
                continue;
            }
            let i = self.declare_local(ident, false, None);
            self.bind_local_slot(&p.name.slot, i);
        }
    }

    /// A model's parameters, then its `param` and `let` items in order, then
    /// `forward` as a closure over all of them.
    fn model(&mut self, def: &'a ModelDef) {
        let saved = std::mem::take(&mut self.fns);
        self.fns.push(FnScope::new(true));
        self.fns.push(FnScope::new(false));
        self.params(&def.params);
        for item in &def.items {
            match item {
                ModelItem::Param { name, init, lr } => {
                    self.expr(init);
                    if let Some(lr) = lr {
                        self.expr(lr);
                    }
                    let i = self.declare_local(&name.ident, false, None);
                    self.bind_local_slot(&name.slot, i);
                }
                ModelItem::Let(pat, value) => {
                    self.expr(value);
                    self.bind(pat);
                }
                ModelItem::Forward(f) => self.function(f, true, &[]),
            }
        }
        let f = self.fns.pop().expect("model scope");
        f.apply_patches();
        def.frame_size.set(f.n_locals);
        self.fns = saved;
        let forwards: Vec<Span> = def
            .items
            .iter()
            .filter_map(|i| match i {
                ModelItem::Forward(f) => Some(f.span),
                _ => None,
            })
            .collect();
        match forwards.as_slice() {
            [] => self.error(
                Diag::new(
                    "flx::model::forward",
                    format!("model `{}` has no `forward`", def.name.name),
                )
                .at(def.name.span)
                .help("add one, e.g. `forward(x) = x @ W`"),
            ),
            [_] => {}
            [first, rest @ ..] => self.error(
                Diag::new(
                    "flx::model::forward",
                    format!("model `{}` has more than one `forward`", def.name.name),
                )
                .at(rest[0])
                .with_label(*first, "first declared here"),
            ),
        }
    }

    /// Resolve a function body in a new frame. `nested`: it is a closure over
    /// the current function (otherwise it sees only module-level names).
    /// `implicit` names are bound after the parameters (a kernel's geometry).
    fn function(&mut self, def: &'a FnDef, nested: bool, implicit: &[&str]) {
        let saved = if nested {
            None
        } else {
            Some(std::mem::take(&mut self.fns))
        };
        if !nested {
            self.fns.push(FnScope::new(true));
        }
        self.fns.push(FnScope::new(false));
        self.params(&def.params);
        for name in implicit {
            let ident = Ident {
                name: Rc::from(*name),
                span: def.name.span,
            };
            self.declare_local(&ident, false, None);
        }
        self.expr(&def.body);
        let f = self.fns.pop().expect("fn scope");
        f.apply_patches();
        def.frame_size.set(f.n_locals);
        *def.captures.borrow_mut() = f.captures;
        if let Some(saved) = saved {
            self.fns = saved;
        }
    }

    fn expr(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::None => {}
            ExprKind::Str(parts) => {
                for p in parts {
                    if let StrPart::Interp { expr, .. } = p {
                        self.expr(expr);
                    }
                }
            }
            ExprKind::Name(n) => {
                self.lookup(n);
            }
            ExprKind::List(items) | ExprKind::Tuple(items) => {
                items.iter().for_each(|i| self.expr(i))
            }
            ExprKind::Record(fields) => fields.iter().for_each(|(_, v)| self.expr(v)),
            ExprKind::Unary(_, x) => self.expr(x),
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Range { start, end, .. } => {
                self.expr(start);
                self.expr(end);
            }
            ExprKind::Call(callee, args) => self.call(callee, args),
            ExprKind::Index(x, items) => {
                self.expr(x);
                self.index_items(items);
            }
            ExprKind::Field(x, field) => {
                self.expr(x);
                self.check_module_member(x, field);
            }
            ExprKind::Lambda(def) => self.function(def, true, &[]),
            ExprKind::If(c, then, otherwise) => {
                self.expr(c);
                self.block(then);
                if let Some(o) = otherwise {
                    self.expr(o);
                }
            }
            ExprKind::Block(b) => self.block(b),
            ExprKind::Try(body, name, handler) => {
                self.block(body);
                self.fns.last_mut().expect("fn").scopes.push(HashMap::new());
                let i = self.declare_local(&name.ident, false, None);
                self.bind_local_slot(&name.slot, i);
                self.block(handler);
                self.fns.last_mut().expect("fn").scopes.pop();
            }
            ExprKind::Let(pat, value) => {
                self.expr(value);
                self.bind(pat);
            }
            ExprKind::Assign(place, _, value) => {
                self.expr(value);
                self.place(place);
            }
            ExprKind::For(pat, iter, body) => {
                self.expr(iter);
                let f = self.fns.last_mut().expect("fn");
                f.scopes.push(HashMap::new());
                f.loops += 1;
                // The loop variable is local to the loop, even at module level.
                self.bind_loop_var(pat);
                self.block(body);
                let f = self.fns.last_mut().expect("fn");
                f.loops -= 1;
                f.scopes.pop();
            }
            ExprKind::Comprehension(elem, clauses) => {
                // Each `for` binds names for the clauses after it and the element.
                self.fns.last_mut().expect("fn").scopes.push(HashMap::new());
                for c in clauses {
                    match c {
                        Clause::For(pat, iter) => {
                            self.expr(iter);
                            self.bind_loop_var(pat);
                        }
                        Clause::If(cond) => self.expr(cond),
                    }
                }
                self.expr(elem);
                self.fns.last_mut().expect("fn").scopes.pop();
            }
            ExprKind::While(c, body) => {
                self.expr(c);
                self.fns.last_mut().expect("fn").loops += 1;
                self.block(body);
                self.fns.last_mut().expect("fn").loops -= 1;
            }
            ExprKind::Break | ExprKind::Continue => {
                if self.fns.last().expect("fn").loops == 0 {
                    let word = if matches!(e.kind, ExprKind::Break) {
                        "break"
                    } else {
                        "continue"
                    };
                    self.error(
                        Diag::new(
                            "flx::syntax::loop_control",
                            format!("`{word}` outside a loop"),
                        )
                        .at(e.span),
                    );
                }
            }
            ExprKind::Return(v) => {
                if self.fns.last().expect("fn").is_module {
                    self.error(
                        Diag::new("flx::syntax::return", "`return` outside a function").at(e.span),
                    );
                }
                if let Some(v) = v {
                    self.expr(v);
                }
            }
            ExprKind::Fn(_)
            | ExprKind::Proc(_)
            | ExprKind::Loss(_)
            | ExprKind::Kernel(_)
            | ExprKind::Model(_)
            | ExprKind::Use(_) => self.stmt(e, false),
        }
    }

    fn bind_loop_var(&mut self, pat: &'a Pattern) {
        match pat {
            Pattern::Bind(name) => {
                let i = self.declare_local(&name.ident, false, None);
                self.bind_local_slot(&name.slot, i);
            }
            Pattern::Tuple(parts, _) => parts.iter().for_each(|p| self.bind_loop_var(p)),
        }
    }

    fn index_items(&mut self, items: &'a [IndexItem]) {
        for it in items {
            match it {
                IndexItem::At(x) => self.expr(x),
                IndexItem::Slice {
                    start, stop, step, ..
                } => {
                    for x in [start, stop, step].into_iter().flatten() {
                        self.expr(x);
                    }
                }
            }
        }
    }

    fn place(&mut self, place: &'a Place) {
        let ident = &place.root.ident;
        // Resolve without reporting, to give an assignment-specific message.
        let known_local = self
            .fns
            .iter()
            .any(|f| f.scopes.iter().any(|s| s.contains_key(&ident.name)));
        let global = self.scope.names.get(&ident.name).cloned();
        if !known_local && global.is_none() {
            let mut d = Diag::new(
                "flx::name::assign_undeclared",
                format!("assignment to undeclared name `{}`", ident.name),
            )
            .at(ident.span)
            .label("not declared")
            .help(format!("declare it first with `let {} = ...`", ident.name));
            let names = self.all_visible_names();
            if let Some(m) = did_you_mean(&ident.name, names.iter().map(String::as_str)) {
                d = d.help(format!(
                    "declare it first with `let {} = ...`, or {m}",
                    ident.name
                ));
            }
            self.error(d);
            return;
        }
        let constant_local = self
            .fns
            .iter()
            .rev()
            .find_map(|f| f.scopes.iter().rev().find_map(|s| s.get(&ident.name)))
            .map(|l| l.constant);
        let constant = match constant_local {
            Some(c) => c,
            None => !matches!(global.as_ref().map(|g| &g.kind), Some(GlobalKind::Var)),
        };
        if constant && place.path.is_empty() {
            self.error(
                Diag::new(
                    "flx::name::assign_constant",
                    format!("cannot assign to `{}`", ident.name),
                )
                .at(ident.span)
                .label("declared by `fn`, `use` or a declaration, not `let`"),
            );
        }
        self.lookup(&place.root);
        for step in &place.path {
            if let PlaceStep::Index(items, _) = step {
                self.index_items(items);
            }
        }
    }

    /// The members of a group of builtins, owned (so errors can be pushed meanwhile).
    fn members(&self, group: u32) -> Vec<String> {
        self.linker
            .builtins
            .members(group)
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn check_module_member(&mut self, x: &Expr, field: &Ident) {
        let ExprKind::Name(n) = &x.kind else { return };
        if let Slot::Builtin(group) = n.slot.get() {
            let members = self.members(group);
            if !members.is_empty() && !members.iter().any(|m| m == field.name.as_ref()) {
                let mut d = Diag::new(
                    "flx::module::member",
                    format!("`{}` has no member `{}`", n.ident.name, field.name),
                )
                .at(field.span)
                .label("not one of its builtins");
                d = d.help(
                    did_you_mean(&field.name, members.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("its builtins: {}", members.join(", "))),
                );
                self.error(d);
            }
            return;
        }
        let Slot::Global(_) = n.slot.get() else {
            return;
        };
        let Some(GlobalMeta {
            kind: GlobalKind::Module(id),
            ..
        }) = self.scope.names.get(&n.ident.name)
        else {
            return;
        };
        let m = &self.linker.modules[*id as usize];
        if !m.exports.contains_key(&field.name) {
            let mut d = Diag::new(
                "flx::module::member",
                format!("module `{}` has no member `{}`", n.ident.name, field.name),
            )
            .at(field.span)
            .label("not defined in the module");
            if let Some(h) = did_you_mean(&field.name, m.order.iter().map(|s| s.as_ref())) {
                d = d.help(h);
            }
            self.error(d);
        }
    }

    fn module_member_callee(&self, x: &Expr, field: &Ident) -> Callee {
        let ExprKind::Name(n) = &x.kind else {
            return Callee::Unknown;
        };
        if let Slot::Builtin(group) = n.slot.get() {
            return self
                .linker
                .builtins
                .member(group, &field.name)
                .map_or(Callee::Unknown, Callee::Builtin);
        }
        let Some(GlobalMeta {
            kind: GlobalKind::Module(id),
            ..
        }) = self.scope.names.get(&n.ident.name)
        else {
            return Callee::Unknown;
        };
        match self.linker.modules[*id as usize]
            .exports
            .get(&field.name)
            .map(|g| &g.kind)
        {
            Some(GlobalKind::Fn(d) | GlobalKind::Proc(d) | GlobalKind::Loss(d)) => {
                Callee::User(d.clone())
            }
            _ => Callee::Unknown,
        }
    }

    fn call(&mut self, callee: &'a Expr, args: &'a [Arg]) {
        let known = match &callee.kind {
            ExprKind::Name(n) => {
                let c = self.lookup(n);
                if let Slot::Builtin(group) = n.slot.get() {
                    if self.linker.builtins.is_group(group) {
                        let members = self.members(group);
                        self.error(
                            Diag::new(
                                "flx::call::group",
                                format!(
                                    "`{}` is a group of builtins, not a function",
                                    n.ident.name
                                ),
                            )
                            .at(callee.span)
                            .help(format!(
                                "call one of {}",
                                members
                                    .iter()
                                    .map(|m| format!("{}.{m}", n.ident.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        );
                        return;
                    }
                }
                c.unwrap_or(Callee::Unknown)
            }
            ExprKind::Field(x, field) => {
                self.expr(callee);
                self.module_member_callee(x, field)
            }
            _ => {
                self.expr(callee);
                Callee::Unknown
            }
        };
        for a in args {
            self.expr(&a.value);
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for a in args {
            if let Some(n) = &a.name {
                if let Some(prev) = seen.insert(&n.name, n.span) {
                    self.error(
                        Diag::new(
                            "flx::call::duplicate_arg",
                            format!("argument `{}` is given twice", n.name),
                        )
                        .at(n.span)
                        .with_label(prev, "first given here"),
                    );
                }
            }
        }
        let positional = args.iter().take_while(|a| a.name.is_none()).count();
        if let Some(late) = args[positional..].iter().find(|a| a.name.is_none()) {
            self.error(
                Diag::new(
                    "flx::call::positional_after_named",
                    "positional argument after a named one",
                )
                .at(late.value.span)
                .help("put positional arguments first"),
            );
            return;
        }
        let shape = match &known {
            Callee::User(def) => CallShape::of_params(&def.name.name, &def.params, &[]),
            // A model instance also takes `seed:`.
            Callee::Model(def) => CallShape::of_params(&def.name.name, &def.params, &["seed"]),
            Callee::Builtin(i) => CallShape::of_signature(self.linker.builtins.signature(*i)),
            Callee::Unknown => return,
        };
        shape.check(&mut self.errors, callee.span, args);
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What the static checks know of a callee's parameters: declared functions
/// and builtins alike.
struct CallShape {
    name: String,
    /// Parameters that may be given by position or by name: (name, has a default).
    positional: Vec<(String, bool)>,
    /// Parameters that may only be given by name.
    keyword: Vec<(String, bool)>,
    variadic: bool,
    kwargs: bool,
    signature: String,
}

impl CallShape {
    fn of_params(name: &str, params: &[Param], extra_named: &[&str]) -> CallShape {
        let positional: Vec<(String, bool)> = params
            .iter()
            .map(|p| (p.name.ident.name.to_string(), p.default.is_some()))
            .collect();
        let shown: Vec<String> = positional
            .iter()
            .map(|(n, d)| if *d { format!("{n} = ...") } else { n.clone() })
            .collect();
        CallShape {
            name: name.to_string(),
            keyword: extra_named.iter().map(|n| (n.to_string(), true)).collect(),
            signature: format!("{name}({})", shown.join(", ")),
            positional,
            variadic: false,
            kwargs: false,
        }
    }

    fn of_signature(sig: &Signature) -> CallShape {
        let list = |ps: &[signature::Param]| {
            ps.iter()
                .map(|p| (p.name.clone(), p.default.is_some()))
                .collect()
        };
        CallShape {
            name: sig.name.to_string(),
            positional: list(&sig.positional),
            keyword: list(&sig.keyword),
            variadic: sig.variadic.is_some(),
            kwargs: sig.kwargs.is_some(),
            signature: sig.display(),
        }
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.positional
            .iter()
            .chain(&self.keyword)
            .map(|(n, _)| n.as_str())
    }

    /// Arity, unknown, duplicate and missing arguments.
    fn check(&self, errors: &mut Vec<Diag>, span: Span, args: &[Arg]) {
        let help = || format!("signature: {}", self.signature);
        let positional = args.iter().filter(|a| a.name.is_none()).count();
        let max = self.positional.len();
        if positional > max && !self.variadic {
            errors.push(
                Diag::new(
                    "flx::call::arity",
                    format!(
                        "`{}` takes {max} positional argument{}, but {positional} were given",
                        self.name,
                        plural(max)
                    ),
                )
                .at(args[max].value.span)
                .label("unexpected argument")
                .help(help()),
            );
            return;
        }
        let mut given: Vec<&str> = self
            .positional
            .iter()
            .take(positional)
            .map(|(n, _)| n.as_str())
            .collect();
        for a in args.iter().filter_map(|a| a.name.as_ref()) {
            if !self.kwargs && !self.names().any(|n| n == a.name.as_ref()) {
                let d = Diag::new(
                    "flx::call::unknown_arg",
                    format!("`{}` has no parameter `{}`", self.name, a.name),
                )
                .at(a.span)
                .label("unknown argument");
                errors.push(d.help(did_you_mean(&a.name, self.names()).unwrap_or_else(help)));
            } else if given.contains(&a.name.as_ref()) {
                errors.push(
                    Diag::new(
                        "flx::call::duplicate_arg",
                        format!(
                            "argument `{}` is given both by position and by name",
                            a.name
                        ),
                    )
                    .at(a.span),
                );
            }
            given.push(&a.name);
        }
        for (n, has_default) in self.positional.iter().chain(&self.keyword) {
            if !has_default && !given.contains(&n.as_str()) {
                errors.push(
                    Diag::new(
                        "flx::call::missing_arg",
                        format!("`{}` is missing argument `{n}`", self.name),
                    )
                    .at(span)
                    .help(help()),
                );
            }
        }
    }
}
