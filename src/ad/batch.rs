//! A tape replayed over a batch, for `vmap`: the operations recorded for one
//! example run again for n examples at once, each by a batching rule on
//! tensors with a leading batch axis (one GEMM for a product with a shared
//! matrix), and are pulled back per example. A node that does not depend on
//! the mapped inputs keeps its one recorded value.

use std::collections::HashMap;

use ndarray::{
    Array, Array3, ArrayView2, ArrayView3, ArrayViewD, Axis, Dimension, Ix3, IxDyn, Zip,
};
use rayon::prelude::*;

use super::{parents, Grad, Op, Tape, Var};
use crate::prim::{self, Binary};
use crate::tensor::{self, Tensor};

/// A tape's values over a batch of `n` examples.
pub struct Batch<'t> {
    tape: &'t Tape,
    n: usize,
    /// Per node: its values stacked on a leading axis of length n, or `None`
    /// where it is the same for every example (the recorded value).
    each: Vec<Option<Grad>>,
}

impl Tape {
    /// The elements of every recorded value: the memory one example of a
    /// batch takes, gradients aside.
    pub fn elements(&self) -> usize {
        self.nodes.iter().map(|n| n.value.len()).sum()
    }

    /// Runs the nodes up to `last` for `n` examples: each input in `mapped`
    /// takes one value per example (stacked on a leading axis of length n),
    /// every other input its recorded value. `None` when an operation on
    /// values that differ between examples has no batching rule: the data it
    /// recorded (a mask, targets, a custom pullback) belong to one example.
    pub fn batch(&self, n: usize, mapped: Vec<(Var, Grad)>, last: Var) -> Option<Batch<'_>> {
        let mut each: Vec<Option<Grad>> = vec![None; self.nodes.len()];
        for (v, x) in mapped {
            each[v] = Some(x);
        }
        let mut batch = Batch {
            tape: self,
            n,
            each,
        };
        for v in 0..=last {
            let op = &self.nodes[v].op;
            if batch.each[v].is_none() && parents(op).iter().any(|&p| batch.each[p].is_some()) {
                batch.each[v] = Some(standard(batch.forward(v)?));
            }
        }
        Some(batch)
    }
}

/// A matrix per example (n × p × k), or one shared by all (p × k).
#[derive(Clone)]
enum Mat<'a> {
    Each(ArrayView3<'a, f64>),
    Same(ArrayView2<'a, f64>),
}

impl Mat<'_> {
    /// Each example's matrix transposed.
    fn t(self) -> Self {
        match self {
            Mat::Each(x) => Mat::Each(x.permuted_axes([0, 2, 1])),
            Mat::Same(x) => Mat::Same(x.reversed_axes()),
        }
    }
}

