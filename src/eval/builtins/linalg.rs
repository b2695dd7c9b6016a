//! Linear-algebra builtins: argument checks and diagnostics around `crate::linalg`.

use std::rc::Rc;

use ndarray::Array2;

use super::{factor_flops, mat, Args, Builtin};
use crate::diag::Diag;
use crate::eval::interp::Interp;
use crate::eval::value::{Tensor, Value};
use crate::format::shape_str;
use crate::linalg::{self, LinalgError};

type R = Result<Value, Diag>;

pub static BUILTINS: &[Builtin] = &[
    builtin!("solve", "A, b", "Solve `A x = b` for x (b a vector or a matrix of right-hand sides): Cholesky when A is symmetric positive definite, LU with partial pivoting otherwise. From 2048 rows the Cholesky factor is computed in f32 and the solution refined in f64 to rounding level (LAPACK's `dsposv`), falling back to an f64 factor where A is too ill-conditioned for that.", solve),
    builtin!("chol", "A", "The lower Cholesky factor L of a symmetric positive definite A, with A = L @ L.T.", chol),
    builtin!("inv", "A", "The inverse of a square matrix (prefer `solve` to multiplying by an inverse).", inv),
    builtin!("eigh", "A", "Eigen-decomposition of a symmetric matrix: `(values, vectors)`, values ascending, eigenvectors in the columns.", eigh),
    builtin!("svd", "A", "Thin singular value decomposition: `(U, S, Vt)` with `A == U @ diag(S) @ Vt`, S descending.", svd),
    builtin!("pinv", "A", "Moore–Penrose pseudo-inverse (singular values below max(m, n)·eps·s_max are cut).", pinv),
    builtin!("lstsq", "A, b", "Minimum-norm least-squares solution of `A x ≈ b`.", lstsq),
    builtin!("trace", "A", "Sum of the diagonal of a square matrix.", trace),
    builtin!("det", "A", "Determinant of a square matrix.", det),
];

fn square(a: &Args, i: usize) -> Result<Rc<Tensor>, Diag> {
    let t = a.matrix(i)?;
    if t.shape()[0] != t.shape()[1] {
        return Err(a
            .error(
                i,
                "flx::shape::not_square",
                format!(
                    "`{}` needs a square matrix, found shape {}",
                    a.name,
                    shape_str(t.shape())
                ),
            )
            .label(format!("shape {}", shape_str(t.shape()))));
    }
    Ok(t)
}

fn failure(a: &Args, e: LinalgError) -> Diag {
    match e {
        LinalgError::NotPositiveDefinite(k) => {
            Diag::new("flx::linalg::not_pd", "matrix is not positive definite")
                .at(a.spans[0])
                .label(format!("Cholesky failed at pivot {k}"))
                .help("add a ridge term, e.g. `A + 1e-6 * eye(rows(A))`, or use a larger `reg`")
        }
        LinalgError::Singular => Diag::new(
            "flx::linalg::singular",
            "matrix is singular (to working precision)",
        )
        .at(a.spans[0])
        .help("add a ridge term such as `1e-6 * eye(n)`, or use `lstsq` / `pinv`"),
        LinalgError::NoConvergence => Diag::new(
            "flx::linalg::convergence",
            format!("`{}` did not converge", a.name),
        )
        .at(a.call),
        LinalgError::NotSquare => Diag::new(
            "flx::shape::not_square",
            format!("`{}` needs a square matrix", a.name),
        )
        .at(a.spans[0]),
        LinalgError::Shape(s) => Diag::new("flx::shape::linalg", s).at(a.call),
        LinalgError::Interrupted => Diag::new("flx::run::interrupted", "interrupted").at(a.call),
    }
}

/// The right-hand side as a matrix, and whether it was a vector.
fn rhs(a: &Args, i: usize, rows: usize, lhs_shape: &[usize]) -> Result<(Array2<f64>, bool), Diag> {
    let b = a.tensor(i)?;
    let (m, vector) = match b.ndim() {
        1 => (
            b.view()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("1-d")
                .insert_axis(ndarray::Axis(1))
                .to_owned(),
            true,
        ),
        2 => (mat(&b).to_owned(), false),
        _ => return Err(a.expected(i, "a vector or a matrix")),
    };
    if m.nrows() != rows {
        return Err(Diag::new(
            "flx::shape::solve",
            format!("`{}`: A has {rows} rows but b has {}", a.name, m.nrows()),
        )
        .at(a.call)
        .with_label(a.spans[0], format!("shape {}", shape_str(lhs_shape)))
        .with_label(a.spans[i], format!("shape {}", shape_str(b.shape()))));
    }
    Ok((m, vector))
}

