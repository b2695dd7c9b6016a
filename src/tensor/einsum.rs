//! `einsum`: NumPy's Einstein summation over Float or Int arrays. Operands
//! are contracted pairwise, left to right (NumPy's `optimize=False` order),
//! each contraction a batched matrix product: shared labels that are still
//! needed become the batch, the others the inner dimension, so a Float
//! contraction runs as GEMMs. Repeated labels in one operand take its
//! diagonal; `...` stands for broadcast axes, and axes of size 1 broadcast.

use ndarray::{Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis, CowArray, Ix3, IxDyn};

use super::{check_elements, ShapeError};
use crate::{linalg, prim::IntError};

#[derive(Debug)]
pub enum EinsumError {
    /// The subscripts string is malformed or does not fit the operands.
    Spec(String),
    Shape(ShapeError),
    Int(IntError),
}

impl From<ShapeError> for EinsumError {
    fn from(e: ShapeError) -> Self {
        EinsumError::Shape(e)
    }
}

impl From<IntError> for EinsumError {
    fn from(e: IntError) -> Self {
        EinsumError::Int(e)
    }
}

/// A letter (its char code), or axis `i` from the right of the `...` axes.
type Label = u32;
const ELLIPSIS: Label = 1 << 20;

fn label_name(l: Label) -> String {
    if l >= ELLIPSIS {
        "...".into()
    } else {
        char::from_u32(l).map_or("?".into(), String::from)
    }
}

/// Each operand's labels, one per axis, and the output's.
struct Spec {
    inputs: Vec<Vec<Label>>,
    output: Vec<Label>,
}

fn spec_error<T>(msg: impl Into<String>) -> Result<T, EinsumError> {
    Err(EinsumError::Spec(msg.into()))
}

/// The labels of one term (`ij`, `...ij`), with `...` expanded to `ellipsis` axes.
fn term(text: &str, ellipsis: usize) -> Result<Vec<Label>, EinsumError> {
    let (before, after) = match text.split_once("...") {
        Some((b, a)) => (b, Some(a)),
        None => (text, None),
    };
    let letters = |part: &str| -> Result<Vec<Label>, EinsumError> {
        part.chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' => Ok(c as Label),
                '.' => spec_error("`...` may appear once in each term, and `.` only in it"),
                _ => spec_error(format!(
                    "`{c}` is not a label: labels are the letters a-z and A-Z"
                )),
            })
            .collect()
    };
    let mut labels = letters(before)?;
    if let Some(after) = after {
        labels.extend((0..ellipsis).rev().map(|i| ELLIPSIS + i as Label));
        labels.extend(letters(after)?);
    }
    Ok(labels)
}

/// How many explicit labels a term has, and whether it has `...`.
fn explicit(text: &str) -> (usize, bool) {
    let (count, dots) = (
        text.chars().filter(|c| *c != '.').count(),
        text.contains("..."),
    );
    (count, dots)
}

