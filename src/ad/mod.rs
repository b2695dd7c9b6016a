//! Reverse-mode automatic differentiation on tensors: a tape of operations, each
//! with its pullback (vector–Jacobian product), run once backwards. It knows
//! nothing of values or syntax: `eval::traced` computes each operation with the
//! interpreter's own code and records it here while a gradient is being taken.
//! Scalars are 0-d tensors.

mod batch;

use std::rc::Rc;

use ndarray::{Axis, Data, IxDyn};

use crate::prim::{self, Reduce, Unary};
use crate::tensor::{self, Floats, Tensor};

pub use batch::Batch;

/// A gradient: owned, in standard layout (values on the tape are shared `Tensor`s).
pub type Grad = ndarray::ArrayD<f64>;

/// A node of the tape.
pub type Var = usize;

/// How a node was computed from earlier nodes.
#[derive(Clone, Debug)]
pub enum Op {
    /// An input: the gradient is wanted.
    Input,
    /// A value that does not depend on any input.
    Constant,
    Add(Var, Var),
    Sub(Var, Var),
    Mul(Var, Var),
    Div(Var, Var),
    Pow(Var, Var),
    Neg(Var),
    /// NumPy's `@` for 1-d and 2-d operands.
    MatMul(Var, Var),
    Transpose(Var),
    /// An elementwise primitive with a derivative.
    Map(Unary, Var),
    /// A reduction over all elements (`None`) or one axis.
    Reduce(Reduce, Var, Option<usize>),
    /// The same elements in another shape.
    Reshape(Var),
    /// Elements picked by flat (row-major) position, in the output's order:
    /// indexing and slicing of every kind.
    Gather(Var, Rc<Vec<usize>>),
    /// Elements of several inputs moved into place (`concat`, `hstack`,
    /// `vstack`, `diag`): for each output element, 0 for none, or 1 + its
    /// position in the inputs' elements laid end to end.
    Rearrange(Vec<Var>, Rc<Vec<usize>>),
    /// Elementwise choice, with broadcasting: `a` where the mask is 1, else `b`
    /// (`max`, `min`, `clip`, `where`).
    Select(Var, Var, Rc<Tensor>),
    /// mean((p - y)²) over all elements.
    Mse(Var, Var),
    Outer(Var, Var),
    Trace(Var),
    /// x = A⁻¹ b.
    Solve(Var, Var),
    /// `target` with the elements at the given flat positions replaced by
    /// `value` (broadcast to the positions' shape): `x[i, :] = v`.
    Assign(Var, Var, Rc<Tensor>),
    /// Softmax cross-entropy of logits (n × c) against constant target rows.
    Xent(Var, Rc<Tensor>),
    /// Hinge loss of predictions against constant ±1 labels.
    Hinge(Var, Rc<Tensor>),
    /// An operation whose pullback is defined above this layer (a kernel's
    /// Gram matrix, `kernel::gram_vjp`).
    Custom(Vec<Var>, Rc<dyn Pullback>),
}

/// The vector–Jacobian product of an operation recorded as `Op::Custom`.
pub trait Pullback: std::fmt::Debug {
    /// One gradient per parent, shaped like it, from `g` (shaped like the
    /// output); only the parents marked in `wanted` are needed (`None` is zero).
    fn pull(&self, g: &Grad, wanted: &[bool]) -> Vec<Option<Grad>>;
}

struct Node {
    op: Op,
    value: Rc<Tensor>,
    /// Whether an input flows into this node.
    live: bool,
}

#[derive(Default)]
pub struct Tape {
    nodes: Vec<Node>,
}

impl Tape {
    pub fn input(&mut self, value: Rc<Tensor>) -> Var {
        self.push(Op::Input, value)
    }

    pub fn constant(&mut self, value: Rc<Tensor>) -> Var {
        self.push(Op::Constant, value)
    }

    /// Records `value`, computed by `op` from earlier nodes.
    pub fn push(&mut self, op: Op, value: Rc<Tensor>) -> Var {
        let live = matches!(op, Op::Input) || parents(&op).iter().any(|&p| self.nodes[p].live);
        self.nodes.push(Node { op, value, live });
        self.nodes.len() - 1
    }

    pub fn value(&self, v: Var) -> &Rc<Tensor> {
        &self.nodes[v].value
    }

