//! Run-time values. Numbers are unboxed; everything larger is shared behind an
//! `Rc` and copied only when written (`Rc::make_mut`), so passing a 4000 × 4000
//! tensor to a function costs a reference count.

use std::cell::RefCell;
use std::rc::Rc;

use crate::syntax::ast::FnDef;

use ndarray::{ArcArray, IxDyn};

use crate::prim::Dtype;
pub use crate::tensor::{BoolTensor, IntTensor, Tensor};

/// `Some($body)` for a tensor of any dtype, with `$t` bound to its
/// `&Rc<ArcArray<T, IxDyn>>` (`T: Elem`); `None` for other values. The body
/// is compiled once per dtype, so it calls code generic over `Elem`.
macro_rules! any_tensor {
    ($v:expr, $t:ident => $body:expr) => {
        match $v {
            $crate::eval::value::Value::Tensor($t) => Some($body),
            $crate::eval::value::Value::IntTensor($t) => Some($body),
            $crate::eval::value::Value::BoolTensor($t) => Some($body),
            _ => None,
        }
    };
}
pub(crate) use any_tensor;

#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A thin pointer, so that a `Value` is two words.
    Str(Rc<String>),
    /// A Float tensor.
    Tensor(Rc<Tensor>),
    IntTensor(Rc<IntTensor>),
    BoolTensor(Rc<BoolTensor>),
    Tuple(Rc<Items>),
    List(Rc<Items>),
    Record(Rc<Record>),
    /// `start..end`, end exclusive (an inclusive range is stored with end + 1).
    Range(Rc<(i64, i64)>),
    Func(Rc<Closure>),
    Builtin(u32),
    /// A kernel with its hyperparameters (`laplace(L: 5.0)`).
    Kernel(Rc<crate::kernel::Kernel>),
    /// A fitted kernel machine (`krr(...)`): callable, with fields.
    Predictor(Rc<crate::kernel::Predictor>),
    Module(u32),
    /// A variable captured by a closure (internal: never seen by programs).
    Cell(Rc<RefCell<Value>>),
    /// A module-level name whose definition has not run yet (internal).
    Undefined,
    /// A Float or tensor on the tape of a running `grad` (see `eval::traced`).
    Traced(Rc<crate::eval::traced::Traced>),
    /// `grad(f)` or `value_and_grad(f)`: callable.
    Transform(Rc<crate::eval::transform::Transform>),
    /// A `model` declaration: calling it builds an instance.
    ModelDecl(Rc<crate::syntax::ast::ModelDef>),
    /// An instance of a model: callable (its `forward`), with fields.
    Model(Rc<crate::eval::model::Model>),
    /// `net.with`, a function from parameters to a model.
    ModelWith(Rc<crate::eval::model::Model>),
    /// `progress(xs, label)`: `xs`, iterated by `for` with a progress bar.
    Progress(Rc<(Value, Option<Rc<String>>)>),
}

/// At most this many lists, tuples and records inside one another (Python's
/// recursion limit), so that printing, comparing and dropping a value recurse
/// a bounded depth. Each container keeps an upper bound on its depth, so the
/// limit is checked in constant time (`Value::depth`).
pub const MAX_DEPTH: u32 = 1000;

/// The items of a list or tuple, with how deeply they nest.
#[derive(Clone, Debug, Default)]
pub struct Items {
    items: Vec<Value>,
    depth: u32,
}

impl Items {
    pub fn new(items: Vec<Value>) -> Items {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        Items { items, depth }
    }

    /// Run `f` on item `i`, then account for what it may have nested there.
    pub fn update<T>(&mut self, i: usize, f: impl FnOnce(&mut Value) -> T) -> T {
        let out = f(&mut self.items[i]);
        self.depth = self.depth.max(1 + self.items[i].depth());
        out
    }
}

impl std::ops::Deref for Items {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        &self.items
    }
}

impl From<Vec<Value>> for Items {
    fn from(items: Vec<Value>) -> Items {
        Items::new(items)
    }
}

impl FromIterator<Value> for Items {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Items {
        Items::new(iter.into_iter().collect())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Read freely; written through `Record::update` or `Record::push`, which
    /// keep `depth` an upper bound.
    pub fields: Vec<(Rc<str>, Value)>,
    depth: u32,
}

impl Record {
    pub fn new(fields: Vec<(Rc<str>, Value)>) -> Record {
        let depth = 1 + fields.iter().map(|(_, v)| v.depth()).max().unwrap_or(0);
        Record { fields, depth }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }

