//! Chains of elementwise operations over tensors, such as
//! `exp(-(a - b) ^ 2 / s) * c`, run as one loop (`jit::fused`) instead of
//! one tensor per operator.
//!
//! The interpreter evaluates a chain lazily: the operands that are not part
//! of the chain are evaluated in the usual order, and each tensor operation
//! becomes a node with its result's shape, checked as it is met. An operation
//! that would fail (shapes that do not broadcast, a tensor and a string, ...)
//! is performed at once on forced operands by `ops::binary`, which gives the
//! interpreter's own error at the same point; numbers are computed at once as
//! usual. A chain whose result has at least `FUSE_MIN` elements runs as
//! machine code, in parallel chunks; a smaller one runs operator by operator.
//! Either way every element is the interpreter's, bit for bit.
//!
//! A chain computes in Floats: an operation joins one only where `prim`
//! says it computes in Float (its tensors are Float, or a comparison's Bool
//! result feeds Float arithmetic); a chain whose last operation is a
//! comparison gives a Bool tensor. Int arithmetic (`+ - * // % ^` on Int
//! tensors and Ints) makes chains of its own, computed in Int by `IntChain`
//! a block of elements at a time, checked as `prim::Binary::apply_int` is;
//! where an element overflows or divides by zero, the chain runs operator
//! by operator instead, which reports it as the interpreter does.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use rayon::prelude::*;

use super::builtins::{self, tensor::apply_unary};
use super::interp::{Flow, Interp};
use super::ops;
use super::value::{Tensor, Value};
use crate::diag::{Diag, Span};
use crate::jit::fused::{self as native, Step};
use crate::jit::Code;
use crate::prim::{Binary, Dtype, Unary};
use crate::syntax::ast::{Arg, BinOp, Expr, ExprKind, Slot, UnOp};
use crate::tensor;

/// Smallest result (in elements) worth compiling and running as one loop;
/// below it the operators run one by one. Measured in `docs/performance.md`
/// (`cargo bench --bench jit -- chain_size`, which moves it).
pub const FUSE_MIN: usize = 1 << 14;

static FUSE_MIN_NOW: AtomicUsize = AtomicUsize::new(FUSE_MIN);

/// Change the threshold (for measuring it); results are the same either way.
pub fn set_fuse_min(n: usize) {
    FUSE_MIN_NOW.store(n, Ordering::Relaxed);
}

/// Elements per parallel task.
const TASK: usize = 1 << 15;

/// Compiled chains, by their steps (`None`: failed to compile, runs unfused).
#[derive(Default)]
pub struct Cache(HashMap<Vec<Step>, Option<Rc<Code>>>);

impl Cache {
    /// How many chains run as machine code.
    pub fn compiled(&self) -> usize {
        self.0.values().filter(|c| c.is_some()).count()
    }
}

/// A value, or an elementwise operation on tensors not yet performed.
pub enum Lazy {
    Value(Value),
    Chain(Box<Chain>),
}

pub struct Chain {
    shape: Vec<usize>,
    /// Float, or Bool for a comparison (computed as 0 and 1); Int for a
    /// chain of Int arithmetic, computed in Int.
    dtype: Dtype,
    op: Op,
}

enum Op {
    Binary {
        op: BinOp,
        l: Lazy,
        r: Lazy,
        spans: (Span, Span),
        /// The exponent of `x ^ p` when `p` is a literal number.
        literal_power: Option<f64>,
    },
    /// `-x`, or a builtin of an elementwise primitive.
    Unary(Unary, Lazy),
}

impl Lazy {
    /// The shape of a Float tensor, or of a chain computed in Float.
    fn shape(&self) -> Option<&[usize]> {
        match self {
            Lazy::Value(Value::Tensor(t)) => Some(t.shape()),
            Lazy::Value(_) => None,
            Lazy::Chain(c) if c.dtype == Dtype::Int => None,
            Lazy::Chain(c) => Some(&c.shape),
        }
    }

