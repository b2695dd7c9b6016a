//! flx: a small language for feature-learning experiments.
//!
//! The front door is `Session`: it parses (`syntax`), resolves and checks
//! (`check`), then runs (`eval`) source text, keeping definitions across
//! inputs (the REPL and `flx run` share it). Numeric work goes to `tensor`
//! (ndarray) and `linalg` (faer). Errors of every layer are `diag::Diag`s.
//! Every effect (printing, files, the clock, output folders) goes through
//! the session's `Host`.
//!
//! # Embedding flx in a Rust program
//!
//! ```
//! use flx::{Options, Session, StdHost, Value};
//! use ndarray::array;
//!
//! let mut s = Session::new(StdHost::new(std::io::sink()), &Options::default());
//! s.set("X", array![[1.0, 2.0], [3.0, 4.0]]);            // an ndarray array as a name
//! s.define("twice", "x", "Twice its argument.", |a| {     // a host function
//!     Ok(Value::from(a.tensor(0)?.mapv(|v| 2.0 * v)))
//! })
//! .unwrap();
//! s.run_source("cell", "let Y = twice(X.T) @ X", std::path::Path::new("."))
//!     .map_err(|d| s.render(&d, false))
//!     .unwrap();
//! let y = s.get("Y").and_then(|v| v.to_array()).unwrap(); // back as an ndarray array
//! assert_eq!(y[[0, 0]], 20.0);
//! ```

pub mod ad;
pub mod check;
pub mod diag;
pub mod eval;
pub mod format;
pub mod highlight;
pub mod host;
pub mod jit;
pub mod kernel;
pub mod linalg;
pub mod outputs;
pub mod plot;
pub mod prim;
pub mod progress;
pub mod repl;
pub mod signature;
pub mod sweep;
pub mod syntax;
pub mod tensor;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use check::{GlobalKind, ModuleScope};
use diag::{did_you_mean, Diag};
use eval::builtins::Args;
use eval::interp::Interp;
use syntax::ast::{ExprKind, FnDef};

pub use eval::value::Value;
pub use host::{Host, StdHost};

/// Per-session settings. The thread count is process-wide: see `set_threads`.
#[derive(Clone, Default)]
pub struct Options {
    pub seed: u64,
    /// Stop a run after this many interpreter steps (loop iterations and calls).
    pub step_limit: Option<u64>,
    /// Run everything in the interpreter (`--no-jit`; also `FLX_NO_JIT=1`).
    pub no_jit: bool,
}

/// Whether the user asked for no colour (`NO_COLOR` set and not empty, as
/// no-color.org says).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Keep freed memory in the process. glibc gives the top of a thread's heap
/// back to the OS as soon as it is free, so a loop that allocates and drops
/// the same few megabyte-sized tensors every step (a training step, a
/// backward pass) page-faults them in again each time: 40% of a small MLP's
/// training time. Blocks above the mmap threshold still come and go with
/// `mmap`, so an n × n Gram matrix is returned when it is dropped.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Configure the process-wide thread pools (rayon and faer). Call once, early.
pub fn set_threads(n: usize) {
    let n = n.max(1);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    linalg::set_threads(n);
}

/// One interpreter session: module-level names persist across `run_source` calls.
pub struct Session {
    pub(crate) interp: Interp,
    scope: ModuleScope,
    /// REPL mode: a `let` or `fn` may replace an earlier one.
    pub redefine: bool,
}

impl Session {
    /// A session whose effects go through `host`.
    pub fn new(host: impl Host + 'static, options: &Options) -> Session {
        jit::set_enabled(!options.no_jit);
        let mut interp = Interp::new(Box::new(host), options.seed);
        if let Some(limit) = options.step_limit {
            interp.step_limit = limit;
        }
        interp.run.info = outputs::RunInfo {
            seed: options.seed,
            threads: rayon::current_num_threads(),
            jit: !options.no_jit,
            argv: std::env::args().collect(),
            ..Default::default()
        };
        Session {
            interp,
            scope: ModuleScope::default(),
            redefine: false,
        }
    }

    /// Parse and resolve `text` into the session without running it. A text
    /// with errors leaves the session's names as they were.
    fn load(
        &mut self,
        name: &str,
        text: &str,
        first_line: usize,
        dir: &Path,
    ) -> Result<Rc<syntax::ast::Module>, Vec<Diag>> {
        let file = self
            .interp
            .linker
            .sources
            .add_at_line(name, text, first_line);
        let module = syntax::parse_module(text, file).map_err(|d| vec![d])?;
        let before = self.scope.clone();
        if let Err(errors) = check::resolve_module(
            &mut self.interp.linker,
            &module,
            &mut self.scope,
            dir,
            self.redefine,
        ) {
            self.scope = before;
            return Err(errors);
        }
        Ok(Rc::new(module))
    }