    /// The gradient of the scalar `out` with respect to every node (`None`
    /// where no path leads from the node to `out`).
    pub fn gradients(&self, out: Var) -> Vec<Option<Grad>> {
        self.pullback(out, Grad::from_elem(self.nodes[out].value.raw_dim(), 1.0))
    }

    /// The vector–Jacobian product `seed`ᵀ ∂out/∂node for every node; `seed`
    /// has the shape of `out`.
    pub fn pullback(&self, out: Var, seed: Grad) -> Vec<Option<Grad>> {
        let mut grads: Vec<Option<Grad>> = vec![None; out + 1];
        grads[out] = Some(seed);
        for v in (0..=out).rev() {
            let node = &self.nodes[v];
            if !node.live || matches!(node.op, Op::Input) {
                continue;
            }
            let Some(g) = grads[v].take() else { continue };
            self.pull(node, g, &mut |p, contribution| {
                if !self.nodes[p].live {
                    return;
                }
                match &mut grads[p] {
                    Some(acc) => *acc += &contribution,
                    slot => *slot = Some(contribution),
                }
            });
        }
        grads
    }

    /// Hands each parent of `node` its share of the gradient `g` of `node`.
    fn pull(&self, node: &Node, g: Grad, give: &mut dyn FnMut(Var, Grad)) {
        let val = |v: Var| &*self.nodes[v].value;
        let live = |v: Var| self.nodes[v].live;
        match node.op {
            Op::Input | Op::Constant => {}
            Op::Add(a, b) => {
                if live(b) {
                    give(b, unbroadcast(&g, val(b).shape()));
                }
                if live(a) {
                    give(a, unbroadcast_owned(g, val(a).shape()));
                }
            }
            Op::Sub(a, b) => {
                if live(b) {
                    give(b, unbroadcast_owned(g.mapv(|x| -x), val(b).shape()));
                }
                if live(a) {
                    give(a, unbroadcast_owned(g, val(a).shape()));
                }
            }
            Op::Mul(a, b) => {
                if live(a) {
                    give(a, unbroadcast_owned(&g * val(b), val(a).shape()));
                }
                if live(b) {
                    give(b, unbroadcast_owned(&g * val(a), val(b).shape()));
                }
            }
            Op::Div(a, b) => {
                let gb = &g / val(b);
                if live(b) {
                    let q = &gb * &*node.value;
                    give(b, unbroadcast(&q.mapv(|x| -x), val(b).shape()));
                }
                if live(a) {
                    give(a, unbroadcast(&gb, val(a).shape()));
                }
            }
            Op::Pow(a, b) => {
                if live(a) {
                    let mut da = tensor::zip_with(val(a), val(b), pow_derivative)
                        .expect("shapes broadcast as in the forward pass");
                    da = &da * &g;
                    give(a, unbroadcast(&da, val(a).shape()));
                }
                if live(b) {
                    let ln = val(a).mapv(prim::math::log);
                    let db = &(&*node.value * &ln) * &g;
                    give(b, unbroadcast(&db, val(b).shape()));
                }
            }
            Op::Neg(a) => give(a, g.mapv(|x| -x)),
            Op::MatMul(a, b) => {
                let (x, y) = (val(a), val(b));
                if live(a) {
                    give(a, matmul_pull_left(&g, x, y));
                }
                if live(b) {
                    give(b, matmul_pull_right(&g, x, y));
                }
            }
            Op::Transpose(a) => give(a, g.t().to_owned()),
            Op::Map(f, a) => {
                let d = f
                    .derivative()
                    .expect("only differentiable primitives are recorded");
                let mut g = g;
                // Monomorphised per derivative, so that each loop is tight.
                macro_rules! each {
                    ($($d:ident),*) => {
                        match d {
                            $(prim::Derivative::$d => scale_by(&mut g, val(a), &node.value, |x, y| {
                                prim::Derivative::$d.eval(x, y)
                            }),)*
                        }
                    };
                }
                each!(
                    MinusOne,
                    Value,
                    Reciprocal,
                    HalfOverValue,
                    OneMinusValueSquared,
                    ValueTimesOneMinusValue,
                    Step,
                    Sign,
                    Cos,
                    MinusSin
                );
                give(a, g);
            }
            Op::Reduce(r, a, axis) => give(a, self.pull_reduce(r, val(a), &node.value, &g, axis)),
            Op::Reshape(a) => {
                let g = g.as_standard_layout().to_owned();
                give(
                    a,
                    g.into_shape_with_order(val(a).raw_dim())
                        .expect("same size"),
                )
            }
            Op::Rearrange(ref parts, ref sources) => {
                let mut outs: Vec<Grad> = parts
                    .iter()
                    .map(|&p| Grad::zeros(val(p).raw_dim()))
                    .collect();
                let offsets: Vec<usize> = parts
                    .iter()
                    .scan(0, |at, &p| {
                        let start = *at;
                        *at += val(p).len();
                        Some(start)
                    })
                    .collect();
                for (&s, &x) in sources.iter().zip(g.as_standard_layout().iter()) {
                    if s == 0 {
                        continue;
                    }
                    let k = offsets.partition_point(|&o| o < s) - 1;
                    let flat = outs[k].as_slice_mut().expect("a new tensor is contiguous");
                    flat[s - 1 - offsets[k]] += x;
                }
                for (&p, out) in parts.iter().zip(outs) {
                    if live(p) {
                        give(p, out);
                    }
                }
            }
            Op::Select(a, b, ref mask) => {
                let ga = &g * &**mask;
                if live(b) {
                    give(b, unbroadcast(&(&g - &ga), val(b).shape()));
                }
                if live(a) {
                    give(a, unbroadcast(&ga, val(a).shape()));
                }
            }
            Op::Mse(p, y) => {
                let n = val(p).len() as f64;
                let d = (val(p) - val(y)) * (2.0 / n) * &g;
                if live(y) {
                    give(y, d.mapv(|x| -x));
                }
                if live(p) {
                    give(p, d);
                }
            }
            Op::Outer(a, b) => {
                if live(a) {
                    give(a, product(&g, val(b)));
                }
                if live(b) {
                    give(b, product(&transposed(&g), val(a)));
                }
            }
            Op::Trace(a) => {
                let n = val(a).shape()[0];
                let scale = g.iter().next().copied().unwrap_or(0.0);
                let eye = ndarray::Array2::<f64>::eye(n) * scale;
                give(a, eye.into_dyn())
            }
            Op::Solve(a, b) => {
                // x = A⁻¹ b: gb = A⁻ᵀ g, gA = -gb xᵀ.
                let at = transposed(val(a));
                let as2 = |t: &Grad| {
                    let t = if t.ndim() == 1 {
                        t.clone().insert_axis(Axis(1))
                    } else {
                        t.clone()
                    };
                    t.into_dimensionality::<ndarray::Ix2>().expect("a matrix")
                };
                // Aᵀ is singular only when A is, which the forward solve rules
                // out; at the edge of rounding the gradient is undefined: NaN.
                let gb = crate::linalg::solve(as2(&at).view(), as2(&g).view())
                    .unwrap_or_else(|_| ndarray::Array2::from_elem(as2(&g).raw_dim(), f64::NAN))
                    .into_dyn();
                let gb = if g.ndim() == 1 {
                    gb.index_axis_move(Axis(1), 0)
                } else {
                    gb
                };
                if live(a) {
                    let x = &*node.value;
                    let ga = if x.ndim() == 1 {
                        outer(&gb, x)
                    } else {
                        product(&gb, &transposed(x))
                    };
                    give(a, ga.mapv(|v| -v));
                }
                if live(b) {
                    give(b, gb);
                }
            }
            Op::Assign(target, value, ref positions) => {
                let g = g.as_standard_layout().to_owned();
                let flat = g.as_slice().expect("standard layout");
                if live(value) {
                    let part = positions.mapv(|p| flat[p as usize]);
                    give(value, unbroadcast(&part, val(value).shape()));
                }
                if live(target) {
                    let mut kept = g.clone();
                    let out = kept.as_slice_mut().expect("standard layout");
                    for &p in positions.iter() {
                        out[p as usize] = 0.0;
                    }
                    give(target, kept);
                }
            }
            Op::Xent(z, ref targets) => {
                // (softmax(z) - targets) / n, row by row.
                let logits = val(z);
                let n = logits.shape()[0] as f64;
                let scale = g.iter().next().copied().unwrap_or(0.0) / n;
                let mut d = logits.to_owned();
                for mut row in d.axis_iter_mut(Axis(0)) {
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    row.mapv_inplace(|x| prim::math::exp(x - m));
                    let total: f64 = row.sum();
                    row.mapv_inplace(|x| x / total);
                }
                give(z, (d - &**targets) * scale)
            }
            Op::Hinge(p, ref y) => {
                let n = val(p).len() as f64;
                let scale = g.iter().next().copied().unwrap_or(0.0) / n;
                let d =
                    tensor::zip_with(
                        val(p),
                        y,
                        |p, y| if 1.0 - y * p > 0.0 { -y * scale } else { 0.0 },
                    )
                    .expect("same shape");
                give(p, d)
            }
            Op::Custom(ref parents, ref f) => {
                let wanted: Vec<bool> = parents.iter().map(|&p| live(p)).collect();
                for (&p, grad) in parents.iter().zip(f.pull(&g, &wanted)) {
                    if let Some(grad) = grad {
                        give(p, grad);
                    }
                }
            }
            Op::Gather(a, ref positions) => {
                let mut out = Grad::zeros(val(a).raw_dim());
                let flat = out.as_slice_mut().expect("a new tensor is contiguous");
                for (&p, &x) in positions.iter().zip(g.as_standard_layout().iter()) {
                    flat[p] += x;
                }
                give(a, out)
            }
        }
    }
}