    /// The shape of an Int tensor, or of a chain computed in Int.
    fn int_shape(&self) -> Option<&[usize]> {
        match self {
            Lazy::Value(Value::IntTensor(t)) => Some(t.shape()),
            Lazy::Chain(c) if c.dtype == Dtype::Int => Some(&c.shape),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Lazy::Value(Value::Int(_) | Value::Float(_)))
    }

    fn dtype(&self) -> Option<Dtype> {
        match self {
            Lazy::Value(v) => v.dtype(),
            Lazy::Chain(c) => Some(c.dtype),
        }
    }
}

fn elementwise(op: BinOp) -> bool {
    op.elementwise().is_some()
}

/// For each builtin of the table (by index), the primitive it applies, if any.
static UNARY_BUILTIN: LazyLock<Vec<Option<Unary>>> = LazyLock::new(|| {
    builtins::TABLE
        .iter()
        .map(|b| Unary::by_builtin(b.name))
        .collect()
});

/// `f(x)` for a builtin `f` of an elementwise primitive: the builtin's index and the primitive.
fn unary_call(callee: &Expr, args: &[Arg]) -> Option<(u32, Unary)> {
    let ExprKind::Name(n) = &callee.kind else {
        return None;
    };
    let Slot::Builtin(b) = n.slot.get() else {
        return None;
    };
    match args {
        [a] if a.name.is_none() => UNARY_BUILTIN
            .get(b as usize)
            .copied()
            .flatten()
            .map(|u| (b, u)),
        _ => None,
    }
}

/// Whether `e` is one elementwise operation.
fn link(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Binary(op, ..) => elementwise(*op),
        ExprKind::Unary(op, _) => *op == UnOp::Neg,
        ExprKind::Call(callee, args) => unary_call(callee, args).is_some(),
        _ => false,
    }
}

/// Whether `e` is an elementwise operation on another: the root of a chain.
pub fn is_chain(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Binary(op, a, b) => elementwise(*op) && (link(a) || link(b)),
        ExprKind::Unary(UnOp::Neg, x) => link(x),
        ExprKind::Call(callee, args) => unary_call(callee, args).is_some() && link(&args[0].value),
        _ => false,
    }
}

impl Interp {
    /// Evaluate a chain (`is_chain`).
    pub(super) fn eval_chain(&mut self, e: &Expr) -> Result<Value, Flow> {
        let z = self.lazy(e)?;
        Ok(self.force(z)?)
    }

    fn lazy(&mut self, e: &Expr) -> Result<Lazy, Flow> {
        match &e.kind {
            ExprKind::Binary(op, a, b) if elementwise(*op) => {
                let l = self.lazy(a)?;
                let r = self.lazy(b)?;
                self.lazy_binary(*op, l, r, a, b)
            }
            ExprKind::Unary(UnOp::Neg, x) => match self.lazy(x)? {
                x if !floats(&x) => {
                    let v = self.force(x)?;
                    Ok(Lazy::Value(
                        ops::unary(UnOp::Neg, v).map_err(|d| d.or_at(e.span))?,
                    ))
                }
                x => Ok(chain(
                    x.shape().expect("a tensor").to_vec(),
                    Dtype::Float,
                    Op::Unary(Unary::Neg, x),
                )),
            },
            ExprKind::Call(callee, args) => {
                let Some((b, u)) = unary_call(callee, args) else {
                    return self.eval(e).map(Lazy::Value);
                };
                let arg = &args[0].value;
                match self.lazy(arg)? {
                    x if !floats(&x) => {
                        let v = self.force(x)?;
                        Ok(Lazy::Value(self.call_value(
                            &Value::Builtin(b),
                            vec![(v, arg.span)],
                            vec![],
                            e.span,
                        )?))
                    }
                    x => {
                        self.tick(e.span)?;
                        Ok(chain(
                            x.shape().expect("a tensor").to_vec(),
                            Dtype::Float,
                            Op::Unary(u, x),
                        ))
                    }
                }
            }
            _ => self.eval(e).map(Lazy::Value),
        }
    }