fn parse(subscripts: &str, ndims: &[usize]) -> Result<Spec, EinsumError> {
    let text: String = subscripts.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match text.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (text.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != ndims.len() {
        return spec_error(format!(
            "the subscripts name {} operand{} but {} {} given",
            terms.len(),
            if terms.len() == 1 { "" } else { "s" },
            ndims.len(),
            if ndims.len() == 1 { "is" } else { "are" }
        ));
    }
    let mut inputs = Vec::with_capacity(terms.len());
    let mut widest = 0;
    for (k, (t, &nd)) in terms.iter().zip(ndims).enumerate() {
        let (count, dots) = explicit(t);
        let fits = if dots { count <= nd } else { count == nd };
        if !fits {
            let axes = if nd == 1 { "axis" } else { "axes" };
            return spec_error(format!(
                "operand {} has {nd} {axes} but its subscripts `{t}` name {count}",
                k + 1
            ));
        }
        let ellipsis = if dots { nd - count } else { 0 };
        widest = widest.max(ellipsis);
        inputs.push(term(t, ellipsis)?);
    }
    let output = match rhs {
        Some(r) => {
            if r.contains("->") {
                return spec_error("`->` may appear once");
            }
            if widest > 0 && !r.contains("...") {
                return spec_error(
                    "the operands have `...` axes, so the output needs `...` too (as in NumPy)",
                );
            }
            let out = term(r, widest)?;
            for (i, l) in out.iter().enumerate() {
                if out[..i].contains(l) {
                    return spec_error(format!("output label `{}` appears twice", label_name(*l)));
                }
                if !inputs.iter().any(|t| t.contains(l)) {
                    return spec_error(format!(
                        "output label `{}` is not in any operand",
                        label_name(*l)
                    ));
                }
            }
            out
        }
        // Implicit mode: the broadcast axes, then the letters that appear
        // once, in alphabetical order.
        None => {
            let mut out: Vec<Label> = (0..widest).rev().map(|i| ELLIPSIS + i as Label).collect();
            let mut once: Vec<Label> = inputs
                .iter()
                .flatten()
                .copied()
                .filter(|l| *l < ELLIPSIS)
                .filter(|l| inputs.iter().flatten().filter(|m| *m == l).count() == 1)
                .collect();
            once.sort_unstable();
            out.extend(once);
            out
        }
    };
    Ok(Spec { inputs, output })
}

/// The arithmetic a contraction needs, per dtype: Floats by GEMM, Ints
/// checked for overflow.
pub trait Summand: Copy + Default + 'static {
    fn sum_axis(a: ArrayViewD<Self>, axis: usize) -> Result<ArrayD<Self>, IntError>;
    /// `c[b] = a[b] @ b[b]` for each batch `b`.
    fn batched_matmul(a: ArrayView3<Self>, b: ArrayView3<Self>) -> Result<Array3<Self>, IntError>;
}

impl Summand for f64 {
    fn sum_axis(a: ArrayViewD<f64>, axis: usize) -> Result<ArrayD<f64>, IntError> {
        Ok(a.sum_axis(Axis(axis)))
    }

    fn batched_matmul(a: ArrayView3<f64>, b: ArrayView3<f64>) -> Result<Array3<f64>, IntError> {
        let (batch, m, _) = a.dim();
        let n = b.dim().2;
        let mut out = Array3::<f64>::zeros((batch, m, n));
        for (i, mut c) in out.outer_iter_mut().enumerate() {
            let (x, y) = (a.index_axis(Axis(0), i), b.index_axis(Axis(0), i));
            if m == 1 && n == 1 {
                // A dot product per batch (`ij,ij->i`): no GEMM call for it.
                c[(0, 0)] = x.row(0).dot(&y.column(0));
            } else {
                linalg::gemm_into(c.view_mut(), x, y, false);
            }
        }
        Ok(out)
    }
}

impl Summand for i64 {
    fn sum_axis(a: ArrayViewD<i64>, axis: usize) -> Result<ArrayD<i64>, IntError> {
        let mut out = ArrayD::<i64>::zeros(a.view().remove_axis(Axis(axis)).shape());
        for lane in a.axis_iter(Axis(axis)) {
            for (o, x) in out.iter_mut().zip(lane.iter()) {
                *o = o.checked_add(*x).ok_or(IntError::Overflow)?;
            }
        }
        Ok(out)
    }