    pub fn push(&mut self, name: Rc<str>, v: Value) {
        self.depth = self.depth.max(1 + v.depth());
        self.fields.push((name, v));
    }

    /// Run `f` on field `i`'s value, then account for what it may have nested there.
    pub fn update<T>(&mut self, i: usize, f: impl FnOnce(&mut Value) -> T) -> T {
        let out = f(&mut self.fields[i].1);
        self.depth = self.depth.max(1 + self.fields[i].1.depth());
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FnKind {
    Fn,
    Closure,
    Proc,
    Loss,
}

#[derive(Debug)]
pub struct Closure {
    pub def: Rc<FnDef>,
    pub captures: Vec<Rc<RefCell<Value>>>,
    pub kind: FnKind,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::new(s.to_string()))
    }

    pub fn tensor(t: impl Into<Tensor>) -> Value {
        Value::Tensor(Rc::new(t.into()))
    }

    /// The kind of value, as a user reads it in a message.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Bool(_) => "Bool",
            Value::Int(_) => "Int",
            Value::Float(_) => "Float",
            Value::Str(_) => "Str",
            Value::Tensor(_) | Value::IntTensor(_) | Value::BoolTensor(_) => "Tensor",
            Value::Tuple(_) => "Tuple",
            Value::List(_) => "List",
            Value::Record(_) => "Record",
            Value::Range(..) => "Range",
            Value::Func(c) => match c.kind {
                FnKind::Proc => "Proc",
                FnKind::Loss => "Loss",
                _ => "Function",
            },
            Value::Builtin(_) | Value::Transform(_) | Value::ModelWith(_) => "Function",
            Value::ModelDecl(_) => "Model declaration",
            Value::Model(_) => "Model",
            Value::Traced(t) => t.primal.kind(),
            Value::Kernel(_) => "Kernel",
            Value::Predictor(_) => "Predictor",
            Value::Module(_) => "Module",
            Value::Progress(_) => "Progress",
            Value::Cell(_) | Value::Undefined => "internal",
        }
    }

    /// Kind plus shape for tensors, e.g. `Tensor (3, 4)` (Float) or `Int tensor (3,)`.
    pub fn describe(&self) -> String {
        use crate::format::shape_str;
        match self {
            Value::Tensor(t) => format!("Tensor {}", shape_str(t.shape())),
            Value::IntTensor(t) => format!("Int tensor {}", shape_str(t.shape())),
            Value::BoolTensor(t) => format!("Bool tensor {}", shape_str(t.shape())),
            Value::Tuple(t) => format!("Tuple of {}", t.len()),
            Value::List(t) => format!("List of {}", t.len()),
            Value::Traced(t) => t.primal.describe(),
            v => v.kind().to_string(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(*b as i64 as f64),
            _ => None,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_) | Value::Bool(_))
    }

    pub fn is_tensor(&self) -> bool {
        matches!(
            self,
            Value::Tensor(_) | Value::IntTensor(_) | Value::BoolTensor(_)
        )
    }

    /// The dtype of a number or tensor.
    pub fn dtype(&self) -> Option<Dtype> {
        Some(match self {
            Value::Float(_) | Value::Tensor(_) => Dtype::Float,
            Value::Int(_) | Value::IntTensor(_) => Dtype::Int,
            Value::Bool(_) | Value::BoolTensor(_) => Dtype::Bool,
            Value::Traced(t) => return t.primal.dtype(),
            _ => return None,
        })
    }

    /// A tensor's shape (`None` for other values).
    pub fn shape(&self) -> Option<&[usize]> {
        any_tensor!(self, t => t.shape())
    }

    /// A record of these fields, in order.
    pub fn record<N: Into<Rc<str>>>(fields: impl IntoIterator<Item = (N, Value)>) -> Value {
        Value::Record(Rc::new(Record::new(
            fields.into_iter().map(|(n, v)| (n.into(), v)).collect(),
        )))
    }

    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(Rc::new(items.into_iter().collect()))
    }

    pub fn tuple(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Tuple(Rc::new(items.into_iter().collect()))
    }

    /// How many lists, tuples and records nest here (an upper bound; 0 for
    /// other values).
    pub fn depth(&self) -> u32 {
        match self {
            Value::List(items) | Value::Tuple(items) => items.depth,
            Value::Record(r) => r.depth,
            _ => 0,
        }
    }

    /// `Err` with a diagnostic at `span` when this value nests deeper than
    /// `MAX_DEPTH`.
    pub fn check_depth(&self, span: crate::diag::Span) -> Result<(), crate::diag::Diag> {
        if self.depth() <= MAX_DEPTH {
            return Ok(());
        }
        Err(crate::diag::Diag::new(
            "flx::value::too_deep",
            format!("lists, tuples and records nest more than {MAX_DEPTH} deep here"),
        )
        .at(span)
        .help(
            "a value this deep cannot be printed or compared; keep items side by side in one list",
        ))
    }

    /// The value as an ndarray array, where NumPy's `np.asarray` would make
    /// one: a tensor, a number (0-d), or a list or tuple of values that are
    /// arrays of one shape (stacked along a new first axis).
    pub fn to_array(&self) -> Option<ndarray::ArrayD<f64>> {
        match self {
            Value::List(items) | Value::Tuple(items) if !items.is_empty() => {
                let parts = items
                    .iter()
                    .map(Value::to_array)
                    .collect::<Option<Vec<_>>>()?;
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                ndarray::stack(ndarray::Axis(0), &views).ok()
            }
            Value::Tensor(t) => Some((**t).to_owned()),
            _ => {
                let t = crate::eval::builtins::array_like(self, crate::diag::Span::default())?;
                Some((*t).to_owned())
            }
        }
    }
}