    fn lazy_binary(
        &mut self,
        op: BinOp,
        l: Lazy,
        r: Lazy,
        a: &Expr,
        b: &Expr,
    ) -> Result<Lazy, Flow> {
        // The result's shape, when the operation is elementwise on tensors and succeeds.
        let shape = result_shape((l.shape(), l.is_number()), (r.shape(), r.is_number()));
        let prim = op.elementwise().expect("an elementwise operator");
        // Int arithmetic on Int tensors (and Ints) chains in Int.
        let int = |z: &Lazy| matches!(z, Lazy::Value(Value::Int(_)));
        let int_shape = (prim.result_dtype(Dtype::Int, Dtype::Int) == Dtype::Int)
            .then(|| result_shape((l.int_shape(), int(&l)), (r.int_shape(), int(&r))))
            .flatten();
        if let Some(shape) = int_shape {
            let spans = (a.span, b.span);
            let literal_power = None;
            return Ok(chain(
                shape,
                Dtype::Int,
                Op::Binary {
                    op,
                    l,
                    r,
                    spans,
                    literal_power,
                },
            ));
        }
        // Otherwise only operations that compute in Float join a chain.
        let dtype = match (l.dtype(), r.dtype()) {
            (Some(a), Some(b)) if prim.compute_dtype(a, b) == Dtype::Float => {
                Some(prim.result_dtype(a, b))
            }
            _ => None,
        };
        if let (Some(shape), Some(dtype)) = (shape, dtype) {
            let literal_power = match (&r, &b.kind) {
                (Lazy::Value(p), ExprKind::Int(_) | ExprKind::Float(_)) if op == BinOp::Pow => {
                    p.as_f64()
                }
                _ => None,
            };
            let spans = (a.span, b.span);
            return Ok(chain(
                shape,
                dtype,
                Op::Binary {
                    op,
                    l,
                    r,
                    spans,
                    literal_power,
                },
            ));
        }
        // Numbers, or an operation that fails or is not elementwise: as `eval_binary`.
        let (l, r) = (self.force(l)?, self.force(r)?);
        if let Some(v) = ops::scalar_fast(op, &l, &r) {
            return Ok(Lazy::Value(v));
        }
        Ok(Lazy::Value(ops::binary(op, l, r, a.span, b.span)?))
    }

    /// The value of `z`, computing its chain.
    fn force(&mut self, z: Lazy) -> Result<Value, Diag> {
        let c = match z {
            Lazy::Value(v) => return Ok(v),
            Lazy::Chain(c) => c,
        };
        let fuse = c.shape.iter().product::<usize>() >= FUSE_MIN_NOW.load(Ordering::Relaxed);
        if fuse && c.dtype == Dtype::Int {
            if let Some(t) = IntChain::new(&c).run() {
                return Ok(Value::from(t));
            }
        } else if fuse {
            if let Some(t) = self.run_native(&c) {
                return Ok(match c.dtype {
                    Dtype::Bool => Value::from(t.mapv(|x| x != 0.0)),
                    _ => Value::tensor(t),
                });
            }
        }
        match c.op {
            Op::Binary {
                op, l, r, spans, ..
            } => {
                let (l, r) = (self.force(l)?, self.force(r)?);
                ops::binary(op, l, r, spans.0, spans.1)
            }
            Op::Unary(u, x) => match self.force(x)? {
                Value::Tensor(t) => Ok(Value::tensor(apply_unary(u, &t))),
                _ => unreachable!("a chain is over tensors"),
            },
        }
    }

    /// Run a chain as one compiled loop (`None` if it does not compile).
    fn run_native(&mut self, c: &Chain) -> Option<Tensor> {
        let mut steps = Vec::new();
        let mut inputs = Vec::new();
        flatten(c, &mut steps, &mut inputs);
        // The layouts point into `inputs` and `_copies`, alive until the run ends.
        let (rows, layouts, _copies) = layouts(&c.shape, &inputs);
        let mut layout = layouts.iter();
        for s in &mut steps {
            if let Step::Input { repeated } = s {
                *repeated = layout.next().expect("a layout per input").repeated;
            }
        }
        let code = self
            .fused
            .0
            .entry(steps)
            .or_insert_with_key(|steps| native::compile(steps).ok().map(Rc::new))
            .clone()?;
        Some(run(&code, &c.shape, &rows, &layouts))
    }
}