    fn batched_matmul(a: ArrayView3<i64>, b: ArrayView3<i64>) -> Result<Array3<i64>, IntError> {
        let (batch, m, k) = a.dim();
        let n = b.dim().2;
        let mut out = Array3::<i64>::zeros((batch, m, n));
        for (t, mut c) in out.outer_iter_mut().enumerate() {
            let (x, y): (ArrayView2<i64>, ArrayView2<i64>) =
                (a.index_axis(Axis(0), t), b.index_axis(Axis(0), t));
            for i in 0..m {
                for l in 0..k {
                    let xv = x[(i, l)];
                    for j in 0..n {
                        let p = xv.checked_mul(y[(l, j)]).ok_or(IntError::Overflow)?;
                        c[(i, j)] = c[(i, j)].checked_add(p).ok_or(IntError::Overflow)?;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// An operand (borrowed until something is computed from it), its labels distinct.
struct Term<'a, T> {
    array: CowArray<'a, T, IxDyn>,
    labels: Vec<Label>,
}

impl<'a, T: Summand> Term<'a, T> {
    /// Sum over the axis labelled `l`.
    fn sum_out(self, l: Label) -> Result<Term<'a, T>, IntError> {
        let at = self
            .labels
            .iter()
            .position(|m| *m == l)
            .expect("a label of the term");
        let mut labels = self.labels;
        labels.remove(at);
        let array = T::sum_axis(self.array.view(), at)?.into();
        Ok(Term { array, labels })
    }
}

/// The operand with its diagonal taken along each repeated label (`ii` → `i`).
fn diagonal<'a, T: Summand>(
    a: ArrayViewD<'a, T>,
    labels: &[Label],
) -> Result<Term<'a, T>, EinsumError> {
    let mut unique: Vec<Label> = Vec::new();
    let mut sizes = Vec::new();
    for (axis, l) in labels.iter().enumerate() {
        match unique.iter().position(|m| m == l) {
            Some(u) if sizes[u] != a.shape()[axis] => {
                return spec_error(format!(
                    "label `{}` is repeated in one operand over axes of sizes {} and {}",
                    label_name(*l),
                    sizes[u],
                    a.shape()[axis]
                ))
            }
            Some(_) => {}
            None => {
                unique.push(*l);
                sizes.push(a.shape()[axis]);
            }
        }
    }
    if unique.len() == labels.len() {
        return Ok(Term {
            array: a.into(),
            labels: unique,
        });
    }
    let from: Vec<usize> = labels
        .iter()
        .map(|l| unique.iter().position(|m| m == l).expect("seen"))
        .collect();
    let array = ArrayD::from_shape_fn(IxDyn(&sizes), |idx| {
        let at: Vec<usize> = from.iter().map(|&u| idx[u]).collect();
        a[IxDyn(&at)]
    });
    Ok(Term {
        array: array.into(),
        labels: unique,
    })
}

/// The size every operand agrees on for each label (axes of size 1 broadcast, as in NumPy).
fn label_sizes(shapes: &[&[usize]], spec: &Spec) -> Result<Vec<(Label, usize)>, EinsumError> {
    let mut sizes: Vec<(Label, usize)> = Vec::new();
    for (k, (shape, labels)) in shapes.iter().zip(&spec.inputs).enumerate() {
        for (&l, &n) in labels.iter().zip(shape.iter()) {
            match sizes.iter_mut().find(|(m, _)| *m == l) {
                None => sizes.push((l, n)),
                Some((_, size)) if *size == n => {}
                Some((_, size)) if *size == 1 || n == 1 => *size = (*size).max(n),
                Some((_, size)) => {
                    let what = if l >= ELLIPSIS {
                        "a `...` axis".to_string()
                    } else {
                        format!("label `{}`", label_name(l))
                    };
                    return spec_error(format!(
                        "{what} is {n} in operand {} but {size} in an operand before it",
                        k + 1
                    ));
                }
            }
        }
    }
    Ok(sizes)
}

/// A subscripts string checked against the operands' shapes, with each
/// label's size: what `flops` charges for is what `run` computes.
pub struct Plan {
    spec: Spec,
    sizes: Vec<(Label, usize)>,
}

impl Plan {
    pub fn new(subscripts: &str, shapes: &[&[usize]]) -> Result<Plan, EinsumError> {
        let ndims: Vec<usize> = shapes.iter().map(|s| s.len()).collect();
        let spec = parse(subscripts, &ndims)?;
        let sizes = label_sizes(shapes, &spec)?;
        Ok(Plan { spec, sizes })
    }

    fn size_of(&self, l: Label) -> usize {
        self.sizes.iter().find(|(m, _)| *m == l).expect("sized").1
    }

    /// About how many flops `run` takes (each pairwise product over all the
    /// labels of both), to charge the work before it starts.
    pub fn flops(&self) -> u64 {
        let mut seen: Vec<Label> = Vec::new();
        let mut total = 0u64;
        for labels in &self.spec.inputs {
            let new: Vec<Label> = labels
                .iter()
                .copied()
                .filter(|l| !seen.contains(l))
                .collect();
            seen.extend(new);
            let size = |l: &Label| self.size_of(*l) as u64;
            total = total.saturating_add(seen.iter().map(size).fold(2, u64::saturating_mul));
        }
        total
    }

    /// Evaluate on operands of the shapes the plan was made for.
    pub fn run<T: Summand>(&self, operands: &[ArrayViewD<T>]) -> Result<ArrayD<T>, EinsumError> {
        let spec = &self.spec;
        let size_of = |l: Label| self.size_of(l);
        let mut terms = Vec::with_capacity(operands.len());
        for (a, labels) in operands.iter().zip(&spec.inputs) {
            terms.push(diagonal(a.view(), labels)?);
        }
        // Sum at once over labels that only one operand has and the output lacks.
        let all: Vec<Label> = terms.iter().flat_map(|t| t.labels.clone()).collect();
        let once =
            |l: &Label| all.iter().filter(|m| *m == l).count() == 1 && !spec.output.contains(l);
        let terms = terms
            .into_iter()
            .map(|mut t| {
                for l in t.labels.clone().iter().filter(|l| once(l)) {
                    t = t.sum_out(*l)?;
                }
                Ok(t)
            })
            .collect::<Result<Vec<_>, IntError>>()?;
        let mut rest = terms.into_iter();
        let mut acc = rest.next().expect("one operand");
        let remaining: Vec<Term<T>> = rest.collect();
        for (i, next) in remaining.iter().enumerate() {
            let keep = |l: &Label| {
                spec.output.contains(l) || remaining[i + 1..].iter().any(|t| t.labels.contains(l))
            };
            acc = contract(acc, next, &keep, &size_of)?;
        }
        let order: Vec<usize> = spec
            .output
            .iter()
            .map(|l| acc.labels.iter().position(|m| m == l).expect("kept"))
            .collect();
        let shape: Vec<usize> = spec.output.iter().map(|&l| size_of(l)).collect();
        let out = acc.array.into_owned().permuted_axes(IxDyn(&order));
        // A `...` axis of size 1 in every operand that reached here broadcasts.
        Ok(match out.broadcast(IxDyn(&shape)) {
            Some(b) if b.shape() != out.shape() => b.to_owned(),
            _ => out,
        })
    }
}

/// `a` and `b` contracted over their shared labels that `keep` does not
/// need, as one batched matrix product.
fn contract<'a, T: Summand>(
    a: Term<'a, T>,
    b: &Term<'a, T>,
    keep: &dyn Fn(&Label) -> bool,
    size_of: &dyn Fn(Label) -> usize,
) -> Result<Term<'a, T>, EinsumError> {
    let shared: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| b.labels.contains(l))
        .collect();
    let (batch, inner): (Vec<Label>, Vec<Label>) = shared.iter().partition(|l| keep(l));
    let unshared = |t: &Term<T>| -> Vec<Label> {
        t.labels
            .iter()
            .copied()
            .filter(|l| !shared.contains(l))
            .collect()
    };
    let (a_only, b_only) = (unshared(&a), unshared(b));
    let product = |ls: &[Label]| ls.iter().map(|&l| size_of(l)).product::<usize>();
    let (nb, m, k, n) = (
        product(&batch),
        product(&a_only),
        product(&inner),
        product(&b_only),
    );
    let out_shape: Vec<usize> = batch
        .iter()
        .chain(&a_only)
        .chain(&b_only)
        .map(|&l| size_of(l))
        .collect();
    check_elements(&out_shape)?;
    let a3 = arrange(
        a.array.view(),
        &a.labels,
        [&batch, &a_only, &inner],
        size_of,
        (nb, m, k),
    );
    let b3 = arrange(
        b.array.view(),
        &b.labels,
        [&batch, &inner, &b_only],
        size_of,
        (nb, k, n),
    );
    let c = T::batched_matmul(a3.view(), b3.view())?;
    let array = c
        .into_shape_with_order(IxDyn(&out_shape))
        .expect("same size")
        .into();
    let labels = batch.into_iter().chain(a_only).chain(b_only).collect();
    Ok(Term { array, labels })
}

