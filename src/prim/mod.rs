//! The primitive vocabulary: every elementwise operation and reduction of
//! floats that flx computes, declared once, with its name, its arity (by the
//! enum it is in), the one Rust function that computes its value (`math`),
//! its derivative, and whether a kernel body may use it.
//!
//! The interpreter (`eval`), the autodiff tape (`ad`), kernel expressions and
//! tapes (`kernel`) and the JIT (`jit`) all read these enums and match them
//! exhaustively, with no catch-all arm: a new primitive does not compile
//! until every engine handles it. Nothing here knows of values or syntax.
//!
//! The dtype rules are here too (`Dtype`, `result_dtype`, the Int
//! functions): tensors are Float (f64), Int (i64) or Bool, and every engine
//! gives an operation the dtype this table says.

pub mod math;

/// The element types, in NumPy's promotion order: Bool < Int < Float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dtype {
    Bool,
    Int,
    Float,
}

impl Dtype {
    /// What `dtype(x)` says.
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::Int => "int",
            Dtype::Float => "float",
        }
    }

    /// The dtype arithmetic computes in: a Bool counts as an Int (0 or 1),
    /// as Python's `True + True == 2`.
    pub fn arithmetic(self) -> Dtype {
        self.max(Dtype::Int)
    }
}

/// Why an Int operation has no Int result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntError {
    Overflow,
    ZeroDivision,
    NegativePower,
}

/// Elementwise functions of one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `-x` (the operator; no builtin of its own).
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    Sign,
    Floor,
    Ceil,
    Round,
}

/// The derivative f'(x) of a unary primitive, as a formula of its argument
/// `x` and its value `y = f(x)`. The autodiff tape evaluates it per element
/// (`eval`); kernel expressions build it as nodes (`kernel::expr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derivative {
    /// -1
    MinusOne,
    /// y (exp)
    Value,
    /// 1 / x (log)
    Reciprocal,
    /// 0.5 / y (sqrt)
    HalfOverValue,
    /// 1 - y² (tanh)
    OneMinusValueSquared,
    /// y (1 - y) (sigmoid)
    ValueTimesOneMinusValue,
    /// 1 where x > 0, else 0 (relu)
    Step,
    /// sign(x) (abs)
    Sign,
    /// cos(x) (sin)
    Cos,
    /// -sin(x) (cos)
    MinusSin,
}

impl Derivative {
    #[inline(always)]
    pub fn eval(self, x: f64, y: f64) -> f64 {
        match self {
            Derivative::MinusOne => -1.0,
            Derivative::Value => y,
            Derivative::Reciprocal => 1.0 / x,
            Derivative::HalfOverValue => 0.5 / y,
            Derivative::OneMinusValueSquared => 1.0 - y * y,
            Derivative::ValueTimesOneMinusValue => y * (1.0 - y),
            Derivative::Step => math::step(x),
            Derivative::Sign => math::sign(x),
            Derivative::Cos => math::cos(x),
            Derivative::MinusSin => -math::sin(x),
        }
    }
}

impl Unary {
    pub const ALL: [Unary; 14] = [
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Abs,
        Unary::Sin,
        Unary::Cos,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Relu,
        Unary::Sign,
        Unary::Floor,
        Unary::Ceil,
        Unary::Round,
    ];