impl Batch<'_> {
    fn recorded(&self, v: Var) -> &Tensor {
        &self.tape.nodes[v].value
    }

    /// The batch axis followed by `v`'s shape.
    fn batched_shape(&self, v: Var) -> Vec<usize> {
        std::iter::once(self.n)
            .chain(self.recorded(v).shape().iter().copied())
            .collect()
    }

    /// `v`'s values for every example, n × its shape (a broadcast view where
    /// it is the same for all).
    pub fn full(&self, v: Var) -> ArrayViewD<'_, f64> {
        match &self.each[v] {
            Some(x) => x.view(),
            None => self
                .recorded(v)
                .broadcast(IxDyn(&self.batched_shape(v)))
                .expect("a value broadcasts over the batch"),
        }
    }

    /// `v`'s values for broadcasting against per-example values of `rank`
    /// axes: axes of length 1 after the batch axis; a value that is the same
    /// for every example broadcasts over the batch as it is.
    fn lifted(&self, v: Var, rank: usize) -> ArrayViewD<'_, f64> {
        match &self.each[v] {
            Some(x) => {
                let mut x = x.view();
                while x.ndim() < rank + 1 {
                    x.insert_axis_inplace(Axis(1));
                }
                x
            }
            None => self.recorded(v).view(),
        }
    }

    /// `v`'s values as one matrix per example: a vector is a row (`left`) or a column.
    fn mat(&self, v: Var, left: bool) -> Mat<'_> {
        let shape = self.recorded(v).shape();
        let (p, k) = match shape {
            [k] if left => (1, *k),
            [k] => (*k, 1),
            [p, k] => (*p, *k),
            _ => unreachable!("`@` records 1-d and 2-d operands"),
        };
        match &self.each[v] {
            Some(x) => Mat::Each(
                x.view()
                    .into_shape_with_order((self.n, p, k))
                    .expect("same size"),
            ),
            None => {
                // A view whatever the recorded value's strides (`A.T`).
                let x = self.recorded(v).view();
                let x = match shape.len() {
                    1 => x.insert_axis(Axis(if left { 0 } else { 1 })),
                    _ => x,
                };
                Mat::Same(x.into_dimensionality().expect("a matrix"))
            }
        }
    }

    /// A gradient given per example as matrices shaped for `mat`.
    fn grad_mat<'g>(&self, g: &'g Grad, a: Var, b: Var) -> Mat<'g> {
        let p = match self.recorded(a).shape() {
            [p, _] => *p,
            _ => 1,
        };
        let m = match self.recorded(b).shape() {
            [_, m] => *m,
            _ => 1,
        };
        Mat::Each(
            g.view()
                .into_shape_with_order((self.n, p, m))
                .expect("same size"),
        )
    }

    /// Values computed per example (n × anything of `v`'s size), reshaped to
    /// `v`'s shape after the batch axis.
    fn shaped<D: Dimension>(&self, x: Array<f64, D>, v: Var) -> Grad {
        standard(x.into_dyn())
            .into_shape_with_order(IxDyn(&self.batched_shape(v)))
            .expect("same size")
    }

    /// The batched value of node `v` from its parents' (`None`: no rule).
    fn forward(&self, v: Var) -> Option<Grad> {
        let node = &self.tape.nodes[v];
        let rank = node.value.ndim();
        let zip = |a: Var, b: Var, f: Binary| {
            tensor::zip_with(&self.lifted(a, rank), &self.lifted(b, rank), |x, y| {
                f.apply(x, y)
            })
            .ok()
        };
        Some(match node.op {
            Op::Add(a, b) => zip(a, b, Binary::Add)?,
            Op::Sub(a, b) => zip(a, b, Binary::Sub)?,
            Op::Mul(a, b) => zip(a, b, Binary::Mul)?,
            Op::Div(a, b) => zip(a, b, Binary::Div)?,
            Op::Pow(a, b) => zip(a, b, Binary::Pow)?,
            Op::Neg(a) => self.full(a).mapv(prim::math::neg),
            Op::Map(f, a) => {
                let x = self.full(a).as_standard_layout().into_owned();
                let mut out = Grad::zeros(x.raw_dim());
                let (xs, os) = (
                    x.as_slice().expect("standard"),
                    out.as_slice_mut().expect("new"),
                );
                f.apply_slice(xs, os);
                out
            }
            Op::MatMul(a, b) => {
                let out = bmm(self.mat(a, true), self.mat(b, false), self.n);
                self.shaped(out, v)
            }
            Op::Transpose(a) => transposed(self.full(a)),
            Op::Reduce(r, a, axis) => {
                let x = self.full(a);
                let lanes = |x: ArrayViewD<f64>, k| tensor::reduce(&x, Some(k), |l| r.apply(l));
                match axis {
                    None => lanes(self.rows(&x).into_dyn().view(), 1),
                    Some(k) => lanes(x, k + 1),
                }
            }
            Op::Reshape(a) => self.shaped(self.full(a).to_owned(), v),
            Op::Gather(a, ref positions) => {
                let x = self.rows(&self.full(a));
                let mut out = Vec::with_capacity(self.n * positions.len());
                for row in x.rows() {
                    out.extend(positions.iter().map(|&p| row[p]));
                }
                Grad::from_shape_vec(self.batched_shape(v), out).expect("one per element")
            }
            Op::Rearrange(ref parts, ref sources) => {
                let recorded = node.value.as_standard_layout();
                let recorded = recorded.as_slice().expect("standard");
                let rows: Vec<_> = parts.iter().map(|&p| self.rows(&self.full(p))).collect();
                let offsets = offsets(parts.iter().map(|&p| self.recorded(p).len()));
                let mut out = Vec::with_capacity(self.n * sources.len());
                for i in 0..self.n {
                    out.extend(sources.iter().zip(recorded).map(|(&s, &c)| {
                        if s == 0 {
                            return c;
                        }
                        let k = offsets.partition_point(|&o| o < s) - 1;
                        rows[k][[i, s - 1 - offsets[k]]]
                    }));
                }
                Grad::from_shape_vec(self.batched_shape(v), out).expect("one per element")
            }
            Op::Mse(p, y) => {
                let r = self.recorded(p).ndim().max(self.recorded(y).ndim());
                let d = tensor::zip_with(&self.lifted(p, r), &self.lifted(y, r), |a, b| {
                    (a - b) * (a - b)
                })
                .ok()?;
                let len = self.recorded(p).len() as f64;
                tensor::reduce(&self.rows(&d.view()).into_dyn(), Some(1), |l| {
                    prim::math::pairwise_sum(l) / len
                })
            }
            Op::Outer(a, b) => {
                let out = bmm(self.mat(a, false), self.mat(b, true), self.n);
                self.shaped(out, v)
            }
            Op::Trace(a) => {
                let x = self.full(a);
                let x = x.into_dimensionality::<Ix3>().expect("matrices");
                let sums = x.outer_iter().map(|m| m.diag().sum()).collect();
                Grad::from_shape_vec(vec![self.n], sums).expect("one per example")
            }
            Op::Select(..)
            | Op::Solve(..)
            | Op::Assign(..)
            | Op::Xent(..)
            | Op::Hinge(..)
            | Op::Custom(..)
            | Op::Input
            | Op::Constant => return None,
        })
    }

    /// Each example's elements as a row, in row-major order.
    fn rows(&self, x: &ArrayViewD<f64>) -> ndarray::Array2<f64> {
        let per = x.len() / self.n.max(1);
        x.as_standard_layout()
            .into_owned()
            .into_shape_with_order((self.n, per))
            .expect("same size")
    }

    /// Per-example vector–Jacobian products: `seed` is n × the shape of
    /// `out`; the result holds, for each node of `wanted`, n × its shape
    /// (`None` where `out` does not depend on it).
    pub fn pullback(&self, out: Var, seed: Grad, wanted: &[Var]) -> Vec<Option<Grad>> {
        // The nodes a wanted input reaches: only their gradients are computed.
        let mut needed = vec![false; out + 1];
        for &w in wanted.iter().filter(|&&w| w <= out) {
            needed[w] = true;
        }
        for v in 0..=out {
            if !needed[v] && parents(&self.tape.nodes[v].op).iter().any(|&p| needed[p]) {
                needed[v] = true;
            }
        }
        let mut grads: Vec<Option<Grad>> = vec![None; out + 1];
        grads[out] = Some(seed);
        for v in (0..=out).rev() {
            if !needed[v] || matches!(self.tape.nodes[v].op, Op::Input | Op::Constant) {
                continue;
            }
            let Some(g) = grads[v].take() else { continue };
            self.pull(
                v,
                standard(g),
                &needed,
                &mut |p, contribution| match &mut grads[p] {
                    Some(acc) => *acc += &contribution,
                    slot => *slot = Some(contribution),
                },
            );
        }
        wanted
            .iter()
            .map(|&w| grads.get_mut(w).and_then(Option::take))
            .collect()
    }

    /// Sums a per-example gradient (n × the output's shape) down to `v`'s
    /// shape, undoing broadcasting after the batch axis.
    fn unbroadcast(&self, mut g: Grad, v: Var) -> Grad {
        let shape = self.recorded(v).shape();
        while g.ndim() > shape.len() + 1 {
            g = g.sum_axis(Axis(1));
        }
        for (k, &len) in shape.iter().enumerate() {
            if len == 1 && g.shape()[k + 1] != 1 {
                g = g.sum_axis(Axis(k + 1)).insert_axis(Axis(k + 1));
            }
        }
        g
    }

    /// Hands each needed parent of node `v` its share of `g` (n × v's shape).
    fn pull(&self, v: Var, g: Grad, needed: &[bool], give: &mut dyn FnMut(Var, Grad)) {
        let node = &self.tape.nodes[v];
        let rank = node.value.ndim();
        let lift = |p: Var| self.lifted(p, rank);
        match node.op {
            Op::Add(a, b) | Op::Sub(a, b) => {
                if needed[b] {
                    let gb = if matches!(node.op, Op::Sub(..)) {
                        g.mapv(|x| -x)
                    } else {
                        g.clone()
                    };
                    give(b, self.unbroadcast(gb, b));
                }
                if needed[a] {
                    give(a, self.unbroadcast(g, a));
                }
            }
            Op::Mul(a, b) => {
                if needed[a] {
                    give(a, self.unbroadcast(&g * &lift(b), a));
                }
                if needed[b] {
                    give(b, self.unbroadcast(&g * &lift(a), b));
                }
            }
            Op::Div(a, b) => {
                let q = &g / &lift(b);
                if needed[b] {
                    let gb = (&q * &lift(v)).mapv(|x| -x);
                    give(b, self.unbroadcast(gb, b));
                }
                if needed[a] {
                    give(a, self.unbroadcast(q, a));
                }
            }
            Op::Pow(a, b) => {
                if needed[a] {
                    let d = tensor::zip_with(&lift(a), &lift(b), super::pow_derivative)
                        .expect("shapes broadcast as in the forward pass");
                    give(a, self.unbroadcast(&g * &d, a));
                }
                if needed[b] {
                    let d = tensor::zip_with(&lift(v), &lift(a), |y, x| y * prim::math::log(x))
                        .expect("shapes broadcast as in the forward pass");
                    give(b, self.unbroadcast(&g * &d, b));
                }
            }
            Op::Neg(a) => give(a, g.mapv(|x| -x)),
            Op::MatMul(a, b) => {
                let gm = self.grad_mat(&g, a, b);
                if needed[a] {
                    let ga = bmm(gm.clone(), self.mat(b, false).t(), self.n);
                    give(a, self.shaped(ga, a));
                }
                if needed[b] {
                    let gb = bmm(self.mat(a, true).t(), gm, self.n);
                    give(b, self.shaped(gb, b));
                }
            }
            Op::Transpose(a) => give(a, transposed(g.view())),
            Op::Map(f, a) => {
                let d = f
                    .derivative()
                    .expect("only differentiable primitives are recorded");
                let mut g = g;
                Zip::from(&mut g)
                    .and(&self.full(a))
                    .and(&self.full(v))
                    .for_each(|g, &x, &y| *g *= d.eval(x, y));
                give(a, g)
            }
            Op::Reduce(r, a, axis) => {
                let x = self.full(a).to_owned().into_shared();
                let y = self.full(v).to_owned().into_shared();
                let ga = match axis {
                    None => {
                        let x = self.rows(&x.view()).into_dyn().into_shared();
                        self.shaped(self.tape.pull_reduce(r, &x, &y, &g, Some(1)), a)
                    }
                    Some(k) => self.tape.pull_reduce(r, &x, &y, &g, Some(k + 1)),
                };
                give(a, ga)
            }
            Op::Reshape(a) => give(a, self.shaped(g, a)),
            Op::Gather(a, ref positions) => {
                let g = self.rows(&g.view());
                let mut out = Grad::zeros(IxDyn(&[self.n, self.recorded(a).len()]));
                for (mut row, gs) in out.outer_iter_mut().zip(g.rows()) {
                    for (&p, &x) in positions.iter().zip(gs) {
                        row[p] += x;
                    }
                }
                give(a, self.shaped(out, a))
            }
            Op::Rearrange(ref parts, ref sources) => {
                let g = self.rows(&g.view());
                let offsets = offsets(parts.iter().map(|&p| self.recorded(p).len()));
                let mut outs: Vec<ndarray::Array2<f64>> = parts
                    .iter()
                    .map(|&p| ndarray::Array2::zeros((self.n, self.recorded(p).len())))
                    .collect();
                for (i, gs) in g.rows().into_iter().enumerate() {
                    for (&s, &x) in sources.iter().zip(gs) {
                        if s != 0 {
                            let k = offsets.partition_point(|&o| o < s) - 1;
                            outs[k][[i, s - 1 - offsets[k]]] += x;
                        }
                    }
                }
                for (&p, out) in parts.iter().zip(outs) {
                    if needed[p] {
                        give(p, self.shaped(out, p));
                    }
                }
            }
            Op::Mse(p, y) => {
                let r = self.recorded(p).ndim().max(self.recorded(y).ndim());
                let scale = 2.0 / self.recorded(p).len() as f64;
                let mut g = g;
                while g.ndim() < r + 1 {
                    g.insert_axis_inplace(Axis(1));
                }
                let d = tensor::zip_with(&self.lifted(p, r), &self.lifted(y, r), |a, b| {
                    (a - b) * scale
                })
                .expect("shapes broadcast as in the forward pass");
                let d = &d * &g;
                if needed[y] {
                    give(y, self.unbroadcast(d.mapv(|x| -x), y));
                }
                if needed[p] {
                    give(p, self.unbroadcast(d, p));
                }
            }
            Op::Outer(a, b) => {
                let shape = [self.n, self.recorded(a).len(), self.recorded(b).len()];
                let gm = Mat::Each(g.view().into_shape_with_order(shape).expect("same size"));
                if needed[a] {
                    let ga = bmm(gm.clone(), self.mat(b, false), self.n);
                    give(a, self.shaped(ga, a));
                }
                if needed[b] {
                    let gb = bmm(gm.t(), self.mat(a, false), self.n);
                    give(b, self.shaped(gb, b));
                }
            }
            Op::Trace(a) => {
                let k = self.recorded(a).shape()[0];
                let mut out = Array3::<f64>::zeros((self.n, k, k));
                for (mut m, &s) in out.outer_iter_mut().zip(g.iter()) {
                    m.diag_mut().fill(s);
                }
                give(a, out.into_dyn())
            }
            // The rest have rules only where their operands are the same for
            // every example (`batch` refused the others): the tape's own
            // pullback, once per example.
            _ => {
                let mut per: HashMap<Var, Vec<Option<Grad>>> = HashMap::new();
                for (i, gi) in g.outer_iter().enumerate() {
                    self.tape.pull(node, gi.to_owned(), &mut |p, c| {
                        if needed[p] {
                            per.entry(p).or_insert_with(|| vec![None; self.n])[i] = Some(c);
                        }
                    });
                }
                for (p, parts) in per {
                    let mut out = Grad::zeros(IxDyn(&self.batched_shape(p)));
                    for (mut row, part) in out.outer_iter_mut().zip(parts) {
                        if let Some(part) = part {
                            row.assign(&part);
                        }
                    }
                    give(p, out);
                }
            }
        }
    }
}