fn shaped(x: Array2<f64>, vector: bool) -> Value {
    if vector {
        let n = x.nrows();
        Value::tensor(x.into_shape_with_order(n).expect("column").into_dyn())
    } else {
        Value::tensor(x.into_dyn())
    }
}

fn check_finite(a: &Args, i: usize, t: &Tensor) -> Result<(), Diag> {
    if t.iter().any(|x| !x.is_finite()) {
        return Err(a.error(
            i,
            "flx::value::not_finite",
            format!("`{}` needs finite values, found nan or inf", a.name),
        ));
    }
    Ok(())
}

fn solve(interp: &mut Interp, a: &mut Args) -> R {
    let m = square(a, 0)?;
    interp.charge(factor_flops(&m, 1), a.call)?;
    check_finite(a, 0, &m)?;
    let (b, vector) = rhs(a, 1, m.shape()[0], m.shape())?;
    let x = linalg::solve(mat(&m), b.view()).map_err(|e| failure(a, e))?;
    Ok(shaped(x, vector))
}

fn lstsq(interp: &mut Interp, a: &mut Args) -> R {
    let m = a.matrix(0)?;
    interp.charge(factor_flops(&m, 22), a.call)?;
    check_finite(a, 0, &m)?;
    let (b, vector) = rhs(a, 1, m.shape()[0], m.shape())?;
    let x = linalg::lstsq(mat(&m), b.view()).map_err(|e| failure(a, e))?;
    Ok(shaped(x, vector))
}

fn chol(interp: &mut Interp, a: &mut Args) -> R {
    let m = square(a, 0)?;
    interp.charge(factor_flops(&m, 1), a.call)?;
    check_finite(a, 0, &m)?;
    Ok(Value::tensor(
        linalg::cholesky(mat(&m))
            .map_err(|e| failure(a, e))?
            .into_dyn(),
    ))
}

fn inv(interp: &mut Interp, a: &mut Args) -> R {
    let m = square(a, 0)?;
    interp.charge(factor_flops(&m, 2), a.call)?;
    check_finite(a, 0, &m)?;
    Ok(Value::tensor(
        linalg::inv(mat(&m)).map_err(|e| failure(a, e))?.into_dyn(),
    ))
}

fn eigh(interp: &mut Interp, a: &mut Args) -> R {
    let m = square(a, 0)?;
    interp.charge(factor_flops(&m, 10), a.call)?;
    check_finite(a, 0, &m)?;
    let (w, v) = linalg::eigh(mat(&m)).map_err(|e| failure(a, e))?;
    Ok(Value::tuple(vec![
        Value::tensor(w.into_dyn()),
        Value::tensor(v.into_dyn()),
    ]))
}

fn svd(interp: &mut Interp, a: &mut Args) -> R {
    let m = a.matrix(0)?;
    interp.charge(factor_flops(&m, 20), a.call)?;
    check_finite(a, 0, &m)?;
    let (u, s, vt) = linalg::svd(mat(&m)).map_err(|e| failure(a, e))?;
    Ok(Value::tuple(vec![
        Value::tensor(u.into_dyn()),
        Value::tensor(s.into_dyn()),
        Value::tensor(vt.into_dyn()),
    ]))
}

fn pinv(interp: &mut Interp, a: &mut Args) -> R {
    let m = a.matrix(0)?;
    interp.charge(factor_flops(&m, 22), a.call)?;
    check_finite(a, 0, &m)?;
    Ok(Value::tensor(
        linalg::pinv(mat(&m)).map_err(|e| failure(a, e))?.into_dyn(),
    ))
}

fn trace(_: &mut Interp, a: &mut Args) -> R {
    let m = square(a, 0)?;
    Ok(Value::Float(mat(&m).diag().sum()))
}

fn det(interp: &mut Interp, a: &mut Args) -> R {
    let m = square(a, 0)?;
    interp.charge(factor_flops(&m, 1), a.call)?;
    check_finite(a, 0, &m)?;
    Ok(Value::Float(
        linalg::det(mat(&m)).map_err(|e| failure(a, e))?,
    ))
}