impl Tape {
    /// The gradient of a reduction `out = r(x)` along `axis`, from `g` (shaped like `out`).
    fn pull_reduce(
        &self,
        r: Reduce,
        x: &Tensor,
        out: &Tensor,
        g: &Grad,
        axis: Option<usize>,
    ) -> Grad {
        let n = match axis {
            Some(k) => x.shape()[k],
            None => x.len(),
        } as f64;
        let each = |g: ndarray::ArrayViewD<f64>| spread(&g, x.shape(), axis, 1.0);
        match r {
            Reduce::Sum => each(g.view()),
            Reduce::Mean => spread(g, x.shape(), axis, 1.0 / n),
            Reduce::Max | Reduce::Min => {
                // Split evenly between the elements that attain it, as JAX does.
                let hit = tensor::zip_with(x, &each(out.view()), |x, m| (x == m) as u8 as f64)
                    .expect("same shape");
                let ties = spread(
                    &tensor::reduce(&hit, axis, prim::math::pairwise_sum),
                    x.shape(),
                    axis,
                    1.0,
                );
                hit / ties * each(g.view())
            }
            Reduce::Norm => x * &each((g / out).view()),
            Reduce::Var | Reduce::Std => {
                let mean = tensor::reduce(x, axis, prim::math::mean);
                let centred = x - &each(mean.view());
                // d var = 2 (x - m) / n; d std = d var / (2 std).
                let scale = match r {
                    Reduce::Std => out.mapv(|s| 1.0 / s),
                    _ => out.mapv(|_| 2.0),
                };
                centred * spread(&(g * &scale), x.shape(), axis, 1.0 / n)
            }
            Reduce::LogSumExp => {
                let weights = (x - &each(out.view())).mapv(prim::math::exp);
                weights * each(g.view())
            }
        }
    }
}