    /// The builtin that applies it elementwise (`Neg` is the operator `-`).
    pub const fn builtin(self) -> Option<&'static str> {
        Some(match self {
            Unary::Neg => return None,
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Abs => "abs",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::Sign => "sign",
            Unary::Floor => "floor",
            Unary::Ceil => "ceil",
            Unary::Round => "round",
        })
    }

    /// The name in messages: the builtin's, or `-` for negation.
    pub const fn name(self) -> &'static str {
        match self.builtin() {
            Some(n) => n,
            None => "-",
        }
    }

    /// The primitive a builtin name denotes.
    pub fn by_builtin(name: &str) -> Option<Unary> {
        Unary::ALL.into_iter().find(|u| u.builtin() == Some(name))
    }

    /// What `:help` says of the builtin.
    pub const fn doc(self) -> &'static str {
        match self {
            Unary::Neg => "Elementwise negation.",
            Unary::Exp => "Elementwise e^x (within 2 ulp; the same function in every engine).",
            Unary::Log => "Elementwise natural logarithm.",
            Unary::Sqrt => "Elementwise square root.",
            Unary::Abs => "Elementwise absolute value.",
            Unary::Sin => "Elementwise sine.",
            Unary::Cos => "Elementwise cosine.",
            Unary::Tanh => "Elementwise hyperbolic tangent.",
            Unary::Sigmoid => "Elementwise logistic function 1 / (1 + e^-x).",
            Unary::Relu => "Elementwise max(x, 0).",
            Unary::Sign => "Elementwise sign: -1, 0 or 1.",
            Unary::Floor => "Elementwise floor.",
            Unary::Ceil => "Elementwise ceiling.",
            Unary::Round => "Elementwise rounding, halves to even (as NumPy).",
        }
    }

    /// The function that computes it; `apply` and the JIT's calls are this.
    pub const fn function(self) -> fn(f64) -> f64 {
        match self {
            Unary::Neg => math::neg,
            Unary::Exp => math::exp,
            Unary::Log => math::log,
            Unary::Sqrt => math::sqrt,
            Unary::Abs => math::abs,
            Unary::Sin => math::sin,
            Unary::Cos => math::cos,
            Unary::Tanh => math::tanh,
            Unary::Sigmoid => math::sigmoid,
            Unary::Relu => math::relu,
            Unary::Sign => math::sign,
            Unary::Floor => math::floor,
            Unary::Ceil => math::ceil,
            Unary::Round => math::round,
        }
    }

    #[inline(always)]
    pub fn apply(self, x: f64) -> f64 {
        (self.function())(x)
    }

    /// `apply` over a slice, element for element the same; monomorphised per
    /// primitive so that each loop is tight (and `exp`'s vectorises).
    #[inline(always)]
    pub fn apply_slice(self, x: &[f64], out: &mut [f64]) {
        macro_rules! each {
            ($($u:ident),*) => {
                match self {
                    Unary::Exp => math::exp_slice(x, out),
                    $(Unary::$u => {
                        for (o, &v) in out.iter_mut().zip(x) {
                            *o = Unary::$u.apply(v)
                        }
                    })*
                }
            };
        }
        each!(Neg, Log, Sqrt, Abs, Sin, Cos, Tanh, Sigmoid, Relu, Sign, Floor, Ceil, Round)
    }

    /// Its derivative; `None` where there is none worth following (flat
    /// almost everywhere, so `grad` and kernel bodies refuse it).
    pub const fn derivative(self) -> Option<Derivative> {
        Some(match self {
            Unary::Neg => Derivative::MinusOne,
            Unary::Exp => Derivative::Value,
            Unary::Log => Derivative::Reciprocal,
            Unary::Sqrt => Derivative::HalfOverValue,
            Unary::Abs => Derivative::Sign,
            Unary::Sin => Derivative::Cos,
            Unary::Cos => Derivative::MinusSin,
            Unary::Tanh => Derivative::OneMinusValueSquared,
            Unary::Sigmoid => Derivative::ValueTimesOneMinusValue,
            Unary::Relu => Derivative::Step,
            Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round => return None,
        })
    }

    /// The Int function, for the primitives that keep Ints (`-`, `abs`,
    /// `sign`, `relu`, and the roundings, which leave an Int as it is);
    /// `None` for those that give Floats.
    pub const fn int_function(self) -> Option<fn(i64) -> Result<i64, IntError>> {
        Some(match self {
            Unary::Neg => |x| x.checked_neg().ok_or(IntError::Overflow),
            Unary::Abs => |x| x.checked_abs().ok_or(IntError::Overflow),
            Unary::Sign => |x| Ok(x.signum()),
            Unary::Relu => |x| Ok(x.max(0)),
            Unary::Floor | Unary::Ceil | Unary::Round => Ok,
            Unary::Exp
            | Unary::Log
            | Unary::Sqrt
            | Unary::Sin
            | Unary::Cos
            | Unary::Tanh
            | Unary::Sigmoid => return None,
        })
    }

    /// The dtype of its result for an operand of dtype `a`.
    pub const fn result_dtype(self, a: Dtype) -> Dtype {
        match (a, self.int_function()) {
            (Dtype::Bool | Dtype::Int, Some(_)) => Dtype::Int,
            _ => Dtype::Float,
        }
    }

    /// Whether a kernel body may use it: the body's derivative must exist.
    pub const fn in_kernels(self) -> bool {
        self.derivative().is_some()
    }
}