/// An operand as (batch, rows, inner) or (batch, inner, columns) for
/// `batched_matmul`, its `...` axes of size 1 broadcast: a view where each
/// group is at most one axis, a copy where axes must merge.
fn arrange<'v, T: Summand>(
    array: ArrayViewD<'v, T>,
    labels: &[Label],
    groups: [&[Label]; 3],
    size_of: &dyn Fn(Label) -> usize,
    dims: (usize, usize, usize),
) -> CowArray<'v, T, Ix3> {
    let order: Vec<Label> = groups.concat();
    let axes: Vec<usize> = order
        .iter()
        .map(|l| {
            labels
                .iter()
                .position(|m| m == l)
                .expect("a label of the operand")
        })
        .collect();
    let full: Vec<usize> = order.iter().map(|&l| size_of(l)).collect();
    let mut view = array.permuted_axes(IxDyn(&axes));
    if view.shape() != full.as_slice() {
        let wide = view.broadcast(IxDyn(&full)).expect("sizes agree or are 1");
        let owned = wide.as_standard_layout().into_owned();
        return CowArray::from(owned.into_shape_with_order(dims).expect("same size"));
    }
    if groups.iter().all(|g| g.len() <= 1) {
        for (at, g) in groups.iter().enumerate() {
            if g.is_empty() {
                view.insert_axis_inplace(Axis(at));
            }
        }
        return CowArray::from(view.into_dimensionality::<Ix3>().expect("3 axes"));
    }
    let owned = view.as_standard_layout().into_owned();
    CowArray::from(owned.into_shape_with_order(dims).expect("same size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ArrayD};

    fn einsum(spec: &str, ops: &[ArrayViewD<f64>]) -> Result<ArrayD<f64>, EinsumError> {
        let shapes: Vec<&[usize]> = ops.iter().map(|a| a.shape()).collect();
        Plan::new(spec, &shapes)?.run(ops)
    }

    fn run(spec: &str, ops: &[ArrayD<f64>]) -> ArrayD<f64> {
        let views: Vec<_> = ops.iter().map(|a| a.view()).collect();
        einsum(spec, &views).expect("einsum")
    }

    #[test]
    fn matches_loops() {
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
        let b = array![[1.0, 0.5], [2.0, -1.0], [0.0, 3.0]].into_dyn();
        assert_eq!(
            run("ij,jk->ik", &[a.clone(), b.clone()]),
            array![[5.0, 7.5], [14.0, 15.0]].into_dyn()
        );
        assert_eq!(
            run("ij,ij->i", &[a.clone(), a.clone()]),
            array![14.0, 77.0].into_dyn()
        );
        assert_eq!(run("ij->ji", std::slice::from_ref(&a)), a.t().to_owned());
        assert_eq!(run("ij", std::slice::from_ref(&a)), a);
        assert_eq!(run("ji", std::slice::from_ref(&a)), a.t().to_owned());
        let s = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
        assert_eq!(
            run("ii", std::slice::from_ref(&s)),
            ndarray::arr0(5.0).into_dyn()
        );
        assert_eq!(
            run("ii->i", std::slice::from_ref(&s)),
            array![1.0, 4.0].into_dyn()
        );
        assert_eq!(
            run("...j->...", std::slice::from_ref(&a)),
            array![6.0, 15.0].into_dyn()
        );
        assert!(einsum("...j->", &[a.view()]).is_err());
    }

    #[test]
    fn bad_specs_are_errors() {
        let a = ArrayD::<f64>::zeros(IxDyn(&[2, 3]));
        for bad in [
            "ij,jk", "i", "ijk", "ij->k", "ij->ii", "i1", "ij->i->j", "i.j",
        ] {
            assert!(einsum(bad, &[a.view()]).is_err(), "{bad}");
        }
        let b = ArrayD::<f64>::zeros(IxDyn(&[4, 2]));
        assert!(matches!(
            einsum("ij,jk", &[a.view(), b.view()]),
            Err(EinsumError::Spec(_))
        ));
    }
}