fn parents(op: &Op) -> Vec<Var> {
    match *op {
        Op::Input | Op::Constant => vec![],
        Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::Pow(a, b) => {
            vec![a, b]
        }
        Op::MatMul(a, b)
        | Op::Select(a, b, _)
        | Op::Mse(a, b)
        | Op::Outer(a, b)
        | Op::Solve(a, b)
        | Op::Assign(a, b, _) => vec![a, b],
        Op::Rearrange(ref parts, _) | Op::Custom(ref parts, _) => parts.clone(),
        Op::Trace(a) => vec![a],
        Op::Neg(a)
        | Op::Transpose(a)
        | Op::Map(_, a)
        | Op::Reduce(_, a, _)
        | Op::Reshape(a)
        | Op::Gather(a, _)
        | Op::Xent(a, _)
        | Op::Hinge(a, _) => vec![a],
    }
}

/// d/da a^b = b a^(b-1), written so that a = 0 gives 0 for b > 1.
fn pow_derivative(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        b * prim::math::pow(a, b - 1.0)
    }
}

/// `g *= d(x, y)` elementwise; in parallel pieces when all three are large
/// and contiguous (each element is the same whatever the split).
#[inline(always)]
fn scale_by(g: &mut Grad, x: &Tensor, y: &Tensor, d: impl Fn(f64, f64) -> f64 + Sync) {
    use rayon::prelude::*;
    const PIECE: usize = 1 << 15;
    let same = g.shape() == x.shape() && x.shape() == y.shape();
    if let (true, Some(gs), Some(xs), Some(ys)) = (
        same && g.len() >= 4 * PIECE,
        g.as_slice_mut(),
        x.as_slice(),
        y.as_slice(),
    ) {
        gs.par_chunks_mut(PIECE)
            .zip(xs.par_chunks(PIECE).zip(ys.par_chunks(PIECE)))
            .for_each(|(g, (x, y))| {
                for ((g, &x), &y) in g.iter_mut().zip(x).zip(y) {
                    *g *= d(x, y);
                }
            });
        return;
    }
    ndarray::Zip::from(g)
        .and(x)
        .and(y)
        .for_each(|g, &x, &y| *g *= d(x, y));
}