/// An element type of tensors: how its tensors and numbers are values.
pub trait Elem: Copy + PartialOrd + std::fmt::Debug + Send + Sync + 'static {
    const DTYPE: Dtype;
    fn tensor(t: ArcArray<Self, IxDyn>) -> Value;
    fn scalar(self) -> Value;
    /// The element as a Float (Bools are 0 and 1).
    fn to_f64(self) -> f64;
    /// A tensor value of this dtype.
    fn of_tensor(v: &Value) -> Option<&Rc<ArcArray<Self, IxDyn>>>;
    /// A number of this dtype.
    fn of_scalar(v: &Value) -> Option<Self>;
    /// 0, or false.
    fn zero() -> Self;
}

impl Elem for f64 {
    const DTYPE: Dtype = Dtype::Float;
    fn tensor(t: Tensor) -> Value {
        Value::Tensor(Rc::new(t))
    }
    fn scalar(self) -> Value {
        Value::Float(self)
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn of_tensor(v: &Value) -> Option<&Rc<Tensor>> {
        match v {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }
    fn of_scalar(v: &Value) -> Option<f64> {
        match v {
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }
    fn zero() -> f64 {
        0.0
    }
}

impl Elem for i64 {
    const DTYPE: Dtype = Dtype::Int;
    fn tensor(t: IntTensor) -> Value {
        Value::IntTensor(Rc::new(t))
    }
    fn scalar(self) -> Value {
        Value::Int(self)
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn of_tensor(v: &Value) -> Option<&Rc<IntTensor>> {
        match v {
            Value::IntTensor(t) => Some(t),
            _ => None,
        }
    }
    fn of_scalar(v: &Value) -> Option<i64> {
        match v {
            Value::Int(x) => Some(*x),
            _ => None,
        }
    }
    fn zero() -> i64 {
        0
    }
}

impl Elem for bool {
    const DTYPE: Dtype = Dtype::Bool;
    fn tensor(t: BoolTensor) -> Value {
        Value::BoolTensor(Rc::new(t))
    }
    fn scalar(self) -> Value {
        Value::Bool(self)
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn of_tensor(v: &Value) -> Option<&Rc<BoolTensor>> {
        match v {
            Value::BoolTensor(t) => Some(t),
            _ => None,
        }
    }
    fn of_scalar(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(x) => Some(*x),
            _ => None,
        }
    }
    fn zero() -> bool {
        false
    }
}

impl<A: Elem> From<ArcArray<A, IxDyn>> for Value {
    fn from(a: ArcArray<A, IxDyn>) -> Value {
        A::tensor(a)
    }
}

impl<A: Elem, D: ndarray::Dimension> From<ndarray::Array<A, D>> for Value {
    fn from(a: ndarray::Array<A, D>) -> Value {
        A::tensor(a.into_dyn().into_shared())
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Rc::new(s))
    }
}