/// The shape of an elementwise operation's result from each operand's
/// (shape if it is a tensor of the chain's kind, whether it is a number): a
/// tensor with a tensor or a number, shapes that broadcast, within the
/// allocation limit.
fn result_shape(l: (Option<&[usize]>, bool), r: (Option<&[usize]>, bool)) -> Option<Vec<usize>> {
    match (l, r) {
        ((Some(s), _), (Some(t), _)) if s == t => Some(s.to_vec()),
        ((Some(s), _), (Some(t), _)) => {
            tensor::broadcast_shape(s, t).filter(|shape| tensor::check_elements(shape).is_ok())
        }
        ((Some(s), _), (None, true)) | ((None, true), (Some(s), _)) => Some(s.to_vec()),
        _ => None,
    }
}

fn chain(shape: Vec<usize>, dtype: Dtype, op: Op) -> Lazy {
    Lazy::Chain(Box::new(Chain { shape, dtype, op }))
}

/// Whether a unary primitive of `x` joins a chain: a Float tensor or chain.
fn floats(x: &Lazy) -> bool {
    x.shape().is_some() && x.dtype() == Some(Dtype::Float)
}

/// An input of a compiled chain.
enum Input<'a> {
    Number(f64),
    Tensor(&'a Tensor),
}

/// The chain's steps in postfix order, and its inputs in the order of their steps.
fn flatten<'a>(c: &'a Chain, steps: &mut Vec<Step>, inputs: &mut Vec<Input<'a>>) {
    let mut operand = |z: &'a Lazy, steps: &mut Vec<Step>| match z {
        Lazy::Chain(c) => flatten(c, steps, inputs),
        Lazy::Value(Value::Tensor(t)) => {
            inputs.push(Input::Tensor(t));
            steps.push(Step::Input { repeated: false });
        }
        Lazy::Value(v) => {
            inputs.push(Input::Number(v.as_f64().expect("a number")));
            steps.push(Step::Input { repeated: true });
        }
    };
    match &c.op {
        Op::Binary {
            op,
            l,
            r,
            literal_power,
            ..
        } => {
            operand(l, steps);
            match literal_power {
                Some(p) => steps.push(Step::PowConst(p.to_bits())),
                None => {
                    operand(r, steps);
                    steps.push(Step::Binary(op.elementwise().expect("elementwise")));
                }
            }
        }
        Op::Unary(u, x) => {
            operand(x, steps);
            steps.push(Step::Unary(*u));
        }
    }
}

/// How one input is read along a row of the result.
struct Layout {
    /// Its first element, as an address (so that tasks can share it).
    first: usize,
    /// Its strides (in elements) over the axes of the result but the last.
    outer: Vec<isize>,
    /// One element for the whole row, or consecutive ones.
    repeated: bool,
}