/// Sums `g` down to `shape`, undoing NumPy broadcasting.
fn unbroadcast<S: Data<Elem = f64>>(g: &Floats<S>, shape: &[usize]) -> Grad {
    let mut out: std::borrow::Cow<Grad> = std::borrow::Cow::Owned(g.to_owned());
    while out.ndim() > shape.len() {
        out = std::borrow::Cow::Owned(out.sum_axis(Axis(0)));
    }
    for (k, &n) in shape.iter().enumerate() {
        if n == 1 && out.shape()[k] != 1 {
            out = std::borrow::Cow::Owned(out.sum_axis(Axis(k)).insert_axis(Axis(k)));
        }
    }
    out.into_owned()
}

/// `unbroadcast` that hands `g` on without a copy when no axis was broadcast.
fn unbroadcast_owned(g: Grad, shape: &[usize]) -> Grad {
    if g.shape() == shape {
        g
    } else {
        unbroadcast(&g, shape)
    }
}

/// The gradient of a sum (scaled by `scale`) back on the summed tensor's shape.
fn spread<S: Data<Elem = f64>>(
    g: &Floats<S>,
    shape: &[usize],
    axis: Option<usize>,
    scale: f64,
) -> Grad {
    let g = match axis {
        Some(k) => g.view().insert_axis(Axis(k)),
        None => g.view(),
    };
    let mut out = g
        .broadcast(IxDyn(shape))
        .expect("a reduced shape broadcasts back")
        .to_owned();
    if scale != 1.0 {
        out *= scale;
    }
    out
}

fn product<S: Data<Elem = f64>, T: Data<Elem = f64>>(a: &Floats<S>, b: &Floats<T>) -> Grad {
    tensor::matmul(a, b).expect("shapes from a valid product")
}

fn transposed<S: Data<Elem = f64>>(t: &Floats<S>) -> Grad {
    t.t().to_owned()
}

/// An outer product u vᵀ of two vectors.
fn outer<S: Data<Elem = f64>, T: Data<Elem = f64>>(u: &Floats<S>, v: &Floats<T>) -> Grad {
    let u = u.view().insert_axis(Axis(1));
    let v = v.view().insert_axis(Axis(0));
    &u * &v
}

/// `a @ bᵀ`-style products of 2-d tensors, taking transposes as views.
fn gemm(a: ndarray::ArrayViewD<f64>, b: ndarray::ArrayViewD<f64>) -> Grad {
    fn two(t: ndarray::ArrayViewD<f64>) -> ndarray::ArrayView2<f64> {
        t.into_dimensionality().expect("a matrix")
    }
    crate::linalg::gemm(two(a), two(b)).into_dyn()
}

/// For out = x @ y: the gradient with respect to x.
fn matmul_pull_left(g: &Grad, x: &Tensor, y: &Tensor) -> Grad {
    match (x.ndim(), y.ndim()) {
        (2, 2) => gemm(g.view(), y.t()),
        (2, 1) => outer(g, y),
        (1, 2) => product(y, g),
        _ => g * y,
    }
}

/// For out = x @ y: the gradient with respect to y.
fn matmul_pull_right(g: &Grad, x: &Tensor, y: &Tensor) -> Grad {
    match (x.ndim(), y.ndim()) {
        (2, 2) => gemm(x.t(), g.view()),
        (2, 1) => product(&transposed(x), g),
        (1, 2) => outer(x, g),
        _ => g * x,
    }
}
