//! The builtin table. Each builtin is declared once, next to its
//! implementation, with its name, signature (`signature::Signature`'s
//! syntax) and documentation; `STATIC` is that table as the resolver, the
//! REPL's `:help` and `docs/` read it (`signature::Builtins`), and its
//! indices are the table's.

/// One entry of a builtin table: `builtin!(name, signature, doc, implementation)`.
macro_rules! builtin {
    ($name:literal, $sig:literal, $doc:literal, $f:expr) => {
        Builtin {
            name: $name,
            sig: $sig,
            doc: $doc,
            run: $f,
        }
    };
}

mod arrays;
mod autodiff;
mod io;
pub mod kernels;
mod linalg;
pub mod metrics;
mod plot;
pub mod tensor;

use std::rc::Rc;
use std::sync::LazyLock;

use super::interp::Interp;
use super::value::{Tensor, Value};
use crate::diag::{did_you_mean, Diag, Span};
use crate::format::shape_str;
use crate::signature::{Builtins, Lit, Param, Signature};

pub type BuiltinFn = fn(&mut Interp, &mut Args) -> Result<Value, Diag>;

pub struct Builtin {
    pub name: &'static str,
    /// Parameter list, e.g. `"x, axis=none"`.
    pub sig: &'static str,
    pub doc: &'static str,
    pub run: BuiltinFn,
}

/// Every builtin, in documentation order.
pub static TABLE: LazyLock<Vec<&'static Builtin>> = LazyLock::new(|| {
    tensor::BUILTINS
        .iter()
        .chain(arrays::BUILTINS)
        .chain(linalg::BUILTINS)
        .chain(kernels::BUILTINS)
        .chain(metrics::BUILTINS)
        .chain(io::BUILTINS)
        .chain(autodiff::BUILTINS)
        .chain(plot::BUILTINS)
        .collect()
});

/// The table as the resolver sees it: builtin `i` of `TABLE` is entry `i`.
pub static STATIC: LazyLock<Builtins> = LazyLock::new(|| {
    let mut b = Builtins::default();
    for t in TABLE.iter() {
        b.add(t.name, t.sig, t.doc)
            .unwrap_or_else(|e| panic!("builtin `{}`: {e}", t.name));
    }
    b
});

pub fn get(i: u32) -> &'static Builtin {
    TABLE[i as usize]
}

/// The value of a signature's default.
pub fn lit_value(l: &Lit) -> Value {
    match l {
        Lit::None => Value::None,
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Int(i) => Value::Int(*i),
        Lit::Float(f) => Value::Float(*f),
        Lit::Str(s) => Value::str(s),
    }
}