/// How each input is read, with the copies made for the purpose. The result
/// is written row by row along its last axis, unless every input is a
/// number, one element, or of the result's shape in the standard layout:
/// then it is one row. A tensor row that is neither one repeated element nor
/// consecutive is read from a copy in the standard layout.
fn layouts(shape: &[usize], inputs: &[Input]) -> (Vec<usize>, Vec<Layout>, Vec<Option<Tensor>>) {
    let one_row = inputs.iter().all(|i| match i {
        Input::Number(_) => true,
        Input::Tensor(t) => t.len() == 1 || (t.shape() == shape && t.is_standard_layout()),
    });
    if one_row {
        let layouts = inputs
            .iter()
            .map(|i| match i {
                Input::Number(x) => Layout {
                    first: x as *const f64 as usize,
                    outer: vec![],
                    repeated: true,
                },
                Input::Tensor(t) => Layout {
                    first: t.as_ptr() as usize,
                    outer: vec![],
                    repeated: t.len() == 1,
                },
            })
            .collect();
        return (vec![shape.iter().product()], layouts, Vec::new());
    }
    let cols = *shape.last().expect("a row");
    let copies: Vec<Option<Tensor>> = inputs
        .iter()
        .map(|i| match i {
            Input::Tensor(t) => {
                let view = t.broadcast(shape).expect("checked");
                let consecutive = matches!(view.strides().last(), Some(0 | 1));
                (cols > 1 && !consecutive).then(|| t.as_standard_layout().into_owned().into())
            }
            Input::Number(_) => None,
        })
        .collect();
    let layouts = inputs
        .iter()
        .zip(&copies)
        .map(|(i, copy)| match i {
            Input::Number(x) => Layout {
                first: x as *const f64 as usize,
                outer: vec![0; shape.len() - 1],
                repeated: true,
            },
            Input::Tensor(t) => {
                let view = copy
                    .as_ref()
                    .unwrap_or(t)
                    .broadcast(shape)
                    .expect("checked");
                let (outer, inner) = view.strides().split_at(shape.len() - 1);
                Layout {
                    first: view.as_ptr() as usize,
                    outer: outer.to_vec(),
                    repeated: cols == 1 || inner[0] == 0,
                }
            }
        })
        .collect();
    (shape.to_vec(), layouts, copies)
}

/// Run `code` over a result of `rows` shape (its last axis a row), reading
/// the inputs as `layouts` say. Tasks of about `TASK` elements run in
/// parallel; every element is computed the same way whatever the split.
fn run(code: &Code, shape: &[usize], rows: &[usize], layouts: &[Layout]) -> Tensor {
    let n: usize = rows.iter().product();
    let cols = *rows.last().expect("a row");
    let outer = &rows[..rows.len() - 1];
    // Row `r` from column `from`, into `out`.
    let at = |r: usize, from: usize, out: &mut [f64]| {
        let pointers: Vec<*const f64> = layouts
            .iter()
            .map(|l| {
                let (mut offset, mut rest) = (0isize, r);
                for (d, &len) in outer.iter().enumerate().rev() {
                    offset += (rest % len) as isize * l.outer[d];
                    rest /= len;
                }
                if !l.repeated {
                    offset += from as isize;
                }
                (l.first as *const f64).wrapping_offset(offset)
            })
            .collect();
        // SAFETY: the code was compiled for these inputs, repeated or not as
        // laid out; each consecutive one has the row's elements from `from`.
        unsafe { native::run(code, &pointers, out) }
    };
    let mut out = vec![0.0; n];
    if n <= TASK {
        for (r, row) in out.chunks_mut(cols).enumerate() {
            at(r, 0, row);
        }
    } else if cols >= TASK {
        out.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
            row.par_chunks_mut(TASK)
                .enumerate()
                .for_each(|(c, piece)| at(r, c * TASK, piece))
        });
    } else {
        let per_task = TASK / cols;
        out.par_chunks_mut(per_task * cols)
            .enumerate()
            .for_each(|(t, piece)| {
                for (i, row) in piece.chunks_mut(cols).enumerate() {
                    at(t * per_task + i, 0, row);
                }
            });
    }
    Tensor::from_shape_vec(shape, out).expect("n elements")
}

/// A chain of Int arithmetic, its operations in postfix order (`None`: the
/// next input) and its inputs, each a number or laid out in the result's shape.
struct IntChain<'a> {
    shape: Vec<usize>,
    steps: Vec<Option<Binary>>,
    inputs: Vec<IntInput<'a>>,
}

enum IntInput<'a> {
    Number(i64),
    Tensor(ndarray::CowArray<'a, i64, ndarray::IxDyn>),
}

/// An operand of one operation over a block: consecutive elements or one number.
#[derive(Clone, Copy)]
enum Operand<'a> {
    Elements(&'a [i64]),
    Number(i64),
}

/// Elements per block: the intermediate results of a block stay in the L1 cache.
const INT_BLOCK: usize = 1024;