/// Elementwise functions of two numbers. Comparisons give 1 or 0 (a tensor
/// comparison's elements; on two numbers the interpreter makes a Bool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    /// Python's `%` (the divisor's sign).
    Rem,
    /// `//`: floor division, Python's (`floor((a - a % b) / b)`).
    FloorDiv,
    Pow,
    /// The builtins `max(x, y)` and `min(x, y)`: nan if either is nan.
    Max,
    Min,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// a / b, 0 where |b| < `math::ZERO_DIST`; only made by differentiating a
    /// kernel body (the gradient of a kernel at `dist = 0`).
    SafeDiv,
}

/// How a binary primitive is differentiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Differentiable {
    /// A derivative in both operands (each engine writes its rule).
    Yes,
    /// Piecewise constant: no gradient flows (comparisons give Bools).
    Flat,
    /// Not differentiable: `grad` and kernel bodies refuse it.
    No,
}

impl Binary {
    pub const ALL: [Binary; 16] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Rem,
        Binary::FloorDiv,
        Binary::Pow,
        Binary::Max,
        Binary::Min,
        Binary::Eq,
        Binary::Ne,
        Binary::Lt,
        Binary::Le,
        Binary::Gt,
        Binary::Ge,
        Binary::SafeDiv,
    ];

    /// The operator that writes it, or the builtin that applies it.
    pub const fn name(self) -> &'static str {
        match self {
            Binary::Add => "+",
            Binary::Sub => "-",
            Binary::Mul => "*",
            Binary::Div => "/",
            Binary::Rem => "%",
            Binary::FloorDiv => "//",
            Binary::Pow => "^",
            Binary::Max => "max",
            Binary::Min => "min",
            Binary::Eq => "==",
            Binary::Ne => "!=",
            Binary::Lt => "<",
            Binary::Le => "<=",
            Binary::Gt => ">",
            Binary::Ge => ">=",
            Binary::SafeDiv => "safe_div",
        }
    }

    pub const fn function(self) -> fn(f64, f64) -> f64 {
        match self {
            Binary::Add => math::add,
            Binary::Sub => math::sub,
            Binary::Mul => math::mul,
            Binary::Div => math::div,
            Binary::Rem => math::rem,
            Binary::FloorDiv => math::floor_div,
            Binary::Pow => math::pow,
            Binary::Max => math::max,
            Binary::Min => math::min,
            Binary::Eq => math::eq,
            Binary::Ne => math::ne,
            Binary::Lt => math::lt,
            Binary::Le => math::le,
            Binary::Gt => math::gt,
            Binary::Ge => math::ge,
            Binary::SafeDiv => math::safe_div,
        }
    }

    #[inline(always)]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        (self.function())(a, b)
    }

    pub const fn is_comparison(self) -> bool {
        matches!(
            self,
            Binary::Eq | Binary::Ne | Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge
        )
    }

    /// Whether a ⊕ b == b ⊕ a, bit for bit (so expressions may reorder).
    pub const fn commutes(self) -> bool {
        matches!(
            self,
            Binary::Add | Binary::Mul | Binary::Max | Binary::Min | Binary::Eq | Binary::Ne
        )
    }

    pub const fn differentiable(self) -> Differentiable {
        match self {
            Binary::Add
            | Binary::Sub
            | Binary::Mul
            | Binary::Div
            | Binary::Pow
            | Binary::Max
            | Binary::Min
            | Binary::SafeDiv => Differentiable::Yes,
            Binary::Eq
            | Binary::Ne
            | Binary::Lt
            | Binary::Le
            | Binary::Gt
            | Binary::Ge
            | Binary::FloorDiv => Differentiable::Flat,
            Binary::Rem => Differentiable::No,
        }
    }

    /// The dtype of `a ⊕ b` for operands of dtypes `a` and `b` (NumPy's
    /// rules): comparisons give Bool, `/` Float, `max`/`min` the larger
    /// dtype, the rest the larger dtype of arithmetic (Bool counts as Int).
    pub fn result_dtype(self, a: Dtype, b: Dtype) -> Dtype {
        match self {
            _ if self.is_comparison() => Dtype::Bool,
            Binary::Div | Binary::SafeDiv => Dtype::Float,
            Binary::Max | Binary::Min => a.max(b),
            _ => a.arithmetic().max(b.arithmetic()),
        }
    }

    /// The dtype `a ⊕ b` computes in: Float for `/` and wherever an operand
    /// is Float, else Int (Bools count as Ints, also in comparisons).
    pub fn compute_dtype(self, a: Dtype, b: Dtype) -> Dtype {
        match self {
            Binary::Div | Binary::SafeDiv => Dtype::Float,
            _ => a.arithmetic().max(b.arithmetic()),
        }
    }

    /// `a ⊕ b` on two Ints, for the primitives whose Int result is an Int
    /// (`result_dtype` is Int): checked, never wrapping.
    pub fn apply_int(self, a: i64, b: i64) -> Result<i64, IntError> {
        use IntError::*;
        match self {
            Binary::Add => a.checked_add(b).ok_or(Overflow),
            Binary::Sub => a.checked_sub(b).ok_or(Overflow),
            Binary::Mul => a.checked_mul(b).ok_or(Overflow),
            Binary::Rem | Binary::FloorDiv if b == 0 => Err(ZeroDivision),
            // Python's: the remainder has the divisor's sign.
            Binary::Rem => match a.checked_rem(b).ok_or(Overflow)? {
                r if r != 0 && (r < 0) != (b < 0) => Ok(r + b),
                r => Ok(r),
            },
            Binary::FloorDiv => {
                let q = a.checked_div(b).ok_or(Overflow)?;
                Ok(if q * b != a && (a < 0) != (b < 0) {
                    q - 1
                } else {
                    q
                })
            }
            Binary::Pow if b < 0 => Err(NegativePower),
            Binary::Pow => a
                .checked_pow(u32::try_from(b).map_err(|_| Overflow)?)
                .ok_or(Overflow),
            Binary::Max => Ok(a.max(b)),
            Binary::Min => Ok(a.min(b)),
            Binary::Eq => Ok((a == b) as i64),
            Binary::Ne => Ok((a != b) as i64),
            Binary::Lt => Ok((a < b) as i64),
            Binary::Le => Ok((a <= b) as i64),
            Binary::Gt => Ok((a > b) as i64),
            Binary::Ge => Ok((a >= b) as i64),
            Binary::Div | Binary::SafeDiv => unreachable!("`/` gives Floats"),
        }
    }

    /// Whether a kernel body may write it (by operator or builtin): the
    /// differentiable ones, but `safe_div`, which only differentiation makes.
    pub const fn in_kernels(self) -> bool {
        matches!(self.differentiable(), Differentiable::Yes) && !matches!(self, Binary::SafeDiv)
    }
}