    /// Parse and check without running (`flx check`).
    pub fn check_source(&mut self, name: &str, text: &str, dir: &Path) -> Result<(), Vec<Diag>> {
        self.load(name, text, 1, dir).map(|_| ())
    }

    /// Parse, check and run; the value of the last statement is returned.
    pub fn run_source(&mut self, name: &str, text: &str, dir: &Path) -> Result<Value, Vec<Diag>> {
        self.run_text(name, text, 1, dir).map(|(v, _)| v)
    }

    /// Run one REPL input (relative paths from the working directory), whose
    /// first line is line `first_line` of what the user typed or piped in. The
    /// value is returned when the input ends in an expression (not in a `let`,
    /// a loop or a definition) and is not `none`.
    pub fn run_input(
        &mut self,
        name: &str,
        text: &str,
        first_line: usize,
    ) -> Result<Option<Value>, Vec<Diag>> {
        let (value, ends_in_expression) = self.run_text(name, text, first_line, Path::new("."))?;
        Ok((ends_in_expression && !matches!(value, Value::None)).then_some(value))
    }

    fn run_text(
        &mut self,
        name: &str,
        text: &str,
        first_line: usize,
        dir: &Path,
    ) -> Result<(Value, bool), Vec<Diag>> {
        let module = self.load(name, text, first_line, dir)?;
        self.interp.run.script_dir = dir.to_path_buf();
        let result = self.interp.run_module(&module).map_err(|d| vec![d]);
        linalg::release_work_matrices();
        if let Err(d) = &result {
            self.note_unfinished(&d[0]);
        }
        let ends_in_expression = module.stmts.last().is_some_and(|s| s.kind.is_expression());
        Ok((result?, ends_in_expression))
    }

    /// After an input failed: remember why the names it would have defined
    /// have no value, for when they are used.
    fn note_unfinished(&mut self, d: &Diag) {
        let why = if d.code == "flx::run::interrupted" {
            "was interrupted"
        } else {
            "stopped with an error first"
        };
        for name in &self.scope.order {
            let index = self.scope.names[name.as_ref()].index;
            if let Some(Value::Undefined) | None = self.interp.globals.get(index as usize) {
                self.interp.unfinished.insert(index, why);
            }
        }
    }

    pub fn run_file(&mut self, path: &Path) -> Result<Value, Vec<Diag>> {
        let text = read_script(path)?;
        self.run_source(&path.display().to_string(), &text, &script_dir(path))
    }

    pub fn check_file(&mut self, path: &Path) -> Result<(), Vec<Diag>> {
        let text = read_script(path)?;
        self.check_source(&path.display().to_string(), &text, &script_dir(path))
    }

    /// The session's builtins: the interpreter's and the host's.
    pub fn builtins(&self) -> &signature::Builtins {
        &self.interp.linker.builtins
    }

    /// The value of a module-level name of the session.
    pub fn get(&self, name: &str) -> Option<Value> {
        let g = self.scope.names.get(name)?;
        self.interp
            .globals
            .get(g.index as usize)
            .filter(|v| !matches!(v, Value::Undefined))
            .cloned()
    }

    /// The session's module-level names that hold a value, in order of definition.
    pub fn bindings(&self) -> Vec<(Rc<str>, Value)> {
        self.scope
            .order
            .iter()
            .filter_map(|name| Some((name.clone(), self.get(name)?)))
            .collect()
    }