impl<'a> IntChain<'a> {
    fn new(c: &'a Chain) -> IntChain<'a> {
        let mut chain = IntChain {
            shape: c.shape.clone(),
            steps: Vec::new(),
            inputs: Vec::new(),
        };
        chain.flatten(c);
        chain
    }

    fn flatten(&mut self, c: &'a Chain) {
        let Op::Binary { op, l, r, .. } = &c.op else {
            unreachable!("Int chains are of binary operations")
        };
        for z in [l, r] {
            match z {
                Lazy::Chain(c) => self.flatten(c),
                Lazy::Value(Value::Int(i)) => {
                    self.inputs.push(IntInput::Number(*i));
                    self.steps.push(None);
                }
                Lazy::Value(Value::IntTensor(t)) => {
                    let input = if t.shape() == self.shape.as_slice() && t.is_standard_layout() {
                        ndarray::CowArray::from(t.view())
                    } else {
                        let view = t.broadcast(self.shape.as_slice()).expect("checked");
                        ndarray::CowArray::from(view.as_standard_layout().into_owned())
                    };
                    self.inputs.push(IntInput::Tensor(input));
                    self.steps.push(None);
                }
                _ => unreachable!("Int chains are over Ints"),
            }
        }
        self.steps.push(op.elementwise());
    }

    /// The result, or `None` where an element overflows or divides by zero.
    /// Tasks of `TASK` elements run in parallel; each element is exact.
    fn run(&self) -> Option<ndarray::ArrayD<i64>> {
        use std::mem::MaybeUninit;
        let n: usize = self.shape.iter().product();
        // Every element is written once: no need to zero the result first.
        let mut out: Vec<MaybeUninit<i64>> = Vec::with_capacity(n);
        // SAFETY: `MaybeUninit` needs no initialisation.
        unsafe { out.set_len(n) };
        let ok = out.par_chunks_mut(TASK).enumerate().all(|(t, piece)| {
            let operations = self.steps.iter().filter(|s| s.is_some()).count();
            let mut buffers = vec![vec![0i64; INT_BLOCK]; operations];
            piece
                .chunks_mut(INT_BLOCK)
                .enumerate()
                .all(|(b, block)| self.block(t * TASK + b * INT_BLOCK, block, &mut buffers))
        });
        if !ok {
            return None;
        }
        let mut out = std::mem::ManuallyDrop::new(out);
        // SAFETY: every element was written (each block returned true), and
        // `MaybeUninit<i64>` has the layout of `i64`.
        let out = unsafe { Vec::from_raw_parts(out.as_mut_ptr() as *mut i64, n, out.capacity()) };
        Some(ndarray::ArrayD::from_shape_vec(self.shape.as_slice(), out).expect("n elements"))
    }

    /// Elements `from..from + out.len()` into `out`; false on an Int error.
    fn block(
        &self,
        from: usize,
        out: &mut [std::mem::MaybeUninit<i64>],
        buffers: &mut [Vec<i64>],
    ) -> bool {
        let len = out.len();
        // Entries of the stack: Ok(input) or Err(buffer).
        let mut stack: Vec<Result<usize, usize>> = Vec::new();
        let mut inputs = 0..;
        let mut free: Vec<usize> = (0..buffers.len()).rev().collect();
        for step in &self.steps {
            let Some(op) = step else {
                stack.push(Ok(inputs.next().expect("an input")));
                continue;
            };
            let (y, x) = (
                stack.pop().expect("two operands"),
                stack.pop().expect("two operands"),
            );
            let at = free.pop().expect("a buffer per step");
            let mut result = std::mem::take(&mut buffers[at]);
            let operand = |e: Result<usize, usize>| match e {
                Ok(i) => match &self.inputs[i] {
                    IntInput::Number(v) => Operand::Number(*v),
                    IntInput::Tensor(t) => {
                        let all = t.as_slice().expect("standard layout");
                        Operand::Elements(&all[from..from + len])
                    }
                },
                Err(b) => Operand::Elements(&buffers[b][..len]),
            };
            let ok = apply_int_widest(*op, operand(x), operand(y), &mut result[..len]);
            buffers[at] = result;
            if !ok {
                return false;
            }
            free.extend([x, y].into_iter().filter_map(Result::err));
            stack.push(Err(at));
        }
        match stack.pop() {
            Some(Err(b)) => {
                for (o, &v) in out.iter_mut().zip(&buffers[b][..len]) {
                    o.write(v);
                }
            }
            _ => unreachable!("a chain ends in an operation"),
        }
        true
    }
}

/// `apply_int` compiled for the widest vectors this CPU has: the build
/// targets plain x86-64 (SSE2, two Ints per instruction), AVX-512 multiplies
/// eight at once. Every version computes the same exact Ints.
fn apply_int_widest(op: Binary, x: Operand, y: Operand, out: &mut [i64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,avx512f,avx512dq")]
        fn avx512(op: Binary, x: Operand, y: Operand, out: &mut [i64]) -> bool {
            apply_int(op, x, y, out)
        }
        #[target_feature(enable = "avx2")]
        fn avx2(op: Binary, x: Operand, y: Operand, out: &mut [i64]) -> bool {
            apply_int(op, x, y, out)
        }
        static LEVEL: LazyLock<u8> = LazyLock::new(|| {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") {
                2
            } else {
                u8::from(is_x86_feature_detected!("avx2"))
            }
        });
        match *LEVEL {
            // SAFETY: the CPU has the features each version is compiled for.
            2 => return unsafe { avx512(op, x, y, out) },
            1 => return unsafe { avx2(op, x, y, out) },
            _ => {}
        }
    }
    apply_int(op, x, y, out)
}