/// Reductions of a lane of floats to one float (`axis:` picks the lanes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
    Norm,
    Var,
    Std,
    LogSumExp,
}

impl Reduce {
    pub const ALL: [Reduce; 8] = [
        Reduce::Sum,
        Reduce::Mean,
        Reduce::Max,
        Reduce::Min,
        Reduce::Norm,
        Reduce::Var,
        Reduce::Std,
        Reduce::LogSumExp,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Max => "max",
            Reduce::Min => "min",
            Reduce::Norm => "norm",
            Reduce::Var => "var",
            Reduce::Std => "std",
            Reduce::LogSumExp => "logsumexp",
        }
    }

    pub fn by_builtin(name: &str) -> Option<Reduce> {
        Reduce::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The value of one lane (never empty unless `empty_ok`).
    pub fn apply(self, v: &[f64]) -> f64 {
        match self {
            Reduce::Sum => math::pairwise_sum(v),
            Reduce::Mean => math::mean(v),
            Reduce::Max => v.iter().cloned().fold(f64::NEG_INFINITY, math::max),
            Reduce::Min => v.iter().cloned().fold(f64::INFINITY, math::min),
            Reduce::Norm => math::norm(v),
            Reduce::Var => math::variance(v),
            Reduce::Std => math::variance(v).sqrt(),
            Reduce::LogSumExp => math::logsumexp(v),
        }
    }

    /// Whether an empty lane has a value (only the sum's, 0).
    pub const fn empty_ok(self) -> bool {
        matches!(self, Reduce::Sum)
    }
}