    /// Bind `name` to `value` as if by `let`: a number, a string, an
    /// ndarray array (any dimension), a record or list built as a `Value`.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        let index = self.scope.define_var(&mut self.interp.linker, name);
        self.interp.sync_globals();
        self.interp.globals[index as usize] = value.into();
    }

    /// Make `f` callable from flx as `name`, with the parameters `signature`
    /// (written as a builtin's: `x, axis=none`, `*values`, `**named`), which
    /// `check` holds calls to. `f` gets the arguments bound to those
    /// parameters, with their spans for diagnostics. A name that is already
    /// a builtin is refused.
    pub fn define(
        &mut self,
        name: &str,
        signature: &str,
        doc: &str,
        f: impl Fn(&Args) -> Result<Value, Diag> + 'static,
    ) -> Result<(), String> {
        self.interp.define_host_fn(name, signature, doc, Rc::new(f))
    }

    /// Call a callable value of the session (a function, predictor, model,
    /// kernel) with these arguments, as flx code calling `name(...)` would.
    /// Its diagnostics point at a line `name(...)` of a source called `from`.
    pub fn call(
        &mut self,
        from: &str,
        name: &str,
        f: &Value,
        args: Vec<Value>,
        named: Vec<(Rc<str>, Value)>,
    ) -> Result<Value, Vec<Diag>> {
        let text = format!("{name}(...)");
        let len = text.len();
        let file = self.interp.linker.sources.add(from, text);
        let span = diag::Span::new(file, 0, len);
        let pos = args.into_iter().map(|v| (v, span)).collect();
        let named = named.into_iter().map(|(n, v)| (n, v, span)).collect();
        let result = self
            .interp
            .call_value(f, pos, named, span)
            .map_err(|d| vec![d]);
        linalg::release_work_matrices();
        result
    }

    /// The line and column (from 1) where a diagnostic points, if it does.
    pub fn position(&self, d: &Diag) -> Option<(usize, usize)> {
        let span = d.span?;
        Some(self.interp.linker.sources.line_col(span.file, span.start))
    }

    /// How many functions and elementwise chains run as machine code.
    pub fn compiled(&self) -> (usize, usize) {
        (self.interp.native.compiled(), self.interp.fused.compiled())
    }

    /// The `proc main` of the session, if one is defined.
    pub fn main_proc(&self) -> Option<(Rc<FnDef>, u32)> {
        match self.scope.names.get("main") {
            Some(g) => match &g.kind {
                GlobalKind::Proc(def) => Some((def.clone(), g.index)),
                _ => None,
            },
            None => None,
        }
    }

    /// Check `name=value` overrides against `main`'s parameters and parse the values.
    pub fn parse_overrides(
        &mut self,
        overrides: &[String],
    ) -> Result<Vec<(Rc<str>, Value)>, String> {
        // Each parameter with its default's value, where that is a literal.
        let (params, defaults): (Vec<String>, Vec<Option<Value>>) = match self.main_proc() {
            Some((def, _)) => def
                .params
                .iter()
                .map(|p| {
                    let default = p.default.as_ref().and_then(literal_value);
                    (p.name.ident.name.to_string(), default)
                })
                .unzip(),
            None if overrides.is_empty() => return Ok(Vec::new()),
            None => return Err(NO_MAIN.into()),
        };
        let mut out = Vec::new();
        for o in overrides {
            let Some((name, text)) = o.split_once('=') else {
                return Err(format!("override `{o}` is not of the form name=value"));
            };
            if let Some(message) = self.override_error(name) {
                return Err(message);
            }
            let at = params
                .iter()
                .position(|p| p == name)
                .expect("a parameter of main");
            let v = parse_literal(text).map_err(|e| format!("override `{name}`: {e}"))?;
            let v = match &defaults[at] {
                Some(d) => typed_override(name, text, v, d)?,
                None => v,
            };
            out.push((Rc::from(name), v));
        }
        Ok(out)
    }

    /// Why `main` cannot take an override named `name` (there is no `main`,
    /// or it has no such parameter), or none if it can.
    pub fn override_error(&self, name: &str) -> Option<String> {
        let Some((def, _)) = self.main_proc() else {
            return Some(NO_MAIN.into());
        };
        let params: Vec<&str> = def.params.iter().map(|p| &*p.name.ident.name).collect();
        if params.contains(&name) {
            return None;
        }
        let hint =
            did_you_mean(name, params.iter().copied()).map_or(String::new(), |m| format!("; {m}"));
        Some(format!(
            "`main` has no parameter `{name}` (its parameters: {}){hint}",
            params.join(", ")
        ))
    }

    /// Call `proc main` with the overrides as named arguments.
    pub fn call_main(&mut self, overrides: Vec<(Rc<str>, Value)>) -> Result<Value, Vec<Diag>> {
        let Some((def, index)) = self.main_proc() else {
            return Ok(Value::None);
        };
        let f = self.interp.globals[index as usize].clone();
        let named = overrides
            .into_iter()
            .map(|(n, v)| (n, v, def.name.span))
            .collect();
        let result = self
            .interp
            .call_value(&f, Vec::new(), named, def.name.span)
            .map_err(|d| vec![d]);
        linalg::release_work_matrices();
        result
    }

    /// What `run.json` will record of the script being run and its overrides.
    pub fn describe_run(&mut self, script: &Path, overrides: &[String]) {
        let info = &mut self.interp.run.info;
        info.script = Some(script.to_path_buf());
        info.source = std::fs::read_to_string(script).ok();
        info.overrides = overrides.to_vec();
    }

    /// Open the output folder chosen on the command line (`--out DIR`);
    /// `out(dir)` in the script then defers to it.
    pub fn open_outputs(&mut self, dir: &Path) -> Result<(), String> {
        let info = self.interp.run.info.clone();
        self.interp
            .host
            .open_outputs(dir, info)
            .map_err(|e| format!("cannot create the output folder {}: {e}", dir.display()))?;
        self.interp.run.outputs_from_command_line = true;
        Ok(())
    }

    /// Record how the run ended in its output folder's `run.json`, if it has one.
    /// `error` is the text of the diagnostics of a failed run.
    pub fn finish_outputs(&mut self, error: Option<&str>) -> Result<(), String> {
        let Some(o) = self.interp.host.outputs() else {
            return Ok(());
        };
        o.finish(error).map_err(|e| {
            format!(
                "cannot write {}: {e}",
                o.dir().join(outputs::RUN_JSON).display()
            )
        })
    }

    pub fn render(&self, diags: &[Diag], color: bool) -> String {
        diags
            .iter()
            .map(|d| d.render(&self.interp.linker.sources, color))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

const NO_MAIN: &str = "overrides need a `proc main(...)` in the script to receive them";

fn read_script(path: &Path) -> Result<String, Vec<Diag>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![Diag::new(
            "flx::io::script",
            format!("cannot read {}: {e}", path.display()),
        )]
    })
}