/// A value as a tensor, where NumPy would take it as an array: a tensor, a
/// number (0-d), or a list of numbers or of equal-shaped tensors (what
/// `append` builds); `[]` is the empty vector.
pub fn array_like(v: &Value, span: Span) -> Option<Rc<Tensor>> {
    match v {
        Value::Tensor(_) | Value::IntTensor(_) | Value::BoolTensor(_) => {
            crate::eval::dtype::float_tensor(v)
        }
        Value::Int(_) | Value::Float(_) => Some(Rc::new(
            ndarray::arr0(v.as_f64().expect("number")).into_dyn().into(),
        )),
        Value::List(items) if items.is_empty() => {
            Some(Rc::new(ndarray::Array1::<f64>::zeros(0).into_dyn().into()))
        }
        Value::List(items) => {
            let vals = items.iter().map(|v| (v.clone(), span)).collect();
            match crate::eval::ops::list_literal(vals, span) {
                Ok(v) if v.is_tensor() => crate::eval::dtype::float_tensor(&v),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Arguments bound to a builtin's parameters: `vals[i]` is parameter `i`
/// (positional parameters first, then keyword-only ones).
pub struct Args<'s> {
    pub name: &'s str,
    pub vals: Vec<Value>,
    pub spans: Vec<Span>,
    pub rest: Vec<(Value, Span)>,
    pub kwargs: Vec<(Rc<str>, Value, Span)>,
    pub call: Span,
    sig: &'s Signature,
}

impl<'s> Args<'s> {
    /// Bind a call's arguments to the parameters of `sig`.
    pub fn bind(
        sig: &'s Signature,
        pos: Vec<(Value, Span)>,
        named: Vec<(Rc<str>, Value, Span)>,
        call: Span,
    ) -> Result<Args<'s>, Diag> {
        let b = sig;
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
                (None, Some(d)) => lit_value(d),
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
            name: &sig.name,
            vals: out,
            spans,
            rest,
            kwargs,
            call,
            sig,
        })
    }

    pub fn param_name(&self, i: usize) -> &str {
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

    /// A tensor argument of its own dtype (numbers and lists as Float
    /// tensors, as `tensor` reads them).
    pub fn any_tensor(&self, i: usize) -> Result<Value, Diag> {
        match &self.vals[i] {
            v if v.is_tensor() => Ok(v.clone()),
            _ => Ok(Value::Tensor(self.tensor(i)?)),
        }
    }

    /// The error of an Int result that does not fit in 64 bits.
    pub fn overflow(&self) -> Diag {
        Diag::new(
            "flx::math::overflow",
            format!("integer overflow in `{}`", self.name),
        )
        .at(self.call)
        .help("Int is 64-bit; compute in Floats with `float(x)`")
    }

    /// The shape of a tensor argument of any dtype (numbers and lists as `tensor` takes them).
    pub fn shape(&self, i: usize) -> Result<Vec<usize>, Diag> {
        match self.vals[i].shape() {
            Some(s) => Ok(s.to_vec()),
            None => Ok(self.tensor(i)?.shape().to_vec()),
        }
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

    /// A Str argument that must be one of `options`, returned as the option.
    pub fn one_of(&self, i: usize, options: &[&'static str]) -> Result<&'static str, Diag> {
        let s = self.str(i)?;
        options
            .iter()
            .find(|o| **o == s.as_str())
            .copied()
            .ok_or_else(|| {
                let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
                self.error(
                    i,
                    "flx::value::option",
                    format!(
                        "`{}` of `{}` is one of {}, found \"{s}\"",
                        self.param_name(i),
                        self.name,
                        quoted.join(", ")
                    ),
                )
            })
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
        ("Arrays", arrays::BUILTINS),
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
                STATIC.heading(STATIC.lookup(b.name).expect("in the table")),
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

/// About how many flops a factorisation of the matrix `m` takes:
/// `per_cube` · rows · columns · min(rows, columns) (1 for LU, 10 for an
/// eigendecomposition with vectors, ...), for `Interp::charge`.
pub fn factor_flops(m: &Tensor, per_cube: u64) -> u64 {
    let (r, c) = (m.shape()[0] as u64, m.shape()[1] as u64);
    per_cube * r * c * r.min(c)
}

/// Refuse to allocate a tensor larger than `tensor::max_elements()`.
pub fn check_size(shape: &[usize], span: Span) -> Result<(), Diag> {
    check_axes(shape.len(), span)?;
    crate::tensor::check_elements(shape).map_err(|e| {
        Diag::new("flx::shape::too_large", e.0)
            .at(span)
            .help("work in blocks, or on a subsample")
    })
}

/// At most `tensor::MAX_AXES` axes.
pub fn check_axes(ndim: usize, span: Span) -> Result<(), Diag> {
    crate::tensor::check_axes(ndim)
        .map_err(|e| Diag::new("flx::shape::too_many_axes", e.0).at(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_a_parsable_signature_and_a_doc() {
        assert_eq!(STATIC.len(), TABLE.len(), "duplicate builtin names");
        for (i, b) in TABLE.iter().enumerate() {
            assert_eq!(STATIC.name(i as u32), b.name);
            assert!(!b.doc.is_empty(), "{} has no doc", b.name);
        }
    }
}