/// `out = x ⊕ y` elementwise, as `Binary::apply_int`; false if any element
/// fails. Sums and differences find overflow from the signs, and products
/// of operands that fit in 32 bits cannot overflow, so these loops vectorise;
/// a block with a larger factor is redone with exact checks.
#[inline(always)]
fn apply_int(op: Binary, x: Operand, y: Operand, out: &mut [i64]) -> bool {
    // Nonzero unless `a` is in -2³¹..2³¹.
    let wide = |a: i64| ((a as u64).wrapping_add(1 << 31) >> 32) as i64;
    match op {
        Binary::Add => {
            let flags = zip_int(x, y, out, |a, b| {
                let r = a.wrapping_add(b);
                (r, (a ^ r) & (b ^ r))
            });
            flags >= 0
        }
        Binary::Sub => {
            let flags = zip_int(x, y, out, |a, b| {
                let r = a.wrapping_sub(b);
                (r, (a ^ b) & (a ^ r))
            });
            flags >= 0
        }
        Binary::Mul => {
            zip_int(x, y, out, |a, b| (a.wrapping_mul(b), wide(a) | wide(b))) == 0
                || zip_int(x, y, out, |a, b| {
                    let (r, overflow) = a.overflowing_mul(b);
                    (r, -(overflow as i64))
                }) >= 0
        }
        _ => {
            let flags = zip_int(x, y, out, |a, b| match op.apply_int(a, b) {
                Ok(v) => (v, 0),
                Err(_) => (0, -1),
            });
            flags >= 0
        }
    }
}

/// `f` over the elements; the bitwise or of the flags it returns with each.
#[inline(always)]
fn zip_int(x: Operand, y: Operand, out: &mut [i64], f: impl Fn(i64, i64) -> (i64, i64)) -> i64 {
    let mut flags = 0;
    match (x, y) {
        (Operand::Elements(a), Operand::Elements(b)) => {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                let (v, e) = f(a, b);
                *o = v;
                flags |= e;
            }
        }
        (Operand::Elements(a), Operand::Number(b)) => {
            for (o, &a) in out.iter_mut().zip(a) {
                let (v, e) = f(a, b);
                *o = v;
                flags |= e;
            }
        }
        (Operand::Number(a), Operand::Elements(b)) => {
            for (o, &b) in out.iter_mut().zip(b) {
                let (v, e) = f(a, b);
                *o = v;
                flags |= e;
            }
        }
        (Operand::Number(a), Operand::Number(b)) => {
            let (v, e) = f(a, b);
            out.fill(v);
            flags = e;
        }
    }
    flags
}
