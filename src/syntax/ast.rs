//! The abstract syntax tree. Every node carries the span of its source text.
//!
//! The resolver (`check`) fills the `Cell`s left here for it (variable slots,
//! frame sizes, captures); the tree is otherwise immutable after lowering.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::diag::Span;
use crate::prim::Binary;

/// A name as written, with its span.
#[derive(Clone, Debug)]
pub struct Ident {
    pub name: Rc<str>,
    pub span: Span,
}

/// Where a variable lives at run time, decided once by the resolver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Not resolved (the resolver reported an error, or has not run).
    #[default]
    Unresolved,
    /// A slot in the current call frame.
    Local(u32),
    /// A frame slot captured by an inner closure: it holds a shared cell, and
    /// each binding of it (each `let`, each loop iteration) makes a fresh one.
    Boxed(u32),
    /// A variable captured by the enclosing closure.
    Capture(u32),
    /// A module-level binding, shared by the whole session.
    Global(u32),
    /// A builtin function, by index into the builtin table.
    Builtin(u32),
    /// A named constant, by index into `CONSTANTS`.
    Constant(u8),
}

/// The names that stand for numbers unless a program binds them itself.
pub const CONSTANTS: [(&str, f64); 3] = [
    ("nan", f64::NAN),
    ("inf", f64::INFINITY),
    ("pi", std::f64::consts::PI),
];

#[derive(Debug)]
pub struct Name {
    pub ident: Ident,
    pub slot: Cell<Slot>,
}

impl Name {
    pub fn new(ident: Ident) -> Self {
        Name {
            ident,
            slot: Cell::new(Slot::Unresolved),
        }
    }
}

#[derive(Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(Vec<StrPart>),
    Bool(bool),
    None,
    Name(Name),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Record(Vec<(Ident, Expr)>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Range {
        start: Box<Expr>,
        end: Box<Expr>,
        inclusive: bool,
    },
    Call(Box<Expr>, Vec<Arg>),
    Index(Box<Expr>, Vec<IndexItem>),
    Field(Box<Expr>, Ident),
    Lambda(Rc<FnDef>),
    If(Box<Expr>, Block, Option<Box<Expr>>),
    Block(Block),
    Let(Pattern, Box<Expr>),
    /// `place = value`, or `place op= value` with the operator (`x += 1`: `Some(Add)`).
    Assign(Place, Option<BinOp>, Box<Expr>),
    For(Pattern, Box<Expr>, Block),
    /// `try { body } catch e { handler }`.
    Try(Block, Name, Block),
    /// `[elem for x in xs if c ...]`: the element, then the clauses in order.
    Comprehension(Box<Expr>, Vec<Clause>),
    While(Box<Expr>, Block),
    Break,
    Continue,
    Return(Option<Box<Expr>>),
    Fn(Rc<FnDef>),
    Proc(Rc<FnDef>),
    Kernel(Rc<FnDef>),
    Loss(Rc<FnDef>),
    Model(Rc<ModelDef>),
    Use(UseDecl),
}

#[derive(Debug)]
pub enum StrPart {
    Text(String),
    Interp {
        expr: Expr,
        spec: Option<(String, Span)>,
    },
}

/// A clause of a list comprehension.
#[derive(Debug)]
pub enum Clause {
    For(Pattern, Expr),
    If(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Rem,
    Pow,
    MatMul,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Rem => "%",
            BinOp::Pow => "^",
            BinOp::MatMul => "@",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
    pub fn is_comparison(self) -> bool {
        self.elementwise().is_some_and(Binary::is_comparison)
    }

    /// The primitive an elementwise operator applies; `@`, `and` and `or` are not elementwise.
    pub fn elementwise(self) -> Option<Binary> {
        Some(match self {
            BinOp::Add => Binary::Add,
            BinOp::Sub => Binary::Sub,
            BinOp::Mul => Binary::Mul,
            BinOp::Div => Binary::Div,
            BinOp::FloorDiv => Binary::FloorDiv,
            BinOp::Rem => Binary::Rem,
            BinOp::Pow => Binary::Pow,
            BinOp::Eq => Binary::Eq,
            BinOp::Ne => Binary::Ne,
            BinOp::Lt => Binary::Lt,
            BinOp::Le => Binary::Le,
            BinOp::Gt => Binary::Gt,
            BinOp::Ge => Binary::Ge,
            BinOp::MatMul | BinOp::And | BinOp::Or => return None,
        })
    }
}

#[derive(Debug)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Debug)]
pub enum IndexItem {
    At(Expr),
    Slice {
        start: Option<Expr>,
        stop: Option<Expr>,
        step: Option<Expr>,
        span: Span,
    },
}

#[derive(Debug)]
pub struct Block {
    pub stmts: Vec<Expr>,
    pub span: Span,
}

#[derive(Debug)]
pub enum Pattern {
    /// A new variable; its frame slot (or global index) is set by the resolver.
    Bind(Name),
    Tuple(Vec<Pattern>, Span),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Bind(n) => n.ident.span,
            Pattern::Tuple(_, s) => *s,
        }
    }
}

