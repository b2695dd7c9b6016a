//! The builtin table. Each builtin is declared once, next to its
//! implementation, with its name, signature and documentation; the resolver's
//! arity checks, the REPL's `:help` and `docs/` all read this table.
//!
//! A signature is written like a parameter list: `x, axis=none` (defaults are
//! literals), `*shape` collects extra positional arguments, parameters after it
//! are keyword-only, and `**metrics` collects extra named arguments.

mod autodiff;
mod io;
pub mod kernels;
mod linalg;
pub mod metrics;
mod plot;
pub mod tensor;

pub use io::start_clock;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;

use super::format::shape_str;
use super::interp::Interp;
use super::value::{Tensor, Value};
use crate::diag::{did_you_mean, Diag, Span};

pub type BuiltinFn = fn(&mut Interp, &mut Args) -> Result<Value, Diag>;

pub struct Builtin {
    pub name: &'static str,
    /// Parameter list, e.g. `"x, axis=none"`.
    pub sig: &'static str,
    pub doc: &'static str,
    pub run: BuiltinFn,
}

impl Builtin {
    pub fn signature(&self) -> &'static Signature {
        &SIGNATURES[INDEX[self.name]]
    }

    /// How help shows it: its signature, or its name alone for a group (`plot`).
    pub fn heading(&self) -> String {
        if is_group(INDEX[self.name] as u32) {
            self.name.to_string()
        } else {
            self.signature().display()
        }
    }
}

/// Every builtin, in documentation order.
pub static TABLE: LazyLock<Vec<&'static Builtin>> = LazyLock::new(|| {
    tensor::BUILTINS
        .iter()
        .chain(linalg::BUILTINS)
        .chain(kernels::BUILTINS)
        .chain(metrics::BUILTINS)
        .chain(io::BUILTINS)
        .chain(autodiff::BUILTINS)
        .chain(plot::BUILTINS)
        .collect()
});

static SIGNATURES: LazyLock<Vec<Signature>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|b| Signature::parse(b.name, b.sig))
        .collect()
});

static INDEX: LazyLock<HashMap<&'static str, usize>> =
    LazyLock::new(|| TABLE.iter().enumerate().map(|(i, b)| (b.name, i)).collect());

pub fn lookup(name: &str) -> Option<usize> {
    INDEX.get(name).copied()
}

pub fn get(i: u32) -> &'static Builtin {
    TABLE[i as usize]
}

/// The builtins of a group (`plot.line`, ... of `plot`): their names after the dot.
pub fn members(group: u32) -> Vec<&'static str> {
    let prefix = format!("{}.", get(group).name);
    TABLE
        .iter()
        .filter_map(|b| b.name.strip_prefix(prefix.as_str()))
        .collect()
}

/// `group.field`, when `group` is a group of builtins with that member.
pub fn member(group: u32, field: &str) -> Option<u32> {
    lookup(&format!("{}.{field}", get(group).name)).map(|i| i as u32)
}

pub fn is_group(i: u32) -> bool {
    !members(i).is_empty()
}