fn script_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A command-line value: an flx literal (number, string, bool, none, or a
/// list/tuple of them); a bare word is taken as a string.
/// An override's value as the type of the parameter's default `d`: an Int
/// takes only Ints, a Float also Ints (as Floats), a Str any word, a Bool
/// `true` or `false`; a default of none or another kind takes anything.
fn typed_override(name: &str, text: &str, v: Value, d: &Value) -> Result<Value, String> {
    let fits = match (d, &v) {
        (Value::Int(_), Value::Int(_))
        | (Value::Float(_), Value::Float(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Str(_), Value::Str(_)) => true,
        (Value::Float(_), Value::Int(i)) => return Ok(Value::Float(*i as f64)),
        (Value::Str(_), _) => return Ok(Value::str(text)),
        (Value::Int(_) | Value::Float(_) | Value::Bool(_), _) => false,
        _ => true,
    };
    if fits {
        return Ok(v);
    }
    let shown = eval::format::repr(d);
    Err(format!(
        "override `{name}`: `main`'s `{name}` is {} (its default is {shown}), but `{text}` is {}",
        article(d.kind()),
        article(v.kind())
    ))
}

fn article(kind: &str) -> String {
    match kind.chars().next() {
        Some('I') => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

pub fn parse_literal(text: &str) -> Result<Value, String> {
    if let Ok(m) = syntax::parse_module(text, 0) {
        if let [e] = m.stmts.as_slice() {
            if let ExprKind::Name(n) = &e.kind {
                return Ok(Value::str(&n.ident.name));
            }
            if let Some(v) = literal_value(e) {
                return Ok(v);
            }
        }
    }
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "_-./".contains(c))
    {
        return Ok(Value::str(text));
    }
    Err(format!(
        "`{text}` is not a literal (a number, a \"string\", true/false, none, or a list of them)"
    ))
}

/// The value of a literal expression (a number, string, Bool, none, or a
/// tuple or list of them), as an override or a default is written.
fn literal_value(e: &syntax::ast::Expr) -> Option<Value> {
    Some(match &e.kind {
        ExprKind::Int(i) => Value::Int(*i),
        ExprKind::Float(f) => Value::Float(*f),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::None => Value::None,
        ExprKind::Str(parts) => match parts.as_slice() {
            [syntax::ast::StrPart::Text(t)] => Value::str(t),
            _ => return None,
        },
        ExprKind::Unary(syntax::ast::UnOp::Neg, x) => match literal_value(x)? {
            Value::Int(i) => Value::Int(i.checked_neg()?),
            Value::Float(f) => Value::Float(-f),
            _ => return None,
        },
        ExprKind::Tuple(items) => Value::tuple(
            items
                .iter()
                .map(literal_value)
                .collect::<Option<Vec<_>>>()?,
        ),
        ExprKind::List(items) => {
            let vals: Vec<(Value, diag::Span)> = items
                .iter()
                .map(|i| literal_value(i).map(|v| (v, i.span)))
                .collect::<Option<Vec<_>>>()?;
            eval::ops::list_literal(vals, e.span).ok()?
        }
        _ => return None,
    })
}