/// Each example's value with its axes reversed (`.T`).
fn transposed(x: ArrayViewD<f64>) -> Grad {
    let axes: Vec<usize> = std::iter::once(0).chain((1..x.ndim()).rev()).collect();
    x.permuted_axes(axes).as_standard_layout().into_owned()
}

/// `x` in row-major order, so that each example's values can be reshaped as views.
fn standard(x: Grad) -> Grad {
    if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    }
}

/// Where each part starts when parts of these sizes are laid end to end.
fn offsets(sizes: impl Iterator<Item = usize>) -> Vec<usize> {
    sizes
        .scan(0, |at, len| {
            let start = *at;
            *at += len;
            Some(start)
        })
        .collect()
}

/// Each example's matrix product, n × p × m: one GEMM when one side is
/// shared, a broadcast product when the inner size is 1 (the outer products
/// of per-example weight gradients), else one GEMM per example.
fn bmm(x: Mat, y: Mat, n: usize) -> Array3<f64> {
    match (x, y) {
        (Mat::Each(x), Mat::Same(y)) => {
            let (p, k) = (x.shape()[1], x.shape()[2]);
            let x = x.as_standard_layout();
            let rows = x
                .view()
                .into_shape_with_order((n * p, k))
                .expect("same size");
            let out = crate::linalg::gemm(rows, y);
            out.into_shape_with_order((n, p, y.ncols()))
                .expect("same size")
        }
        (Mat::Same(x), Mat::Each(y)) => {
            // (yᵢᵀ xᵀ)ᵀ for all i at once.
            let (k, m) = (y.shape()[1], y.shape()[2]);
            let yt = y.permuted_axes([0, 2, 1]);
            let yt = yt.as_standard_layout();
            let rows = yt
                .view()
                .into_shape_with_order((n * m, k))
                .expect("same size");
            let out = crate::linalg::gemm(rows, x.t());
            let out = out
                .into_shape_with_order((n, m, x.nrows()))
                .expect("same size");
            out.permuted_axes([0, 2, 1])
                .as_standard_layout()
                .into_owned()
        }
        (Mat::Each(x), Mat::Each(y)) => {
            let (p, k, m) = (x.shape()[1], x.shape()[2], y.shape()[2]);
            let mut out = Array3::<f64>::zeros((n, p, m));
            let slices = out.as_slice_mut().expect("new");
            if k == 1 {
                slices
                    .par_chunks_mut((p * m).max(1))
                    .enumerate()
                    .for_each(|(i, o)| {
                        let row = y.index_axis(Axis(0), i).index_axis(Axis(0), 0).to_vec();
                        for (r, o) in o.chunks_mut(m.max(1)).enumerate() {
                            let a = x[[i, r, 0]];
                            for (o, &b) in o.iter_mut().zip(&row) {
                                *o = a * b;
                            }
                        }
                    });
            } else {
                for (i, o) in slices.chunks_mut((p * m).max(1)).enumerate() {
                    let prod =
                        crate::linalg::gemm(x.index_axis(Axis(0), i), y.index_axis(Axis(0), i));
                    o.copy_from_slice(prod.as_standard_layout().as_slice().expect("standard"));
                }
            }
            out
        }
        (Mat::Same(x), Mat::Same(y)) => {
            let prod = crate::linalg::gemm(x, y);
            prod.broadcast((n, x.nrows(), y.ncols()))
                .expect("over the batch")
                .to_owned()
        }
    }
}