#[derive(Clone, Debug)]
pub enum Lit {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Lit {
    fn value(&self) -> Value {
        match self {
            Lit::None => Value::None,
            Lit::Bool(b) => Value::Bool(*b),
            Lit::Int(i) => Value::Int(*i),
            Lit::Float(f) => Value::Float(*f),
            Lit::Str(s) => Value::str(s),
        }
    }
    fn parse(s: &str) -> Lit {
        match s {
            "none" => Lit::None,
            "true" => Lit::Bool(true),
            "false" => Lit::Bool(false),
            _ if s.starts_with('"') => Lit::Str(s.trim_matches('"').to_string()),
            _ => {
                s.parse::<i64>().map(Lit::Int).unwrap_or_else(|_| {
                    Lit::Float(s.parse::<f64>().unwrap_or_else(|_| {
                        panic!("bad default literal `{s}` in a builtin signature")
                    }))
                })
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub default: Option<Lit>,
}

#[derive(Debug)]
pub struct Signature {
    pub name: &'static str,
    pub positional: Vec<Param>,
    pub variadic: Option<String>,
    pub keyword: Vec<Param>,
    pub kwargs: Option<String>,
}

impl Signature {
    fn parse(name: &'static str, sig: &str) -> Signature {
        let mut s = Signature {
            name,
            positional: Vec::new(),
            variadic: None,
            keyword: Vec::new(),
            kwargs: None,
        };
        // Split on commas outside quotes (a default may be `","`).
        let mut parts = Vec::new();
        let (mut start, mut quoted) = (0, false);
        for (i, c) in sig.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    parts.push(&sig[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&sig[start..]);
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(rest) = part.strip_prefix("**") {
                s.kwargs = Some(rest.to_string());
            } else if let Some(rest) = part.strip_prefix('*') {
                s.variadic = Some(rest.to_string());
            } else {
                let (n, d) = match part.split_once('=') {
                    Some((n, d)) => (n.trim(), Some(Lit::parse(d.trim()))),
                    None => (part, None),
                };
                let p = Param {
                    name: n.to_string(),
                    default: d,
                };
                if s.variadic.is_some() {
                    s.keyword.push(p);
                } else {
                    s.positional.push(p);
                }
            }
        }
        s
    }

    pub fn accepts_named(&self, name: &str) -> bool {
        self.kwargs.is_some()
            || self
                .positional
                .iter()
                .chain(&self.keyword)
                .any(|p| p.name == name)
    }

    pub fn named_params(&self) -> impl Iterator<Item = &str> {
        self.positional
            .iter()
            .chain(&self.keyword)
            .map(|p| p.name.as_str())
    }

    pub fn display(&self) -> String {
        let show = |p: &Param| match &p.default {
            None => p.name.clone(),
            Some(Lit::Str(s)) => format!("{}: \"{s}\"", p.name),
            Some(d) => format!("{}: {}", p.name, super::format::repr(&d.value())),
        };
        let mut parts: Vec<String> = self.positional.iter().map(show).collect();
        if let Some(v) = &self.variadic {
            parts.push(format!("{v}..."));
        }
        parts.extend(self.keyword.iter().map(show));
        if let Some(k) = &self.kwargs {
            parts.push(format!("{k}: value..."));
        }
        format!("{}({})", self.name, parts.join(", "))
    }
}

/// A value as a tensor, where NumPy would take it as an array: a tensor, a
/// number (0-d), or a list of numbers or of equal-shaped tensors (what
/// `append` builds); `[]` is the empty vector.
pub fn array_like(v: &Value, span: Span) -> Option<Rc<Tensor>> {
    match v {
        Value::Tensor(t) => Some(t.clone()),
        Value::Int(_) | Value::Float(_) => Some(Rc::new(
            ndarray::arr0(v.as_f64().expect("number")).into_dyn(),
        )),
        Value::List(items) if items.is_empty() => {
            Some(Rc::new(ndarray::Array1::<f64>::zeros(0).into_dyn()))
        }
        Value::List(items) => {
            let vals = items.iter().map(|v| (v.clone(), span)).collect();
            match crate::eval::ops::list_literal(vals, span) {
                Ok(Value::Tensor(t)) => Some(t),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Arguments bound to a builtin's parameters: `vals[i]` is parameter `i`
/// (positional parameters first, then keyword-only ones).
pub struct Args {
    pub name: &'static str,
    pub vals: Vec<Value>,
    pub spans: Vec<Span>,
    pub rest: Vec<(Value, Span)>,
    pub kwargs: Vec<(Rc<str>, Value, Span)>,
    pub call: Span,
    sig: &'static Signature,
}

impl Args {
    pub fn bind(
        b: &'static Builtin,
        pos: Vec<(Value, Span)>,
        named: Vec<(Rc<str>, Value, Span)>,
        call: Span,
    ) -> Result<Args, Diag> {
        let sig = b.signature();
        let params: Vec<&Param> = sig.positional.iter().chain(&sig.keyword).collect();
        let mut vals: Vec<Option<Value>> = vec![None; params.len()];
        let mut spans = vec![call; params.len()];
        let mut rest = Vec::new();
        for (i, (v, s)) in pos.into_iter().enumerate() {
            if i < sig.positional.len() {
                vals[i] = Some(v);
                spans[i] = s;
            } else if sig.variadic.is_some() {
                rest.push((v, s));
            } else {
                return Err(Diag::new(
                    "flx::call::arity",
                    format!(
                        "`{}` takes at most {} positional arguments",
                        b.name,
                        sig.positional.len()
                    ),
                )
                .at(s)
                .label("unexpected argument")
                .help(format!("signature: {}", sig.display())));
            }
        }
        let mut kwargs = Vec::new();
        for (name, v, s) in named {
            match params.iter().position(|p| p.name == name.as_ref()) {
                Some(i) if vals[i].is_some() => {
                    return Err(Diag::new(
                        "flx::call::duplicate_arg",
                        format!("argument `{name}` is given twice"),
                    )
                    .at(s));
                }
                Some(i) => {
                    vals[i] = Some(v);
                    spans[i] = s;
                }
                None if sig.kwargs.is_some() => kwargs.push((name, v, s)),
                None => {
                    let mut d = Diag::new(
                        "flx::call::unknown_arg",
                        format!("`{}` has no parameter `{name}`", b.name),
                    )
                    .at(s);
                    d = d.help(match did_you_mean(&name, sig.named_params()) {
                        Some(m) => m,
                        None => format!("signature: {}", sig.display()),
                    });
                    return Err(d);
                }
            }
        }
        let mut out = Vec::with_capacity(params.len());
        for (p, v) in params.iter().zip(vals) {
            out.push(match (v, &p.default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.value(),
                (None, None) => {
                    return Err(Diag::new(
                        "flx::call::missing_arg",
                        format!("`{}` is missing argument `{}`", b.name, p.name),
                    )
                    .at(call)
                    .help(format!("signature: {}", sig.display())))
                }
            });
        }
        Ok(Args {
            name: b.name,
            vals: out,
            spans,
            rest,
            kwargs,
            call,
            sig,
        })
    }

    fn param_name(&self, i: usize) -> &str {
        let np = self.sig.positional.len();
        if i < np {
            &self.sig.positional[i].name
        } else {
            &self.sig.keyword[i - np].name
        }
    }

    /// "argument `x` of `f` must be WHAT, found KIND" at the argument.
    pub fn expected(&self, i: usize, what: &str) -> Diag {
        Diag::new(
            "flx::type::argument",
            format!(
                "argument `{}` of `{}` must be {what}, found {}",
                self.param_name(i),
                self.name,
                self.vals[i].describe()
            ),
        )
        .at(self.spans[i])
    }

    /// An error about two arguments whose shapes disagree: both are labelled
    /// with their shapes.
    pub fn shapes_error(
        &self,
        i: usize,
        j: usize,
        code: &'static str,
        msg: impl Into<String>,
    ) -> Diag {
        let shape = |k: usize| match &self.vals[k] {
            Value::Tensor(t) => format!("shape {}", shape_str(t.shape())),
            v => v.describe(),
        };
        Diag::new(code, msg)
            .at(self.spans[i])
            .label(shape(i))
            .with_label(self.spans[j], shape(j))
    }

    pub fn error(&self, i: usize, code: &'static str, msg: impl Into<String>) -> Diag {
        Diag::new(code, msg).at(self.spans[i])
    }

    pub fn is_none(&self, i: usize) -> bool {
        matches!(self.vals[i], Value::None)
    }

    /// A tensor argument; numbers become 0-d tensors.
    pub fn tensor(&self, i: usize) -> Result<Rc<Tensor>, Diag> {
        array_like(&self.vals[i], self.spans[i]).ok_or_else(|| self.expected(i, "a Tensor"))
    }

    /// A 2-D tensor argument.
    pub fn matrix(&self, i: usize) -> Result<Rc<Tensor>, Diag> {
        let t = self.tensor(i)?;
        if t.ndim() != 2 {
            return Err(self
                .error(
                    i,
                    "flx::shape::not_matrix",
                    format!(
                        "`{}` needs a matrix, found shape {}",
                        self.name,
                        shape_str(t.shape())
                    ),
                )
                .label(format!("shape {}", shape_str(t.shape()))));
        }
        Ok(t)
    }

    pub fn f64(&self, i: usize) -> Result<f64, Diag> {
        match &self.vals[i] {
            Value::Int(n) => Ok(*n as f64),
            Value::Float(f) => Ok(*f),
            _ => Err(self.expected(i, "a number")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, Diag> {
        match &self.vals[i] {
            Value::Int(n) => Ok(*n),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
            _ => Err(self.expected(i, "an Int")),
        }
    }

    pub fn count(&self, i: usize) -> Result<usize, Diag> {
        let n = self.int(i)?;
        usize::try_from(n).map_err(|_| {
            self.error(
                i,
                "flx::value::negative",
                format!(
                    "argument `{}` of `{}` must not be negative, found {n}",
                    self.param_name(i),
                    self.name
                ),
            )
        })
    }

    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>, Diag> {
        if self.is_none(i) {
            Ok(None)
        } else {
            self.f64(i).map(Some)
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, Diag> {
        if self.is_none(i) {
            Ok(None)
        } else {
            self.int(i).map(Some)
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool, Diag> {
        match &self.vals[i] {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.expected(i, "a Bool")),
        }
    }

    pub fn str(&self, i: usize) -> Result<Rc<String>, Diag> {
        match &self.vals[i] {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.expected(i, "a Str")),
        }
    }

    /// An `axis:` argument for a tensor of `ndim` axes (negative counts from the end).
    pub fn axis(&self, i: usize, ndim: usize) -> Result<Option<usize>, Diag> {
        let Some(a) = self.opt_int(i)? else {
            return Ok(None);
        };
        let k = if a < 0 { a + ndim as i64 } else { a };
        if k < 0 || k >= ndim as i64 {
            return Err(self.error(
                i,
                "flx::index::axis",
                format!("axis {a} is out of range for a tensor with {ndim} axes"),
            ));
        }
        Ok(Some(k as usize))
    }
}

/// The builtin reference in Markdown (`docs/builtins.md` is this, checked by a test).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Builtins\n\nGenerated from the interpreter's builtin table (`src/eval/builtins/`); \
         `cargo test --test docs` checks that this file is current, and \
         `FLX_BLESS=1 cargo test --test docs` rewrites it.\n\n\
         Parameters shown with a value are optional (`axis: none`); `name...` takes any \
         number of positional arguments; `name: value...` takes any named arguments.\n",
    );
    for (title, table) in [
        ("Tensors", tensor::BUILTINS),
        ("Linear algebra", linalg::BUILTINS),
        ("Kernels", kernels::BUILTINS),
        ("Metrics", metrics::BUILTINS),
        ("Files, output and conversions", io::BUILTINS),
        ("Automatic differentiation", autodiff::BUILTINS),
        ("Figures", plot::BUILTINS),
    ] {
        out.push_str(&format!("\n## {title}\n\n| builtin | |\n|---|---|\n"));
        for b in table {
            out.push_str(&format!(
                "| `{}` | {} |\n",
                b.heading(),
                b.doc.replace('|', "\\|")
            ));
        }
    }
    out
}

/// A tensor already checked to be 2-d, as a matrix view.
pub(super) fn mat(t: &Tensor) -> ndarray::ArrayView2<'_, f64> {
    t.view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("checked 2-d")
}

/// Refuse to allocate a tensor larger than `tensor::max_elements()`.
pub fn check_size(shape: &[usize], span: Span) -> Result<(), Diag> {
    crate::tensor::check_elements(shape).map_err(|e| {
        Diag::new("flx::shape::too_large", e.0)
            .at(span)
            .help("work in blocks, or on a subsample")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_a_parsable_signature_and_a_doc() {
        for b in TABLE.iter() {
            let s = b.signature();
            assert_eq!(s.name, b.name);
            assert!(!b.doc.is_empty(), "{} has no doc", b.name);
        }
        let names: std::collections::HashSet<_> = TABLE.iter().map(|b| b.name).collect();
        assert_eq!(names.len(), TABLE.len(), "duplicate builtin names");
    }

    #[test]
    fn signatures_display_readably() {
        let s = Signature::parse("randn", "*shape, seed=none");
        assert_eq!(s.display(), "randn(shape..., seed: none)");
        let c = Signature::parse("load_csv", "path, header=none, delimiter=\",\"");
        assert_eq!(
            c.display(),
            "load_csv(path, header: none, delimiter: \",\")"
        );
        assert!(s.accepts_named("seed") && !s.accepts_named("sed"));
    }
}