/// The target of an assignment: a variable, then any index or field accesses.
#[derive(Debug)]
pub struct Place {
    pub root: Name,
    pub path: Vec<PlaceStep>,
    pub span: Span,
}

#[derive(Debug)]
pub enum PlaceStep {
    Index(Vec<IndexItem>, Span),
    Field(Ident),
}

#[derive(Debug)]
pub struct Param {
    pub name: Name,
    pub default: Option<Expr>,
}

/// A function body shared by `fn`, closures, `proc`, `kernel`, `loss` and `forward`.
#[derive(Debug)]
pub struct FnDef {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Expr,
    pub span: Span,
    /// Number of local slots a call frame needs (set by the resolver).
    pub frame_size: Cell<u32>,
    /// Where each captured variable comes from in the enclosing frame.
    pub captures: RefCell<Vec<CaptureFrom>>,
    /// Where a declaration (`fn f`, `proc main`, ...) stores itself.
    pub binding: Cell<Slot>,
}

impl FnDef {
    pub fn new(name: Ident, params: Vec<Param>, body: Expr, span: Span) -> Self {
        FnDef {
            name,
            params,
            body,
            span,
            frame_size: Cell::new(0),
            captures: RefCell::new(Vec::new()),
            binding: Cell::new(Slot::Unresolved),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum CaptureFrom {
    Local(u32),
    Capture(u32),
}

#[derive(Debug)]
pub struct ModelDef {
    pub name: Ident,
    pub params: Vec<Param>,
    pub items: Vec<ModelItem>,
    pub span: Span,
    pub binding: Cell<Slot>,
    /// Locals of the construction frame: parameters, `param` and `let` items.
    pub frame_size: Cell<u32>,
}

#[derive(Debug)]
pub enum ModelItem {
    Param {
        name: Name,
        init: Expr,
        lr: Option<Expr>,
    },
    Forward(Rc<FnDef>),
    Let(Pattern, Expr),
}

#[derive(Debug)]
pub struct UseDecl {
    pub target: UseTarget,
    /// The name the module is bound to (the last path segment, the file stem, or `as`).
    pub binding: Name,
    /// Index of the loaded module in the session's linker (set by the resolver).
    pub module: Cell<u32>,
}

#[derive(Debug)]
pub enum UseTarget {
    Std(Vec<Ident>),
    File(String, Span),
}

/// A parsed source file.
#[derive(Debug)]
pub struct Module {
    pub stmts: Vec<Expr>,
    pub span: Span,
    /// Frame size of the module's top-level code (block-scoped locals).
    pub frame_size: Cell<u32>,
}

impl ExprKind {
    /// Whether this is an expression with a value (what the REPL shows), not a
    /// binding, a loop, a jump or a declaration.
    pub fn is_expression(&self) -> bool {
        !matches!(
            self,
            ExprKind::Let(..)
                | ExprKind::Assign(..)
                | ExprKind::For(..)
                | ExprKind::While(..)
                | ExprKind::Break
                | ExprKind::Continue
                | ExprKind::Return(_)
                | ExprKind::Fn(_)
                | ExprKind::Proc(_)
                | ExprKind::Kernel(_)
                | ExprKind::Loss(_)
                | ExprKind::Model(_)
                | ExprKind::Use(_)
        )
    }
}
